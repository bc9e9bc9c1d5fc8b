"""Generic IMU CSV: one sensor per file, a time column (or a stated rate), acc/gyr(/mag) columns with units.

Layout (see ``docs/imu-formats.md``)::

    # placement: left_foot            <- optional '# key: value' lines (placement, rate_hz, sensor_id, ...)
    time[s],acc_x[g],acc_y[g],acc_z[g],gyr_x[deg/s],gyr_y[deg/s],gyr_z[deg/s],mag_x[uT],mag_y[uT],mag_z[uT]
    0.000,0.0898,0.2817,0.9594,-6.44,-1.84,-3.57,...

Delimiters: comma, semicolon or tab. Units in brackets (or parentheses) after the column name; without a unit the
columns are taken as m/s², rad/s and T, and the numbers are checked against that (`check_imu_units`). Empty cells
are missing samples (NaN). A ``time`` column (s, or ``time[ms]``) gives the sample times; without one, the rate
comes from ``rate_hz=`` or a ``# rate_hz: 100`` line and the first sample is at 0 s.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.adapters._common import (
    base_meta,
    check_path,
    check_rate_hz,
    file_identity,
    unsynchronised_session,
    warn_ignored_columns,
)
from fusionlab.adapters._imu_common import (
    Policy,
    apply_unit_check,
    build_imu_stream,
    check_imu_units,
    check_placement,
    check_policy,
)
from fusionlab.adapters._tables import (
    collect_rows,
    fit_time_column,
    read_text_lines,
    split_cells,
    time_unit_factor,
    to_float_array,
)
from fusionlab.consts import IMU_UNITS
from fusionlab.exceptions import FileFormatError, UnitError, ValidationError
from fusionlab.model import Session
from fusionlab.units import to_si

__all__ = ["ImuCsvHeader", "looks_like_imu_csv", "read_imu_csv"]

logger = logging.getLogger(__name__)

ADAPTER = "imu_csv"
_COLUMN = re.compile(r"^\s*(?P<name>[A-Za-z_][A-Za-z0-9_ ]*?)\s*(?:[\[(]\s*(?P<unit>[^\])]*?)\s*[\])])?\s*$")
_IMU_COLUMN = re.compile(r"^(acc|gyr|mag)_([xyz])$")
_TIME_NAMES = ("time", "t", "time_s", "timestamp")
_HARMLESS = ("sample", "samples", "index", "frame", "")
_KEY_VALUE = re.compile(r"^\s*#\s*(?P<key>[A-Za-z][A-Za-z0-9 _]*?)\s*[:=]\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class ImuCsvHeader:
    """What the comment lines and the column-name row of a generic IMU CSV say."""

    delimiter: str
    columns: tuple[str, ...]
    column_line: int
    fields: dict[str, str] = field(default_factory=dict)
    """``# key: value`` comment lines (keys lower-case)."""
    imu_columns: dict[tuple[str, int], int] = field(default_factory=dict)
    """``(channel, axis) -> column index``."""
    units: dict[str, str] = field(default_factory=dict)
    """Unit written for each channel (absent: not written)."""
    time_column: int | None = None
    time_unit: str = "s"
    ignored: tuple[str, ...] = ()


def _split_header(line: str) -> tuple[str, list[str]]:
    for delim in (",", ";", "\t"):
        if delim in line:
            return delim, split_cells(line, delim, quotes=True)
    return ",", [line.strip()]


def looks_like_imu_csv(text: str) -> bool:
    """True when the first non-comment line names ``acc_x`` and ``gyr_x`` columns (used by the dispatcher)."""
    for line in text.splitlines()[:200]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        _, cells = _split_header(line)
        names = set()
        for c in cells:
            m = _COLUMN.match(c)
            if m:
                names.add(m.group("name").strip().lower())
        return {"acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"} <= names and cells[0].lower() not in (
            "sensor", "axis")
    return False


