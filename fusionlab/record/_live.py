"""The live recording file: an HDF5 file in single-writer/multiple-reader (SWMR) mode, flushed every few 100 ms.

Why a separate file
    A session file changes only through `fusionlab.persist.transaction`, which copies the whole file per write:
    safe, but far too slow to flush a growing recording every half second. The recorder therefore writes
    ``<session>.live`` (e.g. ``S01.h5.live``) beside the session, opened with ``libver="latest"`` in SWMR mode,
    and merges it into the session with **one** atomic transaction when recording ends (`finalize_live`).

Layout (a fusionlab session layout, so `open_live` returns an ordinary `SessionReader`)::

    /                           attrs: format, format_version, live = 1, recorder, flush_interval_ms, started_at
    /streams/<name>/data        (n, n_channels) float64, resizable, NaN row = gap marker (sender lost)
    /streams/<name>/time        (n,) float64, the sender's LSL timestamps (its device clock, s)
    /streams/<name>/gaps        (g, 2) float64: [last timestamp before the loss, first timestamp after it]
                                (second column NaN while the sender is still gone)
    /streams/<name>/corrections (k, 2) float64: [recorder local_clock(), inlet.time_correction()] (s)
    /streams/<name>  attrs      as a session stream (modality, channels, units, frame, rate_hz = NaN, clock,
                                meta JSON with the LSL stream info) plus n_samples, updated at every flush
    /clocks/<clock>             attrs as a session clock entry (method "lsl"), updated at every flush
    /markers/<name>/time        (n,) float64, LSL timestamps of a string (marker) stream's samples
    /markers/<name>/text_end    (n,) int64, end offset of each marker's UTF-8 text in ``text``
    /markers/<name>/text        (m,) uint8, the UTF-8 texts one after the other (fixed-size bytes: SWMR cannot
                                store variable-length strings)
    /markers/<name>/corrections as for a stream; attrs clock, meta (JSON)

    Marker streams become events at the merge: ``Event(kind="marker", side="general", source="lsl",
    label=<the string>, time_s=<its LSL timestamp>, clock=<the sender's clock entry>)``, so
    ``SessionReader.events()`` gives them on the session clock. Multi-channel string samples are joined with
    ``" | "``.

Segments
    SWMR cannot add datasets to an open file, so a stream that appears after the recording started (a sender
    switched on later) is recorded into a new segment file ``<session>.<k>.live`` (k = 2, 3, ...) with the same
    session time zero. `finalize_live` merges every segment; `live_segments` lists them.

Guarantees
    HDF5 SWMR orders its metadata writes so that the file is readable at any instant, even while being written.
    Data are pulled from the LSL inlets continuously but written and flushed (``H5Fflush``) every
    ``flush_interval_ms``; a ``kill -9`` of the recorder or a power cut loses at most the samples received
    since the last flush, i.e. one flush interval (plus what is still in the OS write cache for a power cut).
    The file left behind is complete up to that flush; ``fusionlab record --finalize -o SESSION.h5`` merges it.

Readers
    A plain ``h5py.File(path, "r")`` refuses a file open for SWMR writing ("file is already open for write");
    readers must open it with ``swmr=True`` (`open_live` does), and re-read ``n_samples`` to see new data.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from fusionlab import __version__
from fusionlab.model import ClockEntry, Event, Session, SourceInfo, Stream
from fusionlab.persist import (
    SessionReader,
    _add_source,
    _json,
    _now,
    _write_array,
    _write_clock,
    init_root,
    add_events,
    transaction,
)

__all__ = ["LiveStreamSpec", "LiveWriter", "clock_from_corrections", "finalize_live", "live_path", "live_segments",
           "open_live", "segment_path"]

log = logging.getLogger(__name__)

LIVE_SUFFIX = ".live"
CHUNK_ROWS = 1024  # rows per HDF5 chunk of the growing datasets (1 s at 1 kHz)


def live_path(session: str | os.PathLike[str]) -> Path:
    """The live recording file of a session: ``S01.h5`` -> ``S01.h5.live`` (same folder)."""
    p = Path(session)
    return p.with_name(p.name + LIVE_SUFFIX)


def segment_path(session: str | os.PathLike[str], k: int) -> Path:
    """Live segment ``k`` of a session: 1 -> ``S01.h5.live``, k >= 2 -> ``S01.h5.<k>.live``."""
    p = Path(session)
    return live_path(p) if k <= 1 else p.with_name(f"{p.name}.{k}{LIVE_SUFFIX}")


def live_segments(session: str | os.PathLike[str]) -> list[Path]:
    """The live recording files of a session that exist, in segment order."""
    p = Path(session)
    out = [live_path(p)] if live_path(p).exists() else []
    extra = []
    for cand in p.parent.glob(f"{p.name}.*{LIVE_SUFFIX}"):
        mid = cand.name[len(p.name) + 1:-len(LIVE_SUFFIX)]
        if mid.isdigit():
            extra.append((int(mid), cand))
    return out + [c for _, c in sorted(extra)]


@dataclass(frozen=True)
class LiveStreamSpec:
    """One recorded stream: its name in the session, channels and what to store as provenance.

    Parameters
    ----------
    name
        Stream name in the session (no ``/``), e.g. ``"lsl.EMG"``.
    channels, units
        One label and one unit per channel.
    modality
        One of `fusionlab.model.MODALITIES`.
    clock
        Clock identifier (one per LSL source).
    nominal_rate_hz
        The sender's declared rate; 0 for irregular streams. Times are always stored explicitly.
    meta
        JSON-serialisable provenance (LSL name, type, source_id, hostname, ...).
    markers
        A string (marker) stream: its samples become events (see the module doc), ``channels`` are ignored.
    """

    name: str
    channels: tuple[str, ...]
    units: tuple[str, ...]
    modality: str = "other"
    clock: str = ""
    nominal_rate_hz: float = 0.0
    meta: Mapping[str, Any] = field(default_factory=dict)
    markers: bool = False


class LiveWriter:
    """Writer of a live SWMR recording file. All streams are declared up front (SWMR cannot add objects later).

    Parameters
    ----------
    path
        The live file (created; an existing one is an error, so an unmerged recording is never overwritten).
    specs
        The streams to record.
    flush_interval_ms
        Stored in the file's attributes (the recorder decides when to call `flush`).
    """

    def __init__(self, path: str | os.PathLike[str], specs: Sequence[LiveStreamSpec], *,
                 flush_interval_ms: float = 500.0) -> None:
        self.path = Path(path)
        self.specs = {s.name: s for s in specs}
        self.flush_interval_ms = flush_interval_ms
        self._f: h5py.File | None = None
        self._pending: dict[str, list[tuple[NDArray[np.float64], NDArray[np.float64]]]] = {
            s.name: [] for s in specs if not s.markers}
        self._pending_markers: dict[str, list[tuple[float, str]]] = {s.name: [] for s in specs if s.markers}
        self._n: dict[str, int] = {s.name: 0 for s in specs}

    # -------------------------------------------------------------------------------------------- lifecycle
    def open(self) -> LiveWriter:
        """Create the file and its datasets, then switch to SWMR mode.

        The file is built under a hidden name and appears under its own name only once it is in SWMR mode: a reader
        that opened it in between found it locked for writing (``BlockingIOError``, seen in 1 of ~12 CI runs).
        """
        if self.path.exists():
            msg = (f"{self.path}: a live recording file exists already (an earlier recording was not merged). "
                   "Merge it with 'fusionlab record --finalize -o SESSION.h5' or move it away.")
            raise FileExistsError(msg)
        starting = self.path.with_name(f".{self.path.name}.starting")
        starting.unlink(missing_ok=True)  # left by a recorder killed while starting: never held data
        f = h5py.File(starting, "w", libver="latest")
        init_root(f)  # a live file is a session file (readable by SessionReader) plus the recorder's extras
        f.attrs["live"] = 1
        f.attrs["recorder"] = "fusionlab record --lsl"
        f.attrs["flush_interval_ms"] = float(self.flush_interval_ms)
        f.attrs["last_flush_at"] = _now()
        f.attrs["session_zero_s"] = float(self.session_zero_s)
        f.create_group("markers")
        for s in self.specs.values():
            if s.clock and s.clock not in f["clocks"]:
                c = f["clocks"].create_group(s.clock)
                for key, value in (("offset_s", 0.0), ("offset_sd_s", math.inf), ("drift_ppm", 0.0),
                                   ("drift_sd_ppm", math.nan)):
                    c.attrs[key] = value
                c.attrs["method"] = "lsl"
                c.attrs["reference"] = "session"
                c.attrs["quality"] = "no time correction measured yet"
            if s.markers:
                g = f["markers"].create_group(s.name)
                g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
                g.create_dataset("text_end", shape=(0,), maxshape=(None,), dtype="i8", chunks=(256,))
                g.create_dataset("text", shape=(0,), maxshape=(None,), dtype="u1", chunks=(4096,))
                g.create_dataset("corrections", shape=(0, 2), maxshape=(None, 2), dtype="f8", chunks=(256, 2))
                g.attrs["clock"] = s.clock
                g.attrs["meta"] = json.dumps({**dict(s.meta), "nominal_rate_hz": s.nominal_rate_hz})
                continue
            n_ch = len(s.channels)
            g = f["streams"].create_group(s.name)
            g.create_dataset("data", shape=(0, n_ch), maxshape=(None, n_ch), dtype="f8",
                             chunks=(CHUNK_ROWS, max(1, n_ch)), fillvalue=np.nan)
            g.create_dataset("time", shape=(0,), maxshape=(None,), dtype="f8", chunks=(CHUNK_ROWS,))
            g.create_dataset("gaps", shape=(0, 2), maxshape=(None, 2), dtype="f8", chunks=(64, 2))
            g.create_dataset("corrections", shape=(0, 2), maxshape=(None, 2), dtype="f8", chunks=(256, 2))
            a = g.attrs
            a["modality"] = s.modality
            a["channels"] = json.dumps(list(s.channels))
            a["units"] = json.dumps(list(s.units))
            a["orig_units"] = json.dumps(list(s.units))
            a["components"] = "[]"
            a["frame"] = "none"
            a["rate_hz"] = math.nan  # times are explicit (LSL timestamps), nominal rate in meta
            a["start_s"] = 0.0
            a["n_samples"] = 0
            a["n_missing"] = 0
            a["clock"] = s.clock
            a["meta"] = json.dumps({**dict(s.meta), "nominal_rate_hz": s.nominal_rate_hz})
        f.swmr_mode = True
        starting.replace(self.path)  # the open handle follows the file (POSIX rename keeps the inode)
        self._f = f
        return self

    def __enter__(self) -> LiveWriter:
        return self.open() if self._f is None else self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush what is pending and close the file."""
        if self._f is not None:
            self.flush()
            self._f.close()
            self._f = None

    # -------------------------------------------------------------------------------------------- writing
    def _file(self) -> h5py.File:
        if self._f is None:
            msg = "the live file is not open; call open() first"
            raise RuntimeError(msg)
        return self._f

    def append(self, name: str, time_s: NDArray[np.float64], data: NDArray[np.float64]) -> None:
        """Queue samples (``time_s`` (n,) sender LSL clock s, ``data`` (n, n_channels)); written at `flush`."""
        if len(time_s):
            self._pending[name].append((np.asarray(time_s, dtype=np.float64),
                                        np.asarray(data, dtype=np.float64).reshape(len(time_s), -1)))

    def append_markers(self, name: str, time_s: Sequence[float], texts: Sequence[str]) -> None:
        """Queue marker strings (one per LSL timestamp, sender clock s) of a marker stream; written at `flush`."""
        self._pending_markers[name].extend(zip((float(t) for t in time_s), (str(x) for x in texts), strict=True))

    def _group(self, name: str) -> h5py.Group:
        f = self._file()
        return f["markers"][name] if self.specs[name].markers else f["streams"][name]

    def mark_lost(self, name: str, last_time_s: float) -> None:
        """The sender is gone: append a NaN row just after its last sample and open a gap (numeric streams)."""
        spec = self.specs[name]
        if spec.markers:
            return
        step = 1.0 / spec.nominal_rate_hz if spec.nominal_rate_hz > 0 else 1e-6
        self.append(name, np.array([last_time_s + step]), np.full((1, len(spec.channels)), np.nan))
        g = self._file()["streams"][name]["gaps"]
        g.resize((g.shape[0] + 1, 2))
        g[-1] = (last_time_s, np.nan)

    def mark_resumed(self, name: str, first_time_s: float) -> None:
        """The sender is back: close the open gap."""
        if self.specs[name].markers:
            return
        g = self._file()["streams"][name]["gaps"]
        if g.shape[0] and math.isnan(g[-1, 1]):
            g[-1] = (g[-1, 0], first_time_s)

    def add_correction(self, name: str, local_time_s: float, correction_s: float) -> None:
        """Store one ``inlet.time_correction()`` and update the stream's clock entry."""
        g = self._group(name)
        c = g["corrections"]
        c.resize((c.shape[0] + 1, 2))
        c[-1] = (local_time_s, correction_s)
        clock = self.specs[name].clock
        if clock:
            entry = clock_from_corrections(clock, c[()], self.session_zero_s)
            ca = self._file()["clocks"][clock].attrs
            for key in ("offset_s", "offset_sd_s", "drift_ppm", "drift_sd_ppm"):
                ca[key] = float(getattr(entry, key))
            ca["quality"] = entry.quality

    session_zero_s: float = 0.0
    """Recorder ``local_clock()`` at the start of recording: session time 0."""

    def flush(self) -> int:
        """Write the queued samples and flush the file (SWMR readers then see them). Returns rows written."""
        f = self._file()
        written = 0
        for name, parts in self._pending.items():
            if not parts:
                continue
            t = np.concatenate([p[0] for p in parts])
            d = np.concatenate([p[1] for p in parts])
            parts.clear()
            g = f["streams"][name]
            n0 = self._n[name]
            n1 = n0 + len(t)
            g["data"].resize((n1, d.shape[1]))
            g["time"].resize((n1,))
            g["data"][n0:n1] = d
            g["time"][n0:n1] = t
            self._n[name] = n1
            g.attrs["n_samples"] = n1
            g.attrs["n_missing"] = int(g.attrs["n_missing"]) + int(np.count_nonzero(np.isnan(d)))
            written += len(t)
        for name, items in self._pending_markers.items():
            if not items:
                continue
            g = f["markers"][name]
            enc = [text.encode("utf-8") for _, text in items]
            n0, n1 = g["time"].shape[0], g["time"].shape[0] + len(items)
            m0 = g["text"].shape[0]
            ends = m0 + np.cumsum([len(b) for b in enc], dtype=np.int64)
            blob = np.frombuffer(b"".join(enc), dtype=np.uint8)
            g["text"].resize((m0 + len(blob),))
            if len(blob):
                g["text"][m0:] = blob
            g["text_end"].resize((n1,))
            g["text_end"][n0:n1] = ends
            g["time"].resize((n1,))  # last: a reader that sees a time sees its text
            g["time"][n0:n1] = np.array([t for t, _ in items], dtype=np.float64)
            items.clear()
            written += n1 - n0
        f.attrs["last_flush_at"] = _now()
        f.flush()
        return written


