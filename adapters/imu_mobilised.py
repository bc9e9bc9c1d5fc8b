"""Mobilise-D ``data.mat`` (Technical Validation Study format): lower-back IMU + reference walking bouts.

Structure (MATLAB v5/v7 struct, read with scipy.io.loadmat)::

    data.TimeMeasure1.Test5.Trial1
        StartDateTime, TimeZone
        SU.LowerBack.{Acc (n,3) g, Gyr (n,3) deg/s, Mag (n,3) µT, Bar (n,) hPa, Timestamp (n,) Unix s, Fs.{Acc,...}}
        Standards.{Stereophoto, INDIP}.{ContinuousWalkingPeriod, MicroWB}[k]  (one struct per walking bout)
            Start, End (s), NumberStrides, WalkingSpeed, ...,
            InitialContact_Event (s), InitialContact_LeftRight ("Left"/"Right"),
            FinalContact_Event (s), FinalContact_LeftRight,
            Stride_InitialContacts (k, 2) (Stereophoto: s; INDIP: reference samples), Stride_Length (m),
            Stride_Duration (s), Stride_Speed (m/s), Stance_Duration, Swing_Duration (s), ...
        Standards.<system>.Fs

Times: each trial's IMU stream starts at ``Timestamp[0]`` minus the earliest ``Timestamp`` of the file, so all
trials of one file sit on one device clock (the same sensor) in their real order. Reference times count from the
start of the trial with MATLAB's 1-based samples (sample ``k`` at ``k / fs``); they are shifted by ``-1 / fs`` so
that they refer to fusionlab's 0-based samples, as mobgap's ``parse_reference_parameters`` does.
"""

from __future__ import annotations

import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from fusionlab.adapters._common import base_meta, check_path, file_identity, unsynchronised_session
from fusionlab.adapters._imu_common import (
    Policy,
    apply_unit_check,
    build_imu_stream,
    check_imu_units,
    check_policy,
)
from fusionlab.consts import PLACEMENTS
from fusionlab.exceptions import FileFormatError, FusionlabWarning, ValidationError
from fusionlab.model import Event, Session, Stream
from fusionlab.units import to_si

__all__ = ["MOBILISED_UNITS", "looks_like_mobilised_mat", "read_mobilised_mat"]

ADAPTER = "mobilised_mat"
MOBILISED_UNITS: dict[str, str] = {"acc": "g", "gyr": "deg/s", "mag": "uT", "bar": "hPa"}
"""Units of the Mobilise-D data standard (Palmerini et al. 2023, Sci Data 10:38)."""
_LEVELS = {"wb": "ContinuousWalkingPeriod", "lwb": "MicroWB"}
_STRIDE_FIELDS = (  # Mobilise-D field -> (metadata key, unit)
    ("Stride_Length", "stride_length_m"),
    ("Stride_Duration", "stride_duration_s"),
    ("Stride_Speed", "stride_speed_mps"),
    ("Stance_Duration", "stance_duration_s"),
    ("Swing_Duration", "swing_duration_s"),
    ("SingleSupport_Duration", "single_support_duration_s"),
    ("DoubleSupport_Duration", "double_support_duration_s"),
    ("Stride_Height", "stride_height_m"),
)
_BOUT_FIELDS = (
    ("Start", "start_s"), ("End", "end_s"), ("Duration", "duration_s"), ("NumberStrides", "n_strides"),
    ("Length", "length_m"), ("WalkingSpeed", "walking_speed_mps"), ("Cadence", "cadence_steps_per_min"),
    ("AverageStrideLength", "average_stride_length_m"), ("StrideFrequency", "stride_frequency"),
    ("TerminationReason", "termination_reason"), ("Turning_Flag", "turning_flag"),
)


def looks_like_mobilised_mat(head: bytes) -> bool:
    """True for a MATLAB v5 MAT-file whose first variable is called ``data`` (sniffed from the first bytes)."""
    if not head.startswith(b"MATLAB 5.0 MAT-file") or len(head) < 136:
        return False
    body = head[128:]
    typ = struct.unpack("<I", body[:4])[0]
    if typ == 15:  # miCOMPRESSED
        try:
            body = zlib.decompressobj().decompress(body[8:], 4096)
        except zlib.error:
            return False
    return b"\x01\x00\x04\x00data" in body[:256] or b"\x04\x00\x00\x00data" in body[:256]


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def _placement(position: str) -> str:
    snake = _snake(position)
    return snake if snake in PLACEMENTS else "unknown"


