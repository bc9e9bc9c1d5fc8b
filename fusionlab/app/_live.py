"""Recordings in progress (``fusionlab record --lsl``) in the web app: pure library functions, no Dash, no Flask.

A recording of session ``S01.h5`` is the live file ``S01.h5.live`` (plus segments ``S01.h5.<k>.live`` for streams
that appeared later), an HDF5 file written in single-writer/multiple-reader (SWMR) mode and flushed every
``flush_interval_ms`` (see `fusionlab.record._live`). A plain read-only ``h5py.File`` open is refused on such a
file, so the app reads it through `fusionlab.record.open_live` (SWMR read).

No file is held open between requests: every request opens the segments, reads and closes them (`LiveReader`).
A new SWMR open sees everything flushed up to that moment, so no ``refresh`` of datasets is needed (a reader that
stays open must call `LiveSessionReader.refresh`, as the viewer does). Sample counts come from the datasets'
extent, not from the ``n_samples`` attribute (SWMR readers do not see attribute updates); the time of the last
flush is the newest modification time of the segment files (the ``last_flush_at`` attribute is an attribute too).

Ids: a recording has the id of its *session* path (``session_id("sub/S01.h5")``, HMAC of the path relative to the
data folder), so the sessions-page entry and the ``/session/<id>`` URL stay the same when the recording is
finalised (`finalize_live` merges the live files into ``S01.h5`` and deletes them). While a live file exists the
entry is the recording (and, when ``S01.h5`` existed before, shows the session's streams together with the ones
being recorded).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusionlab.app._data import SESSION_SUFFIXES

__all__ = ["LIVE_REFRESH_MS", "STALE_AFTER_S", "LiveReader", "LiveUpdate", "find_live_sessions", "is_live",
           "last_flush", "live_status", "live_update", "open_any", "session_stamp"]

LIVE_SUFFIX = ".live"
LIVE_REFRESH_MS = 3000
"""How often the session page of a recording re-reads it (ms)."""
STALE_AFTER_S = 30.0
"""A live file not flushed for this long is reported as a stopped recording that was not merged (recorder killed);
a running recorder flushes every 0.5 s by default."""


def find_live_sessions(data_dir: str | os.PathLike[str]) -> list[Path]:
    """Session paths (``S01.h5``) under ``data_dir`` whose recording is in progress (``S01.h5.live`` exists).

    Hidden files and folders are skipped, as for sessions. The session file itself need not exist yet.
    """
    root = Path(data_dir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if f.startswith(".") or not f.endswith(LIVE_SUFFIX):
                continue
            session = f[: -len(LIVE_SUFFIX)]
            if session.lower().endswith(SESSION_SUFFIXES):  # S01.h5.live, not the segments S01.h5.2.live
                out.append(Path(dirpath) / session)
    return out


def is_live(session: str | os.PathLike[str]) -> bool:
    """True while the session's first live file exists (recording in progress or not yet merged)."""
    from fusionlab.record import live_path

    return live_path(session).exists()


def session_stamp(session: str | os.PathLike[str]) -> tuple[tuple[str, int, int], ...]:
    """Modification time and size of the session file (if any) and of every live segment: a cache key that changes
    at every flush and at the merge."""
    from fusionlab.record import live_segments

    p = Path(session)
    out = []
    for f in ([p] if p.exists() else []) + live_segments(p):
        with contextlib.suppress(FileNotFoundError):  # merged and deleted meanwhile
            st = f.stat()
            out.append((f.name, st.st_mtime_ns, st.st_size))
    return tuple(out)


def last_flush(session: str | os.PathLike[str]) -> dt.datetime | None:
    """When the recorder last flushed (UTC): the newest modification time of the live files, None if none."""
    from fusionlab.record import live_segments

    times = []
    for f in live_segments(session):
        with contextlib.suppress(FileNotFoundError):
            times.append(f.stat().st_mtime)
    return dt.datetime.fromtimestamp(max(times), tz=dt.timezone.utc) if times else None


