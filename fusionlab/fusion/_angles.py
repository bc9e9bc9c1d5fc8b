"""Sagittal hip, knee and ankle angles per side, fused from markers, 2D video keypoints and IMU gyroscopes.

See ``docs/fusion-angles.md`` for the model, the sign conventions, the noise estimation, the conflict test and
the measured figures. In short, one channel per joint and side (all channels in one batched smoother):

    state  x = [theta, omega, alpha, b]   angle (rad), its rate (rad/s), acceleration (rad/s^2), gyro bias of the
                                          joint rate (rad/s)
    theta, omega, alpha: constant acceleration with white jerk;  b: random walk
    z = [marker angle, video angle, IMU joint rate]
        marker angle = theta + v_m                    R_m = r_m * 1
        video angle  = theta + v_v                    R_v = r_v * sum_i (1/vis_i)^2 (lever_i)^2   (per frame)
        IMU rate     = omega + b + v_g                R_g = r_g * 1

Everything is placed on one grid on the session clock (the marker times if markers are used, else the IMU's,
else the video's); a modality without a sample at a grid step is "not measured" there (NaN). The noise levels
``r_*`` and the process-noise level are fitted per channel by EM (`fusionlab.fusion.estimate_noise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.fusion._conflicts import find_conflicts
from fusionlab.fusion._kalman import KalmanOutput, kalman_smooth
from fusionlab.fusion._noise import estimate_noise
from fusionlab.fusion.base import Conflict, FusedSignal, FusionResult, NothingToFuse
from fusionlab.kinematics import sagittal_angles
from fusionlab.model import Session, Stream

__all__ = ["ANGLE_JOINTS", "ANGLE_MODALITIES", "AngleInputs", "angle_inputs", "fuse_angles"]

ANGLE_JOINTS: tuple[str, ...] = ("hip", "knee", "ankle")
ANGLE_MODALITIES: tuple[str, ...] = ("markers", "video", "imu")
SIDES: tuple[str, ...] = ("left", "right")
_MARKER_CHANNEL = {"hip": "hip_flexion", "knee": "knee_flexion", "ankle": "ankle_dorsiflexion"}
# joint rate = gyr_z(plus) - gyr_z(minus), as the angles of fusionlab.kinematics: hip = thigh (the pelvis carries no
# IMU), knee flexion = thigh - shank, ankle dorsiflexion = foot - shank (segment angles positive distal-anterior)
_IMU_SEGMENTS = {"hip": ("thigh", None), "knee": ("thigh", "shank"), "ankle": ("foot", "shank")}
# starting levels for EM (the fitted levels do not depend on them much; see docs/fusion-angles.md)
_R0_MARKERS_RAD = 0.01
_R0_VIDEO_PX = 2.0
_R0_GYRO_RAD_S = 0.03
_JERK0_RAD_S3 = 300.0
_BIAS_DRIFT_RAD_S_PER_SQRT_S = 0.003  # consumer MEMS gyroscope bias instability, used when the stream has no spec
_BIAS_SD_RAD_S = 0.03  # consumer MEMS gyroscope turn-on bias, used when the stream has no spec
# depth spread of the keypoints of a segment (lateral knee/ankle vs hip centre) relative to its length
_DEPTH_SPREAD_RATIO = 0.3
# prior of the constant 2D-video minus 3D-marker angle offset when no markers fix it (hip: minus the pelvic tilt):
# mean and RMS about it of the offsets measured on 7 shared C3D walks x 2 simulation seeds (docs/fusion-angles.md)
_OFFSET0_MEAN_RAD = {"hip": -0.17, "knee": 0.0, "ankle": 0.0}
_OFFSET0_SD_RAD = {"hip": 0.07, "knee": 0.022, "ankle": 0.035}
_MEAS = {"markers": 0, "video": 1, "imu": 2}


class AngleInputs:
    """The measurements of every channel on the common grid (built by `angle_inputs`).

    Attributes
    ----------
    times : (T,) float, s, session clock
    channels : list of ``<side>_<joint>``
    z : (C, T, 3) float; measurements [marker angle (rad), video angle (rad), IMU joint rate (rad/s)], NaN = none
    r_shape : (C, T, 3) float; relative measurement variance (heteroscedastic shape), NaN where not measured
    sources : modality -> stream names used
    video_offset : (C,) float, rad; constant subtracted from the video angle (0 without markers)
    bias_drift : float, rad/s/sqrt(s); random-walk density of the joint-rate bias
    bias_sd : float, rad/s; prior SD of the joint-rate bias
    slope_sd : (C,) float, rad/s; prior SD of the rate of the video's slowly varying (perspective) offset
    offset_sd : (C,) float, rad; prior SD of the video's constant offset (after `video_offset` is removed)
    """

    def __init__(self, times: NDArray[np.float64], channels: list[str], z: NDArray[np.float64],
                 r_shape: NDArray[np.float64], sources: dict[str, list[str]], video_offset: NDArray[np.float64],
                 bias_drift: float, warnings: list[str], bias_sd: float, slope_sd: NDArray[np.float64],
                 offset_sd: NDArray[np.float64]) -> None:
        self.times = times
        self.channels = channels
        self.z = z
        self.r_shape = r_shape
        self.sources = sources
        self.video_offset = video_offset
        self.bias_drift = bias_drift
        self.bias_sd = bias_sd
        self.slope_sd = slope_sd
        self.offset_sd = offset_sd
        self.warnings = warnings


def _streams_and_times(reader: Any) -> list[tuple[Stream, NDArray[np.float64]]]:
    """Every stream with its sample times on the session clock (a `Session` or a `SessionReader`)."""
    if isinstance(reader, Session):
        out = []
        for s in reader.streams:
            e = reader.clocks.get(s.clock)
            t = s.times()
            out.append((s, t if e is None else e.offset_s + t * (1.0 + e.drift_ppm * 1e-6)))
        return out
    streams = [reader.read_stream(n) for n in reader.stream_names]
    return [(s, reader.to_session_time(s)) for s in streams]


def _nearest_index(grid: NDArray[np.float64], t: NDArray[np.float64]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
    """Nearest grid step of each time, and whether it lies within half a step of the grid."""
    dt = float(np.median(np.diff(grid)))
    k = np.clip(np.round((t - grid[0]) / dt).astype(np.intp), 0, len(grid) - 1)
    return k, np.abs(grid[k] - t) <= 0.5 * dt + 1e-9


def _interp_gaps(grid: NDArray[np.float64], t: NDArray[np.float64], x: NDArray[np.float64],
                 max_gap_s: float) -> NDArray[np.float64]:
    """Linear interpolation of ``x(t)`` onto ``grid``; NaN outside ``t`` and across gaps longer than ``max_gap_s``."""
    ok = np.isfinite(x)
    out = np.full(len(grid), np.nan)
    if ok.sum() < 2:
        return out
    tt, xx = t[ok], x[ok]
    out = np.interp(grid, tt, xx, left=np.nan, right=np.nan)
    j = np.clip(np.searchsorted(tt, grid), 1, len(tt) - 1)
    out[(tt[j] - tt[j - 1]) > max_gap_s] = np.nan
    return out


def _segment_angle_2d(prox: NDArray[np.float64], dist: NDArray[np.float64], forward: float) -> NDArray[np.float64]:
    """Image-plane angle of the segment prox -> dist from straight down, positive when the distal end is anterior.

    Image axes: x right, y down (px); ``forward`` = +1 when the subject faces image-right, -1 when image-left.
    """
    v = dist - prox
    return np.arctan2(forward * v[:, 0], v[:, 1])


def _video_angles(s: Stream) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]]]:
    """Joint angles (rad) and their variance shapes (px^2 / px^2 = 1/vis^2 weighted, per frame) from 2D keypoints.

    Segment angle variance for a point pair (a, b) of image length L: (sd_a^2 + sd_b^2) / L^2 with sd = 1/vis
    (px noise proportional to 1/visibility; the level is fitted by EM). A point shared by two segments of a joint
    counts with the sum of its levers.
    """
    def lm(name: str) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        xy = np.asarray(s.channel(name), dtype=np.float64)
        vis = (np.asarray(s.confidence[:, s.channels.index(name)], dtype=np.float64) if s.confidence is not None
               else np.ones(len(xy)))
        vis = np.where(np.isfinite(vis), np.clip(vis, 0.05, 1.0), np.nan)
        return xy, vis

    ang: dict[str, NDArray[np.float64]] = {}
    var: dict[str, NDArray[np.float64]] = {}
    # walking direction in the image: the toes are anterior of the heels
    fwd_votes = []
    for side in SIDES:
        if f"{side}_heel" in s.channels and f"{side}_foot_index" in s.channels:
            fwd_votes.append(np.nanmedian(lm(f"{side}_foot_index")[0][:, 0] - lm(f"{side}_heel")[0][:, 0]))
    fwd_votes = [v for v in fwd_votes if np.isfinite(v)]
    forward = 1.0 if not fwd_votes or np.median(fwd_votes) >= 0 else -1.0
    for side in SIDES:
        names = {p: f"{side}_{p}" for p in ("hip", "knee", "ankle", "heel", "foot_index")}
        if not all(n in s.channels for n in names.values()):
            continue
        hip, vh = lm(names["hip"])
        knee, vk = lm(names["knee"])
        ank, va = lm(names["ankle"])
        heel, ve = lm(names["heel"])
        toe, vt = lm(names["foot_index"])
        lt = np.nanmedian(np.linalg.norm(knee - hip, axis=1))
        ls = np.nanmedian(np.linalg.norm(ank - knee, axis=1))
        lf = np.nanmedian(np.linalg.norm(toe - heel, axis=1))
        thigh = _segment_angle_2d(hip, knee, forward)
        shank = _segment_angle_2d(knee, ank, forward)
        foot = _segment_angle_2d(heel, toe, forward)
        ang[f"{side}_hip"] = thigh
        var[f"{side}_hip"] = (vh ** -2 + vk ** -2) / lt ** 2
        ang[f"{side}_knee"] = thigh - shank
        var[f"{side}_knee"] = vh ** -2 / lt ** 2 + vk ** -2 * (1 / lt + 1 / ls) ** 2 + va ** -2 / ls ** 2
        # the foot's 2D angle from straight down is 90 deg when level; dorsiflexion as in kinematics.sagittal_angles
        ang[f"{side}_ankle"] = np.unwrap(foot) - np.pi / 2 - shank
        var[f"{side}_ankle"] = (ve ** -2 + vt ** -2) / lf ** 2 + (vk ** -2 + va ** -2) / ls ** 2
    return ang, var


def _imu_gyr_z(s: Stream) -> tuple[str, NDArray[np.float64]] | None:
    """(placement, sagittal gyro rate) of an IMU stream whose sensor frame is the segment frame (z to the right)."""
    placement = str(s.meta.get("placement", ""))
    if "gyr" not in s.channels or not placement:
        return None
    if "segment frame" not in str(s.meta.get("sensor_frame", "")):
        return None
    g = np.asarray(s.channel("gyr"), dtype=np.float64)
    return placement, (g[:, 2] if g.ndim == 2 else g)


def angle_inputs(reader: Any, *, joints: Sequence[str] = ANGLE_JOINTS,
                 use: Sequence[str] = ANGLE_MODALITIES) -> AngleInputs:
    """Collect the measurements of every joint and side on a common session-clock grid (see `fuse_angles`)."""
    bad = [j for j in joints if j not in ANGLE_JOINTS] + [u for u in use if u not in ANGLE_MODALITIES]
    if bad:
        msg = (f"Invalid value for 'joints'/'use'. Allowed values are {', '.join(ANGLE_JOINTS)} and "
               f"{', '.join(ANGLE_MODALITIES)}, but got {bad} instead.")
        raise ValueError(msg)
    streams = _streams_and_times(reader)
    warnings: list[str] = []
    sources: dict[str, list[str]] = {}
    channels = [f"{side}_{j}" for side in SIDES for j in joints]
    # 1. marker angles (fusionlab.kinematics model)
    marker: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    if "markers" in use:
        for s, t in streams:
            if s.modality != "markers":
                continue
            try:
                a = sagittal_angles(s)
            except Exception as e:
                warnings.append(f"{s.name}: no marker angles ({e})")
                continue
            for ch in channels:
                side, j = ch.split("_")
                x = a.channel(f"{side}_{_MARKER_CHANNEL[j]}")
                if np.isfinite(x).any():
                    marker[ch] = (t, np.asarray(x, dtype=np.float64))
            sources["markers"] = [s.name]
            break
    # 2. video angles
    video: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = {}
    view_rate, t_centre = 0.0, math.nan
    if "video" in use:
        for s, t in streams:
            if s.modality != "video_pose" or s.data.ndim != 3 or "left_knee" not in s.channels:
                continue
            ang, var = _video_angles(s)
            view_rate, t_centre = _view_rate(s, t)
            for ch in channels:
                if ch in ang:
                    video[ch] = (t, ang[ch], var[ch])
            sources["video"] = [s.name]
            break
    # 3. IMU joint rates
    gyro: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    drift: list[float] = []
    bias0: list[float] = []
    if "imu" in use:
        for s, t in streams:
            if s.modality != "imu":
                continue
            got = _imu_gyr_z(s)
            if got is None:
                warnings.append(f"{s.name}: IMU without a known segment-aligned sensor frame, not used")
                continue
            gyro[got[0]] = (t, got[1])
            sources.setdefault("imu", []).append(s.name)
            spec = s.meta.get("noise") or {}
            if spec.get("gyr_drift_rad_s_per_sqrt_s") is not None:
                drift.append(float(spec["gyr_drift_rad_s_per_sqrt_s"]))
            if spec.get("gyr_bias_sd_rad_s") is not None:
                bias0.append(float(spec["gyr_bias_sd_rad_s"]))
    # 4. the grid
    if marker:
        t_ref = next(iter(marker.values()))[0]
    elif gyro:
        t_ref = next(iter(gyro.values()))[0]
    elif video:
        t_ref = next(iter(video.values()))[0]
    else:
        msg = "fuse_angles: the session has no usable markers, video keypoints or segment IMUs."
        raise NothingToFuse(msg)
    dt = float(np.median(np.diff(t_ref)))
    grid = t_ref[0] + dt * np.arange(round((t_ref[-1] - t_ref[0]) / dt) + 1)
    C, T = len(channels), len(grid)
    z = np.full((C, T, 3), np.nan)
    r = np.full((C, T, 3), np.nan)
    offset = np.zeros(C)
    for c, ch in enumerate(channels):
        side, j = ch.split("_")
        if ch in marker:
            tm, xm = marker[ch]
            k, inside = _nearest_index(grid, tm)
            z[c, k[inside], 0] = xm[inside]
            r[c, k[inside], 0] = _R0_MARKERS_RAD ** 2
        if ch in video:
            tv, xv, vv = video[ch]
            k, inside = _nearest_index(grid, tv)
            keep = inside & np.isfinite(xv) & np.isfinite(vv)
            z[c, k[keep], 1] = xv[keep]
            r[c, k[keep], 1] = vv[keep] * _R0_VIDEO_PX ** 2
        dist, prox = _IMU_SEGMENTS[j]
        if f"{side}_{dist}" in gyro and (prox is None or f"{side}_{prox}" in gyro):
            tg, gd = gyro[f"{side}_{dist}"]
            rate = _interp_gaps(grid, tg, gd, 3 * dt)
            if prox is not None:
                tp, gp = gyro[f"{side}_{prox}"]
                rate = rate - _interp_gaps(grid, tp, gp, 3 * dt)
            z[c, :, 2] = rate
            r[c, np.isfinite(rate), 2] = _R0_GYRO_RAD_S ** 2
        # a constant offset between the 2D video angle and the 3D marker angle (projection, pelvis tilt for the
        # hip): the median difference where both exist; without markers the video defines the angle's zero
        both = np.isfinite(z[c, :, 0]) & np.isfinite(z[c, :, 1])
        if both.sum() >= 10:
            offset[c] = float(np.median(z[c, both, 1] - z[c, both, 0]))
            z[c, :, 1] -= offset[c]
    bias_drift = float(np.sqrt(2.0) * max(drift)) if drift else _BIAS_DRIFT_RAD_S_PER_SQRT_S
    bias_sd = float(np.sqrt(2.0) * max(bias0)) if bias0 else _BIAS_SD_RAD_S
    # the video's perspective offset drifts at about (keypoint depth spread / segment length) x (the subject's
    # angular speed seen from the camera); see docs/fusion-angles.md
    slope_sd = np.full(C, _DEPTH_SPREAD_RATIO * view_rate)
    with_markers = np.array([np.isfinite(z[c, :, 0]).any() for c in range(C)])
    offset_sd = np.array([_OFFSET0_SD_RAD[ch.split("_")[1]] for ch in channels])
    offset_sd = np.where(with_markers, _OFFSET0_SD_RAD["knee"], offset_sd)
    offset_mean = np.array([0.0 if with_markers[c] else _OFFSET0_MEAN_RAD[ch.split("_")[1]]
                            for c, ch in enumerate(channels)])
    inp = AngleInputs(grid, channels, z, r, sources, offset, bias_drift, warnings, bias_sd, slope_sd, offset_sd)
    inp.t_centre = t_centre if math.isfinite(t_centre) else float(grid[0])
    inp.offset_mean = offset_mean
    return inp


def _view_rate(s: Stream, t: NDArray[np.float64]) -> tuple[float, float]:
    """Angular speed (rad/s) of the hips' midpoint seen from the camera, and when (session s) it crosses the
    optical axis (where the perspective offset is zero): a straight line fitted to its image x (px) over time.

    The focal length and image centre come from the stream's ``meta["camera"]`` (``focal_px``, ``width_px``);
    without them the image width is taken as the focal length (53 deg field of view) and the middle of the
    hips' image path as the centre."""
    if "left_hip" not in s.channels or "right_hip" not in s.channels or len(t) < 3:
        return 0.0, float(t[0]) if len(t) else 0.0
    u = 0.5 * (np.asarray(s.channel("left_hip"))[:, 0] + np.asarray(s.channel("right_hip"))[:, 0])
    ok = np.isfinite(u)
    if ok.sum() < 3:
        return 0.0, float(t[0])
    cam = s.meta.get("camera") or {}
    f_px = float(cam.get("focal_px") or cam.get("width_px") or np.nanmax(u))
    c_px = 0.5 * float(cam["width_px"]) if cam.get("width_px") else 0.5 * float(np.nanmin(u) + np.nanmax(u))
    slope, icpt = np.polyfit(t[ok], u[ok], 1)
    t_c = float((c_px - icpt) / slope) if abs(slope) > 1e-9 else float(np.median(t[ok]))
    return abs(float(slope)) / f_px, t_c


