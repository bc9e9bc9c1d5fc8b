"""gaitmap example-data CSVs: foot IMUs, Vicon foot markers and mocap-derived stride events.

gaitmap (mad-lab-fau/gaitmap, ``example_data/``) ships a healthy 2x20 m walk recorded with two foot IMUs and an
optical motion-capture system at the same time:

``imu_sample.csv`` (`read_gaitmap_imu`)
    Two header rows, ``sensor,left_sensor,right_sensor,...`` and ``axis,acc_x,acc_x,...``, then one row per sample
    whose first cell is the sample index. Accelerometer in m/s², gyroscope in deg/s, already rotated into gaitmap's
    foot sensor frame (x to the tip of the shoe, y to the left, z up, for both feet). The sampling rate is **not
    in the file**: gaitmap's loader divides the index by 204.8 Hz, which is the default here (pass ``rate_hz`` for
    other recordings).
``mocap_sample.csv`` (`read_gaitmap_mocap`)
    Two header rows (marker names, then ``x,y,z``), first column the frame index; marker positions in mm in the
    Vicon lab frame; 100 Hz (not in the file either).
``stride_events_sample.csv`` (`read_gaitmap_stride_events`, or ``read_gaitmap_imu(..., stride_events=...)``)
    One row per stride: ``s_id, foot, start, end, ic, tc, min_vel, pre_ic`` as sample indices **at the IMU rate**
    (gaitmap converted the mocap events to IMU samples). ``ic`` and ``pre_ic`` become ``foot_strike`` and ``tc``
    ``foot_off`` reference events on the IMU clock.
``stride_borders_sample_ic_stride.csv`` (`read_gaitmap_stride_borders`, or ``read_gaitmap_imu(..., stride_borders=)``)
    The reference of gaitmap's second walk, ``imu_sample_ic_stride.csv`` (4x10 m, **102.4 Hz**: pass ``rate_hz``).
    One row per stride: ``s_id, foot, start, end[, gsd_id]``; ``start`` and ``end`` are sample indices at the
    IMU rate of two successive initial contacts of that foot (gaitmap's "ic" stride list: the start is the
    stride's initial contact, the end the next one of the same foot). Every border becomes a ``foot_strike``
    reference event. Only IC-to-IC lists fit: gaitmap's ``stride_borders_sample.csv`` has the same columns but its
    borders are hand-labelled gyroscope minima before toe-off, not contacts.

Clocks: the IMU file and the mocap file were recorded in sync and start at the same instant, but each file gets
its own device clock (``gaitmap_imu:<stem>:<sha8>``, ``gaitmap_mocap:<stem>:<sha8>``, unsynchronised) so that
``fusionlab sync`` estimates the offset instead of assuming it (the true offset is 0 s).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab import __version__
from fusionlab.adapters._common import (
    base_meta,
    check_path,
    check_rate_hz,
    file_identity,
    file_sha256,
    source_info,
    unsynchronised_session,
)
from fusionlab.adapters._imu_common import (
    Policy,
    apply_unit_check,
    build_imu_stream,
    check_imu_units,
    check_placement,
    check_policy,
)
from fusionlab.adapters._tables import collect_rows, read_text_lines, split_cells, to_float_array
from fusionlab.consts import PLACEMENTS, XYZ
from fusionlab.exceptions import FileFormatError, UnitError, ValidationError
from fusionlab.model import Event, Session, SourceInfo, Stream, unique_labels
from fusionlab.units import to_si

__all__ = [
    "GAITMAP_IMU_RATE_HZ",
    "GAITMAP_MOCAP_RATE_HZ",
    "GAITMAP_SENSOR_PLACEMENTS",
    "looks_like_gaitmap_imu",
    "looks_like_gaitmap_mocap",
    "read_gaitmap_imu",
    "read_gaitmap_mocap",
    "read_gaitmap_stride_borders",
    "read_gaitmap_stride_events",
]

GAITMAP_IMU_RATE_HZ = 204.8
"""Sampling rate of gaitmap's example IMU data (``get_healthy_example_imu_data`` divides the index by it)."""
GAITMAP_MOCAP_RATE_HZ = 100.0
"""Sampling rate of gaitmap's example motion-capture data."""
GAITMAP_SENSOR_PLACEMENTS: dict[str, str] = {"left_sensor": "left_foot", "right_sensor": "right_foot"}
"""gaitmap sensor names and the fusionlab placement they mean."""
GAITMAP_FRAME_NOTE = ("gaitmap foot sensor frame (FSF): x to the tip of the shoe, y to the left, z up, for both feet "
                      "(right-handed); the example data were rotated into it by gaitmap")
