"""Force-platform outputs (force, moment, centre of pressure, free moment) from C3D analog channels, in NumPy.

Same equations and parameter conventions as ezc3d's ``ForcePlatforms`` module (types 1-4), vectorised over all
samples: ezc3d's own extraction copies every sample to Python one at a time, which took 19 s of a 27-s read on a
10-minute recording. ``tests/test_forceplate_math.py`` checks equality with ezc3d on every plate of every C3D in
../shared/data.

Conventions (C3D specification, as ezc3d implements it)
    * ``CORNERS`` (3, 4, n) in the lab frame; plate axes: x = c0 - c1, y = c0 - c3 (orthogonalised), z = x × y.
    * ``ORIGIN`` (3, n): vector from the plate's surface centre to its transducer origin, plate axes; for types 1-4
      a positive z is a sign error of the writer and is flipped. Type 1 uses only its z.
    * ``CAL_MATRIX`` (6, 6, n) multiplies the 6 channels of a type-4 plate (outputs = CAL @ channels).
    * Outputs are in the file's units: force in ``FORCE_PLATFORM:UNITS`` (default N), position in ``POINT:UNITS``,
      moment in force × position units.

Units of the channels (where we differ from ezc3d)
    Lengths (``CORNERS``, ``ORIGIN``, the type-3 ``FPCOPPOLY`` evaluated on COP in those units) are in
    ``POINT:UNITS``, as the C3D standard says (c3d.org, FORCE_PLATFORM:ORIGIN: "All ORIGIN distance units must be
    recorded in POINT:UNITS"). ezc3d (ForcePlatforms.cpp, ``extractUnits``) also takes the moment channels to be
    in force × ``POINT:UNITS`` and never reads their ``ANALOG:UNITS``: a file with points in m and moments in N·mm
    then gets moments 1000x too large and its centre of pressure 1000x too far from the plate centre. Here the
    moment channels (types 2 and 4; type 1's free moment; type 1's COP channels as lengths) are converted from
    their own declared ``ANALOG:UNITS`` into force × position units before the equations, so the outputs keep
    ezc3d's units. When the declaration agrees with the position rule the factor is exactly 1 and the outputs are
    ezc3d's to the last bit. When it disagrees the data decide (`_decide_scale`): some writers label N·mm values
    "Nm" (sample03_gait-pig*.c3d, sample23_Vicon_analysis.c3d), and only the right unit puts the loaded centre of
    pressure on the plate. Missing, unknown, mixed or data-contradicted declarations fall back to the position
    rule with a note in ``unit_notes``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.exceptions import UnitError
from fusionlab.units import to_si

__all__ = ["PlatformError", "compute_platforms"]

SUPPORTED_TYPES = (1, 2, 3, 4)
# data check of a declared channel unit that disagrees with the position rule (see _decide_scale)
_LOADED_FRACTION = 0.2  # loaded samples: |Fz| >= this fraction of the plate's largest |Fz| ...
_LOADED_MIN_N = 50.0  # ... and at least this many newtons
_LOADED_MIN_SAMPLES = 10
_INSIDE_MARGIN = 1.5  # a COP within 1.5 half-lengths of the plate centre along each plate axis counts as on it
_INSIDE_FRACTION = 0.8  # the hypothesis is plausible when this fraction of the loaded COP samples is on the plate


class PlatformError(ValueError):
    """FORCE_PLATFORM parameters are missing or inconsistent for a plate."""


def _value(params: dict[str, Any], group: str, name: str) -> NDArray[Any] | None:
    try:
        return np.asarray(params[group][name]["value"])
    except KeyError:
        return None


def _cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.cross(a, b)


def _analog_units(params: dict[str, Any]) -> list[str]:
    """ANALOG:UNITS with its continuation parameters (UNITS2, UNITS3 ... for more than 255 channels)."""
    out: list[str] = []
    k = 1
    while (v := _value(params, "ANALOG", "UNITS" if k == 1 else f"UNITS{k}")) is not None:
        out += [str(u).strip() for u in np.ravel(v)]
        k += 1
    return out


def _si_factor(unit: str, si_unit: str) -> float | None:
    """Factor of ``unit`` to ``si_unit`` (``N``, ``m``, ``N·m``); None when unknown or another quantity."""
    try:
        conv = to_si(unit.strip())
    except (UnitError, ValueError):
        return None
    return float(conv.factor) if conv.si_unit == si_unit and conv.factor > 0 else None


def _declared_scale(units: list[str], idx: NDArray[np.int_], si_unit: str, target: float | None,
                    labels: list[str]) -> tuple[float | None, str | None]:
    """Factor from the channels' declared unit to ``target`` (SI factor of the output unit), or None and why."""
    names = ", ".join(labels[i] if i < len(labels) else f"analog {i + 1}" for i in idx)
    declared = [units[i] if i < len(units) else "" for i in idx]
    if target is None:
        return None, f"channels {names}: the force or position unit of the file is unknown"
    if not any(declared):
        return None, f"channels {names}: no ANALOG:UNITS"
    factors = [_si_factor(u, si_unit) for u in declared]
    if any(f is None for f in factors):
        return None, f"channels {names}: ANALOG:UNITS {declared} are not all {si_unit} units"
    if not np.allclose(factors, factors[0], rtol=1e-9, atol=0):
        return None, f"channels {names}: ANALOG:UNITS {declared} disagree with each other"
    ratio = float(factors[0]) / target  # type: ignore[operator]
    return (1.0 if np.isclose(ratio, 1.0, rtol=1e-9, atol=0) else ratio), None


