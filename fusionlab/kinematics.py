"""Sagittal joint angles from markers with a documented simple model (hip, knee, ankle; left and right).

Model (for Plug-in-Gait-like marker sets: ASIS, PSIS or sacrum, thigh, knee, tibia, ankle, heel, toe)
    Pelvis frame, per frame: ``right`` = unit(RASI - LASI); ``anterior`` = mid-ASIS minus the back point (mid-PSIS,
    else the sacrum marker), made orthogonal to ``right``; ``up`` = right x anterior.
    Hip joint centre: Harrington et al. 2007 regression in the pelvis frame (pelvic width PW = ASIS distance,
    depth PD = back point to mid-ASIS, in m): anterior -0.24 PD - 0.0099, up -0.30 PW - 0.0109, lateral
    0.33 PW + 0.0073.
    Knee and ankle centres: the lateral knee and ankle markers (KNE, ANK). Their lateral offset from the joint
    centre is along the pelvis' medio-lateral axis and does not change a sagittal projection much; this is why the
    model is called simple. The foot is the heel-to-toe line.
    Sagittal plane: orthogonal to the pelvis ``right`` axis. Each segment's angle in that plane is measured from
    straight down, positive when its distal end is anterior:
    ``theta = atan2(v . anterior, -(v . up))``.

    * hip flexion = theta(thigh, hip centre -> knee) (relative to the pelvis, since the plane's axes are the
      pelvis'),
    * knee flexion = theta(thigh) - theta(shank, knee -> ankle),
    * ankle dorsiflexion = (phi(foot, heel -> toe) - 90 deg) - theta(shank), with phi the foot's angle from
      straight down (90 deg when the foot is level in the pelvis frame).

    Angles are in rad, NaN where a marker is missing (a marker at exactly (0, 0, 0), as some writers store a
    missing marker, counts as missing) and where the markers are not a body (`body_frames`: the gait detectors'
    rule, `fusionlab.gait._markers._unusable_frames`, e.g. a pelvis marker less than 0.3 m above a foot marker or
    two markers of one foot within 20 mm; corrupt or mislabelled files), with a note in the angle stream's
    ``meta["warnings"]``. Compared with Plug-in Gait's own angles on the shared files
    (``tests/test_kinematics.py``) the knee follows within a few degrees after removing a constant offset; the
    hip and ankle differ by constant offsets (PiG's thigh and foot axes are defined differently).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps

from fusionlab.exceptions import ValidationError
from fusionlab.gait._markers import (ASIS, PSIS, SACRUM, _foot_markers, _norm, _unusable_frames, _up_axis_of,
                                     _vertical_decision, _with_vertical_up)
from fusionlab.model import Stream
from fusionlab.sync._signals import sided_stem

__all__ = ["ANGLE_CHANNELS", "body_frames", "find_leg_markers", "joint_centres", "sagittal_angles",
           "segment_angle", "segment_frames"]

ANGLE_CHANNELS: tuple[str, ...] = (
    "left_hip_flexion", "left_knee_flexion", "left_ankle_dorsiflexion",
    "right_hip_flexion", "right_knee_flexion", "right_ankle_dorsiflexion",
)

# the marker-naming rule is the gait detectors' (`fusionlab.sync._signals.sided_stem`: the side before or after the
# stem, LHEE / L_Heel / LeftHeel / HEE_L / Heel_L / Pat01:LHEE; CAST/IOR and Qualisys stems): feet from
# `fusionlab.gait._markers._foot_markers`, pelvis from its ASIS / PSIS / SACRUM stems; the leg markers the gait
# detectors do not use, with the same side rule. The knee and ankle are the lateral markers (PiG KNE / ANK, CAST FLE /
# FAL, Qualisys KneeOut / AnkleOut).
_LEG_ROLES: dict[str, tuple[str, ...]] = {
    "asi": ASIS, "psi": PSIS, "thi": ("thi", "thigh"), "kne": ("kne", "knee", "fle", "kneeout"),
    "tib": ("tib", "tibia"),
}
_FOOT_KEYS = {"heel": "hee", "toe": "toe", "ankle": "ank"}


def find_leg_markers(channels: tuple[str, ...]) -> dict[str, str]:
    """Map ``"<side><role>"`` (``"lasi"``, ``"rkne"``, ``"sacr"``, ...) to the channel name; the first channel of
    each role counts. Roles: ``asi``, ``psi``, ``thi``, ``kne``, ``tib``, ``ank``, ``hee``, ``toe`` of each side and
    the unsided ``sacr``."""
    out: dict[str, str] = {}
    for ch in channels:
        if _norm(ch) in SACRUM:
            out.setdefault("sacr", ch)
            continue
        for role, stems in _LEG_ROLES.items():
            hit = sided_stem(ch, stems)
            if hit is not None:
                out.setdefault(hit[0][0] + role, ch)
    for side, roles in _foot_markers(channels).items():
        for role, ch in roles.items():
            if role in _FOOT_KEYS:
                out[side[0] + _FOOT_KEYS[role]] = ch
    return out


def _unit(v: NDArray[np.float64]) -> NDArray[np.float64]:
    """``v`` scaled to unit length along the last axis; NaN where its length is zero or not finite (two markers at
    one place, e.g. a corrupt file, give no direction, not a division warning)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    ok = np.isfinite(n) & (n > 0.0)
    return np.divide(v, n, out=np.full(np.shape(v), np.nan), where=ok)


