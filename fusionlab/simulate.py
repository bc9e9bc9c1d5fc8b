"""Virtual IMUs and a virtual video camera made from the real markers of a walking trial, with known truth.

Why
    Real recordings with markers, IMUs and video of the same walk are rare; the fusion layer is validated on
    simulations built from *real* marker motion, where the truth (the markers' own angles and positions, the
    clock offsets, the injected faults) is known exactly.

Segments and sensor frames
    From `fusionlab.kinematics.joint_centres` (pelvis axes, hip/knee/ankle centres, heel and toe markers), low-
    passed at `SMOOTH_HZ` first so that the truth is differentiable. Every segment frame (``segment:<side>_<seg>``)
    has x anterior, y proximal (foot: y up), z to the subject's right, with z taken from the pelvis' right axis
    (segment axial rotation is not modelled: the simulation is about the sagittal plane, like the fused angles).

    * thigh: y = unit(hip - knee); shank: y = unit(knee - ankle); foot: x = unit(toe - heel).
    * Sensor position: the middle of the segment (foot: midway heel-toe).

Virtual IMU (``imu`` stream, frame ``sensor:<placement>``, placement ``<side>_<segment>``)
    gyr = segment angular velocity in the sensor frame, ``omega = vee(R' dR/dt)`` (from consecutive rotations),
    plus a constant bias, a bias random walk ("drift") and white noise; acc = specific force
    ``R' (d2p/dt2 + g up)`` plus bias and white noise. Both saturate at the sensor range (clipped). Sampled at
    the marker times on the IMU's own clock.

Virtual video (``video_pose`` stream ``<prefix>pose2d``, MediaPipe's 33 landmark names, frame ``image:sim``)
    A pinhole side camera (`CameraModel`) looking perpendicular to the walking direction (found from the pelvis
    path) at the walkway's middle. Hips, knees, ankles, heels, toes (and shoulders when the markers exist) are
    projected; the other landmarks are NaN with visibility 0. Visibility is high on the near side and lower on
    the far side, with occlusion dropouts; pixel noise grows as visibility falls (heteroscedastic). Frames at
    ``fps`` on the video's own clock.

Faults (`Fault`): ``"video_swap"`` (left and right landmarks exchanged during a window), ``"imu_bias_jump"``
(a gyroscope bias step on one sensor), ``"clock_error"`` (the stored offset of a device is wrong by an amount).

Truth (``Session.metadata["simulation"]``): the clock offsets (``t_session = offset + t_device``), every noise
parameter, the faults, the seed, the source trial. The true angles are `fusionlab.kinematics.sagittal_angles` of
the source markers (stored as a stream when ``include_truth``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from fusionlab import __version__
from fusionlab.consts import MEDIAPIPE_LANDMARKS
from fusionlab.exceptions import ValidationError
from fusionlab.kinematics import find_leg_markers, joint_centres, sagittal_angles, segment_frames
from fusionlab.model import ClockEntry, Session, Stream

__all__ = ["DEFAULT_IMUS", "CameraModel", "Fault", "ImuNoise", "VideoNoise", "available_placements", "imu_oracle_knee",
           "simulate_session", "true_angle", "true_clocks", "virtual_camera", "virtual_imu"]

G = 9.80665
SMOOTH_HZ = 8.0
SEGMENTS = ("thigh", "shank", "foot")
_SIMULATED = {"hip": "hip", "knee": "knee", "ankle": "ankle", "heel": "heel", "foot_index": "toe"}
DEFAULT_IMUS: tuple[str, ...] = ("left_shank", "right_shank", "left_thigh", "right_thigh")
"""The IMU placements simulated by default (those of them the trial's markers allow)."""
FPS_MAX = 1000.0
"""Highest virtual camera frame rate accepted (Hz): a high-speed camera; more would only make huge streams."""
FAULT_KINDS = ("video_swap", "imu_bias_jump", "clock_error")
# the markers each segment needs, by `fusionlab.kinematics.find_leg_markers` role (e.g. "kne" = LKNE / RKNE)
_SEGMENT_ROLES = {"thigh": ("kne",), "shank": ("kne", "ank"), "foot": ("hee", "toe")}
_ROLE_NAMES = {"kne": "knee", "ank": "ankle", "hee": "heel", "toe": "toe"}


def _source_name(source: Session, markers: Stream) -> str:
    return str(markers.meta.get("source") or (source.sources[0].path if source.sources else "") or markers.name)


def available_placements(markers: Stream) -> tuple[str, ...]:
    """The IMU placements (``<side>_<thigh|shank|foot>``) the markers of ``markers`` allow, sorted."""
    rots, _ = segment_frames(markers, smooth_hz=SMOOTH_HZ)
    return tuple(sorted(rots))


def _missing_markers(markers: Stream, placement: str) -> str:
    """Which markers ``placement`` needs that ``markers`` lacks, in words."""
    side, _, seg = placement.partition("_")
    found = find_leg_markers(markers.channels)
    need = [r for r in _SEGMENT_ROLES.get(seg, ()) if side[:1] + r not in found]
    return ", ".join(f"{side} {_ROLE_NAMES[r]} (e.g. {side[:1].upper()}{r.upper()})" for r in need)


def _check_number(name: str, value: float, *, positive: bool = False, maximum: float | None = None) -> None:
    ok = isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 or not positive) \
        and (maximum is None or value <= maximum)
    if not ok:
        rule = "a finite number" + (" > 0" if positive else "") + (f" up to {maximum:g}" if maximum else "")
        msg = f"Invalid value for {name!r}. Allowed values are {rule}, but got {value!r} instead."
        raise ValidationError(msg)


