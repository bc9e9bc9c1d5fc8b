"""Foot trajectory, stride length and gait speed: foot IMU (strapdown + zero-velocity updates) fused with foot markers.

Model (docs/fusion-foot.md has the derivation, the frames and the validation figures)

1. **Strapdown, nominal trajectory.** Orientation by integrating the gyroscope (scalar-last quaternions, the helpers
   of `fusionlab.gait._imu_foot`), started from gravity at the first rest; at every rest sample the tilt is reset
   to gravity (a rotation about a horizontal axis, so the heading is kept). The specific force is rotated to a
   gravity-aligned *IMU world* frame (z up, heading of the sensor at the start) and gravity removed. Velocity is
   integrated and de-drifted linearly between rest samples (zero-velocity update of the plain ZUPT method), then
   rotated by the heading alignment ``yaw(t)`` into the lab frame and integrated to a position ``p_nom``. This
   nominal trajectory alone is the *IMU-alone* (ZUPT-only) estimate.
2. **Heading and lever arms, from the data.** Where markers exist, ``yaw(t)`` is the angle between the marker and the
   IMU displacement of every stride (mid-stance to mid-stance), interpolated in time (it absorbs the unknown heading
   of the IMU world frame and the gyroscope's heading drift). Each foot marker ``j`` sits at a fixed lever arm
   ``r_j`` in the sensor frame: ``p_marker_j = p_imu + R_lab(t) r_j``; ``r_j`` is the least-squares solution over
   the marker samples with the per-stride mean removed (the nominal position's drift is nearly constant within a
   stride).
3. **Error-state Kalman smoother**, one channel per lab axis (batched `kalman_smooth`), around the *plain*
   strapdown trajectory ``p_ins`` (no de-drift, so that no zero-velocity information is used twice): state
   ``[dp, dv, db, e0, e1, e2]`` = nominal minus true position and velocity, an acceleration bias (random walk) and
   three white terms (see `_model`) whose variances are set by pseudo-measurements ``e = 0`` with heteroscedastic
   shapes: a constant floor, a term growing with the foot's acceleration and rotation rate, the bias increment.
   Measurements: ``v_ins`` at zero-velocity samples (``= dv``; SD shape ``sqrt(sd0**2 + (lever * |omega|)**2)``:
   how still the foot is) and ``p_ins - (p_marker_j - R_lab r_j)`` (``= dp``) for every foot marker ``j`` (one
   measurement per marker frame, on the nearest IMU step, interpolated to its time; NaN = not seen). Every level
   (zero velocity, the three acceleration terms, each marker) is fitted by EM
   (`fusionlab.fusion._noise.estimate_noise`).
4. **Output**: the foot point = centroid of the foot markers' lever arms, ``p_ins - dp + R_lab(t) mean_j(r_j)``,
   with the smoothed variance of ``dp`` plus the variance of the measured centroid about this rigid model, on
   the session clock at the IMU samples, frame ``lab``. Without markers: the IMU point in the IMU world frame,
   relative to its start (frame ``imu_world:<side>_foot``).
5. **Strides**: between consecutive mid-stances (lowest gyroscope norm of a rest): horizontal length of the fused
   displacement, its variance from the smoothed joint covariance of the two mid-stance states (the RTS
   cross-covariance), speed = length / duration.
6. **Conflicts**: windowed NIS of the marker innovations (chi-square; see `_conflicts` below).
"""

from __future__ import annotations

import logging
import itertools
import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.stats import chi2

from fusionlab.fusion.base import Conflict, FusedSignal, FusionResult
from fusionlab.gait._imu_foot import _gravity_alignment, _quat_mul, _quat_to_matrix, finite_segments, imu_usable
from fusionlab.units import GRAVITY_MS2

if TYPE_CHECKING:
    from fusionlab.fusion._noise import NoiseFit
    from fusionlab.model import Stream
    from fusionlab.persist import SessionReader

__all__ = ["ALGORITHM", "fuse_foot"]

log = logging.getLogger(__name__)

ALGORITHM = "foot_zupt_markers_eskf"
# Defaults (documented in docs/fusion-foot.md)
_REST_WINDOW_S = 0.05  # moving average of the gyroscope norm for the rest / zero-velocity detector
_REST_GYR_RAD_S = 0.6  # rest (tilt reset, velocity de-drift) below this windowed gyroscope norm
_REST_ACC_M_PER_S2 = 1.0  # ... and with the specific-force norm within this of g
_ZUPT_GYR_RAD_S = 1.2  # zero-velocity measurement below this windowed gyroscope norm
_ZUPT_SD0_M_PER_S = 0.01  # zero-velocity noise SD of a foot at complete rest (shape; EM fits the level)
_ZUPT_LEVER_M = 0.1  # distance IMU - rolling contact: v = lever * |omega| while the foot rolls (shape)


