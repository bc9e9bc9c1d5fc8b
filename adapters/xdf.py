"""XDF (Lab Streaming Layer recordings, LabRecorder) via pyxdf, every LSL stream on its own clock.

Each numeric LSL stream becomes one stream with its **raw** LSL time stamps (read with
``synchronize_clocks=False, dejitter_timestamps=False``): nothing is shifted, resampled or smoothed. The clock
offsets LabRecorder measured for the stream (pairs ``(time, value)``: the recording host's clock minus the
stream's clock, measured about every 5 s) are kept in ``meta["lsl_clock_offsets"]`` and summarised in the stream's
clock entry (method ``"lsl"``):

* ``offset_s`` = median offset, ``offset_sd_s`` = its robust SD (1.4826 x MAD; infinite with fewer than 3
  offsets);
* when the offsets span at least `MIN_DRIFT_SPAN_S` with at least `MIN_DRIFT_OFFSETS` values, a Theil-Sen line
  ``offset = a + b t`` is fitted (slope SD from the 68 % confidence interval). If the drift is significant
  (``|b| > 3 SD``), ``drift_ppm = 1e6 b`` and ``offset_s = a`` (the intercept at stream time 0, so that
  ``t_host = offset_s + t (1 + drift_ppm 1e-6)`` holds), with ``offset_sd_s`` including the slope's SD
  extrapolated to time 0; otherwise ``drift_ppm = 0`` with the slope's SD as ``drift_sd_ppm``, and the offset is
  the median with the residuals' robust SD.

String streams (LSL markers) become events (``source="annotation"``, kind and side from the text, e.g. ``"Hello"``
-> kind ``hello``) when the samples are short labels; samples that are not event-like (XML, JSON, multi-line or
longer than 64 characters) are kept in the source metadata (``string_samples``).

Clock resets: when a host restarts or its clock is reset during a recording, the stream's time stamps jump back
(``clock_resets.xdf``: from about 653 288 s to 100 s) and the clock offsets change (−652 340 s to +1 121 s). The
reader finds each backward jump, splits the stream into segments ``<name>.seg1``, ``<name>.seg2``, ... and gives
each segment its own clock, estimated from the offsets measured in that clock epoch (``on_clock_reset="warn"``,
default: with a warning; ``"raise"`` refuses the file; ``"ignore"`` splits silently). Time is therefore always
strictly increasing within a stream.

Empty streams (0 samples) are skipped; the source metadata lists them with the reason. A stream without footer
(a recording cut short) is read as far as it goes, with a warning.
"""

from __future__ import annotations

import itertools
import logging
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab import __version__
from fusionlab.adapters._common import base_meta, check_path, file_sha256, source_info, stream_prefix
from fusionlab.adapters._imu_common import Policy, check_policy
from fusionlab.exceptions import FileFormatError, FusionlabWarning, UnitError
from fusionlab.model import ClockEntry, Event, Session, Stream, normalise_event, unique_labels
from fusionlab.units import to_si

__all__ = ["MIN_DRIFT_OFFSETS", "MIN_DRIFT_SPAN_S", "lsl_clock_entry", "read_xdf"]

logger = logging.getLogger(__name__)

ADAPTER = "xdf"
MIN_DRIFT_SPAN_S = 60.0
"""Clock drift is estimated only when the offsets span at least this long (s)..."""
MIN_DRIFT_OFFSETS = 10
"""... and there are at least this many offsets."""
RESET_JUMP_S = 1.0
"""A backward jump of the time stamps larger than this (s) is a clock reset; smaller ones are errors."""
_EVENT_MAX_CHARS = 64
_ANALOG_TYPES = {"eeg", "emg", "ecg", "eog", "exg", "gsr", "eda", "audio", "nirs", "ppg", "resp"}
_STORE_FLOAT32 = {"float32", "int16", "int8"}  # exactly representable in float32


