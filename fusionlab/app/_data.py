"""What the web app shows, as pure library functions (no Dash, no Flask): unit-tested without a browser.

- the session index of a data folder: opaque session ids, one summary row per session, search and sort;
- peak-keeping downsampling (`downsample_minmax`, `downsample_envelope`);
- the session figure: every modality on one time axis (one x axis shared by all rows, so zoom is linked), fused
  signals with their 95 % band, the per-modality traces beneath, an events lane per source and the conflict windows;
- the conflict list and the plain-language explanation of a conflict.

Figures are plotly figure *dicts*; arrays are plotly.js typed-array specs (``{"dtype": "f4", "bdata": base64}``,
plotly.js >= 2.28), about 3x smaller and much faster to build and parse than JSON number lists. `decode_array` turns
them back into NumPy arrays (tests, benchmarks).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from numpy.typing import NDArray

from fusionlab.exceptions import FusionlabError

__all__ = [
    "DEFAULT_MAX_POINTS",
    "OverviewCache",
    "SessionIndex",
    "SessionRow",
    "TraceKey",
    "conflict_rows",
    "decode_array",
    "default_traces",
    "downsample_envelope",
    "downsample_minmax",
    "explain_conflict",
    "filter_rows",
    "find_session_files",
    "list_traces",
    "session_figure",
    "session_id",
    "sort_rows",
    "summarize_session",
    "window_from_relayout",
    "zoom_window",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_POINTS = 2800
"""Points per trace in the overview: 1400 min/max buckets, two points per pixel column of a ~1400 px wide plot
(a 1500 px window), so every column shows its true minimum and maximum. (4000 drew ~0.05 s slower and looked the
same: benchmarks/bench_app.py.)"""
SVG_MAX_POINTS = 5000
"""Stream traces of up to this many points are drawn as SVG (``scatter``), longer ones with WebGL (``scattergl``).
Measured in headless Chromium (benchmarks/bench_app.py): the downsampled overview of a 10-minute session is
interactive about twice as fast in SVG (WebGL's set-up per trace dominates at this size, and on machines without a
GPU it runs in software); WebGL pays off for the long traces of a full-resolution view."""
SESSION_SUFFIXES = (".h5", ".hdf5")
MISSING_WARN_PERCENT = 5.0
MISSING_WARN_MODALITIES = ("markers", "imu", "video_pose", "analog")
"""Where missing samples mean a data problem (a force plate's centre of pressure is undefined off the plate, and
model outputs are undefined outside the modelled strides: both are NaN by design)."""
MODALITY_ORDER = ("forceplate", "markers", "imu", "video_pose", "model", "analog", "other")
MODALITY_TITLES = {"forceplate": "force plates", "markers": "markers", "imu": "IMU", "video_pose": "video pose",
                   "model": "model outputs", "analog": "analog", "other": "other"}
SEVERITY_COLORS = {"low": "rgba(240, 180, 0, 0.18)", "medium": "rgba(240, 120, 0, 0.22)",
                   "high": "rgba(220, 30, 30, 0.25)"}
SIDE_COLORS = {"left": "#1f77b4", "right": "#d62728"}
KIND_SYMBOLS = {"foot_strike": "triangle-up", "foot_off": "triangle-down"}
_DISPLAY_UNITS = {"rad": ("deg", 180.0 / math.pi), "rad/s": ("deg/s", 180.0 / math.pi)}  # degrees only in the UI


# ---------------------------------------------------------------------------------------------------- session index
def session_id(relative_name: str, key: bytes) -> str:
    """Opaque id of a session file: HMAC-SHA256 of its path relative to the data folder, keyed by the app secret.

    A plain hash of the file name could be reversed by trying likely names (``S01_walk.h5``); the key (kept in the
    private folder) prevents that, and stays the same across restarts, so bookmarks keep working.
    """
    return hmac.new(key, relative_name.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


def find_session_files(data_dir: str | os.PathLike[str]) -> list[Path]:
    """``*.h5``/``*.hdf5`` files under ``data_dir`` (recursively), skipping hidden files and folders."""
    root = Path(data_dir)
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in sorted(filenames)
                if not f.startswith(".") and f.lower().endswith(SESSION_SUFFIXES)]
    return out


class SessionRow(TypedDict):
    """One row of the sessions page (no path: the page refers to sessions only by ``id``)."""

    id: str
    subject: str
    date: str
    n_streams: int
    modalities: str
    duration_s: float | None
    n_events: int
    n_conflicts: int
    n_warnings: int
    warnings: list[str]
    status: str
    """``""`` for a session, ``"recording"`` (or ``"recording stopped, not merged"``) for a recording in progress
    (`fusionlab.app._live`)."""
    last_flush: str
    """ISO time of the recorder's last flush (recordings only), else ``""``."""


