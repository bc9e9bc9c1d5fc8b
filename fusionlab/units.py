"""Units: everything inside a session is SI; the unit a source used is kept beside it.

`to_si(unit)` returns the factor that turns a value in ``unit`` into SI and the SI unit's name. Unit strings
are matched after normalisation (case of prefixes kept, spaces, dots and middle dots removed), so "N.mm", "Nmm"
and "N·mm" are the same unit.

SI names used in sessions: ``m``, ``s``, ``kg``, ``N``, ``N·m``, ``rad``, ``rad/s``, ``m/s^2``, ``W``, ``V``,
``T`` (magnetic flux density), ``Pa``, ``Hz``, ``1`` (dimensionless), ``N/kg``, ``N·m/kg``, ``W/kg``.
"""

from __future__ import annotations

import math
import re
from typing import NamedTuple

from fusionlab.exceptions import UnitError

__all__ = ["GRAVITY_MS2", "SIConversion", "is_known_unit", "normalise_unit", "to_si"]

GRAVITY_MS2 = 9.80665
"""Standard gravity (m/s²), used to convert accelerometer values given in g."""


class SIConversion(NamedTuple):
    """How to turn a value in some unit into SI: ``si_value = value * factor``."""

    factor: float
    si_unit: str


_DEG = math.pi / 180.0

# normalised unit -> (factor, SI unit)
_TABLE: dict[str, SIConversion] = {
    # length
    "m": SIConversion(1.0, "m"),
    "cm": SIConversion(1e-2, "m"),
    "mm": SIConversion(1e-3, "m"),
    "um": SIConversion(1e-6, "m"),
    "in": SIConversion(0.0254, "m"),
    "ft": SIConversion(0.3048, "m"),
    # time
    "s": SIConversion(1.0, "s"),
    "ms": SIConversion(1e-3, "s"),
    "us": SIConversion(1e-6, "s"),
    # mass
    "kg": SIConversion(1.0, "kg"),
    "g_mass": SIConversion(1e-3, "kg"),
    # force
    "N": SIConversion(1.0, "N"),
    "kN": SIConversion(1e3, "N"),
    "lbf": SIConversion(4.4482216152605, "N"),
    "N/kg": SIConversion(1.0, "N/kg"),
    # moment
    "Nm": SIConversion(1.0, "N·m"),
    "Nmm": SIConversion(1e-3, "N·m"),
    "kNm": SIConversion(1e3, "N·m"),
    "Nm/kg": SIConversion(1.0, "N·m/kg"),
    "Nmm/kg": SIConversion(1e-3, "N·m/kg"),
    # power
    "W": SIConversion(1.0, "W"),
    "W/kg": SIConversion(1.0, "W/kg"),
    # angle and angular velocity
    "rad": SIConversion(1.0, "rad"),
    "deg": SIConversion(_DEG, "rad"),
    "rad/s": SIConversion(1.0, "rad/s"),
    "deg/s": SIConversion(_DEG, "rad/s"),
    # acceleration
    "m/s^2": SIConversion(1.0, "m/s^2"),
    "g": SIConversion(GRAVITY_MS2, "m/s^2"),
    "mg": SIConversion(GRAVITY_MS2 * 1e-3, "m/s^2"),
    # velocity
    "m/s": SIConversion(1.0, "m/s"),
    "mm/s": SIConversion(1e-3, "m/s"),
    # electric
    "V": SIConversion(1.0, "V"),
    "mV": SIConversion(1e-3, "V"),
    "uV": SIConversion(1e-6, "V"),
    # magnetic flux density
    "T": SIConversion(1.0, "T"),
    "mT": SIConversion(1e-3, "T"),
    "uT": SIConversion(1e-6, "T"),
    "G": SIConversion(1e-4, "T"),
    "mG": SIConversion(1e-7, "T"),
    # pressure
    "Pa": SIConversion(1.0, "Pa"),
    "hPa": SIConversion(100.0, "Pa"),
    "kPa": SIConversion(1e3, "Pa"),
    "mbar": SIConversion(100.0, "Pa"),
    # frequency, dimensionless
    "Hz": SIConversion(1.0, "Hz"),
    "1": SIConversion(1.0, "1"),
    "%": SIConversion(0.01, "1"),
}

_ALIASES: dict[str, str] = {
    "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "sec": "s", "second": "s", "seconds": "s", "msec": "ms",
    "newton": "N", "newtons": "N",
    "degree": "deg", "degrees": "deg", "°": "deg",
    "radian": "rad", "radians": "rad",
    "deg/sec": "deg/s", "°/s": "deg/s", "dps": "deg/s", "rad/sec": "rad/s", "rps": "rad/s",
    "m/s2": "m/s^2", "m/s²": "m/s^2", "m/ss": "m/s^2", "ms^-2": "m/s^2", "ms-2": "m/s^2",
    "gauss": "G", "μT": "uT", "µT": "uT", "μV": "uV", "µV": "uV", "μm": "um", "µm": "um", "µs": "us", "μs": "us",
    "volt": "V", "volts": "V", "watt": "W", "watts": "W",
    "nm": "Nm",  # "nm" in gait software means newton-metre; nanometres never appear in these files
    "nmm": "Nmm",
    "nt": "N",  # AMASS/ADTech era C3D files write newtons as "NT" and newton-millimetres as "NTMM"
    "ntmm": "Nmm", "ntm": "Nm",
    "d.u.": "1", "du": "1", "counts": "1", "count": "1",  # raw ADC counts ("digital units")
    "n-m": "Nm", "n-mm": "Nmm", "newton-meter": "Nm", "newton-metre": "Nm",
    "": "1", "-": "1", "none": "1", "a.u.": "1", "au": "1",
}


def normalise_unit(unit: str) -> str:
    """Return the table key for ``unit`` (spaces, dots and middle dots removed, aliases resolved).

    Parameters
    ----------
    unit
        A unit as written in a source file, e.g. ``"N.mm"``, ``"deg/s"``, ``"m/s^2"``.

    Returns
    -------
    str
        The normalised key; it may not be a known unit (see `is_known_unit`).
    """
    text = unit.strip()
    text = re.sub(r"[\s·⋅]", "", text)
    # "N.mm" / "N*m" -> "Nmm" / "Nm", but keep decimal points such as "a.u."
    text = re.sub(r"(?<=[A-Za-z])[.*](?=[A-Za-z])", "", text)
    if len(text) > 1:
        text = text.rstrip(".")
    if text in _TABLE:
        return text
    return _ALIASES.get(text, _ALIASES.get(text.lower(), text))


def is_known_unit(unit: str) -> bool:
    """Tell whether ``unit`` can be converted to SI."""
    return normalise_unit(unit) in _TABLE


def to_si(unit: str) -> SIConversion:
    """Return the factor and SI unit for ``unit``.

    Parameters
    ----------
    unit
        A unit as written in a source file.

    Returns
    -------
    SIConversion
        ``(factor, si_unit)`` such that ``si_value = value * factor``.

    Raises
    ------
    UnitError
        If the unit is not in the table. Callers that may meet arbitrary units (analog channels) catch it and
        keep the values unscaled, recording the original unit.
    """
    key = normalise_unit(unit)
    try:
        return _TABLE[key]
    except KeyError:
        known = ", ".join(sorted(_TABLE))
        msg = f"Unknown unit {unit!r}: cannot convert it to SI. Known units are {known}."
        raise UnitError(msg) from None