def _decide_scale(scale: float, lever: NDArray[np.float64], offset: NDArray[np.float64], fz: NDArray[np.float64],
                  half: NDArray[np.float64], force_factor: float) -> str:
    """Which of the declared factor ``scale`` and the position rule (1) the loaded centre of pressure supports.

    With the channels scaled by k the COP (n, 2), relative to the plate centre in plate axes, is
    ``k * lever + offset``; ``half`` are the plate's half-lengths along its x and y axes.
    The larger factor is right when its COP stays on the plate; if the larger factor is wrong (too large by the
    ratio, 10 to 1000), its COP lands that many times further from the centre, off the plate. A wrong smaller
    factor cannot be seen this way (it only pulls the COP towards the centre), hence the order.
    Returns ``"declared"``, ``"position"`` or ``"unknown"`` (too few loaded samples, or neither on the plate).
    """
    afz = np.abs(fz)
    finite = np.isfinite(afz)
    if not finite.any():
        return "unknown"
    loaded = finite & (afz >= max(_LOADED_FRACTION * float(afz[finite].max()), _LOADED_MIN_N / force_factor))
    if loaded.sum() < _LOADED_MIN_SAMPLES:
        return "unknown"
    for k, verdict in sorted(((scale, "declared"), (1.0, "position")), reverse=True):
        cop = k * lever[loaded] + offset[loaded]
        on_plate = np.all(np.abs(cop) <= _INSIDE_MARGIN * half, axis=1)
        if on_plate.mean() >= _INSIDE_FRACTION:
            return verdict
    return "unknown"