_STANCE_MERGE_S = 0.3  # rest runs closer than this belong to one stance
_ACC_ERR_FLOOR_M_PER_S2 = 0.3  # shape of the acceleration-error SD: floor ...
_ACC_ERR_PER_ACC = 0.05  # ... plus this fraction of the linear acceleration (orientation error x acceleration)
_ACC_ERR_PER_RATE_M_PER_S2 = 0.05  # ... plus this per rad/s of rotation rate (scale-factor and lever effects)
_YAW_MIN_SPAN_S = 10.0  # the heading drift is fitted only when the strides with markers span this long
_NM = 4  # measurements before the markers: zero velocity, e0, e1, e2
_BIAS_WALK_M_PER_S2 = 0.1  # starting level of the bias random walk (m/s^2 per sqrt(s))
_DIFFUSE_M_PER_S2 = 100.0  # prior SD of the white acceleration errors before their pseudo-measurement
_CONFLICT_WINDOW_S = 0.5
_CONFLICT_P = 1e-6
_CONFLICT_RATIO = 4.0


# ================================================================================================ strapdown
def _moving_mean(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    k = np.ones(2 * (n // 2) + 1) / (2 * (n // 2) + 1)
    pad = np.pad(x, (len(k) // 2, len(k) // 2), mode="edge")
    return np.convolve(pad, k, mode="valid")


def _rest_masks(acc: NDArray[np.float64], gyr: NDArray[np.float64], rate_hz: float) -> tuple[
        NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
    """Windowed gyroscope norm (rad/s), the rest mask (tilt reset, de-drift) and the zero-velocity mask."""
    n = max(1, round(_REST_WINDOW_S * rate_hz))
    w = _moving_mean(np.linalg.norm(gyr, axis=1), n)
    a = _moving_mean(np.linalg.norm(acc, axis=1), n)
    rest = (w < _REST_GYR_RAD_S) & (np.abs(a - GRAVITY_MS2) < _REST_ACC_M_PER_S2)
    zupt = (w < _ZUPT_GYR_RAD_S) & (np.abs(a - GRAVITY_MS2) < 3 * _REST_ACC_M_PER_S2)
    return w, rest, zupt


def _orientation(acc: NDArray[np.float64], gyr: NDArray[np.float64], rate_hz: float,
                 rest: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Sensor-to-IMU-world rotation matrices ``(n, 3, 3)``: gyroscope integration, tilt reset to gravity at rests.

    The IMU world frame has z up and the heading of the sensor at the start.
    """
    n = acc.shape[0]
    dt = 1.0 / rate_hz
    half = max(1, round(_REST_WINDOW_S * rate_hz / 2))
    acc_s = np.stack([_moving_mean(acc[:, i], 2 * half + 1) for i in range(3)], axis=1)
    first = np.flatnonzero(rest)
    i0 = int(first[0]) if first.size else 0
    q = _gravity_alignment(np.mean(acc_s[i0:i0 + 2 * half + 1], axis=0))
    out = np.empty((n, 3, 3))
    for i in range(n):
        if rest[i]:
            # tilt reset: the smallest world-frame rotation taking the measured gravity to up (axis horizontal,
            # heading kept); R(dq q) = R(dq) R(q)
            q = _quat_mul(_gravity_alignment(_quat_to_matrix(q) @ acc_s[i]), q)
        out[i] = _quat_to_matrix(q)
        if i + 1 < n:
            # q_{k+1} = q_k * exp(omega dt / 2), omega = mean body rate over the interval
            omega = 0.5 * (gyr[i] + gyr[i + 1])
            norm = float(np.linalg.norm(omega))
            if norm > 0:
                angle = norm * dt
                q = _quat_mul(q, np.concatenate([omega / norm * math.sin(angle / 2), [math.cos(angle / 2)]]))
                q /= np.linalg.norm(q)
    return out


def _dedrifted_velocity(acc_world: NDArray[np.float64], rate_hz: float,
                        rest: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Velocity (IMU world, m/s): trapezoid integration, set to zero at every rest sample and de-drifted linearly
    in between (the plain zero-velocity update)."""
    dt = 1.0 / rate_hz
    v = np.zeros_like(acc_world)
    v[1:] = np.cumsum(0.5 * (acc_world[1:] + acc_world[:-1]) * dt, axis=0)
    idx = np.flatnonzero(rest)
    if idx.size == 0:
        return v - v[0]
    k = np.arange(v.shape[0])
    return v - np.stack([np.interp(k, idx, v[idx, i]) for i in range(3)], axis=1)


def _cumtrapz(v: NDArray[np.float64], rate_hz: float) -> NDArray[np.float64]:
    p = np.zeros_like(v)
    p[1:] = np.cumsum(0.5 * (v[1:] + v[:-1]) / rate_hz, axis=0)
    return p


def _mid_stances(w: NDArray[np.float64], rest: NDArray[np.bool_], rate_hz: float) -> NDArray[np.int64]:
    """One sample per stance: the lowest windowed gyroscope norm of rest runs closer than ``_STANCE_MERGE_S``."""
    runs: list[list[int]] = []
    for a, b in finite_segments(rest, 2):
        if runs and a - runs[-1][1] < _STANCE_MERGE_S * rate_hz:
            runs[-1][1] = b
        else:
            runs.append([a, b])
    out = [a + int(np.argmin(np.where(rest[a:b], w[a:b], np.inf))) for a, b in runs]
    return np.asarray(out, dtype=np.int64)


def _rz(theta: NDArray[np.float64]) -> NDArray[np.float64]:
    c, s = np.cos(theta), np.sin(theta)
    z, o = np.zeros_like(theta), np.ones_like(theta)
    return np.stack([np.stack([c, -s, z], -1), np.stack([s, c, z], -1), np.stack([z, z, o], -1)], -2)


# ================================================================================================ model
def _model(dt: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``F`` and ``Q`` of one axis, state ``[dp, dv, db, e0, e1, e2]``: position, velocity and acceleration-bias
    error, and three white terms: acceleration errors ``e0`` (constant SD) and ``e1`` (SD growing with the foot's
    motion), and the bias increment ``e2``. Each ``e`` gets a diffuse prior every step; its variance is that of
    its pseudo-measurement ``e = 0`` (posterior variance ``(1/B^2 + 1/R)^-1 ~ R``), whose level EM fits: the
    process noise becomes heteroscedastic although `kalman_smooth` has a time-invariant Q."""
    h = 0.5 * dt * dt
    F = np.array([[1.0, dt, h, h, h, 0.0], [0.0, 1.0, dt, dt, dt, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 1.0],
                  [0.0] * 6, [0.0] * 6, [0.0] * 6])
    # dp, dv, db change only through the e terms (a tiny jitter keeps Q positive definite)
    Q = np.diag([1e-14, 1e-14, 1e-14] + [_DIFFUSE_M_PER_S2 ** 2] * 3)
    return F, Q


def _marker_on_grid(tg: NDArray[np.float64], tm: NDArray[np.float64], xm: NDArray[np.float64]) -> NDArray[
        np.float64]:
    """Marker ``(nm, 3)`` on the grid ``tg``: one value per marker frame, at the grid step nearest to it, linearly
    interpolated to that step's time between two seen frames; NaN elsewhere."""
    out = np.full((tg.size, 3), np.nan)
    ok = np.all(np.isfinite(xm), axis=1)
    if ok.sum() < 2:
        return out
    k = np.clip(np.searchsorted(tg, tm), 1, tg.size - 1)
    k = np.where(np.abs(tg[k - 1] - tm) < np.abs(tg[k] - tm), k - 1, k)
    inside = (tm >= tg[0] - 0.5 * (tg[1] - tg[0])) & (tm <= tg[-1] + 0.5 * (tg[1] - tg[0]))
    j = np.clip(np.searchsorted(tm, tg[k], side="right") - 1, 0, tm.size - 2)  # tm[j] <= tg[k] < tm[j+1]
    both = ok[j] & ok[j + 1] & inside
    frac = np.clip((tg[k] - tm[j]) / (tm[j + 1] - tm[j]), 0.0, 1.0)
    val = xm[j] + frac[:, None] * (xm[j + 1] - xm[j])
    # a frame that has no seen neighbour on one side still counts when it lies on the grid step (within 1 ms)
    exact = ok & inside & (np.abs(tg[k] - tm) < 1e-3)
    use = both | exact
    val = np.where((both)[:, None], val, xm)
    out[k[use]] = val[use]
    return out


def _lever_arms(resid: NDArray[np.float64], R_lab: NDArray[np.float64], seg: NDArray[np.int64]) -> tuple[
        NDArray[np.float64], float]:
    """Least-squares ``r`` (sensor frame) of ``resid(t) = R_lab(t) r + c_segment``; and the RMS fit residual (m)."""
    ok = np.all(np.isfinite(resid), axis=1) & (seg >= 0)
    if ok.sum() < 20:
        return np.zeros(3), math.nan
    e, R, s = resid[ok], R_lab[ok], seg[ok]
    # remove the per-segment means of both sides
    _, inv = np.unique(s, return_inverse=True)
    cnt = np.bincount(inv).astype(float)
    e_mean = np.stack([np.bincount(inv, e[:, i]) for i in range(3)], 1) / cnt[:, None]
    R_mean = np.stack([np.bincount(inv, R[:, i, j]) for i in range(3) for j in range(3)], 1).reshape(-1, 3, 3)
    R_mean /= cnt[:, None, None]
    A = (R - R_mean[inv]).reshape(-1, 3)
    b = (e - e_mean[inv]).reshape(-1)
    r, *_ = np.linalg.lstsq(A, b, rcond=None)
    return r, float(np.sqrt(np.mean((A @ r - b) ** 2)))


def _smoothed_cross_cov(F: NDArray[np.float64], Q: NDArray[np.float64], Pf: NDArray[np.float64],
                        Ps: NDArray[np.float64], i: int, j: int) -> NDArray[np.float64]:
    """``Cov(x_i, x_j | all)`` for ``i < j`` from the RTS gains: ``G_i G_{i+1} ... G_{j-1} Ps[j]``."""
    M = np.eye(F.shape[0])
    for k in range(i, j):
        Pp = F @ Pf[k] @ F.T + Q
        G = np.linalg.solve(Pp.T, (Pf[k] @ F.T).T).T  # G = Pf F' Pp^-1
        M = M @ G
    return M @ Ps[j]


# ================================================================================================ inputs
def _foot_imu(reader: SessionReader, side: str) -> Stream | None:
    for name in reader.find_streams(modality="imu"):
        s = reader.read_stream(name)
        if (str(s.meta.get("placement", "")) == f"{side}_foot" and {"acc", "gyr"} <= set(s.channels)
                and s.regular):
            return s
    return None


def _foot_markers(reader: SessionReader, side: str) -> tuple[Stream, dict[str, str]] | None:
    from fusionlab.sync._signals import find_foot_markers

    for name in reader.find_streams(modality="markers"):
        s = reader.read_stream(name)
        if s.data.ndim != 3:
            continue
        roles = find_foot_markers(s.channels).get(side)
        if roles:
            return s, roles
    return None


def _sides(reader: SessionReader) -> list[str]:
    out = []
    for name in reader.find_streams(modality="imu"):
        s = reader.read_stream(name)
        place = str(s.meta.get("placement", ""))
        if place in ("left_foot", "right_foot"):
            out.append(place.split("_")[0])
    return sorted(set(out))


# ================================================================================================ public
def fuse_foot(reader: SessionReader, *, side: str | None = None,
              withhold: Sequence[tuple[float, float]] | None = None, n_iter: int = 20) -> FusionResult:
    """Fused foot trajectory (lab frame), stride lengths and gait speed of one or both feet.

    Parameters
    ----------
    reader
        Open session with a foot IMU stream per side (placement ``<side>_foot``, channels ``acc`` m/s² and ``gyr``
        rad/s) and, optionally, a marker stream with foot markers (toe, heel, 5th metatarsal; found by name); the
        clocks must be synchronised (``fusionlab sync``): all times are mapped to the session clock.
    side
        ``"left"`` or ``"right"``; None for every foot IMU found.
    withhold
        ``[start_s, end_s)`` intervals (session clock) during which the markers are treated as not seen
        (validation: the fused trajectory there comes from the IMU alone).
    n_iter
        Maximum EM iterations of the noise estimation.

    Returns
    -------
    FusionResult
        Per foot: `FusedSignal` ``foot_position_<side>`` (channels x, y, z; m; frame ``lab``; the foot-marker
        centroid) and ``stride_<side>`` (one sample per stride at its end: ``length`` m and ``speed`` m/s with
        their variances); ``meta`` holds the per-stride table, the gait speed, the heading alignment, the lever
        arms and the fitted noise. Conflicts where markers and IMU disagree (``quantity="foot_position_<side>"``).
    """
    return _fuse_foot_detail(reader, side=side, withhold=withhold, n_iter=n_iter)[0]


def _fuse_foot_detail(reader: SessionReader, *, side: str | None, withhold: Sequence[tuple[float, float]] | None,
                      n_iter: int) -> tuple[FusionResult, dict[str, dict[str, Any]]]:
    """`fuse_foot` and, per side, what validation needs: the IMU-alone trajectory (``imu_alone``, same point and
    frame as the fused one), the `NoiseFit` and the lever arms."""
    details: dict[str, dict[str, Any]] = {}
    sides = [side] if side is not None else _sides(reader)
    result = FusionResult(name="foot", algorithm=ALGORITHM,
                          parameters={"withhold": [list(map(float, w)) for w in (withhold or [])], "n_iter": n_iter,
                                      "rest_gyr_rad_s": _REST_GYR_RAD_S, "zupt_gyr_rad_s": _ZUPT_GYR_RAD_S,
                                      "zupt_lever_m": _ZUPT_LEVER_M})
    inputs: list[str] = []
    for sd in sides:
        imu = _foot_imu(reader, sd)
        if imu is None:
            result.warnings.append(f"no usable {sd}_foot IMU stream (acc, gyr, regular); {sd} foot skipped")
            continue
        _fuse_one(reader, imu, sd, withhold or [], n_iter, result, inputs, details)
    result.inputs = tuple(dict.fromkeys(inputs))
    return result, details


def _fuse_one(reader: SessionReader, imu: Stream, side: str, withhold: Sequence[tuple[float, float]], n_iter: int,
              result: FusionResult, inputs: list[str], details: dict[str, dict[str, Any]]) -> None:
    from fusionlab.fusion._noise import estimate_noise
    from fusionlab.sync._signals import _up_axis

    rate = float(imu.rate_hz)  # type: ignore[arg-type]
    acc_all = np.asarray(imu.channel("acc"), dtype=np.float64)
    gyr_all = np.asarray(imu.channel("gyr"), dtype=np.float64)
    usable, _, _ = imu_usable(acc_all, gyr_all, None, None)
    segs = finite_segments(usable, int(2 * rate))
    if not segs:
        result.warnings.append(f"{imu.name}: less than 2 s of usable IMU data; {side} foot skipped")
        return
    a0, b0 = max(segs, key=lambda s: s[1] - s[0])
    if len(segs) > 1 or b0 - a0 < usable.size:
        result.warnings.append(f"{imu.name}: only the longest usable stretch ({(b0 - a0) / rate:.1f} s) is fused")
    acc, gyr = acc_all[a0:b0], gyr_all[a0:b0]
    tg = reader.to_session_time(imu)[a0:b0]
    n = tg.size
    inputs.append(imu.name)

    # 1. strapdown in the IMU world frame
    w, rest, zupt = _rest_masks(acc, gyr, rate)
    R_world = _orientation(acc, gyr, rate, rest)
    acc_world = np.einsum("tij,tj->ti", R_world, acc)
    # local gravity as the accelerometer reads it (its scale error included): median norm at rest
    g_local = float(np.median(np.linalg.norm(acc[rest], axis=1))) if rest.sum() > 10 else GRAVITY_MS2
    acc_world[:, 2] -= g_local
    v_world = _dedrifted_velocity(acc_world, rate, rest)
    mids = _mid_stances(w, rest, rate)

    # markers on the grid (session clock), withheld stretches removed
    found = _foot_markers(reader, side)
    marker_names: list[str] = []
    m_sd0: list[float] = []
    z_m = np.zeros((0, n, 3))
    up = 2
    if found is not None:
        mstream, roles = found
        up = _up_axis(mstream)
        tm = reader.to_session_time(mstream)
        keep = np.ones(tm.size, dtype=bool)
        for a, b in withhold:
            keep &= ~((tm >= a) & (tm < b))
        cols = []
        for role in ("toe", "heel", "mt5"):
            if role in roles:
                x = np.array(mstream.channel(roles[role]), dtype=np.float64)
                x[~keep] = np.nan
                g = _marker_on_grid(tg, tm, x)
                if np.isfinite(g[:, 0]).sum() >= 20:
                    cols.append(g)
                    marker_names.append(roles[role])
                    # starting noise level: SD of second differences (white noise: var(d2) = 6 sd^2; robust)
                    d2 = np.diff(x, 2, axis=0)
                    m_sd0.append(max(float(np.sqrt(np.nanmedian(d2 ** 2) / 6 / 0.455)), 2e-4))
        if cols:
            z_m = np.stack(cols)
            inputs.append(mstream.name)
    # IMU world (z up) to lab axes: a cyclic permutation putting z on the lab's up axis
    perm = np.roll(np.eye(3), up - 2, axis=0)
    has_markers = z_m.shape[0] > 0

    # 2. heading alignment per stride, from the marker centroid and IMU displacements between mid-stances
    p_world = _cumtrapz(v_world, rate)
    yaw_t, yaw_pts = np.zeros(n), []
    yaw_fit: dict[str, float] = {}
    if has_markers:
        cen = np.mean(z_m, axis=0) @ perm  # lab rows -> IMU world rows
        for i0, i1 in itertools.pairwise(mids):
            dt_s = (i1 - i0) / rate
            if not 0.4 <= dt_s <= 3.0:
                continue
            d_i = p_world[i1, :2] - p_world[i0, :2]
            c0 = _nearest_finite(cen, i0, int(0.03 * rate))
            c1 = _nearest_finite(cen, i1, int(0.03 * rate))
            if c0 is None or c1 is None:
                continue
            d_m = c1[:2] - c0[:2]
            lm, li = float(np.hypot(*d_m)), float(np.hypot(*d_i))
            if lm < 0.3 or abs(lm - li) > 0.3 * lm:
                continue
            ang = math.atan2(d_i[0] * d_m[1] - d_i[1] * d_m[0], d_i @ d_m)
            yaw_pts.append((0.5 * (i0 + i1), ang))
        if yaw_pts:
            yaw_t, yaw_fit = _heading_fit(np.array([p[0] for p in yaw_pts]) / rate,
                                          np.unwrap(np.array([p[1] for p in yaw_pts])), np.arange(n) / rate)
        else:
            result.warnings.append(f"{side} foot: no stride with markers at both mid-stances; the heading of the "
                                   "IMU cannot be aligned to the lab, markers not used")
            has_markers = False
            z_m = np.zeros((0, n, 3))
            marker_names = []
    Rz = _rz(yaw_t)
    R_lab = np.einsum("ij,tjk,tkl->til", perm, Rz, R_world)  # sensor -> lab
    v_lab = np.einsum("ij,tjk,tk->ti", perm, Rz, v_world)
    p_nom = _cumtrapz(v_lab, rate)  # IMU alone (zero-velocity de-drift)
    # plain strapdown (no de-drift): the nominal of the error-state smoother, whose zero-velocity updates must
    # not have been used already
    v_ins = _cumtrapz(np.einsum("ij,tjk,tk->ti", perm, Rz, acc_world), rate)
    p_ins = _cumtrapz(v_ins, rate)

    # lever arms of the markers (sensor frame), per-stride means removed
    seg = np.full(n, -1, dtype=np.int64)
    for s, (i0, i1) in enumerate(itertools.pairwise(mids)):
        seg[i0:i1] = s
    levers = np.zeros((z_m.shape[0], 3))
    lever_rms = []
    for j in range(z_m.shape[0]):
        levers[j], rms = _lever_arms(z_m[j] - p_nom, R_lab, seg)
        lever_rms.append(rms)
    if has_markers:
        pm = z_m - np.einsum("tij,mj->mti", R_lab, levers)  # each marker's estimate of the IMU position
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # steps without any marker: NaN, skipped
            off = np.nanmedian(np.nanmean(pm, axis=0) - p_nom, axis=0)
        p_nom = p_nom + off
        p_ins = p_ins + off
        frame = "lab"
    else:
        pm = z_m
        frame = f"imu_world:{side}_foot"

    # 3. error-state Kalman smoother per axis, noise levels by EM
    dt = 1.0 / rate
    F, Q = _model(dt)
    n_m = pm.shape[0]
    # measurements: 0 zero velocity (dv); 1, 2, 3 pseudo-measurements e0 = 0 (constant SD), e1 = 0 (SD growing with
    # the foot's acceleration and rotation rate), e2 = 0 (bias walk); 4.. markers (dp)
    H = np.vstack([np.eye(6)[[1, 3, 4, 5]], np.tile(np.eye(6)[[0]], (n_m, 1))])
    z = np.full((3, n, _NM + n_m), np.nan)
    R = np.ones((3, n, _NM + n_m))
    sd_v = np.sqrt(_ZUPT_SD0_M_PER_S ** 2 + (_ZUPT_LEVER_M * w) ** 2)
    z[:, zupt, 0] = v_ins[zupt].T
    R[:, :, 0] = (sd_v ** 2)[None, :]
    a_lin = np.linalg.norm(acc_world, axis=1)
    z[:, :, 1:4] = 0.0
    R[:, :, 1] = _ACC_ERR_FLOOR_M_PER_S2 ** 2
    R[:, :, 2] = ((_ACC_ERR_PER_ACC * a_lin) ** 2 + (_ACC_ERR_PER_RATE_M_PER_S2 * w) ** 2 + 1e-6)[None, :]
    R[:, :, 3] = _BIAS_WALK_M_PER_S2 ** 2 / rate  # bias random walk: var(increment) = s^2 dt
    for j in range(n_m):
        z[:, :, _NM + j] = (p_ins - pm[j]).T
        R[:, :, _NM + j] = m_sd0[j] ** 2
    x0 = np.zeros(6)
    P0 = np.diag([1.0 if has_markers else 1e-8, 0.1 ** 2, 0.3 ** 2] + [_DIFFUSE_M_PER_S2 ** 2] * 3)
    fit: NoiseFit = estimate_noise(F, Q, H, z, R, x0, P0, fit_q=False, n_iter=n_iter)
    out = fit.output
    dp = out.x_smoothed[:, :, 0].T
    var_p = out.P_smoothed[:, :, 0, 0].T
    lever_c = levers.mean(axis=0) if n_m else np.zeros(3)
    mean = p_ins - dp + np.einsum("tij,j->ti", R_lab, lever_c)
    # the output point (marker centroid) is not rigidly fixed to the IMU (shoe flexion, marker wobble): add the
    # variance of the centroid about the rigid model, measured where every foot marker was seen
    var_point = np.zeros(3)
    if n_m:
        seen = np.all(np.isfinite(z_m[:, :, 0]), axis=0)
        if seen.sum() > 20:
            var_point = np.mean((np.mean(z_m[:, seen], axis=0) - mean[seen]) ** 2, axis=0)
    var_p = var_p + var_point[None, :]
    imu_alone = p_nom + np.einsum("tij,j->ti", R_lab, lever_c)

    noise: dict[str, float] = {"zupt_m_per_s": float(np.sqrt(np.nanmean(fit.r_scale[:, 0])) * _ZUPT_SD0_M_PER_S),
                               "imu_acc_floor_m_per_s2": float(np.sqrt(np.nanmean(fit.r_scale[:, 1])))
                               * _ACC_ERR_FLOOR_M_PER_S2,
                               "imu_acc_motion_scale": float(np.sqrt(np.nanmean(fit.r_scale[:, 2]))),
                               "imu_bias_walk_m_per_s2_per_sqrt_s": float(np.sqrt(np.nanmean(fit.r_scale[:, 3])))
                               * _BIAS_WALK_M_PER_S2}
    for j, name in enumerate(marker_names):
        noise[f"markers:{name}"] = float(np.sqrt(np.nanmean(fit.r_scale[:, _NM + j])) * m_sd0[j])
    if n_m:
        noise["markers"] = float(np.sqrt(np.mean([noise[f"markers:{nm}"] ** 2 for nm in marker_names])))
    meta: dict[str, Any] = {
        "point": "centroid of the foot markers' lever arms" if has_markers else "IMU, relative to its start",
        "imu_stream": imu.name, "markers": marker_names, "lever_arms_sensor_m": levers.round(5).tolist(),
        "lever_fit_rms_m": [round(float(x), 5) for x in lever_rms],
        "yaw_alignment_rad": [[float(tg[round(k)]), float(a)] for k, a in yaw_pts], "yaw_fit": yaw_fit,
        "r_scale": np.asarray(fit.r_scale).round(6).tolist(), "converged_loglik": float(fit.loglik[-1]),
        "point_model_sd_m": np.sqrt(var_point).round(5).tolist(), "gravity_m_per_s2": g_local,
        "em_iterations": len(fit.loglik) - 1, "em_converged": bool(fit.converged),
        "zero_velocity_fraction": float(zupt.mean()),
    }
    pos = FusedSignal(name=f"foot_position_{side}", times=tg, mean=mean, var=var_p, channels=("x", "y", "z"),
                      units=("m", "m", "m"), frame=frame, inputs=tuple(inputs[-(1 + has_markers):]), noise=noise,
                      meta=meta)
    details[side] = {"imu_alone": imu_alone, "fit": fit, "levers": levers, "marker_names": marker_names}

    # 5. strides between consecutive mid-stances
    horiz = [i for i in range(3) if i != up]
    strides = []
    for i0, i1 in itertools.pairwise(mids):
        dur = (i1 - i0) / rate
        if not 0.5 <= dur <= 2.5:
            continue
        d = mean[i1, horiz] - mean[i0, horiz]
        length = float(np.hypot(*d))
        if length < 0.05:
            continue
        u = d / length
        var_l = 0.0
        for c_i, ax in enumerate(horiz):
            c = ax
            Qc = fit.Q[c] if np.ndim(fit.Q) == 3 else fit.Q
            cc = _smoothed_cross_cov(F, Qc, out.P_filtered[c], out.P_smoothed[c], int(i0), int(i1))[0, 0]
            var_ax = out.P_smoothed[c, i0, 0, 0] + out.P_smoothed[c, i1, 0, 0] - 2 * cc
            var_l += u[c_i] ** 2 * max(var_ax, 0.0)
        strides.append({"start_s": float(tg[i0]), "end_s": float(tg[i1]), "length_m": length,
                        "length_sd_m": math.sqrt(var_l), "speed_m_per_s": length / dur,
                        "speed_sd_m_per_s": math.sqrt(var_l) / dur})
    meta["strides"] = strides
    if strides:
        tot_l = sum(s["length_m"] for s in strides)
        tot_t = sum(s["end_s"] - s["start_s"] for s in strides)
        meta["gait_speed_m_per_s"] = tot_l / tot_t
        meta["gait_speed_sd_m_per_s"] = math.sqrt(sum(s["length_sd_m"] ** 2 for s in strides)) / tot_t
        st = FusedSignal(name=f"stride_{side}", times=np.array([s["end_s"] for s in strides]),
                         mean=np.array([[s["length_m"], s["speed_m_per_s"]] for s in strides]),
                         var=np.array([[s["length_sd_m"] ** 2, s["speed_sd_m_per_s"] ** 2] for s in strides]),
                         channels=("length", "speed"), units=("m", "m/s"), frame=frame, inputs=pos.inputs,
                         noise=noise, meta={"start_s": [s["start_s"] for s in strides],
                                            "gait_speed_m_per_s": meta["gait_speed_m_per_s"],
                                            "gait_speed_sd_m_per_s": meta["gait_speed_sd_m_per_s"]})
        result.signals.extend([pos, st])
    else:
        result.signals.append(pos)
        result.warnings.append(f"{side} foot: no stride between two mid-stances; no stride length")

    # 6. conflicts: windowed NIS of the marker innovations
    if n_m:
        result.conflicts.extend(_conflicts(tg, out.innovation[:, :, _NM:], out.innovation_var[:, :, _NM:], side,
                                           rate))


def _heading_fit(t_pts: NDArray[np.float64], ang: NDArray[np.float64], t: NDArray[np.float64]) -> tuple[
        NDArray[np.float64], dict[str, float]]:
    """Heading alignment ``yaw(t) = a + b t`` (constant offset plus the gyroscope's heading drift), fitted to the
    per-stride angles with Huber weights; constant when the strides span less than ``_YAW_MIN_SPAN_S``.

    A line, not the per-stride angles themselves: a stride's own heading error (0.01-0.03 rad on gaitmap's walk)
    is an IMU error that the smoother must see where markers exist, or its variance is too small in gaps.
    """
    ang = np.asarray(ang, dtype=np.float64)
    tc = t_pts - t_pts.mean()
    A = np.stack([np.ones_like(tc), tc], 1) if np.ptp(t_pts) >= _YAW_MIN_SPAN_S else np.ones((tc.size, 1))
    wts = np.ones(tc.size)
    coef = np.zeros(A.shape[1])
    for _ in range(10):
        coef = np.linalg.lstsq(A * wts[:, None], ang * wts, rcond=None)[0]
        res = ang - A @ coef
        scale = max(1.4826 * float(np.median(np.abs(res))), 1e-4)
        wts = np.sqrt(np.minimum(1.0, 1.5 * scale / np.maximum(np.abs(res), 1e-12)))
    tt = t - t_pts.mean()
    yaw = coef[0] + (coef[1] * tt if coef.size > 1 else 0.0)
    return yaw, {"offset_rad": float(coef[0]), "drift_rad_per_s": float(coef[1]) if coef.size > 1 else 0.0,
                 "stride_residual_sd_rad": scale}


def _nearest_finite(x: NDArray[np.float64], i: int, half: int) -> NDArray[np.float64] | None:
    lo, hi = max(0, i - half), min(x.shape[0], i + half + 1)
    ok = np.flatnonzero(np.all(np.isfinite(x[lo:hi]), axis=1))
    if ok.size == 0:
        return None
    return x[lo + ok[np.argmin(np.abs(lo + ok - i))]]


def _conflicts(tg: NDArray[np.float64], nu: NDArray[np.float64], s: NDArray[np.float64], side: str,
               rate: float) -> list[Conflict]:
    """Windows (``_CONFLICT_WINDOW_S``) whose summed normalised squared marker innovations exceed the chi-square
    bound (p < ``_CONFLICT_P``) and ``_CONFLICT_RATIO`` times their degrees of freedom; adjacent windows merged."""
    e2 = np.where(np.isfinite(nu), nu ** 2 / s, 0.0).sum(axis=(0, 2))
    dof = np.isfinite(nu).sum(axis=(0, 2))
    win = max(1, round(_CONFLICT_WINDOW_S * rate))
    hits = []
    for a in range(0, tg.size, win):
        b = min(tg.size, a + win)
        k = int(dof[a:b].sum())
        if k < 10:
            continue
        x = float(e2[a:b].sum())
        p = float(chi2.sf(x, k))
        if p < _CONFLICT_P and x > _CONFLICT_RATIO * k:
            hits.append([a, b, x, k, p])
    merged: list[list[Any]] = []
    for h in hits:
        if merged and merged[-1][1] == h[0]:
            m = merged[-1]
            m[1], m[2], m[3], m[4] = h[1], m[2] + h[2], m[3] + h[3], min(m[4], h[4])
        else:
            merged.append(list(h))
    out = []
    for a, b, x, k, p in merged:
        ratio = x / k
        sev = "high" if ratio > 25 else "medium" if ratio > 10 else "low"
        out.append(Conflict(start_s=float(tg[a]), end_s=float(tg[b - 1]), quantity=f"foot_position_{side}",
                            modality="markers", severity=sev, score=ratio,
                            evidence={"nis": x, "dof": int(k), "p": p, "nis_per_dof": ratio,
                                      "note": "markers disagree with the IMU-propagated foot position; with two "
                                              "modalities the culprit is not identifiable (markers assumed)"}))
    return out
