"""Physically matched signals derived from streams, for synchronisation.

Every function returns `Signal` objects whose ``quantity`` names what they measure; only signals of the same
quantity are correlated. Quantities:

``angular_speed:<placement>``
    Magnitude of the angular velocity of a body segment (rad/s): the norm of an IMU's gyroscope, or, from
    markers, the rotation rate of the rigid body through the segment's markers. The norm does not depend on how
    the sensor sits on the segment, so no sensor-to-segment calibration is needed.
``heel_vertical_velocity:<side>``
    Upward velocity of the heel: from a heel marker (m/s, lab up axis) or from the video heel keypoint
    (px/s, image y points down so the sign is flipped). Correlation does not care about the scale.
``vertical_grf``
    Sum of the vertical ground reaction forces of all plates of one clock (N).
``body_vertical_acceleration``
    Vertical acceleration of the body's centre of mass, three ways: from force plates that carry the subject the
    whole time (treadmill, instrumented walkway: summed Fz / body weight - 1, in g; plates that see only some
    steps of an overground walk give no such signal, since the force off the plates is unknown); from the
    pelvis markers (mean of ASIS, PSIS or sacrum markers, lab vertical, low-passed at 6 Hz and differentiated
    twice, m/s^2); from a lower-back IMU (norm of the accelerometer, m/s^2: the specific force is dominated by
    gravity plus the vertical acceleration, so its norm follows the vertical acceleration).
"""

from __future__ import annotations

import re

import numpy as np
from numpy.typing import NDArray
from scipy import signal as sps

from fusionlab.model import Stream
from fusionlab.sync.base import Signal

__all__ = ["FOOT_MARKERS", "PELVIS_MARKERS", "find_pelvis_markers", "forceplate_signals", "imu_signals",
           "marker_signals", "signals_of", "video_signals"]

PELVIS_MARKERS = ("asi", "asis", "psi", "psis", "ias", "ips")  # sided (LASI, RPSIS, L_IAS, PSIS_R, ...)
SACRUM_MARKERS = ("sacr", "sacrum", "sac", "sacrm", "sacral", "vsacral", "s1")  # unsided
BACK_PLACEMENTS = ("lower_back", "pelvis", "sacrum", "lumbar")
FULL_SUPPORT_FRACTION = 0.95  # plates carry the subject in at least this fraction of samples: treadmill/walkway
SUPPORT_THRESHOLD_N = 20.0
PELVIS_CUTOFF_HZ = 6.0  # pelvis positions are differentiated twice: smoother than the 15 Hz used for velocities

# normalised marker-name stems (lowercase, subject prefix and separators removed, side letter removed)
FOOT_MARKERS = {
    "heel": ("hee", "heel", "fcc", "cal", "calc", "calcaneus", "hl", "heelback", "tln", "talon"),
    "toe": ("toe", "tt", "mt2", "fm2", "fm1", "mt1", "mth2", "toetip", "forefoot2", "hallux", "hlx"),
    "mt5": ("fm5", "mt5", "vmt5", "met5", "mth5", "m5", "forefoot5"),
}
SIDE_WORDS = {"l": "left", "left": "left", "r": "right", "right": "right",
              # French: gauche / droite, after the stem (MT1G, TLND, Talon_G)
              "g": "left", "gauche": "left", "d": "right", "droite": "right", "droit": "right"}
_FRONT_SIDES = ("left", "right", "l", "r")  # glued before the stem (LHEE)
_BACK_SIDES = ("gauche", "droite", "droit", "left", "right", "l", "r", "g", "d")  # glued after it (HeelL, MT1G)


def _norm_name(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.split(":")[-1].lower())


