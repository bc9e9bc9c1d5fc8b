"""Gait events from force plates: vertical-force threshold with hysteresis, foot from the markers, clean-strike check.

See docs/gait-forceplate-markers.md for the method, the numbers behind ``sd_s`` and the measured agreement with lab
annotations.
"""

from __future__ import annotations

import math
import warnings as _pywarnings
from typing import TYPE_CHECKING, Any, Self

import numpy as np
from numpy.typing import NDArray

from fusionlab.gait._markers import _foot_markers, _marker, _vertical_of
from fusionlab.gait.base import BaseGaitDetector, GaitResult
from fusionlab.model import Event, Stream

if TYPE_CHECKING:
    from fusionlab.persist import SessionReader

__all__ = ["GaitForcePlate"]

FOOT_ON_PLATE_HEIGHT_M = 0.02  # a foot whose markers are this close to their standing height is on the ground
PARTIAL_PEAK_FRACTION = 0.5  # a contact whose peak is below this fraction of the trial's largest peak is partial
COP_CHECK_FRACTION = 0.1  # the COP is checked where Fz exceeds this fraction of the contact's peak
COP_MARGIN_M = 0.01  # tolerance of the COP-inside-the-plate check
COP_OUTSIDE_MAX_FRACTION = 0.05  # a few stray COP samples at the plate edge do not make a contact unclean
OTHER_FOOT_MIN_S = 0.06  # the other foot must stand on the plate this long to make the contact unclean
ZERO_MAX_LOAD_FRACTION = 0.25  # a ZERO-frame level above this fraction of the trial's largest force may be a foot
REST_FAR_N = 5.0  # an unloaded level further than this from 0 N (half the default release level) is reported


def _declared_axis(text: str) -> tuple[int, float] | None:
    """``"+z"`` / ``"-y"`` / ``"y"`` (pointing up) as ``(axis, sign)``; None when it is not such a text."""
    text = text.strip().lower()
    if len(text) == 1:
        text = "+" + text
    if len(text) == 2 and text[0] in "+-" and text[1] in "xyz":
        return "xyz".index(text[1]), (1.0 if text[0] == "+" else -1.0)
    return None


def _lab_vertical(plates: list[Stream], markers: Stream | None) -> tuple[int, float]:
    """``(axis, sign)`` of the lab's upward vertical: from the markers when they show it (`_vertical_of`), else
    the lab's documented up axis that the plate streams carry (``lab_up_axis``, e.g. ``"y"`` for OpenSim ``.mot``
    ground reactions: the axis pointing up), else the plates' corners (the C3D adapter's ``vertical_axis``, e.g.
    ``"+z"``; the C3D plate z axis points down into the plate), else +z. A key on which the plates disagree is not
    used."""
    if markers is not None:
        return _vertical_of(markers)
    for key in ("lab_up_axis", "vertical_axis"):
        declared = {str(p.meta.get(key) or "").strip().lower() for p in plates} - {""}
        if len(declared) == 1 and (axis := _declared_axis(declared.pop())) is not None:
            return axis
    return 2, 1.0


def _declared_side(plate: Stream) -> str | None:
    """The foot a plate stream says it belongs to (``meta["side"]``: OpenSim ``.mot`` force groups named ``_r`` /
    ``_l``), else None."""
    side = str(plate.meta.get("side") or "").strip().lower()
    return {"r": "right", "right": "right", "l": "left", "left": "left"}.get(side)


