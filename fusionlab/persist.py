"""HDF5 session files (h5py): atomic writes, lazy reads. The layout is documented in docs/session-format.md.

Writing
    Every change goes through `transaction`: the current file is copied to a hidden temporary file beside it,
    the change is written there, flushed and fsync'ed, and the temporary file atomically replaces the session
    (``os.replace``). A writer killed at any moment (even ``kill -9``) leaves the previous valid file. One writer
    at a time: an advisory lock (``fcntl.flock`` on a hidden ``.<name>.lock`` file) serialises writers.
Reading
    `open_session` checks that the file is a fusionlab session of a version this code can read, and gives lazy
    access: data are read from disk only for the streams and the time window asked for.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from numpy.typing import NDArray

from fusionlab import __version__
from fusionlab.exceptions import SessionFormatError, ValidationError
from fusionlab.model import ClockEntry, Event, Session, SourceInfo, Stream

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "SessionReader",
    "StreamInfo",
    "load_session",
    "open_session",
    "save_session",
    "transaction",
]

FORMAT_NAME = "fusionlab-session"
FORMAT_VERSION = 1
CHUNK_TARGET_BYTES = 1 << 20  # ~1 MiB chunks: fast whole-window reads, good gzip ratio
GZIP_LEVEL = 1  # level 1: ~3x faster than 4 for <2 % larger files on biomechanical signals
try:  # ISA-L writes the same standard zlib stream as zlib, about 8x faster (python-isal)
    from isal.isal_zlib import compress as _ZLIB_COMPRESS  # noqa: N812
except ImportError:  # pragma: no cover - isal is a dependency, zlib is the fallback
    from zlib import compress as _ZLIB_COMPRESS  # noqa: N812
SESSION_GROUPS = ("streams", "clocks", "events", "derived", "sources")
"""Top-level groups of every session file."""
_EVENT_FIELDS = ("time_s", "sd_s", "kind", "side", "label", "clock", "detector")


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _json(obj: Any) -> str:
    def default(o: Any) -> Any:
        if isinstance(o, np.generic):
            return o.item()
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        msg = f"cannot store {type(o).__name__} in session metadata"
        raise TypeError(msg)

    return json.dumps(obj, default=default, allow_nan=True, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------------- transactions
def _lock_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def _writer_lock(path: Path) -> Iterator[None]:
    import fcntl

    lock = _lock_path(path)
    with lock.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files left by writers that were killed (their pid no longer runs)."""
    for tmp in path.parent.glob(f".{path.name}.tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
        except (ValueError, IndexError):
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)



def init_root(f: h5py.File) -> None:
    """Write the root attributes and the top-level groups of a new, empty session file."""
    f.attrs["format"] = FORMAT_NAME
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["created_with"] = f"fusionlab {__version__}"
    f.attrs["created_at"] = _now()
    f.attrs["subject"] = ""
    f.attrs["session_date"] = ""
    f.attrs["metadata"] = "{}"
    for group in SESSION_GROUPS:
        f.create_group(group)

@contextlib.contextmanager
def transaction(path: str | os.PathLike[str], *, create: bool = False) -> Iterator[h5py.File]:
    """Open a session for writing; the change becomes visible atomically when the block ends without error.

    Parameters
    ----------
    path
        Session file.
    create
        Create the file when it does not exist (with the format attributes). When False, a missing file is an
        error.

    Yields
    ------
    h5py.File
        The working copy, opened read-write. Do not keep references to it after the block.

    Raises
    ------
    SessionFormatError
        If an existing file is not a fusionlab session or is of a newer format version.
    FileNotFoundError
        If the file does not exist and ``create`` is False.
    """
    path = Path(path).absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with _writer_lock(path):
        _remove_stale_temporaries(path)
        exists = path.exists()
        if not exists and not create:
            msg = f"{path}: no such session file"
            raise FileNotFoundError(msg)
        if exists:
            _check_format(path)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if exists:
                shutil.copyfile(path, tmp)
            with h5py.File(tmp, "r+" if exists else "w") as f:
                if not exists:
                    init_root(f)
                yield f
                f.attrs["modified_with"] = f"fusionlab {__version__}"
                f.attrs["modified_at"] = _now()
            with tmp.open("rb+") as fh:
                os.fsync(fh.fileno())
            if exists:
                shutil.copymode(path, tmp)
            Path(tmp).replace(path)
            _fsync_dir(path.parent)
        finally:
            tmp.unlink(missing_ok=True)