@dataclass(frozen=True)
class ImuNoise:
    """IMU error model (SI). Defaults: a consumer MEMS IMU (e.g. 0.02 rad/s gyroscope noise per sample)."""

    gyr_noise_rad_s: float = 0.02
    gyr_bias_sd_rad_s: float = 0.02
    gyr_drift_rad_s_per_sqrt_s: float = 0.002
    acc_noise_m_s2: float = 0.1
    acc_bias_sd_m_s2: float = 0.1
    gyr_range_rad_s: float = math.radians(2000.0)
    acc_range_m_s2: float = 16 * G


@dataclass(frozen=True)
class VideoNoise:
    """Keypoint error model: pixel noise SD = ``px_noise_at_full_visibility / visibility``."""

    px_noise_at_full_visibility: float = 2.0
    near_visibility: float = 0.95
    far_visibility: float = 0.75
    dropout_rate_per_s: float = 0.3
    dropout_visibility: float = 0.2
    dropout_duration_s: tuple[float, float] = (0.1, 0.4)


@dataclass(frozen=True)
class CameraModel:
    """Pinhole side camera: distance from the walking line (m), height (m), focal length (px), image size."""

    distance_m: float = 6.0
    height_m: float = 1.0
    focal_px: float = 800.0
    width_px: int = 1280
    height_px: int = 720


@dataclass(frozen=True)
class Fault:
    """An injected fault. ``kind``: ``video_swap``, ``imu_bias_jump`` or ``clock_error``.

    ``target``: the IMU placement (``imu_bias_jump``) or ``"imu"``/``"video"`` (``clock_error``); ``start_s`` and
    ``duration_s`` on the session clock; ``magnitude``: rad/s for a bias jump, s for a clock error.
    """

    kind: str
    start_s: float = 0.0
    duration_s: float = math.inf
    target: str = ""
    magnitude: float = 0.0


def _up_vector(markers: Stream) -> NDArray[np.float64]:
    axes = markers.meta.get("lab_axes") or {}
    y_screen = str(axes.get("y_screen", "")).strip().upper()
    up = np.zeros(3)
    up["XYZ".index(y_screen[-1]) if y_screen[-1:] in ("X", "Y", "Z") else 2] = 1.0
    return up


