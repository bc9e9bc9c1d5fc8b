"""Gait events and stride parameters from foot-worn IMUs: swing-peak segmentation and ZUPT strapdown integration.

See `GaitFootImu` and docs/gait-imu.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Self

import numpy as np
from numpy.typing import NDArray
from scipy.signal import butter, filtfilt, find_peaks

from fusionlab.gait.base import BaseGaitDetector, GaitResult, Stride, Value
from fusionlab.model import Event
from fusionlab.units import GRAVITY_MS2

if TYPE_CHECKING:
    from fusionlab.model import Stream
    from fusionlab.persist import SessionReader

__all__ = ["GaitFootImu", "finite_segments", "gap_intervals", "imu_usable", "saturation_mask"]

# Smallest full scale of common IMUs (+-250 deg/s, +-1.5 g): a clipping plateau below it is not saturation.
_MIN_GYR_RANGE_RAD_S = 3.5
_MIN_ACC_RANGE_M_PER_S2 = 14.7

# Timing error of the events at high rates, measured on gaitmap's example walk against motion capture (204.8 Hz,
# 118 foot strikes, 57 foot-offs; docs/gait-imu.md): robust SD (1.4826 * MAD) of the detector-minus-mocap
# difference. The mocap events are themselves quantised to 10 ms (100 Hz), so these are upper bounds.
_SD_IC_S = 0.006
_SD_TC_S = 0.006
# Stride-length SD floor (m): robust SD of the ZUPT-minus-mocap error on the same walk.
_SD_LENGTH_M = 0.03


def finite_segments(ok: NDArray[np.bool_], min_len: int) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` runs of True in ``ok`` that are at least ``min_len`` samples long."""
    if ok.size == 0:
        return []
    d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= min_len]


def saturation_mask(x: NDArray[np.float64], full_scale: float | None, min_run: int = 3,
                    min_abs: float = 0.0) -> NDArray[np.bool_]:
    """Samples of ``(n, k)`` data that are clipped.

    With ``full_scale`` (the sensor range, same unit as ``x``): ``|x| >= 0.99 * full_scale`` on any axis. Without
    it: runs of at least ``min_run`` identical values that equal the channel's extreme (the plateau a clipping
    sensor leaves), on any axis, when that extreme is at least ``min_abs`` in magnitude (a quantised signal at
    rest repeats its largest value too; no real sensor has a range below ``min_abs``).
    """
    n = x.shape[0]
    bad = np.zeros(n, dtype=bool)
    if n == 0:
        return bad
    if full_scale is not None:
        with np.errstate(invalid="ignore"):
            return np.any(np.abs(x) >= 0.99 * full_scale, axis=1)
    for k in range(x.shape[1]):
        col = x[:, k]
        fin = np.isfinite(col)
        if not fin.any():
            continue
        for extreme in (np.nanmax(col), np.nanmin(col)):
            if extreme == 0 or abs(extreme) < min_abs:
                continue
            at = fin & (col == extreme)
            for a, b in finite_segments(at, min_run):
                bad[a:b] = True
    return bad


def imu_usable(acc: NDArray[np.float64], gyr: NDArray[np.float64], gyr_range_rad_s: float | None,
               acc_range_m_per_s2: float | None) -> tuple[NDArray[np.bool_], int, int]:
    """Usable samples (finite, not saturated) of ``(n, 3)`` acc (m/s²) and gyr (rad/s); and the saturated and
    missing sample counts."""
    sat = (saturation_mask(gyr, gyr_range_rad_s, min_abs=_MIN_GYR_RANGE_RAD_S)
           | saturation_mask(acc, acc_range_m_per_s2, min_abs=_MIN_ACC_RANGE_M_PER_S2))
    finite = np.all(np.isfinite(acc), axis=1) & np.all(np.isfinite(gyr), axis=1)
    return finite & ~sat, int(sat.sum()), int((~finite).sum())


