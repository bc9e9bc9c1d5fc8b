"""Force-plate text exports: OpenSim ``.mot`` ground reactions, Kistler BioWare ``.txt``, generic AMTI/Bertec CSV.

Every reader returns a `fusionlab.Session` with one ``forceplate`` stream per plate (or per force group of a
``.mot`` file), named ``<prefix>forceplate<k>``. Each stream holds ``(n, k, 3)`` data with components
``("x", "y", "z")`` and some of the channels ``force`` (N), ``moment`` (N·m), ``cop`` (centre of pressure, m)
and ``free_moment`` (N·m), in SI units, with the file's units in ``orig_units``.

Frames and signs
    ``.mot`` streams are in the OpenSim ground frame (``frame="lab"``, y up) and hold the force the ground applies
    to the body. Kistler and CSV streams are in the plate's own frame (``frame="plate:<n>"``: x, y in the top
    surface, z down into the plate). Forces are kept with the sign the file uses; the reader detects which
    convention that is (action on the plate, Fz > 0 when loaded with z down; or reaction on the body) and records
    it in ``meta["force_sign"]``. Nothing is rotated or flipped.
Centre of pressure
    Explicit COP columns (``.mot`` ``p*``, Kistler ``Ax``/``Ay``, CSV ``COPx``/``Ax``) are kept as written unless
    ``cop_min_force_n`` is given. Without COP columns, `read_forceplate_csv` computes the COP from forces and
    moments with the AMTI convention for a plate whose measurement origin is at the centre of its top surface
    (``copx = -My / Fz``, ``copy = Mx / Fz``), or with the offset given by ``origin_m``.
Time
    One clock per file, ``"<adapter>:<stem>:<sha256[:8]>"``. Streams are regular (``rate_hz``) when the time column
    lies on a regular grid, allowing for times rounded to the number of decimals written in the file (OpenSim
    writes 600 Hz times to 0.0001 s, so the steps alternate 0.0016/0.0017 s); otherwise they carry explicit
    ``time_s``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

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
from fusionlab.adapters._tables import (
    GRID_REL_TOL,
    collect_rows,
    drop_trailing_delimiters,
    fit_time_column,
    read_text_lines,
    split_cells,
    time_unit_factor,
    to_float_array,
)
from fusionlab.exceptions import FileFormatError, FusionlabWarning, UnitError, ValidationError
from fusionlab.model import Session, Stream
from fusionlab.units import to_si

__all__ = [
    "CsvHeader",
    "KistlerHeader",
    "MotHeader",
    "compute_cop",
    "read_forceplate_csv",
    "read_kistler_bioware",
    "read_opensim_mot",
]

logger = logging.getLogger(__name__)

_XYZ = ("x", "y", "z")
_AXIS = {"x": 0, "y": 1, "z": 2}
# channel order inside a stream (same order as the C3D force-plate streams)
_CHANNEL_ORDER = ("force", "moment", "cop", "free_moment")
_SI_UNIT = {"force": "N", "moment": "N·m", "cop": "m", "free_moment": "N·m"}
_DEFAULT_COP_MIN_FORCE_N = 20.0
_BINARY_HINT = "check that you picked the text (.txt/.csv/.mot) export and not a binary or compressed file"


# ================================================================================================ shared helpers
def _force_sign(vertical: NDArray[np.float64], *, plate_frame: bool, threshold_n: float) -> str:
    """Which sign convention the vertical force follows, judged from the loaded samples."""
    loaded = vertical[np.abs(vertical) > threshold_n]
    if loaded.size == 0:
        return "unknown (no sample above the load threshold)"
    positive = float(np.median(loaded)) > 0
    if plate_frame:  # z points down into the plate
        return ("action: force applied to the plate (Fz > 0 when loaded, z down)" if positive
                else "reaction: force applied to the body, in plate axes (Fz < 0 when loaded, z down)")
    return ("reaction: force applied to the body (vertical component > 0 when loaded, up axis)" if positive
            else "action: force applied to the ground (vertical component < 0 when loaded, up axis)")


def compute_cop(force: NDArray[np.float64], moment: NDArray[np.float64], *,
                origin_m: Sequence[float] = (0.0, 0.0, 0.0), min_force_n: float | None = 20.0) -> NDArray[np.float64]:
    """Centre of pressure on a plate's top surface from its forces and moments (AMTI convention).

    Parameters
    ----------
    force
        ``(n, 3)`` float, N, plate frame (x, y in the top surface, z down into the plate). Either sign convention
        (action on the plate or reaction on the body) gives the same COP, as long as force and moment share it.
    moment
        ``(n, 3)`` float, N·m, plate frame, about the plate's measurement origin.
    origin_m
        Vector from the measurement origin to the centre of the top surface, plate axes, m (C3D
        ``FORCE_PLATFORM:ORIGIN`` convention, so z <= 0 for an origin below the surface). ``(0, 0, 0)`` means the
        origin is at the centre of the top surface.
    min_force_n
        Samples with ``|Fz|`` at or below this (N) get NaN; None keeps every sample with ``Fz != 0``.

    Returns
    -------
    NDArray
        ``(n, 3)`` float, m, plate frame, relative to the centre of the top surface; z is 0 (the surface) where
        the COP is defined, NaN elsewhere.

    Notes
    -----
    The moment about the surface centre is ``M_s = M + F × o`` with ``o = origin_m``; the COP on the surface is
    then ``x = -M_s,y / Fz`` and ``y = M_s,x / Fz`` (for ``o = 0``: ``copx = -My / Fz``, ``copy = Mx / Fz``). This
    is what ezc3d does for C3D type-2 plates.
    """
    o = np.asarray(origin_m, dtype=np.float64)
    f = np.asarray(force, dtype=np.float64)
    m_s = np.asarray(moment, dtype=np.float64) + np.cross(f, o)  # M_s = M + F x o
    fz = f[:, 2]
    ok = np.abs(fz) > (min_force_n if min_force_n is not None else 0.0)
    cop = np.full(f.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        cop[ok, 0] = -m_s[ok, 1] / fz[ok]
        cop[ok, 1] = m_s[ok, 0] / fz[ok]
    cop[ok, 2] = 0.0
    return cop


def _mask_cop(cop: NDArray[np.float64], vertical: NDArray[np.float64], min_force_n: float | None) -> int:
    """Set COP samples to NaN where ``|vertical| <= min_force_n``; return how many were masked."""
    if min_force_n is None:
        return 0
    low = np.abs(vertical) <= min_force_n
    cop[low] = np.nan
    return int(np.count_nonzero(low))


def _convert(p: Path, quantity: str, unit: str, column: str) -> float:
    """Factor turning ``unit`` into the SI unit of ``quantity``; unknown or mismatched units raise."""
    try:
        conv = to_si(unit)
    except UnitError:
        raise FileFormatError(p, f"column {column!r} has unit {unit!r}, which fusionlab cannot convert to "
                                 f"{_SI_UNIT[quantity]}; use N, kN or lbf for forces, N·m or N·mm for moments and m, "
                                 "cm or mm for positions") from None
    if conv.si_unit != _SI_UNIT[quantity]:
        raise FileFormatError(p, f"column {column!r} should hold a {quantity.replace('_', ' ')} "
                                 f"({_SI_UNIT[quantity]}) but its unit is {unit!r} ({conv.si_unit}); check the "
                                 "column names and the units row")
    return conv.factor


def _unit_label(units: Sequence[str]) -> str:
    unique = list(dict.fromkeys(u for u in units if u))
    return "/".join(unique) if unique else ""


@dataclass
class _Plate:
    """Columns of one plate (or force group) while a file is being read."""

    number: int
    label: str
    columns: dict[str, dict[int, int]] = field(default_factory=dict)  # quantity -> {axis: column index}
    units: dict[str, dict[int, str]] = field(default_factory=dict)  # quantity -> {axis: unit as written}
    meta: dict[str, Any] = field(default_factory=dict)

    def add(self, quantity: str, axis: int, col: int, unit: str) -> None:
        self.columns.setdefault(quantity, {})[axis] = col
        self.units.setdefault(quantity, {})[axis] = unit

    def has(self, quantity: str, axis: int) -> bool:
        return axis in self.columns.get(quantity, {})


def _plate_data(p: Path, plate: _Plate, values: NDArray[np.float64], names: Sequence[str],
                factors: dict[int, float], required: dict[str, tuple[int, ...]]) -> dict[str, NDArray[np.float64]]:
    """Assemble ``{quantity: (n, 3)}`` in SI; components the file lacks are NaN (free moment x, y are 0)."""
    out: dict[str, NDArray[np.float64]] = {}
    n = values.shape[0]
    for quantity, cols in plate.columns.items():
        need = required.get(quantity, ())
        missing = [_XYZ[a] for a in need if a not in cols]
        if missing:
            present = ", ".join(names[c] for c in cols.values())
            raise FileFormatError(p, f"plate {plate.label}: the {quantity.replace('_', ' ')} needs components "
                                     f"{', '.join(_XYZ[a] for a in need)}, but only {present} are present (missing "
                                     f"{', '.join(missing)}). Export all components or remove the partial columns")
        fill = 0.0 if quantity == "free_moment" else np.nan
        arr = np.full((n, 3), fill)
        for axis, col in cols.items():
            arr[:, axis] = values[:, col] * factors[col]
        out[quantity] = arr
    return out


def _make_stream(name: str, plate: _Plate, data: dict[str, NDArray[np.float64]], frame: str, *,
                 rate_hz: float | None, start_s: float, time_s: NDArray[np.float64] | None, clock: str,
                 meta: dict[str, Any]) -> Stream:
    channels = tuple(q for q in _CHANNEL_ORDER if q in data)
    orig = tuple(_unit_label(list(plate.units.get(q, {}).values())) or _SI_UNIT[q] for q in channels)
    arr = np.stack([data[q] for q in channels], axis=1)
    return Stream(name=name, modality="forceplate", data=arr, channels=channels,
                  units=tuple(_SI_UNIT[q] for q in channels), orig_units=orig, components=_XYZ, frame=frame,
                  rate_hz=rate_hz if time_s is None else None, start_s=start_s, time_s=time_s, clock=clock,
                  meta=meta, storage_dtype="float64")


def _parse_date(text: str) -> str:
    """ISO date-time from a BioWare style ``"Oct 22, 2014  12:05:31"``; empty when it does not parse."""
    clean = re.sub(r"\s+", " ", text.strip())
    for fmt in ("%b %d, %Y %H:%M:%S", "%B %d, %Y %H:%M:%S", "%Y-%m-%d %H:%M:%S", "%d.%m.%Y %H:%M:%S",
                "%b %d, %Y", "%Y-%m-%d", "%d/%m/%Y %H:%M:%S"):
        try:
            return _dt.datetime.strptime(clean, fmt).isoformat()
        except ValueError:
            continue
    return ""


def _time_info(p: Path, t: NDArray[np.float64], cells: Sequence[str], line_numbers: Sequence[int], name: str,
               declared_hz: float | None, declared_what: str, *, unit_factor: float = 1.0,
               ) -> tuple[float | None, float, NDArray[np.float64] | None, dict[str, Any]]:
    """Rate, start and explicit times (irregular only) from a time column, checked against a declared rate.

    ``t`` is in s; ``cells`` are the time values as written, in a unit that is ``unit_factor`` s.
    """
    grid = fit_time_column(p, t, cells, line_numbers, name, declared_hz=declared_hz, declared_what=declared_what,
                           unit_factor=unit_factor)
    rate, start, resid = grid.rate_hz, grid.start_s, grid.max_residual_s
    info: dict[str, Any] = {"time_decimals": grid.decimals}
    if declared_hz is not None:
        info.update(rate_source=declared_what, time_max_residual_s=resid)
        return rate, start, None, info
    if rate is None:
        steps = np.diff(t)
        info.update(rate_source="irregular time column", time_step_min_s=float(steps.min()) if steps.size else None,
                    time_step_max_s=float(steps.max()) if steps.size else None)
        logger.info("%s: time column is not regular (steps %.6g-%.6g s); keeping explicit times", p.name,
                    info["time_step_min_s"], info["time_step_max_s"])
        return None, float(t[0]), t.copy(), info
    info.update(rate_source="time column", time_max_residual_s=resid,
                times_rounded=bool(grid.quantum_s is not None and resid > GRID_REL_TOL / rate))
    return rate, start, None, info


# ================================================================================================ OpenSim .mot
@dataclass(frozen=True)
class MotHeader:
    """What the header of an OpenSim ``.mot``/``.sto`` file says.

    Attributes
    ----------
    style
        ``"v1"`` (``version=1``, ``nRows=``, ``nColumns=``) or ``"legacy"`` (``name``, ``datarows``,
        ``datacolumns``, ``range``).
    name
        The first line (new style) or the ``name`` field (legacy).
    fields
        Every ``key=value`` or ``key value`` header line.
    n_rows, n_columns
        Declared sizes, None when absent.
    in_degrees
        ``inDegrees`` (angles only; irrelevant for forces), None when absent.
    range_s
        Legacy ``range`` (first and last time, s), None when absent.
    end_line
        0-based index of the ``endheader`` line.
    """

    style: Literal["v1", "legacy"]
    name: str
    fields: dict[str, str]
    n_rows: int | None
    n_columns: int | None
    in_degrees: bool | None
    range_s: tuple[float, float] | None
    end_line: int


def _parse_mot_header(lines: Sequence[str], p: Path) -> MotHeader:
    """Parse the header of a ``.mot`` file (pure: works on the list of lines)."""
    end = next((i for i, line in enumerate(lines) if line.strip().lower() == "endheader"), None)
    if end is None:
        raise FileFormatError(p, "no 'endheader' line: an OpenSim .mot/.sto header (name, version=1, nRows=, "
                                 "nColumns=, inDegrees=, or the legacy name/datacolumns/datarows/range) must end "
                                 "with a line reading 'endheader' before the column names. Add it, or re-export "
                                 "from OpenSim")
    fields: dict[str, str] = {}
    name = ""
    for i, raw in enumerate(lines[:end]):
        line = raw.strip()
        if not line:
            continue
        if "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
        else:
            key, _, value = line.partition(" ") if " " in line else line.partition("\t")
            if i == 0 and key.lower() != "name":
                name = line  # new-style header: the first line is the table's name
            else:
                fields[key.strip()] = value.strip()
    name = name or fields.get("name", "")
    low = {k.lower(): v for k, v in fields.items()}

    def as_int(*keys: str) -> int | None:
        for key in keys:
            if key in low:
                try:
                    return int(low[key])
                except ValueError:
                    raise FileFormatError(p, f"header field {key!r} must be an integer, got {low[key]!r}; fix the "
                                             "header line") from None
        return None

    range_s = None
    if "range" in low:
        parts = low["range"].split()
        try:
            range_s = (float(parts[0]), float(parts[1]))
        except (IndexError, ValueError):
            raise FileFormatError(p, f"header field 'range' must hold two times, got {low['range']!r}") from None
    in_deg = low.get("indegrees")
    return MotHeader(style="v1" if "version" in low else "legacy", name=name, fields=fields,
                     n_rows=as_int("nrows", "datarows"), n_columns=as_int("ncolumns", "datacolumns"),
                     in_degrees=None if in_deg is None else in_deg.strip().lower() in ("yes", "true", "1"),
                     range_s=range_s, end_line=end)


_MOT_FORCE = re.compile(r"^(?P<a>.*?)force(?P<b>.*?)_?v(?P<c>[xyz])$")
_MOT_COP = re.compile(r"^(?P<a>.*?)force(?P<b>.*?)_?p(?P<c>[xyz])$")
_MOT_TORQUE = re.compile(r"^(?P<a>.*?)(?:torque|moment)(?P<b>.*?)_?(?P<c>[xyz])$")


def _mot_groups(names: Sequence[str]) -> tuple[list[_Plate], list[str]]:
    """Group ``.mot`` columns by force group (``ground_force_r_*``, ``1_ground_force_*``, ``l_ground_*``...)."""
    groups: dict[tuple[str, str], _Plate] = {}
    ignored: list[str] = []
    for j, raw in enumerate(names[1:], start=1):
        col = raw.strip().lower()
        for regex, quantity in ((_MOT_FORCE, "force"), (_MOT_COP, "cop"), (_MOT_TORQUE, "moment")):
            m = regex.match(col)
            if m:
                key = (m["a"], m["b"].strip("_"))
                if key not in groups:
                    label = f"{m['a']}force" + (f"_{key[1]}" if key[1] else "")
                    groups[key] = _Plate(number=len(groups) + 1, label=label)
                groups[key].add(quantity, _AXIS[m["c"]], j, "")
                break
        else:
            ignored.append(raw.strip())
    return list(groups.values()), ignored


def _mot_side(label: str) -> str | None:
    tokens = set(re.split(r"[_\W]+", label.lower()))
    if tokens & {"r", "right"}:
        return "right"
    if tokens & {"l", "left"}:
        return "left"
    return None


def read_opensim_mot(path: str | os.PathLike[str], *, prefix: str | None = None,
                     cop_min_force_n: float | None = None) -> Session:
    """Read the ground reaction forces of an OpenSim ``.mot`` file.

    Parameters
    ----------
    path
        The ``.mot`` file, with the new header (``version=1``, ``nRows``, ``nColumns``, ``inDegrees``,
        ``endheader``) or the legacy one (``name``, ``datacolumns``, ``datarows``, ``range``, ``endheader``).
    prefix
        Prefix of the stream names; default: the file stem and a dot.
    cop_min_force_n
        When given, COP samples whose vertical (y) force magnitude is at or below this (N) are set to NaN. Default
        None keeps the ``p*`` columns as written: files often hold meaningless COP values while a foot is off the
        plate (the Rajagopal walk has COP x up to 331 m at zero force), so set this (e.g. 20) for analysis.

    Returns
    -------
    Session
        One ``forceplate`` stream per force group, in the order of the columns (``ground_force_r_*`` then
        ``ground_force_l_*``; ``ground_force_*`` then ``1_ground_force_*``): ``<prefix>forceplate<k>``, data
        ``(n, k, 3)`` with channels ``force`` (N, the ``v*`` columns), ``moment`` (N·m, the ``ground_torque_*``
        columns) and ``cop`` (m, the ``p*`` columns), as present, in the OpenSim ground frame (``frame="lab"``,
        x forward, y up, z to the right). ``meta["opensim_group"]`` and ``meta["side"]`` tell which columns and
        which foot (``None`` when the names do not say).

    Raises
    ------
    FileFormatError
        Empty file, no ``endheader``, no force columns, partial vectors, non-numeric values, rows with the wrong
        number of values, row or column counts different from the header (truncated file), non-increasing time.

    Notes
    -----
    OpenSim stores forces in N, positions in m and torques in N·m whatever ``inDegrees`` says (it only concerns
    angles); the values are stored unchanged. The forces are what the ground applies to the body.
    """
    p = check_path(path)
    options: dict[str, Any] = {"prefix": prefix, "cop_min_force_n": cop_min_force_n}
    lines = read_text_lines(p, binary_hint=_BINARY_HINT)
    header = _parse_mot_header(lines, p)
    col_line = next((i for i in range(header.end_line + 1, len(lines)) if lines[i].strip()), None)
    if col_line is None:
        raise FileFormatError(p, "nothing after 'endheader': a .mot file needs a column-name row (time, ...) and "
                                 "data rows. Re-export the file")
    delimiter = "\t" if "\t" in lines[col_line] else None
    names = split_cells(lines[col_line].strip(), delimiter, drop_trailing_empty=True)
    if not names or names[0].lower() != "time":
        raise FileFormatError(p, f"line {col_line + 1}: the first column after 'endheader' must be 'time', found "
                                 f"{names[0] if names else '(nothing)'!r}; this is not an OpenSim .mot/.sto table")
    if "" in names:
        raise FileFormatError(p, f"line {col_line + 1}: column {names.index('') + 1} has no name; every column "
                                 "needs one")
    if header.n_columns is not None and header.n_columns != len(names):
        raise FileFormatError(p, f"the header declares {header.n_columns} columns but line {col_line + 1} names "
                                 f"{len(names)}; fix nColumns/datacolumns or the column-name row")
    plates, ignored = _mot_groups(names)
    if not plates:
        raise FileFormatError(p, f"no ground-reaction columns: expected names such as ground_force_vx, "
                                 f"ground_force_r_px or ground_torque_l_y, found {', '.join(names[1:8])}"
                                 f"{' ...' if len(names) > 8 else ''}. This .mot file holds something else "
                                 "(kinematics?); read it with another reader")
    for plate in plates:
        if "force" not in plate.columns:
            cols = [names[c] for q in plate.columns.values() for c in q.values()]
            raise FileFormatError(p, f"force group {plate.label!r} has position or torque columns "
                                     f"({', '.join(cols)}) but no force (v*) columns; export the force columns too")
    rows, numbers = collect_rows(p, lines, col_line + 1, len(names), delimiter, col_line)
    if header.n_rows is not None and header.n_rows != len(rows):
        raise FileFormatError(p, f"the header declares {header.n_rows} rows (nRows/datarows) but the file holds "
                                 f"{len(rows)}; the file is truncated or was edited. Re-export it, or correct the "
                                 "header")
    values, _ = to_float_array(p, rows, numbers, names, allow_empty=False,
                               fix="Re-export the file from OpenSim; .mot files hold numbers only")
    t = values[:, 0]
    rate, start, time_s, tinfo = _time_info(p, t, [r[0] for r in rows], numbers, names[0], None, "")
    if header.range_s is not None:
        tol = 0.5 * (float(np.max(np.diff(t))) if t.size > 1 else 0.0) + 1e-9
        if abs(header.range_s[0] - t[0]) > tol or abs(header.range_s[1] - t[-1]) > tol:
            raise FileFormatError(p, f"the header range {header.range_s[0]:g}-{header.range_s[1]:g} s does not "
                                     f"match the time column ({t[0]:g}-{t[-1]:g} s); the file is truncated or was "
                                     "edited. Re-export it")
    warn_ignored_columns(p, ignored, "ground-reaction columns", fix="export the forces to their own file")
    sha, clock_id, prefix = file_identity(p, "opensim_mot", prefix)
    streams = []
    plate_meta = []
    for plate in plates:
        factors = dict.fromkeys(range(len(names)), 1.0)
        data = _plate_data(p, plate, values, names, factors, {"force": (0, 1, 2), "cop": (0, 1, 2),
                                                              "moment": (0, 1, 2)})
        vertical = data["force"][:, 1]
        n_masked = _mask_cop(data["cop"], vertical, cop_min_force_n) if "cop" in data else 0
        unloaded = np.abs(vertical) <= _DEFAULT_COP_MIN_FORCE_N
        for q in data:
            plate.units[q] = {a: {"force": "N", "cop": "m", "moment": "N·m"}[q] for a in plate.columns[q]}
        meta = {**base_meta(p, "opensim_mot", sha, options), "plate": plate.number, "opensim_group": plate.label,
                "side": _mot_side(plate.label),
                "columns": {q: [names[plate.columns[q][a]] for a in sorted(plate.columns[q])] for q in plate.columns},
                "lab_axes": {"x": "forward (walking direction)", "y": "up", "z": "right"}, "lab_up_axis": "y",
                "force_sign": _force_sign(vertical, plate_frame=False, threshold_n=_DEFAULT_COP_MIN_FORCE_N),
                "cop_masked_samples": n_masked,
                "cop_unloaded_samples": int(np.count_nonzero(unloaded)) if "cop" in data else 0,
                "note": "OpenSim ground frame (y up); force applied by the ground to the body; moment "
                        "(ground_torque) about the point given by cop; units N, m, N·m as OpenSim writes them"}
        streams.append(_make_stream(f"{prefix}forceplate{plate.number}", plate, data, "lab", rate_hz=rate,
                                    start_s=start, time_s=time_s, clock=clock_id, meta=meta))
        plate_meta.append({"plate": plate.number, "opensim_group": plate.label, "side": meta["side"],
                           "channels": list(streams[-1].channels)})
    metadata = {"format": "OpenSim .mot", "header_style": header.style, "name": header.name,
                "header": dict(header.fields), "in_degrees": header.in_degrees, "n_rows": len(rows),
                "rate_hz": rate, "start_s": start, "plates": plate_meta, "ignored_columns": ignored, **tinfo}
    return unsynchronised_session(p, "opensim_mot", sha, streams, options, metadata, "OpenSim .mot time column")


# ================================================================================================ Kistler BioWare
@dataclass(frozen=True)
class KistlerHeader:
    """What the header of a Kistler BioWare text export says.

    Attributes
    ----------
    software
        The first line (``"BioWare Version 5.2.1.3 Export"``); ``version`` is its version number.
    per_column
        Header lines with one value per data column (``"Device"``, ``"Rate (Hz)"``, ``"Samples (#)"``,
        ``"Contact period start (sample #)"`` ...), keyed without the trailing colon.
    info
        The "File Information" fields (``Date``, ``Name``, ``ID``, ``Classification``, ``Description``).
    columns, units
        Column names (the first is the time) and the units row.
    column_line
        0-based index of the column-name row; the units row follows it, then the data.
    """

    software: str
    version: str
    per_column: dict[str, list[str]]
    info: dict[str, str]
    columns: tuple[str, ...]
    units: tuple[str, ...]
    column_line: int


_TIME_NAME = re.compile(r"^\s*(abs\.?|rel\.?|absolute|relative)?\s*time\b", re.IGNORECASE)


def _parse_kistler_header(lines: Sequence[str], p: Path) -> KistlerHeader:
    """Parse the header of a BioWare export (pure: works on the list of lines)."""
    col = next((i for i, line in enumerate(lines[:200]) if _TIME_NAME.match(line.split("\t")[0])
                and "\t" in line), None)
    if col is None:
        raise FileFormatError(p, "no column-name row: a BioWare text export has about 17 header lines, then a "
                                 "tab-separated row starting with 'abs time (s)' and the channel names (Fx, Fy, Fz, "
                                 "...), then a units row. Re-export the trial as text from BioWare")
    if col + 1 >= len(lines):
        raise FileFormatError(p, f"the column-name row (line {col + 1}) is the last line: the units row and the data "
                                 "are missing. Re-export the data")
    software = lines[0].strip() if "bioware" in lines[0].lower() else ""
    m = re.search(r"version\s+([0-9][0-9.]*)", software, re.IGNORECASE)
    per_column: dict[str, list[str]] = {}
    info: dict[str, str] = {}
    in_info = False
    for line in lines[1 if software else 0:col]:
        if not line.strip():
            continue
        if line.strip().lower() == "file information":
            in_info = True
            continue
        cells = split_cells(line.rstrip("\r\n"), "\t", drop_trailing_empty=True)
        key = cells[0]
        if in_info or not key.endswith(":"):
            info[key.rstrip(":")] = "\t".join(cells[1:]).strip()
        else:
            per_column[key.rstrip(":").strip()] = cells[1:]
    columns = tuple(split_cells(lines[col].rstrip("\r\n"), "\t", drop_trailing_empty=True))
    units = drop_trailing_delimiters(split_cells(lines[col + 1].rstrip("\r\n"), "\t"), len(columns))
    if len(units) != len(columns) or any(_is_number(u) for u in units if u):
        raise FileFormatError(p, f"line {col + 2} should be the units row (one unit per column: '', N, N, N ...) "
                                 f"under the {len(columns)} column names of line {col + 1}, but it reads "
                                 f"{lines[col + 1][:80]!r}. Re-export with units, or add the units row")
    return KistlerHeader(software=software, version=m.group(1) if m else "", per_column=per_column, info=info,
                         columns=columns, units=tuple(units), column_line=col)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "."))
    except ValueError:
        return False
    return True


_KISTLER_CHANNELS: dict[str, tuple[str, int]] = {
    "fx": ("force", 0), "fy": ("force", 1), "fz": ("force", 2),
    "mx": ("moment", 0), "my": ("moment", 1), "mz": ("moment", 2),
    "ax": ("cop", 0), "ay": ("cop", 1), "az": ("cop", 2),
    "tz": ("free_moment", 2),
}


def _unit_in_name(name: str) -> str:
    m = re.search(r"[\[(]([^\])]*)[\])]\s*$", name)
    return m.group(1).strip() if m else ""


def _kistler_plates(p: Path, header: KistlerHeader) -> tuple[list[_Plate], list[str]]:
    """Group the data columns into plates: a new plate starts where the device changes or a name repeats."""
    names = header.columns
    devices = header.per_column.get("Device", [])
    if len(devices) != len(names) - 1:
        devices = []
    plates: list[_Plate] = []
    ignored: list[str] = []
    current: _Plate | None = None
    current_device = None
    for j in range(1, len(names)):
        key = re.sub(r"[\s_.]", "", re.sub(r"[\[(][^\])]*[\])]\s*$", "", names[j])).lower()
        if key not in _KISTLER_CHANNELS:
            ignored.append(names[j])
            continue
        quantity, axis = _KISTLER_CHANNELS[key]
        device = devices[j - 1] if devices else None
        if current is None or current.has(quantity, axis) or (devices and device != current_device):
            current = _Plate(number=len(plates) + 1, label=str(len(plates) + 1))
            current.meta["device"] = device or ""
            current.meta["first_column"] = j
            plates.append(current)
            current_device = device
        current.add(quantity, axis, j, header.units[j] or _unit_in_name(names[j]))
    if not plates:
        raise FileFormatError(p, f"no force-plate channel among the columns {', '.join(names[1:])}; BioWare "
                                 "exports are read when they hold Fx/Fy/Fz, Mx/My/Mz, Ax/Ay (COP) or Tz. Re-export "
                                 "with those channels")
    return plates, ignored


def read_kistler_bioware(path: str | os.PathLike[str], *, prefix: str | None = None,
                         cop_min_force_n: float | None = None) -> Session:
    """Read a Kistler BioWare text export (one or several plates).

    Parameters
    ----------
    path
        The tab-separated ``.txt`` export: ``BioWare Version ... Export``, per-column header lines (``Device``,
        ``Samples (#)``, ``Rate (Hz)``, contact period ...), ``File Information`` (``Date`` ...), the column
        names (``abs time (s)``, ``Fx``, ``Fy``, ``Fz`` ...; repeated for each plate), the units row, the data.
    prefix
        Prefix of the stream names; default: the file stem and a dot.
    cop_min_force_n
        When given, COP samples of a plate whose ``|Fz|`` is at or below this (N) are set to NaN (only for plates
        with force columns). Default None keeps ``Ax``/``Ay`` as exported.

    Returns
    -------
    Session
        One ``forceplate`` stream per plate, ``<prefix>forceplate<n>``, data ``(n, k, 3)`` with channels
        ``force`` (N) when Fx/Fy/Fz are present, ``moment`` (N·m) for Mx/My/Mz, ``cop`` (m) for Ax/Ay (z is NaN:
        BioWare gives none) and ``free_moment`` (N·m, ``(0, 0, Tz)``) for Tz, in the plate frame
        ``plate:<n>`` (x, y in the top surface, origin at its centre, z down). Forces keep BioWare's sign (the
        force applied to the plate: Fz > 0 when loaded). ``meta`` holds the device, the contact period and the
        normalisation values of the header.

    Raises
    ------
    FileFormatError
        Empty or binary file, no column-name or units row, unknown or wrong units, non-numeric values, rows with
        the wrong number of values, fewer rows than ``Samples (#)`` (truncated), no rate in the header and no
        time column, a time column that contradicts ``Rate (Hz)``.

    Notes
    -----
    Plates are told apart by the ``Device`` header line (one value per column) and, when two plates have the
    same device name, by a channel name that repeats (``Fx Fy Fz Fx Fy Fz``).
    """
    p = check_path(path)
    options: dict[str, Any] = {"prefix": prefix, "cop_min_force_n": cop_min_force_n}
    lines = read_text_lines(p, binary_hint=_BINARY_HINT)
    header = _parse_kistler_header(lines, p)
    names = header.columns
    plates, ignored = _kistler_plates(p, header)
    rows, numbers = collect_rows(p, lines, header.column_line + 2, len(names), "\t", header.column_line)
    values, _ = to_float_array(p, rows, numbers, names, allow_empty=False,
                               fix="Re-export the trial as text from BioWare")

    def per_plate(key: str, plate: _Plate) -> str | None:
        vals = header.per_column.get(key, [])
        j = plate.meta["first_column"] - 1
        return vals[j] if j < len(vals) else None

    # rate: Rate (Hz) line, checked against the time column
    rates = {v for v in header.per_column.get("Rate (Hz)", []) if v}
    declared = None
    if rates:
        try:
            floats = sorted({float(v) for v in rates})
        except ValueError:
            raise FileFormatError(p, f"header line 'Rate (Hz)' must hold numbers, got {sorted(rates)}") from None
        if len(floats) > 1 or not floats[0] > 0:
            raise FileFormatError(p, f"header line 'Rate (Hz)' gives {floats}; fusionlab needs one positive rate "
                                     "per file. Export plates with different rates to separate files")
        declared = floats[0]
    samples = {v for v in header.per_column.get("Samples (#)", []) if v}
    if samples and {_safe_int(v) for v in samples} != {len(rows)}:
        raise FileFormatError(p, f"the header says 'Samples (#)' {', '.join(sorted(samples))} but the file holds "
                                 f"{len(rows)} data rows; the file is truncated or was edited. Re-export it")
    time_name = names[0]
    t_factor = time_unit_factor(p, header.units[0] or _unit_in_name(time_name) or "s", time_name)
    t = values[:, 0] * t_factor
    if declared is None and t.size < 2:
        raise FileFormatError(p, "no rate: the header has no 'Rate (Hz)' line and one data row cannot give a rate. "
                                 "Re-export with the header")
    rate, start, time_s, tinfo = _time_info(p, t, [r[0] for r in rows], numbers, time_name, declared,
                                            "the header line 'Rate (Hz)'", unit_factor=t_factor)
    warn_ignored_columns(p, ignored, "force-plate channels fusionlab knows (Fx, Fy, Fz, Mx, My, Mz, Ax, Ay, Tz)")
    sha, clock_id, prefix = file_identity(p, "kistler_bioware", prefix)
    streams = []
    plate_meta = []
    for plate in plates:
        factors = {c: _convert(p, q, plate.units[q][a], names[c]) for q, cols in plate.columns.items()
                   for a, c in cols.items()}
        data = _plate_data(p, plate, values, names, factors,
                           {"force": (0, 1, 2), "moment": (0, 1, 2), "cop": (0, 1)})
        n_masked = 0
        sign = "unknown (no force columns)"
        if "force" in data:
            sign = _force_sign(data["force"][:, 2], plate_frame=True, threshold_n=_DEFAULT_COP_MIN_FORCE_N)
            if "cop" in data:
                n_masked = _mask_cop(data["cop"], data["force"][:, 2], cop_min_force_n)
        meta = {**base_meta(p, "kistler_bioware", sha, options), "plate": plate.number, "device": plate.meta["device"],
                "columns": {q: [names[plate.columns[q][a]] for a in sorted(plate.columns[q])] for q in plate.columns},
                "contact_period_start_idx": _safe_int(per_plate("Contact period start (sample #)", plate)),
                "contact_period_end_idx": _safe_int(per_plate("Contact period end (sample #)", plate)),
                "normalized_force_n": _safe_float(per_plate("Normalized force (N)", plate)),
                "normalized_length_m": _safe_float(per_plate("Normalized length (m)", plate)),
                "force_sign": sign, "cop_masked_samples": n_masked,
                "note": "Kistler plate frame: x, y in the top surface, origin at its centre, z down into the plate; "
                        "force as exported by BioWare (applied to the plate); cop z is not exported (NaN)"}
        streams.append(_make_stream(f"{prefix}forceplate{plate.number}", plate, data, f"plate:{plate.number}",
                                    rate_hz=rate, start_s=start, time_s=time_s, clock=clock_id, meta=meta))
        plate_meta.append({"plate": plate.number, "device": plate.meta["device"],
                           "channels": list(streams[-1].channels),
                           "contact_period_start_idx": meta["contact_period_start_idx"]})
    date = header.info.get("Date", "")
    metadata = {"format": "Kistler BioWare text export", "software": header.software,
                "bioware_version": header.version, "date": date, "date_iso": _parse_date(date) if date else "",
                "info": dict(header.info), "header": {k: v for k, v in header.per_column.items()},
                "n_rows": len(rows), "rate_hz": rate, "start_s": start, "plates": plate_meta,
                "ignored_columns": ignored, **tinfo}
    return unsynchronised_session(p, "kistler_bioware", sha, streams, options, metadata,
                                  "BioWare export time column")


def _safe_int(text: str | None) -> int | None:
    try:
        return int(float(text)) if text not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


def _safe_float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "") else None  # type: ignore[arg-type]
    except ValueError:
        return None


# ================================================================================================ generic CSV
@dataclass(frozen=True)
class CsvHeader:
    """What the header of a generic force-plate CSV says.

    Attributes
    ----------
    delimiter
        The field separator: a comma, a semicolon or a tab.
    columns
        The cells of the column-name row, as written.
    fields
        ``key: value`` (or ``key,value``) lines before the column-name row, comment signs removed.
    rate_hz, rate_line
        A rate stated before the column-name row (``Sample rate: 1000 Hz``, ``Rate,1000``), and that line.
    units_row
        A units row under the column names (``s, N, N, N, N.mm ...``), when there is one.
    column_line, data_line
        0-based indices of the column-name row and of the first data row.
    decimal_comma
        True when values use a decimal comma (``;`` or tab delimited files only).
    """

    delimiter: str
    columns: tuple[str, ...]
    fields: dict[str, str]
    rate_hz: float | None
    rate_line: str
    units_row: tuple[str, ...] | None
    column_line: int
    data_line: int
    decimal_comma: bool


_COMMENT = ("#", "%", "//", "!")
_CSV_COL = re.compile(
    r"^(?:(?:fp|plate|forceplate|force\s*plate)\s*(?P<pre>\d+)[\s_.:-]*)?"
    r"(?P<base>[A-Za-z][A-Za-z _.]*?)[\s_.]?(?P<plate>\d*)\s*(?:[\[(](?P<unit>[^\])]*)[\])])?$", re.IGNORECASE)
_CSV_QUANTITY: dict[str, tuple[str, int]] = {
    "fx": ("force", 0), "fy": ("force", 1), "fz": ("force", 2),
    "mx": ("moment", 0), "my": ("moment", 1), "mz": ("moment", 2),
    "copx": ("cop", 0), "copy": ("cop", 1), "copz": ("cop", 2),
    "ax": ("cop", 0), "ay": ("cop", 1), "az": ("cop", 2),
    "tz": ("free_moment", 2),
}
_CSV_TIME = {"time", "t", "abstime", "reltime", "timestamp", "times", "timesec", "timess"}
_CSV_HARMLESS = {"sample", "samples", "frame", "frames", "index", "sub frame", "subframe", "n", "no", "count"}
_RATE_LINE = re.compile(r"(?:sample|sampling|acquisition|capture)?\s*(?:rate|frequency|freq|fs)\b[^0-9\n]*?"
                        r"(?P<value>[0-9]+(?:\.[0-9]*)?)\s*(?P<unit>k?hz)?", re.IGNORECASE)


def _csv_column(cell: str) -> tuple[str, int | None, str] | None:
    """``(key, plate, unit)`` of a column name, key being a `_CSV_QUANTITY` key or ``"time"``; None if unknown."""
    m = _CSV_COL.match(cell.strip())
    if not m:
        return None
    base = re.sub(r"[\s_.]", "", m["base"]).lower()
    if base not in _CSV_QUANTITY and base not in _CSV_TIME:
        base = re.sub(r"^(force|moment|cop)(?=[fmta]|cop)", "", base)  # C3D style "Force.Fx1", "Moment.Mz1"
    digits = m["pre"] or m["plate"]
    unit = (m["unit"] or "").strip()
    if base in _CSV_TIME and not digits:
        return "time", None, unit
    if base in _CSV_QUANTITY:
        return base, int(digits) if digits else None, unit
    return None


def _find_csv_header(line: str) -> tuple[str, list[str]] | None:
    """Return ``(delimiter, cells)`` when ``line`` is a column-name row naming Fx, Fy and Fz."""
    for delim in ("\t", ",", ";"):
        if delim not in line:
            continue
        cells = split_cells(line, delim, quotes=True, drop_trailing_empty=True)
        keys = {c[0] for c in (_csv_column(cell) for cell in cells) if c is not None}
        if {"fx", "fy", "fz"} <= keys:
            return delim, cells
    return None


def _parse_csv_header(lines: Sequence[str], p: Path) -> CsvHeader:
    """Parse the header of a generic force-plate CSV (pure: works on the list of lines)."""
    fields: dict[str, str] = {}
    rate = None
    rate_line = ""
    for i, line in enumerate(lines[:500]):
        if not line.strip():
            continue
        found = None if line.lstrip().startswith(_COMMENT) else _find_csv_header(line)
        if found is None:
            text = line.strip()
            for c in _COMMENT:
                if text.startswith(c):
                    text = text[len(c):].strip()
                    break
            m = re.match(r"^(?P<key>[^:=,;\t]+?)\s*[:=,;\t]\s*(?P<value>.*)$", text)
            if m:
                fields[m["key"].strip().strip('"')] = m["value"].strip().strip(",;\t").strip().strip('"')
            rm = _RATE_LINE.search(text)
            if rm and rate is None and re.match(r"^\W*(sample|sampling|acquisition|capture|rate|freq|frequency|fs)",
                                                text, re.IGNORECASE):
                rate = float(rm["value"]) * (1e3 if (rm["unit"] or "").lower() == "khz" else 1.0)
                rate_line = line.strip()
            continue
        delim, cells = found
        data_line = i + 1
        units_row = None
        while data_line < len(lines) and not lines[data_line].strip():
            data_line += 1
        if data_line < len(lines):
            under = split_cells(lines[data_line], delim, quotes=True, drop_trailing_empty=True)
            if under and not any(_is_number(c) for c in under if c) and any(under):
                units_row = tuple(under) + ("",) * (len(cells) - len(under))
                data_line += 1
        decimal_comma = False
        if delim != "," and data_line < len(lines):
            first = split_cells(lines[data_line], delim, quotes=True, drop_trailing_empty=True)
            decimal_comma = any(re.fullmatch(r"[-+]?\d+,\d+", c) for c in first) and not any("." in c for c in first)
        return CsvHeader(delimiter=delim, columns=tuple(cells), fields=fields, rate_hz=rate, rate_line=rate_line,
                         units_row=units_row, column_line=i, data_line=data_line, decimal_comma=decimal_comma)
    raise FileFormatError(p, "no column-name row naming Fx, Fy and Fz (comma, semicolon or tab separated) in the "
                             "first 500 lines; a force-plate CSV needs one, e.g. 'time,Fx,Fy,Fz,Mx,My,Mz' or "
                             "'Fx1,Fy1,Fz1,...' for several plates. Add or fix the header row")


def read_forceplate_csv(path: str | os.PathLike[str], *, rate_hz: float | None = None, prefix: str | None = None,
                        plate: int = 1, origin_m: Sequence[float] = (0.0, 0.0, 0.0),
                        cop_min_force_n: float | None = _DEFAULT_COP_MIN_FORCE_N) -> Session:
    """Read a generic force-plate CSV/TSV export (AMTI NetForce / Bertec style).

    Parameters
    ----------
    path
        The ``.csv``, ``.tsv`` or ``.txt`` file: optional comment or ``key: value`` lines, a column-name row with
        ``Fx, Fy, Fz`` (and optionally ``Mx, My, Mz``, ``COPx, COPy`` or ``Ax, Ay``, ``Tz``, a time column
        ``time``/``Time (s)``), an optional units row, then the data. Units go in brackets in the names
        (``Fz[N]``, ``Mx (N.mm)``) or in the units row; without them forces are N, moments N·m and COP m. Several
        plates: suffix the names with the plate number (``Fz1``, ``Fz2``).
    rate_hz
        Sampling rate (Hz) when the file has neither a time column nor a rate line (``Sample rate: 1000 Hz``,
        ``Rate,1000``). When the file states a rate too, both must agree.
    prefix
        Prefix of the stream names; default: the file stem and a dot.
    plate
        Plate number given to columns without a plate suffix (``Fz``): the stream is ``<prefix>forceplate<plate>``
        in frame ``plate:<plate>``.
    origin_m
        Vector from each plate's measurement origin to the centre of its top surface, plate axes, m (the C3D
        ``FORCE_PLATFORM:ORIGIN`` convention, z <= 0 for an origin below the surface), used only to compute the
        COP of plates without COP columns. Default: the origin is at the centre of the top surface. A positive z
        is taken as the opposite sign convention and negated (as ezc3d does), with a warning.
    cop_min_force_n
        COP samples where ``|Fz|`` is at or below this (N) are NaN (default 20 N); None keeps every sample with
        ``Fz != 0``. Applies to computed and to explicit COP.

    Returns
    -------
    Session
        One ``forceplate`` stream per plate, ``<prefix>forceplate<n>``, ``(n, k, 3)`` with channels ``force`` (N),
        ``moment`` (N·m, about the measurement origin, as exported) when present, ``cop`` (m, relative to the centre
        of the top surface) and ``free_moment`` (N·m) when present, in the plate frame ``plate:<n>`` (x, y in the
        top surface, z down). Forces keep the file's sign; ``meta["force_sign"]`` says which convention it is.

    Raises
    ------
    FileFormatError
        Empty or binary file; no column-name row with Fx, Fy, Fz; duplicate or partial columns; unknown units;
        non-numeric values; rows with the wrong number of values; no rate (no time column, no rate line and no
        ``rate_hz``); a stated rate that contradicts the time column or ``rate_hz``; moments or COP without units
        whose size says they are in mm.

    Notes
    -----
    **COP assumption.** Without COP columns the COP is computed with the AMTI convention for a plate whose
    measurement origin is at the centre of its top surface (zero top-plate offset): ``copx = -My / Fz``,
    ``copy = Mx / Fz`` where ``|Fz| > cop_min_force_n``, NaN elsewhere (see `compute_cop`). Real plates have their
    origin some mm below the surface; pass that offset as ``origin_m`` (the C3D ``FORCE_PLATFORM:ORIGIN`` of the
    plate) or the COP is off by about ``origin_z * Fx / Fz``. ``meta["cop_computed"]`` and ``meta["origin_m"]``
    record what was done.
    """
    p = check_path(path)
    options: dict[str, Any] = {"rate_hz": rate_hz, "prefix": prefix, "plate": plate, "origin_m": list(origin_m),
                               "cop_min_force_n": cop_min_force_n}
    check_rate_hz(rate_hz)
    if not isinstance(plate, int) or isinstance(plate, bool) or plate < 1:
        msg = f"Invalid value for 'plate'. Expected a plate number >= 1, but got {plate!r} instead."
        raise ValidationError(msg)
    origin = np.asarray(origin_m, dtype=np.float64)
    if origin.shape != (3,) or not np.all(np.isfinite(origin)):
        msg = f"Invalid value for 'origin_m'. Expected 3 finite numbers (m), but got {origin_m!r} instead."
        raise ValidationError(msg)
    if origin[2] > 0:
        warnings.warn(f"{p.name}: origin_m has z = {origin[2]:g} m > 0; taking it as the vector from the surface "
                      "centre to the origin and negating it (as ezc3d does). Pass z <= 0 to silence this.",
                      FusionlabWarning, stacklevel=2)
        origin = -origin
    lines = read_text_lines(p, binary_hint=_BINARY_HINT)
    header = _parse_csv_header(lines, p)
    names = header.columns
    n_cols = len(names)
    plates: dict[int, _Plate] = {}
    time_col = None
    time_unit = "s"
    ignored: list[str] = []
    seen: dict[tuple[int, str, int], int] = {}
    units_given: dict[int, bool] = {}
    for j, cell in enumerate(names):
        parsed = _csv_column(cell)
        row_unit = header.units_row[j].strip() if header.units_row and j < len(header.units_row) else ""
        if parsed is None:
            ignored.append(cell)
            continue
        key, number, unit = parsed
        unit = unit or row_unit
        if key == "time":
            if time_col is not None:
                raise FileFormatError(p, f"two time columns ({names[time_col]!r} and {cell!r}); keep one")
            time_col, time_unit = j, unit or "s"
            continue
        quantity, axis = _CSV_QUANTITY[key]
        number = plate if number is None else number
        if (number, quantity, axis) in seen:
            raise FileFormatError(p, f"columns {names[seen[number, quantity, axis]]!r} and {cell!r} both give "
                                     f"{quantity.replace('_', ' ')} {_XYZ[axis]} of plate {number}; rename one "
                                     "(suffix plate numbers: Fz1, Fz2)")
        seen[number, quantity, axis] = j
        units_given[j] = bool(unit)
        plates.setdefault(number, _Plate(number=number, label=str(number))).add(
            quantity, axis, j, unit or {"force": "N", "moment": "Nm", "cop": "m", "free_moment": "Nm"}[quantity])
    for pl in plates.values():
        missing = [f"F{_XYZ[a]}" for a in range(3) if not pl.has("force", a)]
        if missing:
            raise FileFormatError(p, f"plate {pl.number}: no {', '.join(missing)} column; every plate needs Fx, Fy "
                                     "and Fz (suffixed with the plate number when there are several plates)")
    rows, numbers = collect_rows(p, lines, header.data_line, n_cols, header.delimiter, header.column_line,
                                 comment_prefixes=_COMMENT, quotes=True)
    if header.decimal_comma:
        rows = [[c.replace(",", ".") for c in r] for r in rows]
    values, n_empty = to_float_array(p, rows, numbers, names, allow_empty=True,
                                     fix="Remove text rows from the data, or comment them out with '#'")

    # ---- rate and time
    declared = header.rate_hz
    declared_what = f"the header line {header.rate_line!r}" if header.rate_line else ""
    if rate_hz is not None:
        if declared is not None and abs(declared - rate_hz) > GRID_REL_TOL * rate_hz:
            raise FileFormatError(p, f"rate_hz={rate_hz:g} contradicts {declared_what} ({declared:g} Hz); pass the "
                                     "right rate or leave rate_hz out to use the file's")
        declared, declared_what = float(rate_hz), declared_what or "the rate_hz argument"
    if time_col is not None:
        t_factor = time_unit_factor(p, time_unit, names[time_col])
        t = values[:, time_col] * t_factor
        rate, start, time_s, tinfo = _time_info(p, t, [r[time_col] for r in rows], numbers, names[time_col],
                                                declared, declared_what, unit_factor=t_factor)
    elif declared is not None:
        rate, start, time_s = declared, 0.0, None
        tinfo = {"rate_source": declared_what}
    else:
        raise FileFormatError(p, "no sampling rate: the file has no time column and no rate line before the "
                                 "column names. Add a time column, a line such as 'Sample rate: 1000 Hz' (or "
                                 "'Rate,1000'), or pass rate_hz=")

    warn_ignored_columns(p, [c for c in ignored if c.strip().lower() not in _CSV_HARMLESS],
                         "force-plate columns fusionlab knows (Fx, Fy, Fz, Mx, My, Mz, COPx, COPy, Ax, Ay, Tz, time)")
    sha, clock_id, prefix = file_identity(p, "forceplate_csv", prefix)
    streams = []
    plate_meta = []
    for number in sorted(plates):
        pl = plates[number]
        factors = {c: _convert(p, q, pl.units[q][a], names[c]) for q, cols in pl.columns.items()
                   for a, c in cols.items()}
        data = _plate_data(p, pl, values, names, factors, {"force": (0, 1, 2), "moment": (0, 1, 2), "cop": (0, 1)})
        force = data["force"]
        loaded = np.abs(force[:, 2]) > _DEFAULT_COP_MIN_FORCE_N
        _check_default_units(p, pl, data, names, units_given, loaded)
        cop_computed = False
        n_masked = 0
        if "cop" in data:
            n_masked = _mask_cop(data["cop"], force[:, 2], cop_min_force_n)
        elif "moment" in data:
            data["cop"] = compute_cop(force, data["moment"], origin_m=origin, min_force_n=cop_min_force_n)
            pl.units["cop"] = {0: "m", 1: "m", 2: "m"}
            pl.columns["cop"] = {}
            cop_computed = True
            n_masked = int(np.count_nonzero(np.isnan(data["cop"][:, 0])))
        meta = {**base_meta(p, "forceplate_csv", sha, options), "plate": number,
                "columns": {q: [names[pl.columns[q][a]] for a in sorted(pl.columns[q])] for q in pl.columns},
                "force_sign": _force_sign(force[:, 2], plate_frame=True, threshold_n=_DEFAULT_COP_MIN_FORCE_N),
                "cop_computed": cop_computed, "cop_masked_samples": n_masked, "cop_min_force_n": cop_min_force_n,
                "origin_m": origin.tolist(),
                "moment_about": "the plate's measurement origin (as exported)",
                "note": "plate frame: x, y in the top surface, z down into the plate; cop relative to the centre of "
                        "the top surface" + ("; cop computed as copx = -(My + Fz*ox - Fx*oz)/Fz, copy = (Mx + Fy*oz "
                                             "- Fz*oy)/Fz with origin_m = (ox, oy, oz) (AMTI convention; zero "
                                             "top-plate offset when origin_m = 0)" if cop_computed else "")}
        streams.append(_make_stream(f"{prefix}forceplate{number}", pl, data, f"plate:{number}", rate_hz=rate,
                                    start_s=start, time_s=time_s, clock=clock_id, meta=meta))
        plate_meta.append({"plate": number, "channels": list(streams[-1].channels), "cop_computed": cop_computed})
    metadata = {"format": "force-plate CSV", "delimiter": header.delimiter, "header": dict(header.fields),
                "columns": list(names), "units_row": list(header.units_row) if header.units_row else None,
                "n_rows": len(rows), "rate_hz": rate, "start_s": start, "plates": plate_meta,
                "ignored_columns": ignored, "empty_cells": n_empty, "decimal_comma": header.decimal_comma, **tinfo}
    for key in ("date", "software", "device"):
        for k, v in header.fields.items():
            if k.lower().startswith(key) and key not in metadata:
                metadata[key] = v
    return unsynchronised_session(p, "forceplate_csv", sha, streams, options, metadata,
                                  "CSV time column or stated rate")


def _check_default_units(p: Path, pl: _Plate, data: dict[str, NDArray[np.float64]], names: Sequence[str],
                         units_given: dict[int, bool], loaded: NDArray[np.bool_]) -> None:
    """Refuse moments or COP without units whose size says they are in mm (a 1000x error otherwise)."""
    if not loaded.any():
        return
    f_max = float(np.nanmax(np.abs(data["force"][loaded])))
    if "moment" in data and not any(units_given.get(c, False) for c in pl.columns["moment"].values()):
        m_max = float(np.nanmax(np.abs(data["moment"][loaded])))
        if f_max > 0 and m_max / f_max > 5.0:
            raise FileFormatError(p, f"plate {pl.number}: the moment columns have no unit, so N·m is assumed, but "
                                     f"they reach {m_max:.4g} for forces up to {f_max:.4g} N, a lever arm of "
                                     f"{m_max / f_max:.3g} m. They are probably in N·mm: write the unit in the "
                                     "header (Mx[N.mm]) or in a units row")
    if "cop" in data and pl.columns.get("cop") and not any(units_given.get(c, False)
                                                           for c in pl.columns["cop"].values()):
        c_max = float(np.nanmax(np.abs(data["cop"][loaded]))) if np.isfinite(data["cop"][loaded]).any() else 0.0
        if c_max > 3.0:
            raise FileFormatError(p, f"plate {pl.number}: the COP columns have no unit, so m is assumed, but they "
                                     f"reach {c_max:.4g} m. They are probably in mm: write the unit in the header "
                                     "(COPx[mm]) or in a units row")