def virtual_imu(markers: Stream, placement: str, rng: np.random.Generator, *, noise: ImuNoise | None = None,
                clock: str = "sim:imu", offset_s: float = 0.0, bias_jump: Fault | None = None,
                name: str | None = None) -> tuple[Stream, dict[str, NDArray[np.float64]]]:
    """A simulated IMU on ``placement`` (``left_shank``, ``right_foot``, ...) from a marker stream.

    Returns the ``imu`` stream (device time = session time - ``offset_s``) and the truth: ``gyr`` and ``acc``
    without errors, ``gyr_bias`` (the bias actually added, per sample), all ``(n, 3)`` in the sensor frame.
    """
    noise = noise or ImuNoise()
    rots, pos = segment_frames(markers, smooth_hz=SMOOTH_HZ)
    if placement not in rots:
        msg = f"Invalid value for 'placement': {placement!r} cannot be built from {markers.name}; available: " \
              f"{', '.join(sorted(rots))}."
        raise ValidationError(msg)
    t = markers.times()
    R, p = rots[placement], pos[placement]
    ok = np.all(np.isfinite(R.reshape(len(R), -1)), axis=1) & np.all(np.isfinite(p), axis=1)
    gyr = np.full((len(t), 3), np.nan)
    acc = np.full((len(t), 3), np.nan)
    idx = np.flatnonzero(ok)
    if len(idx) < 10:
        msg = f"{markers.name}: too few complete frames to simulate {placement}."
        raise ValidationError(msg)
    rot = Rotation.from_matrix(R[idx])
    tm = t[idx]
    # omega (sensor frame) at midpoints, from consecutive orientations: R_k' R_{k+1} = exp([omega] dt)
    w_mid = (rot[:-1].inv() * rot[1:]).as_rotvec() / np.diff(tm)[:, None]
    t_mid = 0.5 * (tm[1:] + tm[:-1])
    for j in range(3):
        gyr[idx, j] = np.interp(tm, t_mid, w_mid[:, j])
    up = _up_vector(markers)
    a_lab = np.gradient(np.gradient(p[idx], tm, axis=0), tm, axis=0) + G * up
    acc[idx] = np.einsum("nji,nj->ni", R[idx], a_lab)  # R' a
    truth = {"gyr": gyr.copy(), "acc": acc.copy()}
    n = len(t)
    dt = float(np.median(np.diff(t)))
    bias = rng.normal(0.0, noise.gyr_bias_sd_rad_s, 3) + np.cumsum(
        rng.normal(0.0, noise.gyr_drift_rad_s_per_sqrt_s * math.sqrt(dt), (n, 3)), axis=0)
    if bias_jump is not None:
        jump = (t >= bias_jump.start_s) & (t < bias_jump.start_s + bias_jump.duration_s)
        bias[jump] += bias_jump.magnitude
    truth["gyr_bias"] = bias
    g_meas = np.clip(gyr + bias + rng.normal(0.0, noise.gyr_noise_rad_s, (n, 3)),
                     -noise.gyr_range_rad_s, noise.gyr_range_rad_s)
    a_meas = np.clip(acc + rng.normal(0.0, noise.acc_bias_sd_m_s2, 3) + rng.normal(0.0, noise.acc_noise_m_s2, (n, 3)),
                     -noise.acc_range_m_s2, noise.acc_range_m_s2)
    data = np.stack([a_meas, g_meas], axis=1)
    stream = Stream(
        name=name or f"sim.{placement}", modality="imu", data=data, channels=("acc", "gyr"), units=("m/s^2", "rad/s"),
        orig_units=("m/s^2", "rad/s"), components=("x", "y", "z"), frame=f"sensor:{placement}",
        rate_hz=markers.rate_hz, start_s=(markers.start_s if markers.time_s is None else 0.0) - offset_s,
        time_s=None if markers.time_s is None else markers.time_s - offset_s, clock=clock,
        meta={"placement": placement, "simulated": True, "source_markers": markers.name,
              "noise": asdict(noise), "sensor_frame": "segment frame: x anterior, y proximal (foot: up), z right"})
    return stream, truth


def _walking_axis(markers: Stream, up: NDArray[np.float64]) -> NDArray[np.float64]:
    c = joint_centres(markers)
    mid = 0.5 * (c["left_hip"] + c["right_hip"])
    mid = mid[np.all(np.isfinite(mid), axis=1)]
    horiz = mid - np.outer(mid @ up, up)
    d = horiz[-1] - horiz[0]
    if np.linalg.norm(d) < 0.3:  # treadmill: the walking direction is where the pelvis faces
        a = c["anterior"][np.all(np.isfinite(c["anterior"]), axis=1)].mean(axis=0)
        d = a - (a @ up) * up
    return d / np.linalg.norm(d)