def clock_from_corrections(clock: str, corrections: NDArray[np.float64], session_zero_s: float) -> ClockEntry:
    """Clock entry of an LSL sender from its time corrections.

    ``inlet.time_correction()`` is the value to add to the sender's timestamps to get the recorder's
    ``local_clock()``; session time 0 is the recorder's clock at the start of recording (``session_zero_s``), so
    ``t_session = t_sender + correction - session_zero_s``. With at least 3 corrections spanning 20 s or more, a
    straight line ``correction = a + b * t_sender`` gives the drift (``b``, ppm) and the offset; otherwise the
    mean correction is the offset and the drift is 0 (``drift_sd_ppm`` NaN). ``offset_sd_s`` is the spread
    (sample SD) of the corrections around that model, never below 1 µs (LSL's own resolution is ~ tens of µs).

    Parameters
    ----------
    corrections
        ``(k, 2)``: recorder local time (s) and correction (s) per measurement.
    """
    c = np.asarray(corrections, dtype=np.float64).reshape(-1, 2)
    c = c[np.isfinite(c).all(axis=1)]
    if len(c) == 0:
        return ClockEntry(clock=clock, offset_s=0.0, offset_sd_s=math.inf, method="lsl",
                          quality="no time correction measured")
    local, corr = c[:, 0], c[:, 1]
    sender = local - corr  # the sender's clock at each measurement
    if len(c) >= 3 and float(sender.max() - sender.min()) >= 20.0:
        t_ref = float(sender.mean())
        b, a_ref = np.polyfit(sender - t_ref, corr, 1)
        resid = corr - (a_ref + b * (sender - t_ref))
        a = a_ref - b * t_ref  # correction = a + b * t_sender
        sd = max(float(np.std(resid, ddof=2)) if len(c) > 2 else 0.0, 1e-6)
        span = float(sender.max() - sender.min())
        drift_sd_ppm = sd / (span * math.sqrt(len(c) / 12.0)) * 1e6
        return ClockEntry(clock=clock, offset_s=a - session_zero_s, offset_sd_s=sd, drift_ppm=float(b) * 1e6,
                          drift_sd_ppm=drift_sd_ppm, method="lsl", reference="session",
                          quality=f"{len(c)} LSL time corrections over {span:.0f} s, residual SD {sd * 1e6:.0f} µs")
    sd = max(float(np.std(corr, ddof=1)) if len(c) > 1 else 0.0, 1e-6)
    return ClockEntry(clock=clock, offset_s=float(corr.mean()) - session_zero_s, offset_sd_s=sd, drift_ppm=0.0,
                      drift_sd_ppm=math.nan, method="lsl", reference="session",
                      quality=f"{len(c)} LSL time correction(s), SD {sd * 1e6:.0f} µs")


