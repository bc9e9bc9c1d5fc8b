"""A synthetic session for the viewer's benchmark and tests: N analog channels at a given rate (+ video pose)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fusionlab.model import ClockEntry, Event, Session, Stream
from fusionlab.persist import merge_file_into, save_session, transaction

__all__ = ["make_synthetic_session"]


def make_synthetic_session(path: str | os.PathLike[str], *, n_channels: int = 16, rate_hz: float = 1000.0,
                           duration_s: float = 10.0, start_s: float = 0.0,
                           video_session: str | os.PathLike[str] | None = None) -> Path:
    """Write a session with one ``analog`` stream ``synthetic.analog`` and events every second.

    Channel ``c`` is ``sin(2 pi (0.5 + 0.25 c) t) + c`` (V), so every channel has its own band and a known value at
    every time. ``video_session`` (a session from ``fusionlab ingest VIDEO``) is merged in when given.
    """
    path = Path(path)
    n = round(duration_s * rate_hz)
    t = start_s + np.arange(n) / rate_hz
    freqs = 0.5 + 0.25 * np.arange(n_channels)
    data = np.sin(2 * np.pi * t[:, None] * freqs[None, :]) + np.arange(n_channels)[None, :]
    clock = "synthetic:daq"
    stream = Stream(name="synthetic.analog", modality="analog", data=data,
                    channels=tuple(f"ch{c:02d}" for c in range(n_channels)), units=("V",) * n_channels,
                    rate_hz=rate_hz, start_s=start_s, clock=clock, meta={"source": "synthetic"})
    events = tuple(Event(time_s=float(k), kind="foot_strike", side="left" if k % 2 else "right", source="annotation",
                         clock=clock, detector="synthetic") for k in range(int(start_s) + 1, int(start_s + duration_s)))
    session = Session(streams=(stream,), events=events,
                      clocks={clock: ClockEntry(clock=clock, offset_s=0.0, offset_sd_s=0.0, method="reference")})
    if path.exists():
        path.unlink()
    save_session(session, path)
    if video_session is not None:
        with transaction(path) as f:
            merge_file_into(f, video_session)
    return path
