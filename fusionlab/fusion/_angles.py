"""Sagittal hip, knee and ankle angles per side, fused from markers, 2D video keypoints and segment IMUs.

See ``docs/fusion-angles.md`` for the model, the sign conventions, the noise estimation, the conflict test and
the measured figures. In short, one channel per joint and side (all channels in one batched smoother):

    state  x = [theta, omega, alpha, b]   angle (rad), its rate (rad/s), acceleration (rad/s^2), gyro bias of the
                                          joint rate (rad/s)
    theta, omega, alpha: constant acceleration with white jerk whose level varies over the gait cycle (EM with a
                         slowly varying level, `_local_jerk`: swing has several times the jerk of stance);
                         b: random walk
    z = [marker angle, video angle, IMU joint rate, IMU inclination difference]
        marker angle = theta + v_m                    R_m = r_m * 1
        video angle  = theta + o + v_v                R_v = r_v * sum_i (1/vis_i)^2 (lever_i)^2   (per frame)
                                                          + n_seg (0.3 tan phi)^2 (off-axis, unfitted: `_off_axis`)
        IMU rate     = omega + b + v_g                R_g = r_g * 1
        IMU incl.    = theta + v_a                    R_a = r_a * (1 + k_dyn * sum_seg | |f_seg| - g | / g)^2
                       (accelerometer tilt to gravity of the distal minus the proximal segment, every 0.1 s)

Everything is placed on one grid on the session clock (the marker times if markers are used, else the IMU's,
else the video's); a modality without a sample at a grid step is "not measured" there (NaN). The noise levels
``r_*`` and the process-noise level are fitted per channel by EM (`fusionlab.fusion.estimate_noise`), bounded
below by a documented noise floor per measurement (`NOISE_FLOOR`), refitted once with the windows flagged as
conflicts left out (so that a fault does not inflate the fitted noise of its modality).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scipy import stats

from fusionlab.fusion._conflicts import (WindowFlag, autocorrelation, effective_dof, find_conflicts,
                                         merge_windows, slope_change_flags, span_p_value)
from fusionlab.fusion._kalman import KalmanOutput, kalman_smooth
from fusionlab.fusion._noise import estimate_noise
from fusionlab.fusion.base import Conflict, FusedSignal, FusionResult, NothingToFuse
from fusionlab.kinematics import sagittal_angles
from fusionlab.model import Session, Stream

__all__ = ["ANGLE_JOINTS", "ANGLE_MODALITIES", "NOISE_FLOOR", "AngleInputs", "angle_inputs", "fuse_angles"]

ANGLE_JOINTS: tuple[str, ...] = ("hip", "knee", "ankle")
ANGLE_MODALITIES: tuple[str, ...] = ("markers", "video", "imu")
SIDES: tuple[str, ...] = ("left", "right")
_MARKER_CHANNEL = {"hip": "hip_flexion", "knee": "knee_flexion", "ankle": "ankle_dorsiflexion"}
# joint rate = gyr_z(plus) - gyr_z(minus), as the angles of fusionlab.kinematics: knee flexion = thigh - shank,
# ankle dorsiflexion = foot - shank (segment angles positive distal-anterior). The hip gets no IMU: without a pelvis
# IMU the thigh's rate and tilt include the pelvis' own sagittal rotation (+-3 deg per stride, not modelled)
_IMU_SEGMENTS = {"knee": ("thigh", "shank"), "ankle": ("foot", "shank")}
GRAVITY_MS2 = 9.80665
_R0_INCL_RAD = 0.1
# the accelerometer's tilt error grows with the segment's own acceleration: SD shape 1 + k | |f| - g | / g
_INCL_DYN_GAIN = 3.0
_INCL_EVERY_S = 0.1  # tilt taken every 0.1 s: its error (the segment's acceleration) is correlated over ~0.1 s
# lower bounds of the fitted measurement SDs (rad; IMU rate rad/s), see docs/fusion-angles.md "Noise floors":
# markers: soft-tissue artefact and marker placement, knee flexion (Leardini et al. 2005; Benoit et al. 2006);
# video: 2D pose-estimation sagittal angles vs 3D motion capture (Stenum et al. 2021, 3-7 deg mean abs. errors);
# IMU rate: two consumer MEMS gyroscopes' white noise at 100 Hz; IMU tilt: sensor-to-segment alignment and
# accelerometer bias (Picerno 2017 review)
NOISE_FLOOR: dict[str, float] = {"markers": math.radians(1.0), "video": math.radians(2.0), "imu_rate": 0.003,
                                 "imu_incl": math.radians(1.0)}
_FLOOR_ROWS = (NOISE_FLOOR["markers"], NOISE_FLOOR["video"], NOISE_FLOOR["imu_rate"], NOISE_FLOOR["imu_incl"])
_ANGLE_FLOOR_ROWS: dict[int, float] = {0: NOISE_FLOOR["markers"], 1: NOISE_FLOOR["video"], 3: NOISE_FLOOR["imu_incl"]}
# the gyro bias-step test (`_bias_step_flags`): reference before each candidate change time (s; at most, at
# least), how far after it the prediction is tested (s), candidate spacing (s)
_BIAS_REF_S = 2.0
_BIAS_MIN_REF_S = 1.0
_BIAS_HORIZON_S = 0.5
_BIAS_STEP_S = 0.05
_MIN_CLOCK_ERROR_S = 0.010  # a fitted lag below this is not reported (a third of a 30 fps frame)
_OUTLIER_SD = 4.0  # residuals beyond this many robust SDs are left out of the second noise fit
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
# time-varying jerk level (`_local_jerk`): centred window of the local EM average (s), passes, and the prior
# width of the jerk state relative to its largest level (numerical only)
_JERK_WINDOW_S = 0.2
_JERK_ITER = 3
_U_WIDE = 1e6
# a fused angle is an estimate only where its 95 % band is narrower than the joint's whole range of motion (AAOS
# normal ranges, Greene & Heckman 1994: hip 120 deg flexion + 30 deg extension, knee 135 deg flexion, ankle 20 deg
# dorsiflexion + 50 deg plantarflexion): wider, it says nothing about the posture (the smoother has extrapolated
# beyond what the data bridge, e.g. at the recording's edges or across long marker gaps): NaN, with a note
_RANGE_OF_MOTION_RAD = {"hip": math.radians(150.0), "knee": math.radians(135.0), "ankle": math.radians(70.0)}
_BAND_Z = float(stats.norm.ppf(0.975))  # half-width of the 95 % band in SD
_MEAS: dict[str, tuple[int, ...]] = {"markers": (0,), "video": (1,), "imu": (2, 3)}
# rows that measure the angle itself, with the floor of their error that does not average out (NOISE_FLOOR)
_ROW_NAME = ("markers", "video", "imu", "imu:tilt")  # residual series names in the conflict test


class AngleInputs:
    """The measurements of every channel on the common grid (built by `angle_inputs`).

    Attributes
    ----------
    times : (T,) float, s, session clock
    channels : list of ``<side>_<joint>``
    z : (C, T, 4) float; measurements [marker angle (rad), video angle (rad), IMU joint rate (rad/s), IMU
        inclination difference (rad)], NaN = none
    r_shape : (C, T, 4) float; relative measurement variance (heteroscedastic shape), NaN where not measured
    sources : modality -> stream names used
    video_offset : (C,) float, rad; constant subtracted from the video angle (0 without markers)
    bias_drift : float, rad/s/sqrt(s); random-walk density of the joint-rate bias
    bias_sd : float, rad/s; prior SD of the joint-rate bias
    slope_sd : (C,) float, rad/s; prior SD of the rate of the video's slowly varying (perspective) offset
    offset_sd : (C,) float, rad; prior SD of the video's constant offset (after `video_offset` is removed)
    gyro_xy : (C, T, 4) float, rad/s; the gyroscopes' x and y axes (distal, then proximal segment), NaN = none:
        nuisance regressors of the bias-step test (`_bias_step_flags`), not fused (set by `angle_inputs`)
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


_STREAM_MODALITY = {"markers": "markers", "video": "video_pose", "imu": "imu"}