def _parse_header(lines: list[str], p: Path) -> ImuCsvHeader:
    """Parse comment lines and the column-name row (pure: only raises on bad headers)."""
    fields: dict[str, str] = {}
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if line.lstrip().startswith("#"):
            m = _KEY_VALUE.match(line)
            if m:
                fields[m.group("key").strip().lower().replace(" ", "_")] = m.group("value")
            continue
        delim, cells = _split_header(line)
        imu_cols: dict[tuple[str, int], int] = {}
        units: dict[str, str] = {}
        unit_cells: dict[str, str] = {}
        time_col = None
        time_unit = "s"
        ignored = []
        for j, cell in enumerate(cells):
            m = _COLUMN.match(cell)
            name = m.group("name").strip().lower() if m else cell.lower()
            unit = (m.group("unit") or "").strip() if m else ""
            im = _IMU_COLUMN.match(name)
            if im:
                ch, axis = im.group(1), "xyz".index(im.group(2))
                if (ch, axis) in imu_cols:
                    raise FileFormatError(p, f"line {i + 1}: two {ch}_{'xyz'[axis]} columns; keep one per axis")
                imu_cols[ch, axis] = j
                if unit:
                    if ch in units and units[ch] != unit:
                        raise FileFormatError(p, f"line {i + 1}: the {ch} columns have different units "
                                                 f"({unit_cells[ch]!r} and {cell!r}); write one unit for all three "
                                                 "axes")
                    units[ch], unit_cells[ch] = unit, cell
                elif ch in units:
                    raise FileFormatError(p, f"line {i + 1}: column {cell!r} has no unit but {unit_cells[ch]!r} has "
                                             "one; write the unit on all three axes")
            elif name in _TIME_NAMES:
                if time_col is not None:
                    raise FileFormatError(p, f"line {i + 1}: two time columns ({cells[time_col]!r} and {cell!r}); "
                                             "keep one")
                time_col, time_unit = j, unit or "s"
            else:
                ignored.append(cell)
        for ch in ("acc", "gyr"):
            missing = [f"{ch}_{a}" for k, a in enumerate("xyz") if (ch, k) not in imu_cols]
            if missing:
                raise FileFormatError(p, f"line {i + 1} (the column-name row) has no {', '.join(missing)} column; a "
                                         "generic IMU CSV needs acc_x, acc_y, acc_z, gyr_x, gyr_y, gyr_z (optionally "
                                         "mag_x, mag_y, mag_z and a time column), units in brackets: acc_x[g]")
        mag = [k for k in range(3) if ("mag", k) in imu_cols]
        if mag and len(mag) != 3:
            raise FileFormatError(p, f"line {i + 1}: only some magnetometer axes are present; give mag_x, mag_y and "
                                     "mag_z, or none")
        return ImuCsvHeader(delimiter=delim, columns=tuple(cells), column_line=i, fields=fields,
                            imu_columns=imu_cols, units=units, time_column=time_col, time_unit=time_unit,
                            ignored=tuple(ignored))
    raise FileFormatError(p, "no column-name row: the file holds only comment or blank lines")


def _read_rows(p: Path, lines: list[str], header: ImuCsvHeader) -> tuple[NDArray[np.float64], list[int], list[str],
                                                                         int]:
    """Data rows as floats, their line numbers, the time cells as written and the number of empty cells.

    Empty cells, and rows of delimiters only, are missing samples (NaN).
    """
    rows, numbers = collect_rows(p, lines, header.column_line + 1, len(header.columns), header.delimiter,
                                 header.column_line, comment_prefixes=("#",), quotes=True, keep_empty_rows=True)
    values, n_empty = to_float_array(p, rows, numbers, header.columns, allow_empty=True,
                                     fix="Remove text rows or comment them out with '#'")
    time_cells = [r[header.time_column] for r in rows] if header.time_column is not None else []
    return values, numbers, time_cells, n_empty


