"""Gait events from 2-D video pose keypoints (a side view): Zeni's method in the image plane.

See `GaitVideo` and docs/gait.md ("Video").
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy.signal import find_peaks

from fusionlab.gait.base import BaseGaitDetector, GaitResult, Stride, Value
from fusionlab.model import Event

if TYPE_CHECKING:
    from fusionlab.model import Stream
    from fusionlab.persist import SessionReader

__all__ = ["GaitVideo"]

_NEEDED = ("left_hip", "right_hip", "left_heel", "right_heel", "left_foot_index", "right_foot_index")


def _runs(ok: NDArray[np.bool_], min_len: int) -> list[tuple[int, int]]:
    """Half-open ``[start, end)`` runs of True at least ``min_len`` long."""
    d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True) if b - a >= min_len]


def _moving_median(x: NDArray[np.float64], half: int) -> NDArray[np.float64]:
    out = np.full_like(x, np.nan)
    for i in range(x.size):
        w = x[max(0, i - half):i + half + 1]
        w = w[np.isfinite(w)]
        if w.size:
            out[i] = np.median(w)
    return out


def _vertex(t: NDArray[np.float64], y: NDArray[np.float64], i: int) -> tuple[float, float]:
    """Time of the extremum of the parabola through samples i-1, i, i+1 (irregular times) and its curvature a.

    ``y = a (t - t_v)^2 + c``; the vertex is clamped to ``[t_{i-1}, t_{i+1}]``.
    """
    tt = t[i - 1:i + 2] - t[i]
    a, b, _ = np.polyfit(tt, y[i - 1:i + 2], 2)
    if a == 0:
        return float(t[i]), 0.0
    tv = float(np.clip(-b / (2 * a), tt[0], tt[2]))
    return float(t[i] + tv), float(a)


def _drop_short_intervals(events: list[tuple[float, float, float]], ratio: float = 0.75
                          ) -> list[tuple[float, float, float]]:
    """Drop the less prominent of two same-kind events closer than ``ratio`` x the median interval (>= 3 events).

    Catches a second extremum at the start or end of a pass (the subject slowing down or leaving the view).
    """
    ev = sorted(events)
    while len(ev) >= 3:
        gaps = np.diff([e[0] for e in ev])
        k = int(np.argmin(gaps))
        if gaps[k] >= ratio * float(np.median(gaps)):
            break
        ev.pop(k if ev[k][2] < ev[k + 1][2] else k + 1)
    return ev


class GaitVideo(BaseGaitDetector):
    """Foot strike and foot off from 2-D pose keypoints of a side view (Zeni et al. 2008 in the image plane).

    Parameters
    ----------
    min_visibility
        Keypoints whose visibility (MediaPipe, in [0, 1]) is below this are gaps; no event is placed in a gap.
    max_gap_s
        Two valid frames further apart than this (s) belong to different runs (a dropped or occluded stretch).
    min_stride_s
        Shortest time between two events of the same kind and foot (s).
    min_speed_legs_per_s
        The subject walks (and an event may be found) where the hip centre moves horizontally faster than this
        many leg lengths per second (leg length: median hip-to-heel distance in pixels). Slower stretches and
        reversals of direction (turns) are gaps.
    contact_speed_ratio
        Refinement of each Zeni event by the foot's own speed (step 5 of the Notes): foot strike when the heel's
        forward image velocity falls below this fraction of the hip-centre velocity, foot off when the toe's rises
        above it. None keeps Zeni's extrema.
    method_sd_s
        Timing SD of the method itself (s), combined with the frame-period and keypoint noise terms in every
        event's ``sd_s``. Default: the spread of the errors on the virtual-camera validation (docs/gait.md).

    Attributes
    ----------
    results_
        One `GaitResult` per ``video_pose`` stream with 2-D image keypoints (``<prefix>pose2d``).

    Notes
    -----
    1. Walking direction: sign of the hip-centre (mid-point of ``left_hip`` and ``right_hip``) horizontal velocity,
       smoothed by a 5-frame moving median of the position; the image plane is assumed parallel to the walkway.
    2. For each foot, the heel and toe positions relative to the hip centre along the walking direction,
       ``h = d (x_heel - x_hip)`` and ``f = d (x_toe - x_hip)`` (``d`` = +1 walking to image-right, -1 to the left).
    3. Foot strike: a maximum of ``h`` (heel furthest forward); foot off: a minimum of ``f`` (toe furthest
       back) (Zeni et al. 2008), found with a prominence of 15 % of the leg length and at least ``min_stride_s``
       apart, inside runs of valid frames only (never at a run's first or last frame). Of two events of one kind
       and foot closer than 0.75 x the median interval, the less prominent is dropped.
    4. Sub-frame time: vertex of the parabola through the extreme frame and its neighbours (irregular times).
    5. Speed refinement (our addition; ``contact_speed_ratio``, default 0.5). Zeni's extremum is where the foot
       moves exactly as fast as the hips, which is before the heel lands (the heel is still decelerating) and
       after the toe lifts. From the extremum, the event moves to where the foot's own forward velocity (central
       differences, px/s) crosses ``ratio x`` the hip velocity: forward in time for a strike (heel slowing
       down), backward for a foot off (toe speeding up), within 0.25 s of valid frames, linearly interpolated
       between frames; without a crossing the Zeni time is kept. On the virtual camera it reduced the median
       foot-strike error from about 40 ms (early) to about 10 ms (docs/gait.md).
    6. ``sd_s = sqrt(method_sd_s^2 + (dt / sqrt(12))^2 + sd_noise^2)``, with ``dt`` the local frame period and
       ``sd_noise`` the timing error from keypoint noise ``sigma`` (px; estimated per stream as 1.4826 MAD(second
       difference of ``h``) / sqrt(6)): ``sqrt(2) sigma / (4 |a| dt)`` for a parabola vertex of curvature ``a``
       (px/s^2), ``sigma_v / |dg/dt|`` with ``sigma_v = sqrt(2) sigma / (2 dt)`` for a speed crossing.
    7. Spatial parameters need ``meta["scale_m_per_px"]`` (sagittal plane at the subject's depth):
       stride length = ``|x_heel(FS_b) - x_heel(FS_a)| * scale`` (heel positions interpolated at the event times),
       step length = ``|x_heel(FS_a) - x_heel_contralateral(FS_a)| * scale``, gait speed = stride length / stride
       time. SDs combine the scale SD (``meta["scale"]["sd_m_per_px"]``), the keypoint noise at both ends, and
       the event timing SDs. Step width needs depth and is not given.

    References
    ----------
    Zeni, Richards & Higginson (2008). Two simple methods for determining gait events during treadmill and
    overground walking using kinematic data. Gait & Posture 27(4):710-714.
    """

    source = "video"
    name = "video_zeni"
    version = "1"

    def __init__(self, *, min_visibility: float = 0.5, max_gap_s: float = 0.1, min_stride_s: float = 0.6,
                 min_speed_legs_per_s: float = 0.3, contact_speed_ratio: float | None = 0.5,
                 method_sd_s: float = 0.015) -> None:
        self.min_visibility = min_visibility
        self.max_gap_s = max_gap_s
        self.min_stride_s = min_stride_s
        self.min_speed_legs_per_s = min_speed_legs_per_s
        self.contact_speed_ratio = contact_speed_ratio
        self.method_sd_s = method_sd_s

    def detect(self, reader: SessionReader) -> Self:
        """Find events in every 2-D pose stream of the session (see the class Notes)."""
        self.results_ = []
        for name in reader.find_streams(modality="video_pose"):
            info = reader.stream_info(name)
            if not str(info["frame"]).startswith("image:") or not all(c in info["channels"] for c in _NEEDED):
                continue
            self.results_.append(self.detect_stream(reader.read_stream(name)))
        return self

    # ------------------------------------------------------------------------------------------ one stream
    def detect_stream(self, stream: Stream) -> GaitResult:
        """Events (and spatial parameters when scaled) of one ``(n, 33, 2)`` image-keypoint stream."""
        res = GaitResult(source=self.source, detector=self.detector_id, streams=(stream.name,), clock=stream.clock)
        t = stream.times()
        n = t.size
        if n < 5:
            res.warnings.append(f"{n} frame(s): too short for gait events")
            return res
        x = {c: stream.channel(c)[:, 0].astype(np.float64) for c in _NEEDED}
        y = {c: stream.channel(c)[:, 1].astype(np.float64) for c in _NEEDED}
        conf = stream.confidence
        ok = {}
        for c in _NEEDED:
            vis = (conf[:, stream.channels.index(c)] if conf is not None else np.ones(n))
            with np.errstate(invalid="ignore"):
                ok[c] = np.isfinite(x[c]) & np.isfinite(y[c]) & (np.nan_to_num(vis, nan=0.0) >= self.min_visibility)
        # 1. hip centre and walking direction
        hip_ok = ok["left_hip"] & ok["right_hip"]
        hip_x = np.where(hip_ok, 0.5 * (x["left_hip"] + x["right_hip"]), np.nan)
        hip_y = np.where(hip_ok, 0.5 * (y["left_hip"] + y["right_hip"]), np.nan)
        legs = [np.abs(y[f"{s}_heel"] - hip_y)[hip_ok & ok[f"{s}_heel"]] for s in ("left", "right")]
        legs_all = np.concatenate(legs)
        if legs_all.size < 5:
            res.warnings.append("hips and heels are visible in fewer than 5 frames: no events")
            return res
        leg_px = float(np.median(legs_all))
        smooth = _moving_median(hip_x, 2)
        vel = np.full(n, np.nan)
        for a, b in self._valid_runs(hip_ok, t, 3):
            vel[a:b] = np.gradient(smooth[a:b], t[a:b])
        with np.errstate(invalid="ignore"):
            walking = np.abs(vel) >= self.min_speed_legs_per_s * leg_px
        direction = np.sign(np.nan_to_num(vel))
        # bouts: runs of walking frames with one direction
        bouts = []
        for d in (1.0, -1.0):
            bouts += [(a, b, d) for a, b in self._valid_runs(walking & (direction == d) & hip_ok, t, 5)]
        bouts.sort()
        res.meta["walking_direction"] = [{"start_s": float(t[a]), "end_s": float(t[b - 1]),
                                          "direction": "image_right" if d > 0 else "image_left"}
                                         for a, b, d in bouts]
        res.meta["leg_length_px"] = leg_px
        # gaps (device clock): between bouts and any stretch where hips or both feet are unusable
        covered = np.zeros(n, dtype=bool)
        for a, b, _ in bouts:
            covered[a:b] = True
        gaps = self._gaps(t, covered)
        res.meta["gaps_s"] = gaps
        not_walking_s = float(sum(g1 - g0 for g0, g1 in gaps))
        if gaps:
            res.warnings.append(f"{not_walking_s:.2f} s without usable walking (hidden, low visibility, standing or "
                                "turning): no event there")
        # 2-3. events per foot
        h_all: dict[str, NDArray[np.float64]] = {}
        sigma_est = []
        for side in ("left", "right"):
            dirn = np.zeros(n)
            for a, b, d in bouts:
                dirn[a:b] = d
            h_all[side] = dirn * (x[f"{side}_heel"] - hip_x)
            for a, b in self._valid_runs(ok[f"{side}_heel"] & covered, t, 5):
                d2 = np.diff(h_all[side][a:b], 2)
                sigma_est.append(d2[np.isfinite(d2)])
        d2_all = np.concatenate(sigma_est) if sigma_est else np.array([])
        sigma_px = float(1.4826 * np.median(np.abs(d2_all - np.median(d2_all))) / math.sqrt(6)) if d2_all.size \
            else 2.0
        res.meta["keypoint_noise_px"] = sigma_px
        fs_times: dict[str, list[tuple[float, float]]] = {}
        for side in ("left", "right"):
            toe = np.zeros(n)  # walking direction per frame (+1 image right, -1 left, 0 not walking)
            for a, b, d in bouts:
                toe[a:b] = d
            f_rel = toe * (x[f"{side}_foot_index"] - hip_x)
            hip_fwd_vel = toe * vel
            fs = self._extrema(t, h_all[side], ok[f"{side}_heel"] & covered, leg_px, sigma_px, +1,
                               toe * x[f"{side}_heel"], hip_fwd_vel)
            fo = self._extrema(t, f_rel, ok[f"{side}_foot_index"] & covered, leg_px, sigma_px, -1,
                               toe * x[f"{side}_foot_index"], hip_fwd_vel)
            fs_times[side] = fs
            res.events += [Event(time_s=tv, kind="foot_strike", side=side, source=self.source, sd_s=sd,
                                 clock=stream.clock, detector=self.detector_id, label="heel forward peak")
                           for tv, sd in fs]
            res.events += [Event(time_s=tv, kind="foot_off", side=side, source=self.source, sd_s=sd,
                                 clock=stream.clock, detector=self.detector_id, label="toe backward peak")
                           for tv, sd in fo]
        res.events.sort(key=lambda e: e.time_s)
        # 6. spatial parameters
        scale = stream.meta.get("scale_m_per_px")
        if scale:
            scale_sd = float((stream.meta.get("scale") or {}).get("sd_m_per_px", math.nan))
            res.strides = self._spatial(t, x, ok, fs_times, bouts, float(scale), scale_sd, sigma_px, stream.clock)
            res.meta["scale_m_per_px"] = float(scale)
        else:
            res.warnings.append("no pixel-to-metre scale (meta['scale_m_per_px']): temporal parameters only; "
                                "ingest with --subject-height-m or --calibration for lengths and speed")
        return res

    # ------------------------------------------------------------------------------------------ helpers
    def _valid_runs(self, ok: NDArray[np.bool_], t: NDArray[np.float64], min_len: int) -> list[tuple[int, int]]:
        """Runs of valid frames, split where consecutive valid frames are more than ``max_gap_s`` apart."""
        out = []
        for a, b in _runs(ok, 1):
            cuts = [a, *(a + 1 + np.flatnonzero(np.diff(t[a:b]) > self.max_gap_s)).tolist(), b]
            out += [(c0, c1) for c0, c1 in itertools.pairwise(cuts) if c1 - c0 >= min_len]
        return out

    def _gaps(self, t: NDArray[np.float64], covered: NDArray[np.bool_]) -> list[tuple[float, float]]:
        runs = self._valid_runs(covered, t, 1)
        gaps = []
        if not runs:
            return [(float(t[0]), float(t[-1]))]
        if runs[0][0] > 0:
            gaps.append((float(t[0]), float(t[runs[0][0]])))
        for (_, b0), (a1, _) in itertools.pairwise(runs):
            gaps.append((float(t[b0 - 1]), float(t[a1])))
        if runs[-1][1] < t.size:
            gaps.append((float(t[runs[-1][1] - 1]), float(t[-1])))
        return gaps

    def _extrema(self, t: NDArray[np.float64], sig: NDArray[np.float64], ok: NDArray[np.bool_], leg_px: float,
                 sigma_px: float, sign: int, foot_fwd: NDArray[np.float64], hip_fwd_vel: NDArray[np.float64]
                 ) -> list[tuple[float, float]]:
        """(time, sd) of the maxima (sign +1, foot strike) or minima (-1, foot off) of ``sig`` in valid runs.

        ``foot_fwd`` is the foot keypoint's position along the walking direction (px) and ``hip_fwd_vel`` the
        hip centre's velocity along it (px/s), for the speed refinement.
        """
        out: list[tuple[float, float, float]] = []
        for a, b in self._valid_runs(ok, t, 5):
            tt, yy = t[a:b], sign * sig[a:b]
            dt = float(np.median(np.diff(tt)))
            peaks, props = find_peaks(yy, prominence=0.15 * leg_px, distance=max(1, int(self.min_stride_s / dt)))
            vel = np.gradient(foot_fwd[a:b], tt)
            for i, prom in zip(peaks, props["prominences"], strict=True):
                if i < 1 or i > len(tt) - 2:
                    continue
                tv, curv = _vertex(tt, yy, int(i))
                h = 0.5 * float(tt[i + 1] - tt[i - 1])
                sd_noise = math.sqrt(2) * sigma_px / (4 * abs(curv) * h) if curv else h
                sd_noise = min(sd_noise, h)  # the vertex is clamped to the neighbouring frames
                if self.contact_speed_ratio is not None:
                    refined = self._speed_crossing(tt, vel, hip_fwd_vel[a:b], int(i), sign, sigma_px)
                    if refined is not None:
                        tv, sd_noise = refined
                out.append((tv, math.sqrt(self.method_sd_s ** 2 + h ** 2 / 12 + sd_noise ** 2), float(prom)))
        return [(tv, sd) for tv, sd, _ in _drop_short_intervals(out)]

    def _speed_crossing(self, tt: NDArray[np.float64], vel: NDArray[np.float64], hip_vel: NDArray[np.float64],
                        i: int, sign: int, sigma_px: float) -> tuple[float, float] | None:
        """Where ``g = v_foot - ratio * v_hip`` crosses 0 after (strike) or before (foot off) sample ``i``.

        Linear interpolation between the two frames around the crossing; searched over at most 0.25 s of valid
        frames. Returns (time, SD from keypoint noise) or None when there is no crossing in reach.
        """
        g = vel - float(self.contact_speed_ratio) * hip_vel  # type: ignore[arg-type]
        reach = 0.25
        if sign > 0:  # strike: g goes from > 0 to <= 0 after the Zeni maximum
            for j in range(max(i, 1), len(tt)):
                if tt[j] - tt[i] > reach:
                    return None
                if np.isfinite(g[j - 1]) and np.isfinite(g[j]) and g[j - 1] > 0 >= g[j]:
                    j0, j1 = j - 1, j
                    break
            else:
                return None
        else:  # foot off: going back from the Zeni minimum, g goes from > 0 to <= 0
            for j in range(min(i, len(tt) - 2), -1, -1):
                if tt[i] - tt[j] > reach:
                    return None
                if np.isfinite(g[j]) and np.isfinite(g[j + 1]) and g[j] <= 0 < g[j + 1]:
                    j0, j1 = j, j + 1
                    break
            else:
                return None
        span = float(tt[j1] - tt[j0])
        dg = float(g[j1] - g[j0])
        if dg == 0:
            return None
        tc = float(tt[j0] - g[j0] * span / dg)
        # velocity noise of a central difference: sigma_v = sqrt(2) sigma / (2 h); time SD = sigma_v / |dg/dt|
        sd = min(math.sqrt(2) * sigma_px / (2 * span) / abs(dg / span), span)
        return tc, sd

    def _spatial(self, t: NDArray[np.float64], x: dict[str, NDArray[np.float64]], ok: dict[str, Any],
                 fs: dict[str, list[tuple[float, float]]], bouts: list[tuple[int, int, float]], scale: float,
                 scale_sd: float, sigma_px: float, clock: str) -> list[Stride]:
        def heel_at(side: str, tv: float) -> float:
            good = ok[f"{side}_heel"]
            i = int(np.searchsorted(t, tv))
            if i < 1 or i >= t.size or not (good[i - 1] and good[i]):
                return math.nan
            return float(np.interp(tv, t[i - 1:i + 1], x[f"{side}_heel"][i - 1:i + 1]))

        def bout_of(tv: float) -> int:
            for k, (a, b, _) in enumerate(bouts):
                if t[a] <= tv <= t[b - 1]:
                    return k
            return -1

        strides = []
        u_scale = scale_sd if math.isfinite(scale_sd) else 0.0
        for side, other in (("left", "right"), ("right", "left")):
            for (ta, sa), (tb, sb) in zip(fs[side][:-1], fs[side][1:], strict=True):
                if bout_of(ta) < 0 or bout_of(ta) != bout_of(tb) or tb - ta > 2.5:
                    continue
                xa, xb = heel_at(side, ta), heel_at(side, tb)
                if not (math.isfinite(xa) and math.isfinite(xb)):
                    continue
                d_px = abs(xb - xa)
                length = d_px * scale
                # SD^2 = (d_px * sd_scale)^2 + (scale * sqrt(2) * sigma)^2
                sd_len = math.hypot(d_px * u_scale, scale * math.sqrt(2) * sigma_px)
                dur = tb - ta
                sd_dur = math.hypot(sa, sb)
                speed = length / dur
                # speed = L / T: (sd/speed)^2 = (sd_L / L)^2 + (sd_T / T)^2
                sd_speed = speed * math.hypot(sd_len / length, sd_dur / dur) if length > 0 else math.nan
                params = {"stride_length_m": Value(length, sd_len), "gait_speed_m_per_s": Value(speed, sd_speed)}
                xc = heel_at(other, ta)
                if math.isfinite(xc):
                    step_px = abs(xa - xc)
                    params["step_length_m"] = Value(step_px * scale, math.hypot(step_px * u_scale,
                                                                                 scale * math.sqrt(2) * sigma_px))
                strides.append(Stride(side=side, start_s=ta, end_s=tb, clock=clock, params=params))
        return strides