def _check_format(path: Path) -> None:
    try:
        with h5py.File(path, "r") as f:
            _check_root(f, path)
    except OSError as e:
        msg = (f"not a fusionlab session: it is not an HDF5 file or it is damaged ({e}). "
               "Create sessions with 'fusionlab ingest SOURCE -o SESSION.h5'.")
        raise SessionFormatError(path, msg) from None


def _check_root(f: h5py.File, path: Path) -> None:
    fmt = f.attrs.get("format")
    if isinstance(fmt, bytes):
        fmt = fmt.decode()
    if fmt != FORMAT_NAME:
        msg = (f"not a fusionlab session: the HDF5 file has no format={FORMAT_NAME!r} attribute "
               f"(found {fmt!r}). Create sessions with 'fusionlab ingest SOURCE -o SESSION.h5'.")
        raise SessionFormatError(path, msg)
    version = int(f.attrs.get("format_version", -1))
    if version > FORMAT_VERSION:
        msg = (f"session format version {version} was written by a newer fusionlab "
               f"({f.attrs.get('modified_with', f.attrs.get('created_with', '?'))}); this fusionlab "
               f"({__version__}) reads versions up to {FORMAT_VERSION}. Upgrade fusionlab to read it.")
        raise SessionFormatError(path, msg)
    if version < 1:
        msg = f"invalid session format version {version!r}."
        raise SessionFormatError(path, msg)


# ---------------------------------------------------------------------------------------------------- writing
def _deflate(buffer: NDArray[np.uint8], level: int) -> bytes:
    """zlib stream of a buffer (what HDF5's deflate filter stores), with ISA-L when installed (8x faster)."""
    return _ZLIB_COMPRESS(buffer, level)