def body_frames(markers: Stream) -> tuple[Stream, dict[str, int], str | None]:
    """The marker stream with the frames whose markers are not a body made gaps (NaN), by the gait detectors' rule
    (`fusionlab.gait._markers._unusable_frames`, on the markers with the lab's vertical pointing up: per side, a
    pelvis marker less than ``UP_MIN_M`` above a foot marker, or two markers of one foot within
    ``MARKER_MIN_SEP_M``: that foot's markers; the pelvis markers where they fail against every foot seen).

    Returns the stream (the same object when every frame is usable), the number of unusable frames per side and a
    note (None when every frame is usable)."""
    up, sign, _ = _vertical_decision(markers)
    m = _with_vertical_up(markers, up) if sign < 0 else markers
    checked, counts, note = _unusable_frames(m, up)
    if note is None:
        return markers, {}, None
    gone = np.isnan(np.asarray(checked.data, dtype=np.float64)).any(axis=-1)
    data = np.array(markers.data, dtype=np.float64, copy=True)
    data[gone] = np.nan
    what = note.split(": those frames are unusable")[0]
    return (replace(markers, data=data), counts,
            f"{markers.name}: {what}: those frames are unusable, no joint angle there (NaN)")


def _up_axis(markers: Stream) -> int:
    """The lab's vertical axis by the gait detectors' rule (`fusionlab.gait._markers._up_axis_decision`: the
    markers decide where the pelvis stands clearly above the feet, else ``POINT:Y_SCREEN``, else z). The sagittal
    angles do not need it (their axes are the pelvis')."""
    return _up_axis_of(markers)


def joint_centres(markers: Stream) -> dict[str, NDArray[np.float64]]:
    """Pelvis axes and joint centres (m, lab frame), each ``(n, 3)``.

    Keys: ``right``, ``anterior``, ``up`` (pelvis axes), ``<side>_hip``, ``<side>_knee``, ``<side>_ankle``,
    ``<side>_heel``, ``<side>_toe`` for ``side`` in ``left``, ``right`` (heel only where the marker exists).

    Raises
    ------
    ValidationError
        If the stream lacks the pelvis markers (both ASIS and the PSIS or sacrum).
    """
    m = find_leg_markers(markers.channels)
    if "lasi" not in m or "rasi" not in m or not (("lpsi" in m and "rpsi" in m) or "sacr" in m):
        msg = (f"{markers.name}: sagittal angles need both ASIS markers and both PSIS or a sacrum marker; "
               f"found {sorted(m)}.")
        raise ValidationError(msg)

    def p(key: str) -> NDArray[np.float64]:
        xyz = np.array(markers.channel(m[key]), dtype=np.float64)
        xyz[np.all(xyz == 0.0, axis=1)] = np.nan  # some writers store a missing marker as exactly (0, 0, 0)
        return xyz

    lasi, rasi = p("lasi"), p("rasi")
    back = 0.5 * (p("lpsi") + p("rpsi")) if "lpsi" in m and "rpsi" in m else p("sacr")
    mid = 0.5 * (lasi + rasi)
    right = _unit(rasi - lasi)
    ant = mid - back
    ant = _unit(ant - np.sum(ant * right, axis=1, keepdims=True) * right)
    up = np.cross(right, ant)
    pw = np.linalg.norm(rasi - lasi, axis=1, keepdims=True)
    pd = np.linalg.norm(mid - back, axis=1, keepdims=True)
    # Harrington et al. 2007 (coefficients for PW, PD in mm converted to m)
    a_off, u_off, l_off = -0.24 * pd - 0.0099, -0.30 * pw - 0.0109, 0.33 * pw + 0.0073
    out: dict[str, NDArray[np.float64]] = {"right": right, "anterior": ant, "up": up}
    for side, s, sign in (("left", "l", -1.0), ("right", "r", 1.0)):
        out[f"{side}_hip"] = mid + a_off * ant + u_off * up + sign * l_off * right
        for role, key in (("knee", "kne"), ("ankle", "ank"), ("heel", "hee"), ("toe", "toe")):
            if s + key in m:
                out[f"{side}_{role}"] = p(s + key)
    return out


def segment_angle(v: NDArray[np.float64], anterior: NDArray[np.float64],
                  up: NDArray[np.float64]) -> NDArray[np.float64]:
    """Angle (rad) of segment vectors ``v`` in the sagittal plane, from straight down, positive anterior."""
    return np.arctan2(np.sum(v * anterior, axis=1), -np.sum(v * up, axis=1))


