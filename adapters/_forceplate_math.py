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
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["PlatformError", "compute_platforms"]

SUPPORTED_TYPES = (1, 2, 3, 4)


class PlatformError(ValueError):
    """FORCE_PLATFORM parameters are missing or inconsistent for a plate."""


def _value(params: dict[str, Any], group: str, name: str) -> NDArray[Any] | None:
    try:
        return np.asarray(params[group][name]["value"])
    except KeyError:
        return None


def _cross(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.cross(a, b)


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
        ``unit_force``, ``unit_moment``, ``unit_position``.

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
        with np.errstate(divide="ignore", invalid="ignore"):
            if ptype == 1:
                force_raw = ch[:, :3]
                cop_raw = np.column_stack([ch[:, 3], ch[:, 4], np.zeros(len(ch))])
                tz_raw = np.column_stack([np.zeros(len(ch)), np.zeros(len(ch)), ch[:, 5]])
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
                    moment_raw = raw[:, 3:] + _cross(force_raw, origin)
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
                    "unit_position": unit_position})
    return out