def _synchronised(reader: Any, streams: list[tuple[Stream, NDArray[np.float64]]], use: Sequence[str],
                  warnings: list[str]) -> list[tuple[Stream, NDArray[np.float64]]]:
    """The streams whose times can be put on one clock: a stream whose clock entry is ``unsynchronised`` (or has
    an infinite offset SD) is left out, with a warning naming it, unless it shares the clock of the time base.

    The time base is the session's synchronised clocks; when none of the candidate streams has one (e.g. a single
    C3D file, all of whose streams share one unsynchronised file clock), the clock of the first stream in the
    order markers, IMU, video (the grid's order) is used as the common base."""
    clocks = reader.clocks if isinstance(reader, Session) else reader.clocks()
    order = [_STREAM_MODALITY[m] for m in ("markers", "imu", "video") if m in use]
    cands = [(s, t) for s, t in streams if s.modality in order]

    def unsynced(s: Stream) -> bool:
        e = clocks.get(s.clock)
        return e is not None and (e.method == "unsynchronised" or not math.isfinite(e.offset_sd_s))

    if not any(unsynced(s) for s, _ in cands):
        return streams
    base: set[str] = {s.clock for s, _ in cands if not unsynced(s)}
    if not base:
        first = min(cands, key=lambda st: order.index(st[0].modality))[0]
        base = {first.clock}
    out = []
    for s, t in streams:
        if s.modality in order and unsynced(s) and s.clock not in base:
            warnings.append(f"{s.name}: its clock '{s.clock}' is unsynchronised with the other streams; not fused "
                            f"(run `fusionlab sync` on the session first)")
            continue
        out.append((s, t))
    return out


def _finite_median(x: NDArray[np.float64]) -> float:
    """Median of the finite values of ``x``; NaN when there are none (no "All-NaN slice" warning)."""
    x = np.asarray(x, dtype=np.float64)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


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
            fwd_votes.append(_finite_median(lm(f"{side}_foot_index")[0][:, 0] - lm(f"{side}_heel")[0][:, 0]))
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
        lt = _finite_median(np.linalg.norm(knee - hip, axis=1))
        ls = _finite_median(np.linalg.norm(ank - knee, axis=1))
        lf = _finite_median(np.linalg.norm(toe - heel, axis=1))
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


def _imu_segment(s: Stream) -> tuple[str, NDArray[np.float64], NDArray[np.float64], NDArray[np.float64],
                                     NDArray[np.float64]] | None:
    """(placement, sagittal gyro rate (rad/s), sagittal tilt (rad), dynamic ratio | |f| - g | / g, the other two
    gyro axes ``(n, 2)`` (x, y; rad/s; NaN for a one-axis gyro)) of an IMU stream whose sensor frame is the segment
    frame (x anterior, y proximal (foot: up), z to the right).

    Tilt from the specific force f (sensor frame): at rest f = g up, so the segment angle from straight down
    (positive distal-anterior; foot: pitch from level, toe up positive) is ``atan2(f_x, f_y)``. NaN without ``acc``.
    """
    placement = str(s.meta.get("placement", ""))
    if "gyr" not in s.channels or not placement:
        return None
    if "segment frame" not in str(s.meta.get("sensor_frame", "")):
        return None
    g = np.asarray(s.channel("gyr"), dtype=np.float64)
    gz = g[:, 2] if g.ndim == 2 else g
    gxy = g[:, :2] if g.ndim == 2 and g.shape[1] == 3 else np.full((len(gz), 2), np.nan)
    tilt = np.full(len(gz), np.nan)
    dyn = np.full(len(gz), np.nan)
    if "acc" in s.channels:
        a = np.asarray(s.channel("acc"), dtype=np.float64)
        if a.ndim == 2 and a.shape[1] == 3:
            tilt = np.arctan2(a[:, 0], a[:, 1])
            dyn = np.abs(np.linalg.norm(a, axis=1) - GRAVITY_MS2) / GRAVITY_MS2
    return placement, gz, tilt, dyn, gxy


def angle_inputs(reader: Any, *, joints: Sequence[str] = ANGLE_JOINTS,
                 use: Sequence[str] = ANGLE_MODALITIES) -> AngleInputs:
    """Collect the measurements of every joint and side on a common session-clock grid (see `fuse_angles`)."""
    bad = [j for j in joints if j not in ANGLE_JOINTS] + [u for u in use if u not in ANGLE_MODALITIES]
    if bad:
        msg = (f"Invalid value for 'joints'/'use'. Allowed values are {', '.join(ANGLE_JOINTS)} and "
               f"{', '.join(ANGLE_MODALITIES)}, but got {bad} instead.")
        raise ValueError(msg)
    warnings: list[str] = []
    streams = _synchronised(reader, _streams_and_times(reader), use, warnings)
    refs: set[str] = set()
    clocks_of: dict[str, set[str]] = {}
    sources: dict[str, list[str]] = {}
    channels = [f"{side}_{j}" for side in SIDES for j in joints]
    # 1. marker angles (fusionlab.kinematics model)
    marker: dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
    marker_not_body: dict[str, tuple[NDArray[np.float64], NDArray[np.bool_]]] = {}
    if "markers" in use:
        for s, t in streams:
            if s.modality != "markers":
                continue
            try:
                a = sagittal_angles(s)
            except Exception as e:
                warnings.append(f"{s.name}: no marker angles ({e})")
                continue
            warnings.extend(a.meta.get("warnings", []))  # e.g. frames whose markers are not a body (NaN)
            # the frames whose angle exists only without the body check (`kinematics.body_frames`): corrupt markers
            raw = sagittal_angles(s, check_body=False) if a.meta.get("unusable_frames") else a
            for ch in channels:
                side, j = ch.split("_")
                x = a.channel(f"{side}_{_MARKER_CHANNEL[j]}")
                not_body = np.isfinite(raw.channel(f"{side}_{_MARKER_CHANNEL[j]}")) & ~np.isfinite(x)
                if not_body.any():
                    marker_not_body[ch] = (t, not_body)
                if np.isfinite(x).any():
                    marker[ch] = (t, np.asarray(x, dtype=np.float64))
            sources["markers"] = [s.name]
            clocks_of["markers"] = {s.clock}
            if _on_reference_clock(reader, s):
                refs.add("markers")
            break
    # 2. video angles
    video: dict[str, tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]] = {}
    view_rate, t_centre = 0.0, math.nan
    if "video" in use:
        for s, t in streams:
            if s.modality != "video_pose" or s.data.ndim != 3 or "left_knee" not in s.channels:
                continue
            ang, var = _video_angles(s)
            view_rate, t_centre = _view_rate(s, t)
            tan_off = _off_axis(s)
            for ch in channels:
                if ch in ang:
                    # per-frame perspective error beyond the offset line (see `_off_axis`): one segment for the
                    # hip, two for the knee and ankle
                    n_seg = 1.0 if ch.endswith("_hip") else 2.0
                    persp = n_seg * (_DEPTH_SPREAD_RATIO * tan_off) ** 2
                    video[ch] = (t, ang[ch], var[ch], persp)
            sources["video"] = [s.name]
            clocks_of["video"] = {s.clock}
            if _on_reference_clock(reader, s):
                refs.add("video")
            break
    # 3. IMU joint rates and tilts
    gyro: dict[str, tuple[NDArray[np.float64], ...]] = {}
    drift: list[float] = []
    bias0: list[float] = []
    if "imu" in use:
        for s, t in streams:
            if s.modality != "imu":
                continue
            got = _imu_segment(s)
            if got is None:
                warnings.append(f"{s.name}: IMU without a known segment-aligned sensor frame, not used")
                continue
            gyro[got[0]] = (t, *got[1:])
            if _on_reference_clock(reader, s):
                refs.add("imu")
            sources.setdefault("imu", []).append(s.name)
            clocks_of.setdefault("imu", set()).add(s.clock)
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
    z = np.full((C, T, 4), np.nan)
    r = np.full((C, T, 4), np.nan)
    # the gyroscopes' other axes (x, y of the distal, then the proximal segment): nuisance regressors of the
    # bias-step test (`_bias_step_flags`), not fused
    gyro_xy = np.full((C, T, 4), np.nan)
    persp_var = np.zeros((C, T))
    not_body = np.zeros((C, T), dtype=bool)
    every = max(1, round(_INCL_EVERY_S / dt))
    offset = np.zeros(C)
    for c, ch in enumerate(channels):
        side, j = ch.split("_")
        if ch in marker:
            tm, xm = marker[ch]
            k, inside = _nearest_index(grid, tm)
            z[c, k[inside], 0] = xm[inside]
            r[c, k[inside], 0] = _R0_MARKERS_RAD ** 2
        if ch in marker_not_body:
            tb, xb = marker_not_body[ch]
            k, inside = _nearest_index(grid, tb)
            not_body[c, k[inside & xb]] = True
        if ch in video:
            tv, xv, vv, pv = video[ch]
            k, inside = _nearest_index(grid, tv)
            keep = inside & np.isfinite(xv) & np.isfinite(vv)
            z[c, k[keep], 1] = xv[keep]
            r[c, k[keep], 1] = vv[keep] * _R0_VIDEO_PX ** 2
            persp_var[c, k[keep]] = np.where(np.isfinite(pv[keep]), pv[keep], 0.0)
        dist, prox = _IMU_SEGMENTS.get(j, (None, None))
        if f"{side}_{dist}" in gyro and f"{side}_{prox}" in gyro:
            tg, gd, ad, dd, xyd = gyro[f"{side}_{dist}"]
            tp, gp, ap, dp, xyp = gyro[f"{side}_{prox}"]
            for i in range(2):
                gyro_xy[c, :, i] = _interp_gaps(grid, tg, xyd[:, i], 3 * dt)
                gyro_xy[c, :, 2 + i] = _interp_gaps(grid, tp, xyp[:, i], 3 * dt)
            rate = _interp_gaps(grid, tg, gd, 3 * dt) - _interp_gaps(grid, tp, gp, 3 * dt)
            z[c, :, 2] = rate
            r[c, np.isfinite(rate), 2] = _R0_GYRO_RAD_S ** 2
            # tilts interpolated as unit vectors (no wrap), then distal minus proximal, wrapped to (-pi, pi]
            td = np.arctan2(_interp_gaps(grid, tg, np.sin(ad), 3 * dt), _interp_gaps(grid, tg, np.cos(ad), 3 * dt))
            tq = np.arctan2(_interp_gaps(grid, tp, np.sin(ap), 3 * dt), _interp_gaps(grid, tp, np.cos(ap), 3 * dt))
            tilt = np.angle(np.exp(1j * (td - tq)))
            dyn = _interp_gaps(grid, tg, dd, 3 * dt) + _interp_gaps(grid, tp, dp, 3 * dt)
            take = np.zeros(T, dtype=bool)
            take[::every] = True
            take &= np.isfinite(tilt) & np.isfinite(dyn)
            z[c, take, 3] = tilt[take]
            r[c, take, 3] = (_R0_INCL_RAD * (1.0 + _INCL_DYN_GAIN * dyn[take])) ** 2
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
    inp.reference_modalities = refs
    inp.clocks_of = clocks_of
    inp.gyro_xy = gyro_xy
    inp.video_persp_var = persp_var
    inp.marker_not_body = not_body  # (C, T) the markers' frames that are not a body (`kinematics.body_frames`)
    return inp