def compute_platforms(params: dict[str, Any], analogs: NDArray[np.float64]) -> list[dict[str, Any]]:
    """Compute every used force platform.

    Parameters
    ----------
    params
        ezc3d's ``c["parameters"]`` dictionary.
    analogs
        ``(n_channels, n_samples)`` analog values as ezc3d returns them (scaled, in the file's units).

    Returns
    -------
    list of dict
        One per plate: ``type``, ``force``, ``moment``, ``cop``, ``free_moment`` (each ``(n_samples, 3)``, lab
        frame, file units), ``corners`` (4, 3), ``origin`` (3,), ``cal_matrix`` (6, 6), ``channels`` (0-based),
        ``unit_force``, ``unit_moment``, ``unit_position`` (of the outputs: moment = force x position units, as
        ezc3d), ``moment_scale`` (factor applied to the moment channels to bring their ``ANALOG:UNITS`` to
        ``unit_moment``; 1 when they agree), ``cop_scale`` (same for type 1's COP channels), ``unit_rule``
        (``"declared"``: the channels' ANALOG:UNITS were used; ``"position"``: the force x POINT:UNITS rule) and
        ``unit_notes`` (why the declaration was not used, or could not be checked; empty when nothing to say).

    Raises
    ------
    PlatformError
        With the reason (missing parameter, unsupported type, channel out of range).
    """
    used = _value(params, "FORCE_PLATFORM", "USED")
    if used is None or used.size == 0 or int(np.ravel(used)[0]) == 0:
        return []
    n_plates = int(np.ravel(used)[0])
    units_pos = _value(params, "POINT", "UNITS")
    unit_position = str(np.ravel(units_pos)[0]) if units_pos is not None and units_pos.size else "m"
    units_f = _value(params, "FORCE_PLATFORM", "UNITS")
    unit_force = str(np.ravel(units_f)[0]) if units_f is not None and units_f.size else "N"
    types = _value(params, "FORCE_PLATFORM", "TYPE")
    corners_all = _value(params, "FORCE_PLATFORM", "CORNERS")
    origins = _value(params, "FORCE_PLATFORM", "ORIGIN")
    channels = _value(params, "FORCE_PLATFORM", "CHANNEL")
    cal = _value(params, "FORCE_PLATFORM", "CAL_MATRIX")
    poly = _value(params, "FORCE_PLATFORM", "FPCOPPOLY")
    a_units = _analog_units(params)
    labels_v = _value(params, "ANALOG", "LABELS")
    a_labels = [str(x).strip() for x in np.ravel(labels_v)] if labels_v is not None else []
    f_factor = _si_factor(unit_force, "N")
    x_factor = _si_factor(unit_position, "m")
    m_target = f_factor * x_factor if f_factor is not None and x_factor is not None else None
    out = []
    for k in range(n_plates):
        if types is None or np.ravel(types).size < k + 1:
            raise PlatformError("FORCE_PLATFORM:TYPE does not list every used plate")
        ptype = int(np.ravel(types)[k])
        if ptype not in SUPPORTED_TYPES:
            raise PlatformError(f"force platform type {ptype} is not supported (types 1-4 are)")
        if corners_all is None or corners_all.size < 12 * (k + 1):
            raise PlatformError("FORCE_PLATFORM:CORNERS does not describe every used plate")
        corners = np.asarray(corners_all, dtype=float).reshape(3, 4, -1, order="F")[:, :, k].T  # (4, 3)
        if origins is None or origins.size < 3 * (k + 1):
            raise PlatformError("FORCE_PLATFORM:ORIGIN does not describe every used plate")
        origin = np.asarray(origins, dtype=float).reshape(3, -1, order="F")[:, k].copy()
        if ptype == 1:
            origin[:2] = 0.0
        if origin[2] > 0.0:
            origin = -origin
        cal_k = np.zeros((6, 6))
        if cal is None or cal.ndim < 3 or cal.shape[2] <= k:
            if ptype == 4:
                raise PlatformError("FORCE_PLATFORM:CAL_MATRIX is required for a type-4 plate and is missing")
        elif cal.size == 0:
            cal_k = np.eye(6)
        else:
            cal_k = np.asarray(cal, dtype=float)[:6, :6, k]
        n_ch = 8 if ptype == 3 else 6
        if channels is None or channels.ndim < 2 or channels.shape[0] < n_ch or channels.shape[1] < k + 1:
            raise PlatformError("FORCE_PLATFORM:CHANNEL is not filled for every used plate")
        idx = np.asarray(channels, dtype=int)[:n_ch, k] - 1
        if np.any(idx < 0) or np.any(idx >= analogs.shape[0]):
            raise PlatformError(f"FORCE_PLATFORM:CHANNEL of plate {k + 1} points outside the "
                                f"{analogs.shape[0]} analog channels")
        ch = np.asarray(analogs[idx], dtype=float).T  # (n, n_ch)
        # plate axes in the lab frame (columns of R)
        ax = corners[0] - corners[1]
        ay = corners[0] - corners[3]
        az = np.cross(ax, ay)
        ay = np.cross(az, ax)
        rot = np.column_stack([ax / np.linalg.norm(ax), ay / np.linalg.norm(ay), az / np.linalg.norm(az)])
        centre = corners.mean(axis=0)
        half = np.array([np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[0] - corners[3])]) / 2
        # units of the channels: moments (types 2, 4; type 1's Tz) and type 1's COP from their ANALOG:UNITS
        notes: list[str] = []
        m_scale, c_scale, rule = 1.0, 1.0, "position"
        what = "COP" if ptype == 1 else "moments"
        declared: float | None = 1.0
        why: str | None = None
        if ptype in (2, 4):  # Mx, My, Mz channels (type 4: the CAL_MATRIX outputs keep the channels' units)
            declared, why = _declared_scale(a_units, idx[3:6], "N·m", m_target, a_labels)
        elif ptype == 1:  # COPx, COPy lengths, Tz a moment
            declared, why = _declared_scale(a_units, idx[3:5], "m", x_factor, a_labels)
            t_decl, t_why = _declared_scale(a_units, idx[5:6], "N·m", m_target, a_labels)
            if t_decl is None:
                notes.append(f"plate {k + 1}: free moment taken in {unit_force}{unit_position} ({t_why})")
            else:
                m_scale = t_decl
        if declared is None:
            notes.append(f"plate {k + 1}: {what} taken in "
                         f"{unit_position if ptype == 1 else unit_force + unit_position} ({why})")
        elif declared != 1.0:
            # COP (plate axes, from the centre) = scale * lever + offset
            if ptype == 1:
                fz, lever, offset = ch[:, 2], ch[:, 3:5], np.zeros((len(ch), 2))
            else:
                raw0 = ch @ cal_k.T if ptype == 4 else ch
                fz, fxo = raw0[:, 2], _cross(raw0[:, :3], origin)
                with np.errstate(divide="ignore", invalid="ignore"):
                    lever = np.column_stack([-raw0[:, 4] / fz, raw0[:, 3] / fz])
                    offset = np.column_stack([-fxo[:, 1] / fz, fxo[:, 0] / fz])
            verdict = _decide_scale(declared, lever, offset, fz, half, f_factor or 1.0)
            sel = idx[3:5] if ptype == 1 else idx[3:6]
            names = ", ".join(a_labels[i] if i < len(a_labels) else f"analog {i + 1}" for i in sel)
            units_txt = "/".join(dict.fromkeys(a_units[i] for i in sel))
            rule_unit = unit_position if ptype == 1 else unit_force + unit_position
            if verdict == "position":
                notes.append(f"plate {k + 1}: channels {names} declare ANALOG:UNITS {units_txt!r}, but in "
                             f"{units_txt} the loaded centre of pressure falls off the plate; read in {rule_unit} "
                             "(force x POINT:UNITS, as ezc3d) instead")
            else:
                if verdict == "unknown":
                    notes.append(f"plate {k + 1}: channels {names} read in their ANALOG:UNITS {units_txt!r}, not "
                                 f"{rule_unit} (force x POINT:UNITS), unchecked: too few loaded samples, or none "
                                 "with the centre of pressure on the plate")
                rule = "declared"
                if ptype == 1:
                    c_scale = declared
                else:
                    m_scale = declared
        if ptype in (2, 4) and m_scale == 1.0 and declared == 1.0:
            rule = "declared"
        with np.errstate(divide="ignore", invalid="ignore"):
            if ptype == 1:
                force_raw = ch[:, :3]
                cop_raw = np.column_stack([ch[:, 3] * c_scale if c_scale != 1.0 else ch[:, 3],
                                           ch[:, 4] * c_scale if c_scale != 1.0 else ch[:, 4], np.zeros(len(ch))])
                tz_raw = np.column_stack([np.zeros(len(ch)), np.zeros(len(ch)),
                                          ch[:, 5] * m_scale if m_scale != 1.0 else ch[:, 5]])
                force = force_raw @ rot.T
                cop = cop_raw @ rot.T
                tz = tz_raw @ rot.T
                moment = _cross(force, cop) - tz
                cop = cop + centre
            else:
                if ptype == 3:
                    ox, oy, oz = origin
                    force_raw = np.column_stack([ch[:, 0] + ch[:, 1], ch[:, 2] + ch[:, 3],
                                                 ch[:, 4] + ch[:, 5] + ch[:, 6] + ch[:, 7]])
                    moment_raw = np.column_stack([
                        oy * (ch[:, 4] + ch[:, 5] - ch[:, 6] - ch[:, 7]),
                        ox * (ch[:, 5] + ch[:, 6] - ch[:, 4] - ch[:, 7]),
                        oy * (ch[:, 1] - ch[:, 0]) + ox * (ch[:, 2] - ch[:, 3])])
                    moment_raw = moment_raw + _cross(force_raw, np.array([0.0, 0.0, oz]))
                else:
                    raw = ch @ cal_k.T if ptype == 4 else ch
                    force_raw = raw[:, :3]
                    m_ch = raw[:, 3:] * m_scale if m_scale != 1.0 else raw[:, 3:]  # channels' unit -> F x L
                    moment_raw = m_ch + _cross(force_raw, origin)
                cop_raw = np.column_stack([-moment_raw[:, 1] / force_raw[:, 2], moment_raw[:, 0] / force_raw[:, 2],
                                           np.zeros(len(ch))])
                if ptype == 3:
                    p = np.zeros(12)
                    if poly is not None and poly.size >= 12 * (k + 1):
                        p = np.ravel(np.asarray(poly, dtype=float), order="F")[12 * k:12 * (k + 1)]
                    x, y = cop_raw[:, 0].copy(), cop_raw[:, 1].copy()
                    x_off = (p[0] * y**4 + p[1] * y**2 + p[2]) * x**3 + (p[3] * y**4 + p[4] * y**2 + p[5]) * x
                    y_off = (p[6] * x**4 + p[7] * x**2 + p[8]) * y**3 + (p[9] * x**4 + p[10] * x**2 + p[11]) * y
                    cop_raw[:, 0] -= x_off
                    cop_raw[:, 1] -= y_off
                force = force_raw @ rot.T
                moment = moment_raw @ rot.T
                cop = cop_raw @ rot.T + centre
                tz = (moment_raw - _cross(force_raw, -cop_raw)) @ rot.T
        out.append({"type": ptype, "force": force, "moment": moment, "cop": cop, "free_moment": tz,
                    "corners": corners, "origin": origin, "cal_matrix": cal_k, "channels": idx.tolist(),
                    "unit_force": unit_force, "unit_moment": unit_force + unit_position,
                    "unit_position": unit_position, "moment_scale": m_scale, "cop_scale": c_scale,
                    "unit_rule": rule, "unit_notes": notes})
    return out