def virtual_camera(markers: Stream, rng: np.random.Generator, *, fps: float = 30.0, camera: CameraModel | None = None,
                   noise: VideoNoise | None = None, clock: str = "sim:video", offset_s: float = 0.0,
                   swap: Fault | None = None, name: str = "sim.pose2d") -> tuple[Stream, dict[str, Any]]:
    """A simulated side-camera pose stream (33 MediaPipe landmarks, px, visibility) from a marker stream.

    Returns the ``video_pose`` stream (device time = session time - ``offset_s``) and the truth: the noise-free
    pixel coordinates ``xy`` ``(n, 33, 2)``, the frame times on the session clock ``t``, the near side.
    """
    camera = camera or CameraModel()
    noise = noise or VideoNoise()
    up = _up_vector(markers)
    fwd = _walking_axis(markers, up)
    side_dir = np.cross(up, fwd)  # the walker's left when walking along fwd
    c = joint_centres(markers)
    t_m = markers.times()
    centre = np.nanmean(0.5 * (c["left_hip"] + c["right_hip"]), axis=0)
    # the camera stands on the walker's right, looking left: the right leg is the near one
    cam = centre - side_dir * camera.distance_m
    cam = cam - (cam @ up) * up + camera.height_m * up + (np.nanmin(c["left_heel"] @ up) if "left_heel" in c
                                                          else 0.0) * up
    x_axis, y_axis, z_axis = fwd, -up, side_dir  # image right = walking direction, image down, depth
    t_frames = np.arange(t_m[0], t_m[-1], 1.0 / fps)
    n = len(t_frames)
    xy_true = np.full((n, len(MEDIAPIPE_LANDMARKS), 2), np.nan)
    for k, lm in enumerate(MEDIAPIPE_LANDMARKS):
        side, _, part = lm.partition("_")
        key = f"{side}_{_SIMULATED.get(part, part)}"
        if key not in c or side not in ("left", "right"):
            continue
        pts = np.stack([np.interp(t_frames, t_m, c[key][:, j]) for j in range(3)], axis=1) - cam
        depth = pts @ z_axis
        xy_true[:, k, 0] = camera.focal_px * (pts @ x_axis) / depth + camera.width_px / 2
        xy_true[:, k, 1] = camera.focal_px * (pts @ y_axis) / depth + camera.height_px / 2
    vis = np.zeros((n, len(MEDIAPIPE_LANDMARKS)))
    present = np.isfinite(xy_true[:, :, 0])
    for k, lm in enumerate(MEDIAPIPE_LANDMARKS):
        base = noise.near_visibility if lm.startswith("right_") else noise.far_visibility
        vis[:, k] = np.where(present[:, k], np.clip(base + rng.normal(0.0, 0.03, n), 0.05, 1.0), 0.0)
    # occlusion dropouts: a landmark's visibility collapses for a while (the estimator still reports a position)
    n_drop = rng.poisson(noise.dropout_rate_per_s * n / fps * present.any(axis=0).sum() / 10.0)
    for _ in range(n_drop):
        k = rng.choice(np.flatnonzero(present.any(axis=0)))
        i0 = rng.integers(0, n)
        i1 = min(n, i0 + max(1, round(rng.uniform(*noise.dropout_duration_s) * fps)))
        vis[i0:i1, k] = noise.dropout_visibility
    # outside the image the pose estimator sees nothing
    outside = ~((xy_true[..., 0] >= 0) & (xy_true[..., 0] < camera.width_px) & (xy_true[..., 1] >= 0)
                & (xy_true[..., 1] < camera.height_px))
    present &= ~outside
    vis[~present] = 0.0
    sd_px = noise.px_noise_at_full_visibility / np.maximum(vis, 0.05)
    xy = xy_true + rng.normal(0.0, 1.0, xy_true.shape) * sd_px[:, :, None]
    xy[~present] = np.nan
    if swap is not None:
        w = (t_frames >= swap.start_s) & (t_frames < swap.start_s + swap.duration_s)
        for k, lm in enumerate(MEDIAPIPE_LANDMARKS):
            if lm.startswith("left_"):
                j = MEDIAPIPE_LANDMARKS.index("right_" + lm[5:])
                xy[w, k], xy[w, j] = xy[w, j].copy(), xy[w, k].copy()
                vis[w, k], vis[w, j] = vis[w, j].copy(), vis[w, k].copy()
    conf = np.where(present, vis, np.nan)
    stream = Stream(
        name=name, modality="video_pose", data=xy, channels=MEDIAPIPE_LANDMARKS,
        units=("px",) * len(MEDIAPIPE_LANDMARKS), orig_units=("px",) * len(MEDIAPIPE_LANDMARKS),
        components=("x", "y"), frame="image:sim", time_s=t_frames - offset_s, clock=clock, confidence=conf,
        meta={"simulated": True, "source_markers": markers.name, "camera": asdict(camera), "noise": asdict(noise),
              "near_side": "right", "fps": fps,
              "scale_m_per_px": camera.distance_m / camera.focal_px,
              "scale": {"m_per_px": camera.distance_m / camera.focal_px,
                        "sd_m_per_px": 0.02 * camera.distance_m / camera.focal_px, "method": "simulation"}})
    return stream, {"xy": xy_true, "t": t_frames, "near_side": "right"}