def _on_reference_clock(reader: Any, s: Stream) -> bool:
    """Whether the stream's clock defines the session clock (method ``"reference"``): it has no clock error."""
    clocks = reader.clocks if isinstance(reader, Session) else reader.clocks()
    e = clocks.get(s.clock)
    return e is not None and e.method == "reference"


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


def _off_axis(s: Stream) -> NDArray[np.float64]:
    """Per video frame, tan of the angle between the optical axis and the ray to the hips' midpoint:
    (u_hips - c_px) / f_px, the focal length and image centre as in `_view_rate`; 0 where unknown.

    A keypoint at depth d off the sagittal plane (distance Z) is shifted in the image by (u - c_px) d / Z, i.e. the
    2D segment angle errs by ~tan(phi) x (depth difference of its keypoints / segment length). The offset line
    (`_DEPTH_SPREAD_RATIO` x the view rate) models its mean over the record; the depth difference itself changes
    over the gait cycle (knee/ankle swing medio-laterally, the leg rotates), by up to its mean spread, so each
    segment gets an extra, unfitted variance (`_DEPTH_SPREAD_RATIO` tan phi)^2 (docs/fusion-angles.md)."""
    n = len(s.data)
    if "left_hip" not in s.channels or "right_hip" not in s.channels:
        return np.zeros(n)
    u = 0.5 * (np.asarray(s.channel("left_hip"))[:, 0] + np.asarray(s.channel("right_hip"))[:, 0])
    if np.isfinite(u).sum() < 3:
        return np.zeros(n)
    cam = s.meta.get("camera") or {}
    f_px = float(cam.get("focal_px") or cam.get("width_px") or np.nanmax(u))
    c_px = 0.5 * float(cam["width_px"]) if cam.get("width_px") else 0.5 * float(np.nanmin(u) + np.nanmax(u))
    return np.where(np.isfinite(u), (u - c_px) / f_px, 0.0)


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
    H = np.array([[1.0, 0, 0, 0, 0, 0], [1.0, 0, 0, 0, 1.0, 0], [0, 1.0, 0, 1.0, 0, 0], [1.0, 0, 0, 0, 0, 0]])
    return F, Q, H


def _prior(inp: AngleInputs) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    z = inp.z
    C = z.shape[0]
    x0 = np.zeros((C, 6))
    for c in range(C):
        a = next((z[c, :, j] for j in (0, 1, 3) if np.isfinite(z[c, :, j]).any()), z[c, :, 0])
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


def _without(z: NDArray[np.float64], rows: Sequence[int]) -> NDArray[np.float64]:
    z2 = z.copy()
    z2[:, :, list(rows)] = np.nan
    return z2


def _local_level(t: NDArray[np.float64], d: NDArray[np.float64], ref_s: float, gap_s: float) -> NDArray[np.float64]:
    """Median of ``d`` over the reference period ``[t - gap_s - ref_s, t - gap_s)`` before each step: the slowly
    varying nuisance level (the gyro bias) a change is measured against. Causal: where less than half of that
    period precedes the step, the first ``ref_s`` of the record is the reference (a fault in it is then seen as a
    change of the reference, at the start)."""
    out = np.full(len(t), np.nan)
    ok = np.isfinite(d)
    if ok.sum() < 5:
        return out
    tt, dd = t[ok], d[ok]
    first = np.median(dd[: max(5, np.searchsorted(tt, tt[0] + ref_s))])
    dt = float(np.median(np.diff(t)))
    for k in range(len(t)):
        a = np.searchsorted(tt, t[k] - gap_s - ref_s)
        b = np.searchsorted(tt, t[k] - gap_s)
        out[k] = np.median(dd[a:b]) if (b - a) * dt >= 0.5 * ref_s else first
    return out