def gap_intervals(t: NDArray[np.float64], ok: NDArray[np.bool_]) -> list[list[float]]:
    """``[start_s, end_s]`` of every run of not-``ok`` samples, from the last good sample before it to the first
    good one after it (device clock), for ``GaitResult.meta["gaps_s"]``."""
    n = ok.size
    out = []
    for a, b in finite_segments(~ok, 1):
        out.append([float(t[max(a - 1, 0)]), float(t[min(b, n - 1)])])
    return out


def _lowpass(x: NDArray[np.float64], cutoff_hz: float, rate_hz: float, order: int = 2) -> NDArray[np.float64]:
    b, a = butter(order, min(cutoff_hz / (rate_hz / 2.0), 0.99))
    pad = min(3 * max(len(a), len(b)), x.shape[0] - 1)
    return filtfilt(b, a, x, axis=0, padlen=pad)


def _lobe_duration_s(w: NDArray[np.float64], level: float, rate_hz: float) -> float:
    """Median duration of the lobes of ``w`` above ``level`` whose peak exceeds ``2 * level`` (s)."""
    runs = finite_segments(w > level, 2)
    d = [(b - a) / rate_hz for a, b in runs if np.max(w[a:b]) > 2 * level]
    return float(np.median(d)) if d else 0.0


def _pitch_excursions(w: NDArray[np.float64], gyr_norm: NDArray[np.float64], segments: list[tuple[int, int]],
                      rate_hz: float) -> tuple[float, float]:
    """Largest positive and negative excursions (rad) of the integrated sagittal rate ``w`` from its stance level.

    Per usable segment, ``theta = cumsum(w) / rate``; the stance level is ``theta`` interpolated between the
    quietest samples (0.1-s windowed gyroscope norm at or below its 20th percentile), which also removes the
    integration drift. Returns the 99th percentile of ``theta - level`` and minus its 1st percentile, pooled.
    """
    rel: list[NDArray[np.float64]] = []
    k = max(1, round(0.1 * rate_hz)) | 1
    for a, b in segments:
        theta = np.cumsum(w[a:b]) / rate_hz
        quiet_norm = np.convolve(gyr_norm[a:b], np.ones(k) / k, mode="same")
        quiet = np.flatnonzero(quiet_norm <= np.percentile(quiet_norm, 20))
        rel.append(theta - np.interp(np.arange(b - a), quiet, theta[quiet]))
    if not rel:
        return 0.0, 0.0
    r = np.concatenate(rel)
    return float(np.percentile(r, 99)), float(-np.percentile(r, 1))


