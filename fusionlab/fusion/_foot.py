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
   (`fusionlab.fusion._noise.estimate_noise`). EM fits them where markers exist, where part of the IMU's error
   is absorbed as marker noise; so the level of the three process terms is then **calibrated by cross-validation**
   (`_calibrate_process`): stretches of the available markers are withheld (4 folds, 0.2-2 s, 30 %), the smoother
   predicts them, and a multiplier per lab axis (then one common factor for 3D) is iterated until the 95 %
   quantiles of the predictive z-scores match the normal (chi-square 3 dof) ones. Only markers the fusion was
   given are used.
4. **Output**: the foot point = centroid of the foot markers' lever arms, ``p_ins - dp + R_lab(t) mean_j(r_j)``,
   with the smoothed variance of ``dp`` plus the variance of the measured centroid about this rigid model (per
   phase: zero-velocity samples and the others), on the session clock at the IMU samples, frame ``lab``. Without
   markers: the IMU point in the IMU world frame, relative to its start (frame ``imu_world:<side>_foot``).
5. **Strides**: between consecutive mid-stances (lowest gyroscope norm of a rest): horizontal length of the fused
   displacement, its variance from the smoothed joint covariance of the two mid-stance states (the RTS
   cross-covariance) plus the variance of the change of the centroid's deviation from the rigid model between
   consecutive mid-stances (measured where markers saw both), speed = length / duration.
   With video and no markers, the pixel scale's relative error (SD from the stream's ``meta["scale"]``) adds
   ``sd_s**2 (x - x_c)**2`` to the image-x variance and ``sd_s**2 dx**2`` to a stride length's.
6. **Conflicts**: the shared `fusionlab.fusion._conflicts.find_conflicts` on the marker-centroid innovations, per
   axis; with two modalities both are named (``"imu|markers"``).
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
_ZUPT_MIN_S = 0.15  # zero-velocity runs shorter than this are not used


_STANCE_MERGE_S = 0.3  # rest runs closer than this belong to one stance
_ACC_ERR_FLOOR_M_PER_S2 = 0.3  # shape of the acceleration-error SD: floor ...
_ACC_ERR_PER_ACC = 0.05  # ... plus this fraction of the linear acceleration (orientation error x acceleration)
_ACC_ERR_PER_RATE_M_PER_S2 = 0.05  # ... plus this per rad/s of rotation rate (scale-factor and lever effects)
_YAW_MIN_SPAN_S = 10.0  # the heading drift is fitted only when the strides with markers span this long
_NM = 4  # measurements before the markers: zero velocity, e0, e1, e2
_BIAS_WALK_M_PER_S2 = 0.1  # starting level of the bias random walk (m/s^2 per sqrt(s))
_DIFFUSE_M_PER_S2 = 100.0  # prior SD of the white acceleration errors before their pseudo-measurement
_CONFLICT_WINDOW_S = 0.5
_CV_FOLDS = 6  # cross-validation folds of the process-noise calibration
_CV_GAP_S = (0.2, 2.0)  # lengths of the stretches each fold withholds from the available markers ...
_CV_FRACTION = 0.3  # ... covering this fraction of the time
_CV_SEED = 0  # the folds are random but reproducible
_CV_MAX_ITER = 12
_CV_MIN_SAMPLES = 200  # fewer withheld marker samples to predict: no calibration (EM levels kept)
_CV_MAX_SCALE = 100.0  # at most this multiplier: where errors do not shrink with it (not IMU errors), stop there
_CV_TOL = 0.03  # stop when (95th percentile of |z| / 1.96)**2 of every axis is within this of 1
_Z95 = 1.959964  # standard normal 97.5 % quantile
_CHI2_95_3 = 7.814728  # chi-square (3 dof) 95 % quantile
_CONFLICT_ALPHA = 1e-5  # per-window false-alarm probability of the shared conflict test
_VIDEO_MIN_VIS = 0.05  # visibility floor of the video noise model (SD = level / visibility)
_VIDEO_SD0_PX = 2.0  # starting level of the video keypoint noise at visibility 1 (px; EM fits the level)
_VIDEO_SCALE_REL_SD = 0.05  # relative SD of the pixel scale when the stream gives none (meta scale.sd_m_per_px)


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
    # a foot rests for a stance (>= 0.3 s on gaitmap's walk); shorter runs are a slow, non-rotating foot in swing
    # (gaitmap right foot, first step: 0.09 s at 1 m/s), whose zero-velocity update would stop it short
    for a0, b0 in finite_segments(zupt, 1):
        if b0 - a0 < _ZUPT_MIN_S * rate_hz:
            zupt[a0:b0] = False
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


def _unsynchronised(clocks: dict[str, Any], a: str, b: str) -> bool:
    """Whether streams on clocks ``a`` and ``b`` cannot be put on one time line: different clocks, one of which has
    no measured offset (``method == "unsynchronised"`` or an infinite offset SD)."""
    if a == b:
        return False
    for c in (a, b):
        e = clocks.get(c)
        if e is not None and (e.method == "unsynchronised" or not math.isfinite(e.offset_sd_s)):
            return True
    return False


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