def simulate_session(source: Session, *, markers: str | None = None,
                     imus: Sequence[str] | None = None,
                     video: bool = True, fps: float = 30.0, imu_offset_s: float = 0.0, video_offset_s: float = 0.0,
                     faults: Sequence[Fault] = (), include_markers: bool = True, include_truth: bool = True,
                     seed: int = 0, imu_noise: ImuNoise | None = None,
                     video_noise: VideoNoise | None = None) -> Session:
    """A session with virtual IMUs and a virtual camera made from a real trial's markers.

    Parameters
    ----------
    source
        A session holding a marker stream (e.g. `fusionlab.adapters.c3d.read_c3d` of a walking trial).
    markers
        Name of the marker stream (default: the first ``markers`` stream).
    imus
        Placements of the virtual IMUs (``<side>_<thigh|shank|foot>``), all on one IMU clock. None (default): those
        of `DEFAULT_IMUS` (both shanks and thighs) the markers allow, else every placement they allow (e.g. the feet
        of a trial without knee markers), with a note in ``metadata["simulation"]["notes"]``; ``()``: none.
    video, fps
        Add a virtual side camera at ``fps`` (Hz, > 0 and at most `FPS_MAX`).
    imu_offset_s, video_offset_s
        True clock offsets: ``t_session = offset + t_device``. The session stores these clocks as
        ``unsynchronised`` (to be found by `fusionlab sync`), except when a ``clock_error`` fault asks to store
        them as known, with an error.
    faults
        Injected faults (`Fault`).
    include_markers, include_truth
        Keep the source markers (on the session clock) and the true sagittal angles (stream ``truth.angles``).

    Raises
    ------
    ValidationError
        If a number is out of range (``fps``, offsets, ``seed``, a fault's times or magnitude), a fault's target is
        not simulated, or the markers cannot build the IMU placements (the message names the source file, the
        markers missing and the placements available).
    """
    _check_number("fps", fps, positive=True, maximum=FPS_MAX)
    _check_number("imu_offset_s", imu_offset_s)
    _check_number("video_offset_s", video_offset_s)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        msg = f"Invalid value for 'seed'. Allowed values are integers >= 0, but got {seed!r} instead."
        raise ValidationError(msg)
    names = [s.name for s in source.streams if s.modality == "markers"] if markers is None else [markers]
    if not names:
        msg = "simulate_session: the source session has no marker stream."
        raise ValidationError(msg)
    m = source.stream(names[0])
    m = Stream(**{**m.__dict__, "clock": "sim:mocap"})
    where = _source_name(source, m)
    try:
        available = available_placements(m)
    except ValidationError as e:  # no pelvis markers
        msg = f"{where}: cannot simulate from these markers: {e}"
        raise ValidationError(msg) from e
    notes: list[str] = []
    if imus is None:
        imus = tuple(p for p in DEFAULT_IMUS if p in available) or available
        if not imus:
            msg = (f"{where} has no leg markers fusionlab recognises below the pelvis (of its {len(m.channels)} "
                   f"markers it recognises {', '.join(sorted(find_leg_markers(m.channels).values())) or 'none'}): "
                   "a virtual IMU needs, per "
                   "leg, the knee marker (thigh), the knee and ankle markers (shank) or the heel and toe markers "
                   "(foot), named as in Plug-in Gait (LKNE, LANK, LHEE, LTOE, or L_Knee, Left_Heel, ...). Rename "
                   "the markers, or simulate without IMUs (imus=(); on the command line --imu '').")
            raise ValidationError(msg)
        skipped = [p for p in DEFAULT_IMUS if p not in imus]
        if skipped:
            notes.append(f"{where}: no IMU on {', '.join(skipped)} (missing markers: "
                         + "; ".join(f"{p}: {_missing_markers(m, p)}" for p in skipped)
                         + f"); simulated: {', '.join(imus)}")
    imus = tuple(dict.fromkeys(imus))
    bad = [p for p in imus if p not in available]
    if bad:
        why = "; ".join(f"{p}: " + (f"needs the {_missing_markers(m, p)} marker(s)" if _missing_markers(m, p)
                                    else "not a placement (<left|right>_<thigh|shank|foot>)") for p in bad)
        msg = (f"{where}: cannot simulate an IMU on {', '.join(bad)} ({why}). The markers of {where} allow: "
               f"{', '.join(available) or 'no placement'}; choose among them (imus=...; on the command line "
               "--imu P1,P2, or --imu '' for none).")
        raise ValidationError(msg)
    for f in faults:
        _check_fault(f, imus, video)
    rng = np.random.default_rng(seed)
    streams: list[Stream] = []
    clocks: dict[str, ClockEntry] = {}
    truth: dict[str, Any] = {"imu_offset_s": imu_offset_s, "video_offset_s": video_offset_s, "seed": seed,
                             "faults": [asdict(f) for f in faults], "markers": m.name,
                             "source": [s.path for s in source.sources], "imus": list(imus), "notes": notes}
    if include_markers:
        streams.append(m)
    clocks["sim:mocap"] = ClockEntry("sim:mocap", 0.0, 0.0, 0.0, 0.0, "reference")
    clock_errors = {f.target: f.magnitude for f in faults if f.kind == "clock_error"}
    if imus:
        for placement in imus:
            jump = next((f for f in faults if f.kind == "imu_bias_jump" and f.target == placement), None)
            st, imu_truth = virtual_imu(m, placement, rng, noise=imu_noise, offset_s=imu_offset_s, bias_jump=jump)
            streams.append(st)
            b0 = imu_truth["gyr_bias"][0]  # the bias at the first sample, as a still period before the walk gives
            truth.setdefault("imu_bias_start_rad_s", {})[placement] = [float(v) for v in b0]
        clocks["sim:imu"] = (ClockEntry("sim:imu", imu_offset_s + clock_errors["imu"], 0.001, 0.0, math.nan,
                                        "prior", quality="simulated clock error")
                             if "imu" in clock_errors else ClockEntry("sim:imu"))
    if video:
        swap = next((f for f in faults if f.kind == "video_swap"), None)
        st, _ = virtual_camera(m, rng, fps=fps, noise=video_noise, offset_s=video_offset_s, swap=swap)
        streams.append(st)
        clocks["sim:video"] = (ClockEntry("sim:video", video_offset_s + clock_errors["video"], 0.001, 0.0, math.nan,
                                          "prior", quality="simulated clock error")
                               if "video" in clock_errors else ClockEntry("sim:video"))
    if include_truth:
        angles = sagittal_angles(m, name="truth.angles")
        streams.append(Stream(**{**angles.__dict__, "meta": {**angles.meta, "simulation_truth": True}}))
    return Session(streams=tuple(streams), clocks=clocks, subject=source.subject or "SIM",
                   session_date=source.session_date,
                   metadata={"simulation": truth, "simulated_with": f"fusionlab {__version__}"},
                   sources=source.sources)


