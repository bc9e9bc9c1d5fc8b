"""Record Lab Streaming Layer (LSL) streams into a live SWMR file, then into the session (pylsl).

The loop (one thread): pull every inlet without blocking, queue the samples, write and flush the live file every
``flush_interval_ms``, measure each inlet's ``time_correction()`` every ``correction_interval_s``. A sender that
disappears raises ``pylsl.LostError`` (inlets are opened with ``recover=False`` so a loss is seen, not hidden):
the stream gets a NaN row and an open gap, and the others go on. A background ``ContinuousResolver`` sees the
sender come back (same name, type and channel count); a new inlet is opened and the stream resumes in the same
group, the gap closed with the first new timestamp.

String (marker) streams are recorded too and become events at the merge (``kind="marker"``, ``source="lsl"``,
the string as label, its LSL timestamp on the sender's clock entry). Streams that appear after the recording
started (any stream when no names were given, else the named ones not up at the start) are recorded into a new
live segment file (SWMR cannot add datasets to an open file), merged with the others at the end.

pylsl is imported inside the functions, so ``import fusionlab`` does not need liblsl.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab.record._live import LiveStreamSpec, LiveWriter, finalize_live, live_path, segment_path

__all__ = ["LslRecorder", "RecordStats", "find_lsl_streams", "record_lsl"]

log = logging.getLogger(__name__)

_MODALITY_BY_TYPE = {
    "imu": "imu", "accelerometer": "imu", "acc": "imu", "gyroscope": "imu", "gyro": "imu", "inertial": "imu",
    "force": "forceplate", "forceplate": "forceplate", "grf": "forceplate",
    "emg": "analog", "eeg": "analog", "exg": "analog", "ecg": "analog", "analog": "analog", "trigger": "analog",
    "mocap": "other", "markers": "other",
}


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text.strip()) or "unnamed"


def _spec_from_info(info: Any) -> LiveStreamSpec:
    """Session stream description of an LSL stream (channel labels and units from its ``desc/channels``)."""
    n = int(info.channel_count())
    labels, units = [], []
    try:
        ch = info.desc().child("channels").child("channel")
        for _ in range(n):
            if ch.empty():
                break
            labels.append(ch.child_value("label") or "")
            units.append(ch.child_value("unit") or "")
            ch = ch.next_sibling()
    except Exception:
        labels, units = [], []
    if len(labels) != n or len(set(labels)) != n or not all(labels):
        labels = [f"ch{i}" for i in range(n)]
    if len(units) != n:
        units = [""] * n
    units = [u or "-" for u in units]
    stype = str(info.type())
    markers = int(info.channel_format()) == 3  # pylsl.cf_string
    meta = {"lsl_name": info.name(), "lsl_type": stype, "lsl_source_id": info.source_id(),
            "lsl_hostname": info.hostname(), "lsl_uid": info.uid(), "lsl_channel_format": int(info.channel_format()),
            "lsl_created_at": float(info.created_at()), "adapter": "lsl",
            "time_base": "sender's LSL local_clock() (s); see the clock entry for the offset to the session clock"}
    return LiveStreamSpec(name=f"lsl.{_safe(info.name())}", channels=tuple(labels), units=tuple(units),
                          modality=_MODALITY_BY_TYPE.get(stype.lower(), "other"),
                          clock=f"lsl:{_safe(info.source_id() or info.name())}",
                          nominal_rate_hz=float(info.nominal_srate()), meta=meta, markers=markers)


def find_lsl_streams(names: Sequence[str] | None = None, *, wait_s: float = 2.0) -> list[Any]:
    """LSL streams visible on the network (``pylsl.StreamInfo``; numeric and string), optionally only those named."""
    import pylsl

    deadline = time.monotonic() + wait_s
    found: dict[str, Any] = {}
    while True:
        for info in pylsl.resolve_streams(wait_time=min(1.0, max(0.1, deadline - time.monotonic()))):
            if names and info.name() not in names:
                continue
            found.setdefault(info.name(), info)
        if time.monotonic() >= deadline or (names and all(n in found for n in names)):
            break
    return list(found.values())


@dataclass
class RecordStats:
    """What a recording did (returned by `LslRecorder.run`)."""

    samples: dict[str, int] = field(default_factory=dict)
    gaps: dict[str, int] = field(default_factory=dict)
    flushes: int = 0
    duration_s: float = 0.0


@dataclass
class _Source:
    spec: LiveStreamSpec
    info: Any
    inlet: Any = None
    last_time_s: float = math.nan
    lost: bool = False
    next_correction_s: float = 0.0
    resume_pending: bool = False
    n_corrections: int = 0
    writer: Any = None


class LslRecorder:
    """Record LSL streams into a session's live file; `run` until stopped, then merge (optional).

    Parameters
    ----------
    session
        The session file (``S01.h5``); the live file is ``S01.h5.live``.
    infos
        The ``pylsl.StreamInfo`` of the streams to record (from `find_lsl_streams`).
    flush_interval_ms
        How often queued samples are written and flushed. A ``kill -9`` loses at most this much.
    correction_interval_s
        How often each inlet's clock offset (``time_correction``) is measured.
    follow_new
        Record streams that appear during the recording: ``True`` any stream, a list of names only those,
        ``False`` none. Each batch of new streams goes to a new live segment (``S01.h5.2.live``, ...).
    """

    def __init__(self, session: str | os.PathLike[str], infos: Sequence[Any], *, flush_interval_ms: float = 500.0,
                 correction_interval_s: float = 5.0, follow_new: bool | Sequence[str] = False) -> None:
        self.session = Path(session)
        self.infos = list(infos)
        self.follow_new = follow_new
        self.flush_interval_ms = flush_interval_ms
        self.correction_interval_s = correction_interval_s
        self._stop = False

    def stop(self) -> None:
        """Ask `run` to finish (thread-safe; also what SIGINT/SIGTERM do)."""
        self._stop = True

    def _open_inlet(self, src: _Source) -> None:
        import pylsl

        src.inlet = pylsl.StreamInlet(src.info, max_buflen=360, recover=False, processing_flags=pylsl.proc_none)
        src.inlet.open_stream(timeout=5.0)
        src.next_correction_s = 0.0

    def run(self, *, duration_s: float | None = None, on_flush: Callable[[int], None] | None = None) -> RecordStats:
        """Record until `stop`, SIGINT/SIGTERM or ``duration_s``; the live file stays for `finalize_live`."""
        import pylsl

        sources: dict[str, _Source] = {}
        for info in self.infos:
            src = _Source(spec=_spec_from_info(info), info=info)
            self._open_inlet(src)
            src.spec = _spec_from_info(src.inlet.info(timeout=5.0))  # the full description (channel labels)
            sources[src.spec.name] = src
        writer = LiveWriter(live_path(self.session), [s.spec for s in sources.values()],
                            flush_interval_ms=self.flush_interval_ms)
        writer.session_zero_s = pylsl.local_clock()
        writers = [writer]
        for src in sources.values():
            src.writer = writer
        stats = RecordStats(samples=dict.fromkeys(sources, 0), gaps=dict.fromkeys(sources, 0))
        resolver = pylsl.ContinuousResolver(forget_after=2.0)
        previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread: the caller stops us with stop()
                previous[sig] = signal.signal(sig, lambda *_: self.stop())
        t_start = time.monotonic()
        try:
            with contextlib.ExitStack() as stack:
                stack.enter_context(writer)
                next_flush = time.monotonic() + self.flush_interval_ms / 1000.0
                next_resolve = time.monotonic() + 1.0
                while not self._stop:
                    now = time.monotonic()
                    if duration_s is not None and now - t_start >= duration_s:
                        break
                    got = 0
                    for name, src in list(sources.items()):
                        if src.lost:
                            continue
                        writer = src.writer
                        try:
                            data, ts = self._pull(src, 4096)
                            if len(ts):
                                if src.resume_pending:
                                    writer.mark_resumed(name, float(ts[0]))
                                    src.resume_pending = False
                                self._store(src, ts, data)
                                src.last_time_s = float(ts[-1])
                                stats.samples[name] += len(ts)
                                got += len(ts)
                            if pylsl.local_clock() >= src.next_correction_s:
                                corr = src.inlet.time_correction(timeout=1.0)
                                writer.add_correction(name, pylsl.local_clock(), corr)
                                src.n_corrections += 1  # the first 5 every 0.5 s: an SD from the start
                                step = 0.5 if src.n_corrections < 5 else self.correction_interval_s
                                src.next_correction_s = pylsl.local_clock() + step
                        except pylsl.util.TimeoutError:
                            continue  # time_correction not answered yet: try again on the next round
                        except pylsl.util.LostError:
                            log.warning("LSL stream %s lost (sender gone); recording the others", name)
                            writer.mark_lost(name, src.last_time_s if math.isfinite(src.last_time_s)
                                             else pylsl.local_clock())
                            src.lost, src.inlet = True, None
                            stats.gaps[name] += 1
                            src.resume_pending = True
                    if now >= next_resolve and (self.follow_new or any(s.lost for s in sources.values())):
                        next_resolve = now + 0.5
                        self._pick_up(resolver, sources)
                        new = self._new_streams(resolver, sources)
                        if new:
                            seg = LiveWriter(segment_path(self.session, len(writers) + 1), [s.spec for s in new],
                                             flush_interval_ms=self.flush_interval_ms)
                            seg.session_zero_s = writers[0].session_zero_s
                            stack.enter_context(seg)
                            writers.append(seg)
                            for src in new:
                                src.writer = seg
                                sources[src.spec.name] = src
                                stats.samples[src.spec.name] = 0
                                stats.gaps[src.spec.name] = 0
                            log.warning("new LSL stream(s) %s recorded into %s", ", ".join(s.spec.name for s in new),
                                        seg.path.name)
                    if now >= next_flush:
                        for w in writers:
                            w.flush()
                        stats.flushes += 1
                        next_flush = now + self.flush_interval_ms / 1000.0
                        if on_flush is not None:
                            on_flush(stats.flushes)
                    if not got:
                        time.sleep(0.002)
                # pull what is already buffered before the final flush
                for name, src in sources.items():
                    if src.inlet is not None:
                        try:
                            data, ts = self._pull(src, 100000)
                        except pylsl.util.LostError:
                            continue
                        self._store(src, ts, data)
                        stats.samples[name] += len(ts)
                stats.flushes += 1
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            stats.duration_s = time.monotonic() - t_start
        return stats

    @staticmethod
    def _pull(src: _Source, max_samples: int) -> tuple[Any, Any]:
        if src.spec.markers:  # strings: lists of decoded str
            return src.inlet.pull_chunk(timeout=0.0, max_samples=max_samples, as_numpy=False)
        return src.inlet.pull_chunk(timeout=0.0, max_samples=max_samples, as_numpy=True)

    @staticmethod
    def _store(src: _Source, ts: Any, data: Any) -> None:
        if not len(ts):
            return
        if src.spec.markers:
            src.writer.append_markers(src.spec.name, ts, [" | ".join(str(v) for v in row) for row in data])
        else:
            src.writer.append(src.spec.name, ts, np.asarray(data, dtype=np.float64))

    def _new_streams(self, resolver: Any, sources: dict[str, _Source]) -> list[_Source]:
        """Streams visible now that are not recorded yet (and wanted), with their inlets open."""
        known = {s.info.name() for s in sources.values()}
        out = []
        for info in resolver.results():
            name = info.name()
            if name in known or (not isinstance(self.follow_new, bool) and name not in self.follow_new):
                continue
            src = _Source(spec=_spec_from_info(info), info=info)
            try:
                self._open_inlet(src)
                src.spec = _spec_from_info(src.inlet.info(timeout=5.0))
            except Exception as e:
                log.info("new LSL stream %s visible but not reachable yet (%s)", name, e)
                continue
            if src.spec.name in sources:
                continue
            known.add(name)
            out.append(src)
        return out

    def _pick_up(self, resolver: Any, sources: dict[str, _Source]) -> None:
        """Reopen lost streams that are visible again (same name, type and channel count)."""
        for info in resolver.results():
            for src in sources.values():
                if (src.lost and info.name() == src.info.name() and info.type() == src.info.type()
                        and info.channel_count() == src.info.channel_count()):
                    src.info = info
                    try:
                        self._open_inlet(src)
                    except Exception as e:
                        log.info("LSL stream %s visible but not reachable yet (%s)", src.spec.name, e)
                        src.inlet = None
                        continue
                    src.lost = False
                    log.warning("LSL stream %s is back; recording resumes", src.spec.name)


def record_lsl(session: str | os.PathLike[str], names: Sequence[str] | None = None, *, wait_s: float = 2.0,
               flush_interval_ms: float = 500.0, duration_s: float | None = None, finalize: bool = True,
               overwrite: bool = False, allow_late: bool = False) -> RecordStats:
    """Find LSL streams, record them until Ctrl-C / SIGTERM (or ``duration_s``), then merge into ``session``.

    Without ``names``, every stream is recorded, also those that appear later. With ``names``, all must be up at
    the start unless ``allow_late`` (the missing ones are then recorded when they appear).

    Raises
    ------
    LookupError
        If no (or not all of the named) LSL streams are found within ``wait_s``.
    """
    infos = find_lsl_streams(names, wait_s=wait_s)
    missing = sorted(set(names or ()) - {i.name() for i in infos})
    if allow_late and names and infos:
        missing = []
    if not infos or missing:
        what = f"the stream(s) {', '.join(missing)}" if missing else "any LSL stream"
        msg = (f"could not find {what} within {wait_s:g} s. Check that the senders run and are on the same "
               "network (and that no firewall blocks UDP multicast), or wait longer with --wait-s.")
        raise LookupError(msg)
    follow: bool | list[str] = True if not names else (list(names) if allow_late else False)
    rec = LslRecorder(session, infos, flush_interval_ms=flush_interval_ms, follow_new=follow)
    stats = rec.run(duration_s=duration_s)
    if finalize:
        finalize_live(session, overwrite=overwrite)
    return stats