def _plain(x: Any) -> Any:
    """pyxdf's nested defaultdict/list XML structure as plain JSON values."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list):
        return _plain(x[0]) if len(x) == 1 else [_plain(v) for v in x]
    return x


def _first(info: dict[str, Any], key: str, default: str = "") -> str:
    v = info.get(key)
    if isinstance(v, list):
        v = v[0] if v else None
    return default if v is None else str(v)


def _channel_descriptions(info: dict[str, Any], n: int) -> tuple[list[str], list[str]]:
    """Channel labels and units from ``desc/channels/channel`` (defaults: ch1.., unknown)."""
    labels = [f"ch{i + 1}" for i in range(n)]
    units = ["" for _ in range(n)]
    try:
        desc = info["desc"][0]
        chans = desc["channels"][0]["channel"]
    except (KeyError, IndexError, TypeError):
        return labels, units
    for i, ch in enumerate(chans[:n]):
        if not isinstance(ch, dict):
            continue
        label = _first(ch, "label") or _first(ch, "name")
        if label:
            labels[i] = label
        units[i] = _first(ch, "unit")
    return labels, units


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "stream"


def _event_like(text: str) -> bool:
    t = text.strip()
    return (0 < len(t) <= _EVENT_MAX_CHARS and "\n" not in t and not t.startswith(("<", "{", "["))
            and t.isprintable())


def lsl_clock_entry(clock: str, times: NDArray[np.float64], values: NDArray[np.float64]) -> tuple[
        ClockEntry, dict[str, Any]]:
    """Clock entry of one LSL stream (clock epoch) from its clock offsets.

    Parameters
    ----------
    clock
        Clock identifier.
    times
        ``(k,)`` times the offsets were measured, on the stream's clock (s).
    values
        ``(k,)`` offsets: recording host clock minus stream clock (s).

    Returns
    -------
    ClockEntry, dict
        The entry (method ``"lsl"``, or ``"unsynchronised"`` without offsets) and a JSON summary.

    Notes
    -----
    ``offset_s = median(values)``, ``offset_sd_s = 1.4826 MAD(values)`` (inf for fewer than 3 offsets). With at least
    `MIN_DRIFT_OFFSETS` offsets spanning `MIN_DRIFT_SPAN_S`: Theil-Sen fit ``value = a + b t``. A significant
    slope (``|b| > 3 SD_b``) gives ``drift_ppm = 1e6 b``, ``offset_s = a`` and
    ``offset_sd_s = sqrt(SD_resid**2 + (SD_b median(t))**2)``; otherwise ``drift_ppm = 0``,
    ``drift_sd_ppm = 1e6 SD_b`` and ``offset_sd_s = SD_resid`` (robust SD of the residuals).
    """
    k = times.size
    if k == 0:
        entry = ClockEntry(clock=clock, method="unsynchronised",
                           quality="LSL: no clock offsets recorded for this stream")
        return entry, {"n_offsets": 0}
    med = float(np.median(values))
    sd = float(1.4826 * np.median(np.abs(values - med))) if k >= 3 else math.inf
    summary: dict[str, Any] = {"n_offsets": int(k), "median_offset_s": med, "robust_sd_s": sd,
                               "span_s": float(times.max() - times.min())}
    span = float(times.max() - times.min())
    drift_sd_ppm = math.nan
    if k >= MIN_DRIFT_OFFSETS and span >= MIN_DRIFT_SPAN_S:
        from scipy.stats import theilslopes

        slope, intercept, lo, hi = theilslopes(values, times, alpha=0.6827)
        slope_sd = (hi - lo) / 2
        resid = values - (intercept + slope * times)
        r_sd = float(1.4826 * np.median(np.abs(resid - np.median(resid))))
        t_mid = float(np.median(times))
        summary.update(fit_drift_ppm=slope * 1e6, fit_drift_sd_ppm=slope_sd * 1e6, fit_intercept_s=float(intercept),
                       fit_residual_robust_sd_s=r_sd, fit_median_time_s=t_mid)
        if abs(slope) > 3 * slope_sd:
            # offset at t = 0; its SD includes the slope's SD extrapolated from the measured times to t = 0
            a_sd = math.hypot(r_sd, slope_sd * t_mid)
            entry = ClockEntry(clock=clock, offset_s=float(intercept), offset_sd_s=a_sd,
                               drift_ppm=float(slope * 1e6), drift_sd_ppm=float(slope_sd * 1e6), method="lsl",
                               quality=(f"LSL clock offsets to the recording host: {k} over {span:.0f} s; Theil-Sen "
                                        f"drift {slope * 1e6:.3g} +- {slope_sd * 1e6:.2g} ppm; offset "
                                        f"{intercept + slope * t_mid:.9g} +- {r_sd:.2g} s at stream time "
                                        f"{t_mid:.6g} s (offset_s is the value extrapolated to time 0)"))
            return entry, summary
        drift_sd_ppm = float(slope_sd * 1e6)
        sd = r_sd if k >= 3 else sd
    why = ("drift not significant (|slope| <= 3 SD): 0 +- its SD" if math.isfinite(drift_sd_ppm)
           else "too short to estimate drift")
    entry = ClockEntry(clock=clock, offset_s=med, offset_sd_s=sd, drift_ppm=0.0, drift_sd_ppm=drift_sd_ppm,
                       method="lsl",
                       quality=(f"LSL clock offsets to the recording host: {k} over {span:.0f} s, median {med:.9g} s, "
                                f"robust SD {sd:.3g} s; {why}"))
    return entry, summary


def _offset_epochs(times: NDArray[np.float64], values: NDArray[np.float64]) -> list[NDArray[np.int64]]:
    """Indices of the clock offsets in each clock epoch (split where time goes back or the offset jumps > 1 s)."""
    if times.size == 0:
        return []
    cut = np.flatnonzero((np.diff(times) < 0) | (np.abs(np.diff(values)) > RESET_JUMP_S)) + 1
    return np.split(np.arange(times.size), cut)


def _segments(p: Path, name: str, t: NDArray[np.float64]) -> list[tuple[int, int]]:
    """Split points of the time stamps at clock resets; small non-increasing steps raise."""
    if t.size < 2:
        return [(0, t.size)]
    d = np.diff(t)
    bad = np.flatnonzero(d <= 0)
    resets = bad[d[bad] < -RESET_JUMP_S]
    small = np.setdiff1d(bad, resets)
    if small.size:
        i = int(small[0]) + 1
        raise FileFormatError(p, f"stream {name!r}: time stamps must increase; {small.size} sample(s) do not (the "
                                 f"first at {t[i]:.6f} s after {t[i - 1]:.6f} s). The stream was pushed with "
                                 "repeated time stamps; fusionlab keeps raw LSL time stamps and cannot order them")
    bounds = [0, *(int(r) + 1 for r in resets), t.size]
    return list(itertools.pairwise(bounds))


def _epoch_for(seg_t: NDArray[np.float64], times: NDArray[np.float64],
               epochs: list[NDArray[np.int64]]) -> NDArray[np.int64]:
    """The clock-offset epoch that covers a data segment best (nearest in time when none overlaps)."""
    if not epochs:
        return np.zeros(0, dtype=np.int64)
    lo, hi = float(seg_t[0]), float(seg_t[-1])

    def score(ep: NDArray[np.int64]) -> tuple[float, float]:
        a, b = float(times[ep].min()), float(times[ep].max())
        overlap = min(hi, b) - max(lo, a)
        gap = max(a - hi, lo - b, 0.0)
        return (overlap, -gap)

    return max(epochs, key=score)


def read_xdf(path: str | os.PathLike[str], *, prefix: str | None = None,
             on_clock_reset: Policy = "warn") -> Session:
    """Read an XDF file: one stream per numeric LSL stream, markers as events, LSL clock offsets per stream.

    Parameters
    ----------
    path
        The ``.xdf`` file (LabRecorder).
    prefix
        Stream-name prefix; default: the file stem and a dot (``"minimal.SendDataC"``).
    on_clock_reset
        What to do when a stream's time stamps jump back (a host clock reset): ``"warn"`` (default) split the
        stream into segments with their own clocks and warn, ``"ignore"`` split silently, ``"raise"`` refuse the
        file (`FileFormatError`).

    Returns
    -------
    Session
        ``<prefix><lsl name>`` per numeric stream (``.seg<k>`` per segment after a clock reset): ``(n, n_channels)``
        float, irregular (``time_s`` = raw LSL time stamps, s), channels from ``desc/channels`` (else ``ch1``...),
        units converted to SI where the header gives a known unit (else ``"1"`` with ``orig_units`` "unknown"),
        modality ``analog`` for EEG/EMG/ECG/EOG/ExG/GSR/Audio types, else ``other``; frame ``none``. Clock per LSL
        stream (and segment): ``"xdf:<stem>:<sha256[:8]>:<stream_id>"``, method ``lsl`` (see the module
        docstring). ``meta``: LSL header fields, ``lsl_clock_offsets`` ([time, value] pairs of this segment),
        nominal and effective rates, footer. Events from string streams (``source="annotation"``,
        ``detector="xdf:<file name>"``) on their stream's clock.

    Raises
    ------
    FileFormatError
        Not an XDF file, unreadable (pyxdf error), time stamps that do not increase within a clock epoch, a clock
        reset with ``on_clock_reset="raise"``.
    """
    p = check_path(path)
    check_policy("on_clock_reset", on_clock_reset)
    options: dict[str, Any] = {"prefix": prefix, "on_clock_reset": on_clock_reset}
    with p.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"XDF:":
        raise FileFormatError(p, f"not an XDF file: it starts with {magic!r} instead of the magic 'XDF:'")
    import pyxdf

    try:
        xdf_streams, file_header = pyxdf.load_xdf(str(p), synchronize_clocks=False, dejitter_timestamps=False,
                                                  verbose=False)
    except Exception as e:  # pyxdf raises bare Exception/ValueError/struct.error on corrupt chunks
        raise FileFormatError(p, f"pyxdf could not read the file ({type(e).__name__}: {e}); it is truncated or "
                                 "corrupt") from e
    sha = file_sha256(p)
    prefix = stream_prefix(p) if prefix is None else prefix
    names, _ = unique_labels([_safe(_first(s["info"], "name", "stream")) for s in xdf_streams])
    streams: list[Stream] = []
    events: list[Event] = []
    clocks: dict[str, ClockEntry] = {}
    summary: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    string_samples: dict[str, list[list[Any]]] = {}
    resets: list[dict[str, Any]] = []
    for s, safe_name in zip(xdf_streams, names, strict=True):
        info = s["info"]
        sid = info.get("stream_id")
        lsl_name = _first(info, "name", "stream")
        fmt = _first(info, "channel_format", "float32")
        n_ch = int(float(_first(info, "channel_count", "1") or 1))
        nominal = float(_first(info, "nominal_srate", "0") or 0)
        t = np.asarray(s["time_stamps"], dtype=np.float64)
        ct = np.asarray(s.get("clock_times", []), dtype=np.float64)
        cv = np.asarray(s.get("clock_values", []), dtype=np.float64)
        footer = _plain(s.get("footer", {}).get("info", {})) if isinstance(s.get("footer"), dict) else {}
        header_fields = {k: _first(info, k) for k in ("name", "type", "channel_count", "channel_format",
                                                      "nominal_srate", "source_id", "created_at", "uid",
                                                      "session_id", "hostname", "version") if k in info}
        entry_summary: dict[str, Any] = {"stream_id": sid, "name": lsl_name, "type": _first(info, "type"),
                                         "channel_format": fmt, "channel_count": n_ch, "nominal_srate_hz": nominal,
                                         "n_samples": int(t.size), "n_clock_offsets": int(ct.size),
                                         "footer": footer}
        summary.append(entry_summary)
        if not footer:
            entry_summary["footer_missing"] = True
            warnings.warn(f"{p.name}: stream {lsl_name!r} has no footer, so the recording was cut short (a crash or a "
                          f"truncated copy); {t.size} sample(s) could be read. Use the complete file if you have it.",
                          FusionlabWarning, stacklevel=2)
        elif str(footer.get("sample_count", "")).strip().isdigit() and int(footer["sample_count"]) != t.size:
            # LabRecorder's footer count is known to be off by one in some versions (xdf-modules README)
            entry_summary["footer_sample_count_differs"] = {"footer": int(footer["sample_count"]), "read": int(t.size)}
        if t.size == 0:
            skipped.append({"stream_id": sid, "name": lsl_name, "reason": "0 samples"})
            entry_summary["skipped"] = "0 samples"
            logger.info("%s: skipping empty LSL stream %r", p.name, lsl_name)
            continue
        segs = _segments(p, lsl_name, t)
        epochs = _offset_epochs(ct, cv)
        if len(segs) > 1 or len(epochs) > 1:
            jumps = [{"after_s": float(t[a - 1]), "to_s": float(t[a])} for a, _ in segs[1:]]
            resets.append({"stream": lsl_name, "segments": len(segs), "offset_epochs": len(epochs), "jumps": jumps})
            if on_clock_reset == "raise":
                raise FileFormatError(p, f"stream {lsl_name!r}: the LSL clock was reset during the recording (time "
                                         f"stamps jump back {len(segs) - 1} time(s), first from "
                                         f"{jumps[0]['after_s'] if jumps else float('nan'):.3f} s to "
                                         f"{jumps[0]['to_s'] if jumps else float('nan'):.3f} s; {len(epochs)} clock-"
                                         "offset epochs). Read it with on_clock_reset='warn' to split it into "
                                         "segments with their own clocks")
            if on_clock_reset == "warn":
                warnings.warn(f"{p.name}: stream {lsl_name!r}: the LSL clock was reset during the recording; split "
                              f"into {len(segs)} segments with their own clocks ({len(epochs)} clock-offset "
                              "epochs). read_xdf(..., on_clock_reset='ignore') silences this warning.",
                              FusionlabWarning, stacklevel=2)
        entry_summary["segments"] = []
        base_clock = f"{ADAPTER}:{p.stem}:{sha[:8]}:{sid}"
        for k, (a, b) in enumerate(segs, start=1):
            seg_t = t[a:b]
            suffix = f".seg{k}" if len(segs) > 1 else ""
            clock_id = base_clock + suffix
            ep = _epoch_for(seg_t, ct, epochs)
            entry, clock_summary = lsl_clock_entry(clock_id, ct[ep], cv[ep])
            clocks[clock_id] = entry
            offsets = [[float(x), float(y)] for x, y in zip(ct[ep], cv[ep], strict=True)]
            seg_info = {"segment": k, "clock": clock_id, "n_samples": int(b - a), "first_s": float(seg_t[0]),
                        "last_s": float(seg_t[-1]), **clock_summary}
            entry_summary["segments"].append(seg_info)
            meta = {**base_meta(p, ADAPTER, sha, options), "lsl": header_fields, "stream_id": sid,
                    "segment": k if suffix else None, "lsl_clock_offsets": offsets, "lsl_clock": clock_summary,
                    "nominal_srate_hz": nominal,
                    "effective_srate_hz": ((b - a - 1) / float(seg_t[-1] - seg_t[0]) if b - a > 1 else None),
                    "footer": footer, "time_note": "raw LSL time stamps of the sending host (not synchronised, "
                                                   "not dejittered)"}
            if fmt == "string":
                samples = s["time_series"][a:b]
                for ts_, row in zip(seg_t, samples, strict=True):
                    text = "; ".join(str(v) for v in row) if isinstance(row, list | tuple) else str(row)
                    if _event_like(text):
                        kind, side = normalise_event(text)
                        events.append(Event(time_s=float(ts_), kind=kind, side=side, source="annotation",
                                            label=text.strip(), clock=clock_id, detector=f"xdf:{p.name}"))
                    else:
                        string_samples.setdefault(f"{lsl_name}{suffix}", []).append([float(ts_), text[:4000]])
                continue
            data = np.asarray(s["time_series"], dtype=np.float64)[a:b]
            if data.ndim == 1:
                data = data.reshape(-1, 1)
            n_inf = int(np.count_nonzero(np.isinf(data)))
            if n_inf:
                data = np.where(np.isinf(data), np.nan, data)
                meta["infinite_values_set_to_nan"] = n_inf
            labels, raw_units = _channel_descriptions(info, data.shape[1])
            labels_u, dups = unique_labels(labels)
            units, orig = [], []
            for j, u in enumerate(raw_units):
                if not u:
                    units.append("1")
                    orig.append("unknown")
                    continue
                try:
                    conv = to_si(u)
                except UnitError:
                    units.append("1")
                    orig.append(u)
                    meta.setdefault("unconverted_units", {})[labels_u[j]] = u
                    continue
                data[:, j] *= conv.factor
                units.append(conv.si_unit)
                orig.append(u)
            if dups:
                meta["duplicate_labels"] = dups
            lsl_type = _first(info, "type").strip().lower()
            streams.append(Stream(
                name=f"{prefix}{safe_name}{suffix}", modality="analog" if lsl_type in _ANALOG_TYPES else "other",
                data=data, channels=labels_u, units=tuple(units), orig_units=tuple(orig), frame="none",
                time_s=seg_t.copy(), clock=clock_id, meta=meta,
                storage_dtype="float32" if fmt in _STORE_FLOAT32 and not any(u != "1" for u in units)
                else "float64"))
    if not streams and not events:
        raise FileFormatError(p, "the file holds no samples: every LSL stream is empty")
    if not streams:
        raise FileFormatError(p, "the file holds only marker (string) streams and no numeric samples; fusionlab "
                                 "sessions need at least one stream")
    metadata = {"format": "XDF", "file_header": _plain(file_header.get("info", {})), "streams": summary,
                "skipped_streams": skipped, "clock_resets": resets, "string_samples": string_samples,
                "time_note": "each LSL stream keeps its own clock and raw time stamps; clock entries map them to the "
                             "recording host's LSL clock"}
    src = source_info(p, ADAPTER, __version__, options, metadata, sha256=sha)
    return Session(streams=tuple(streams), events=tuple(sorted(events, key=lambda e: (e.clock, e.time_s))),
                   clocks=clocks, sources=(src,))