# ------------------------------------------------------------------------------------------------ reading
class LiveSessionReader(SessionReader):
    """A `SessionReader` on a live file, opened in SWMR read mode. Call `refresh` to see newly flushed data."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            msg = f"{self.path}: no such live recording file"
            raise FileNotFoundError(msg)
        self._f = h5py.File(self.path, "r", libver="latest", swmr=True)
        self.live = bool(self._f.attrs.get("live", 0))

    def stream_info(self, name: str) -> Any:
        """As `SessionReader.stream_info`, with the sample count from the datasets' current extent.

        SWMR readers see datasets grow (after `refresh`) but not attribute changes, so ``n_samples`` comes from
        the shape of ``time`` (and ``data``), not from the attribute.
        """
        g = self._group(name)
        n = int(min(g["time"].shape[0], g["data"].shape[0]))
        info = super().stream_info(name)
        t = g["time"]
        info["n_samples"] = n
        info["device_start_s"] = float(t[0]) if n else 0.0
        info["duration_s"] = float(t[n - 1] - t[0]) if n else 0.0
        entry = self.clocks().get(info["clock"])
        info["start_s"] = entry.to_session(info["device_start_s"]) if entry is not None else info["device_start_s"]
        return info

    def refresh(self) -> None:
        """Re-read metadata written since opening (sample counts, clock entries)."""
        self._f.flush()  # no-op for a reader, kept for symmetry
        for name in self.stream_names:
            g = self._f["streams"][name]
            for ds in ("data", "time", "gaps", "corrections"):
                if ds in g:
                    g[ds].refresh()
        for name in self._f.get("markers", {}):
            g = self._f["markers"][name]
            for ds in ("time", "text_end", "text", "corrections"):
                g[ds].refresh()

    def clocks(self) -> dict[str, ClockEntry]:
        """Clock entries computed from the time corrections flushed so far (SWMR readers see no attribute update)."""
        return _live_clocks(self._f)

    def events(self, source: str | None = None, *, kind: str | None = None, side: str | None = None,
               clock: str = "session") -> list[Event]:
        """Events recorded so far: LSL markers (source ``"lsl"``) and lost / resumed senders (``"record"``)."""
        evs: list[Event] = []
        for name in self.stream_names:
            g = self._f["streams"][name]
            evs += _gap_events(name, str(g.attrs["clock"]), g["gaps"][()])
        for name in self._f.get("markers", {}):
            evs += _marker_events(name, self._f["markers"][name])
        clocks = self.clocks()
        out = []
        for e in evs:
            if (source is not None and e.source != source) or (kind is not None and e.kind != kind) or (
                    side is not None and e.side != side):
                continue
            if clock == "session" and e.clock in clocks:
                e = Event(**{**e.__dict__, "time_s": clocks[e.clock].to_session(e.time_s), "clock": "session"})
            out.append(e)
        return sorted(out, key=lambda e: e.time_s)


def open_live(path: str | os.PathLike[str]) -> LiveSessionReader:
    """Open a live recording file (``S01.h5.live``, or a session path whose live file exists) for reading."""
    p = Path(path)
    if not p.name.endswith(LIVE_SUFFIX) and live_path(p).exists():
        p = live_path(p)
    return LiveSessionReader(p)


def _gap_events(name: str, clock: str, gaps: NDArray[np.float64]) -> list[Event]:
    out = []
    for lost, back in np.asarray(gaps).reshape(-1, 2):
        if math.isfinite(lost):
            out.append(Event(time_s=float(lost), kind="stream_lost", side="general", source="record",
                             label=f"{name}: sender lost", clock=clock, detector="fusionlab record"))
        if math.isfinite(back):
            out.append(Event(time_s=float(back), kind="stream_resumed", side="general", source="record",
                             label=f"{name}: sender back", clock=clock, detector="fusionlab record"))
    return out


def _marker_events(name: str, g: h5py.Group) -> list[Event]:
    """The events of a marker group (the texts of the samples a reader can see completely)."""
    n = int(min(g["time"].shape[0], g["text_end"].shape[0]))
    if n == 0:
        return []
    t = g["time"][:n]
    ends = g["text_end"][:n]
    blob = g["text"][: int(ends[-1])].tobytes() if ends[-1] > 0 else b""
    starts = np.concatenate([[0], ends[:-1]])
    clock = str(g.attrs["clock"])
    detector = f"fusionlab record ({name})"
    return [Event(time_s=float(t[i]), kind="marker", side="general", source="lsl",
                  label=blob[int(starts[i]):int(ends[i])].decode("utf-8", errors="replace"), clock=clock,
                  detector=detector) for i in range(n)]


def _live_clocks(f: h5py.File) -> dict[str, ClockEntry]:
    """Clock entries from the stored time corrections (attributes are not visible to SWMR readers)."""
    zero = float(f.attrs.get("session_zero_s", 0.0))
    out: dict[str, ClockEntry] = {}
    for root in ("streams", "markers"):
        for name in f.get(root, {}):
            g = f[root][name]
            clock = str(g.attrs["clock"])
            if clock and clock not in out:
                out[clock] = clock_from_corrections(clock, g["corrections"][()], zero)
    return out


def _non_increasing(t_ds: h5py.Dataset, n: int, block: int = 1 << 16) -> NDArray[np.int64]:
    """Indices of the samples whose timestamp is not above every earlier one (read block by block)."""
    drop = []
    run = -math.inf
    for i0 in range(0, n, block):
        t = t_ds[i0:min(n, i0 + block)]
        prev = np.maximum.accumulate(np.concatenate([[run], t]))[:-1]
        bad = np.flatnonzero(~(t > prev))
        if len(bad):
            drop.append(bad + i0)
        run = max(run, float(np.nanmax(t))) if np.isfinite(t).any() else run
    return np.concatenate(drop) if drop else np.zeros(0, dtype=np.int64)


class _KeptRows:
    """Rows of an HDF5 dataset without the dropped ones, read lazily by slice (what `_write_array` needs)."""

    def __init__(self, ds: h5py.Dataset, n: int, drop: NDArray[np.int64]) -> None:
        self.ds, self.n, self.drop = ds, n, drop
        self._kept_before_drop = drop - np.arange(len(drop))  # kept rows before each dropped row
        self.shape = (n - len(drop), *ds.shape[1:])

    def _input(self, o: int) -> int:
        return o + int(np.searchsorted(self._kept_before_drop, o, side="right"))

    def __getitem__(self, sl: slice) -> NDArray[Any]:
        o0, o1, _ = sl.indices(self.shape[0])
        if o1 <= o0:
            return self.ds[0:0]
        i0, i1 = self._input(o0), self._input(o1 - 1) + 1
        rows = self.ds[i0:i1]
        d = self.drop[(self.drop >= i0) & (self.drop < i1)]
        return np.delete(rows, d - i0, axis=0) if len(d) else rows


def _merge_live_into(f: h5py.File, live: Path, *, overwrite: bool) -> list[str]:
    """Copy one live file into an open session (inside a transaction), stream by stream and block by block.

    Memory: a few ``CHUNK_TARGET_BYTES`` blocks per stream (plus the indices of dropped samples), never the whole
    recording.
    """
    from fusionlab.exceptions import ValidationError

    names = []
    with h5py.File(live, "r", libver="latest", swmr=True) as src:
        started = str(src.attrs.get("created_at", ""))
        existing = [n for n in src["streams"] if n in f["streams"]]
        if existing and not overwrite:
            msg = (f"the session already has stream(s) {', '.join(existing)}; pass overwrite=True "
                   "(CLI: --overwrite) to replace them.")
            raise ValidationError(msg)
        clocks = _live_clocks(src)
        for entry in clocks.values():
            if entry.clock not in f["clocks"] or overwrite:
                _write_clock(f["clocks"], entry)
        events: list[Event] = []
        for name in src["streams"]:
            g = src["streams"][name]
            a = g.attrs
            n = int(min(g["time"].shape[0], g["data"].shape[0]))  # the extent, not the attribute (SWMR)
            drop = _non_increasing(g["time"], n)
            if len(drop):
                log.warning("%s: %d samples with non-increasing LSL timestamps dropped", name, len(drop))
            if name in f["streams"]:
                del f["streams"][name]
            out = f["streams"].create_group(name)
            n_missing = _write_array(out, "data", _KeptRows(g["data"], n, drop), "float64")  # type: ignore[arg-type]
            _write_array(out, "time", _KeptRows(g["time"], n, drop), "float64")  # type: ignore[arg-type]
            oa = out.attrs
            for key in ("modality", "channels", "units", "orig_units", "components", "frame", "clock"):
                oa[key] = a[key]
            oa["rate_hz"] = math.nan
            oa["start_s"] = 0.0
            oa["n_samples"] = n - len(drop)
            oa["n_missing"] = n_missing
            oa["meta"] = _json({**json.loads(a["meta"]), "dropped_non_increasing": len(drop),
                                "recording_started_at": started, "live_file": live.name})
            events += _gap_events(name, str(a["clock"]), g["gaps"][()])
            names.append(name)
        for name in src.get("markers", ()):
            events += _marker_events(name, src["markers"][name])
        if events:
            add_events(f, events, replace_detector=None)
        _add_source(f, SourceInfo(path=live.name, sha256="", adapter="lsl", adapter_version=__version__,
                                  options={"flush_interval_ms": float(src.attrs.get("flush_interval_ms", 0.0))},
                                  metadata={"recording_started_at": started}))
    return names


def read_live(path: str | os.PathLike[str]) -> Session:
    """Read a live recording file (even one left by a killed recorder) into a `Session`.

    Samples whose timestamp does not increase (a sender that restarted its clock, overlapping chunks) are
    dropped with a warning in the log and counted in the stream's ``meta["dropped_non_increasing"]``.
    """
    p = Path(path)
    streams, events, clocks = [], [], {}
    with h5py.File(p, "r", libver="latest", swmr=True) as f:
        started = str(f.attrs.get("created_at", ""))
        zero = float(f.attrs.get("session_zero_s", 0.0))
        for name in f["streams"]:
            g = f["streams"][name]
            a = g.attrs
            n = int(min(g["time"].shape[0], g["data"].shape[0]))  # the extent, not the attribute (SWMR)
            t = g["time"][:n]
            d = g["data"][:n]
            keep = np.ones(n, dtype=bool)
            if n > 1:  # keep samples strictly after the running maximum
                run = np.maximum.accumulate(t)
                keep[1:] = t[1:] > run[:-1]
            dropped = int(n - keep.sum())
            if dropped:
                log.warning("%s: %d samples with non-increasing LSL timestamps dropped", name, dropped)
            meta = {**json.loads(a["meta"]), "dropped_non_increasing": dropped, "recording_started_at": started}
            clock = str(a["clock"])
            streams.append(Stream(name=name, modality=str(a["modality"]), data=d[keep],
                                  channels=tuple(json.loads(a["channels"])), units=tuple(json.loads(a["units"])),
                                  time_s=t[keep], clock=clock, meta=meta, rate_hz=None))
            events += _gap_events(name, clock, g["gaps"][()])
            if clock:
                clocks[clock] = clock_from_corrections(clock, g["corrections"][()], zero)
        for name in f.get("markers", ()):
            events += _marker_events(name, f["markers"][name])
            clock = str(f["markers"][name].attrs["clock"])
            if clock:
                clocks[clock] = clock_from_corrections(clock, f["markers"][name]["corrections"][()], zero)
    info = SourceInfo(path=p.name, sha256="", adapter="lsl", adapter_version=__version__,
                      options={"flush_interval_ms": None}, metadata={"recording_started_at": started})
    return Session(streams=tuple(streams), events=tuple(events), clocks=clocks, sources=(info,))


def finalize_live(session: str | os.PathLike[str], *, remove_live: bool = True,
                  overwrite: bool = False) -> list[str]:
    """Merge a session's live recording file(s) into the session with one atomic transaction.

    Every segment (`live_segments`: ``S01.h5.live``, ``S01.h5.2.live``, ...) is copied block by block (memory
    does not grow with the recording's length); numeric streams become streams, marker streams events, gaps
    ``stream_lost`` / ``stream_resumed`` events. The session file is created when it does not exist. Returns the
    names of the streams written.

    Raises
    ------
    FileNotFoundError
        If there is no live file for this session.
    ValidationError
        If the session has streams of the same names already (and ``overwrite`` is False).
    """
    segments = live_segments(session)
    if not segments:
        msg = f"{live_path(session)}: no live recording file to merge into {session}"
        raise FileNotFoundError(msg)
    names: list[str] = []
    with transaction(session, create=True) as f:
        for seg in segments:
            names += _merge_live_into(f, seg, overwrite=overwrite)
    if remove_live:
        for seg in segments:
            seg.unlink()
    return names