def _float_field(p: Path, fields: dict[str, str], keys: tuple[str, ...]) -> tuple[float | None, str]:
    for k in keys:
        if k in fields:
            m = re.match(r"^\s*([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)\s*(hz)?\s*$", fields[k], re.IGNORECASE)
            if not m or not float(m.group(1)) > 0:
                raise FileFormatError(p, f"the header line '# {k}: {fields[k]}' does not give a positive rate in Hz")
            return float(m.group(1)), f"# {k}: {fields[k]}"
    return None, ""


def read_imu_csv(path: str | os.PathLike[str], *, placement: str | None = None, rate_hz: float | None = None,
                 prefix: str | None = None, check_units: Policy = "raise") -> Session:
    """Read a generic IMU CSV (one sensor per file).

    Parameters
    ----------
    path
        The ``.csv``/``.tsv``/``.txt`` file: optional ``#`` comment lines, a column-name row with ``acc_x, acc_y,
        acc_z, gyr_x, gyr_y, gyr_z``, optionally ``mag_x, mag_y, mag_z`` and ``time``, units in brackets
        (``acc_x[g]``, ``gyr_x[deg/s]``, ``mag_x[uT]``, ``time[s]``), then one row per sample.
    placement
        Where the sensor was worn, one of `fusionlab.consts.PLACEMENTS`. Required: pass it, or write a
        ``# placement: left_foot`` line in the file (both must then agree).
    rate_hz
        Sampling rate (Hz) for files without a time column (a ``# rate_hz: 100`` line works too). With a time
        column, a given rate must match it.
    prefix
        Stream-name prefix; default: the file stem and a dot (``"walk.left_foot"``).
    check_units
        What to do when the numbers contradict the declared units (`check_imu_units`): ``"raise"``
        (`ImuUnitError`, default), ``"warn"`` (keep the declared units, warn) or ``"ignore"``. The result is
        always in ``meta["unit_check"]``.

    Returns
    -------
    Session
        One ``imu`` stream ``<prefix><placement>``: ``(n, k, 3)`` float64, channels ``acc`` (m/s², includes
        gravity), ``gyr`` (rad/s) and ``mag`` (T) when present, components x, y, z, frame ``sensor:<placement>``;
        on clock ``"imu_csv:<stem>:<sha256[:8]>"`` (unsynchronised).

    Raises
    ------
    ValidationError
        Missing or unknown placement, invalid options.
    FileFormatError
        No column-name row with all six acc/gyr columns, unknown or wrong units, non-numeric values, rows of the
        wrong length, time not increasing, no rate, a rate that contradicts the time column; `ImuUnitError` (a
        `FileFormatError`) when the values contradict the declared units and ``check_units="raise"``.
    """
    p = check_path(path)
    check_policy("check_units", check_units)
    check_rate_hz(rate_hz)
    options: dict[str, Any] = {"placement": placement, "rate_hz": rate_hz, "prefix": prefix,
                               "check_units": check_units}
    lines = read_text_lines(p, binary_hint="check that you picked a CSV (text) file and not a binary or "
                                          "compressed one")
    header = _parse_header(lines, p)

    file_placement = header.fields.get("placement")
    if placement is not None and file_placement is not None and check_placement(placement, path=p) != \
            check_placement(file_placement, path=p):
        msg = (f"placement={placement!r} contradicts the file's line '# placement: {file_placement}' ({p.name}); "
               "correct one of them.")
        raise ValidationError(msg)
    place = check_placement(placement if placement is not None else file_placement, path=p)

    values, numbers, time_cells, n_empty = _read_rows(p, lines, header)

    # ---- units
    factors: dict[str, float] = {}
    orig: dict[str, str] = {}
    for ch in ("acc", "gyr", "mag"):
        if (ch, 0) not in header.imu_columns:
            continue
        unit = header.units.get(ch, IMU_UNITS[ch])
        try:
            conv = to_si(unit)
        except UnitError:
            raise FileFormatError(p, f"the {ch} columns have unit {unit!r}, which fusionlab cannot convert; use "
                                     "m/s^2, g or mg (acc), rad/s or deg/s (gyr), T, uT, nT or G (mag)") from None
        if conv.si_unit != IMU_UNITS[ch]:
            raise FileFormatError(p, f"the {ch} columns have unit {unit!r} ({conv.si_unit}), but {ch} must be in "
                                     f"{IMU_UNITS[ch]} or a multiple of it; check the column names and units")
        factors[ch], orig[ch] = conv.factor, unit

    # ---- time and rate
    declared, declared_what = (rate_hz, "the rate_hz argument") if rate_hz is not None else (None, "")
    file_rate, file_rate_what = _float_field(p, header.fields, ("rate_hz", "rate", "sample_rate", "sampling_rate"))
    if file_rate is not None:
        if declared is not None and abs(file_rate - declared) > 1e-6 * declared:
            raise FileFormatError(p, f"rate_hz={declared:g} contradicts the header line '{file_rate_what}'; pass "
                                     "the right rate or leave rate_hz out")
        declared, declared_what = file_rate, f"the header line '{file_rate_what}'"
    time_info: dict[str, Any] = {}
    time_s = None
    if header.time_column is not None:
        time_name = header.columns[header.time_column]
        t_factor = time_unit_factor(p, header.time_unit, time_name)
        t = values[:, header.time_column] * t_factor
        grid = fit_time_column(p, t, time_cells, numbers, time_name, declared_hz=declared,
                               declared_what=declared_what, unit_factor=t_factor, anchor="centre")
        rate, start, resid = grid.rate_hz, grid.start_s, grid.max_residual_s
        if rate is None:
            time_s = t
            time_info = {"rate_source": "time column (irregular)", "time_max_residual_s": resid}
        else:
            time_info = {"rate_source": declared_what or "time column", "time_max_residual_s": resid}
    elif declared is not None:
        rate, start = declared, 0.0
        time_info = {"rate_source": declared_what}
    else:
        raise FileFormatError(p, "no sampling rate: the file has no time column and no '# rate_hz: ...' line; add a "
                                 "time column (time[s]) or a rate line, or pass rate_hz=")

    # ---- data
    raw_ch = {ch: values[:, [header.imu_columns[ch, k] for k in range(3)]] for ch in factors}
    check = check_imu_units(raw_ch.get("acc"), raw_ch.get("gyr"), rate, orig, mag=raw_ch.get("mag"))
    apply_unit_check(check, check_units, p, where=f"placement {place}",
                     fix="Write the unit the values are really in after each column name (acc_x[g], gyr_x[deg/s], "
                         "mag_x[uT]) and read the file again.")
    si = {ch: raw_ch[ch] * factors[ch] for ch in raw_ch}

    warn_ignored_columns(p, [c for c in header.ignored if c.strip().lower() not in _HARMLESS],
                         "IMU columns fusionlab knows (acc_x.., gyr_x.., mag_x.., time)")

    sha, clock_id, prefix = file_identity(p, ADAPTER, prefix)
    meta: dict[str, Any] = {**base_meta(p, ADAPTER, sha, options), "placement": place, "unit_check": check,
                            "orig_units": {ch: orig[ch] for ch in orig},
                            "units_declared_in_file": {ch: ch in header.units for ch in orig}}
    if "sensor_id" in header.fields:
        meta["sensor_id"] = header.fields["sensor_id"]
    stream = build_imu_stream(f"{prefix}{place}", si, orig, placement=place, clock=clock_id, meta=meta,
                              rate_hz=rate, start_s=start, time_s=time_s)
    metadata = {"format": "generic IMU CSV", "delimiter": header.delimiter, "header": dict(header.fields),
                "columns": list(header.columns), "n_rows": int(values.shape[0]), "rate_hz": rate,
                "start_s": start if time_s is None else float(time_s[0]), "empty_cells": n_empty,
                "ignored_columns": list(header.ignored), "placement": place, **time_info}
    return unsynchronised_session(p, ADAPTER, sha, [stream], options, metadata, "IMU CSV time column or stated rate")