def _write_array(group: h5py.Group, name: str, array: NDArray[Any], dtype: str) -> int:
    """Write ``array`` as a chunked, gzip+shuffle compressed dataset; return its number of NaN values.

    The array is read block by block (it may be a non-contiguous view or a memory map): no full copy is made.
    Blocks are shuffled and compressed in a thread pool (zlib releases the GIL) and written with
    ``write_direct_chunk``, so the file is a standard gzip+shuffle dataset that any HDF5 reader opens.
    """
    np_dtype = np.dtype(dtype)
    shape = tuple(int(x) for x in array.shape)
    row_items = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if shape[0] == 0 or row_items == 0:
        group.create_dataset(name, shape=shape, dtype=np_dtype)
        return 0
    rows = int(max(1, min(shape[0], CHUNK_TARGET_BYTES // (row_items * np_dtype.itemsize))))
    chunks = (rows, *shape[1:])
    fill = np.nan if np_dtype.kind == "f" else 0
    ds = group.create_dataset(name, shape=shape, dtype=np_dtype, chunks=chunks, compression="gzip",
                              compression_opts=GZIP_LEVEL, shuffle=True, fillvalue=fill)
    itemsize = np_dtype.itemsize
    zeros = (0,) * (len(shape) - 1)

    def encode(start: int) -> tuple[int, bytes, int]:
        n_valid = min(rows, shape[0] - start)
        block = np.full((rows, *shape[1:]), fill, dtype=np_dtype)  # HDF5 edge chunks are stored at full size
        block[:n_valid] = array[start:start + n_valid]  # the only copy: dtype conversion and any transposition
        n_nan = int(np.count_nonzero(np.isnan(block[:n_valid]))) if np_dtype.kind == "f" else 0
        shuffled = np.empty((itemsize, block.size), dtype=np.uint8)  # HDF5 shuffle filter: byte planes
        shuffled[...] = block.view(np.uint8).reshape(-1, itemsize).T
        return start, _deflate(shuffled, GZIP_LEVEL), n_nan

    n_missing = 0
    starts = range(0, shape[0], rows)
    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        window = 8  # bounded read-ahead: at most `window` blocks in memory at once
        pending: list[Any] = []
        for start in starts:
            pending.append(pool.submit(encode, start))
            if len(pending) >= window:
                s, payload, n_nan = pending.pop(0).result()
                ds.id.write_direct_chunk((s, *zeros), payload, filter_mask=0)
                n_missing += n_nan
        for fut in pending:
            s, payload, n_nan = fut.result()
            ds.id.write_direct_chunk((s, *zeros), payload, filter_mask=0)
            n_missing += n_nan
    return n_missing


def write_stream(streams_group: h5py.Group, stream: Stream) -> None:
    """Write one stream into ``/streams`` (the name must be free)."""
    g = streams_group.create_group(stream.name)
    n_missing = _write_array(g, "data", stream.data, stream.storage_dtype)
    if stream.time_s is not None:
        _write_array(g, "time", stream.time_s, "float64")
    if stream.confidence is not None:
        _write_array(g, "confidence", stream.confidence, "float32")
    a = g.attrs
    a["modality"] = stream.modality
    a["channels"] = _json(list(stream.channels))
    a["units"] = _json(list(stream.units))
    a["orig_units"] = _json(list(stream.orig_units))
    a["components"] = _json(list(stream.components))
    a["frame"] = stream.frame
    a["rate_hz"] = math.nan if stream.rate_hz is None else float(stream.rate_hz)
    a["start_s"] = float(stream.start_s)
    a["n_samples"] = stream.n_samples
    a["n_missing"] = n_missing
    a["clock"] = stream.clock
    a["meta"] = _json(dict(stream.meta))


def _write_clock(clocks_group: h5py.Group, entry: ClockEntry) -> None:
    if entry.clock in clocks_group:
        del clocks_group[entry.clock]
    g = clocks_group.create_group(entry.clock)
    for key in ("offset_s", "offset_sd_s", "drift_ppm", "drift_sd_ppm"):
        g.attrs[key] = float(getattr(entry, key))
    for key in ("method", "reference", "quality"):
        g.attrs[key] = str(getattr(entry, key))


def _read_events_group(g: h5py.Group, source: str) -> list[Event]:
    n = g["time_s"].shape[0]
    cols = {k: g[k][()] for k in _EVENT_FIELDS}
    out = []
    for i in range(n):
        def text(k: str, i: int = i) -> str:
            v = cols[k][i]
            return v.decode() if isinstance(v, bytes) else str(v)

        out.append(Event(time_s=float(cols["time_s"][i]), sd_s=float(cols["sd_s"][i]), kind=text("kind"),
                         side=text("side"), source=source, label=text("label"), clock=text("clock"),
                         detector=text("detector")))
    return out


def _write_events(events_group: h5py.Group, source: str, events: Sequence[Event]) -> None:
    if source in events_group:
        del events_group[source]
    g = events_group.create_group(source)
    str_dt = h5py.string_dtype()
    g.create_dataset("time_s", data=np.array([e.time_s for e in events], dtype=np.float64))
    g.create_dataset("sd_s", data=np.array([e.sd_s for e in events], dtype=np.float64))
    for key in ("kind", "side", "label", "clock", "detector"):
        g.create_dataset(key, data=np.array([getattr(e, key) for e in events], dtype=object), dtype=str_dt)
    g.attrs["time_unit"] = "s"


def add_events(f: h5py.File, events: Sequence[Event], *, replace_detector: str | None = None) -> None:
    """Append events to their source tables inside a `transaction`.

    Parameters
    ----------
    replace_detector
        Drop existing events of the same sources whose ``detector`` equals this before appending (re-ingesting
        a file replaces its annotations instead of duplicating them).
    """
    by_source: dict[str, list[Event]] = {}
    for e in events:
        by_source.setdefault(e.source, []).append(e)
    for source, new in by_source.items():
        old = _read_events_group(f["events"][source], source) if source in f["events"] else []
        if replace_detector is not None:
            old = [e for e in old if e.detector != replace_detector]
        merged = sorted(old + new, key=lambda e: (e.clock, e.time_s))
        _write_events(f["events"], source, merged)


def _add_source(f: h5py.File, info: SourceInfo) -> None:
    g = f["sources"]
    key = info.sha256[:16] if info.sha256 else f"source{len(g)}"
    if key in g:
        del g[key]
    s = g.create_group(key)
    s.attrs["path"] = info.path
    s.attrs["sha256"] = info.sha256
    s.attrs["adapter"] = info.adapter
    s.attrs["adapter_version"] = info.adapter_version
    s.attrs["options"] = _json(dict(info.options))
    s.attrs["size_bytes"] = int(info.size_bytes)
    s.attrs["metadata"] = _json(dict(info.metadata))
    s.attrs["ingested_at"] = info.ingested_at or _now()


def write_session_into(f: h5py.File, session: Session, *, overwrite: bool = False) -> list[str]:
    """Add a session's streams, clocks, events and sources to an open file (inside a `transaction`).

    Returns
    -------
    list of str
        Names of the streams written.

    Raises
    ------
    ValidationError
        If a stream name exists already and ``overwrite`` is False, or subject or date conflict.
    """
    existing = [s.name for s in session.streams if s.name in f["streams"]]
    if existing and not overwrite:
        msg = (f"the session already has stream(s) {', '.join(existing)}; pass overwrite=True "
               "(CLI: --overwrite) to replace them, or ingest under another --prefix.")
        raise ValidationError(msg)
    _set_subject_and_date(f, session.subject, session.session_date)
    if session.metadata:
        meta = json.loads(f.attrs["metadata"])
        meta.update(session.metadata)
        f.attrs["metadata"] = _json(meta)
    for name in existing:
        del f["streams"][name]
    for entry in session.clocks.values():
        if entry.clock not in f["clocks"] or overwrite:
            _write_clock(f["clocks"], entry)
    for stream in session.streams:
        write_stream(f["streams"], stream)
    detectors = {e.detector for e in session.events}
    for det in detectors:
        add_events(f, [e for e in session.events if e.detector == det], replace_detector=det if overwrite else None)
    for info in session.sources:
        _add_source(f, info)
    return [s.name for s in session.streams]


def _set_subject_and_date(f: h5py.File, subject: str, date: str) -> None:
    for key, value in (("subject", subject), ("session_date", date)):
        if not value:
            continue
        current = f.attrs.get(key, "")
        if current and current != value:
            msg = (f"the session's {key} is {current!r}; refusing to add data recorded for {value!r}. "
                   "Use a separate session file for each subject and date.")
            raise ValidationError(msg)
        f.attrs[key] = value


def save_session(session: Session, path: str | os.PathLike[str], *, overwrite: bool = False) -> list[str]:
    """Add ``session`` to the session file at ``path`` (created if needed), atomically.

    Returns the names of the streams written. See `write_session_into` for the rules.
    """
    with transaction(path, create=True) as f:
        return write_session_into(f, session, overwrite=overwrite)


def merge_file_into(f: h5py.File, staging: str | os.PathLike[str], *, overwrite: bool = False) -> list[str]:
    """Copy the streams, clocks, events and sources of a staging session file into ``f`` (inside a transaction).

    Data chunks are copied as they are (no decompression), so merging is fast and needs little memory.
    """
    with h5py.File(staging, "r") as src:
        _check_root(src, Path(staging))
        names = list(src["streams"])
        existing = [n for n in names if n in f["streams"]]
        if existing and not overwrite:
            msg = (f"the session already has stream(s) {', '.join(existing)}; pass overwrite=True "
                   "(CLI: --overwrite) to replace them, or ingest under another --prefix.")
            raise ValidationError(msg)
        _set_subject_and_date(f, str(src.attrs.get("subject", "")), str(src.attrs.get("session_date", "")))
        for n in existing:
            del f["streams"][n]
        for n in names:
            src.copy(src["streams"][n], f["streams"], name=n)
        for c in src["clocks"]:
            if c not in f["clocks"] or overwrite:
                if c in f["clocks"]:
                    del f["clocks"][c]
                src.copy(src["clocks"][c], f["clocks"], name=c)
        for source in src["events"]:
            events = _read_events_group(src["events"][source], source)
            for det in {e.detector for e in events}:  # re-ingesting (overwrite) replaces, never duplicates
                add_events(f, [e for e in events if e.detector == det], replace_detector=det if overwrite else None)
        for k in src["sources"]:
            if k in f["sources"]:
                del f["sources"][k]
            src.copy(src["sources"][k], f["sources"], name=k)
    return names


# ---------------------------------------------------------------------------------------------------- reading
class StreamInfo(dict):  # type: ignore[type-arg]
    """Attributes of a stored stream (a dict with the keys of the JSON form of ``fusionlab info``)."""


class SessionReader:
    """Lazy, read-only view of a session file. Use `open_session` to create one; close it or use ``with``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            msg = f"{self.path}: no such session file"
            raise FileNotFoundError(msg)
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as e:
            msg = (f"not a fusionlab session: it is not an HDF5 file or it is damaged ({e}). "
                   "Create sessions with 'fusionlab ingest SOURCE -o SESSION.h5'.")
            raise SessionFormatError(self.path, msg) from None
        try:
            _check_root(self._f, self.path)
        except SessionFormatError:
            self._f.close()
            raise

    # context manager
    def __enter__(self) -> SessionReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the file."""
        self._f.close()

    # metadata
    @property
    def format_version(self) -> int:
        """Format version of the file."""
        return int(self._f.attrs["format_version"])

    @property
    def subject(self) -> str:
        """Subject pseudonym."""
        return str(self._f.attrs.get("subject", ""))

    @property
    def session_date(self) -> str:
        """Session date (YYYY-MM-DD) or empty."""
        return str(self._f.attrs.get("session_date", ""))

    @property
    def metadata(self) -> dict[str, Any]:
        """Free metadata given by the user."""
        return json.loads(self._f.attrs.get("metadata", "{}"))

    def sources(self) -> list[SourceInfo]:
        """Provenance of every ingested source, in ingestion order."""
        out = []
        for k in self._f["sources"]:
            a = self._f["sources"][k].attrs
            out.append(SourceInfo(path=str(a["path"]), sha256=str(a["sha256"]), adapter=str(a["adapter"]),
                                  adapter_version=str(a["adapter_version"]), options=json.loads(a["options"]),
                                  size_bytes=int(a["size_bytes"]), metadata=json.loads(a["metadata"]),
                                  ingested_at=str(a["ingested_at"])))
        return sorted(out, key=lambda s: s.ingested_at)

    @property
    def stream_names(self) -> list[str]:
        """Names of the stored streams."""
        return list(self._f["streams"])

    def clocks(self) -> dict[str, ClockEntry]:
        """Clock entries by clock identifier."""
        out = {}
        for k in self._f["clocks"]:
            a = self._f["clocks"][k].attrs
            out[k] = ClockEntry(clock=k, offset_s=float(a["offset_s"]), offset_sd_s=float(a["offset_sd_s"]),
                                drift_ppm=float(a["drift_ppm"]), drift_sd_ppm=float(a["drift_sd_ppm"]),
                                method=str(a["method"]), reference=str(a["reference"]), quality=str(a["quality"]))
        return out

    def stream_info(self, name: str) -> StreamInfo:
        """Attributes of one stream, without reading its data."""
        g = self._group(name)
        a = g.attrs
        rate = float(a["rate_hz"])
        n = int(a["n_samples"])
        ds = g["data"]
        if math.isnan(rate):
            t = g["time"]
            start = float(t[0]) if n else 0.0
            duration = float(t[-1] - t[0]) if n else 0.0
        else:
            start = float(a["start_s"])
            duration = n / rate
        clock = str(a["clock"])
        entry = self.clocks().get(clock)
        start_session = entry.to_session(start) if entry is not None else start
        size = int(np.prod(ds.shape)) if ds.size else 0
        return StreamInfo(
            name=name, modality=str(a["modality"]), rate_hz=None if math.isnan(rate) else rate, n_samples=n,
            start_s=start_session, device_start_s=start, duration_s=duration, channels=json.loads(a["channels"]),
            units=json.loads(a["units"]), orig_units=json.loads(a["orig_units"]),
            components=json.loads(a["components"]), frame=str(a["frame"]), shape=list(ds.shape),
            missing_percent=100.0 * int(a["n_missing"]) / size if size else 0.0, clock=clock,
            has_confidence="confidence" in g, meta=json.loads(a["meta"]))

    def _group(self, name: str) -> h5py.Group:
        if name not in self._f["streams"]:
            msg = f"{self.path}: no stream {name!r}; streams are {', '.join(self.stream_names)}."
            raise KeyError(msg)
        return self._f["streams"][name]

    def read_stream(self, name: str, start_s: float | None = None, end_s: float | None = None, *,
                    clock: str = "device", channels: Sequence[str] | None = None) -> Stream:
        """Read a stream, or the samples in ``[start_s, end_s)``; optionally only some of its channels.

        Parameters
        ----------
        name
            Stream name.
        start_s, end_s
            Optional window (s). None means from the first / to the last sample.
        clock
            ``"device"``: the window is on the stream's own clock; ``"session"``: on the session clock (mapped
            through the stream's clock entry). The returned stream's times are always on its device clock; use
            `to_session_time` to map them.
        channels
            Names of the channels to return, in this order (None: all). Only those are converted to float64 (a
            page drawing 4 of 40 markers does not convert the other 36).

        Raises
        ------
        KeyError
            If a name of ``channels`` is not a channel of the stream.
        """
        g = self._group(name)
        info = self.stream_info(name)
        n = info["n_samples"]
        entry = self.clocks().get(info["clock"])
        if clock == "session" and entry is not None:
            start_s = None if start_s is None else entry.to_device(start_s)
            end_s = None if end_s is None else entry.to_device(end_s)
        elif clock not in ("device", "session"):
            msg = f"Invalid value for 'clock'. Allowed values are device, session, but got {clock!r} instead."
            raise ValidationError(msg)
        time_ds = g.get("time")
        if time_ds is not None:
            t_all = time_ds[()]
            i0 = 0 if start_s is None else int(np.searchsorted(t_all, start_s, side="left"))
            i1 = n if end_s is None else int(np.searchsorted(t_all, end_s, side="left"))
        else:
            rate = info["rate_hz"]
            t0 = info["device_start_s"]
            # a sample within 1e-6 of a sample period of the boundary counts as on it (times given in decimal)
            i0 = 0 if start_s is None else int(np.clip(math.ceil((start_s - t0) * rate - 1e-6), 0, n))
            i1 = n if end_s is None else int(np.clip(math.ceil((end_s - t0) * rate - 1e-6), 0, n))
        i1 = max(i0, i1)
        all_channels = list(info["channels"])
        if channels is None:
            sel = None
        else:
            missing = [c for c in channels if c not in all_channels]
            if missing:
                msg = f"{self.path}: stream {name!r} has no channel {missing[0]!r}; channels are " \
                      f"{', '.join(all_channels)}."
                raise KeyError(msg)
            sel = [all_channels.index(c) for c in channels]
        raw = g["data"][i0:i1]
        data = (raw if sel is None else raw[:, sel]).astype(np.float64)
        conf = g["confidence"][i0:i1] if "confidence" in g else None
        if conf is not None and sel is not None and conf.ndim >= 2:
            conf = conf[:, sel]

        def pick(values: Sequence[Any]) -> tuple[Any, ...]:
            return tuple(values) if sel is None else tuple(values[i] for i in sel)

        return Stream(
            name=name, modality=info["modality"], data=data, channels=pick(all_channels),
            units=pick(info["units"]), orig_units=pick(info["orig_units"]), components=tuple(info["components"]),
            frame=info["frame"], rate_hz=info["rate_hz"],
            start_s=0.0 if time_ds is not None else info["device_start_s"] + i0 / info["rate_hz"],
            time_s=None if time_ds is None else t_all[i0:i1], confidence=conf, clock=info["clock"],
            meta=info["meta"], storage_dtype=str(g["data"].dtype) if g["data"].dtype.kind == "f" else "float64")

    def to_session_time(self, stream: Stream) -> NDArray[np.float64]:
        """Times of a stream's samples on the session clock (s)."""
        entry = self.clocks().get(stream.clock)
        t = stream.times()
        return t if entry is None else entry.offset_s + t * (1.0 + entry.drift_ppm * 1e-6)

    def find_streams(self, modality: str | None = None, suffix: str | None = None) -> list[str]:
        """Names of the streams of one modality and/or whose name ends with ``suffix`` (e.g. ``".forceplate1"``)."""
        out = []
        for n in self.stream_names:
            if modality is not None and str(self._f["streams"][n].attrs["modality"]) != modality:
                continue
            if suffix is not None and not n.endswith(suffix):
                continue
            out.append(n)
        return out

    def events(self, source: str | None = None, *, kind: str | None = None, side: str | None = None,
               clock: str = "session") -> list[Event]:
        """Events, sorted by time.

        Parameters
        ----------
        source
            Only this source (``"annotation"``, ``"forceplate"``, ...); None for all.
        kind, side
            Only events of this kind (``"foot_strike"``) and/or side (``"left"``).
        clock
            ``"session"`` maps every event to the session clock; ``"device"`` keeps the stored times.
        """
        out: list[Event] = []
        clocks = self.clocks()
        for s in self._f["events"]:
            if source is not None and s != source:
                continue
            for e in _read_events_group(self._f["events"][s], s):
                if (kind is not None and e.kind != kind) or (side is not None and e.side != side):
                    continue
                if clock == "session" and e.clock in clocks:
                    e = Event(**{**e.__dict__, "time_s": clocks[e.clock].to_session(e.time_s), "clock": "session"})
                out.append(e)
        return sorted(out, key=lambda e: e.time_s)

    def derived_names(self) -> list[str]:
        """Names of the derived result groups."""
        return list(self._f["derived"])

    def summary(self) -> dict[str, Any]:
        """The JSON form of ``fusionlab info`` (a documented, stable interface; see docs/session-format.md)."""
        streams = [dict(self.stream_info(n)) for n in self.stream_names]
        for s in streams:
            s.pop("meta", None)
        clocks = []
        for c in self.clocks().values():
            d = dict(c.__dict__)
            d["streams"] = [s["name"] for s in streams if s["clock"] == c.clock]
            clocks.append(d)
        return {
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "path": str(self.path),
            "streams": streams,
            "events": [{"time_s": e.time_s, "sd_s": e.sd_s, "side": e.side, "kind": e.kind, "source": e.source,
                        "label": e.label, "detector": e.detector} for e in self.events()],
            "clocks": clocks,
            "metadata": {"subject": self.subject, "session_date": self.session_date, **self.metadata,
                         "sources": [dict(s.__dict__) for s in self.sources()]},
            "derived": self.derived_names(),
        }


def open_session(path: str | os.PathLike[str]) -> SessionReader:
    """Open a session file for reading.

    Raises
    ------
    FileNotFoundError
        If there is no such file.
    SessionFormatError
        If it is not a fusionlab session, or is of a newer format version.
    """
    return SessionReader(path)


def load_session(path: str | os.PathLike[str]) -> Session:
    """Read a whole session file into memory."""
    with open_session(path) as r:
        streams = tuple(r.read_stream(n) for n in r.stream_names)
        events = tuple(r.events(clock="device"))
        return Session(streams=streams, events=events, clocks=r.clocks(), subject=r.subject,
                       session_date=r.session_date, metadata=r.metadata, sources=tuple(r.sources()))


def attrs_to_dict(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Turn h5py attributes into plain Python values (for JSON output)."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, np.ndarray):
            v = v.tolist()
        out[k] = v
    return out


__all__ += ["add_events", "attrs_to_dict", "merge_file_into", "write_session_into", "write_stream"]