def _foot_video(reader: SessionReader, side: str, imu: Stream, tg: NDArray[np.float64],
                result: FusionResult) -> dict[str, Any] | None:
    """Video heel and foot_index of one side on the IMU grid, in metres of the image plane.

    First ``video_pose`` stream with ``<side>_heel`` / ``<side>_foot_index``, 2-D data in px and a pixel scale
    (``meta["scale_m_per_px"]`` or ``meta["scale"]["m_per_px"]``). Coordinates: ``x = u * scale`` (image right),
    ``z = -v * scale`` (image up; image rows grow downwards), depth not observed (NaN); the origins are unknown
    constants (estimated later). A stream on an unsynchronised clock (``method == "unsynchronised"`` or an
    infinite offset SD) that is not the IMU's own clock is skipped with a warning (as `fuse_angles` does).
    Returns ``z`` ``(k, n, 3)``, visibility ``(k, n)`` (NaN where no frame), names, scale and stream name."""
    clocks = reader.clocks()
    for name in reader.find_streams(modality="video_pose"):
        s = reader.read_stream(name)
        lms = [f"{side}_heel", f"{side}_foot_index"]
        if s.data.ndim != 3 or s.data.shape[2] < 2 or not all(lm in s.channels for lm in lms):
            continue
        scale = s.meta.get("scale_m_per_px")
        if scale is None and isinstance(s.meta.get("scale"), dict):
            scale = s.meta["scale"].get("m_per_px")
        if scale is None or not math.isfinite(float(scale)) or float(scale) <= 0:
            result.warnings.append(f"{s.name}: no pixel scale (meta 'scale_m_per_px'); video not used for the "
                                   f"{side} foot")
            continue
        if _unsynchronised(clocks, s.clock, imu.clock):
            result.warnings.append(f"{s.name}: its clock '{s.clock}' is unsynchronised with the IMU; video not "
                                   f"fused for the {side} foot (run `fusionlab sync` on the session first)")
            continue
        scale = float(scale)
        tv = reader.to_session_time(s)
        zs, vs, names = [], [], []
        for lm in lms:
            k = s.channels.index(lm)
            uv = np.asarray(s.data[:, k, :2], dtype=np.float64)
            vis = (np.ones(tv.size) if s.confidence is None
                   else np.asarray(s.confidence, dtype=np.float64).reshape(tv.size, -1)[:, k])
            ok = np.all(np.isfinite(uv), axis=1) & np.isfinite(vis) & (vis > 0)
            xyz = np.stack([uv[:, 0] * scale, np.zeros(tv.size), -uv[:, 1] * scale], axis=1)
            xyz[~ok] = np.nan
            g = _marker_on_grid(tg, tv, xyz)
            vis_g = _marker_on_grid(tg, tv, np.stack([np.where(ok, vis, np.nan)] * 3, axis=1))[:, 0]
            g[:, 1] = np.nan
            if np.isfinite(g[:, 0]).sum() >= 20:
                zs.append(g)
                vs.append(np.clip(vis_g, _VIDEO_MIN_VIS, 1.0))
                names.append(lm)
        if zs:
            sd = s.meta["scale"].get("sd_m_per_px") if isinstance(s.meta.get("scale"), dict) else None
            rel_sd = float(sd) / scale if sd is not None and math.isfinite(float(sd)) and float(sd) > 0 else math.nan
            return {"z": np.stack(zs), "vis": np.stack(vs), "names": names, "scale": scale, "stream": s.name,
                    "scale_rel_sd": rel_sd}
    return None