def _walk(obj: Any, key: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Yield (level names, trial struct) for every struct holding ``SU`` or ``Standards``."""
    fields = getattr(obj, "_fieldnames", None)
    if fields is None:
        return
    if "SU" in fields or "Standards" in fields:
        yield key, obj
        return
    for f in fields:
        yield from _walk(getattr(obj, f), (*key, f))


def _as_list(v: Any) -> list[Any]:
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            return list(v.ravel())
        return v.ravel().tolist()
    if v is None:
        return []
    return [v]


def _num(v: Any) -> float:
    try:
        arr = np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        return math.nan
    return float(arr[0]) if arr.size == 1 else math.nan


def _scalar(v: Any) -> Any:
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        if v.size == 0:
            return None
        if v.size == 1:
            return _scalar(v.ravel()[0])
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, int | float):
        return v
    return str(v)


def _matches(wanted: str | int | None, name: str, prefix: str) -> bool:
    if wanted is None:
        return True
    text = str(wanted).strip().lower()
    if text.isdigit():
        text = f"{prefix}{text}"
    return text == name.lower()


def _trial_name(key: tuple[str, ...], include_first: bool) -> str:
    parts = list(key if include_first else key[1:]) or list(key)
    return "_".join(p.lower() for p in parts)


def read_mobilised_mat(path: str | os.PathLike[str], *, prefix: str | None = None, test: str | int | None = None,
                       trial: str | int | None = None, reference_level: Literal["wb", "lwb"] = "wb",
                       check_units: Policy = "raise") -> Session:
    """Read a Mobilise-D ``data.mat``: one IMU stream per trial and sensor, reference walking bouts and contacts.

    Parameters
    ----------
    path
        The ``data.mat`` file (MATLAB v5/v7; v7.3 HDF5 files are refused with advice).
    prefix
        Stream-name prefix; default: the file stem and a dot (``"data.test5_trial1.lower_back"``).
    test, trial
        Read only this test and/or trial (``"Test5"`` or ``5``; ``"Trial1"`` or ``1``). Default: all.
    reference_level
        Which reference walking bouts to use: ``"wb"`` (``ContinuousWalkingPeriod``, default, as mobgap) or
        ``"lwb"`` (``MicroWB``, level walking bouts).
    check_units
        ``"raise"`` (default), ``"warn"`` or ``"ignore"`` when the values contradict the Mobilise-D units (acc g,
        gyr deg/s, mag µT); see `check_imu_units`.

    Returns
    -------
    Session
        Per trial and sensor position (``SU.LowerBack`` -> ``lower_back``):

        * ``<prefix><test>_<trial>.<placement>``: ``imu`` ``(n, 3, 3)`` float64, ``acc`` m/s² (from g), ``gyr``
          rad/s (from deg/s), ``mag`` T (from µT), frame ``sensor:<placement>``, regular at ``Fs``;
        * ``<prefix><test>_<trial>.<placement>.pressure``: ``other`` ``(n, 1)`` barometric pressure, Pa (from hPa).

        The time-measure level is added to the names (``timemeasure2_test5_trial1``) only when the file has more
        than one. All streams share the clock ``"mobilised_mat:<stem>:<sha256[:8]>"``. Reference events
        (``source="reference"``, ``detector="mobilised:<system>"``, e.g. ``mobilised:INDIP``,
        ``mobilised:Stereophoto``): ``walking_bout_start``/``walking_bout_end`` (side ``general``),
        ``foot_strike`` (initial contacts, side left/right) and ``foot_off`` (final contacts). Per-bout and
        per-stride reference parameters (stride length m, stride duration s, speed m/s, stance and swing s, ...
        as lists, with each stride's start/end time on the device clock and side) are in the source metadata
        under ``reference[<trial>][<system>]``.

    Raises
    ------
    FileFormatError
        Not a MAT-file, a v7.3 file, no ``data`` struct with trials, different rates per sensor type, mismatched
        array lengths; `ImuUnitError` (a `FileFormatError`) when the values contradict the declared units.
    ValidationError
        Invalid options, or ``test``/``trial`` matching nothing.
    """
    p = check_path(path)
    check_policy("check_units", check_units)
    if reference_level not in _LEVELS:
        msg = (f"Invalid value for 'reference_level'. Allowed values are wb, lwb, but got {reference_level!r} "
               "instead.")
        raise ValidationError(msg)
    options: dict[str, Any] = {"prefix": prefix, "test": test, "trial": trial, "reference_level": reference_level,
                               "check_units": check_units}
    head = p.read_bytes()[:128]
    if b"MATLAB 7.3 MAT-file" in head or head.startswith(b"\x89HDF"):
        raise FileFormatError(p, "this is a MATLAB v7.3 (HDF5) MAT-file, which the Mobilise-D reader does not read; "
                                 "re-save it in MATLAB with save('data.mat', 'data', '-v7')")
    if not head.startswith(b"MATLAB 5.0 MAT-file"):
        raise FileFormatError(p, "not a MATLAB MAT-file (no 'MATLAB 5.0 MAT-file' header); a Mobilise-D data.mat "
                                 "is expected")
    import scipy.io as sio

    try:
        mat = sio.loadmat(str(p), squeeze_me=True, struct_as_record=False, mat_dtype=True)
    except (ValueError, TypeError, OSError, NotImplementedError, zlib.error, struct.error) as e:
        raise FileFormatError(p, f"scipy could not read the MAT-file ({e}); it is truncated or corrupt") from e
    if "data" not in mat:
        names = [k for k in mat if not k.startswith("__")]
        raise FileFormatError(p, f"no variable 'data' in the MAT-file (found {', '.join(names) or 'none'}); a "
                                 "Mobilise-D data.mat holds data.<TimeMeasure>.<Test>.<Trial>. (infoForAlgo.mat is "
                                 "the participant information file, not the data)")
    trials = list(_walk(mat["data"]))
    if not trials:
        raise FileFormatError(p, "the 'data' struct holds no trial (no struct with 'SU' or 'Standards' fields); it is "
                                 "not in the Mobilise-D format")
    first_levels = {k[0] for k, _ in trials if k}
    selected = [(k, t) for k, t in trials
                if (len(k) < 2 or _matches(test, k[-2], "test")) and (not k or _matches(trial, k[-1], "trial"))]
    if not selected:
        avail = ", ".join(".".join(k) for k, _ in trials)
        msg = (f"Invalid value for 'test'/'trial': nothing matches test={test!r}, trial={trial!r} ({p.name}); the "
               f"file holds {avail}.")
        raise ValidationError(msg)

    # one device clock for the file: t = Timestamp - earliest Timestamp over all trials
    firsts = []
    for _, t in trials:
        su = getattr(t, "SU", None)
        for pos in getattr(su, "_fieldnames", None) or []:
            ts = getattr(getattr(su, pos), "Timestamp", None)
            if ts is not None and np.size(ts):
                firsts.append(float(np.asarray(ts, dtype=np.float64).ravel()[0]))
    t0 = min(firsts) if firsts else None

    sha, clock_id, prefix = file_identity(p, ADAPTER, prefix)
    streams: list[Stream] = []
    events: list[Event] = []
    reference_meta: dict[str, Any] = {}
    trial_meta: dict[str, Any] = {}
    for key, t in selected:
        tname = _trial_name(key, include_first=len(first_levels) > 1)
        where = ".".join(key)
        su = getattr(t, "SU", None)
        positions = list(getattr(su, "_fieldnames", None) or [])
        tinfo: dict[str, Any] = {"levels": list(key), "start_date_time": _scalar(getattr(t, "StartDateTime", None)),
                                 "time_zone": _scalar(getattr(t, "TimeZone", None)), "sensors": {}}
        trial_start = trial_fs = None
        for pos in positions:
            sensor = getattr(su, pos)
            st, info = _sensor_streams(p, sensor, pos, where, tname, prefix, clock_id, t0, sha, options,
                                       check_units)
            streams.extend(st)
            tinfo["sensors"][pos] = info
            if trial_start is None:
                trial_start, trial_fs = info["start_s"], info["rate_hz"]
                trial_end = info["start_s"] + (info["n_samples"] - 1) / info["rate_hz"]
        trial_meta[tname] = tinfo
        standards = getattr(t, "Standards", None)
        if standards is None or trial_start is None:
            continue
        ref_t: dict[str, Any] = {}
        for system in standards._fieldnames:
            ref = getattr(standards, system)
            if not hasattr(ref, "_fieldnames"):
                continue
            ev, info = _reference(p, ref, system, reference_level, trial_start, trial_fs, trial_end, clock_id, where)
            events.extend(ev)
            ref_t[system] = info
        reference_meta[tname] = ref_t

    if not streams:
        raise FileFormatError(p, "the selected trials hold no sensor data (no SU.<position>.Acc)")
    subject, info_note = _info_for_algo(p, sorted(first_levels))
    metadata = {"format": "Mobilise-D data.mat", "trials": trial_meta, "reference_level": _LEVELS[reference_level],
                "subject_parameters": subject, "subject_parameters_source": info_note,
                "reference": reference_meta, "units": dict(MOBILISED_UNITS),
                "clock_t0_unix_s": t0, "time_note": "stream start_s = Timestamp[0] - clock_t0_unix_s; reference times "
                                                    "shifted by -1/fs (MATLAB 1-based samples)"}
    quality = ("sensor Unix timestamps relative to the file's first sample" if t0 is not None
               else "no timestamps: each trial starts at 0 s")
    return unsynchronised_session(p, ADAPTER, sha, streams, options, metadata, quality,
                                  events=sorted(events, key=lambda e: (e.time_s, e.kind)))


_INFO_FIELDS = {"Height": ("height_m", 0.01), "Weight": ("mass_kg", 1.0), "SensorHeight": ("sensor_height_m", 0.01)}


def _info_for_algo(p: Path, time_measures: list[str]) -> tuple[dict[str, Any], str]:
    """Participant information from ``infoForAlgo.mat`` beside ``data.mat`` (Mobilise-D): stature, mass and the
    lower-back sensor height (cm in the file, m here), for the first time measure of the selected trials."""
    info_path = p.with_name("infoForAlgo.mat")
    if not info_path.is_file():
        return {}, "no infoForAlgo.mat beside the data file"
    import scipy.io as sio

    try:
        info = sio.loadmat(str(info_path), squeeze_me=True, struct_as_record=False)["infoForAlgo"]
    except (KeyError, ValueError, TypeError, OSError, NotImplementedError, zlib.error, struct.error) as e:
        warnings.warn(f"{info_path.name}: not read ({e}); subject parameters unknown", FusionlabWarning,
                      stacklevel=3)
        return {}, f"{info_path.name} could not be read"
    names = list(getattr(info, "_fieldnames", None) or [])
    tm = next((n for n in time_measures if n in names), names[0] if names else None)
    if tm is None:
        return {}, f"{info_path.name} holds no time measure"
    entry = getattr(info, tm)
    out: dict[str, Any] = {}
    for field, (key, scale) in _INFO_FIELDS.items():
        v = _num(getattr(entry, field, None))
        if math.isfinite(v) and v > 0:
            out[key] = v * scale
    for field in getattr(entry, "_fieldnames", None) or []:
        if field not in _INFO_FIELDS:
            v = _scalar(getattr(entry, field))
            if isinstance(v, str | int | float) and not (isinstance(v, float) and not math.isfinite(v)):
                out[f"{_snake(field)}_raw"] = v
    return out, f"{info_path.name}, {tm} (Height, SensorHeight in cm; Weight in kg)"


def _array(p: Path, sensor: Any, field: str, where: str, ncols: int | None) -> NDArray[np.float64] | None:
    v = getattr(sensor, field, None)
    if v is None or np.size(v) == 0:
        return None
    arr = np.asarray(v, dtype=np.float64)
    if ncols is not None:
        if arr.ndim == 1 and arr.size == ncols:
            arr = arr.reshape(1, ncols)
        if arr.ndim != 2 or arr.shape[1] != ncols:
            raise FileFormatError(p, f"{where}: {field} has shape {arr.shape}; expected (n, {ncols})")
    else:
        arr = arr.reshape(-1)
    return arr


def _sensor_streams(p: Path, sensor: Any, pos: str, where: str, tname: str, prefix: str, clock_id: str,
                    t0: float | None, sha: str, options: dict[str, Any],
                    check_units: str) -> tuple[list[Stream], dict[str, Any]]:
    loc = f"{where}.SU.{pos}"
    raw = {ch: _array(p, sensor, ch.capitalize(), loc, 3) for ch in ("acc", "gyr", "mag")}
    raw = {k: v for k, v in raw.items() if v is not None}
    bar = _array(p, sensor, "Bar", loc, None)
    if "acc" not in raw:
        raise FileFormatError(p, f"{loc} has no Acc array")
    n = raw["acc"].shape[0]
    for name, arr in [*raw.items(), ("bar", bar)]:
        if arr is not None and arr.shape[0] != n:
            raise FileFormatError(p, f"{loc}: {name.capitalize()} has {arr.shape[0]} samples but Acc has {n}")
    fs_struct = getattr(sensor, "Fs", None)
    rates = {}
    if hasattr(fs_struct, "_fieldnames"):
        rates = {f: _num(getattr(fs_struct, f)) for f in fs_struct._fieldnames}
    elif fs_struct is not None:
        rates = {"all": _num(fs_struct)}
    used = {k: v for k, v in rates.items() if k.lower() in (*raw, "bar") or k == "all"}
    if not used or not all(math.isfinite(v) and v > 0 for v in used.values()):
        raise FileFormatError(p, f"{loc}: no valid sampling rate in Fs ({rates})")
    if len(set(used.values())) > 1:
        raise FileFormatError(p, f"{loc}: the sensor types have different rates {used}; fusionlab expects one rate "
                                 "per sensor (resample in MATLAB first)")
    fs = next(iter(used.values()))
    ts = _array(p, sensor, "Timestamp", loc, None)
    time_note = ""
    if ts is not None and ts.size == n and t0 is not None:
        start = round(float(ts[0] - t0), 6)  # Unix times in double: round away the ~1e-7 s representation error
        span_err = (float(ts[-1] - ts[0]) * fs - (n - 1))
        if abs(span_err) > 1.0:
            time_note = (f"Timestamp spans {(ts[-1] - ts[0]):.3f} s for {n} samples at {fs:g} Hz ({span_err:+.1f} "
                         "samples); the stream uses the nominal rate")
    else:
        start = 0.0
        time_note = "no Timestamp: the trial starts at 0 s"
    place = _placement(pos)
    check = check_imu_units(raw.get("acc"), raw.get("gyr"), fs, MOBILISED_UNITS, mag=raw.get("mag"))
    apply_unit_check(check, check_units, p, where=loc,
                     fix="the Mobilise-D standard is acc g, gyr deg/s, mag uT; correct the file")
    si = {ch: raw[ch] * to_si(MOBILISED_UNITS[ch]).factor for ch in raw}
    base = f"{prefix}{tname}.{place if place != 'unknown' else _snake(pos)}"
    meta = {**base_meta(p, ADAPTER, sha, options), "placement": place, "sensor_id": f"SU.{pos}", "trial": where,
            "unit_check": check, "timestamp_first_unix_s": float(ts[0]) if ts is not None and ts.size else None,
            "time_note": time_note}
    out = [build_imu_stream(base, si, {ch: MOBILISED_UNITS[ch] for ch in si}, placement=place, clock=clock_id,
                            meta=meta, rate_hz=fs, start_s=start)]
    if bar is not None:
        pa = to_si(MOBILISED_UNITS["bar"])
        out.append(Stream(name=f"{base}.pressure", modality="other", data=(bar * pa.factor).reshape(n, 1),
                          channels=("pressure",), units=(pa.si_unit,), orig_units=(MOBILISED_UNITS["bar"],),
                          frame="none", rate_hz=fs, start_s=start, clock=clock_id,
                          meta={**{k: v for k, v in meta.items() if k != "unit_check"},
                                "quantity": "barometric pressure"}))
    info = {"placement": place, "rate_hz": fs, "rates": rates, "n_samples": n, "start_s": start,
            "channels": sorted(raw) + (["bar"] if bar is not None else []), "unit_check": check["status"],
            "time_note": time_note}
    return out, info


def _stride_bounds(sic: NDArray[np.float64], ic_s: NDArray[np.float64], ref_fs: float) -> tuple[
        NDArray[np.float64], str]:
    """Stride start/end ICs in seconds: INDIP gives reference samples, Stereophoto seconds (as mobgap detects)."""
    if sic.size == 0:
        return sic, "none"
    finite_ic = ic_s[np.isfinite(ic_s)]
    as_samples = sic / ref_fs
    if (np.all(np.isfinite(sic)) and np.allclose(sic, np.round(sic))
            and np.all(np.min(np.abs(as_samples.reshape(-1, 1) - finite_ic.reshape(1, -1)), axis=1) < 1e-6)
            and finite_ic.size):
        return as_samples, "samples"
    return sic, "seconds"


def _reference(p: Path, ref: Any, system: str, level: str, start: float, fs: float, end: float, clock_id: str,
               where: str) -> tuple[list[Event], dict[str, Any]]:
    """Events and per-stride parameters of one reference system of one trial."""
    level_name = _LEVELS[level]
    bouts = _as_list(getattr(ref, level_name, None)) if hasattr(ref, level_name) else []
    ref_fs = _num(getattr(ref, "Fs", math.nan))
    shift = start - 1.0 / fs  # MATLAB 1-based reference times -> device clock
    detector = f"mobilised:{system}"
    events: list[Event] = []
    seen: set[tuple[str, str, float]] = set()
    out_bouts = []
    n_nan_ic = 0
    for b_id, bout in enumerate(bouts, start=1):
        if not hasattr(bout, "_fieldnames"):
            continue
        info: dict[str, Any] = {"bout": b_id}
        for field, key in _BOUT_FIELDS:
            if field in bout._fieldnames:
                info[key] = _scalar(getattr(bout, field))
        for field, key in (("Start", "start"), ("End", "end")):
            v = _num(getattr(bout, field, math.nan))
            if math.isfinite(v):
                kind = f"walking_bout_{key}"
                events.append(Event(time_s=shift + v, kind=kind, side="general", source="reference",
                                    label=f"{system} {level_name} {b_id} {key}", clock=clock_id, detector=detector))
                info[f"{key}_device_s"] = shift + v
        ic = np.asarray(_as_list(getattr(bout, "InitialContact_Event", [])), dtype=np.float64)
        ic_lr = [str(s) for s in _as_list(getattr(bout, "InitialContact_LeftRight", []))]
        fc = np.asarray(_as_list(getattr(bout, "FinalContact_Event", [])), dtype=np.float64)
        fc_lr = [str(s) for s in _as_list(getattr(bout, "FinalContact_LeftRight", []))]
        for times, sides, kind, name in ((ic, ic_lr, "foot_strike", "IC"), (fc, fc_lr, "foot_off", "FC")):
            if len(sides) != times.size:
                raise FileFormatError(p, f"{where}.Standards.{system}.{level_name}({b_id}): {times.size} "
                                         f"{name} times but {len(sides)} left/right labels")
            for t_ref, lr in zip(times, sides, strict=True):
                if not math.isfinite(t_ref):
                    n_nan_ic += kind == "foot_strike"
                    continue
                side = lr.strip().lower()
                side = side if side in ("left", "right") else "general"
                key = (kind, side, round(float(t_ref), 6))
                if key in seen:
                    continue
                seen.add(key)
                events.append(Event(time_s=shift + float(t_ref), kind=kind, side=side, source="reference",
                                    label=f"{system} {lr} {name}", clock=clock_id, detector=detector))
        sic = np.asarray(getattr(bout, "Stride_InitialContacts", np.zeros((0, 2))), dtype=np.float64).reshape(-1, 2)
        sic_s, sic_unit = _stride_bounds(sic, ic, ref_fs if math.isfinite(ref_fs) else fs)
        strides: dict[str, Any] = {"start_s": (shift + sic_s[:, 0]).tolist(), "end_s": (shift + sic_s[:, 1]).tolist(),
                                   "stride_initial_contacts_unit": sic_unit}
        ic_side = {round(float(t), 6): lr.strip().lower() for t, lr in zip(ic, ic_lr, strict=True)
                   if math.isfinite(t)}
        strides["side"] = [ic_side.get(round(float(s), 6)) for s in sic_s[:, 0]]
        for field, key in _STRIDE_FIELDS:
            if field in bout._fieldnames:
                vals = np.asarray(_as_list(getattr(bout, field)), dtype=np.float64)
                if vals.size == sic.shape[0]:
                    strides[key] = vals.tolist()
        info["strides"] = strides
        out_bouts.append(info)
    lo, hi = start - 0.05, end + 0.05
    outside = [e for e in events if not lo <= e.time_s <= hi]
    info_sys = {"level": level_name, "fs_hz": ref_fs, "detector": detector, "n_bouts": len(out_bouts),
                "n_initial_contacts": sum(e.kind == "foot_strike" for e in events), "nan_initial_contacts": n_nan_ic,
                "events_outside_recording": len(outside), "bouts": out_bouts}
    # events the IMU did not record cannot be placed on its clock meaningfully; keep them in the metadata only
    events = [e for e in events if lo <= e.time_s <= hi]
    return events, info_sys