def _row_residual(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], x: NDArray[np.float64],
                  P: NDArray[np.float64], c: int, j: int, window_s: float,
                  theta_from: int | None = None) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Residual of measurement row ``j`` of channel ``c`` against a state estimate ``x``/``P`` ``(C, T, 6[, 6])`` that
    did not use it, and the residual's model variance. ``theta_from``: take the angle from this channel instead
    (the left/right swap hypothesis)."""
    cc = c if theta_from is None else theta_from
    if j == 0:
        return z[c, :, 0] - x[cc, :, 0], R[c, :, 0] + P[cc, :, 0, 0]
    if j == 1:
        # the offset o of this channel's video (not seen by the others: its prior)
        return (z[c, :, 1] - x[cc, :, 0] - x[c, :, 4],
                R[c, :, 1] + P[cc, :, 0, 0] + P[c, :, 4, 4] + (2 * P[c, :, 0, 4] if theta_from is None else 0.0))
    if j == 2:
        # the joint-rate bias is seen only through the IMU: the rate of the others, minus the bias level of the
        # 2 s before the window (the nuisance level a change is measured against)
        d = z[c, :, 2] - x[cc, :, 1]
        return d - _local_level(inp.times, d, 2.0, window_s), R[c, :, 2] + P[cc, :, 1, 1]
    return z[c, :, 3] - x[cc, :, 0], R[c, :, 3] + P[cc, :, 0, 0]


def _rate_integral(t: NDArray[np.float64], rate: NDArray[np.float64]) -> NDArray[np.float64]:
    """Running trapezoid integral of ``rate``, NaN at missing samples (its level after a gap is arbitrary: the
    windows across a gap are not tested)."""
    inc = 0.5 * (rate[1:] + rate[:-1]) * np.diff(t)
    out = np.concatenate([[0.0], np.cumsum(np.where(np.isfinite(inc), inc, 0.0))])
    out[~np.isfinite(rate)] = np.nan
    return out


def _bias_step_flags(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], ref: KalmanOutput, c: int,
                     alpha: float) -> list[WindowFlag]:
    """A step of the gyro's joint-rate bias, in the angle domain, sequentially
    (`fusionlab.fusion._conflicts.slope_change_flags`): ``D = integral of the IMU joint rate - the others' smoothed
    angle`` (``ref``: the run without the IMU) is predicted from the ``_BIAS_REF_S`` before each candidate time by
    a line plus the integrals of the gyroscopes' two other axes (x, y of both segments), and its prediction error
    up to ``_BIAS_HORIZON_S`` after it is tested against the spread of that fit (estimated on the reference, per
    candidate time: no hand-set level).

    Why the other axes: the gyroscope measures rotation about the segment's own medio-lateral axis, the sagittal
    angle is a projection; to first order (small out-of-plane angles, which change slowly) their difference is a
    linear mix of the rotation about the other two axes. With it, the clean prediction residual is 0.1-0.4 deg SD
    on the simulated walks (a line alone: 0.7-1.5 deg, gait-periodic); a 0.3 rad/s step is 8.6 deg in 0.5 s."""
    rate = z[c, :, 2]
    theta = ref.x_smoothed[c, :, 0]
    if not np.isfinite(rate).any() or not np.isfinite(theta).any():
        return []
    t = inp.times
    dt = float(np.median(np.diff(t)))
    d = _rate_integral(t, rate) - theta
    xy = inp.gyro_xy[c]
    have = [i for i in range(xy.shape[1]) if np.isfinite(xy[:, i]).any()]
    reg = (np.column_stack([_rate_integral(t, xy[:, i]) for i in have]) if have else np.zeros((len(t), 0)))
    white = _finite_median(R[c, :, 2][np.isfinite(rate)]) * dt
    return slope_change_flags(t, d, reg, ref.P_smoothed[c, :, 0, 0], modality="imu:step", ref_s=_BIAS_REF_S,
                              min_ref_s=_BIAS_MIN_REF_S, horizon_s=_BIAS_HORIZON_S, step_s=_BIAS_STEP_S,
                              white_var=white, alpha=alpha)


def _swap_llr(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], ref: KalmanOutput, c: int,
              o: int, window_s: float) -> NDArray[np.float64]:
    """Per-sample log-likelihood ratio "this channel's video shows the other side" (channel ``o``) against "it
    shows its own side", from the others' smoothed estimates of both sides (``ref``: the run without the video),
    scaled by n_eff / N of the own residual (correlated samples are not independent evidence). NaN where there is
    no video sample.

    The video level: the fitted one absorbs much of a swap that covers half the record, and the ratio scales with
    1 / level; it is scaled by the median, over 0.5 s blocks, of the better-fitting hypothesis' mean r^2 / R (never
    up, never below the video floor): a swap does not inflate it, clean data keep about the fitted level."""
    xs, Ps = ref.x_smoothed, ref.P_smoothed
    r_own = z[c, :, 1] - xs[c, :, 0] - xs[c, :, 4]
    # the other side's video: its own constant offset (removed from this channel's as this one's) and offset state
    r_sw = z[c, :, 1] + inp.video_offset[c] - inp.video_offset[o] - xs[o, :, 0] - xs[o, :, 4]
    Rv = R[c, :, 1]
    dt = float(np.median(np.diff(inp.times)))
    span = max(2, round(window_s / dt))
    best = []
    for a in range(0, len(Rv), span):
        so, ss = r_own[a:a + span] ** 2 / Rv[a:a + span], r_sw[a:a + span] ** 2 / Rv[a:a + span]
        ok = np.isfinite(so) & np.isfinite(ss)
        if ok.sum() >= 3:
            best.append(min(float(np.mean(so[ok])), float(np.mean(ss[ok]))))
    if best:
        taken = np.isfinite(z[c, :, 1])
        floor = NOISE_FLOOR["video"] ** 2 / _finite_median(Rv[taken])  # the factor that puts R at its floor
        Rv = Rv * min(1.0, max(float(np.median(best)), floor))
    v_own = Rv + Ps[c, :, 0, 0] + Ps[c, :, 4, 4]
    v_sw = Rv + Ps[o, :, 0, 0] + Ps[o, :, 4, 4]
    llr = 0.5 * (r_own ** 2 / v_own + np.log(v_own) - r_sw ** 2 / v_sw - np.log(v_sw))
    e = r_own / np.sqrt(v_own)
    if np.isfinite(e).sum() < 5:
        return np.full(len(llr), np.nan)
    factor = min(1.0, effective_dof(autocorrelation(e, span), span) / span)
    return llr * factor


def _swap_flags(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], ref: KalmanOutput,
                window_s: float, alpha: float) -> tuple[list[WindowFlag], dict[str, NDArray[np.float64]]]:
    """Left/right swap of the video (all its keypoints exchanged): per sliding window, the summed log-likelihood
    ratio of "swapped" against "not swapped" over every joint with video on both sides (`_swap_llr`); windows
    where it exceeds ``log(1 / alpha)`` are flagged and merged. Independent of whether the video was flagged by
    the chi-square test and of the fitted video noise level (both hypotheses have the same noise)."""
    llr: dict[str, NDArray[np.float64]] = {}
    for c, ch in enumerate(inp.channels):
        side, joint = ch.split("_")
        oth = f"{'right' if side == 'left' else 'left'}_{joint}"
        if oth not in inp.channels:
            continue
        o = inp.channels.index(oth)
        if not (np.isfinite(z[c, :, 1]).any() and np.isfinite(z[o, :, 1]).any()):
            continue
        if not np.isfinite(ref.x_smoothed[c, :, 0]).any():
            continue
        llr[ch] = _swap_llr(inp, z, R, ref, c, o, window_s)
    if not llr:
        return [], llr
    t = inp.times
    total = np.nansum(np.stack(list(llr.values())), axis=0)
    n_obs = np.sum(np.isfinite(np.stack(list(llr.values()))), axis=0)
    c_llr = np.concatenate([[0.0], np.cumsum(total)])
    c_n = np.concatenate([[0], np.cumsum(n_obs)])
    thr = math.log(1.0 / alpha)
    raw = []
    step = window_s / 2
    for a in np.arange(t[0], t[-1] - window_s + step, step):
        i0, i1 = np.searchsorted(t, a), np.searchsorted(t, a + window_s)
        if c_n[i1] - c_n[i0] < 3:
            continue
        lam = float(c_llr[i1] - c_llr[i0])
        if lam > thr:
            raw.append((float(a), float(a + window_s), math.exp(-lam), lam, 1.0, int(c_n[i1] - c_n[i0])))
    return merge_windows(raw, "video:swap"), llr


def _clock_lag(t: NDArray[np.float64], r: NDArray[np.float64], v: NDArray[np.float64], deriv: NDArray[np.float64],
               max_lag: int) -> tuple[float, float]:
    """Clock lag (s) of a measurement from its residual: ``r ~ c0 + c1 t - lag * deriv`` by weighted least squares
    (``deriv``: the time derivative of what the others predict it measures), and the lag's SE (Newey-West sandwich
    with the residuals' autocorrelation, scaled by their robust spread). NaN when not estimable."""
    ok = np.isfinite(r) & np.isfinite(v) & np.isfinite(deriv) & (v > 0)
    if ok.sum() < 20:
        return math.nan, math.nan
    w = np.where(ok, 1.0 / np.sqrt(np.where(ok, v, 1.0)), 0.0)
    X = np.stack([np.ones(len(t)), t - t[ok].mean(), -np.where(ok, deriv, 0.0)], axis=1) * w[:, None]
    y = np.where(ok, r, 0.0) * w
    XtX = X.T @ X
    try:
        beta = np.linalg.solve(XtX, X.T @ y)
    except np.linalg.LinAlgError:
        return math.nan, math.nan
    e = np.where(ok, y - X @ beta, np.nan)
    rho = autocorrelation(e, max_lag)
    meat = X.T @ X
    for k in range(1, max_lag + 1):
        m = X[:-k].T @ X[k:]
        meat += (1.0 - k / (max_lag + 1)) * rho[k] * (m + m.T)  # Bartlett taper (Newey-West): positive definite
    s2 = _finite_median(e ** 2) / 0.4549  # robust residual variance (median of chi2(1) = 0.4549)
    cov = np.linalg.solve(XtX, np.linalg.solve(XtX, meat).T) * s2
    return float(beta[2]), float(math.sqrt(max(cov[2, 2], 0.0)))


def _lag_of(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], ref: KalmanOutput, c: int, m: str,
            window_s: float) -> tuple[float, float]:
    """Clock lag (s) and SE of modality ``m`` on channel ``c`` against a smoothed estimate ``ref`` without it (its
    rows combined by inverse variance)."""
    t = inp.times
    dt = float(np.median(np.diff(t)))
    xs, Ps = ref.x_smoothed, ref.P_smoothed
    est = []
    for j in _MEAS[m]:
        if not np.isfinite(z[c, :, j]).any():
            continue
        # regressor: d/dt of what the others predict m measures (the bias / offset: nuisance level and trend)
        rs, vs = _row_residual(inp, z, R, xs, Ps, c, j, window_s)
        if j == 2:
            rs = z[c, :, 2] - xs[c, :, 1]
        deriv = xs[c, :, 2] if j == 2 else xs[c, :, 1]
        est.append(_clock_lag(t, rs, vs, deriv, max(1, round(window_s / dt))))
    est = [e for e in est if math.isfinite(e[0]) and e[1] > 0]
    if not est:
        return math.nan, math.nan
    wts = np.array([1 / e[1] ** 2 for e in est])
    return float(np.sum(wts * np.array([e[0] for e in est])) / wts.sum()), float(1 / math.sqrt(wts.sum()))