def _video_levers(resid: NDArray[np.float64], R: NDArray[np.float64], seg: NDArray[np.int64],
                  axes: Sequence[int]) -> NDArray[np.float64]:
    """Least-squares lever arm ``r`` (sensor frame) of ``resid[:, a] = R[:, a, :] r + c_segment,a`` over the
    observed axes ``a`` only (per-segment means removed on both sides, as `_lever_arms`), with a weak ridge
    (1 cm) towards 0 for the direction the image plane hardly sees."""
    rows_a, rows_b = [], []
    for a in axes:
        ok = np.isfinite(resid[:, a]) & (seg >= 0)
        if ok.sum() < 20:
            continue
        e, Ra, s = resid[ok, a], R[ok, a, :], seg[ok]
        _, inv = np.unique(s, return_inverse=True)
        cnt = np.bincount(inv).astype(float)
        e_m = np.bincount(inv, e) / cnt
        R_m = np.stack([np.bincount(inv, Ra[:, j]) for j in range(3)], 1) / cnt[:, None]
        rows_a.append(Ra - R_m[inv])
        rows_b.append(e - e_m[inv])
    if not rows_a:
        return np.zeros(3)
    A, b = np.concatenate(rows_a), np.concatenate(rows_b)
    lam = math.sqrt(A.shape[0]) * 0.01 / 0.05  # prior SD 5 cm on r, data SD ~1 cm
    A = np.vstack([A, lam * np.eye(3)])
    b = np.concatenate([b, np.zeros(3)])
    return np.linalg.lstsq(A, b, rcond=None)[0]


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
              withhold: Sequence[tuple[float, float]] | None = None, n_iter: int = 10,
              calibrate: bool = True) -> FusionResult:
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
        Maximum EM iterations of the noise estimation (the process level is then re-calibrated, see ``calibrate``).
    calibrate
        Calibrate the process-noise level by cross-validation on withheld stretches of the available markers
        (docs/fusion-foot.md); False keeps the EM levels (narrower bands, under-covering in marker gaps).

    Returns
    -------
    FusionResult
        Per foot: `FusedSignal` ``foot_position_<side>`` (channels x, y, z; m; frame ``lab``; the foot-marker
        centroid) and ``stride_<side>`` (one sample per stride at its end: ``length`` m and ``speed`` m/s with
        their variances); ``meta`` holds the per-stride table, the gait speed, the heading alignment, the lever
        arms and the fitted noise. Conflicts where markers and IMU disagree (``quantity="foot_position_<side>"``,
        ``modality="imu|markers"``: with two modalities neither can be blamed).
    """
    return _fuse_foot_detail(reader, side=side, withhold=withhold, n_iter=n_iter, calibrate=calibrate)[0]


def _fuse_foot_detail(reader: SessionReader, *, side: str | None, withhold: Sequence[tuple[float, float]] | None,
                      n_iter: int, calibrate: bool = True) -> tuple[FusionResult, dict[str, dict[str, Any]]]:
    """`fuse_foot` and, per side, what validation needs: the IMU-alone trajectory (``imu_alone``, same point and
    frame as the fused one), the `NoiseFit` and the lever arms."""
    details: dict[str, dict[str, Any]] = {}
    sides = [side] if side is not None else _sides(reader)
    result = FusionResult(name="foot", algorithm=ALGORITHM,
                          parameters={"withhold": [list(map(float, w)) for w in (withhold or [])], "n_iter": n_iter,
                                      "rest_gyr_rad_s": _REST_GYR_RAD_S, "zupt_gyr_rad_s": _ZUPT_GYR_RAD_S,
                                      "zupt_lever_m": _ZUPT_LEVER_M, "calibrate": calibrate,
                                      "cv_folds": _CV_FOLDS, "cv_gap_s": list(_CV_GAP_S), "cv_fraction": _CV_FRACTION})
    inputs: list[str] = []
    for sd in sides:
        imu = _foot_imu(reader, sd)
        if imu is None:
            result.warnings.append(f"no usable {sd}_foot IMU stream (acc, gyr, regular); {sd} foot skipped")
            continue
        _fuse_one(reader, imu, sd, withhold or [], n_iter, calibrate, result, inputs, details)
    result.inputs = tuple(dict.fromkeys(inputs))
    return result, details


def _fuse_one(reader: SessionReader, imu: Stream, side: str, withhold: Sequence[tuple[float, float]], n_iter: int,
              calibrate: bool, result: FusionResult, inputs: list[str], details: dict[str, dict[str, Any]]) -> None:
    from fusionlab.fusion._kalman import kalman_smooth
    from fusionlab.fusion._noise import estimate_noise
    from fusionlab.sync._signals import _vertical

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
    if found is not None and _unsynchronised(reader.clocks(), found[0].clock, imu.clock):
        result.warnings.append(f"{found[0].name}: its clock '{found[0].clock}' is unsynchronised with the IMU "
                               f"'{imu.name}'; markers not fused for the {side} foot (run `fusionlab sync` on the "
                               "session first)")
        found = None
    marker_names: list[str] = []
    m_sd0: list[float] = []
    z_m = np.zeros((0, n, 3))
    up, flip = 2, None
    if found is not None:
        mstream, roles = found
        up, up_sign = _vertical(mstream)
        if up_sign < 0:  # the lab's vertical axis points down: fuse in the lab turned 180 deg about a horizontal axis
            flip = [up, (up + 1) % 3]
        tm = reader.to_session_time(mstream)
        keep = np.ones(tm.size, dtype=bool)
        for a, b in withhold:
            keep &= ~((tm >= a) & (tm < b))
        cols = []
        for role in ("toe", "heel", "mt5"):
            if role in roles:
                x = np.array(mstream.channel(roles[role]), dtype=np.float64)
                x[~keep] = np.nan
                if flip is not None:
                    x[:, flip] = -x[:, flip]
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
    h0 = next(i for i in range(3) if i != up)  # the horizontal axis the side camera's image x is put on
    # video heel / foot_index (image plane, m) on a synchronised clock
    video = _foot_video(reader, side, imu, tg, result)
    T = np.eye(3)  # lab -> fusion frame (a rotation about up putting the camera's image x on axis h0)
    video_meta: dict[str, Any] = {}
    if video is not None and has_markers:
        # the camera's image x in the lab: least squares video_x = a x_h0 + b x_h1 + c (the marker centroid and
        # the video foot mid-point differ by a lever; the walk's displacement dominates)
        h1 = [i for i in range(3) if i != up][1]
        cl = np.mean(z_m, axis=0)
        vx = np.mean(video["z"][:, :, 0], axis=0)
        ok = np.all(np.isfinite(cl), axis=1) & np.isfinite(vx)
        if ok.sum() >= 50:
            A = np.stack([cl[ok, h0], cl[ok, h1], np.ones(ok.sum())], axis=1)
            a_, b_, _ = np.linalg.lstsq(A, vx[ok], rcond=None)[0]
            phi = math.atan2(b_, a_)
            c_, s_ = math.cos(phi), math.sin(phi)
            T[h0, h0], T[h0, h1], T[h1, h0], T[h1, h1] = c_, s_, -s_, c_
            video_meta["image_x_in_lab_rad"] = phi
            video_meta["image_x_scale_vs_markers"] = float(math.hypot(a_, b_))
            z_m = z_m @ T.T
            perm = T @ perm
        else:
            result.warnings.append(f"{side} foot: too few common marker and video samples to place the camera in "
                                   "the lab; video not used")
            video = None

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
        if not yaw_pts:
            result.warnings.append(f"{side} foot: no stride with markers at both mid-stances; the heading of the "
                                   "IMU cannot be aligned to the lab, markers not used")
            has_markers = False
            z_m = np.zeros((0, n, 3))
            marker_names = []
            video = None  # (its placement in the lab came from the markers)
    elif video is not None:
        # no markers: the heading of the IMU world in the image plane, per stride: the IMU's horizontal
        # displacement is put on the image x axis (the camera looks perpendicular to a straight walk), its sign
        # from the video foot mid-point's displacement; checked against the video stride length (30 %)
        vx = np.mean(video["z"][:, :, 0], axis=0)[:, None]
        for i0, i1 in itertools.pairwise(mids):
            if not 0.4 <= (i1 - i0) / rate <= 3.0:
                continue
            c0 = _nearest_finite(vx, i0, int(0.05 * rate))
            c1 = _nearest_finite(vx, i1, int(0.05 * rate))
            if c0 is None or c1 is None:
                continue
            d_v = float(c1[0] - c0[0])
            d_i = p_world[i1, :2] - p_world[i0, :2]
            li = float(np.hypot(*d_i))
            if abs(d_v) < 0.3 or abs(li - abs(d_v)) > 0.3 * abs(d_v):
                continue
            yaw_pts.append((0.5 * (i0 + i1), math.atan2(-d_i[1] * np.sign(d_v), d_i[0] * np.sign(d_v))))
        if not yaw_pts:
            result.warnings.append(f"{side} foot: no stride seen by the video at both mid-stances; the heading of "
                                   "the IMU cannot be aligned to the image, video not used")
            video = None
    if yaw_pts:  # one heading fit, from the markers or from the video
        yaw_t, yaw_fit = _heading_fit(np.array([p[0] for p in yaw_pts]) / rate,
                                      np.unwrap(np.array([p[1] for p in yaw_pts])), np.arange(n) / rate)
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
    # video landmarks: lever arms on the observed axes (image x -> h0, image up -> up), constant image offsets
    n_v = 0
    pv = np.zeros((0, n, 3))
    vis = np.zeros((0, n))
    v_levers = np.zeros((0, 3))
    if video is not None:
        zv = np.full(video["z"].shape, np.nan)
        zv[:, :, h0] = video["z"][:, :, 0]
        zv[:, :, up] = video["z"][:, :, 2]
        v_levers = np.stack([_video_levers(zv[k] - p_nom, R_lab, seg, (h0, up)) for k in range(zv.shape[0])])
        pv = zv - np.einsum("tij,mj->mti", R_lab, v_levers)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            voff = np.nanmedian(np.nanmean(pv, axis=0) - p_nom, axis=0)
        voff = np.nan_to_num(voff)
        if has_markers:
            pv = pv - voff  # the image's unknown origin, relative to the marker-anchored lab frame
        else:
            # no markers: the output is in the image plane (origin: the image's, times the pixel scale)
            p_nom = p_nom + voff
            p_ins = p_ins + voff
            frame = f"video:{video['stream']}"
        n_v = pv.shape[0]
        vis = video["vis"]
        video_meta.update({"stream": video["stream"], "landmarks": video["names"], "scale_m_per_px": video["scale"],
                           "lever_arms_sensor_m": v_levers.round(5).tolist(), "image_offset_m": voff.round(5).tolist(),
                           "axes": {"image_x": int(h0), "image_up": int(up)}})
        inputs.append(video["stream"])
        # the pixel scale's error (a foot off the scale's plane is at another depth): one relative error s for the
        # record, SD from the stream (meta scale.sd_m_per_px / scale_m_per_px); not in the smoother (its
        # measurement matrix is time-invariant), added to the output variance along image x (below)
        scale_rel_sd = video["scale_rel_sd"] if math.isfinite(video["scale_rel_sd"]) else _VIDEO_SCALE_REL_SD
        video_meta["scale_rel_sd"] = scale_rel_sd
        if not math.isfinite(video["scale_rel_sd"]):
            result.warnings.append(f"{video['stream']}: no pixel-scale SD (meta scale.sd_m_per_px); "
                                   f"{_VIDEO_SCALE_REL_SD:.0%} assumed")
        if not has_markers:
            # measured on simulated walks (docs/fusion-foot.md): the vertical band is too narrow
            result.warnings.append(
                f"{side} foot: position from the IMU and video without markers: its vertical SD is UNDER-estimated "
                "(95 % band covered the truth 55 % vertically in validation; forward 100 %, the pixel-scale term "
                "being conservative there); read the vertical band as a lower bound")

    # 3. error-state Kalman smoother per axis, noise levels by EM
    dt = 1.0 / rate
    F, Q = _model(dt)
    n_m = pm.shape[0]
    # measurements: 0 zero velocity (dv); 1, 2, 3 pseudo-measurements e0 = 0 (constant SD), e1 = 0 (SD growing with
    # the foot's acceleration and rotation rate), e2 = 0 (bias walk); 4.. markers (dp)
    H = np.vstack([np.eye(6)[[1, 3, 4, 5]], np.tile(np.eye(6)[[0]], (n_m + n_v, 1))])
    z = np.full((3, n, _NM + n_m + n_v), np.nan)
    R = np.ones((3, n, _NM + n_m + n_v))
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
    v_sd0 = _VIDEO_SD0_PX * video["scale"] if video is not None else 0.0
    for k in range(n_v):
        # heteroscedastic: SD = level / visibility (EM fits the level per axis); depth axis NaN (not observed)
        z[:, :, _NM + n_m + k] = (p_ins - pv[k]).T
        R[:, :, _NM + n_m + k] = (v_sd0 / np.nan_to_num(vis[k], nan=1.0)) ** 2
    x0 = np.zeros(6)
    P0 = np.diag([1.0 if (has_markers or n_v) else 1e-8, 0.1 ** 2, 0.3 ** 2] + [_DIFFUSE_M_PER_S2 ** 2] * 3)
    fit: NoiseFit = estimate_noise(F, Q, H, z, R, x0, P0, fit_q=False, n_iter=n_iter)
    out = fit.output
    R_used = fit.R
    dp = out.x_smoothed[:, :, 0].T
    lever_c = levers.mean(axis=0) if n_m else np.zeros(3)
    base = p_ins + np.einsum("tij,j->ti", R_lab, lever_c)  # output point before the error correction
    mean = base - dp
    # the output point (marker centroid) is not rigidly fixed to the IMU (shoe flexion, marker wobble): add the
    # variance of the centroid about the rigid model, measured where every foot marker was seen
    # (per phase: zero-velocity samples and the others; the foot deforms differently in stance and in swing)
    var_point = np.zeros((n, 3))
    cen = np.mean(z_m, axis=0) if n_m else np.full((n, 3), np.nan)  # NaN where a marker is missing
    if n_m:
        seen = np.all(np.isfinite(cen), axis=1)
        if seen.sum() > 20:
            var_point[:] = np.mean((cen[seen] - mean[seen]) ** 2, axis=0)
        for phase in (zupt, ~zupt):
            if (seen & phase).sum() > 20:
                var_point[phase] = np.mean((cen[seen & phase] - mean[seen & phase]) ** 2, axis=0)
    calib: dict[str, Any] = {"process_scale": [1.0, 1.0, 1.0], "method": "none (no markers)"}
    if (n_m or n_v) and calibrate:
        # 3b. calibrate the process-noise level by cross-validation on withheld stretches of the markers (without
        # markers: of the video, whose IMU-point estimate is predicted on its observed axes, with the variance of
        # the fitted video noise)
        if n_m:
            scale, calib = _calibrate_process(F, Q, H, z, fit.R, x0, P0, base, cen, var_point, rate, n_m)
        else:
            vcols = slice(_NM, _NM + n_v)
            seen_v = np.all(np.isfinite(pv[:, :, [h0, up]]), axis=(0, 2))
            cen_v = np.where(seen_v[:, None], np.mean(pv, axis=0), np.nan)
            var_v = np.nan_to_num(np.sum(fit.R[:, :, vcols], axis=2).T / n_v ** 2)
            scale, calib = _calibrate_process(F, Q, H, z, fit.R, x0, P0, base, cen_v, var_v, rate, 0, cols=vcols)
            calib["target"] = "video keypoints (IMU-point estimate), observed axes"
        R_used = fit.R.copy()
        R_used[:, :, 1:_NM] *= scale[:, None, None]
        out = kalman_smooth(F, Q, H, z, R_used, x0, P0)
        dp = out.x_smoothed[:, :, 0].T
        mean = base - dp
    var_p = out.P_smoothed[:, :, 0, 0].T + var_point
    if n_v and not n_m:
        # the pixel scale's error (without markers, which would anchor the position): the position follows the
        # video over the walk, so a relative scale error s moves it by s (x - x_c) along image x, x_c the record's
        # centre (the image plane's origin is unknown anyway)
        x_c = float(np.median(mean[:, h0]))
        var_p[:, h0] += scale_rel_sd ** 2 * (mean[:, h0] - x_c) ** 2
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
    for k in range(n_v):
        # per observed axis: the SD at visibility 1 (m)
        for ax, lab in ((h0, "image_x"), (up, "image_up")):
            noise[f"video:{video['names'][k]}:{lab}_m_at_vis1"] = float(  # type: ignore[index]
                np.sqrt(fit.r_scale[ax, _NM + n_m + k]) * v_sd0)
    meta: dict[str, Any] = {
        "point": "centroid of the foot markers' lever arms" if has_markers else "IMU, relative to its start",
        "imu_stream": imu.name, "markers": marker_names, "lever_arms_sensor_m": levers.round(5).tolist(),
        "lever_fit_rms_m": [round(float(x), 5) for x in lever_rms],
        "yaw_alignment_rad": [[float(tg[round(k)]), float(a)] for k, a in yaw_pts], "yaw_fit": yaw_fit,
        "r_scale": np.asarray(fit.r_scale).round(6).tolist(), "converged_loglik": float(fit.loglik[-1]),
        "point_model_sd_m": {ph: np.sqrt(var_point[m].mean(0) if m.any() else np.zeros(3)).round(5).tolist()
                             for ph, m in (("stance", zupt), ("swing", ~zupt))}, "gravity_m_per_s2": g_local,
        "em_iterations": len(fit.loglik) - 1, "em_converged": bool(fit.converged),
        "zero_velocity_fraction": float(zupt.mean()),
        "process_calibration": calib,
    }
    if video is not None:
        meta["video"] = video_meta
    # markers and video: the fusion ran in the lab rotated about up (image x on axis h0); back to the lab (the
    # channels are independent, so the variances rotate with the squared entries)
    mean_out, var_out = mean @ T, var_p @ (T ** 2)
    imu_alone_lab = imu_alone @ T
    if flip is not None:  # back to the lab's own axes (the turn is its own inverse; variances unchanged)
        mean_out[:, flip] = -mean_out[:, flip]
        imu_alone_lab[:, flip] = -imu_alone_lab[:, flip]
    pos = FusedSignal(name=f"foot_position_{side}", times=tg, mean=mean_out, var=var_out, channels=("x", "y", "z"),
                      units=("m", "m", "m"), frame=frame,
                      inputs=tuple(inputs[-(1 + has_markers + (n_v > 0)):]), noise=noise, meta=meta)
    details[side] = {"imu_alone": imu_alone_lab, "fit": fit, "levers": levers, "marker_names": marker_names,
                     "video_levers": v_levers}

    # 5. strides between consecutive mid-stances
    horiz = [i for i in range(3) if i != up]
    # variance of the change of the centroid's deviation from the rigid model between consecutive mid-stances
    # (measured where the markers saw both; the foot is flat at both, so the deviations are correlated): the
    # point's share of a stride length's variance; else twice the stance variance
    var_dev = var_point[mids].sum(axis=0) / max(mids.size, 1) * 2 if mids.size else np.zeros(3)
    if n_m and mids.size > 1:
        dev = cen[mids] - mean[mids]
        dd = np.diff(dev, axis=0)
        dd = dd[np.all(np.isfinite(dd), axis=1)]
        if dd.shape[0] >= 5:
            var_dev = np.mean(dd ** 2, axis=0)
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
        # the end points' deviations from the rigid model (shoe, marker wobble)
        var_l = float(u ** 2 @ var_dev[horiz])
        var_rigid = 0.0
        for c_i, ax in enumerate(horiz):
            c = ax
            Qc = fit.Q[c] if np.ndim(fit.Q) == 3 else fit.Q
            cc = _smoothed_cross_cov(F, Qc, out.P_filtered[c], out.P_smoothed[c], int(i0), int(i1))[0, 0]
            var_ax = out.P_smoothed[c, i0, 0, 0] + out.P_smoothed[c, i1, 0, 0] - 2 * cc
            var_rigid += u[c_i] ** 2 * max(var_ax, 0.0)
        var_l += var_rigid
        if n_v and not n_m:  # the pixel scale's error: s times the stride's image-x extent
            var_l += scale_rel_sd ** 2 * float(mean[i1, h0] - mean[i0, h0]) ** 2
        strides.append({"start_s": float(tg[i0]), "end_s": float(tg[i1]), "length_m": length,
                        "length_sd_m": math.sqrt(var_l), "length_sd_rigid_m": math.sqrt(var_rigid),
                        "speed_m_per_s": length / dur,
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

    # 6. conflicts: the shared windowed test on the marker-centroid innovations (markers vs IMU prediction)
    if n_m:
        mk = slice(_NM, _NM + n_m)
        result.conflicts.extend(_conflicts(tg, out.innovation[:, :, mk], out.innovation_var[:, :, mk],
                                           R_used[:, :, mk], side))


def _cv_gaps(rng: np.random.Generator, n: int, rate: float) -> NDArray[np.bool_]:
    """Mask ``(n,)`` of random non-overlapping gaps (lengths uniform in ``_CV_GAP_S``) covering ``_CV_FRACTION``."""
    mask = np.zeros(n, dtype=bool)
    lo, hi = (max(1, round(x * rate)) for x in _CV_GAP_S)
    hi = min(hi, max(lo, n // 4))  # a short record (a few-second lab walk): gaps up to a quarter of it
    if n < 4 * hi:
        return mask
    sep = max(1, round(0.05 * rate))
    for _ in range(10_000):
        if mask.mean() >= _CV_FRACTION:
            break
        length = int(rng.integers(lo, hi + 1))
        a = int(rng.integers(0, n - length))
        if mask[max(0, a - sep):a + length + sep].any():
            continue
        mask[a:a + length] = True
    return mask


def _calibrate_process(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64],
                       z: NDArray[np.float64], R: NDArray[np.float64], x0: NDArray[np.float64],
                       P0: NDArray[np.float64], base: NDArray[np.float64], cen: NDArray[np.float64],
                       var_point: NDArray[np.float64], rate: float, n_m: int | None = None,
                       cols: slice | None = None) -> tuple[
        NDArray[np.float64], dict[str, Any]]:
    """Process-noise multiplier per lab axis, ``(3,)``, by cross-validation on the markers the fusion has.

    ``_CV_FOLDS`` folds, each withholding random stretches (``_CV_GAP_S`` long, ``_CV_FRACTION`` of the time) of
    the available markers; all folds and axes run as channels of one batched smoother. Inside the withheld
    stretches the smoother predicts the marker centroid ``cen`` (lab, NaN where not every marker was seen) with
    variance ``Ps_dp + var_point``. The multiplier ``s`` of the three process terms (the variances of the
    pseudo-measurements ``e = 0``) is iterated per axis, ``s <- s * (q95(|zeta|) / 1.96)**2``, until the 95 %
    quantile of the predictive z-scores ``zeta`` is the normal one; then one common factor (never below 1) until
    the 95 % quantile of ``sum_axes zeta**2`` is chi-square(3)'s. Quantiles, not ``mean(zeta**2) = 1``: a single
    gross error (a false zero-velocity update, a marker swap) would otherwise set the level for the whole record.
    The EM levels stay as fitted (their ratios: the shape of the process noise). ``meta["process_calibration"]``
    keeps every iteration's mean squared z-score and coverage.
    """
    from fusionlab.fusion._kalman import kalman_smooth

    C, n, _ = z.shape
    n_m = z.shape[2] - _NM if n_m is None else n_m
    cols = slice(_NM, _NM + n_m) if cols is None else cols  # the measurements each fold withholds
    rng = np.random.default_rng(_CV_SEED)
    masks = np.stack([_cv_gaps(rng, n, rate) for _ in range(_CV_FOLDS)])  # (K, n)
    K = masks.shape[0]
    zc = np.tile(z, (K, 1, 1))  # channel f * C + c
    for f in range(K):
        zc[f * C:(f + 1) * C][:, masks[f], cols] = np.nan  # markers only, video kept (no markers: the video)
    target = np.tile(cen.T, (K, 1))  # (K C, n)
    inside = np.repeat(masks, C, axis=0) & np.isfinite(target)
    base_c = np.tile(base.T, (K, 1))
    vp = np.tile(var_point.T, (K, 1))
    scale = np.ones(C)
    obs = np.isfinite(cen).any(axis=0)  # the axes the target observes (video: not the depth axis)
    chi2_95 = {3: _CHI2_95_3, 2: 5.991465, 1: _Z95 ** 2}.get(int(obs.sum()), _CHI2_95_3)
    both = inside.reshape(K, C, n)[:, obs].all(axis=1)  # (K, n): the whole target predicted (joint test)
    if both.sum() < _CV_MIN_SAMPLES:
        return scale, {"method": f"none: {int(both.sum())} withheld marker samples to predict (< {_CV_MIN_SAMPLES})",
                       "process_scale": scale.tolist(), "n_predicted": int(both.sum()), "iterations": []}
    history: list[dict[str, Any]] = []
    common = False
    # secant steps in log-log: the quantile ratio q falls with the multiplier s roughly as s**-beta (beta = 1 where
    # the process noise dominates the predictive variance, less where the point-model variance does)
    prev: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None
    prev_3d: tuple[float, float] | None = None
    for _ in range(_CV_MAX_ITER):
        Rc = np.tile(R, (K, 1, 1))
        Rc[:, :, 1:_NM] *= np.tile(scale, K)[:, None, None]
        out = kalman_smooth(F, Q, H, zc, Rc, x0, P0)
        zeta = (target - (base_c - out.x_smoothed[:, :, 0])) / np.sqrt(out.P_smoothed[:, :, 0, 0] + vp)
        za = [np.concatenate([zeta[f * C + c][inside[f * C + c]] for f in range(K)]) for c in range(C)]
        za = [x if x.size else np.zeros(1) for x in za]  # an unobserved axis: ratio 1 (it follows, see below)
        z3 = np.concatenate([np.sum(zeta[f * C:(f + 1) * C][obs][:, both[f]] ** 2, axis=0) for f in range(K)])
        # ratios to the standard normal / chi-square quantiles: 1 = calibrated
        q_axis = np.array([np.quantile(np.abs(x), 0.95) if o else _Z95 for x, o in zip(za, obs, strict=True)]
                          ) ** 2 / _Z95 ** 2
        q_3d = float(np.quantile(z3, 0.95)) / chi2_95
        history.append({"scale": scale.round(4).tolist(), "mean_z2": [round(float(np.mean(x ** 2)), 4) for x in za],
                        "coverage_axis": [round(float(np.mean(np.abs(x) <= _Z95)), 4) for x in za],
                        "coverage_3d": round(float(np.mean(z3 <= chi2_95)), 4),
                        "q95_ratio_axis": q_axis.round(4).tolist(), "q95_ratio_3d": round(q_3d, 4)})
        if not common:
            # first every axis to its own 95 % quantile ...
            capped = (scale >= _CV_MAX_SCALE * (1 - 1e-9)) & (q_axis > 1.0)
            if np.all((np.abs(q_axis - 1.0) < _CV_TOL) | capped):
                common = True
            else:
                beta = np.ones(C)
                if prev is not None:
                    ds, dq = np.log(scale / prev[0]), np.log(q_axis / prev[1])
                    beta = np.where(np.abs(ds) > 1e-6, np.clip(-dq / np.where(ds == 0, 1.0, ds), 0.1, 1.0), 1.0)
                prev = (scale.copy(), q_axis)
                scale = np.minimum(scale * np.exp(np.clip(np.log(q_axis) / beta, -3.0, 3.0)), _CV_MAX_SCALE)
                if not obs.all():  # an axis the target does not observe takes the observed axes' geometric mean
                    scale[~obs] = math.exp(float(np.mean(np.log(scale[obs]))))
                continue
        # ... then one common factor, never below that, for the 95 % quantile of the 3D statistic
        if q_3d <= 1.0 + _CV_TOL or np.all(scale >= _CV_MAX_SCALE * (1 - 1e-9)):
            break
        beta_3d = 1.0
        if prev_3d is not None and abs(math.log(scale[0] / prev_3d[0])) > 1e-6:
            beta_3d = min(max(-math.log(q_3d / prev_3d[1]) / math.log(scale[0] / prev_3d[0]), 0.1), 1.0)
        prev_3d = (float(scale[0]), q_3d)
        scale = np.minimum(scale * math.exp(min(math.log(q_3d) / beta_3d, 3.0)), _CV_MAX_SCALE)
    info = {"method": f"{K}-fold cross-validation on withheld marker stretches ({_CV_GAP_S[0]}-{_CV_GAP_S[1]} s, "
                      f"{_CV_FRACTION:.0%} of the time per fold)", "process_scale": scale.round(4).tolist(),
            "n_predicted": int(inside.sum()), "iterations": history}
    return scale, info


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
    yaw = coef[0] + (coef[1] * tt if coef.size > 1 else np.zeros_like(tt))
    return yaw, {"offset_rad": float(coef[0]), "drift_rad_per_s": float(coef[1]) if coef.size > 1 else 0.0,
                 "stride_residual_sd_rad": scale}


def _nearest_finite(x: NDArray[np.float64], i: int, half: int) -> NDArray[np.float64] | None:
    lo, hi = max(0, i - half), min(x.shape[0], i + half + 1)
    ok = np.flatnonzero(np.all(np.isfinite(x[lo:hi]), axis=1))
    if ok.size == 0:
        return None
    return x[lo + ok[np.argmin(np.abs(lo + ok - i))]]


def _conflicts(tg: NDArray[np.float64], nu: NDArray[np.float64], s: NDArray[np.float64], r: NDArray[np.float64],
               side: str) -> list[Conflict]:
    """Conflicts between the markers and the IMU, by `fusionlab.fusion._conflicts.find_conflicts` per lab axis.

    Residual per axis ``c`` and step: the filter innovation of the marker centroid, ``mean_j nu_j`` (markers minus
    the IMU-propagated prediction), variance ``H P H' + sum_j R_j / m**2`` (``H P H' = S_j - R_j``). The residual is
    one comparison of the two modalities, so it is given to both: with two modalities neither can be blamed, and
    the conflict names ``"imu|markers"``. Overlapping conflicts of the three axes are merged (strongest kept).
    """
    from fusionlab.fusion._conflicts import find_conflicts

    taken = np.isfinite(nu)
    cnt = taken.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps without a marker: NaN
        res = np.where(cnt > 0, np.nansum(np.where(taken, nu, 0.0), axis=2) / cnt, np.nan)
        hph = np.nanmean(np.where(taken, s - r, np.nan), axis=2)
        var = hph + np.where(taken, r, 0.0).sum(axis=2) / np.maximum(cnt, 1) ** 2
    var = np.where(cnt > 0, var, np.nan)
    found: list[tuple[str, Conflict]] = []
    for c, axis in enumerate("xyz"):
        for conf in find_conflicts(tg, {"imu": res[c], "markers": res[c]}, {"imu": var[c], "markers": var[c]},
                                   quantity=f"foot_position_{side}", unit="m", window_s=_CONFLICT_WINDOW_S,
                                   alpha=_CONFLICT_ALPHA, n_modalities=2,
                                   method="filter innovation of the marker centroid (markers minus the "
                                          "IMU-propagated prediction)"):
            found.append((axis, conf))
    found.sort(key=lambda a: a[1].start_s)
    merged: list[list[tuple[str, Conflict]]] = []
    for axis, conf in found:
        if merged and conf.start_s <= max(x[1].end_s for x in merged[-1]):
            merged[-1].append((axis, conf))
        else:
            merged.append([(axis, conf)])
    out = []
    for group in merged:
        best = max(group, key=lambda a: a[1].score)[1]
        evidence = {**best.evidence, "axes": sorted({a for a, _ in group}),
                    "note": "markers disagree with the IMU-propagated foot position; with two modalities the culprit "
                            "is not identifiable"}
        out.append(Conflict(start_s=min(x[1].start_s for x in group), end_s=max(x[1].end_s for x in group),
                            quantity=best.quantity, modality=best.modality, severity=best.severity,
                            score=best.score, evidence=evidence))
    return out
