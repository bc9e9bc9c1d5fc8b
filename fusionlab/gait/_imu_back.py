"""Gait events and step parameters from one IMU on the lower back (McCamley-style contacts, inverted pendulum).

See `GaitLowerBackImu` and docs/gait-imu.md.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, filtfilt, find_peaks

from fusionlab.gait._imu_foot import finite_segments, gap_intervals, imu_usable
from fusionlab.gait.base import BaseGaitDetector, GaitResult, Stride, Value
from fusionlab.model import Event
from fusionlab.units import GRAVITY_MS2

if TYPE_CHECKING:
    from fusionlab.model import Stream
    from fusionlab.persist import SessionReader

__all__ = ["GaitLowerBackImu"]

# Foot-strike timing error measured on the Mobilise-D example (HA/001, 100 Hz) against INDIP: robust SD of the
# detector-minus-reference difference (docs/gait-imu.md).
_SD_IC_S = 0.03
# Zijlstra & Hof (2003) correction factor of the inverted-pendulum step length and its spread (relative SD).
_PENDULUM_FACTOR = 1.25
_PENDULUM_REL_SD = 0.10
# Sensor height as a fraction of stature when only the stature is known (Mobilise-D: sensor at ~L5).
_SENSOR_HEIGHT_PER_STATURE = 0.53


class GaitLowerBackImu(BaseGaitDetector):
    """Foot strikes (with left/right), walking bouts, cadence, step and stride parameters from a lower-back IMU.

    1. Vertical axis: the mean specific-force direction of the recording (gravity; the sensor's orientation on the
       back may differ between sensors and subjects). ``a_v`` = acceleration along it minus g.
       Option ``gravity_lowpass_hz``: the local vertical instead, the specific force low-passed at that cut-off
       (it follows the trunk's tilt when the subject bends or sits down, which along the fixed axis shows as a
       slow offset of several m/s²); ``a_v`` = acceleration along it minus its magnitude.
    2. Steps: maxima of ``a_v`` smoothed with a Gaussian (SD ``smooth_coarse_s``), one per step (the
       loading-response peak). Option ``rhythm_prune``: a peak lower than both neighbours is dropped when those
       neighbours are 0.7-1.3 local step times apart (median step interval of the four peaks either side): a
       second bump of one loading response (turns, shuffling), not a step. Foot strike: the steepest rise of
       ``a_v`` smoothed with SD ``smooth_fine_s`` in the ``search_window_s`` before each peak (McCamley et al.
       2012 take the minimum of the Gaussian-differentiated integral of ``a_v``, the same feature with the opposite
       sign convention of the vertical axis).
    3. Walking bouts: runs of at least ``min_bout_steps`` steps whose intervals lie in ``step_time_range_s``,
       separated by breaks longer than that; steps outside bouts are discarded (turning on the spot, shuffling).
       ``reference_bouts=True`` uses the reference walking bouts stored in the session instead (validation only).
    4. Left/right: the yaw rate (about the vertical axis), low-passed at ``lr_lowpass_hz``, at each foot strike
       (McCamley 2012): negative is a left contact. Within a bout the sides are made to alternate, choosing the
       phase that agrees with most of the per-step signs.
    5. Step length (Zijlstra & Hof 2003): ``L = K * 2 * sqrt(2 * l * h - h**2)`` with ``h`` the vertical excursion
       of the sensor during the step (``a_v`` double-integrated, high-passed at ``highpass_hz``), ``l`` the sensor
       height and ``K`` = 1.25. Cadence per bout = 60 / median step time; also the Mobilise-D reference's
       definition, the mean of 120 / stride time over the bout's strides (``cadence_mean_stride_steps_per_min``).

    Parameters
    ----------
    placements
        Placements (``Stream.meta["placement"]``) to analyse.
    sensor_height_m
        Height of the sensor above the floor when standing (m), the pendulum length. None: the session metadata
        ``sensor_height_m``, else 0.53 x ``height_m``; without either, no step length is given.
    smooth_coarse_s, smooth_fine_s
        Gaussian SDs (s) for step detection and for the foot-strike feature.
    search_window_s
        How far before a step peak the foot strike is searched (s).
    min_peak_m_per_s2
        Smallest step peak of the smoothed vertical acceleration (m/s²); weaker movement is not walking.
    step_time_range_s
        Accepted interval between consecutive foot strikes in a bout (s).
    min_bout_steps
        Smallest number of foot strikes in a walking bout.
    lr_lowpass_hz
        Low-pass cut-off of the yaw rate for the left/right assignment (Hz).
    highpass_hz
        High-pass cut-off of the double-integrated vertical acceleration (Hz).
    reference_bouts
        Use the session's reference walking bouts (``source="reference"`` events ``walking_bout_start``/``_end``)
        instead of detecting bouts. Off by default; for validation of the contact detection alone.
    gyr_range_rad_s, acc_range_m_per_s2
        Sensor full scale (rad/s, m/s²) for saturation detection; None detects clipping plateaus instead.
    gravity_lowpass_hz
        Off (None) by default. Low-pass cut-off (Hz) of the specific force giving a local vertical (see 1.);
        0.3 Hz with ``rhythm_prune`` improves the bout cadence on the Mobilise-D daily-living trial but makes the
        left/right assignment worse there (docs/gait-imu.md); the yaw rate keeps the fixed axis.
    rhythm_prune
        Off by default. Drop a weak peak inside one local step time (see 2.); no effect on the fixed axis there.

    Attributes
    ----------
    results_
        One `GaitResult` per stream; ``meta["bouts"]`` lists the walking bouts (start_s, end_s, n_steps,
        cadence_steps_per_min with SD, cadence_mean_stride_steps_per_min, mean step length, speed);
        ``meta["gaps_s"]`` the stretches outside bouts or unusable, ``[start_s, end_s]`` on the device clock (no
        stride may span them).

    Notes
    -----
    Event ``sd_s``: ``sqrt(0.03**2 + 1 / (12 * rate**2))`` (s), the spread measured against INDIP on the
    Mobilise-D example; doubled for the first and last contact of a bout. Cadence SD per bout: the standard error
    of the median step frequency (1.2533 x SD / sqrt(n)) combined with the event timing SD.
    Step-length SD: 10 % of the value (the spread of the pendulum correction factor) and the height uncertainty.

    The Mobilise-D sensor frame (Palmerini et al. 2023): x vertical (up when standing, acc ~ +1 g), y
    medio-lateral, z antero-posterior; this detector uses only the gravity direction, so other frames work too.

    References
    ----------
    McCamley J. et al. (2012) An enhanced estimate of initial contact and final contact instants of time using
    lower trunk inertial sensor data. Gait Posture 36(2):316-8. Zijlstra W., Hof A. L. (2003) Assessment of
    spatio-temporal gait parameters from trunk accelerations during human walking. Gait Posture 18(2):1-10.
    """

    source = "imu"
    name = "lowerback_mccamley_pendulum"
    version = "1"

    def __init__(self, *, placements: tuple[str, ...] = ("lower_back",), sensor_height_m: float | None = None,
                 smooth_coarse_s: float = 0.06, smooth_fine_s: float = 0.04, search_window_s: float = 0.08,
                 min_peak_m_per_s2: float = 0.2, step_time_range_s: tuple[float, float] = (0.25, 1.5),
                 min_bout_steps: int = 3, lr_lowpass_hz: float = 2.0, highpass_hz: float = 0.5,
                 reference_bouts: bool = False, gyr_range_rad_s: float | None = None,
                 acc_range_m_per_s2: float | None = None, gravity_lowpass_hz: float | None = None,
                 rhythm_prune: bool = False) -> None:
        self.placements = placements
        self.sensor_height_m = sensor_height_m
        self.smooth_coarse_s = smooth_coarse_s
        self.smooth_fine_s = smooth_fine_s
        self.search_window_s = search_window_s
        self.min_peak_m_per_s2 = min_peak_m_per_s2
        self.step_time_range_s = step_time_range_s
        self.min_bout_steps = min_bout_steps
        self.lr_lowpass_hz = lr_lowpass_hz
        self.highpass_hz = highpass_hz
        self.reference_bouts = reference_bouts
        self.gyr_range_rad_s = gyr_range_rad_s
        self.acc_range_m_per_s2 = acc_range_m_per_s2
        self.gravity_lowpass_hz = gravity_lowpass_hz
        self.rhythm_prune = rhythm_prune

    def detect(self, reader: SessionReader) -> Self:
        """Analyse every IMU stream whose placement is in ``placements``; results in ``results_``."""
        self.results_ = []
        height = self.sensor_height_m
        height_note = "sensor_height_m parameter"
        if height is None:
            # the user's session metadata first, then what the source files say (e.g. Mobilise-D infoForAlgo.mat)
            metas = [("session metadata", reader.metadata)] + [
                (f"{src.path} subject parameters", src.metadata.get("subject_parameters") or {})
                for src in reader.sources()]
            found = next(((w, m) for w, m in metas if isinstance(m.get("sensor_height_m"), int | float)), None)
            if found is not None:
                height, height_note = float(found[1]["sensor_height_m"]), f"{found[0]}: sensor_height_m"
            else:
                found = next(((w, m) for w, m in metas if isinstance(m.get("height_m"), int | float)), None)
                if found is not None:
                    height = _SENSOR_HEIGHT_PER_STATURE * float(found[1]["height_m"])
                    height_note = f"0.53 x {found[0]}: height_m"
        ref_bouts: list[tuple[float, float, str]] = []
        if self.reference_bouts:
            ev = reader.events(source="reference", clock="device")
            starts = [e for e in ev if e.kind == "walking_bout_start"]
            ends = [e for e in ev if e.kind == "walking_bout_end"]
            first = starts[0].detector if starts else ""  # one reference system only: the first one found
            for s in starts:
                e = [x for x in ends if x.detector == s.detector and x.clock == s.clock and x.time_s > s.time_s]
                if e and s.detector == first:
                    ref_bouts.append((s.time_s, min(x.time_s for x in e), s.clock))
        for name in reader.find_streams(modality="imu"):
            stream = reader.read_stream(name)
            if str(stream.meta.get("placement", "")) not in self.placements:
                continue
            unusable = self._unusable_imu(stream)
            if unusable is not None:
                self.results_.append(unusable)
                continue
            bouts = [(a, b) for a, b, c in ref_bouts if c == stream.clock] if self.reference_bouts else None
            res = self.detect_stream(stream, sensor_height_m=height, bouts=bouts)
            res.meta["sensor_height_source"] = height_note if height is not None else "unknown"
            self.results_.append(res)
        return self

    # ------------------------------------------------------------------------------------------------ one stream
    def detect_stream(self, stream: Stream, *, sensor_height_m: float | None = None,
                      bouts: list[tuple[float, float]] | None = None) -> GaitResult:
        """Events, bouts and strides of one lower-back stream (``acc`` m/s², ``gyr`` rad/s channels).

        ``bouts``: optional walking bouts ``(start_s, end_s)`` on the stream's clock to use instead of detecting
        them.
        """
        rate = float(stream.rate_hz)  # type: ignore[arg-type]
        result = GaitResult(source=self.source, detector=self.detector_id, streams=(stream.name,), clock=stream.clock,
                            meta={"placement": stream.meta.get("placement"), "rate_hz": rate,
                                  "params": self.get_params(), "sensor_height_m": sensor_height_m,
                                  "bout_source": "reference (validation)" if bouts is not None else "detected"})
        acc = np.asarray(stream.channel("acc"), dtype=np.float64)
        gyr = np.asarray(stream.channel("gyr"), dtype=np.float64)
        t = stream.times()
        t0 = float(t[0]) if t.size else stream.start_s
        usable, n_sat, n_gap = imu_usable(acc, gyr, self.gyr_range_rad_s, self.acc_range_m_per_s2)
        result.meta.update(saturated_samples=n_sat, missing_samples=n_gap, bouts=[],
                           gaps_s=gap_intervals(t, np.zeros(t.size, dtype=bool)) if t.size else [])
        if n_sat:
            result.warnings.append(f"{stream.name}: {n_sat} saturated samples (clipped at the sensor range); no event "
                                   "is placed in them or within 0.2 s of them")
        if n_gap:
            result.warnings.append(f"{stream.name}: {n_gap} missing samples (NaN); no event is placed in a gap")
        if usable.sum() < 2 * rate:
            result.warnings.append(f"{stream.name}: less than 2 s of usable data; nothing detected")
            return result
        # 1. vertical axis from gravity
        up = np.mean(acc[usable], axis=0)
        up /= np.linalg.norm(up)
        result.meta["vertical_axis_in_sensor_frame"] = [round(float(v), 4) for v in up]
        a_v = acc @ up - GRAVITY_MS2
        yaw = gyr @ up
        # 2. steps and foot strikes, per usable segment
        margin = round(0.2 * rate)
        ics: list[float] = []
        yaw_lp = np.full(a_v.shape, np.nan)
        for a, b in finite_segments(usable, int(2 * rate)):
            if self.gravity_lowpass_hz is not None:
                # local vertical: the low-passed specific force follows the trunk's tilt (bending, sitting down),
                # which projects gravity onto a fixed axis as a slow offset of several m/s²
                b_g, a_g = butter(2, self.gravity_lowpass_hz / (rate / 2))
                g_loc = filtfilt(b_g, a_g, acc[a:b], axis=0)
                g_norm = np.linalg.norm(g_loc, axis=1)
                a_v[a:b] = np.sum(acc[a:b] * g_loc, axis=1) / g_norm - g_norm
                x = a_v[a:b]
            else:
                x = a_v[a:b] - np.mean(a_v[a:b])
            for k in self._segment_contacts(x, rate):
                idx = a + float(k)
                if a + margin <= idx < b - margin:
                    ics.append(idx)
            b_lp, a_lp = butter(2, self.lr_lowpass_hz / (rate / 2))
            yaw_lp[a:b] = filtfilt(b_lp, a_lp, yaw[a:b])
        ic = np.unique(np.array(ics))
        if ic.size and np.any(np.diff(ic) < 0.2 * rate):  # two features on one step: keep the first
            keep = np.concatenate([[True], np.diff(ic) >= 0.2 * rate])
            ic = ic[keep]
        # 3. walking bouts
        lo, hi = self.step_time_range_s
        groups: list[NDArray[np.float64]] = []
        if bouts is not None:
            for bs, be in bouts:
                sel = ic[(t0 + ic / rate >= bs - 0.1) & (t0 + ic / rate <= be + 0.1)]
                if sel.size >= 2:
                    groups.append(sel)
        elif ic.size:
            # a bout ends at an irregular interval or at an unusable sample between two contacts
            bad_before = np.concatenate([[0], np.cumsum(~usable)])
            broken = bad_before[np.ceil(ic[1:]).astype(int)] > bad_before[np.floor(ic[:-1]).astype(int)]
            cut = np.flatnonzero((np.diff(ic) / rate > hi) | (np.diff(ic) / rate < lo) | broken) + 1
            groups = [g for g in np.split(ic, cut) if g.size >= self.min_bout_steps]
        if not groups:
            result.warnings.append(f"{stream.name}: no walking bout (fewer than {self.min_bout_steps} regular steps "
                                   "in a row); no events")
            return result
        height = sensor_height_m
        covered = np.zeros(t.size, dtype=bool)
        for g in groups:
            self._bout(stream, result, g, a_v, yaw_lp, rate, t0, height)
            covered[int(g[0]):math.ceil(g[-1]) + 1] = True
        # not analysed (outside walking bouts, or unusable): declared as gaps so no stride spans them
        result.meta["gaps_s"] = gap_intervals(t, covered & usable)
        result.events.sort(key=lambda e: e.time_s)
        return result

    def _segment_contacts(self, x: NDArray[np.float64], rate: float) -> NDArray[np.float64]:
        """Foot-strike sample indices (sub-sample) in one gap-free segment of mean-removed ``a_v``."""
        coarse = gaussian_filter1d(x, self.smooth_coarse_s * rate)
        slope = gaussian_filter1d(x, self.smooth_fine_s * rate, order=1)
        peaks, _ = find_peaks(coarse, height=self.min_peak_m_per_s2, distance=max(1, int(0.25 * rate)),
                              prominence=self.min_peak_m_per_s2)
        if self.rhythm_prune and peaks.size >= 4:
            peaks = self._prune(peaks, coarse, rate)
        win = round(self.search_window_s * rate)
        out = []
        for p in peaks:
            i0 = max(0, p - win)
            k = i0 + int(np.argmax(slope[i0:p + 1]))
            out.append(k + _parabola(slope, k))
        return np.array(out, dtype=np.float64)

    def _prune(self, peaks: NDArray[np.intp], coarse: NDArray[np.float64], rate: float) -> NDArray[np.intp]:
        """Drop a peak lower than both neighbours when those neighbours are one local step time apart.

        The local step time is the median of the step intervals (within ``step_time_range_s``) among the
        four peaks either side; a third peak inside one step is a second bump of the same loading response
        (turns, shuffling), not a step.
        """
        lo, hi = (v * rate for v in self.step_time_range_s)
        pk = [int(p) for p in peaks]
        j = 1
        while j < len(pk) - 1:
            d = np.diff(pk[max(0, j - 4):j + 5])
            d = d[(d >= lo) & (d <= hi)]
            step = float(np.median(d)) if d.size >= 3 else math.nan
            if (math.isfinite(step) and 0.7 * step <= pk[j + 1] - pk[j - 1] <= 1.3 * step
                    and coarse[pk[j]] < min(coarse[pk[j - 1]], coarse[pk[j + 1]])):
                del pk[j]
                j = max(1, j - 1)
            else:
                j += 1
        return np.array(pk, dtype=np.intp)

    def _bout(self, stream: Stream, result: GaitResult, g: NDArray[np.float64], a_v: NDArray[np.float64],
              yaw_lp: NDArray[np.float64], rate: float, t0: float, height: float | None) -> None:
        n = g.size
        # 4. left/right: per-step sign of the yaw rate, forced to alternate
        signs = np.array([np.interp(i, np.arange(yaw_lp.size), yaw_lp) for i in g])
        alt = (-1.0) ** np.arange(n)
        score = float(np.nansum(alt * np.sign(signs)))
        first_left = score < 0  # negative yaw at even steps -> even steps are left
        sides = [("left" if (k % 2 == 0) == first_left else "right") for k in range(n)]
        agreement = float(np.mean([(s < 0) == (side == "left") for s, side in zip(signs, sides, strict=True)]))
        q = 1.0 / (12.0 * rate * rate)
        sds = np.full(n, math.sqrt(_SD_IC_S**2 + q))
        sds[[0, -1]] *= 2
        times = t0 + g / rate
        for tk, side, sd in zip(times, sides, sds, strict=True):
            result.events.append(Event(time_s=float(tk), kind="foot_strike", side=side, source=self.source,
                                       sd_s=float(sd), label=f"{side} IC", clock=stream.clock,
                                       detector=self.detector_id))
        # 5. step lengths (inverted pendulum)
        step_t = np.diff(times)
        lengths = np.full(n - 1, np.nan)
        len_sd = np.full(n - 1, np.nan)
        if height is not None and height > 0:
            i0, i1 = int(g[0]), math.ceil(g[-1]) + 1
            x = a_v[i0:i1]
            if np.all(np.isfinite(x)) and x.size > 20:
                b_hp, a_hp = butter(2, self.highpass_hz / (rate / 2), btype="high")
                pad = min(3 * max(len(a_hp), len(b_hp)), x.size - 1)
                v = filtfilt(b_hp, a_hp, np.cumsum(x) / rate, padlen=pad)
                z = filtfilt(b_hp, a_hp, np.cumsum(v) / rate, padlen=pad)
                for k in range(n - 1):
                    s0, s1 = round(g[k]) - i0, round(g[k + 1]) - i0 + 1
                    h = float(np.max(z[s0:s1]) - np.min(z[s0:s1]))
                    arg = 2 * height * h - h * h
                    if arg > 0:
                        lengths[k] = _PENDULUM_FACTOR * 2 * math.sqrt(arg)
                        len_sd[k] = _PENDULUM_REL_SD * lengths[k]
        # cadence per bout, with SD: 60 / median step time (robust to a spurious or missed contact); SD from the
        # standard error of the median step frequency (1.2533 * SD / sqrt(n)) and the event timing
        freq = 60.0 / step_t
        cadence = 60.0 / float(np.median(step_t))
        sd_timing = cadence * math.sqrt(2) * float(sds[1:-1].mean() if n > 2 else sds.mean()) / float(
            np.median(step_t)) / math.sqrt(n - 1)
        sd_var = 1.2533 * float(np.std(freq, ddof=1)) / math.sqrt(n - 1) if n > 2 else math.nan
        cad_sd = math.hypot(sd_timing, sd_var) if math.isfinite(sd_var) else math.nan
        step_len = float(np.nanmean(lengths)) if np.isfinite(lengths).any() else math.nan
        # the Mobilise-D reference's bout ``Cadence``: the mean over the bout's strides of 120 / stride time
        # (reproduces the field of data.mat to 0.1 steps/min from its Stride_Duration); less robust to one
        # spurious or missed contact than the median above
        cad_strides = float(np.mean(120.0 / (times[2:] - times[:-2]))) if n > 2 else math.nan
        result.meta["bouts"].append({
            "start_s": float(times[0]), "end_s": float(times[-1]), "n_steps": int(n),
            "cadence_steps_per_min": Value(cadence, cad_sd).as_dict(),
            "cadence_mean_stride_steps_per_min": cad_strides if math.isfinite(cad_strides) else None,
            "step_length_m": Value(step_len, _PENDULUM_REL_SD * step_len).as_dict(),
            "gait_speed_m_per_s": Value(step_len * cadence / 60.0,
                                        _PENDULUM_REL_SD * step_len * cadence / 60.0).as_dict(),
            "left_right_sign_agreement": agreement})
        # strides: foot strike k to k + 2 (same side)
        for k in range(n - 2):
            dur = times[k + 2] - times[k]
            sd_t = math.hypot(sds[k], sds[k + 2])
            params: dict[str, Any] = {
                "stride_time_s": Value(dur, sd_t),
                "step_time_s": Value(step_t[k], math.hypot(sds[k], sds[k + 1])),
                "cadence_steps_per_min": Value(120.0 / dur, 120.0 * sd_t / dur**2),
            }
            if np.isfinite(lengths[k]) and np.isfinite(lengths[k + 1]):
                sl = lengths[k] + lengths[k + 1]
                sl_sd = math.hypot(len_sd[k], len_sd[k + 1])
                params["stride_length_m"] = Value(sl, sl_sd)
                params["step_length_m"] = Value(lengths[k], len_sd[k])
                params["gait_speed_m_per_s"] = Value(sl / dur, sl_sd / dur)
            result.strides.append(Stride(side=sides[k], start_s=float(times[k]), end_s=float(times[k + 2]),
                                         clock=stream.clock, params=params))


def _parabola(y: NDArray[np.float64], k: int) -> float:
    """Sub-sample offset of the maximum at ``k`` from a parabola through ``y[k-1:k+2]`` (0 at the ends)."""
    if 0 < k < len(y) - 1:
        y0, y1, y2 = y[k - 1], y[k], y[k + 1]
        den = y0 - 2 * y1 + y2
        if den < 0:
            return float(0.5 * (y0 - y2) / den)
    return 0.0