def summarize_session(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sessions-page summary of one file (a `SessionRow` without ``id``, ``status`` and ``last_flush``).

    A session whose recording is in progress (``S01.h5.live`` exists) is read through
    `fusionlab.app._live.LiveReader` (SWMR read of the live files, up to the last flush, plus the session file if
    it exists already).

    Data-quality warnings: streams with more than 5 % missing samples, the notes the adapters recorded at ingest,
    several device clocks not synchronised, and fusion-model warnings.

    Raises
    ------
    SessionFormatError
        If the file is not a fusionlab session.
    """
    from fusionlab.app._live import open_any

    warnings: list[str] = []
    with open_any(path) as r:
        infos = [r.stream_info(n) for n in r.stream_names]
        starts = [i["start_s"] for i in infos if i["n_samples"]]
        ends = [i["start_s"] + i["duration_s"] for i in infos if i["n_samples"]]
        for i in infos:
            if i["modality"] in MISSING_WARN_MODALITIES and i["missing_percent"] > MISSING_WARN_PERCENT:
                warnings.append(f"{i['name']}: {i['missing_percent']:.0f} % of samples missing")
        for src in r.sources():
            warnings += [str(w) for w in src.metadata.get("warnings", [])]
        clocks = r.clocks()
        unsynced = [c for c in clocks.values() if c.method == "unsynchronised"]
        if len(clocks) > 1 and len(unsynced) > 1:
            warnings.append(f"{len(unsynced)} of {len(clocks)} device clocks are not synchronised "
                            "(run 'fusionlab sync')")
        n_events = len(r.events())
        subject, date = r.subject, r.session_date
        has_fusion = any(n.startswith("fusion_") for n in r.derived_names())
    n_conflicts = 0
    if has_fusion and Path(path).exists():
        try:
            results = _read_fusion(path)
        except (FusionlabError, KeyError, ValueError, TypeError, OSError) as e:
            warnings.append(f"fusion results could not be read ({type(e).__name__})")
        else:
            n_conflicts = sum(len(res.conflicts) for res in results.values())
            for res in results.values():
                warnings += [f"fusion {res.name}: {w}" for w in res.warnings]
    return {"subject": subject, "date": date, "n_streams": len(infos),
            "modalities": ", ".join(sorted({i["modality"] for i in infos}, key=_modality_rank)),
            "duration_s": round(max(ends) - min(starts), 3) if starts else None, "n_events": n_events,
            "n_conflicts": n_conflicts, "n_warnings": len(warnings), "warnings": warnings}


def _read_fusion(path: str | os.PathLike[str]) -> dict[str, Any]:
    from fusionlab.fusion import read_fusion

    return read_fusion(path)


def _modality_rank(m: str) -> int:
    return MODALITY_ORDER.index(m) if m in MODALITY_ORDER else len(MODALITY_ORDER)


class SessionIndex:
    """The sessions of a data folder, re-scanned on every `scan` (new files appear, changed files are re-read).

    Summaries are cached by file modification time and size, so a re-scan of unchanged files only ``stat``s them.

    Parameters
    ----------
    data_dir
        The served folder.
    key
        Secret key of the opaque session ids (see `session_id`).
    """

    def __init__(self, data_dir: str | os.PathLike[str], key: bytes) -> None:
        self.data_dir = Path(data_dir)
        self.key = key
        self._cache: dict[Path, tuple[tuple[Any, ...], SessionRow | None]] = {}
        self._paths: dict[str, Path] = {}
        self._live: dict[str, Path] = {}
        self.n_unreadable = 0

    def scan(self, *, live: bool = False) -> list[SessionRow]:
        """One row per readable session file, sorted by date then subject.

        With ``live``, recordings in progress (``S01.h5.live``, `fusionlab.app._live`) are listed too, with
        ``status`` ``"recording"``: their row replaces the row of the session file they will be merged into (same
        id: the id is the one of the session path). Without it (the other pages), only complete session files.
        """
        from fusionlab.app._live import find_live_sessions, live_status, session_stamp

        rows: dict[str, SessionRow] = {}
        paths: dict[str, Path] = {}
        live_paths: dict[str, Path] = {}
        n_bad = 0
        live_sessions = find_live_sessions(self.data_dir)
        for p in find_session_files(self.data_dir):
            try:
                st = p.stat()
            except FileNotFoundError:  # removed while scanning
                continue
            stamp: tuple[Any, ...] = (st.st_mtime_ns, st.st_size)
            row = self._summary(p, stamp)
            if row is None:
                n_bad += 1
                continue
            rows[row["id"]] = row
            paths[row["id"]] = p
        for p in live_sessions:
            stamp = session_stamp(p)
            if not any(name.endswith(".live") for name, _, _ in stamp):  # merged meanwhile
                continue
            row = self._summary(p, stamp)
            if row is None:  # e.g. created but not yet in SWMR mode: shows at the next scan
                continue
            st_live = live_status(p)
            live_paths[row["id"]] = p
            if live:
                rows[row["id"]] = {**row, "status": st_live["status"] or "recording",
                                   "last_flush": st_live["last_flush"]}
        keep = set(paths.values()) | set(live_paths.values())
        for gone in [p for p, (_, r) in self._cache.items() if p not in keep and r is not None]:
            del self._cache[gone]
        self._paths = paths
        self._live = live_paths
        self.n_unreadable = n_bad
        out = [r for sid, r in rows.items() if live or sid in paths]
        return sort_rows(out, "date", descending=True)

    def _summary(self, p: Path, stamp: tuple[Any, ...]) -> SessionRow | None:
        cached = self._cache.get(p)
        if cached is None or cached[0] != stamp:
            sid = session_id(p.relative_to(self.data_dir).as_posix(), self.key)
            try:
                row: SessionRow | None = {"id": sid, "status": "", "last_flush": "",  # type: ignore[typeddict-item]
                                          **summarize_session(p)}
            except (FusionlabError, OSError, KeyError, ValueError):
                row = None  # not a session (or being written): left out; the name is not logged
            self._cache[p] = (stamp, row)  # type: ignore[assignment]
        return self._cache[p][1]

    def path_of(self, sid: str) -> Path | None:
        """The (complete) session file of a session id (re-scans once when the id is unknown), or None.

        A recording in progress into a new session has no file yet: None (see `view_path_of`).
        """
        if sid not in self._paths:
            self.scan()
        return self._paths.get(sid)

    def view_path_of(self, sid: str) -> Path | None:
        """The session path of an id for the session page: the session file, or the session path of a recording in
        progress (whose file may not exist yet; read it with `fusionlab.app._live.open_any`). Re-scans once when
        the id is unknown."""
        if sid not in self._paths and sid not in self._live:
            self.scan()
        return self._paths.get(sid) or self._live.get(sid)

    def session_paths(self) -> list[tuple[str, Path]]:
        """``(id, path)`` of the complete session files of the last scan."""
        return list(self._paths.items())

    def is_live(self, sid: str) -> bool:
        """True when the id is a recording in progress (as of the last scan)."""
        return sid in self._live


SORT_COLUMNS = ("subject", "date", "n_streams", "modalities", "duration_s", "n_events", "n_conflicts", "n_warnings")


def sort_rows(rows: Sequence[SessionRow], column: str, *, descending: bool = False) -> list[SessionRow]:
    """Rows sorted by one column; missing values (None) always last.

    Raises
    ------
    ValueError
        If ``column`` is not one of `SORT_COLUMNS`.
    """
    if column not in SORT_COLUMNS:
        msg = f"Invalid value for 'column'. Allowed values are {', '.join(SORT_COLUMNS)}, but got {column!r} instead."
        raise ValueError(msg)
    present = [r for r in rows if r[column] is not None]  # type: ignore[literal-required]
    missing = [r for r in rows if r[column] is None]  # type: ignore[literal-required]

    def key(r: SessionRow) -> Any:
        v = r[column]  # type: ignore[literal-required]
        return (v.casefold(), r["id"]) if isinstance(v, str) else (v, r["id"])

    return sorted(present, key=key, reverse=descending) + missing


def filter_rows(rows: Sequence[SessionRow], query: str | None) -> list[SessionRow]:
    """Rows whose subject, date, modalities or warnings contain every word of ``query`` (case-insensitive)."""
    words = (query or "").casefold().split()
    if not words:
        return list(rows)
    out = []
    for r in rows:
        text = " ".join([r["subject"], r["date"], r["modalities"], *r["warnings"]]).casefold()
        if all(w in text for w in words):
            out.append(r)
    return out


# ---------------------------------------------------------------------------------------------------- downsampling
def _bucket_edges(n: int, n_buckets: int) -> NDArray[np.int64]:
    return np.linspace(0, n, n_buckets + 1).astype(np.int64)


def downsample_minmax(t: NDArray[np.float64], y: NDArray[np.floating[Any]], max_points: int
                      ) -> tuple[NDArray[np.float64], NDArray[np.floating[Any]]]:
    """Keep the minimum and the maximum of each of ``max_points // 2`` equal-count buckets, in time order.

    Every local extreme that is the largest or smallest value of its bucket survives, so spikes and peaks are
    never lost (unlike decimation or averaging); the global minimum and maximum are always kept. Output has at most
    ``max_points`` samples (input with fewer samples is returned as it is). A bucket with only NaN yields one NaN,
    so gaps stay gaps in the plot.

    Parameters
    ----------
    t
        ``(n,)`` float, s, increasing.
    y
        ``(n,)`` float, any unit; NaN = missing.
    max_points
        Upper bound of the output length (>= 2).

    Returns
    -------
    t_out, y_out
        ``(m,)`` with ``m <= max_points``; a subset of the input samples (plus NaN gap markers).
    """
    t = np.asarray(t)
    y = np.asarray(y)
    n = y.shape[0]
    if max_points < 2:
        msg = f"Invalid value for 'max_points': it must be at least 2, but got {max_points} instead."
        raise ValueError(msg)
    if n <= max_points:
        return t, y
    n_buckets = max_points // 2
    edges = _bucket_edges(n, n_buckets)
    size = int(np.max(np.diff(edges)))
    # pad every bucket to the same size with NaN, as a (n_buckets, size) index grid
    idx = edges[:-1, None] + np.arange(size)[None, :]
    valid = idx < edges[1:, None]
    idx = np.where(valid, idx, edges[1:, None] - 1)
    block = y[idx].astype(np.float64)
    block[~valid] = np.nan
    finite = np.isfinite(block)
    has = finite.any(axis=1)
    i_min = np.argmin(np.where(finite, block, np.inf), axis=1)
    i_max = np.argmax(np.where(finite, block, -np.inf), axis=1)
    first = np.minimum(i_min, i_max)
    second = np.maximum(i_min, i_max)
    rows = np.arange(n_buckets)
    pick = np.stack([idx[rows, first], idx[rows, second]], axis=1)  # (n_buckets, 2), time order within bucket
    t_out = t[pick].astype(np.float64)
    y_out = y[pick].astype(np.float64)
    same = first == second
    y_out[same, 1] = np.nan  # one sample in the bucket: drop the duplicate below
    y_out[~has] = np.nan
    keep = np.ones_like(y_out, dtype=bool)
    keep[same & has, 1] = False
    keep[~has, 1] = False  # an all-NaN bucket: one NaN breaks the line
    t_out[~has, 0] = t[edges[:-1][~has]]
    return t_out[keep], y_out[keep].astype(y.dtype if y.dtype.kind == "f" else np.float64)


def downsample_envelope(t: NDArray[np.float64], lower: NDArray[np.floating[Any]], upper: NDArray[np.floating[Any]],
                        max_points: int) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A band (e.g. mean ± 1.96 SD) reduced to ``max_points // 2`` buckets without ever narrowing it.

    Each bucket gives two points (its first and last time) carrying the bucket's smallest ``lower`` and largest
    ``upper``: the drawn band contains the true one everywhere. Input with at most ``max_points`` samples is returned
    unchanged.

    Returns
    -------
    t_out, lower_out, upper_out
        ``(m,)`` with ``m <= max_points``.
    """
    t = np.asarray(t, dtype=np.float64)
    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    n = t.shape[0]
    if n <= max_points:
        return t, lower, upper
    n_buckets = max_points // 2
    edges = _bucket_edges(n, n_buckets)
    with np.errstate(all="ignore"):
        lo = np.fmin.reduceat(lower, edges[:-1])
        hi = np.fmax.reduceat(upper, edges[:-1])
    t_out = np.stack([t[edges[:-1]], t[edges[1:] - 1]], axis=1).ravel()
    return t_out, np.repeat(lo, 2), np.repeat(hi, 2)


# ---------------------------------------------------------------------------------------------------- traces
@dataclass(frozen=True)
class TraceKey:
    """One plotted line: a stream's channel and component (``component=None`` for scalar channels)."""

    stream: str
    channel: str
    component: str | None = None

    SEP = "\x1f"  # unit separator: cannot occur in stream or channel names

    def encode(self) -> str:
        """A string for dropdown values and the page's store (stream names, no patient data)."""
        return self.SEP.join([self.stream, self.channel, self.component or ""])

    @classmethod
    def decode(cls, text: str) -> TraceKey:
        """Inverse of `encode`."""
        parts = text.split(cls.SEP)
        if len(parts) != 3:
            msg = f"not a trace key: {text!r}"
            raise ValueError(msg)
        return cls(parts[0], parts[1], parts[2] or None)

    def label(self) -> str:
        """Short legend label: ``<last part of stream> <channel>[.<component>]``."""
        short = self.stream.rsplit(".", 1)[-1]
        return f"{short} {self.channel}" + (f".{self.component}" if self.component else "")


def _up_component(info: Mapping[str, Any]) -> str | None:
    comps = list(info["components"])
    if not comps:
        return None
    axes = (info.get("meta") or {}).get("lab_axes") or {}
    y_screen = str(axes.get("y_screen", "")).strip().lower()
    if y_screen[-1:] in comps:
        return y_screen[-1]
    if info["modality"] == "video_pose" and "y" in comps:
        return "y"
    return "z" if "z" in comps else comps[-1]


def list_traces(reader: Any) -> list[dict[str, str]]:
    """Every plottable (stream, channel, component) of a session as dropdown options ``{label, value}``."""
    out = []
    for name in reader.stream_names:
        info = reader.stream_info(name)
        comps = list(info["components"]) or [None]
        for ch in info["channels"]:
            for c in comps:
                k = TraceKey(name, ch, c)
                out.append({"label": f"{info['modality']}: {k.label()}", "value": k.encode()})
    return out


def default_traces(reader: Any, *, max_per_modality: int = 4) -> list[str]:
    """A small first view: vertical force of each plate, vertical heel and toe markers, IMU rotation rates, video
    heels. Streams of other modalities (model outputs, analog) only when nothing else is there."""
    picked: list[TraceKey] = []
    per_mod: dict[str, int] = {}

    def add(k: TraceKey, modality: str) -> None:
        if per_mod.get(modality, 0) < max_per_modality:
            picked.append(k)
            per_mod[modality] = per_mod.get(modality, 0) + 1

    infos = [reader.stream_info(n) for n in reader.stream_names]
    for info in infos:
        mod, chans, up = info["modality"], list(info["channels"]), _up_component(info)
        if mod == "forceplate":
            ch = "force" if "force" in chans else chans[0]
            add(TraceKey(info["name"], ch, up), mod)
        elif mod == "markers":
            feet = [c for c in chans if c.upper().endswith(("HEE", "HEEL", "TOE"))] or chans[:2]
            for ch in feet:
                add(TraceKey(info["name"], ch, up), mod)
        elif mod == "imu":
            ch = "gyr" if "gyr" in chans else chans[0]
            comps = list(info["components"]) or [None]
            add(TraceKey(info["name"], ch, comps[-1] if "gyr" in chans else comps[0]), mod)
        elif mod == "video_pose":
            for ch in [c for c in chans if "heel" in c.lower()][:2] or chans[:1]:
                add(TraceKey(info["name"], ch, up), mod)
    if not picked:
        for info in infos[:1]:
            comps = list(info["components"]) or [None]
            add(TraceKey(info["name"], info["channels"][0], comps[0]), info["modality"])
    return [k.encode() for k in picked]


# ---------------------------------------------------------------------------------------------------- figure
def _typed(a: NDArray[Any], dtype: str) -> dict[str, str]:
    """plotly.js typed-array spec (little-endian)."""
    arr = np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<"))
    return {"dtype": {"float32": "f4", "float64": "f8"}[np.dtype(dtype).name],
            "bdata": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_array(obj: Any) -> NDArray[Any]:
    """An array of a figure dict (a typed-array spec or a list) as a NumPy array."""
    if isinstance(obj, dict) and "bdata" in obj:
        return np.frombuffer(base64.b64decode(obj["bdata"]), dtype=np.dtype(obj["dtype"]).newbyteorder("<"))
    return np.asarray(obj, dtype=np.float64)


def _display(values: NDArray[Any], unit: str) -> tuple[NDArray[Any], str]:
    if unit in _DISPLAY_UNITS:
        new, factor = _DISPLAY_UNITS[unit]
        return values * factor, new
    return values, unit


@dataclass
class _Row:
    title: str
    weight: float = 1.0
    traces: list[dict[str, Any]] | None = None
    yaxis: dict[str, Any] | None = None


def _time_range(reader: Any, fusion: Mapping[str, Any]) -> tuple[float, float]:
    lo, hi = math.inf, -math.inf
    for n in reader.stream_names:
        i = reader.stream_info(n)
        if i["n_samples"]:
            lo, hi = min(lo, i["start_s"]), max(hi, i["start_s"] + i["duration_s"])
    for res in fusion.values():
        for s in res.signals:
            if len(s.times):
                lo, hi = min(lo, float(s.times[0])), max(hi, float(s.times[-1]))
    return (0.0, 1.0) if not math.isfinite(lo) else (lo, hi)


def session_figure(path: str | os.PathLike[str], *, traces: Sequence[str] | None = None,
                   window: tuple[float, float] | None = None, max_points: int = DEFAULT_MAX_POINTS,
                   fusion: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The session page's figure: all modalities on one shared time axis (session clock, s).

    Rows from top to bottom: one per fused signal (mean per channel and its 95 % band, mean ± 1.96 SD), one per
    modality with the chosen stream traces, and the events lane (one line per event source: annotations,
    each detector family, ``fused``). Conflict windows are shaded across all rows (colour = severity).

    Parameters
    ----------
    path
        Session file.
    traces
        Encoded `TraceKey` strings to draw; None for `default_traces`.
    window
        ``(start_s, end_s)`` on the session clock: only that part is read and drawn (zoomed view); None for the
        whole session.
    max_points
        Upper bound of the points of every trace (peak-keeping `downsample_minmax`; a window with fewer samples is
        drawn at full resolution).
    fusion
        Fusion results as from `fusionlab.fusion.read_fusion` (read from ``path`` when None).

    Returns
    -------
    dict
        A plotly figure (``data``, ``layout``); ``layout.meta`` holds ``window``, ``full_resolution`` (no trace
        was downsampled) and ``n_points`` (total points drawn).
    """
    from fusionlab.app._live import open_any

    if fusion is None:
        fusion = _read_fusion_or_empty(path) if Path(path).exists() else {}
    rows: list[_Row] = []
    downsampled = False
    with open_any(path) as r:
        t_all = _time_range(r, fusion)
        t0, t1 = window if window is not None else t_all
        # 1. fused signals
        for res in fusion.values():
            for sig in res.signals:
                row = _Row(f"fused {sig.name}", 1.0, [])
                ds = _fused_traces(sig, t0, t1, max_points, row.traces)
                downsampled |= ds
                if row.traces:
                    unit = _display(np.zeros(1), sig.units[0] if sig.units else "")[1]
                    row.title += f" [{unit}]" if unit else ""
                    rows.append(row)
        # 2. per-modality raw traces
        keys = [TraceKey.decode(k) for k in (traces if traces is not None else default_traces(r))]
        by_mod: dict[str, list[TraceKey]] = {}
        infos = {}
        for k in keys:
            if k.stream not in r.stream_names:
                continue
            infos.setdefault(k.stream, r.stream_info(k.stream))
            by_mod.setdefault(infos[k.stream]["modality"], []).append(k)
        cache: dict[str, tuple[NDArray[np.float64], Any]] = {}
        wanted: dict[str, list[str]] = {}  # read only the channels drawn (4 of 40 markers, not 40)
        for k in keys:
            if k.stream in infos and k.channel in infos[k.stream]["channels"] \
                    and k.channel not in wanted.setdefault(k.stream, []):
                wanted[k.stream].append(k.channel)
        for mod in sorted(by_mod, key=_modality_rank):
            row = _Row(MODALITY_TITLES.get(mod, mod), 1.0, [])
            units = set()
            for k in by_mod[mod]:
                if k.stream not in cache:
                    span = (t0, t1) if window is not None else (None, None)
                    st = r.read_stream(k.stream, *span, clock="session", channels=wanted.get(k.stream) or None)
                    cache[k.stream] = (r.to_session_time(st), st)
                t, st = cache[k.stream]
                if k.channel not in st.channels:
                    continue
                ci = st.channels.index(k.channel)
                y = st.data[:, ci]
                if y.ndim == 2:
                    comps = list(st.components)
                    y = y[:, comps.index(k.component) if k.component in comps else 0]
                y, unit = _display(y, st.units[ci])
                units.add(unit)
                td, yd = downsample_minmax(t, y, max_points)
                downsampled |= len(td) < len(t)
                kind = "scatter" if len(td) <= SVG_MAX_POINTS else "scattergl"
                row.traces.append({"type": kind, "mode": "lines", "name": k.label() + f" [{unit}]",
                                   "x": _typed(td, "float64"), "y": _typed(yd, "float32"),
                                   "line": {"width": 1}, "legendgroup": mod,
                                   "hovertemplate": "%{y:.4g} " + unit + " at %{x:.3f} s<extra>%{fullData.name}"
                                                    "</extra>"})
            if row.traces:
                row.title += f" [{', '.join(sorted(units))}]" if len(units) <= 2 else ""
                rows.append(row)
        # 3. events lane
        events = [e for e in r.events() if math.isfinite(e.time_s) and t0 <= e.time_s <= t1]
    lane = _events_row(events)
    rows.append(lane)
    fig = _assemble(rows, (t0, t1), window is not None)
    fig["layout"]["shapes"] = _conflict_shapes(fusion, t0, t1)
    n_points = sum(len(decode_array(tr["x"])) if isinstance(tr["x"], dict) else len(tr["x"]) for tr in fig["data"])
    fig["layout"]["meta"] = {"window": [t0, t1], "full_resolution": not downsampled, "n_points": n_points,
                             "session_range": list(t_all)}
    return fig


def _read_fusion_or_empty(path: str | os.PathLike[str]) -> dict[str, Any]:
    try:
        return _read_fusion(path)
    except (FusionlabError, KeyError, ValueError, TypeError, OSError):
        logger.warning("fusion results of a session could not be read; showing raw streams only")
        return {}


def _fused_traces(sig: Any, t0: float, t1: float, max_points: int, out: list[dict[str, Any]]) -> bool:
    t = np.asarray(sig.times, dtype=np.float64)
    sel = (t >= t0) & (t <= t1)
    if sel.sum() == 0:
        return False
    t = t[sel]
    downsampled = False
    palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#17becf"]
    sparse = len(sig.times) < 200  # per-stride values: points with error bars, not lines
    for j, ch in enumerate(sig.channels):
        unit = sig.units[j] if j < len(sig.units) else ""
        mean, unit_d = _display(np.asarray(sig.mean[sel, j], dtype=np.float64), unit)
        sd, _ = _display(np.sqrt(np.asarray(sig.var[sel, j], dtype=np.float64)), unit)
        color = palette[j % len(palette)]
        group = f"{sig.name}.{ch}"
        name = f"{ch} fused [{unit_d}]"
        if sparse:
            out.append({"type": "scatter", "mode": "markers+lines", "name": name, "legendgroup": group,
                        "x": _typed(t, "float64"), "y": _typed(mean, "float32"), "marker": {"color": color},
                        "error_y": {"type": "data", "array": _typed(1.96 * sd, "float32"), "visible": True}})
            continue
        tb, lo, hi = downsample_envelope(t, mean - 1.96 * sd, mean + 1.96 * sd, max_points)
        tm, ym = downsample_minmax(t, mean, max_points)
        downsampled |= len(tm) < len(t)
        fill = _rgba(color, 0.2)
        out.append({"type": "scatter", "mode": "lines", "x": _typed(tb, "float64"), "y": _typed(lo, "float32"),
                    "line": {"width": 0}, "hoverinfo": "skip", "showlegend": False, "legendgroup": group,
                    "name": f"{ch} -1.96 SD"})
        out.append({"type": "scatter", "mode": "lines", "x": _typed(tb, "float64"), "y": _typed(hi, "float32"),
                    "line": {"width": 0}, "fill": "tonexty", "fillcolor": fill, "hoverinfo": "skip",
                    "showlegend": False, "legendgroup": group, "name": f"{ch} +1.96 SD"})
        out.append({"type": "scatter", "mode": "lines", "name": name, "legendgroup": group,
                    "x": _typed(tm, "float64"), "y": _typed(ym, "float32"), "line": {"color": color, "width": 1.5},
                    "hovertemplate": "%{y:.4g} " + unit_d + " at %{x:.3f} s<extra>" + name + "</extra>"})
    return downsampled


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)}, {int(h[2:4], 16)}, {int(h[4:6], 16)}, {alpha})"


EVENT_MARKERS_MAX = 300
"""Events lanes with more events than this in view (the overview of a long session: 2200 events in 10 minutes)
are drawn as spikes on one unbroken line per (source, kind, side) (foot strike: a spike up from the lane's line,
foot off: down), instead of one triangle (one SVG element) each: every event keeps its exact time, and the
overview page draws ~0.2 s faster (benchmarks/bench_app.py). Zoomed in (fewer events) they are triangles with
their error bars."""


def _events_row(events: Sequence[Any]) -> _Row:
    sources = sorted({e.source for e in events}, key=lambda s: (s == "fused", s != "annotation", s))
    if len(events) > EVENT_MARKERS_MAX:
        return _event_ticks_row(events, sources)
    traces = []
    for src in sources:
        for kind in sorted({e.kind for e in events if e.source == src}):
            for side in sorted({e.side for e in events if e.source == src and e.kind == kind}):
                sel = [e for e in events if e.source == src and e.kind == kind and e.side == side]
                sd = np.array([e.sd_s if math.isfinite(e.sd_s) else 0.0 for e in sel])
                tr: dict[str, Any] = {
                    "type": "scatter", "mode": "markers", "name": f"{src} {side} {kind}".replace("_", " "),
                    "x": [e.time_s for e in sel], "y": [src] * len(sel), "legendgroup": "events",
                    "marker": {"symbol": KIND_SYMBOLS.get(kind, "circle"), "size": 9,
                               "color": SIDE_COLORS.get(side, "#555555")},
                    "text": [f"{e.side} {e.kind} ({e.detector or e.label})" for e in sel],
                    "hovertemplate": "%{text} at %{x:.3f} s<extra>" + src + "</extra>", "showlegend": False}
                if sd.any():
                    tr["error_x"] = {"type": "data", "array": (1.96 * sd).tolist(), "visible": True, "width": 2}
                traces.append(tr)
    return _Row("events", max(0.35, 0.12 * len(sources)), traces)


def _event_ticks_row(events: Sequence[Any], sources: Sequence[str]) -> _Row:
    """The events lane as ticks (see `EVENT_MARKERS_MAX`): y is the source's index (labelled by the y axis)."""
    traces = []
    for i, src in enumerate(sources):
        for kind in sorted({e.kind for e in events if e.source == src}):
            for side in sorted({e.side for e in events if e.source == src and e.kind == kind}):
                sel = sorted((e for e in events if e.source == src and e.kind == kind and e.side == side),
                             key=lambda e: e.time_s)
                t = np.array([e.time_s for e in sel], dtype=np.float64)
                tip = i + (-0.35 if kind == "foot_off" else 0.35)
                # one unbroken line along the lane with a spike per event (NaN gaps would make one path segment
                # per event, several times slower to draw)
                x = np.stack([t, t, t], axis=1).ravel()
                y = np.tile(np.array([float(i), tip, float(i)]), len(t))
                name = f"{src} {side} {kind}".replace("_", " ")
                traces.append({"type": "scatter", "mode": "lines", "name": name, "x": _typed(x, "float64"),
                               "y": _typed(y, "float32"), "legendgroup": "events", "showlegend": False,
                               "line": {"color": SIDE_COLORS.get(side, "#555555"), "width": 1},
                               "hovertemplate": name + " at %{x:.3f} s<extra>" + src + "</extra>"})
    row = _Row("events", max(0.35, 0.12 * len(sources)), traces)
    row.yaxis = {"type": "linear", "fixedrange": True, "tickmode": "array", "tickvals": list(range(len(sources))),
                 "ticktext": list(sources), "range": [-0.5, len(sources) - 0.5]}
    return row


def _assemble(rows: Sequence[_Row], x_range: tuple[float, float], fixed_range: bool) -> dict[str, Any]:
    gap = 0.03
    total = sum(r.weight for r in rows)
    usable = 1.0 - gap * (len(rows) - 1)
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {
        "height": int(120 + sum(170 * r.weight for r in rows)),
        "margin": {"l": 70, "r": 20, "t": 30, "b": 40},
        "showlegend": True, "legend": {"orientation": "h", "y": -0.04, "yanchor": "top", "font": {"size": 10}},
        "hovermode": "closest", "uirevision": "session",
        "xaxis": {"title": {"text": "session time (s)"}, "anchor": f"y{len(rows)}" if len(rows) > 1 else "y",
                  "showspikes": True, "spikemode": "across", "spikesnap": "cursor", "spikethickness": 1},
        "annotations": [],
    }
    if fixed_range:
        layout["xaxis"]["range"] = list(x_range)
    else:
        layout["xaxis"]["autorange"] = True
    top = 1.0
    for i, row in enumerate(rows, start=1):
        h = usable * row.weight / total
        axis = "yaxis" if i == 1 else f"yaxis{i}"
        ref = "y" if i == 1 else f"y{i}"
        layout[axis] = {"domain": [max(0.0, top - h), top], "anchor": "x", "zeroline": False,
                        "title": {"text": ""}, "automargin": True}
        if row.yaxis is not None:
            layout[axis].update(row.yaxis)
        elif row.title == "events":
            layout[axis].update({"type": "category", "fixedrange": True})
        layout["annotations"].append({"text": f"<b>{row.title}</b>", "xref": "paper", "yref": "paper", "x": 0,
                                      "y": top, "xanchor": "left", "yanchor": "bottom", "showarrow": False,
                                      "font": {"size": 11}})
        for tr in row.traces or []:
            data.append({**tr, "xaxis": "x", "yaxis": ref})
        top -= h + gap
    return {"data": data, "layout": layout}


def _conflict_shapes(fusion: Mapping[str, Any], t0: float, t1: float) -> list[dict[str, Any]]:
    shapes = []
    for c in _all_conflicts(fusion):
        if c.end_s < t0 or c.start_s > t1:
            continue
        shapes.append({"type": "rect", "xref": "x", "yref": "paper", "x0": c.start_s, "x1": c.end_s, "y0": 0,
                       "y1": 1, "fillcolor": SEVERITY_COLORS.get(c.severity, SEVERITY_COLORS["medium"]),
                       "line": {"width": 0}, "layer": "below"})
    return shapes


def _all_conflicts(fusion: Mapping[str, Any]) -> list[Any]:
    out = [c for res in fusion.values() for c in res.conflicts]
    return sorted(out, key=lambda c: (c.start_s, c.end_s, c.quantity))


# ---------------------------------------------------------------------------------------------------- conflicts
def conflict_rows(fusion: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The conflict list: one row per conflict, in time order (``index`` identifies it within the session)."""
    rows = []
    for i, c in enumerate(_all_conflicts(fusion)):
        rows.append({"index": i, "start_s": round(c.start_s, 3), "end_s": round(c.end_s, 3),
                     "duration_s": round(c.end_s - c.start_s, 3), "quantity": c.quantity, "modality": c.modality,
                     "severity": c.severity})
    return rows


def conflict_at(fusion: Mapping[str, Any], index: int) -> Any:
    """The conflict of a `conflict_rows` index."""
    return _all_conflicts(fusion)[index]


def _fmt_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else "n/a"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt_value(x) for x in list(v)[:8]) + (", ..." if len(v) > 8 else "") + "]"
    return str(v)


def explain_conflict(c: Any) -> str:
    """A plain-language explanation of a conflict, with its evidence in numbers."""
    unit = c.evidence.get("unit", "") if isinstance(c.evidence, Mapping) else ""
    score = getattr(c, "score", math.nan)
    head = (f"From {c.start_s:.2f} s to {c.end_s:.2f} s ({c.end_s - c.start_s:.2f} s), {c.modality} disagrees "
            f"with the fused {c.quantity.replace('_', ' ')} of the other modalities by more than their combined "
            f"uncertainty allows. Severity: {c.severity}"
            + (f" (score {score:.3g})." if isinstance(score, float) and math.isfinite(score) else "."))
    ev = c.evidence if isinstance(c.evidence, Mapping) else {}
    items = [f"{k.replace('_', ' ')} = {_fmt_value(v)}" + (f" {unit}" if unit and k.endswith(("residual", "_sd"))
                                                            else "")
             for k, v in ev.items() if k != "unit"]
    return head + (" Evidence: " + "; ".join(items) + "." if items else " No further evidence was recorded.")


def zoom_window(c: Any, *, min_pad_s: float = 0.5) -> tuple[float, float]:
    """The x range that shows a conflict with context on both sides (half its duration, at least ``min_pad_s``)."""
    pad = max(min_pad_s, 0.5 * (c.end_s - c.start_s))
    return c.start_s - pad, c.end_s + pad


# ---------------------------------------------------------------------------------------------------- zoom
def window_from_relayout(relayout: Mapping[str, Any] | None) -> tuple[float, float] | bool | None:
    """The x window a plotly ``relayoutData`` asks for.

    Returns
    -------
    tuple, None or False
        ``(start_s, end_s)`` after a zoom or pan; None after a reset (autorange: back to the whole session);
        False when the event does not change the x range (e.g. a legend click).
    """
    if not relayout:
        return False
    if relayout.get("xaxis.autorange"):
        return None
    if "xaxis.range[0]" in relayout and "xaxis.range[1]" in relayout:
        a, b = relayout["xaxis.range[0]"], relayout["xaxis.range[1]"]
    elif isinstance(relayout.get("xaxis.range"), (list, tuple)) and len(relayout["xaxis.range"]) == 2:
        a, b = relayout["xaxis.range"]
    else:
        return False
    try:
        a, b = float(a), float(b)
    except (TypeError, ValueError):
        return False
    if not (math.isfinite(a) and math.isfinite(b)) or b <= a:
        return False
    return (a, b)


class FigureCache:
    """A small LRU cache of built figures keyed by (file, modification time, traces, window, max_points)."""

    def __init__(self, size: int = 16) -> None:
        self.size = size
        self._d: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()

    def get(self, path: Path, traces: Iterable[str] | None, window: tuple[float, float] | None,
            max_points: int) -> dict[str, Any]:
        """The figure of `session_figure` (built once per key)."""
        from fusionlab.app._live import session_stamp

        stamp = session_stamp(path)  # the session file and any live recording file (changes at every flush)
        if not stamp:
            raise FileNotFoundError(path)
        key = (str(path), stamp, None if traces is None else tuple(traces),
               None if window is None else (round(window[0], 4), round(window[1], 4)), max_points)
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        fig = session_figure(path, traces=traces, window=window, max_points=max_points)
        self._d[key] = fig
        while len(self._d) > self.size:
            self._d.popitem(last=False)
        return fig


OVERVIEW_CACHE_VERSION = 1
"""Bump when `session_figure`'s output changes: overviews stored by an older version are rebuilt."""


class OverviewCache:
    """Ready overview figures (whole session, overview resolution), one JSON file per session on disk.

    The overview of a 10-minute session takes 0.3-1 s to build (reading and decompressing whole streams); kept
    here it is a ~1 MB file read in milliseconds, and it survives a restart. Files live in the private folder
    (``DIR/.fusionlab/cache/<opaque session id>.json``, 0600; no pseudonym or file name in the file name) and
    are keyed by the session file's modification time and size, the traces drawn, ``max_points`` and
    `OVERVIEW_CACHE_VERSION`: a changed session file is rebuilt on its next view. Recordings in progress (a live
    file exists) are never stored (they change at every flush). Up to `MAX_ENTRIES` trace choices per session.

    Parameters
    ----------
    cache_dir
        Folder of the cache files (created 0700 when first written).
    """

    MAX_ENTRIES = 8

    def __init__(self, cache_dir: str | os.PathLike[str]) -> None:
        import threading

        self.cache_dir = Path(cache_dir)
        self.n_built = 0  # overviews built (misses), for tests and benchmarks
        self._known: set[tuple[str, str]] = set()  # (sid, key) known to be on disk: `prebuild` skips them unread
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None

    def file_of(self, sid: str) -> Path:
        """The cache file of a session id."""
        if not sid or not all(ch in "0123456789abcdef" for ch in sid):
            msg = f"Invalid value for 'sid': an opaque session id (hex digits) is expected, but got {sid!r} instead."
            raise ValueError(msg)
        return self.cache_dir / f"{sid}.json"

    @staticmethod
    def _key(stamp: Sequence[Any], traces: Sequence[str] | None, max_points: int) -> str:
        import json

        return json.dumps([OVERVIEW_CACHE_VERSION, [list(s[1:]) for s in stamp],  # times and sizes, no names
                           None if traces is None else list(traces), int(max_points)])

    def get(self, path: str | os.PathLike[str], sid: str, traces: Sequence[str] | None,
            max_points: int = DEFAULT_MAX_POINTS) -> dict[str, Any]:
        """The overview figure of `session_figure` (``window=None``), read from the cache or built and stored."""
        import json

        from fusionlab.app._live import session_stamp

        stamp = session_stamp(path)
        if not stamp:
            raise FileNotFoundError(path)
        if any(str(name).endswith(".live") for name, *_ in stamp):  # recording in progress: build every time
            self.n_built += 1
            return session_figure(path, traces=traces, max_points=max_points)
        key = self._key(stamp, traces, max_points)
        f = self.file_of(sid)
        entries: dict[str, Any] = {}
        try:
            stored = json.loads(f.read_text(encoding="utf-8"))
            entries = stored.get("entries", {}) if isinstance(stored, dict) else {}
        except (OSError, ValueError):
            entries = {}
        if key in entries:
            self._known.add((sid, key))
            return entries[key]
        fig = session_figure(path, traces=traces, max_points=max_points)
        self.n_built += 1
        stale = {k: v for k, v in entries.items() if json.loads(k)[:2] == json.loads(key)[:2]}  # same file version
        stale[key] = fig
        keep = dict(list(stale.items())[-self.MAX_ENTRIES:])
        try:
            self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = f.with_name(f".{f.name}.{os.getpid()}.{id(fig)}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"entries": keep}, out, separators=(",", ":"))
            tmp.replace(f)
            self._known.add((sid, key))
        except OSError:
            logger.warning("the overview cache could not be written; the overview is rebuilt at every view")
        return fig

    def prebuild(self, sessions: Iterable[tuple[str, Path]], max_points: int = DEFAULT_MAX_POINTS) -> int:
        """Make sure the first view of each ``(sid, path)`` (its `default_traces`) is stored; return how many were
        built. Sessions known to be stored are skipped without reading anything but the session's stream list."""
        from fusionlab.app._live import session_stamp
        from fusionlab.persist import open_session

        n = 0
        for sid, path in sessions:
            try:
                stamp = session_stamp(path)
                if not stamp or any(str(name).endswith(".live") for name, *_ in stamp):
                    continue
                with open_session(path) as r:
                    traces = default_traces(r)
                if (sid, self._key(stamp, traces, max_points)) in self._known:
                    continue
                before = self.n_built
                self.get(path, sid, traces, max_points)
                n += self.n_built - before
            except (FusionlabError, OSError, KeyError, ValueError) as e:  # removed, damaged, being written
                logger.info("overview not prebuilt (%s)", type(e).__name__)
        return n

    def prebuild_in_background(self, sessions: Iterable[tuple[str, Path]],
                               max_points: int = DEFAULT_MAX_POINTS) -> bool:
        """`prebuild` in a daemon thread (one at a time: False when one is still running), so the first view of a
        new or changed session finds its overview ready. The app calls it after each scan of the sessions page."""
        import threading

        items = list(sessions)
        with self._lock:
            if self._worker is not None and self._worker.is_alive():
                return False
            self._worker = threading.Thread(target=self._prebuild_quietly, args=(items, max_points),
                                            name="fusionlab-overviews", daemon=True)
            self._worker.start()
        return True

    def _prebuild_quietly(self, items: list[tuple[str, Path]], max_points: int) -> None:
        try:
            self.prebuild(items, max_points)
        except Exception:  # a background helper must never take the server down
            logger.exception("overview prebuild failed")

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a running `prebuild_in_background` (tests, benchmarks)."""
        w = self._worker
        if w is not None:
            w.join(timeout)


# ---------------------------------------------------------------------------------------------------- page updates
ZOOM_MAX_POINTS = 20000
"""Points per trace when zoomed in: a window of up to 20 s of a 1 kHz plate is drawn at full resolution."""
ZOOM_MARGIN = 0.25
"""Data read on each side of a zoomed view (fraction of its width), so a small pan does not show empty edges."""


def figure_for_view(path: str | os.PathLike[str], traces: Sequence[str] | None, view: tuple[float, float] | None, *,
                    max_points: int = DEFAULT_MAX_POINTS, zoom_max_points: int = ZOOM_MAX_POINTS,
                    cache: FigureCache | None = None, overviews: OverviewCache | None = None,
                    sid: str | None = None) -> dict[str, Any]:
    """The figure for a view: the whole session (``view`` None, overview resolution) or a zoomed x range.

    A zoomed view reads only ``view`` plus `ZOOM_MARGIN` on each side, at up to ``zoom_max_points`` per trace, so
    short windows come back at full resolution; the x axis shows exactly ``view``. The overview comes from
    ``overviews`` (an `OverviewCache`, needs the session id ``sid``) when given.
    """
    path = Path(path)

    def build(window: tuple[float, float] | None, n: int) -> dict[str, Any]:
        if window is None and overviews is not None and sid:
            return overviews.get(path, sid, traces, n)
        if cache is not None:
            return cache.get(path, traces, window, n)
        return session_figure(path, traces=traces, window=window, max_points=n)

    if view is None:
        return build(None, max_points)
    a, b = float(view[0]), float(view[1])
    m = (b - a) * ZOOM_MARGIN
    fig = build((a - m, b + m), zoom_max_points)
    xaxis = {k: v for k, v in fig["layout"]["xaxis"].items() if k != "autorange"}
    xaxis["range"] = [a, b]
    return {**fig, "layout": {**fig["layout"], "xaxis": xaxis}}


@dataclass
class ViewUpdate:
    """What the session page changes after a user action (None = leave unchanged)."""

    figure: dict[str, Any] | None
    explanation: str | None
    view: dict[str, Any] | None


def session_update(path: str | os.PathLike[str], *, trigger: str, relayout: Mapping[str, Any] | None = None,
                   traces: Sequence[str] | None = None, conflict_index: int | None = None,
                   view: Mapping[str, Any] | None = None, cache: FigureCache | None = None,
                   max_points: int = DEFAULT_MAX_POINTS, zoom_max_points: int = ZOOM_MAX_POINTS,
                   overviews: OverviewCache | None = None, sid: str | None = None) -> ViewUpdate:
    """The session page's reaction to a zoom/pan (``trigger="zoom"``), a new trace choice (``"traces"``) or a click
    on a conflict (``"conflict"``: zoom to it and explain it).

    ``view`` is the page's current view state ``{"window": [start_s, end_s] | None}``; after a conflict click the
    new state also holds ``"cursor"`` (the conflict's start, s), which moves the video frame.
    """
    window = tuple(view["window"]) if view and view.get("window") else None
    explanation = None
    if trigger == "zoom":
        w = window_from_relayout(relayout)
        if w is False:
            return ViewUpdate(None, None, None)
        window = w  # type: ignore[assignment]
    elif trigger == "conflict":
        if conflict_index is None:
            return ViewUpdate(None, None, None)
        c = conflict_at(_read_fusion_or_empty(path), int(conflict_index))
        window = zoom_window(c)
        explanation = explain_conflict(c)
    elif trigger != "traces":
        msg = f"Invalid value for 'trigger'. Allowed values are zoom, traces, conflict, but got {trigger!r} instead."
        raise ValueError(msg)
    fig = figure_for_view(path, traces, window, max_points=max_points,  # type: ignore[arg-type]
                          zoom_max_points=zoom_max_points, cache=cache, overviews=overviews, sid=sid)
    out_view: dict[str, Any] = {"window": None if window is None else list(window)}
    if trigger == "conflict":
        out_view["cursor"] = c.start_s  # the video frame (if any) jumps to the start of the conflict
    return ViewUpdate(fig, explanation, out_view)