class LiveReader:
    """One read of a session being recorded: the session file (when it exists) and every live segment, opened
    for this request only (SWMR read for the live files) and closed by `close` / ``with``.

    It offers what the app's summary and figure code use of a `SessionReader` (``stream_names``, ``stream_info``,
    ``read_stream``, ``to_session_time``, ``clocks``, ``events``, ``sources``, ``derived_names``, ``subject``,
    ``session_date``). A stream in a live file hides a stream of the same name in the session file (the merge
    would replace it with ``--overwrite``).

    Raises
    ------
    FileNotFoundError
        If neither the session file nor any live file can be opened (e.g. merged and deleted meanwhile).
    """

    def __init__(self, session: str | os.PathLike[str]) -> None:
        from fusionlab.persist import open_session
        from fusionlab.record import live_segments, open_live

        self.path = Path(session)
        self._readers: list[Any] = []
        self._base = None
        self.n_segments = 0
        try:
            if self.path.exists():
                self._base = open_session(self.path)
                self._readers.append(self._base)
            for seg in live_segments(self.path):
                try:
                    self._readers.append(open_live(seg))
                    self.n_segments += 1
                except (FileNotFoundError, OSError):
                    # just merged and deleted, or a new segment created but not yet switched to SWMR mode:
                    # it shows at the next read
                    continue
        except BaseException:
            self.close()
            raise
        if not self._readers:
            msg = f"{self.path}: neither the session nor a live recording file could be opened"
            raise FileNotFoundError(msg)
        self._by_stream: dict[str, Any] = {}
        for r in self._readers:
            for n in r.stream_names:
                self._by_stream[n] = r

    def __enter__(self) -> LiveReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every file opened."""
        for r in self._readers:
            with contextlib.suppress(Exception):
                r.close()
        self._readers = []

    @property
    def live(self) -> bool:
        """True when at least one live file was read."""
        return self.n_segments > 0

    @property
    def subject(self) -> str:
        """Subject pseudonym of the session file, else of the live file (empty for a new recording)."""
        return next((r.subject for r in self._readers if r.subject), "")

    @property
    def session_date(self) -> str:
        """Session date of the session file, else empty."""
        return next((r.session_date for r in self._readers if r.session_date), "")

    @property
    def stream_names(self) -> list[str]:
        """Names of the streams (session file first, then each live segment)."""
        return list(self._by_stream)

    def _reader(self, name: str) -> Any:
        if name not in self._by_stream:
            msg = f"{self.path}: no stream {name!r}; streams are {', '.join(self._by_stream)}."
            raise KeyError(msg)
        return self._by_stream[name]

    def stream_info(self, name: str) -> Any:
        """As `SessionReader.stream_info` (for live streams: up to the last flush)."""
        return self._reader(name).stream_info(name)

    def read_stream(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """As `SessionReader.read_stream` (for live streams: the samples flushed so far)."""
        return self._reader(name).read_stream(name, *args, **kwargs)

    def to_session_time(self, stream: Any) -> Any:
        """Times of a stream read through this reader on the session clock (its own file's clock entry)."""
        return self._reader(stream.name).to_session_time(stream)

    def clocks(self) -> dict[str, Any]:
        """Clock entries of every file (a live file's entries from its time corrections so far)."""
        out: dict[str, Any] = {}
        for r in self._readers:
            out.update(r.clocks())
        return out

    def events(self, *args: Any, **kwargs: Any) -> list[Any]:
        """Events of every file (LSL markers and lost/resumed senders recorded so far), sorted by time."""
        out = [e for r in self._readers for e in r.events(*args, **kwargs)]
        return sorted(out, key=lambda e: e.time_s)

    def sources(self) -> list[Any]:
        """Provenance of the session file (a live file has none yet)."""
        return self._base.sources() if self._base is not None else []

    def derived_names(self) -> list[str]:
        """Derived results of the session file (a live file has none)."""
        return self._base.derived_names() if self._base is not None else []


def open_any(path: str | os.PathLike[str]) -> Any:
    """A reader of a session: a `LiveReader` while its recording is in progress, else `open_session`."""
    from fusionlab.persist import open_session

    return LiveReader(path) if is_live(path) else open_session(path)


def live_status(session: str | os.PathLike[str], *, now: dt.datetime | None = None) -> dict[str, Any]:
    """What the app says about a recording: ``{"live": bool, "status": str, "last_flush": ISO time or "",
    "age_s": seconds since the last flush or None, "text": one line for the page}``.

    ``status`` is ``"recording"`` while the recorder flushes, ``"recording stopped, not merged"`` when the live
    file has not changed for `STALE_AFTER_S` (recorder killed: merge with ``fusionlab record --finalize``), and
    ``""`` when there is no live file (a normal session).
    """
    when = last_flush(session)
    if when is None:
        return {"live": False, "status": "", "last_flush": "", "age_s": None,
                "text": "Recording finished: this is the merged session."}
    now = now or dt.datetime.now(dt.timezone.utc)
    age = max(0.0, (now - when).total_seconds())
    stale = age > STALE_AFTER_S
    status = "recording stopped, not merged" if stale else "recording"
    local = when.astimezone().strftime("%H:%M:%S")
    text = (f"Recording stopped at {local} without being merged: merge it with "
            "'fusionlab record --finalize -o SESSION.h5'." if stale else
            f"Recording in progress: streams up to the last flush at {local} ({age:.0f} s ago); "
            f"refreshed every {LIVE_REFRESH_MS / 1000:g} s.")
    return {"live": True, "status": status, "last_flush": when.isoformat(timespec="seconds"), "age_s": age,
            "text": text}


@dataclass
class LiveUpdate:
    """What the session page of a recording changes at a refresh."""

    figure: dict[str, Any] | None
    text: str
    live: bool


def live_update(session: str | os.PathLike[str], *, traces: Sequence[str] | None,
                view: Mapping[str, Any] | None = None, cache: Any = None, max_points: int | None = None,
                zoom_max_points: int | None = None) -> LiveUpdate:
    """The periodic refresh of a recording's session page: the figure of the current view with what was flushed
    so far (files opened and closed within this call), the status line, and whether to keep refreshing (False
    once the recording is merged: the figure is then the session's)."""
    from fusionlab.app._data import DEFAULT_MAX_POINTS, ZOOM_MAX_POINTS, figure_for_view

    p = Path(session)
    st = live_status(p)
    window = tuple(view["window"]) if view and view.get("window") else None
    if not st["live"] and not p.exists():
        return LiveUpdate(None, "The recording is gone (neither a live file nor a session file).", False)
    try:
        fig = figure_for_view(p, traces, window, cache=cache,  # type: ignore[arg-type]
                              max_points=max_points or DEFAULT_MAX_POINTS,
                              zoom_max_points=zoom_max_points or ZOOM_MAX_POINTS)
    except (FileNotFoundError, OSError):
        fig = None  # merged between the check and the read: the next refresh shows the session
    return LiveUpdate(fig, st["text"], st["live"])