def _pooled_lags(inp: AngleInputs, z: NDArray[np.float64], R: NDArray[np.float64], loo: dict[str, KalmanOutput],
                 alone: dict[str, KalmanOutput], present: list[str],
                 window_s: float) -> dict[Any, tuple[float, float]]:
    """One clock lag per modality whose streams share one clock (a clock error is the clock's, common to every
    channel it times), pooled over the channels that have the modality and at least one other: the
    inverse-variance mean of the channels' lags (`_lag_of`), its SE widened by the channels' disagreement (Birge
    ratio sqrt(Q / (k - 1)) when above 1, Q = Cochran's heterogeneity statistic: lags that differ beyond their SEs
    are model error, not one clock's offset). Keys: ``(m, frozenset of the modalities)``: ``m`` against the
    others, pooled over the channels measured by the same modalities (against the same others: a clock error of
    one of them must not show as ``m``'s on a channel it does not measure), and ``(a, b)``: ``a`` against ``b``
    alone (three modalities). A modality on several clocks is not pooled (per channel, as before)."""
    one_clock = [m for m in present if len(getattr(inp, "clocks_of", {}).get(m, ())) == 1]
    per: dict[Any, list[tuple[float, float]]] = {}
    for c in range(len(inp.channels)):
        here = [m for m in present if np.isfinite(z[c, :, list(_MEAS[m])]).any()]
        if len(here) < 2:
            continue
        for m in here:
            if m in one_clock:
                per.setdefault((m, frozenset(here)), []).append(_lag_of(inp, z, R, loo[m], c, m, window_s))
                if len(here) >= 3 and alone:
                    for b in here:
                        if b != m:
                            per.setdefault((m, b), []).append(_lag_of(inp, z, R, alone[b], c, m, window_s))
    out: dict[Any, tuple[float, float]] = {}
    for key, est in per.items():
        est = [e for e in est if math.isfinite(e[0]) and math.isfinite(e[1]) and e[1] > 0]
        if not est:
            continue
        lag = np.array([e[0] for e in est])
        w = 1.0 / np.array([e[1] for e in est]) ** 2
        mean = float(np.sum(w * lag) / w.sum())
        se = 1.0 / math.sqrt(float(w.sum()))
        if len(est) > 1:
            q = float(np.sum(w * (lag - mean) ** 2))
            se *= math.sqrt(max(1.0, q / (len(est) - 1)))
        out[key] = (mean, se)
    return out


def _conflicts(inp: AngleInputs, F, Q, H, z, R, x0, P0, *, window_s: float, alpha: float) -> list[Conflict]:
    """Forward (causal) leave-one-out residuals per modality and channel, windowed chi-square (`find_conflicts`),
    the left/right swap hypothesis for the video, and a clock-lag test per modality (docs/fusion-angles.md)."""
    t = inp.times
    present = [m for m in ANGLE_MODALITIES if np.isfinite(z[:, :, list(_MEAS[m])]).any()]
    if len(present) < 2:
        return []
    loo = {m: kalman_smooth(F, Q, H, _without(z, _MEAS[m]), R, x0, P0) for m in present}
    alone = ({m: kalman_smooth(F, Q, H, _without(z, [j for o in present if o != m for j in _MEAS[o]]), R, x0, P0)
              for m in present} if len(present) >= 3 else {})
    z_alpha = float(stats.norm.isf(alpha / 2))
    pooled = _pooled_lags(inp, z, R, loo, alone, present, window_s)
    out: list[Conflict] = []
    # left/right video swap: its own test over all joints (a likelihood ratio, independent of the chi-square flags)
    swaps, swap_llr = (_swap_flags(inp, z, R, loo["video"], window_s, alpha) if "video" in present
                       else ([], {}))
    for sw in swaps:
        a, b = np.searchsorted(t, sw.start_s), np.searchsorted(t, sw.end_s)
        per_ch = {ch: float(np.nansum(v[a:b])) for ch, v in swap_llr.items()}
        for ch, lam in per_ch.items():
            if lam <= 0:
                continue  # this channel's video does not favour the swap here (e.g. both sides alike)
            side, joint = ch.split("_")
            p = math.exp(-sw.stat)
            out.append(Conflict(
                start_s=sw.start_s, end_s=sw.end_s, quantity=f"{joint}_angle_{side}", modality="video",
                severity=_severity_of(p), score=sw.stat / math.log(10),
                evidence={"method": "left/right swap likelihood ratio (video vs the others' estimates of both "
                                    "sides, smoothed, without the video)",
                          "hypothesis": "left/right swap", "log_lr": sw.stat, "log_lr_channel": lam,
                          "log_lr_by_channel": per_ch, "threshold": math.log(1 / alpha), "p": p, "alpha": alpha,
                          "window_s": window_s}))
    for c, ch in enumerate(inp.channels):
        side, joint = ch.split("_")
        quantity = f"{joint}_angle_{side}"
        here = [m for m in present if np.isfinite(z[c, :, list(_MEAS[m])]).any()]
        if len(here) < 2:
            continue
        drift = _bias_step_flags(inp, z, R, loo["imu"], c, alpha) if "imu" in here else []
        res: dict[str, NDArray[np.float64]] = {}
        var: dict[str, NDArray[np.float64]] = {}
        lags: dict[str, tuple[float, float]] = {}
        culprit_by = ""
        for m in here:
            xf, Pf = loo[m].x_filtered, loo[m].P_filtered
            xs, Ps = loo[m].x_smoothed, loo[m].P_smoothed
            lags[m] = pooled.get((m, frozenset(here))) or _lag_of(inp, z, R, loo[m], c, m, window_s)
            for j in _MEAS[m]:
                if not np.isfinite(z[c, :, j]).any():
                    continue
                # angles against the others' forward filter (causal: a step fault of another modality reaches
                # this residual only after its onset); the IMU rate against the others' smoother (the others
                # measure no rate: their filtered rate lags by ~0.5 rad/s in swing, their smoothed rate does not,
                # and without the IMU it holds nothing of the IMU's faults)
                xr, Pr = (xs, Ps) if j == 2 else (xf, Pf)
                res[_ROW_NAME[j]], var[_ROW_NAME[j]] = _row_residual(inp, z, R, xr, Pr, c, j, window_s)
        # pairwise consistency (three modalities): each modality's main row against each other modality alone;
        # the culprit is the one whose exclusion leaves the others consistent (e.g. after a gyro bias step the
        # markers' leave-one-out residual drifts with the IMU, but the markers agree with the video alone)
        pairs: dict[tuple[str, str], tuple[NDArray[np.float64], NDArray[np.float64]]] = {}
        if len(here) >= 3 and alone:
            for a_mod in here:
                j = _MEAS[a_mod][0]
                for b_mod in here:
                    if b_mod != a_mod:
                        ob = alone[b_mod]
                        xr, Pr = (ob.x_smoothed, ob.P_smoothed) if j == 2 else (ob.x_filtered, ob.P_filtered)
                        pairs[(a_mod, b_mod)] = _row_residual(inp, z, R, xr, Pr, c, j, window_s)
        found = find_conflicts(t, res, var, quantity=quantity, unit="rad (imu rate: rad/s)", window_s=window_s,
                               alpha=alpha, n_modalities=len(here), method="leave-one-out, forward filter",
                               flags=drift, pairs=pairs or None)
        # faults already established on this channel by a test of one specific explanation, for
        # `_explained_by_earlier_fault`: (onset, span of the suspect's rows to leave out, modality, name, rows); a
        # gyro bias step persists (nothing says it ended), from its estimated change time less the test's horizon
        # (the change time is resolved to within it); a swap over its flagged windows, widened by one window
        known = [(f.start_s, f.start_s - _BIAS_HORIZON_S, math.inf, "imu", "gyro bias step", (2,)) for f in drift]
        known += [(sw.start_s, sw.start_s - window_s, sw.end_s + window_s, "video", "left/right swap", (1,))
                  for sw in swaps
                  if ch in swap_llr and float(np.nansum(swap_llr[ch][np.searchsorted(t, sw.start_s):
                                                                      np.searchsorted(t, sw.end_s)])) > 0]
        for cf in found:
            names = sorted({n.split(":")[0] for n in cf.modality.split("|")})
            ev = dict(cf.evidence)
            if "video" in {n.split(":")[0] for n in ev["flagged"]} and len(inp.channels) > 1:
                # left/right swap hypothesis: the video of this side against the others' estimate of the other side
                other = inp.channels.index(f"{'right' if side == 'left' else 'left'}_{joint}")
                xf, Pf = loo["video"].x_filtered, loo["video"].P_filtered
                r_sw, v_sw = _row_residual(inp, z, R, xf, Pf, c, 1, window_s, theta_from=other)
                r_own, v_own = _row_residual(inp, z, R, xf, Pf, c, 1, window_s)
                a, b = np.searchsorted(t, cf.start_s), np.searchsorted(t, cf.end_s)
                ok = np.isfinite(r_sw[a:b]) & np.isfinite(r_own[a:b])
                if ok.sum() >= 3:
                    x_sw = float(np.sum(r_sw[a:b][ok] ** 2 / v_sw[a:b][ok]))
                    x_own = float(np.sum(r_own[a:b][ok] ** 2 / v_own[a:b][ok]))
                    p_sw = span_p_value(t, r_sw, v_sw, cf.start_s, cf.end_s, window_s)
                    ev["swap"] = {"chi2_own": x_own, "chi2_other_side": x_sw, "p_other_side": p_sw}
                    if x_sw < 0.25 * x_own and (not math.isfinite(p_sw) or p_sw >= alpha):
                        names = ["video"]
                        ev["hypothesis"] = "left/right swap likely"
            if "hypothesis" not in ev and ch in swap_llr and not _step_flagged(ev) and any(
                    sw.start_s - window_s <= cf.start_s and cf.end_s <= sw.end_s + window_s for sw in swaps):
                # within a swap found by the likelihood-ratio test (its own conflict; its extent widened by one
                # window, the resolution of its ends): the video is the culprit. Not a window that reaches beyond
                # it (what lies outside the swap is not its evidence: `_explained_by_earlier_fault` re-tests it), nor
                # one the gyro bias-step test flagged (another specific fault, e.g. a step right after the swap)
                names = ["video"]
                ev["hypothesis"] = "left/right swap (likelihood-ratio test)"
            if "hypothesis" not in ev and known:
                names = _explained_by_earlier_fault(inp, (F, Q, H, z, R, x0, P0), c, cf, names, here, known, ev,
                                                    alpha, window_s)
            out.append(Conflict(start_s=cf.start_s, end_s=cf.end_s, quantity=quantity, modality="|".join(names),
                                severity=cf.severity, score=cf.score, evidence=ev))
        # clock errors: a lag beyond _MIN_CLOCK_ERROR_S that the data resolve at alpha; the modality with the
        # largest |lag / SE| is named (the others see it too, diluted, through the fused estimate)
        sig = {m: (lag, se) for m, (lag, se) in lags.items()
               if abs(lag) >= _MIN_CLOCK_ERROR_S and abs(lag) / se > z_alpha}
        if sig:
            m = max(sig, key=lambda k: abs(sig[k][0]) / sig[k][1])
            culprit_by = "largest |lag| / SE"
            if len(here) >= 3 and alone:
                # pairwise: the modality whose lag shows against each of the others alone, while they agree
                pair = {}
                for a_mod in here:
                    for b_mod in here:
                        if a_mod != b_mod:
                            pair[(a_mod, b_mod)] = (pooled.get((a_mod, b_mod))
                                                    or _lag_of(inp, z, R, alone[b_mod], c, a_mod, window_s))
                bad = {frozenset(k): False for k in pair}
                for k, (lag_ab, se_ab) in pair.items():
                    if math.isfinite(lag_ab) and abs(lag_ab) >= _MIN_CLOCK_ERROR_S and abs(lag_ab) / se_ab > z_alpha:
                        bad[frozenset(k)] = True
                cands = [x for x in here if all(not v for k, v in bad.items() if x not in k)
                         and all(v for k, v in bad.items() if x in k)]
                if len(cands) == 1:
                    m, culprit_by = cands[0], "pairwise lags"
                    if m not in sig:
                        sig[m] = lags[m]
            if culprit_by != "pairwise lags" and m in inp.reference_modalities:
                # the reference clock defines the session clock: its lag against the others is theirs
                rest = [k for k in lags if k not in inp.reference_modalities and math.isfinite(lags[k][0])]
                if rest:
                    m, culprit_by = max(rest, key=lambda k: abs(lags[k][0]) / lags[k][1]), "reference clock"
                    sig[m] = lags[m]
            lag, se = sig[m]
            p = float(2 * stats.norm.sf(abs(lag) / se))
            out.append(Conflict(
                start_s=float(t[0]), end_s=float(t[-1]), quantity=quantity, modality=m,
                severity=_severity_of(p), score=-math.log10(max(p, 1e-300)),
                evidence={"method": "clock lag regression (leave-one-out, smoothed)", "hypothesis": "clock error",
                          "culprit_by": culprit_by,
                          "lag_s": lag, "se_s": se, "p": p, "alpha": alpha,
                          "lags_s": {k: {"lag_s": v[0], "se_s": v[1]} for k, v in lags.items()}}))
    return out