_IMU_UNITS = {"acc": "m/s^2", "gyr": "deg/s"}
_STRIDE_COLUMNS = ("s_id", "foot", "start", "end", "ic", "tc", "min_vel", "pre_ic")
_BORDER_COLUMNS = ("s_id", "foot", "start", "end")


def _cells(line: str) -> list[str]:
    return split_cells(line, ",", quotes=True)


def looks_like_gaitmap_imu(text: str) -> bool:
    """True for gaitmap's two-row IMU header (``sensor,...`` then ``axis,acc_x,...``; first cells may be empty)."""
    lines = text.splitlines()
    if len(lines) < 2:
        return False
    a, b = _cells(lines[0]), _cells(lines[1])
    return (len(b) > 1 and a[0].lower() in ("sensor", "") and b[0].lower() in ("axis", "")
            and all(re.fullmatch(r"(acc|gyr)_[xyz]", c.lower()) for c in b[1:]) and all(a[1:]))


def looks_like_gaitmap_mocap(text: str) -> bool:
    """True for gaitmap's two-row marker header (marker names, then ``x,y,z`` repeated)."""
    lines = text.splitlines()
    if len(lines) < 3:
        return False
    a, b = _cells(lines[0]), _cells(lines[1])
    axes = [c.lower() for c in b[1:]]
    return (len(a) == len(b) and len(axes) >= 3 and len(axes) % 3 == 0 and b[0] == ""
            and axes == list(XYZ) * (len(axes) // 3) and all(a[1:]))


def _read_text(p: Path) -> list[str]:
    return read_text_lines(p, binary_hint="check that you picked a CSV (text) file and not a binary or compressed "
                                          "one", fallback_encoding="utf-8-sig")


def _numeric_rows(p: Path, lines: list[str]) -> tuple[NDArray[np.float64], int]:
    """Rows of numbers after the two header rows (empty cells are NaN); the array and the count of empty cells.

    Columns are named by their two header cells (``"left_sensor acc_x"``, ``"L_TOE x"``) in messages.
    """
    names = ["index", *(f"{a} {b}".strip() for a, b in zip(_cells(lines[0])[1:], _cells(lines[1])[1:], strict=True))]
    rows, numbers = collect_rows(p, lines, 2, len(names), ",", 1, quotes=True, trailing_delimiters=False,
                                 header_name="second header row")
    return to_float_array(p, rows, numbers, names, allow_empty=True,
                          fix="Below its two header rows a gaitmap CSV holds numbers only")


def _sample_index(p: Path, idx: NDArray[np.float64], what: str, rate: float) -> tuple[NDArray[np.int64], float, int,
                                                                                      str]:
    """Check the index column: whole increasing sample numbers, or times in s on the ``rate`` grid.

    Returns (row -> sample offset, start time s, number of missing samples, what the column held).
    """
    if np.isnan(idx).any():
        raise FileFormatError(p, f"the first column ({what} index) has empty cells; every row needs its index")
    kind = "sample index"
    if not np.all(idx == np.round(idx)):  # gaitmap's stair files: the index is the time in s
        k_f = idx * rate
        if np.max(np.abs(k_f - np.round(k_f))) > 1e-3:
            est = (idx.size - 1) / float(idx[-1] - idx[0]) if idx.size > 1 else float("nan")
            raise FileFormatError(p, f"the first column holds fractional values, so it is taken as time in s, but "
                                     f"it is not on the {rate:g} Hz grid (about {est:.6g} Hz); pass the right "
                                     "rate_hz")
        idx = np.round(k_f)
        kind = "time (s)"
    k = idx.astype(np.int64)
    if k.size > 1 and not np.all(np.diff(k) > 0):
        i = int(np.flatnonzero(np.diff(k) <= 0)[0]) + 1
        raise FileFormatError(p, f"the {what} index must increase; row {i + 3} has {k[i]} after {k[i - 1]}. Remove "
                                 "duplicated or reordered rows")
    offset = k - k[0]
    return offset, float(k[0]) / rate, int(offset[-1] + 1 - k.size), kind


def _check_rate(rate_hz: float) -> float:
    check_rate_hz(rate_hz, optional=False)
    return float(rate_hz)


# ================================================================================================ IMU
def read_gaitmap_imu(path: str | os.PathLike[str], *, rate_hz: float | None = None,
                     prefix: str | None = None, placements: Mapping[str, str] | None = None,
                     stride_events: str | os.PathLike[str] | None = None,
                     stride_borders: str | os.PathLike[str] | None = None,
                     check_units: Policy = "raise") -> Session:
    """Read a gaitmap-style IMU CSV (two header rows: sensor names, axis names; several sensors per file).

    Parameters
    ----------
    path
        e.g. gaitmap's ``example_data/imu_sample.csv``.
    rate_hz
        Sampling rate (Hz). It is not in the file. When not given, 204.8 Hz (``GAITMAP_IMU_RATE_HZ``, gaitmap's
        example data) is assumed with a warning: a wrong rate scales every time, cadence and stride length (gaitmap's
        ``imu_sample_ic_stride.csv`` is 102.4 Hz; read at 204.8 Hz it gives a cadence of 204 steps/min).
    prefix
        Stream-name prefix; default: the file stem and a dot (``"imu_sample.left_foot"``).
    placements
        Sensor name -> placement for sensor names other than ``left_sensor``/``right_sensor`` (which map to
        ``left_foot``/``right_foot``), e.g. ``{"sensor_3": "lower_back"}``.
    stride_events
        Optional gaitmap stride-event CSV (``stride_events_sample.csv``) of this recording: its events are added
        as ``source="reference"`` events on this file's clock (see `read_gaitmap_stride_events`).
    stride_borders
        Optional gaitmap IC-to-IC stride-border CSV (``stride_borders_sample_ic_stride.csv``) of this recording:
        its initial contacts are added as ``source="reference"`` ``foot_strike`` events on this file's clock (see
        `read_gaitmap_stride_borders`). May be combined with ``stride_events``.
    check_units
        ``"raise"`` (default), ``"warn"`` or ``"ignore"`` when the values contradict gaitmap's units (acc m/s²,
        gyr deg/s); see `fusionlab.adapters._imu_common.check_imu_units`.

    Returns
    -------
    Session
        One ``imu`` stream per sensor, ``<prefix><placement>``: ``(n, 2, 3)`` float64, channels ``acc`` (m/s²,
        includes gravity) and ``gyr`` (rad/s; converted from deg/s), frame ``sensor:<placement>`` (gaitmap's foot
        sensor frame), regular at ``rate_hz`` starting at ``index[0] / rate_hz`` (the first column may also hold
        the time in s, as in gaitmap's stair files); all on one clock
        ``"gaitmap_imu:<stem>:<sha256[:8]>"`` (unsynchronised). Missing sample indices become NaN rows.

    Raises
    ------
    FileFormatError
        Not gaitmap's two header rows, unknown axes, incomplete sensors, bad numbers or indices;
        `ImuUnitError` (a `FileFormatError`) when the values contradict the units (``check_units="raise"``).
    ValidationError
        Invalid options, or an unknown placement.
    """
    p = check_path(path)
    rate_assumed = rate_hz is None
    rate = _check_rate(GAITMAP_IMU_RATE_HZ if rate_hz is None else rate_hz)
    check_policy("check_units", check_units)
    options: dict[str, Any] = {"rate_hz": rate, "rate_assumed": rate_assumed, "prefix": prefix,
                               "placements": dict(placements or {}),
                               "stride_events": None if stride_events is None else Path(stride_events).name,
                               "stride_borders": None if stride_borders is None else Path(stride_borders).name,
                               "check_units": check_units}
    lines = _read_text(p)
    if not looks_like_gaitmap_imu("\n".join(lines[:3])):
        raise FileFormatError(p, "not a gaitmap IMU CSV: the first two rows must be 'sensor,<sensor>,...' and "
                                 "'axis,acc_x,...' (gaitmap's multi-sensor layout; the first cells may be empty)")
    sensors, axes = _cells(lines[0]), _cells(lines[1])
    if len(sensors) != len(axes):
        raise FileFormatError(p, f"the two header rows have {len(sensors)} and {len(axes)} cells; they must match")
    columns: dict[str, dict[tuple[str, int], int]] = {}
    for j in range(1, len(axes)):
        ax = axes[j].lower()
        if len(ax) != 5 or ax[:4] not in ("acc_", "gyr_") or ax[4] not in "xyz":
            raise FileFormatError(p, f"column {j + 1}: axis {axes[j]!r} is not one of acc_x..acc_z, gyr_x..gyr_z")
        cols = columns.setdefault(sensors[j], {})
        key = (ax[:3], "xyz".index(ax[4]))
        if key in cols:
            raise FileFormatError(p, f"sensor {sensors[j]!r} has two {ax} columns")
        cols[key] = j
    mapping = {**GAITMAP_SENSOR_PLACEMENTS, **dict(placements or {})}
    place_of: dict[str, str] = {}
    for sensor, cols in columns.items():
        missing = [f"{c}_{a}" for c in ("acc", "gyr") for k, a in enumerate("xyz") if (c, k) not in cols]
        if missing:
            raise FileFormatError(p, f"sensor {sensor!r} has no {', '.join(missing)} column; every sensor needs all "
                                     "six axes")
        if sensor in mapping:
            place_of[sensor] = check_placement(mapping[sensor], path=p)
        elif sensor.lower() in PLACEMENTS:
            place_of[sensor] = sensor.lower()
        else:
            msg = (f"{p.name}: sensor {sensor!r} has no known placement; pass placements={{{sensor!r}: ...}} with "
                   f"one of {', '.join(PLACEMENTS)}.")
            raise ValidationError(msg)
    dup = {v for v in place_of.values() if list(place_of.values()).count(v) > 1}
    if dup:
        raise FileFormatError(p, f"two sensors map to placement(s) {', '.join(sorted(dup))}; give each sensor its "
                                 "own placement with placements=")

    values, n_empty = _numeric_rows(p, lines)
    rate_source = "rate_hz argument (not in the file)"
    if rate_assumed:
        idx = values[:, 0]
        steps = np.diff(idx)
        if idx.size > 2 and not np.all(idx == np.round(idx)) and np.all(steps > 0):
            # a time column (s), as in gaitmap's stair files: its median step gives the rate
            rate = _check_rate(float(1.0 / np.median(steps)))
            rate_source = "from the file's time column (s)"
        else:
            rate_source = "assumed: gaitmap's example data are 204.8 Hz (not in the file)"
            warnings.warn(f"{p.name}: the sampling rate is not in the file: {rate:g} Hz assumed (gaitmap's example "
                          "recordings); pass rate_hz (fusionlab ingest --rate-hz) if this recording differs: a wrong "
                          "rate scales every time, cadence and stride length", stacklevel=2)
        options["rate_hz"] = rate
    offset, start_s, n_missing, index_kind = _sample_index(p, values[:, 0], "sample", rate)
    n = int(offset[-1]) + 1
    sha, clock_id, prefix = file_identity(p, "gaitmap_imu", prefix)
    streams: list[Stream] = []
    checks: dict[str, Any] = {}
    for sensor, cols in columns.items():
        place = place_of[sensor]
        raw = {}
        for ch in ("acc", "gyr"):
            arr = np.full((n, 3), np.nan)
            arr[offset] = values[:, [cols[ch, k] for k in range(3)]]
            raw[ch] = arr
        check = check_imu_units(raw["acc"], raw["gyr"], rate, _IMU_UNITS)
        apply_unit_check(check, check_units, p, where=f"sensor {sensor}",
                         fix="this file does not follow gaitmap's units (acc m/s^2, gyr deg/s); convert it, or read "
                             "it as a generic IMU CSV with the units in the column names")
        checks[sensor] = check["status"]
        si = {ch: raw[ch] * to_si(_IMU_UNITS[ch]).factor for ch in raw}
        meta = {**base_meta(p, "gaitmap_imu", sha, options), "placement": place, "sensor_id": sensor,
                "unit_check": check, "frame_note": GAITMAP_FRAME_NOTE,
                "rate_source": rate_source,
                "missing_samples": n_missing}
        streams.append(build_imu_stream(f"{prefix}{place}", si, _IMU_UNITS, placement=place, clock=clock_id,
                                        meta=meta, rate_hz=rate, start_s=start_s))
    metadata = {"format": "gaitmap IMU CSV", "sensors": {s: place_of[s] for s in columns}, "n_rows": len(offset),
                "first_column": index_kind, "start_s": start_s, "missing_samples": n_missing,
                "empty_cells": n_empty, "rate_hz": rate,
                "rate_source": rate_source, "unit_check": checks,
                "clock_note": "separate device clock; gaitmap's mocap_sample.csv of the same trial started at the same "
                              "instant (true offset 0 s) but is on its own clock until synchronised"}
    events: tuple[Event, ...] = ()
    more_sources: tuple[SourceInfo, ...] = ()
    t_end = start_s + (n - 1) / rate
    for ref_path, read_ref, what in ((stride_events, read_gaitmap_stride_events, "stride events"),
                                     (stride_borders, read_gaitmap_stride_borders, "stride borders")):
        if ref_path is None:
            continue
        ref = read_ref(ref_path, rate_hz=rate, clock=clock_id)
        outside = [e for e in ref.events if not start_s <= e.time_s <= t_end]
        if outside:
            raise FileFormatError(Path(ref_path), f"{len(outside)} {what} lie outside the IMU recording "
                                                  f"{p.name} ({start_s:.3f}-{t_end:.3f} s at {rate:g} Hz), the "
                                                  f"first at {outside[0].time_s:.3f} s; is it the reference file of "
                                                  "this recording, and is rate_hz right?")
        events = tuple(sorted((*events, *ref.events), key=lambda e: (e.time_s, e.side, e.kind)))
        more_sources += ref.sources
    return unsynchronised_session(p, "gaitmap_imu", sha, streams, options, metadata,
                                  f"sample index / {rate:g} Hz (rate given, not in the file)", events=events,
                                  more_sources=more_sources)


# ================================================================================================ stride events
def read_gaitmap_stride_events(path: str | os.PathLike[str], *, rate_hz: float, clock: str) -> Session:
    """Read gaitmap's mocap-derived stride events as reference gait events on an IMU clock.

    Parameters
    ----------
    path
        ``stride_events_sample.csv``: columns ``s_id, foot, start, end, ic, tc, min_vel, pre_ic``, one row per
        stride, values are sample indices **at the IMU rate** (gaitmap converted the motion-capture events).
    rate_hz
        The IMU sampling rate (Hz) the indices refer to (204.8 Hz for gaitmap's example data).
    clock
        The clock identifier of the IMU stream the indices belong to (``session.streams[0].clock`` of
        `read_gaitmap_imu`); event times are ``index / rate_hz`` on that clock.

    Returns
    -------
    Session
        No streams; events ``foot_strike`` (from ``ic`` and ``pre_ic``, each time once per side) and ``foot_off``
        (from ``tc``), side ``left``/``right``, ``source="reference"``, ``detector="gaitmap:mocap"`` (optical
        motion capture processed by gaitmap), ``sd_s`` NaN (unknown; the mocap ran at 100 Hz, so the indices are
        quantised to about ±5 ms). The per-stride table (indices and seconds) is in the source metadata
        (``strides``).

    Raises
    ------
    FileFormatError
        Missing columns, unknown foot names, non-numeric values.
    """
    p = check_path(path)
    rate = _check_rate(rate_hz)
    if not clock or not isinstance(clock, str):
        msg = "Invalid value for 'clock'. Expected the clock identifier of the IMU stream, but got {clock!r} instead."
        raise ValidationError(msg)
    lines = [ln for ln in _read_text(p) if ln.strip()]
    head = [c.lower() for c in _cells(lines[0])] if lines else []
    missing = [c for c in _STRIDE_COLUMNS if c not in head]
    if missing:
        raise FileFormatError(p, f"not a gaitmap stride-event list: no column(s) {', '.join(missing)} in the first "
                                 f"row (expected {', '.join(_STRIDE_COLUMNS)})")
    col = {c: head.index(c) for c in _STRIDE_COLUMNS}
    strides: list[dict[str, Any]] = []
    events: dict[tuple[str, str, int], Event] = {}
    for ln_no, line in enumerate(lines[1:], start=2):
        cells = _cells(line)
        if len(cells) != len(head):
            raise FileFormatError(p, f"line {ln_no} has {len(cells)} values for {len(head)} columns")
        foot = cells[col["foot"]].lower()
        if foot not in ("left", "right"):
            raise FileFormatError(p, f"line {ln_no}: foot {cells[col['foot']]!r} is neither 'left' nor 'right'")
        row: dict[str, Any] = {"s_id": cells[col["s_id"]], "foot": foot}
        for key in ("start", "end", "ic", "tc", "min_vel", "pre_ic"):
            try:
                v = float(cells[col[key]]) if cells[col[key]] else math.nan
            except ValueError:
                raise FileFormatError(p, f"line {ln_no}: {key} {cells[col[key]]!r} is not a sample index") from None
            row[f"{key}_idx"] = v
            row[f"{key}_s"] = v / rate
        strides.append(row)
        for key, kind in (("pre_ic", "foot_strike"), ("ic", "foot_strike"), ("tc", "foot_off")):
            v = row[f"{key}_idx"]
            if math.isfinite(v) and (kind, foot, round(v)) not in events:
                events[kind, foot, round(v)] = Event(
                    time_s=v / rate, kind=kind, side=foot, source="reference", label=f"{foot} {key}",
                    clock=clock, detector="gaitmap:mocap")
    ordered = tuple(sorted(events.values(), key=lambda e: (e.time_s, e.side, e.kind)))
    sha = file_sha256(p)
    options = {"rate_hz": rate, "clock": clock}
    metadata = {"format": "gaitmap stride-event list", "reference_system": "optical motion capture (Vicon), events "
                                                                           "computed by gaitmap",
                "rate_hz": rate, "n_strides": len(strides), "strides": strides}
    info: SourceInfo = source_info(p, "gaitmap_stride_events", __version__, options, metadata, sha256=sha)
    return Session(events=ordered, sources=(info,))


# ================================================================================================ stride borders
def read_gaitmap_stride_borders(path: str | os.PathLike[str], *, rate_hz: float, clock: str) -> Session:
    """Read gaitmap's IC-to-IC stride borders as reference foot strikes on an IMU clock.

    Parameters
    ----------
    path
        ``stride_borders_sample_ic_stride.csv``: columns ``s_id, foot, start, end`` (and ``gsd_id``), one row per
        stride; ``start`` is the stride's initial contact and ``end`` the next initial contact of the same foot, as
        sample indices **at the IMU rate** (gaitmap's "ic" stride list; mocap-derived for gaitmap's example walk).
        Not for segmented border lists (``stride_borders_sample.csv``: gyroscope minima, not contacts).
    rate_hz
        The IMU sampling rate (Hz) the indices refer to (102.4 Hz for ``imu_sample_ic_stride.csv``).
    clock
        The clock identifier of the IMU stream the indices belong to (``session.streams[0].clock`` of
        `read_gaitmap_imu`); event times are ``index / rate_hz`` on that clock.

    Returns
    -------
    Session
        No streams; ``foot_strike`` events (every ``start`` and ``end``, each index once per side), side
        ``left``/``right``, ``source="reference"``, ``detector="gaitmap:mocap"``, ``sd_s`` NaN (unknown). The
        per-stride table (indices and seconds) is in the source metadata (``strides``).

    Raises
    ------
    FileFormatError
        Missing columns, no stride, unknown foot names, empty or non-numeric indices, a stride whose end is not
        after its start; the message names the file.
    """
    p = check_path(path)
    rate = _check_rate(rate_hz)
    if not clock or not isinstance(clock, str):
        msg = f"Invalid value for 'clock'. Expected the clock identifier of the IMU stream, but got {clock!r} instead."
        raise ValidationError(msg)
    lines = [ln for ln in _read_text(p) if ln.strip()]
    head = [c.strip().lower() for c in _cells(lines[0])] if lines else []
    missing = [c for c in _BORDER_COLUMNS if c not in head]
    if missing:
        raise FileFormatError(p, f"not a gaitmap stride-border list: no column(s) {', '.join(missing)} in the first "
                                 f"row (expected {', '.join(_BORDER_COLUMNS)}[, gsd_id])")
    if len(lines) < 2:
        raise FileFormatError(p, "the stride-border list has a header row but no stride")
    col = {c: head.index(c) for c in _BORDER_COLUMNS}
    strides: list[dict[str, Any]] = []
    events: dict[tuple[str, int], Event] = {}
    for ln_no, line in enumerate(lines[1:], start=2):
        cells = _cells(line)
        if len(cells) != len(head):
            raise FileFormatError(p, f"line {ln_no} has {len(cells)} values for {len(head)} columns")
        foot = cells[col["foot"]].strip().lower()
        if foot not in ("left", "right"):
            raise FileFormatError(p, f"line {ln_no}: foot {cells[col['foot']]!r} is neither 'left' nor 'right'")
        row: dict[str, Any] = {"s_id": cells[col["s_id"]], "foot": foot}
        for key in ("start", "end"):
            try:
                v = float(cells[col[key]])
            except ValueError:
                v = math.nan
            if not math.isfinite(v) or v < 0:
                raise FileFormatError(p, f"line {ln_no}: {key} {cells[col[key]]!r} is not a sample index (a number "
                                         ">= 0 is expected)")
            row[f"{key}_idx"] = v
            row[f"{key}_s"] = v / rate
        if row["end_idx"] <= row["start_idx"]:
            raise FileFormatError(p, f"line {ln_no}: the stride ends (sample {row['end_idx']:g}) before it starts "
                                     f"(sample {row['start_idx']:g})")
        strides.append(row)
        for key in ("start", "end"):
            v = row[f"{key}_idx"]
            if (foot, round(v)) not in events:
                events[foot, round(v)] = Event(time_s=v / rate, kind="foot_strike", side=foot, source="reference",
                                               label=f"{foot} IC", clock=clock, detector="gaitmap:mocap")
    ordered = tuple(sorted(events.values(), key=lambda e: (e.time_s, e.side, e.kind)))
    sha = file_sha256(p)
    options = {"rate_hz": rate, "clock": clock}
    metadata = {"format": "gaitmap IC-to-IC stride-border list",
                "reference_system": "motion capture (gaitmap example data); every border is an initial contact",
                "rate_hz": rate, "n_strides": len(strides), "strides": strides}
    info: SourceInfo = source_info(p, "gaitmap_stride_borders", __version__, options, metadata, sha256=sha)
    return Session(events=ordered, sources=(info,))


# ================================================================================================ mocap
def read_gaitmap_mocap(path: str | os.PathLike[str], *, rate_hz: float | None = None,
                       prefix: str | None = None, unit: str = "mm") -> Session:
    """Read gaitmap's marker CSV (two header rows: marker names, then ``x,y,z``; first column the frame index).

    Parameters
    ----------
    path
        e.g. gaitmap's ``example_data/mocap_sample.csv`` (Vicon foot markers ``L_TOE``, ``L_FCC``, ``L_FM5``,
        ``R_...``).
    rate_hz
        Frame rate (Hz), not in the file; when not given, gaitmap's 100 Hz is assumed with a warning.
    prefix
        Stream-name prefix; default: the file stem and a dot (``"mocap_sample.markers"``).
    unit
        Unit of the positions in the file (not written in it): ``"mm"`` for gaitmap's data.

    Returns
    -------
    Session
        One ``markers`` stream ``<prefix>markers``: ``(n, n_markers, 3)`` float64 in m, components x, y, z, frame
        ``lab`` (the Vicon lab frame), regular at ``rate_hz`` from ``index[0] / rate_hz``; clock
        ``"gaitmap_mocap:<stem>:<sha256[:8]>"`` (unsynchronised). Empty cells and missing frames are NaN.

    Raises
    ------
    FileFormatError
        Header rows not in gaitmap's marker layout, bad numbers or frame indices, unknown unit.
    """
    p = check_path(path)
    rate = _check_rate(GAITMAP_MOCAP_RATE_HZ if rate_hz is None else rate_hz)
    if rate_hz is None:
        warnings.warn(f"{p.name}: the frame rate is not in the file: {rate:g} Hz assumed (gaitmap's example "
                      "recordings); pass rate_hz (fusionlab ingest --rate-hz) if this recording differs", stacklevel=2)
    try:
        conv = to_si(unit)
    except UnitError:
        msg = f"Invalid value for 'unit'. Expected a length unit such as mm or m, but got {unit!r} instead."
        raise ValidationError(msg) from None
    if conv.si_unit != "m":
        msg = f"Invalid value for 'unit'. Expected a length unit such as mm or m, but got {unit!r} instead."
        raise ValidationError(msg)
    options: dict[str, Any] = {"rate_hz": rate, "prefix": prefix, "unit": unit}
    lines = _read_text(p)
    if not looks_like_gaitmap_mocap("\n".join(lines[:3])):
        raise FileFormatError(p, "not a gaitmap marker CSV: the first row must name the markers (',L_TOE,L_TOE,"
                                 "L_TOE,...') and the second give the axes (',x,y,z,...')")
    names_row = _cells(lines[0])
    markers_raw = names_row[1::3]
    for k, name in enumerate(markers_raw):
        if names_row[1 + 3 * k: 4 + 3 * k] != [name] * 3:
            raise FileFormatError(p, f"marker {name!r}: its x, y, z columns must be adjacent and named alike")
    labels, dups = unique_labels(markers_raw)
    values, n_empty = _numeric_rows(p, lines)
    offset, start_s, n_missing, index_kind = _sample_index(p, values[:, 0], "frame", rate)
    n = int(offset[-1]) + 1
    data = np.full((n, len(labels), 3), np.nan)
    data[offset] = values[:, 1:].reshape(len(offset), len(labels), 3) * conv.factor
    sha, clock_id, prefix = file_identity(p, "gaitmap_mocap", prefix)
    meta = {**base_meta(p, "gaitmap_mocap", sha, options), "device": "Vicon (gaitmap example data)",
            "rate_source": "rate_hz (not in the file)" if rate_hz is not None else "assumed (100 Hz, not in the file)",
            "missing_frames": n_missing, "duplicate_labels": dups}
    stream = Stream(name=f"{prefix}markers", modality="markers", data=data, channels=labels,
                    units=("m",) * len(labels), orig_units=(unit,) * len(labels), components=XYZ, frame="lab",
                    rate_hz=rate, start_s=start_s, clock=clock_id, meta=meta)
    metadata = {"format": "gaitmap marker CSV", "markers": list(labels), "n_rows": len(offset),
                "first_column": index_kind, "start_s": start_s, "missing_frames": n_missing,
                "empty_cells": n_empty, "rate_hz": rate,
                "unit": unit, "clock_note": "separate device clock; gaitmap's imu_sample.csv of the same trial started "
                                            "at the same instant (true offset 0 s)"}
    return unsynchronised_session(p, "gaitmap_mocap", sha, [stream], options, metadata,
                                  f"frame index / {rate:g} Hz (rate given, not in the file)")