def _name_tokens(name: str) -> list[str]:
    """Lower-case words of a marker name without its subject prefix, split at separators, at a change from lower to
    upper case and at digits: ``"Pat01:LToeTip"`` -> ``["l", "toe", "tip"]``, ``"HEE_L"`` -> ``["hee", "l"]``."""
    base = name.split(":")[-1]
    return [t.lower() for t in re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+", base)]


def side_readings(name: str) -> list[tuple[str, str]]:
    """Every reading of a marker name as ``(side, stem)``, most explicit first: the side as a separate first or last
    word (``"L_Heel"``, ``"L.Heel"``, ``"LeftHeel"``, ``"Heel_L"``, ``"HEE_L"``, ``"HeelL"``), then glued to the
    front of the normalised name (``"LHEE"``, ``"lhee"``), or to its back when it does not begin with a side
    letter (``"heell"``). The stem is the rest, normalised (lower case, no separators)."""
    toks = _name_tokens(name)
    n = _norm_name(name)
    out: list[tuple[str, str]] = []
    if len(toks) > 1 and toks[0] in _FRONT_SIDES:
        out.append((SIDE_WORDS[toks[0]], "".join(toks[1:])))
    if len(toks) > 1 and toks[-1] in SIDE_WORDS:
        out.append((SIDE_WORDS[toks[-1]], "".join(toks[:-1])))
    glued_front = False
    for word in _FRONT_SIDES:
        if n.startswith(word) and len(n) > len(word):
            out.append((SIDE_WORDS[word], n[len(word):]))
            glued_front = True
            break
    for word in _BACK_SIDES:  # "heell", "mt1g", only for a name that does not begin with a side letter
        if not glued_front and n.endswith(word) and len(n) > len(word):  # ("LMALL" is L + MALL, not LMAL + L)
            out.append((SIDE_WORDS[word], n[:-len(word)]))
            break
    return out


def sided_stem(name: str, stems: frozenset[str] | set[str] | tuple[str, ...]) -> tuple[str, str] | None:
    """``(side, stem)`` of a marker name whose stem is one of ``stems``, or None: no reading names a known stem, the
    whole name is itself an unsided stem (``"Heel"`` is not a left ``"hee"``), or readings disagree on the side
    (see `ambiguous_side`)."""
    hits = _known_readings(name, stems)
    if not hits or len({side for side, _ in hits}) > 1:
        return None
    return hits[0]


def _known_readings(name: str, stems: frozenset[str] | set[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """The readings of `side_readings` whose stem is known; the glued ones only when the whole name is not itself an
    unsided stem (``"Heel"``, ``"sacr"``), the ones with the side as a separate word always (``"HEE_L"``)."""
    toks = _name_tokens(name)
    explicit = len(toks) > 1 and (toks[0] in _FRONT_SIDES or toks[-1] in SIDE_WORDS)
    n_explicit = (toks[0] in _FRONT_SIDES) + (toks[-1] in SIDE_WORDS) if explicit else 0
    readings = side_readings(name)
    if _norm_name(name) in stems:
        readings = readings[:n_explicit]
    return [(side, stem) for side, stem in readings if stem in stems]


def ambiguous_side(name: str, stems: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    """Whether ``name`` reads as a known stem on both sides (``"LTOER"``): such a marker is not used."""
    return len({side for side, _ in _known_readings(name, stems)}) > 1


_FOOT_STEMS = frozenset(s for stems in FOOT_MARKERS.values() for s in stems)


def find_foot_markers(channels: tuple[str, ...]) -> dict[str, dict[str, str]]:
    """Map side -> {"heel"|"toe"|"mt5": channel name} for the foot markers found among ``channels``."""
    out: dict[str, dict[str, str]] = {}
    for ch in channels:
        hit = sided_stem(ch, _FOOT_STEMS)
        if hit is None:
            continue
        side, stem = hit
        for role, stems in FOOT_MARKERS.items():
            if stem in stems and role not in out.get(side, {}):
                out.setdefault(side, {})[role] = ch
    return out


def find_pelvis_markers(channels: tuple[str, ...]) -> list[str]:
    """The pelvis markers among ``channels``: both ASIS and both PSIS when present, else the sacrum marker."""
    sided = [ch for ch in channels if sided_stem(ch, PELVIS_MARKERS) is not None]
    if len(sided) >= 2:
        return sided
    return [ch for ch in channels if _norm_name(ch) in SACRUM_MARKERS][:1]


def _smooth(x: NDArray[np.float64], rate_hz: float, cutoff_hz: float = 15.0) -> NDArray[np.float64]:
    """Zero-phase low-pass of each column, bridging short NaN gaps for the filter and restoring NaN after.

    15 Hz removes marker jitter before differentiation and keeps the gait content (< 10 Hz). Heavier smoothing
    of positions (6 Hz) biased the IMU-to-marker lag by 5 ms on the gaitmap recording; 15 Hz gave 0.1 ms.
    """
    out = np.array(x, dtype=float)
    if len(out) < 30 or cutoff_hz >= 0.45 * rate_hz:
        return out
    b, a = sps.butter(2, cutoff_hz / (rate_hz / 2.0))
    flat = out.reshape(len(out), -1)
    idx = np.arange(len(out))
    for j in range(flat.shape[1]):
        col = flat[:, j]
        ok = np.isfinite(col)
        if ok.sum() < 30:
            flat[:, j] = np.nan
            continue
        filled = np.interp(idx, idx[ok], col[ok])
        sm = sps.filtfilt(b, a, filled)
        sm[~ok] = np.nan
        flat[:, j] = sm
    return flat.reshape(out.shape)


def _segment_angular_speed(t: NDArray[np.float64], markers: list[NDArray[np.float64]]) -> tuple[
        NDArray[np.float64], NDArray[np.float64]]:
    """Rotation rate (rad/s) of the rigid body through 2 or 3 markers; returns midpoint times and speeds."""
    dt = np.diff(t)
    if len(markers) >= 3:
        a, b, c = markers[:3]
        x = a - b
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        z = np.cross(x, c - b)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        y = np.cross(z, x)
        rot = np.stack([x, y, z], axis=2)
        rel = np.einsum("nij,nkj->nik", rot[1:], rot[:-1])
        cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
        speed = np.arccos(cos) / dt
    else:  # two markers: rotation rate of the line through them (misses the spin about that line)
        u = markers[0] - markers[1]
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        cos = np.clip(np.sum(u[1:] * u[:-1], axis=1), -1.0, 1.0)
        speed = np.arccos(cos) / dt
    return 0.5 * (t[1:] + t[:-1]), speed


def imu_signals(stream: Stream) -> list[Signal]:
    """``angular_speed:<placement>`` from an IMU's gyroscope."""
    if stream.modality != "imu" or "gyr" not in stream.channels:
        return []
    placement = str(stream.meta.get("placement", stream.frame.split(":", 1)[-1]))
    gyr = stream.channel("gyr")
    out = [Signal(stream.times(), np.linalg.norm(gyr, axis=1), f"angular_speed:{placement}", f"{stream.name}:gyr")]
    if placement in BACK_PLACEMENTS and "acc" in stream.channels:
        out.append(Signal(stream.times(), np.linalg.norm(stream.channel("acc"), axis=1),
                          "body_vertical_acceleration", f"{stream.name}:acc"))
    return out


def _vertical(stream: Stream) -> tuple[int, float]:
    """``(axis, sign)`` of the lab's vertical by the shared rule (`fusionlab.gait._markers._vertical_decision`):
    the markers decide where the pelvis stands clearly above (or, axis pointing down, below) the feet, else the
    declaration (`_declared_up_axis`), else z; height = ``sign * position[:, axis]``."""
    from fusionlab.gait._markers import _vertical_of  # at call time: fusionlab.gait imports this module

    return _vertical_of(stream)


def _declared_up_axis(stream: Stream) -> int:
    """Index of the lab's vertical axis as the file declares it.

    From the C3D ``POINT:Y_SCREEN`` parameter when the adapter kept it (``"+Z"`` means z is up; Vicon, Qualisys and
    Motion Analysis set it), else z, the convention of nearly every gait lab (and of the gaitmap recordings).
    """
    axes = stream.meta.get("lab_axes") or {}
    y_screen = str(axes.get("y_screen", "")).strip().upper()
    if y_screen[-1:] in ("X", "Y", "Z"):
        return "XYZ".index(y_screen[-1])
    return 2


def marker_signals(stream: Stream) -> list[Signal]:
    """``angular_speed:<side>_foot`` and ``heel_vertical_velocity:<side>`` from foot markers."""
    if stream.modality != "markers" or stream.data.ndim != 3:
        return []
    feet = find_foot_markers(stream.channels)
    pelvis = find_pelvis_markers(stream.channels)
    if not feet and not pelvis:
        return []
    t = stream.times()
    rate = float(stream.rate_hz) if stream.rate_hz else 1.0 / float(np.median(np.diff(t)))
    out: list[Signal] = []
    up, sign = _vertical(stream)
    out += _leg_segment_speeds(stream, t)
    if pelvis:
        z = sign * np.mean([stream.channel(ch)[:, up] for ch in pelvis], axis=0)  # NaN where any marker is missing
        zs = _smooth(z, rate, PELVIS_CUTOFF_HZ)
        acc = np.gradient(np.gradient(zs, t), t)
        out.append(Signal(t, acc, "body_vertical_acceleration", f"{stream.name}:{'+'.join(pelvis)}"))
    for side, roles in sorted(feet.items()):
        pts = [_smooth(stream.channel(roles[r]), rate) for r in ("toe", "heel", "mt5") if r in roles]
        if len(pts) >= 2:
            tm, speed = _segment_angular_speed(t, pts)
            names = "+".join(roles[r] for r in ("toe", "heel", "mt5") if r in roles)
            out.append(Signal(tm, speed, f"angular_speed:{side}_foot", f"{stream.name}:{names}"))
        if "heel" in roles:
            z = sign * _smooth(stream.channel(roles["heel"])[:, up], rate)
            v = np.gradient(z, t)
            out.append(Signal(t, v, f"heel_vertical_velocity:{side}", f"{stream.name}:{roles['heel']}"))
    return out


def _leg_segment_speeds(stream: Stream, t: NDArray[np.float64]) -> list[Signal]:
    """``angular_speed:<side>_thigh`` / ``_shank`` from the segment frames of `fusionlab.kinematics` (markers
    low-passed at 15 Hz), for IMUs worn on the thigh or shank. Empty without pelvis and leg markers."""
    from fusionlab.exceptions import ValidationError
    from fusionlab.kinematics import segment_frames

    try:
        rots, _ = segment_frames(stream, smooth_hz=15.0)
    except ValidationError:
        return []
    out = []
    tm = 0.5 * (t[1:] + t[:-1])
    for key, R in sorted(rots.items()):
        if key.endswith("_foot"):
            continue  # feet: the marker triad above (no pelvis needed)
        rel = np.einsum("nji,njk->nik", R[:-1], R[1:])  # R_k' R_k+1
        cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
        out.append(Signal(tm, np.arccos(cos) / np.diff(t), f"angular_speed:{key}", f"{stream.name}:{key}"))
    return out


def video_signals(stream: Stream) -> list[Signal]:
    """``heel_vertical_velocity:<side>`` from 2-D pose keypoints (image y points down: sign flipped)."""
    if stream.modality != "video_pose" or stream.frame.split(":")[0] != "image":
        return []
    t = stream.times()
    out = []
    for side in ("left", "right"):
        name = f"{side}_heel"
        if name not in stream.channels:
            continue
        y = stream.channel(name)[:, 1].astype(float)
        if stream.confidence is not None:
            y = np.where(stream.confidence[:, stream.channels.index(name)] >= 0.5, y, np.nan)
        rate = 1.0 / float(np.median(np.diff(t)))
        ys = _smooth(y, rate)
        out.append(Signal(t, -np.gradient(ys, t), f"heel_vertical_velocity:{side}", f"{stream.name}:{name}"))
    return out


def forceplate_signals(streams: list[Stream]) -> list[Signal]:
    """``vertical_grf`` (the summed |Fz| of all force-plate streams on one clock, at a common rate) and, when the
    plates carry the subject continuously, ``body_vertical_acceleration``."""
    plates = [s for s in streams if s.modality == "forceplate" and "force" in s.channels and s.regular]
    if not plates:
        return []
    t = plates[0].times()
    total = np.zeros(len(t))
    for p in plates:
        total += np.interp(t, p.times(), np.nan_to_num(np.abs(p.channel("force")[:, 2])))
    names = "+".join(p.name for p in plates)
    out = [Signal(t, total, "vertical_grf", names)]
    if np.mean(total > SUPPORT_THRESHOLD_N) >= FULL_SUPPORT_FRACTION:
        weight = float(np.median(total[total > SUPPORT_THRESHOLD_N]))
        acc = np.where(total > SUPPORT_THRESHOLD_N, total / weight - 1.0, np.nan)
        out.append(Signal(t, acc, "body_vertical_acceleration", names))
    return out


def signals_of(streams: list[Stream]) -> list[Signal]:
    """Every synchronisation signal that the streams of one clock provide."""
    out: list[Signal] = []
    for s in streams:
        out += imu_signals(s) + marker_signals(s) + video_signals(s)
    out += forceplate_signals(streams)
    return out