def _quat_mul(p: NDArray[np.float64], q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Hamilton product of scalar-last quaternions ``[x, y, z, w]``."""
    px, py, pz, pw = p
    qx, qy, qz, qw = q
    return np.array([pw * qx + px * qw + py * qz - pz * qy,
                     pw * qy - px * qz + py * qw + pz * qx,
                     pw * qz + px * qy - py * qx + pz * qw,
                     pw * qw - px * qx - py * qy - pz * qz])


def _quat_to_matrix(q: NDArray[np.float64]) -> NDArray[np.float64]:
    x, y, z, w = q
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def _gravity_alignment(acc_mean: NDArray[np.float64]) -> NDArray[np.float64]:
    """Scalar-last quaternion rotating the sensor frame so that ``acc_mean`` (specific force at rest) points up."""
    a = acc_mean / np.linalg.norm(acc_mean)
    up = np.array([0.0, 0.0, 1.0])
    axis = np.cross(a, up)
    s = np.linalg.norm(axis)
    c = float(np.dot(a, up))
    if s < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0]) if c > 0 else np.array([1.0, 0.0, 0.0, 0.0])
    angle = math.atan2(s, c)
    return np.concatenate([axis / s * math.sin(angle / 2), [math.cos(angle / 2)]])


def zupt_stride(acc: NDArray[np.float64], gyr: NDArray[np.float64], rate_hz: float,
                rest_half_idx: int) -> tuple[NDArray[np.float64], float]:
    """Strapdown integration of one stride between two rests, with a linear zero-velocity de-drift.

    Parameters
    ----------
    acc, gyr
        ``(n, 3)`` specific force (m/s², sensor frame, includes gravity) and angular rate (rad/s, sensor frame),
        from the sample of the first rest to the sample of the second rest (inclusive); no NaN.
    rate_hz
        Sampling rate (Hz).
    rest_half_idx
        Half-width (samples) of the window at the first rest whose mean acceleration gives the initial attitude.

    Returns
    -------
    position, residual_speed
        ``(n, 3)`` position (m) in a gravity-aligned world frame (z up, heading of the sensor at the first rest),
        and the speed (m/s) the plain integration had at the second rest before de-drifting.
    """
    n = acc.shape[0]
    dt = 1.0 / rate_hz
    q = _gravity_alignment(np.mean(acc[:max(1, rest_half_idx)], axis=0))
    acc_world = np.empty((n, 3))
    for i in range(n):
        acc_world[i] = _quat_to_matrix(q) @ acc[i]
        if i + 1 < n:
            # q_{k+1} = q_k * exp(omega * dt / 2), omega = mean rate over the interval (body frame)
            omega = 0.5 * (gyr[i] + gyr[i + 1])
            angle = float(np.linalg.norm(omega)) * dt
            if angle > 0:
                axis = omega / np.linalg.norm(omega)
                dq = np.concatenate([axis * math.sin(angle / 2), [math.cos(angle / 2)]])
                q = _quat_mul(q, dq)
                q /= np.linalg.norm(q)
    acc_world[:, 2] -= GRAVITY_MS2
    # v_k = v_{k-1} + (a_{k-1} + a_k) / 2 * dt (trapezoid), v_0 = 0
    vel = np.zeros((n, 3))
    vel[1:] = np.cumsum(0.5 * (acc_world[1:] + acc_world[:-1]) * dt, axis=0)
    residual = float(np.linalg.norm(vel[-1]))
    # zero-velocity update at both rests: remove the drift linearly in time
    vel -= np.outer(np.arange(n) / max(n - 1, 1), vel[-1])
    pos = np.zeros((n, 3))
    pos[1:] = np.cumsum(0.5 * (vel[1:] + vel[:-1]) * dt, axis=0)
    return pos, residual


class GaitFootImu(BaseGaitDetector):
    """Foot strikes, foot-offs and stride parameters from one IMU on each foot.

    1. The sagittal axis is the gyroscope axis with the largest variance; its sign is chosen so that the swing
       lobe is positive: integrated from the stance level, the sagittal rate reaches its largest excursion at
       toe-off (the foot pitched toes-down by the push-off rotation, ~60-70 deg, against ~20 deg toes-up at heel
       contact), so the swing rotation has the sign opposite to that largest excursion.
    2. Swing peaks: maxima of the low-passed sagittal rate above ``swing_threshold_rad_s``.
    3. Foot-off: the minimum of the (unfiltered, swing-positive) sagittal rate in the 0.4 s before a swing peak
       (the push-off rotation peak); foot strike: the zero crossing after the swing peak, interpolated between
       samples (the end of the forward swing rotation, which coincides with heel contact; Rampp et al. 2015 use
       the minimum after it, which lies ~60 ms after the motion-capture contact on gaitmap's data).
    4. Strides run from one foot strike to the next of the same foot (0.5-2.5 s, no gap between). Stance % =
       (next foot-off - foot strike) / stride time.
    5. Stride length by strapdown integration between the mid-stance rests (lowest gyroscope norm between a foot
       strike and the next foot-off, ``|gyr| < rest_gyr_rad_s``): initial attitude from gravity, gyroscope
       integration, gravity removed, velocity de-drifted linearly to zero at both rests, horizontal displacement.

    Parameters
    ----------
    placements
        Placements (``Stream.meta["placement"]``) of the streams to analyse; the side is the placement's prefix.
    swing_threshold_rad_s
        Minimum swing peak of the low-passed sagittal rate (rad/s); below it the foot is not walking.
    lowpass_hz
        Cut-off of the low-pass used to find swing peaks (Hz).
    rest_gyr_rad_s
        Largest gyroscope norm (rad/s, averaged over ``rest_window_s``) accepted as a mid-stance rest for the
        zero-velocity update; strides without such rests get no length.
    rest_window_s
        Window over which the rest is averaged (s).
    gyr_range_rad_s, acc_range_m_per_s2
        Sensor full scale (rad/s, m/s²) for saturation detection; None detects clipping plateaus instead.

    Attributes
    ----------
    results_
        One `GaitResult` per foot stream (``meta``: axis, sign, swing peak count, saturated and missing sample
        counts, ``gaps_s``: the unusable stretches ``[start_s, end_s]`` on the device clock).

    Notes
    -----
    Event ``sd_s``: ``sqrt(sd_method**2 + 1 / (12 * rate**2))`` with sd_method measured on gaitmap's example walk
    (6 ms for both), doubled when the event lies within 0.2 s of a gap, of saturated samples or
    of the end of a usable segment, or when the swing peak is below twice the threshold. Stride-length SD:
    ``sqrt(0.03**2 + (0.25 * v_res * T / 2)**2)`` (m), the validation floor plus a quarter of the drift the
    zero-velocity update removed (v_res the residual speed, T the integration time); heuristic, see the docs.

    References
    ----------
    Rampp A. et al. (2015) Inertial sensor-based stride parameter calculation from gait sequences in geriatric
    patients. IEEE TBME 62(4):1089-97. Skog I. et al. (2010) Zero-velocity detection - an algorithm evaluation.
    IEEE TBME 57(11):2657-66.
    """

    source = "imu"
    name = "footimu_swing_zupt"
    version = "2"  # v2: swing sign from the push-off excursion (v1: the longer lobe; wrong on a held-out walk)

    def __init__(self, *, placements: tuple[str, ...] = ("left_foot", "right_foot"),
                 swing_threshold_rad_s: float = 1.5, lowpass_hz: float = 3.0, rest_gyr_rad_s: float = 0.7,
                 rest_window_s: float = 0.05, gyr_range_rad_s: float | None = None,
                 acc_range_m_per_s2: float | None = None) -> None:
        self.placements = placements
        self.swing_threshold_rad_s = swing_threshold_rad_s
        self.lowpass_hz = lowpass_hz
        self.rest_gyr_rad_s = rest_gyr_rad_s
        self.rest_window_s = rest_window_s
        self.gyr_range_rad_s = gyr_range_rad_s
        self.acc_range_m_per_s2 = acc_range_m_per_s2

    def detect(self, reader: SessionReader) -> Self:
        """Analyse every IMU stream whose placement is in ``placements``; results in ``results_``."""
        self.results_ = []
        for name in reader.find_streams(modality="imu"):
            stream = reader.read_stream(name)
            if str(stream.meta.get("placement", "")) not in self.placements:
                continue
            self.results_.append(self._unusable_imu(stream) or self.detect_stream(stream))
        return self

    # ------------------------------------------------------------------------------------------------ one stream
    def detect_stream(self, stream: Stream) -> GaitResult:
        """Events and strides of one foot IMU stream (``acc`` m/s² and ``gyr`` rad/s channels)."""
        rate = float(stream.rate_hz)  # type: ignore[arg-type]
        place = str(stream.meta.get("placement", ""))
        side = place.split("_")[0] if place.split("_")[0] in ("left", "right") else "general"
        result = GaitResult(source=self.source, detector=self.detector_id, streams=(stream.name,), clock=stream.clock,
                            meta={"placement": place, "rate_hz": rate, "params": self.get_params()})
        acc = np.asarray(stream.channel("acc"), dtype=np.float64)
        gyr = np.asarray(stream.channel("gyr"), dtype=np.float64)
        t = stream.times()
        usable, n_sat, n_gap = imu_usable(acc, gyr, self.gyr_range_rad_s, self.acc_range_m_per_s2)
        result.meta.update(saturated_samples=n_sat, missing_samples=n_gap, gaps_s=gap_intervals(t, usable))
        if n_sat:
            result.warnings.append(f"{stream.name}: {n_sat} saturated samples (clipped at the sensor range); no event "
                                   "is placed in them, and events within 0.2 s of them get a doubled sd_s")
        if n_gap:
            result.warnings.append(f"{stream.name}: {n_gap} missing samples (NaN); no event is placed in a gap")
        # 1. sagittal axis and sign, from the usable samples
        if usable.sum() < 2 * rate:
            result.warnings.append(f"{stream.name}: less than 2 s of usable data; nothing detected")
            return result
        ax = int(np.argmax(np.var(gyr[usable], axis=0)))
        segments = finite_segments(usable, int(2 * rate))
        lp = np.full(gyr.shape[0], np.nan)
        for a, b in segments:
            lp[a:b] = _lowpass(gyr[a:b, ax], self.lowpass_hz, rate)
        level = 0.5 * self.swing_threshold_rad_s
        raw = np.where(usable, gyr[:, ax], 0.0)
        dur_pos, dur_neg = _lobe_duration_s(raw, level, rate), _lobe_duration_s(-raw, level, rate)
        exc_pos, exc_neg = _pitch_excursions(raw, np.linalg.norm(np.where(usable[:, None], gyr, 0.0), axis=1),
                                             segments, rate)
        sign = -1.0 if exc_pos >= exc_neg else 1.0  # the push-off rotation makes the largest excursion
        result.meta.update(sagittal_axis=stream.components[ax] if stream.components else ax, sagittal_sign=sign,
                           swing_lobe_s=dur_neg if sign < 0 else dur_pos,
                           push_off_lobe_s=dur_pos if sign < 0 else dur_neg,
                           pitch_excursion_rad={"positive": exc_pos, "negative": exc_neg})
        w = sign * gyr[:, ax]
        wl = sign * lp
        # 2.-3. swing peaks, foot-offs and foot strikes per usable segment
        strikes: list[tuple[float, float]] = []  # (time index, sd_s)
        offs: list[tuple[float, float]] = []
        n_peaks = 0
        base_q = 1.0 / (12.0 * rate * rate)
        near = np.convolve((~usable).astype(float), np.ones(int(0.4 * rate) | 1), mode="same") > 0
        near[:int(0.2 * rate)] = True  # the start and end of the recording count as edges too
        near[-int(0.2 * rate):] = True
        for a, b in segments:
            seg = wl[a:b]
            peaks, props = find_peaks(seg, height=self.swing_threshold_rad_s, distance=max(1, int(0.5 * rate)))
            n_peaks += len(peaks)
            for p_rel, h in zip(peaks, props["peak_heights"], strict=True):
                p = a + int(p_rel)
                weak = h < 2 * self.swing_threshold_rad_s
                # foot strike: first zero crossing of w after the swing peak, within 0.4 s
                j_end = min(b, p + int(0.4 * rate))
                after = np.flatnonzero(w[p:j_end] <= 0)
                if after.size and after[0] > 0:
                    j = p + int(after[0])
                    frac = w[j - 1] / (w[j - 1] - w[j]) if w[j - 1] != w[j] else 0.0
                    ic = j - 1 + frac
                    if j + 1 < b:
                        bad = weak or bool(near[j])
                        strikes.append((ic, math.sqrt((_SD_IC_S * (2 if bad else 1)) ** 2 + base_q)))
                # foot-off: minimum of w in the 0.4 s before the swing peak
                i0 = max(a, p - int(0.4 * rate))
                if p - i0 > 2:
                    k = i0 + int(np.argmin(w[i0:p]))
                    if i0 < k < p - 1:
                        bad = weak or bool(near[k])
                        offs.append((float(k), math.sqrt((_SD_TC_S * (2 if bad else 1)) ** 2 + base_q)))
        result.meta["swing_peaks"] = n_peaks
        if n_peaks == 0:
            result.warnings.append(f"{stream.name}: no swing (sagittal rate never above "
                                   f"{self.swing_threshold_rad_s} rad/s); no events")
        t0 = float(t[0])

        def at(idx: float) -> float:
            return t0 + idx / rate

        for idx, sd in strikes:
            result.events.append(Event(time_s=at(idx), kind="foot_strike", side=side, source=self.source, sd_s=sd,
                                       label=f"{side} IC", clock=stream.clock, detector=self.detector_id))
        for idx, sd in offs:
            result.events.append(Event(time_s=at(idx), kind="foot_off", side=side, source=self.source, sd_s=sd,
                                       label=f"{side} TC", clock=stream.clock, detector=self.detector_id))
        result.events.sort(key=lambda e: e.time_s)
        # 4.-5. strides
        result.strides = self._strides(stream, side, acc, gyr, usable, rate, t0, strikes, offs)
        result.meta["n_strides_with_length"] = sum("stride_length_m" in s.params for s in result.strides)
        return result

    def _rest(self, gyr_norm: NDArray[np.float64], usable: NDArray[np.bool_], i0: int, i1: int,
              half: int) -> int | None:
        """Mid-stance rest in ``[i0, i1)``: the sample of lowest windowed gyroscope norm, if below the threshold."""
        if i1 - i0 < 2 * half + 1 or not usable[i0:i1].all():
            return None
        win = np.convolve(gyr_norm[i0:i1], np.ones(2 * half + 1) / (2 * half + 1), mode="valid")
        k = int(np.argmin(win))
        if win[k] > self.rest_gyr_rad_s:
            return None
        return i0 + half + k

    def _strides(self, stream: Stream, side: str, acc: NDArray[np.float64], gyr: NDArray[np.float64],
                 usable: NDArray[np.bool_], rate: float, t0: float, strikes: list[tuple[float, float]],
                 offs: list[tuple[float, float]]) -> list[Stride]:
        ic = np.array([s[0] for s in strikes])
        ic_sd = np.array([s[1] for s in strikes])
        tc = np.array([o[0] for o in offs])
        tc_sd = np.array([o[1] for o in offs])
        gyr_norm = np.linalg.norm(np.where(np.isfinite(gyr), gyr, 0.0), axis=1)
        half = max(1, round(self.rest_window_s * rate / 2))
        rests: list[int | None] = []
        next_tc: list[int | None] = []
        for i in ic:
            later = np.flatnonzero((tc > i) & (tc < i + 1.5 * rate))
            k = int(later[0]) if later.size else None
            next_tc.append(k)
            end = int(tc[k]) if k is not None else min(len(gyr_norm), int(i + 0.6 * rate))
            rests.append(self._rest(gyr_norm, usable, math.ceil(i) + int(0.05 * rate), end - int(0.05 * rate),
                                    half))
        out: list[Stride] = []
        for k in range(len(ic) - 1):
            a, b = ic[k], ic[k + 1]
            dur_s = (b - a) / rate
            if not 0.5 <= dur_s <= 2.5 or not usable[int(a):math.ceil(b) + 1].all():
                continue
            sd_t = math.hypot(ic_sd[k], ic_sd[k + 1])
            params: dict[str, Value] = {"stride_time_s": Value(dur_s, sd_t)}
            j = next_tc[k]
            if j is not None and tc[j] < b:
                stance = (tc[j] - a) / rate
                sd_st = 100.0 * math.hypot(ic_sd[k], tc_sd[j]) / dur_s
                params["stance_pct"] = Value(100.0 * stance / dur_s, sd_st)
                params["swing_pct"] = Value(100.0 - 100.0 * stance / dur_s, sd_st)
            r0, r1 = rests[k], rests[k + 1]
            if r0 is not None and r1 is not None and r1 > r0 and usable[r0:r1 + 1].all():
                pos, v_res = zupt_stride(acc[r0:r1 + 1], gyr[r0:r1 + 1], rate, half)
                length = float(np.hypot(pos[-1, 0], pos[-1, 1]))
                t_int = (r1 - r0) / rate
                sd_l = math.hypot(_SD_LENGTH_M, 0.25 * v_res * t_int / 2)
                params["stride_length_m"] = Value(length, sd_l)
                params["gait_speed_m_per_s"] = Value(length / dur_s, sd_l / dur_s)
            out.append(Stride(side=side, start_s=t0 + a / rate, end_s=t0 + b / rate, clock=stream.clock,
                              params=params))
        return out