def _step_flagged(ev: dict[str, Any]) -> bool:
    """Whether the gyro bias-step test (`_bias_step_flags`) flagged a conflict window (its ``flagged`` evidence)."""
    return any(n.split(":")[-1] == "step" for n in ev.get("flagged", {}))


def _channel_run(F, Q, H, z, R, x0, P0, c: int) -> KalmanOutput:
    """`kalman_smooth` of channel ``c`` alone (the model's per-channel arrays sliced)."""
    def one(a: NDArray[np.float64], nd: int) -> NDArray[np.float64]:
        return a[c:c + 1] if a.ndim == nd else a

    return kalman_smooth(one(F, 3), one(Q, 3), one(H, 3), z[c:c + 1], R[c:c + 1], one(x0, 2), one(P0, 3))


def _explained_by_earlier_fault(inp: AngleInputs, model: tuple, c: int, cf: Conflict, names: list[str],
                                here: list[str], known: list[tuple[float, float, float, str, str, Sequence[int]]],
                                ev: dict[str, Any], alpha: float, window_s: float) -> list[str]:
    """The culprit of a later window of channel ``c`` on which a test of one specific explanation has already
    established a fault of modality ``s`` (``known``: ``(onset_s, span_start_s, span_end_s, s, fault, rows)``, e.g.
    the gyro bias step): ``s`` instead of the named modalities when that fault explains the window.

    Why: a named modality ``m``'s leave-one-out residual is ``m`` against the others' estimate, and after a fault
    of ``s`` that estimate carries it (a gyro bias step: the bias state re-converges over seconds while the
    integrated rate pulls the angle; after a swap the video offset and the gyro bias states do). ``s``'s own
    residual no longer shows it (the IMU rate is compared with the bias level of the 2 s before), and the pair
    tests are undecided (the video alone is too noisy to say whether ``s`` or ``m`` left it).

    Explained: the leave-one-out run of ``m`` is repeated without ``s``'s rows ``rows`` over the fault's span
    (``span_start_s`` to ``span_end_s``: everything else of ``s`` and of the others kept, so the estimate keeps
    its power), and ``m``'s residual against it over the window passes the same test (p >= alpha) for every named
    ``m``: leaving the faulty part of the suspect out of the estimate restores ``m``'s consistency. Otherwise the
    names are kept (``m`` is off even against an estimate without the fault). Evidence: ``explained_by``."""
    t = inp.times
    F, Q, H, z, R, x0, P0 = model
    for onset, a_s, b_s, s, fault, rows in sorted(known):
        others = names
        if onset >= cf.start_s or s in names or not all(m in here for m in names):
            continue
        if any(onset < o2 < cf.end_s and s2 != s for o2, _, _, s2, _, _ in known):
            continue  # a fault of another modality began since: never explained across the onset of a new fault
        p_m: dict[str, float] = {}
        for m in others:
            z2 = _without(z, _MEAS[m])
            span = (t >= a_s) & (t <= b_s)
            for j in rows:
                z2[c, span, j] = np.nan
            run = _channel_run(F, Q, H, z2, R, x0, P0, c)
            j = _MEAS[m][0]
            xr, Pr = (run.x_smoothed, run.P_smoothed) if j == 2 else (run.x_filtered, run.P_filtered)
            r, v = _row_residual(inp, z[c:c + 1], R[c:c + 1], xr, Pr, 0, j, window_s)
            p_m[m] = span_p_value(t, r, v, cf.start_s, cf.end_s, window_s)
        if all(math.isfinite(p) and p >= alpha for p in p_m.values()):
            ev["culprit_by"] = f"explained by the earlier {fault} of {s}"
            ev["explained_by"] = {"modality": s, "fault": fault, "onset_s": onset, "left_out_s": [a_s, b_s],
                                  "instead_of": "|".join(names), "p_without_it": p_m}
            return [s]
    return names


def _severity_of(p: float) -> str:
    return "high" if p < 1e-10 else "medium" if p < 1e-6 else "low"