def _check_fault(f: Fault, imus: Sequence[str], video: bool) -> None:
    """A fault must name a known kind, finite times, a positive duration and a target that is simulated."""
    if f.kind not in FAULT_KINDS:
        msg = f"Invalid value for 'faults'. Allowed kinds are {', '.join(FAULT_KINDS)}, but got {f.kind!r} instead."
        raise ValidationError(msg)
    _check_number(f"{f.kind} start_s", f.start_s)
    if not (f.duration_s > 0):  # inf (to the end) is allowed
        msg = f"Invalid value for '{f.kind} duration_s'. Allowed values are > 0 s, but got {f.duration_s!r} instead."
        raise ValidationError(msg)
    _check_number(f"{f.kind} magnitude", f.magnitude)
    if f.kind == "imu_bias_jump" and f.target not in imus:
        msg = (f"Invalid value for 'imu_bias_jump' target. Allowed values are the simulated IMUs "
               f"({', '.join(imus) or 'none'}), but got {f.target!r} instead.")
        raise ValidationError(msg)
    if f.kind == "clock_error":
        allowed = [t for t, on in (("imu", bool(imus)), ("video", video)) if on]
        if f.target not in allowed:
            msg = (f"Invalid value for 'clock_error' target. Allowed values are the simulated devices "
                   f"({', '.join(allowed) or 'none'}), but got {f.target!r} instead.")
            raise ValidationError(msg)
    if f.kind == "video_swap" and not video:
        msg = "Invalid value for 'faults': video_swap needs the virtual camera (video=True)."
        raise ValidationError(msg)