def sagittal_angles(markers: Stream, *, name: str | None = None, check_body: bool = True) -> Stream:
    """Hip flexion, knee flexion and ankle dorsiflexion of both legs (rad) from a marker stream.

    Returns a ``model`` stream on the markers' clock and time base, channels `ANGLE_CHANNELS` (an angle whose
    markers are missing is all NaN), frame ``"joint:sagittal"``. Frames whose markers are not a body
    (`body_frames`) give NaN; the stream's ``meta`` then holds ``"unusable_frames"`` (count per side) and the note
    in ``"warnings"``. ``check_body=False`` skips that check (the angles of every frame, corrupt or not).
    """
    checked, unusable, note = body_frames(markers) if check_body else (markers, {}, None)
    c = joint_centres(checked)
    ant, up = c["anterior"], c["up"]
    n = markers.n_samples
    data = np.full((n, len(ANGLE_CHANNELS)), np.nan)
    for k, side in enumerate(("left", "right")):
        if f"{side}_knee" not in c:
            continue
        thigh = segment_angle(c[f"{side}_knee"] - c[f"{side}_hip"], ant, up)
        data[:, 3 * k] = thigh
        if f"{side}_ankle" in c:
            shank = segment_angle(c[f"{side}_ankle"] - c[f"{side}_knee"], ant, up)
            data[:, 3 * k + 1] = thigh - shank
            if f"{side}_heel" in c and f"{side}_toe" in c:
                foot = segment_angle(c[f"{side}_toe"] - c[f"{side}_heel"], ant, up)
                data[:, 3 * k + 2] = (foot - np.pi / 2) - shank
    return Stream(
        name=name or f"{markers.name.removesuffix('markers')}sagittal_angles", modality="model", data=data,
        channels=ANGLE_CHANNELS, units=("rad",) * len(ANGLE_CHANNELS), frame="joint:sagittal",
        rate_hz=markers.rate_hz, start_s=markers.start_s, time_s=markers.time_s, clock=markers.clock,
        orig_units=("rad",) * len(ANGLE_CHANNELS),
        meta={"algorithm": "fusionlab.kinematics.sagittal_angles", "model": "pelvis frame, Harrington 2007 hip "
              "centre, lateral knee/ankle markers, heel-toe foot", "markers": markers.name,
              **({"unusable_frames": unusable, "warnings": [note]} if note else {})})


def _smooth(x: NDArray[np.float64], rate_hz: float, cutoff_hz: float) -> NDArray[np.float64]:
    """Zero-phase 2nd-order Butterworth low-pass per column over gaps (bridged linearly, NaN restored)."""
    out = np.array(x, dtype=float)
    flat = out.reshape(len(out), -1)
    idx = np.arange(len(out))
    b, a = sps.butter(2, min(cutoff_hz / (rate_hz / 2.0), 0.9))
    for j in range(flat.shape[1]):
        ok = np.isfinite(flat[:, j])
        if ok.sum() < 12:
            flat[:, j] = np.nan
            continue
        filled = np.interp(idx, idx[ok], flat[ok, j])
        sm = sps.filtfilt(b, a, filled)
        sm[~ok] = np.nan
        flat[:, j] = sm
    return flat.reshape(out.shape)


def segment_frames(markers: Stream, *, smooth_hz: float = 8.0
                   ) -> tuple[dict[str, NDArray[np.float64]], dict[str, NDArray[np.float64]]]:
    """Segment orientations and mid-segment positions of thighs, shanks and feet, from markers low-passed at
    ``smooth_hz`` (zero-phase; gaps bridged for the filter and restored as NaN).

    Returns ``(rotations, positions)``: dicts keyed ``<side>_<thigh|shank|foot>`` of ``(n, 3, 3)`` matrices whose
    columns are the segment's x (anterior), y (proximal; foot: up) and z (right, from the pelvis) axes in the
    lab frame, and ``(n, 3)`` mid-segment positions (m). Segment axial rotation is not modelled.
    """
    rate = float(markers.rate_hz or 1.0 / np.median(np.diff(markers.times())))
    c = {k: _smooth(v, rate, smooth_hz) for k, v in joint_centres(markers).items()}
    right = _unit(c["right"])
    rots: dict[str, NDArray[np.float64]] = {}
    pos: dict[str, NDArray[np.float64]] = {}
    for side in ("left", "right"):
        pairs = {"thigh": (f"{side}_hip", f"{side}_knee"), "shank": (f"{side}_knee", f"{side}_ankle"),
                 "foot": (f"{side}_heel", f"{side}_toe")}
        for seg, (a, b) in pairs.items():
            if a not in c or b not in c:
                continue
            if seg == "foot":
                x = _unit(c[b] - c[a])
                z = _unit(right - np.sum(right * x, axis=1, keepdims=True) * x)
                y = np.cross(z, x)
            else:
                y = _unit(c[a] - c[b])
                z = _unit(right - np.sum(right * y, axis=1, keepdims=True) * y)
                x = np.cross(y, z)
            rots[f"{side}_{seg}"] = np.stack([x, y, z], axis=2)
            pos[f"{side}_{seg}"] = 0.5 * (c[a] + c[b])
    return rots, pos