def _apply_floor(R: NDArray[np.float64], z: NDArray[np.float64]) -> tuple[NDArray[np.float64], list[str]]:
    """Raise each channel's fitted level so that its SD (at the median shape) is at least the modality's floor."""
    R = R.copy()
    raised = []
    for c in range(R.shape[0]):
        for j, floor in enumerate(_FLOOR_ROWS):
            taken = np.isfinite(z[c, :, j])
            if not taken.any():
                continue
            med = float(np.median(R[c, taken, j]))
            if med < floor ** 2:
                R[c, :, j] *= floor ** 2 / med
                raised.append((c, j))
    return R, raised


def _fit(F, Q, H, z, r_shape, x0, P0, n_iter: int):
    """EM, then once more without the gross outliers (|z - H xs| > `_OUTLIER_SD` robust SDs of that channel and
    measurement: a fault must not inflate the noise it is tested against), then the floors."""
    fit = estimate_noise(F, Q, H, z, r_shape, x0, P0, fit_q=True, n_iter=n_iter)
    hx = np.einsum("jn,ctn->ctj", H, fit.output.x_smoothed)
    e2 = (z - hx) ** 2 / fit.R
    # robust scale per channel and row (median chi2(1) = 0.4549); rows without data keep 1
    scale = np.ones((z.shape[0], z.shape[2]))
    for c in range(z.shape[0]):
        for j in range(z.shape[2]):
            med = _finite_median(e2[c, :, j][np.isfinite(z[c, :, j])])
            if math.isfinite(med):
                scale[c, j] = med / 0.4549
    out = np.isfinite(z) & (e2 > _OUTLIER_SD ** 2 * scale[:, None, :])
    if out.any():
        z_fit = np.where(out, np.nan, z)
        fit = estimate_noise(F, fit.Q, H, z_fit, fit.R, x0, P0, fit_q=True, n_iter=n_iter)
    R, raised = _apply_floor(fit.R, z)
    return fit, R, raised


def _jerk_power(out: KalmanOutput, F: NDArray[np.float64], Q: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per step k >= 1, the smoothed expectation of the squared acceleration increment ``E[(alpha[k] -
    alpha[k-1])^2 | all data]`` (rad^2/s^4; step 0 repeats step 1): the per-step term of the EM M-step of a
    white-jerk level (`fusionlab.fusion._noise`), restricted to the acceleration, with the lag-one smoothed
    covariance ``Ps[k] G[k-1]'``. ``F``, ``Q``: ``(C, n, n)`` of the run ``out`` came from."""
    Pf, xs, Ps = out.P_filtered, out.x_smoothed, out.P_smoothed
    Pp = np.einsum("cij,ctjk,clk->ctil", F, Pf[:, :-1], F, optimize=True) + Q[:, None]
    G = np.swapaxes(np.linalg.solve(Pp, np.einsum("cij,ctkj->ctik", F, Pf[:, :-1])), -1, -2)
    lag = np.einsum("ctij,ctkj->ctik", Ps[:, 1:], G)  # cov(x[k], x[k-1] | all data)
    d = xs[:, 1:, 2] - xs[:, :-1, 2]
    e2 = d * d + Ps[:, 1:, 2, 2] + Ps[:, :-1, 2, 2] - 2.0 * lag[:, :, 2, 2]
    return np.concatenate([e2[:, :1], e2], axis=1)


def _moving_mean(x: NDArray[np.float64], n: int) -> NDArray[np.float64]:
    """Centred moving mean over ``n`` steps along the last axis (shorter at the ends)."""
    h = n // 2
    c = np.concatenate([np.zeros((*x.shape[:-1], 1)), np.cumsum(x, axis=-1)], axis=-1)
    T = x.shape[-1]
    a = np.clip(np.arange(T) - h, 0, T)
    b = np.clip(np.arange(T) + h + 1, 0, T)
    return (c[..., b] - c[..., a]) / (b - a)


def _augment(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64], z: NDArray[np.float64],
             R: NDArray[np.float64], x0: NDArray[np.float64], P0: NDArray[np.float64], q_base: NDArray[np.float64],
             s2: NDArray[np.float64], dt: float):
    """The model with a time-varying jerk variance, in the time-invariant form `kalman_smooth` takes: the state
    gets a white jerk ``u`` (index 6; ``theta, omega, alpha`` += ``(dt^3/6, dt^2/2, dt) u[k-1]``; prior variance
    ``_U_WIDE`` x its largest level) and a pseudo-measurement ``0 = u + v`` (row 4) of variance ``s2[c, k]``
    (rad^2/s^6): after it, ``u[k] ~ N(0, ~s2[c, k])`` (relative error below 1e-6; ``u`` has no covariance with
    anything before the update, so the large prior costs no precision). The continuous white jerk of ``Q`` keeps
    density ``q_base`` ``(C,)``."""
    C, T, _ = z.shape
    F7 = np.zeros((C, 7, 7))
    F7[:, :6, :6] = F
    F7[:, 0, 6], F7[:, 1, 6], F7[:, 2, 6] = dt ** 3 / 6, dt ** 2 / 2, dt
    Q7 = np.zeros((C, 7, 7))
    Q7[:, :6, :6] = Q
    qa = Q[:, :3, :3] / np.maximum(Q[:, 2, 2], 1e-300)[:, None, None] * dt  # white-jerk shape of density 1
    Q7[:, :3, :3] = q_base[:, None, None] * qa
    wide = _U_WIDE * np.max(s2, axis=1)
    Q7[:, 6, 6] = wide
    H7 = np.zeros((5, 7))
    H7[:4, :6] = H
    H7[4, 6] = 1.0
    z7 = np.concatenate([z, np.zeros((C, T, 1))], axis=2)
    R7 = np.concatenate([R, s2[:, :, None]], axis=2)
    x07 = np.concatenate([x0, np.zeros((C, 1))], axis=1)
    P07 = np.zeros((C, 7, 7))
    P07[:, :6, :6] = P0
    P07[:, 6, 6] = s2[:, 0]
    return F7, Q7, H7, z7, R7, x07, P07


def _local_jerk(F: NDArray[np.float64], Q: NDArray[np.float64], H: NDArray[np.float64], z: NDArray[np.float64],
                R: NDArray[np.float64], x0: NDArray[np.float64], P0: NDArray[np.float64], dt: float):
    """Jerk level that varies over the gait cycle (swing has far larger jerk than stance), estimated from the data
    being fused by EM with the level allowed to vary slowly: per step the M-step term `_jerk_power` (from the
    smoother over all measurements), averaged over a centred window of `_JERK_WINDOW_S`, is the level of that step
    (jerk variance of a piecewise-constant jerk, rad^2/s^6: E[dalpha^2] / dt^2); `_JERK_ITER` passes. The smallest
    level of a channel stays the continuous white jerk of ``Q`` (density ``min * dt``), the rest goes to the
    augmented jerk state (`_augment`). Returns the augmented model and the levels ``(C, T)``."""
    C = z.shape[0]
    Fc = np.broadcast_to(F, (C, 6, 6)).copy()
    Qc = np.broadcast_to(Q, (C, 6, 6)).copy()
    out = kalman_smooth(Fc, Qc, H, z, R, x0, P0)
    Fa, Qa_ = Fc, Qc
    n = max(3, round(_JERK_WINDOW_S / dt))
    s2 = np.zeros(z.shape[:2])
    aug = None
    for _ in range(_JERK_ITER):
        s2 = _moving_mean(_jerk_power(out, Fa, Qa_), n) / dt ** 2
        lo = s2.min(axis=1)
        extra = np.maximum(s2 - lo[:, None], 1e-9 * np.maximum(lo[:, None], 1e-12))
        aug = _augment(Fc, Qc, H, z, R, x0, P0, lo * dt, extra, dt)
        Fa, Qa_ = aug[0], aug[1]
        out = kalman_smooth(*aug)
    return aug, s2