def _longest_run_s(mask: NDArray[np.bool_], dt: float) -> float:
    """Duration (s) of the longest run of True in ``mask``."""
    if not mask.any():
        return 0.0
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return float((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max() * dt)


def _vertical_sign(plate: Stream, up: int, threshold_n: float, up_sign: float = 1.0) -> float:
    """+1, or -1 when the plate's upward force (``up_sign`` x the force along axis ``up``) is negative under load.

    Sign conventions differ between writers (the force on the plate or the reaction on the subject): a body-weight
    load is the largest excursion from the unloaded level, so when that excursion is negative, more than 3 x the
    largest positive one and more than 10 x the contact threshold (200 N; sample03-nz has a -100 N transient next
    to a 39 N partial contact on one plate) the force is reversed. (A lab whose vertical axis points down is
    handled by ``up_sign``: on a treadmill the plate is never unloaded, so the excursion test cannot tell.) A stream
    that documents its lab's up axis and that its force is the reaction on the subject (OpenSim ``.mot``:
    ``meta["force_sign"]`` ``"reaction: ..."``) is taken at its word: an excerpt in which one foot stands through
    most of the recording has its largest excursion downwards.
    """
    if plate.meta.get("lab_up_axis") and str(plate.meta.get("force_sign", "")).startswith("reaction"):
        return 1.0
    fz = up_sign * np.asarray(plate.channel("force")[:, up], dtype=float)
    finite = fz[np.isfinite(fz)]
    if finite.size:
        base = float(np.median(finite))
        low_ex, high_ex = base - float(finite.min()), float(finite.max()) - base
        if low_ex > 3.0 * high_ex and low_ex > 10.0 * threshold_n:
            return -1.0
    return 1.0


class GaitForcePlate(BaseGaitDetector):
    """Foot strike and foot off from the vertical ground reaction force of each plate.

    Parameters
    ----------
    threshold_n
        Vertical force (N) whose crossings time the events: foot strike when Fz rises through it, foot off when
        it falls through it (linear interpolation between analog samples). 20 N, as most lab systems.
    release_n
        Hysteresis: a contact only ends once Fz has fallen below this (N), so noise around ``threshold_n`` does
        not split a contact.
    min_contact_s
        Contacts shorter than this (s) are noise or a tap, not a stance (100 ms; a running stance is > 150 ms).
    keep_unclean
        False: contacts that fail the clean-strike check give no event (listed in ``meta["contacts"]`` and in
        ``warnings``). True: their events are kept, with the reasons in ``Event.label`` (``"unclean: ..."``).

    Attributes
    ----------
    results_
        One `GaitResult` per clock that has force plates. ``meta["contacts"]`` lists every contact with its
        plate, times, side, how the side was found (``"markers"``, ``"plate metadata"``: the stream's declared
        ``meta["side"]`` when there are no foot markers, or ``"unknown"``), the distance from the centre of
        pressure to each foot and whether it is clean (and why not). ``meta["zero_baseline_n"]``: the unloaded level
        subtracted from each plate's vertical force (C3D ``FORCE_PLATFORM:ZERO`` frames, quiet and unloaded).

    Notes
    -----
    ``sd_s`` of an event = sqrt((dt / sqrt(12))^2 + (noise_sd / slope)^2): the quantisation of one analog sample
    ``dt`` and the time shift that the unloaded-plate noise (SD ``noise_sd``, N) causes at a crossing of slope
    ``slope`` (N/s).

    Clean strike: one foot on one plate, i.e. (1) Fz rises from and returns to below ``release_n`` inside the
    recording, (2) the centre of pressure stays inside the plate's corners (``meta["corners_m"]``, 10 mm
    tolerance, where Fz > 10 % of the contact's peak, in at least 95 % of those samples), (3) the other foot is not
    standing on the plate (its markers inside the plate outline and within 2 cm of their standing height for 60 ms
    or more), (4) the peak force is at least half the largest contact peak of the trial
    (a partial contact otherwise). A contact that starts (ends) at the recording edge loses only its foot strike
    (foot off).
    """

    source = "forceplate"
    name = "fz_threshold"
    version = "2"

    def __init__(self, *, threshold_n: float = 20.0, release_n: float = 10.0, min_contact_s: float = 0.1,
                 keep_unclean: bool = False) -> None:
        self.threshold_n = threshold_n
        self.release_n = release_n
        self.min_contact_s = min_contact_s
        self.keep_unclean = keep_unclean

    def detect(self, reader: SessionReader) -> Self:
        """Find the contacts of every force plate of every clock (see the class docstring)."""
        plates_by_clock: dict[str, list[Stream]] = {}
        for name in reader.find_streams(modality="forceplate"):
            s = reader.read_stream(name)
            if "force" in s.channels and s.regular:
                plates_by_clock.setdefault(s.clock, []).append(s)
        markers_by_clock: dict[str, Stream] = {}
        for name in reader.find_streams(modality="markers"):
            s = reader.read_stream(name)
            if s.data.ndim == 3 and _foot_markers(s.channels) and s.clock not in markers_by_clock:
                markers_by_clock[s.clock] = s
        self.results_ = [self._detect_clock(clock, plates, markers_by_clock.get(clock))
                         for clock, plates in plates_by_clock.items()]
        return self

    # -- steps ---------------------------------------------------------------------------------------------------
    def _detect_clock(self, clock: str, plates: list[Stream], markers: Stream | None) -> GaitResult:
        res = GaitResult(source=self.source, detector=self.detector_id,
                         streams=tuple(p.name for p in plates) + ((markers.name,) if markers else ()), clock=clock)
        up, up_sign = _lab_vertical(plates, markers)
        # 1. contacts of every plate (hysteresis on Fz)
        contacts: list[dict[str, Any]] = []
        signs = {p.name: _vertical_sign(p, up, self.threshold_n, up_sign) for p in plates}
        fzs = {p.name: signs[p.name] * up_sign * np.asarray(p.channel("force")[:, up], dtype=float) for p in plates}
        flipped = [name for name, sign in signs.items() if sign < 0]
        if flipped:
            res.warnings.append(f"{', '.join(flipped)}: the vertical force is negative under load (the file "
                                "stores the force on the plate, not the reaction on the subject); its sign was "
                                "reversed for the contact threshold")
            res.meta["vertical_force_reversed"] = flipped
        # the unloaded level: the file's FORCE_PLATFORM:ZERO baseline where its frames were quiet and unloaded
        largest_n = max((float(np.nanmax(f)) for f in fzs.values() if np.isfinite(f).any()), default=0.0)
        baselines: dict[str, float] = {}
        for p in plates:
            level, note = self._zero_level(p, fzs[p.name], largest_n)
            fz = fzs[p.name] - level
            if note and "no data" in note:  # ZERO frames written as exact zeros: no measurement there
                fz[int(p.meta["zero_samples"][0]):int(p.meta["zero_samples"][1])] = np.nan
            if note:
                res.warnings.append(f"{p.name}: {note}")
            elif p.meta.get("zero_samples"):
                baselines[p.name] = round(level, 3)
                if abs(level) > REST_FAR_N:
                    res.warnings.append(f"{p.name}: its unloaded level in the {_zero_text(p)}, {level:.1f} N, is "
                                        "subtracted from the vertical force")
            plate_contacts = self._contacts(p, fz, up)
            never = self._rest_check(p, fz, note, res.warnings)
            for c in plate_contacts:
                if never:
                    c["reasons"].append(never)
            contacts += plate_contacts
        if baselines:
            res.meta["zero_baseline_n"] = baselines
        if not contacts:
            res.meta["contacts"] = []
            return res
        # 2. partial contacts
        largest = max(c["peak_n"] for c in contacts)
        for c in contacts:
            if c["peak_n"] < PARTIAL_PEAK_FRACTION * largest:
                c["reasons"].append(f"partial contact (peak {c['peak_n']:.0f} N < half the trial's largest, "
                                    f"{largest:.0f} N)")
        # 3. side from markers (else from the plate stream's declared foot), other foot on the plate
        if markers is None and any(_declared_side(c["_plate"]) is None for c in contacts):
            res.warnings.append("no foot markers on this clock: the side of each contact is unknown ('general')")
        for c in contacts:
            declared = _declared_side(c["_plate"])
            if markers is not None:
                self._assign_side(c, markers, up, up_sign)
            else:
                c["side"], c["side_method"] = "general", "unknown"
            if declared is None:
                continue
            c["declared_side"] = declared
            if c["side_method"] == "unknown":
                c["side"], c["side_method"] = declared, "plate metadata"
            elif c["side"] != declared:
                res.warnings.append(f"{c['plate']} contact {c['start_s']:.3f}-{c['end_s']:.3f} s: the markers put "
                                    f"the {c['side']} foot on it, the plate stream declares the {declared} foot; "
                                    "the markers decide")
        # 4. events
        for c in contacts:
            clean = not c["reasons"]
            c["clean"] = clean
            if not clean:
                res.warnings.append(f"{c['plate']} contact {c['start_s']:.3f}-{c['end_s']:.3f} s not clean: "
                                    + "; ".join(c["reasons"]) + ("" if self.keep_unclean else " (no event)"))
                if not self.keep_unclean:
                    continue
            label = "" if clean else "unclean: " + "; ".join(c["reasons"])
            for kind, t, sd in (("foot_strike", c["fs_s"], c.get("fs_sd_s")),
                                ("foot_off", c["fo_s"], c.get("fo_sd_s"))):
                if t is None:
                    continue
                res.events.append(Event(time_s=float(t), kind=kind, side=c["side"], source=self.source,
                                        sd_s=float(sd), label=label or f"{c['plate']}", clock=clock,
                                        detector=self.detector_id))
        res.events.sort(key=lambda e: e.time_s)
        res.meta["contacts"] = [{k: v for k, v in c.items() if not k.startswith("_")} for c in contacts]
        res.meta["threshold_n"] = self.threshold_n
        return res

    def _zero_level(self, plate: Stream, fz: NDArray[np.float64], largest_n: float) -> tuple[float, str | None]:
        """The unloaded level of the upward force ``fz`` from the file's ``FORCE_PLATFORM:ZERO`` frames (the C3D
        adapter's ``meta["zero_samples"]``), and None; or 0 N and why the frames were not used.

        The frames are used when the force there is quiet (it varies by less than ``threshold_n``), is not a load
        (a positive level below ``ZERO_MAX_LOAD_FRACTION`` of the trial's largest force) and the plate was not
        loaded then (the force never stays ``threshold_n`` below their level for ``min_contact_s`` or longer).
        """
        samples = plate.meta.get("zero_samples")
        if not samples:
            return 0.0, None
        what = _zero_text(plate)
        seg = fz[int(samples[0]):int(samples[1])]
        seg = seg[np.isfinite(seg)]
        if not seg.size or not np.any(seg):
            return 0.0, f"the {what} hold no data (exact zeros): not used as its unloaded level"
        level, spread = float(seg.mean()), float(seg.max() - seg.min())
        if spread >= self.threshold_n:
            return 0.0, (f"the vertical force varies by {spread:.0f} N in the {what} (not quiet): they are not used "
                         "as its unloaded level")
        if level > ZERO_MAX_LOAD_FRACTION * largest_n:
            return 0.0, (f"the {what} hold {level:.0f} N, {100 * level / largest_n:.0f} % of the trial's largest "
                         "force (a foot may rest on the plate then): not used as its unloaded level")
        rate = float(plate.rate_hz or 1.0 / np.median(np.diff(plate.times())))
        low_s = _longest_run_s(fz - level < -self.threshold_n, 1.0 / rate)
        if low_s >= self.min_contact_s:
            return 0.0, (f"the vertical force stays more than {self.threshold_n:g} N below its level in the {what} "
                         f"({level:.1f} N) for {low_s:.2f} s (the plate may have been loaded then): not used as its "
                         "unloaded level")
        return level, None

    def _rest_check(self, plate: Stream, fz: NDArray[np.float64], zero_note: str | None,
                    warnings: list[str]) -> str | None:
        """Warn when the plate is never unloaded (returns the reason its contacts give no event) or when its
        unloaded level is far from 0 N."""
        finite = fz[np.isfinite(fz)]
        if not finite.size:
            return None
        unloaded = finite < self.release_n
        why = ("the file declares no zero baseline" if not plate.meta.get("zero_samples")
               else "its ZERO frames were not used" if zero_note else "after its ZERO baseline")
        if not unloaded.any():
            warnings.append(f"{plate.name}: the vertical force never falls below {self.release_n:g} N (lowest "
                            f"{finite.min():.1f} N, median {np.median(finite):.1f} N; {why}): the plate is never "
                            "unloaded (a subject on it throughout, or a zero offset): no contact can be timed on it")
            return f"the plate is never unloaded (lowest {finite.min():.1f} N)"
        rest = float(np.median(finite[unloaded]))
        if abs(rest) > REST_FAR_N:
            warnings.append(f"{plate.name}: its unloaded level is {rest:.1f} N, not 0 N ({why}): contacts are "
                            f"timed where the force is {self.threshold_n - rest:.0f} N above it")
        return None

    def _contacts(self, plate: Stream, fz: NDArray[np.float64], up: int) -> list[dict[str, Any]]:
        t = plate.times()
        rate = float(plate.rate_hz or 1.0 / np.median(np.diff(t)))
        dt = 1.0 / rate
        unloaded = fz[fz < self.release_n]
        noise_sd = float(1.4826 * np.median(np.abs(unloaded - np.median(unloaded)))) if len(unloaded) > 10 else 0.0
        # hysteresis: on when fz > threshold, off when fz < release
        starts: list[int] = []
        ends: list[int] = []
        on = False
        above = np.flatnonzero(fz > self.threshold_n)
        below = np.flatnonzero(fz < self.release_n)
        i = 0
        n = len(fz)
        while i < n:
            if not on:
                k = np.searchsorted(above, i)
                if k >= len(above):
                    break
                i = int(above[k])
                starts.append(i)
                on = True
            else:
                k = np.searchsorted(below, i)
                if k >= len(below):
                    ends.append(n)
                    break
                i = int(below[k])
                ends.append(i)
                on = False
        out = []
        cop = plate.channel("cop") if "cop" in plate.channels else None
        corners = np.asarray(plate.meta.get("corners_m") or [], dtype=float)
        for i0, i1 in zip(starts, ends, strict=False):
            if (i1 - i0) * dt < self.min_contact_s:
                continue
            c: dict[str, Any] = {"plate": plate.name, "start_s": float(t[i0]), "end_s": float(t[min(i1, n - 1)]),
                                 "peak_n": float(fz[i0:i1].max()), "reasons": [], "edge": [], "_i0": i0, "_i1": i1,
                                 "_plate": plate}
            # foot strike: upward crossing of the threshold, interpolated between i0 - 1 and i0
            if i0 == 0 or not np.isfinite(fz[i0 - 1]):
                c["fs_s"] = None
                c["edge"].append("loaded at the start of the recording: no foot strike")
            else:
                c["fs_s"], c["fs_sd_s"] = _crossing(t, fz, i0 - 1, self.threshold_n, dt, noise_sd)
            # foot off: last downward crossing of the threshold before the release
            if i1 >= n:
                c["fo_s"] = None
                c["edge"].append("loaded at the end of the recording: no foot off")
            else:
                j = i1 - 1
                while j > i0 and fz[j] <= self.threshold_n:
                    j -= 1
                c["fo_s"], c["fo_sd_s"] = _crossing(t, fz, j, self.threshold_n, dt, noise_sd)
            if cop is not None and corners.shape == (4, 3):
                loaded = fz[i0:i1] > COP_CHECK_FRACTION * c["peak_n"]  # COP is noisy at low force: not checked
                pts = cop[i0:i1][loaded]
                pts = pts[np.all(np.isfinite(pts), axis=1)]
                horiz = [a for a in range(3) if a != up]
                if len(pts):
                    outside = ~_inside(pts[:, horiz], corners[:, horiz], margin_m=COP_MARGIN_M)
                    if outside.mean() > COP_OUTSIDE_MAX_FRACTION:
                        c["reasons"].append(f"centre of pressure outside the plate in {outside.sum()} of "
                                            f"{len(outside)} samples")
            out.append(c)
        return out

    def _assign_side(self, c: dict[str, Any], markers: Stream, up: int, up_sign: float = 1.0) -> None:
        plate: Stream = c["_plate"]
        feet = _foot_markers(markers.channels)
        horiz = [a for a in range(3) if a != up]
        tp = plate.times()[c["_i0"]:c["_i1"]]
        cop = plate.channel("cop")[c["_i0"]:c["_i1"]] if "cop" in plate.channels else None
        tm = markers.times()
        sel = (tm >= tp[0]) & (tm <= tp[-1])
        if sel.sum() < 2 or cop is None:
            c["side"], c["side_method"] = "general", "unknown"
            c["reasons"].append("no marker frames or centre of pressure during the contact: side unknown")
            return
        cop_m = np.stack([np.interp(tm[sel], tp, cop[:, a]) for a in horiz], axis=1)  # NaN-safe below
        dist: dict[str, float] = {}
        airborne: dict[str, NDArray[np.bool_]] = {}
        per_frame: dict[str, NDArray[np.float64]] = {}
        low: dict[str, NDArray[np.bool_]] = {}
        # the contact's loading peak (the foot cannot have left the plate before it)
        peak_t = float(tp[int(np.nanargmax(np.abs(plate.channel("force")[c["_i0"]:c["_i1"], up])))])
        for side, roles in feet.items():
            stack = np.stack([_marker(markers, ch) for ch in roles.values()])
            count = np.isfinite(stack).sum(axis=0)
            # mean of the markers seen in each frame
            pos = np.where(count > 0, np.nansum(stack, axis=0) / np.maximum(count, 1), np.nan)
            d = np.linalg.norm(pos[sel][:, horiz] - cop_m, axis=1)
            dist[side] = float(np.nanmedian(d)) if np.isfinite(d).any() else math.inf
            with np.errstate(invalid="ignore"), _pywarnings.catch_warnings():
                _pywarnings.simplefilter("ignore", RuntimeWarning)  # frames with no marker of this foot
                # each marker's height above its lowest during this contact: the least lifted marker
                heights = up_sign * stack[:, :, up][:, sel]
                lift = np.nanmin(heights - np.nanmin(heights, axis=1)[:, None], axis=0)
                # only a foot with a forefoot marker: a heel alone rises at heel-off, long before the toe leaves
                if np.isfinite(lift).any() and {"toe", "mt5"} & set(roles):
                    # after the contact's loading peak, every marker of the foot above its level in this contact
                    airborne[side] = (lift > FOOT_ON_PLATE_HEIGHT_M) & (tm[sel] > peak_t)
                    per_frame[side] = d
            z = up_sign * pos[:, up]  # height
            stand = np.nanpercentile(z, 5) if np.isfinite(z).any() else np.nan
            corners = np.asarray(plate.meta.get("corners_m") or [], dtype=float)
            if corners.shape == (4, 3):
                inside = _inside(pos[sel][:, horiz], corners[:, horiz], margin_m=0.0)
                low[side] = inside & (z[sel] < stand + FOOT_ON_PLATE_HEIGHT_M)
        c["cop_distance_m"] = {k: (round(v, 4) if math.isfinite(v) else None) for k, v in dist.items()}
        if not dist or not any(math.isfinite(v) for v in dist.values()):
            c["side"], c["side_method"] = "general", "unknown"
            return
        side = min(dist, key=lambda k: dist[k])
        c["side"], c["side_method"] = side, "markers"
        others = [s for s in low if s != side]
        rate = float(markers.rate_hz or 1.0 / np.median(np.diff(tm)))
        for o in others:
            if low[o].sum() / rate >= OTHER_FOOT_MIN_S:
                c["reasons"].append(f"the {o} foot is also on the plate ({low[o].sum() / rate:.2f} s)")
        # the foot in the air while the plate is still loaded, its centre of pressure nearer the other foot: a
        # treadmill belt that the other foot, landing on the next belt, loads near the boundary after this foot
        # left it; the threshold crossing is then the other foot's, not this foot's foot off
        air = airborne.get(side)
        others_d = [per_frame[o] for o in per_frame if o != side]
        if air is not None and others_d and len(per_frame) == len(feet) and c.get("fo_s") is not None:
            with np.errstate(invalid="ignore"):
                air = air & (np.fmin.reduce(others_d) < per_frame[side])  # NaN (no marker seen): not nearer
            t_sel = tm[sel]
            runs = np.flatnonzero(np.diff(np.concatenate(([0], air.astype(np.int8), [0]))))
            for a, b in zip(runs[::2], runs[1::2], strict=True):
                if (b - a) / rate >= OTHER_FOOT_MIN_S and c["fo_s"] > t_sel[a] + OTHER_FOOT_MIN_S:
                    c["edge"].append(f"the {side} foot is in the air from {t_sel[a]:.3f} s while the plate stays "
                                     f"loaded until {c['fo_s']:.3f} s (another foot's load): no foot off")
                    c["fo_s"] = None
                    break


def _zero_text(plate: Stream) -> str:
    frames = plate.meta.get("zero_frames") or ["?", "?"]
    return f"FORCE_PLATFORM:ZERO frames {frames[0]}-{frames[1]}"


def _crossing(t: NDArray[np.float64], f: NDArray[np.float64], i: int, level: float, dt: float,
              noise_sd: float) -> tuple[float, float]:
    """Time where ``f`` crosses ``level`` between samples i and i + 1 (linear), and its SD (see Notes)."""
    f0, f1 = float(f[i]), float(f[i + 1])
    slope = (f1 - f0) / dt
    frac = 0.5 if f1 == f0 else min(max((level - f0) / (f1 - f0), 0.0), 1.0)
    sd = math.hypot(dt / math.sqrt(12.0), noise_sd / abs(slope) if slope else dt)
    return float(t[i] + frac * dt), sd


def _inside(pts: NDArray[np.float64], corners: NDArray[np.float64], *, margin_m: float) -> NDArray[np.bool_]:
    """Whether 2-D points lie inside the convex quadrilateral ``corners`` (4, 2), grown by ``margin_m``."""
    centre = corners.mean(axis=0)
    inside = np.ones(len(pts), dtype=bool)
    for k in range(4):
        a, b = corners[k], corners[(k + 1) % 4]
        edge = b - a
        normal = np.array([edge[1], -edge[0]]) / (np.hypot(*edge) or 1.0)
        if np.dot(centre - a, normal) > 0:
            normal = -normal  # outward
        inside &= (pts - a) @ normal <= margin_m
    return inside