def _model(dt: float, bias_drift: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """F, Q (shape), H of the state [theta, omega, alpha, b, o, o_rate] (o: the video's offset)."""
    F = np.eye(6)
    F[0, 1], F[0, 2], F[1, 2] = dt, dt * dt / 2, dt
    F[4, 5] = dt  # o[k] = o[k-1] + dt o_rate
    # white jerk of density q (Bar-Shalom): Q = q [[dt^5/20, dt^4/8, dt^3/6], [dt^4/8, dt^3/3, dt^2/2], [.., dt]]
    qa = np.array([[dt ** 5 / 20, dt ** 4 / 8, dt ** 3 / 6], [dt ** 4 / 8, dt ** 3 / 3, dt ** 2 / 2],
                   [dt ** 3 / 6, dt ** 2 / 2, dt]])
    Q = np.zeros((6, 6))
    Q[:3, :3] = _JERK0_RAD_S3 ** 2 * qa
    Q[3, 3] = bias_drift ** 2 * dt  # bias random walk
    H = np.array([[1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 1.0, 0], [0, 1.0, 0, 1.0, 0, 0]])
    return F, Q, H


def _prior(inp: AngleInputs) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    z = inp.z
    C = z.shape[0]
    x0 = np.zeros((C, 6))
    for c in range(C):
        a = z[c, :, 0] if np.isfinite(z[c, :, 0]).any() else z[c, :, 1]
        ok = np.isfinite(a)
        x0[c, 0] = a[ok][0] if ok.any() else 0.0
        x0[c, 4] = inp.offset_mean[c]
    P0 = np.zeros((C, 6, 6))
    # the video offset o(t) = c + o_rate (t - t_centre): zero-mean c and o_rate, so at the first step
    # var o = sd_c^2 + sd_rate^2 lag^2, cov(o, o_rate) = sd_rate^2 lag with lag = t0 - t_centre
    lag = float(inp.times[0] - inp.t_centre)
    for c in range(C):
        # 57 deg, 3 rad/s, 30 rad/s^2 (uninformative), the bias, the video offset and its rate from their priors
        sr2 = max(inp.slope_sd[c], 1e-6) ** 2
        P0[c] = np.diag([1.0, 10.0, 1000.0, inp.bias_sd ** 2, inp.offset_sd[c] ** 2 + sr2 * lag ** 2, sr2])
        P0[c, 4, 5] = P0[c, 5, 4] = sr2 * lag
    return x0, P0


def _smooth_without(F, Q, H, z, R, x0, P0, drop: int) -> KalmanOutput:
    z2 = z.copy()
    z2[:, :, drop] = np.nan
    return kalman_smooth(F, Q, H, z2, R, x0, P0)


def _local_level(t: NDArray[np.float64], d: NDArray[np.float64], ref_s: float, gap_s: float) -> NDArray[np.float64]:
    """Median of ``d`` over the reference period ``[t - gap_s - ref_s, t - gap_s)`` before each step (the period
    after the step where nothing precedes it): the slowly varying nuisance level a change is measured against."""
    out = np.full(len(t), np.nan)
    ok = np.isfinite(d)
    if ok.sum() < 5:
        return out
    tt, dd = t[ok], d[ok]
    for k in range(len(t)):
        a = np.searchsorted(tt, t[k] - gap_s - ref_s)
        b = np.searchsorted(tt, t[k] - gap_s)
        if b - a < 5:
            a = np.searchsorted(tt, t[k] + gap_s)
            b = np.searchsorted(tt, t[k] + gap_s + ref_s)
        if b - a >= 5:
            out[k] = np.median(dd[a:b])
    return out


def _conflicts(inp: AngleInputs, F, Q, H, z, R, x0, P0, full: KalmanOutput, *,
               window_s: float, alpha: float) -> list[Conflict]:
    """Leave-one-out residuals per modality and channel, then `find_conflicts` (docs/fusion-angles.md)."""
    t = inp.times
    present = [m for m in ANGLE_MODALITIES if np.isfinite(z[:, :, _MEAS[m]]).any()]
    if len(present) < 2:
        return []
    loo = {m: _smooth_without(F, Q, H, z, R, x0, P0, _MEAS[m]) for m in present}
    alone: dict[str, KalmanOutput] = {}
    if len(present) >= 3:
        for m in ("markers", "video"):
            z1 = np.full_like(z, np.nan)
            z1[:, :, _MEAS[m]] = z[:, :, _MEAS[m]]
            alone[m] = kalman_smooth(F, Q, H, z1, R, x0, P0)
    out: list[Conflict] = []
    for c, ch in enumerate(inp.channels):
        side, joint = ch.split("_")
        here = [m for m in present if np.isfinite(z[c, :, _MEAS[m]]).any()]
        if len(here) < 2:
            continue
        res: dict[str, NDArray[np.float64]] = {}
        var: dict[str, NDArray[np.float64]] = {}
        for m in here:
            j = _MEAS[m]
            others = [o for o in here if o != m]
            xs, Ps = loo[m].x_smoothed[c], loo[m].P_smoothed[c]
            if m == "imu":
                # the joint-rate bias is seen only through the IMU: the rate of the others, and the bias level of
                # the 2.5 s before (the nuisance level a change is measured against)
                d = z[c, :, 2] - xs[:, 1]
                res[m] = d - _local_level(t, d, 2.0, window_s)
                var[m] = R[c, :, 2] + Ps[:, 1, 1]
            elif any(o in ("markers", "video") for o in others):
                res[m] = z[c, :, j] - xs[:, 0]
                var[m] = R[c, :, j] + Ps[:, 0, 0]
            else:
                # the others measure only the rate: the angle's level is not known without m; use m's own
                # innovation in the full filter (one-step prediction error), as the NIS of m
                res[m] = full.innovation[c, :, j]
                var[m] = full.innovation_var[c, :, j]
        pairs: dict[tuple[str, str], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        if len(here) >= 3:
            for a_mod, b_mod in (("video", "markers"), ("imu", "markers"), ("imu", "video")):
                xs, Ps = alone[b_mod].x_smoothed[c], alone[b_mod].P_smoothed[c]
                if a_mod == "imu":
                    d = z[c, :, 2] - xs[:, 1]
                    pairs[(a_mod, b_mod)] = (d - _local_level(t, d, 2.0, window_s), R[c, :, 2] + Ps[:, 1, 1])
                else:
                    pairs[(a_mod, b_mod)] = (z[c, :, 1] - xs[:, 0], R[c, :, 1] + Ps[:, 0, 0])
        out += find_conflicts(t, res, var, quantity=f"{joint}_angle_{side}", unit="rad (imu: rad/s)",
                              window_s=window_s, alpha=alpha, n_modalities=len(here), pairs=pairs)
    return out


def fuse_angles(reader: Any, *, joints: Sequence[str] = ANGLE_JOINTS, use: Sequence[str] = ANGLE_MODALITIES,
                window_s: float = 0.5, alpha: float = 1e-5, conflicts: bool = True,
                n_iter: int = 30) -> FusionResult:
    """Fused sagittal hip flexion, knee flexion and ankle dorsiflexion of both legs, with variances and conflicts.

    Parameters
    ----------
    reader
        A `fusionlab.persist.SessionReader` (open session file) or an in-memory `fusionlab.model.Session`.
        Stream times are mapped to the session clock through the stored clock entries.
    joints
        Any of ``"hip"``, ``"knee"``, ``"ankle"``.
    use
        Modalities to fuse: ``"markers"`` (angles from the markers, `fusionlab.kinematics.sagittal_angles`),
        ``"video"`` (2D angles from the first ``video_pose`` stream), ``"imu"`` (joint rate from the sagittal
        gyroscope axes of segment IMUs). Those the session lacks are skipped.
    window_s, alpha
        Conflict test: window length (s) and per-window false-alarm probability.
    conflicts
        Run the conflict test (one extra smoother pass per modality).
    n_iter
        At most this many EM iterations for the noise levels.

    Returns
    -------
    FusionResult
        ``signals``: one `FusedSignal` per joint (``hip_angle``, ``knee_angle``, ``ankle_angle``), channels
        ``left_<joint>``, ``right_<joint>``, rad, on the session clock; ``noise``: fitted measurement SD per
        modality (rad; IMU rad/s), mean over the two sides. ``conflicts``: `Conflict` per window and channel.
    """
    try:
        inp = angle_inputs(reader, joints=joints, use=use)
    except NothingToFuse as e:
        return FusionResult(name="angles", algorithm="fusionlab.fusion.fuse_angles", warnings=[str(e)])
    t = inp.times
    dt = float(np.median(np.diff(t)))
    F, Q, H = _model(dt, inp.bias_drift)
    z, r0 = inp.z, inp.r_shape
    x0, P0 = _prior(inp)
    r_shape = np.where(np.isfinite(r0), r0, 1.0)
    fit = estimate_noise(F, Q, H, z, r_shape, x0, P0, fit_q=True, n_iter=n_iter)
    out = fit.output
    C = len(inp.channels)
    Qf = fit.Q
    result = FusionResult(name="angles", algorithm="fusionlab.fusion.fuse_angles",
                          parameters={"joints": list(joints), "use": list(use), "window_s": window_s,
                                      "alpha": alpha, "n_iter": n_iter, "state": ["theta", "omega", "alpha", "b"],
                                      "grid_dt_s": dt},
                          inputs=tuple(n for m in ANGLE_MODALITIES for n in inp.sources.get(m, [])),
                          warnings=list(inp.warnings))
    # measurement SD per channel: markers and IMU homoscedastic; video: at the median visibility shape
    sd = np.full((C, 3), np.nan)
    for c in range(C):
        for j in range(3):
            taken = np.isfinite(z[c, :, j])
            if taken.any():
                sd[c, j] = math.sqrt(float(np.median(fit.R[c, taken, j])))
    for joint in joints:
        idx = [inp.channels.index(f"{side}_{joint}") for side in SIDES]
        noise = {m: float(np.nanmean(sd[idx, _MEAS[m]])) for m in ANGLE_MODALITIES
                 if np.isfinite(sd[idx, _MEAS[m]]).any()}
        used = tuple(m for m in ANGLE_MODALITIES if np.isfinite(z[idx][:, :, _MEAS[m]]).any())
        result.signals.append(FusedSignal(
            name=f"{joint}_angle", times=t, mean=out.x_smoothed[idx, :, 0].T, var=out.P_smoothed[idx, :, 0, 0].T,
            channels=tuple(f"{side}_{joint}" for side in SIDES), units=("rad", "rad"), frame="joint:sagittal",
            inputs=used, noise=noise,
            meta={"noise_per_channel": {inp.channels[c]: {m: float(sd[c, _MEAS[m]]) for m in used} for c in idx},
                  "video_offset_rad": {inp.channels[c]: float(inp.video_offset[c]) for c in idx},
                  "q_scale": {inp.channels[c]: float(fit.q_scale[c]) for c in idx},
                  "jerk_sd_rad_s3": {inp.channels[c]: float(math.sqrt(Qf[c, 2, 2] / dt)) for c in idx},
                  "em_converged": bool(fit.converged), "em_iterations": len(fit.loglik) - 1}))
    if conflicts:
        result.conflicts = _conflicts(inp, F, Qf, H, z, fit.R, x0, P0, out, window_s=window_s, alpha=alpha)
    result.parameters["noise"] = {m: float(np.nanmean(sd[:, _MEAS[m]])) for m in ANGLE_MODALITIES
                                  if np.isfinite(sd[:, _MEAS[m]]).any()}
    return result