# ------------------------------------------------------------------------------------------ validation references
def true_angle(sim: Session, times: NDArray[np.float64], channel: str) -> NDArray[np.float64]:
    """The true angle ``channel`` of ``truth.angles`` (e.g. ``left_knee_flexion``) at ``times`` (NaN outside)."""
    tr = sim.stream("truth.angles")
    return np.interp(times, tr.times(), np.asarray(tr.channel(channel), dtype=float), left=np.nan, right=np.nan)


def imu_oracle_knee(sim: Session, side: str, t: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    """An oracle reference for validation, not a single modality: the knee rate of the thigh and shank gyroscopes
    with each gyroscope's TRUE start bias removed, integrated from the TRUE angle at the first sample."""
    b0 = sim.metadata["simulation"]["imu_bias_start_rad_s"]
    rate = np.zeros(len(t))
    for seg, sign in (("thigh", 1.0), ("shank", -1.0)):
        s = next(s for s in sim.streams if s.meta.get("placement") == f"{side}_{seg}")
        g = s.channel("gyr")[:, 2] - b0[f"{side}_{seg}"][2]
        ok = np.isfinite(g)
        rate += sign * np.interp(t, s.times()[ok], g[ok])
    ang = np.concatenate([[0.0], np.cumsum(0.5 * (rate[1:] + rate[:-1]) * np.diff(t))])
    k0 = np.flatnonzero(np.isfinite(truth))[0]
    return ang - ang[k0] + truth[k0]


def true_clocks(sim: Session, sd_s: float = 0.001) -> Session:
    """The simulated session with its unsynchronised clocks set as an exact `fusionlab sync` would leave them: the
    true offsets with ``sd_s`` (method ``prior``). A clock stored with an injected error (``clock_error``) is kept.
    For validation runs that skip the synchronisation step (the fusion models do not fuse unsynchronised streams)."""
    truth = sim.metadata["simulation"]
    off = {"sim:imu": truth["imu_offset_s"], "sim:video": truth["video_offset_s"]}
    clocks = {k: (dataclasses.replace(e, offset_s=off.get(k, 0.0), offset_sd_s=sd_s, method="prior",
                                      quality="simulation truth") if e.method == "unsynchronised" else e)
              for k, e in sim.clocks.items()}
    return dataclasses.replace(sim, clocks=clocks)
