"""Helpers shared by the IMU readers: placements, unit detection, stream building.

Unit detection
    `check_imu_units` looks at the numbers, not at the header. It finds resting segments (windows of at least 0.5 s
    in which the accelerometer vector does not change and the gyroscope is quiet) and compares the resting
    accelerometer norm with gravity in the declared unit (1 for g, 9.81 for m/s², 1000 for mg). It compares the
    largest angular rates with what human movement can produce (above 20 rad/s is impossible; below 0.25 rad/s
    during clear movement means the values are not deg/s), and the magnetometer norm with the Earth's field
    (25-65 µT, allowing 5-200 µT indoors). `apply_unit_check` then raises, warns or stays silent according to the
    reader's ``check_units`` policy. The result is stored in each stream's ``meta["unit_check"]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from fusionlab.consts import IMU_CHANNELS, IMU_UNITS, PLACEMENTS, XYZ
from fusionlab.exceptions import FileFormatError, FusionlabWarning, UnitError, ValidationError
from fusionlab.model import Stream
from fusionlab.units import GRAVITY_MS2, to_si

__all__ = [
    "ImuUnitError",
    "Policy",
    "apply_unit_check",
    "build_imu_stream",
    "check_imu_units",
    "check_placement",
    "check_policy",
]

Policy = Literal["raise", "warn", "ignore"]
POLICIES: tuple[str, ...] = ("raise", "warn", "ignore")

REST_WINDOW_S = 0.5
"""Length of the windows in which rest is looked for (s)."""
_REST_ACC_REL_STD = 0.02  # per-axis SD of the accelerometer within a window, relative to its mean norm
_MAX_HUMAN_GYR_RAD_S = 20.0  # no body segment turns faster than this (foot swing peaks at ~10-12 rad/s)
_MIN_MOVING_GYR_RAD_S = 0.25  # with clear movement, the 99.5th percentile |gyr| is well above this
_MOVING_ACC_REL_STD = 0.1  # window acc SD above 10 % of gravity = clear movement
_MAG_PLAUSIBLE_T = (5e-6, 2e-4)  # Earth's field 25-65 µT, disturbed indoors
_ACC_CANDIDATES: tuple[tuple[str, float], ...] = (("g", 1.0), ("m/s^2", GRAVITY_MS2), ("mg", 1000.0))
_GYR_CANDIDATES: tuple[tuple[str, float], ...] = (("rad/s", 1.0), ("deg/s", math.pi / 180.0))
_MAG_CANDIDATES: tuple[tuple[str, float], ...] = (("T", 1.0), ("mT", 1e-3), ("uT", 1e-6), ("nT", 1e-9),
                                                  ("G", 1e-4), ("mG", 1e-7))


class ImuUnitError(FileFormatError, UnitError):
    """IMU data do not look like the unit the file declares (a `FileFormatError` and a `UnitError`)."""


def check_policy(name: str, value: str) -> str:
    """Validate a raise/warn/ignore option."""
    if value not in POLICIES:
        msg = f"Invalid value for {name!r}. Allowed values are {', '.join(POLICIES)}, but got {value!r} instead."
        raise ValidationError(msg)
    return value


def check_placement(placement: str | None, *, path: Path | None = None, required: bool = True) -> str:
    """Return a valid placement name, or raise `ValidationError` listing `PLACEMENTS`."""
    allowed = ", ".join(PLACEMENTS)
    where = f" ({path.name})" if path is not None else ""
    if placement is None:
        if not required:
            return "unknown"
        msg = (f"An IMU placement is required{where}: pass placement=... (or write a '# placement: ...' line in "
               f"the file). Allowed values are {allowed}; use 'unknown' if it is not known.")
        raise ValidationError(msg)
    value = str(placement).strip().lower()
    if value not in PLACEMENTS:
        msg = f"Invalid value for 'placement'{where}. Allowed values are {allowed}, but got {placement!r} instead."
        raise ValidationError(msg)
    return value


# ================================================================================================ unit detection
def _windows(x: NDArray[np.float64], w: int) -> NDArray[np.float64]:
    """``(n_windows, w, k)`` windows of ``w`` samples with 50 % overlap."""
    view = np.lib.stride_tricks.sliding_window_view(x, w, axis=0)  # (n - w + 1, k, w)
    return np.moveaxis(view[:: max(1, w // 2)], 2, 1)


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def check_imu_units(acc: NDArray[np.floating] | None, gyr: NDArray[np.floating] | None, rate_hz: float | None,
                    declared: Mapping[str, str], *, mag: NDArray[np.floating] | None = None) -> dict[str, Any]:
    """Check that IMU values look like the units they are declared in.

    Parameters
    ----------
    acc
        ``(n, 3)`` accelerometer values **as written in the file**, in ``declared["acc"]``, sensor frame; or None.
    gyr
        ``(n, 3)`` gyroscope values as written, in ``declared["gyr"]``; or None.
    rate_hz
        Sampling rate (Hz); None (irregular) uses 100 Hz to size the windows.
    declared
        The unit of each channel as declared by the file or the format (``{"acc": "g", "gyr": "deg/s"}``).
    mag
        ``(n, 3)`` magnetometer values as written, in ``declared["mag"]``; or None.

    Returns
    -------
    dict
        JSON-serialisable: ``status`` (``"ok"``, ``"mismatch"``, ``"inconclusive"``), ``rest_windows`` (number of
        resting windows of ``window_s``), ``channels`` (per channel: ``declared``, ``status`` (``"ok"``,
        ``"mismatch"``, ``"inconclusive"``, ``"not_checked"``), ``looks_like`` (the unit the values fit, or None),
        ``evidence`` (a sentence with the numbers)).

    Notes
    -----
    Rules (values in the declared unit ``u``; ``f`` converts ``u`` to SI):

    * **Rest**: windows of `REST_WINDOW_S` with every accelerometer axis SD below 2 % of the window's mean
      ``|acc|`` (scale-free) and mean ``|gyr|`` below ``max(0.1 rad/s in u, 10 % of the 95th percentile |gyr|,
      2 x the 5th percentile of the windows)``.
    * **Accelerometer**: the median resting ``|acc|`` must be within 0.8-1.25 x gravity in ``u`` (1 g, 9.81 m/s²,
      1000 mg). Otherwise the unit whose gravity fits is reported (``looks_like``); without rest the check cannot
      be made (``inconclusive``).
    * **Gyroscope**: the 99.5th percentile of ``|gyr| f`` above 20 rad/s is impossible for human movement (values in
      deg/s declared as rad/s); below 0.25 rad/s while the accelerometer shows clear movement (95th percentile window
      SD above 10 % of gravity) means rad/s declared as deg/s.
    * **Magnetometer**: the median ``|mag| f`` must be 5-200 µT.
    """
    w = max(2, round(REST_WINDOW_S * (rate_hz or 100.0)))
    result: dict[str, Any] = {"window_s": round(w / (rate_hz or 100.0), 6), "rest_windows": 0, "channels": {}}
    channels: dict[str, dict[str, Any]] = result["channels"]

    acc_a = None if acc is None else np.asarray(acc, dtype=np.float64)
    gyr_a = None if gyr is None else np.asarray(gyr, dtype=np.float64)
    rest = np.zeros(0, dtype=bool)
    acc_norm_w = acc_std_w = acc_norm_sd_w = None
    if acc_a is not None and acc_a.shape[0] >= w:
        aw = _windows(acc_a, w)
        ok = np.all(np.isfinite(aw), axis=(1, 2))
        norms = np.linalg.norm(np.nan_to_num(aw), axis=2)
        acc_norm_w = np.where(ok, norms.mean(axis=1), np.nan)
        acc_norm_sd_w = np.where(ok, norms.std(axis=1), np.nan)
        acc_std_w = np.where(ok, np.nan_to_num(aw).std(axis=1).max(axis=1), np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            rest = ok & (acc_std_w < _REST_ACC_REL_STD * acc_norm_w) & (acc_norm_w > 0)
        if gyr_a is not None and gyr_a.shape[0] >= w:
            gw = _windows(gyr_a[: acc_a.shape[0]], w)
            gok = np.all(np.isfinite(gw), axis=(1, 2))
            g_mean = np.where(gok, np.linalg.norm(np.nan_to_num(gw), axis=2).mean(axis=1), np.nan)
            finite = np.isfinite(g_mean)
            if finite.any():
                all_norm = np.linalg.norm(gyr_a[np.all(np.isfinite(gyr_a), axis=1)], axis=1)
                p95 = float(np.percentile(all_norm, 95)) if all_norm.size else 0.0
                floor = _gyr_floor(declared.get("gyr", "rad/s"))
                threshold = max(floor, 0.1 * p95, 2.0 * float(np.percentile(g_mean[finite], 5)))
                n = min(rest.size, g_mean.size)
                rest = rest[:n] & gok[:n] & (g_mean[:n] <= threshold)
                acc_norm_w, acc_std_w, acc_norm_sd_w = acc_norm_w[:n], acc_std_w[:n], acc_norm_sd_w[:n]
    n_rest = int(np.count_nonzero(rest))
    result["rest_windows"] = n_rest

    # ---- accelerometer
    if acc_a is not None:
        channels["acc"] = _check_acc(declared.get("acc", "m/s^2"), acc_norm_w, acc_norm_sd_w, rest,
                                     result["window_s"])
    # ---- gyroscope
    if gyr_a is not None:
        gravity_proxy = None
        if acc_norm_w is not None and np.isfinite(acc_norm_w).any():
            gravity_proxy = float(np.nanmedian(acc_norm_w[rest])) if n_rest else float(np.nanmedian(acc_norm_w))
        moving = False
        if acc_std_w is not None and gravity_proxy and np.isfinite(acc_std_w).any():
            moving = float(np.nanpercentile(acc_std_w, 95)) > _MOVING_ACC_REL_STD * gravity_proxy
        channels["gyr"] = _check_gyr(declared.get("gyr", "rad/s"), gyr_a, moving=moving)
    # ---- magnetometer
    if mag is not None:
        channels["mag"] = _check_mag(declared.get("mag", "T"), np.asarray(mag, dtype=np.float64))

    states = [c["status"] for c in channels.values()]
    if "mismatch" in states:
        result["status"] = "mismatch"
    elif states and all(s == "ok" for s in states):
        result["status"] = "ok"
    else:
        result["status"] = "inconclusive"
    return result


def _factor(unit: str) -> float | None:
    try:
        return to_si(unit).factor
    except UnitError:
        return None


def _gyr_floor(unit: str) -> float:
    f = _factor(unit)
    return 0.1 / f if f else 0.1


def _check_acc(unit: str, norm_w: NDArray[np.float64] | None, norm_sd_w: NDArray[np.float64] | None,
               rest: NDArray[np.bool_], window_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"declared": unit, "status": "inconclusive", "looks_like": None}
    f = _factor(unit)
    if f is None:
        out.update(status="not_checked", evidence=f"unit {unit!r} is not a known acceleration unit")
        return out
    n_rest = int(np.count_nonzero(rest))
    if norm_w is None or n_rest < 1:
        out["evidence"] = (f"the check could not be made: no resting window of {window_s:g} s found (the sensor "
                           "must lie still for about 0.5 s somewhere in the recording)")
        return out
    vals = norm_w[rest]
    med = float(np.median(vals))
    # spread: between windows (robust SD) or within them, whichever is larger
    sd = max(float(1.4826 * np.median(np.abs(vals - med))), float(np.median(norm_sd_w[rest])))
    expected = GRAVITY_MS2 / f
    looks = [name for name, g in _ACC_CANDIDATES if 0.8 <= med / g <= 1.25]
    out["looks_like"] = looks[0] if looks else None
    out["resting_norm"] = med
    out["resting_norm_sd"] = sd
    text = f"resting |acc| = {med:.4g} ± {sd:.2g} in {n_rest} window(s) of {window_s:.2g} s (50 % overlap)"
    if 0.8 <= med / expected <= 1.25:
        out.update(status="ok", evidence=f"{text}: gravity in {unit} ({_fmt(expected)}) as declared")
    elif looks:
        out.update(status="mismatch", evidence=f"{text}: looks like {looks[0]}, but the file says {unit}")
    else:
        out.update(evidence=f"{text}: not gravity in any usual unit (1 g, 9.81 m/s^2, 1000 mg); gravity may have "
                            "been removed (free acceleration) or the values are scaled")
    return out


def _check_gyr(unit: str, gyr: NDArray[np.float64], *, moving: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"declared": unit, "status": "inconclusive", "looks_like": None}
    f = _factor(unit)
    finite = gyr[np.all(np.isfinite(gyr), axis=1)]
    if f is None or finite.size == 0:
        out.update(status="not_checked", evidence=f"unit {unit!r} is not a known angular-rate unit"
                   if f is None else "no finite gyroscope sample")
        return out
    p = float(np.percentile(np.linalg.norm(finite, axis=1), 99.5))
    out["p99_5_norm"] = p
    rad = p * f
    text = f"99.5th percentile |gyr| = {_fmt(p)} {unit} ({_fmt(rad)} rad/s)"
    if rad > _MAX_HUMAN_GYR_RAD_S:
        looks = [name for name, g in _GYR_CANDIDATES if p * g <= _MAX_HUMAN_GYR_RAD_S and g != f]
        out["looks_like"] = looks[0] if looks else None
        out.update(status="mismatch", evidence=f"{text}: above {_MAX_HUMAN_GYR_RAD_S:g} rad/s, which human movement "
                                               f"does not reach" + (f"; looks like {looks[0]}, but the file says "
                                                                     f"{unit}" if looks else ""))
    elif moving and rad < _MIN_MOVING_GYR_RAD_S:
        looks = [name for name, g in _GYR_CANDIDATES if p * g >= _MIN_MOVING_GYR_RAD_S and g != f]
        out["looks_like"] = looks[0] if looks else None
        out.update(status="mismatch", evidence=f"{text} while the accelerometer shows clear movement: too slow for a "
                                               f"moving body segment" + (f"; looks like {looks[0]}, but the file "
                                                                         f"says {unit}" if looks else ""))
    elif moving:
        out.update(status="ok", evidence=f"{text}: plausible for human movement in {unit}")
    else:
        out.update(status="ok" if rad > _MIN_MOVING_GYR_RAD_S else "inconclusive",
                   evidence=f"{text}: plausible" + ("" if rad > _MIN_MOVING_GYR_RAD_S else
                                                     " but the recording shows little movement, so a rad/s vs deg/s "
                                                     "mix-up cannot be ruled out"))
    return out


def _check_mag(unit: str, mag: NDArray[np.float64]) -> dict[str, Any]:
    out: dict[str, Any] = {"declared": unit, "status": "inconclusive", "looks_like": None}
    f = _factor(unit)
    finite = mag[np.all(np.isfinite(mag), axis=1)]
    if f is None or finite.size == 0:
        out.update(status="not_checked", evidence=f"unit {unit!r} cannot be converted to tesla (normalised or "
                                                  "arbitrary units)" if f is None else "no finite sample")
        return out
    med = float(np.median(np.linalg.norm(finite, axis=1)))
    out["median_norm"] = med
    lo, hi = _MAG_PLAUSIBLE_T
    text = f"median |mag| = {_fmt(med)} {unit} ({_fmt(med * f * 1e6)} µT)"
    if lo <= med * f <= hi:
        out.update(status="ok", evidence=f"{text}: the Earth's field, as declared")
        return out
    looks = [name for name, g in _MAG_CANDIDATES if lo <= med * g <= hi]
    out["looks_like"] = looks[0] if looks else None
    out.update(status="mismatch" if looks else "inconclusive",
               evidence=f"{text}: not the Earth's field (25-65 µT)" + (f"; looks like {looks[0]}, but the file "
                                                                       f"says {unit}" if looks else ""))
    return out


def apply_unit_check(check: Mapping[str, Any], policy: str, path: Path, *, where: str = "",
                     fix: str = "") -> None:
    """Act on a `check_imu_units` result: raise `ImuUnitError`, warn, or do nothing (``policy``).

    ``where`` names the stream or trial, ``fix`` says how to correct the unit in this format (one sentence, used both
    when raising and when warning).
    """
    if policy == "ignore" or check.get("status") != "mismatch":
        return
    problems = [f"channel {name!r}: {c['evidence']}" for name, c in check["channels"].items()
                if c.get("status") == "mismatch"]
    loc = f" ({where})" if where else ""
    text = "; ".join(problems)
    if policy == "raise":
        msg = (f"the IMU values{loc} do not look like their declared units: {text}. Fix: "
               f"{(fix or 'declare the unit the values are really in').rstrip('. ')}. Or pass check_units='warn' to "
               f"keep the declared units anyway.")
        raise ImuUnitError(path, msg)
    warnings.warn(f"{path.name}{loc}: the IMU values do not look like their declared units: {text}. The declared "
                  f"units were kept. {fix} Pass check_units='ignore' to silence this warning.",
                  FusionlabWarning, stacklevel=3)


# ================================================================================================ stream building
def build_imu_stream(name: str, channels: Mapping[str, NDArray[np.floating]], orig_units: Mapping[str, str], *,
                     placement: str, clock: str, meta: Mapping[str, Any], rate_hz: float | None = None,
                     start_s: float = 0.0, time_s: NDArray[np.float64] | None = None,
                     storage_dtype: str = "float64", units: Mapping[str, str] | None = None) -> Stream:
    """An ``imu`` stream ``(n, k, 3)`` with channels in `IMU_CHANNELS` order, in SI units.

    ``channels`` maps ``"acc"``/``"gyr"``/``"mag"`` to ``(n, 3)`` arrays already in SI (``units`` overrides the SI
    unit of a channel that cannot be converted, e.g. Xsens magnetometers in normalised units).
    """
    names = tuple(c for c in IMU_CHANNELS if c in channels)
    data = np.stack([np.asarray(channels[c], dtype=np.float64) for c in names], axis=1)
    si = {**IMU_UNITS, **(units or {})}
    return Stream(name=name, modality="imu", data=data, channels=names, units=tuple(si[c] for c in names),
                  orig_units=tuple(orig_units.get(c, si[c]) for c in names), components=XYZ,
                  frame=f"sensor:{placement}", rate_hz=rate_hz if time_s is None else None, start_s=start_s,
                  time_s=time_s, clock=clock, meta=dict(meta), storage_dtype=storage_dtype)