def _runs(mask: NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` index runs where ``mask`` is True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _not_estimated(t: NDArray[np.float64], var: NDArray[np.float64], z: NDArray[np.float64], joint: str,
                   channel: str) -> tuple[NDArray[np.bool_], str | None]:
    """Samples whose posterior 95 % band is wider than the joint's whole range of motion (`_RANGE_OF_MOTION_RAD`):
    no modality measured the angle for longer than the smoother can bridge. Returns the mask and a note saying
    where and why (None when there is none)."""
    sd_max = _RANGE_OF_MOTION_RAD[joint] / (2.0 * _BAND_Z)
    with np.errstate(invalid="ignore"):
        gone = ~(np.sqrt(var) <= sd_max)  # NaN variance counts as not estimated
    if not gone.any():
        return gone, None
    seen = np.isfinite(z).any(axis=1)
    spans = [(float(t[a]), float(t[b - 1])) for a, b in _runs(gone)]
    where = ", ".join(f"{a:.2f}-{b:.2f} s" for a, b in spans[:4]) + (f" and {len(spans) - 4} more" if len(spans) > 4
                                                                      else "")
    inside = int(np.count_nonzero(gone[np.argmax(seen):len(seen) - np.argmax(seen[::-1])])) if seen.any() else 0
    note = (f"{channel} angle: not estimated (NaN) in {gone.sum()} of {len(t)} samples ({where}; {inside} of them "
            f"between the first and last measurement): no modality measured it for longer than the smoother can "
            f"bridge there (posterior SD above {math.degrees(sd_max):.1f} deg: its 95 % band wider than the "
            f"{joint}'s whole range of motion, {math.degrees(_RANGE_OF_MOTION_RAD[joint]):.0f} deg)")
    return gone, note


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
        gyroscope axes and joint angle from the accelerometer tilts of segment IMUs; knee: thigh + shank IMUs,
        ankle: foot + shank IMUs; the hip gets none). Those the session lacks are skipped.
    window_s, alpha
        Conflict test: window length (s) and per-window false-alarm probability.
    conflicts
        Run the conflict test (one extra filter/smoother pass per modality; with conflicts found, the noise is
        refitted once without the flagged windows).
    n_iter
        At most this many EM iterations for the noise levels.

    Returns
    -------
    FusionResult
        ``signals``: one `FusedSignal` per joint (``hip_angle``, ``knee_angle``, ``ankle_angle``), channels
        ``left_<joint>``, ``right_<joint>``, rad, on the session clock (a joint that no synchronised source
        measures gets none, only a warning: the prior alone is not an estimate); ``noise``: fitted measurement SD per
        modality (rad; IMU: of the rate, rad/s; ``imu_tilt``: of the tilt, rad), mean over the two sides, never
        below `NOISE_FLOOR`. ``conflicts``: `Conflict` per window and channel. ``warnings``: among others, the
        joints that rest on a single modality (no cross-check).
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
    # 1. noise levels (EM), bounded below by the floors
    fit, R, raised = _fit(F, Q, H, z, r_shape, x0, P0, n_iter)
    # the video's off-axis perspective error beyond the offset line: a known, unfitted variance (`_off_axis`)
    R = R.copy()
    R[:, :, 1] += inp.video_persp_var
    Qf = fit.Q
    # 2. the jerk level over the gait cycle (EM, level varying slowly; `_local_jerk`): the model gets a jerk state
    (F, Qf, H, z, R, x0, P0), jerk_var = _local_jerk(F, Qf, H, z, R, x0, P0, dt)
    found: list[Conflict] = []
    if conflicts:
        # 3. conflicts (with the noise of the robust fit)
        found = _conflicts(inp, F, Qf, H, z, R, x0, P0, window_s=window_s, alpha=alpha)
    out = kalman_smooth(F, Qf, H, z, R, x0, P0)
    C = len(inp.channels)
    result = FusionResult(name="angles", algorithm="fusionlab.fusion.fuse_angles",
                          parameters={"joints": list(joints), "use": list(use), "window_s": window_s,
                                      "alpha": alpha, "n_iter": n_iter,
                                      "state": ["theta", "omega", "alpha", "b", "o", "o_rate", "jerk"],
                                      "jerk_window_s": _JERK_WINDOW_S,
                                      "grid_dt_s": dt, "noise_floor": dict(NOISE_FLOOR)},
                          inputs=tuple(n for m in ANGLE_MODALITIES for n in inp.sources.get(m, [])),
                          warnings=list(inp.warnings))
    # measurement SD per channel and row: markers and IMU rate homoscedastic; video, tilt: at the median shape
    sd = np.full((C, 4), np.nan)
    for c in range(C):
        for j in range(4):
            taken = np.isfinite(z[c, :, j])
            if taken.any():
                sd[c, j] = math.sqrt(float(np.median(R[c, taken, j])))
    row_names = ("markers", "video", "imu", "imu_tilt")
    for joint in joints:
        idx = [inp.channels.index(f"{side}_{joint}") for side in SIDES]
        noise = {row_names[j]: float(np.nanmean(sd[idx, j])) for j in range(4) if np.isfinite(sd[idx, j]).any()}
        used = tuple(m for m in ANGLE_MODALITIES if np.isfinite(z[idx][:, :, list(_MEAS[m])]).any())
        if not used:
            # the smoother would return the prior (zero mean, SD of the prior): not an estimate, not a result
            result.warnings.append(f"{joint} angle: no synchronised source measures it; not fused (the prior "
                                   f"alone is not an estimate)")
            continue
        floored = sorted({row_names[j] for c, j in raised if c in idx})
        if len(used) == 1:
            result.warnings.append(
                f"{joint}_angle rests on {used[0]} alone: no cross-check between modalities, no conflict test; its "
                f"variance is that modality's fitted noise (floors: docs/fusion-angles.md), not a validated accuracy.")
        if floored:
            result.warnings.append(f"{joint}_angle: the fitted noise of {', '.join(floored)} was below its floor and "
                                   f"was raised to it (NOISE_FLOOR; e.g. smoothed marker data).")
        mean, var = out.x_smoothed[idx, :, 0].T.copy(), out.P_smoothed[idx, :, 0, 0].T.copy()
        measured = sorted({j for m in ANGLE_MODALITIES for j in _MEAS[m]})  # not the jerk pseudo-measurement
        for k, c in enumerate(idx):
            # the floors are errors that do not average out over samples (soft-tissue artefact, alignment, pose
            # bias): the fused angle is no better than their inverse-variance combination over the modalities
            # that measure it (the white-noise posterior reached 0.08-0.26 deg with markers against 0.35-1.39 deg
            # actual error in simulation; docs/fusion-angles.md)
            floors = [_ANGLE_FLOOR_ROWS[j] for j in _ANGLE_FLOOR_ROWS if np.isfinite(z[c][:, j]).any()]
            if floors:
                var[:, k] = np.maximum(var[:, k], 1.0 / sum(1.0 / f ** 2 for f in floors))
        not_estimated: dict[str, list[tuple[float, float]]] = {}
        for k, c in enumerate(idx):
            if not np.isfinite(z[c][:, measured]).any():  # this side measured by nothing: the prior is no estimate
                mean[:, k] = var[:, k] = np.nan
                result.warnings.append(f"{inp.channels[c]} angle: no synchronised source measures it; left empty "
                                       f"(NaN), not fused")
                continue
            # per sample, the same principle: where the smoother has bridged (or extrapolated) further than the data
            # support, its 95 % band is wider than the joint's range of motion: not an estimate
            gone, note = _not_estimated(t, var[:, k], z[c][:, measured], joint, inp.channels[c])
            if note:
                mean[gone, k] = var[gone, k] = np.nan
                result.warnings.append(note)
            # a channel resting on markers alone has no estimate in frames whose markers are not a body (corrupt
            # or mislabelled): the smoother would bridge them from neighbouring frames of the same corrupt data
            corrupt = inp.marker_not_body[c] & np.isfinite(mean[:, k])
            if corrupt.any() and not np.isfinite(z[c][:, [j for j in measured if j != 0]]).any():
                mean[corrupt, k] = var[corrupt, k] = np.nan
                gone |= corrupt
                result.warnings.append(
                    f"{inp.channels[c]} angle: not estimated (NaN) in {corrupt.sum()} more frames whose markers are "
                    f"not a body (no other modality measures it there)")
            if gone.any():
                not_estimated[inp.channels[c]] = [(float(t[a]), float(t[b - 1])) for a, b in _runs(gone)]
        result.signals.append(FusedSignal(
            name=f"{joint}_angle", times=t, mean=mean, var=var,
            channels=tuple(f"{side}_{joint}" for side in SIDES), units=("rad", "rad"), frame="joint:sagittal",
            inputs=used, noise=noise,
            meta={"noise_per_channel": {inp.channels[c]: {row_names[j]: float(sd[c, j]) for j in range(4)
                                                          if np.isfinite(sd[c, j])} for c in idx},
                  "noise_floored": floored,
                  "not_estimated_s": not_estimated,
                  "max_sd_rad": _RANGE_OF_MOTION_RAD[joint] / (2.0 * _BAND_Z),
                  "video_offset_rad": {inp.channels[c]: float(inp.video_offset[c]) for c in idx},
                  "q_scale": {inp.channels[c]: float(fit.q_scale[c]) for c in idx},
                  "jerk_sd_rad_s3": {inp.channels[c]: float(math.sqrt(np.median(jerk_var[c]) * dt)) for c in idx},
                  "em_converged": bool(fit.converged), "em_iterations": len(fit.loglik) - 1}))
    result.conflicts = found
    result.parameters["noise"] = {row_names[j]: float(np.nanmean(sd[:, j])) for j in range(4)
                                  if np.isfinite(sd[:, j]).any()}
    return result
