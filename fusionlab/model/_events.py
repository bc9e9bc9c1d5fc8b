"""Events (gait events and others) and clock entries."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from fusionlab.exceptions import ValidationError

__all__ = ["SIDES", "ClockEntry", "Event", "Side", "normalise_event"]

Side = Literal["left", "right", "general"]
SIDES: tuple[str, ...] = ("left", "right", "general")

SESSION_CLOCK = "session"


@dataclass(frozen=True)
class Event:
    """A point event.

    Parameters
    ----------
    time_s
        Time on the clock named by ``clock`` (s).
    kind
        ``"foot_strike"``, ``"foot_off"`` or another snake_case kind (``"event"`` when unknown).
    side
        ``"left"``, ``"right"`` or ``"general"``.
    source
        Who produced it: ``"annotation"`` (an event stored in a source file), or a detector family such as
        ``"forceplate"``, ``"markers"``, ``"imu"``, ``"video"``, ``"fused"``.
    sd_s
        Timing uncertainty (standard deviation, s); NaN when unknown (annotations).
    label
        The label as written in the source (``"Foot Strike"``, ``"LHS"``).
    clock
        The clock of ``time_s``: a device clock identifier or ``"session"``.
    detector
        Algorithm name and version for detector output; the source file name for annotations.
    """

    time_s: float
    kind: str
    side: str
    source: str
    sd_s: float = math.nan
    label: str = ""
    clock: str = SESSION_CLOCK
    detector: str = ""

    def __post_init__(self) -> None:
        if not math.isfinite(self.time_s):
            msg = f"Event {self.label or self.kind!r}: time_s must be finite, got {self.time_s}."
            raise ValidationError(msg)
        if self.side not in SIDES:
            msg = f"Invalid value for 'side'. Allowed values are {', '.join(SIDES)}, but got {self.side!r} instead."
            raise ValidationError(msg)
        if not self.kind or not self.source:
            msg = "An event needs a kind and a source."
            raise ValidationError(msg)


_KIND_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"(foot|heel)[ _-]*(strike|contact)|^[lr]?(hs|fs|ic)$|initial[ _-]*contact", "foot_strike"),
    (r"(foot|toe)[ _-]*off|^[lr]?(to|fo|tc)$|final[ _-]*contact|toe[ _-]*(off|clearance)", "foot_off"),
)


_FC = re.compile(r"^[lr]?fc$")  # "FC": final contact (paired with "IC") or foot contact (paired with "FO"/"TO")
_IC_PEER = re.compile(r"^[lr]?ic$|initial[ _-]*contact")
_OFF_PEER = re.compile(r"^[lr]?(to|fo)$|(foot|toe)[ _-]*off")


def normalise_event(label: str, context: str = "", *, peers: tuple[str, ...] | list[str] = ()) -> tuple[str, str]:
    """Map a source's event label and context to ``(kind, side)``.

    Handles Vicon style (label ``"Foot Strike"`` with context ``"Left"``), Motion Analysis style (``"LHS"``,
    ``"RTO"`` with no context), ``"Left Foot Strike"`` in one label, ``"Heel Strike"``/``"Toe Off"``,
    ``"Initial Contact"``/``"Final Contact"``, ``"Foot Contact"``, and ``"IC"``/``"FC"``.

    ``"FC"`` means final contact (a foot off) where the same source labels its strikes ``"IC"``, but foot contact
    (a strike) where it labels its foot offs ``"FO"``/``"TO"``: ``peers`` (the other labels of the source) decide.
    Without such a peer (or with both) it stays the unknown kind ``"fc"``, never a guess.

    Examples
    --------
    >>> normalise_event("Foot Strike", "Left")
    ('foot_strike', 'left')
    >>> normalise_event("RTO")
    ('foot_off', 'right')
    >>> normalise_event("FC", "Right", peers=["IC", "FC"])
    ('foot_off', 'right')
    """
    text = label.strip()
    ctx = context.strip().lower()
    side = "general"
    if ctx.startswith("l"):
        side = "left"
    elif ctx.startswith("r"):
        side = "right"
    low = text.lower()
    if side == "general" and not ctx:
        m = re.match(r"^(left|right)[ _-]+(.*)$", low)
        if m:
            side, low = m.group(1), m.group(2)
        elif re.match(r"^[lr](hs|fs|ic|to|fo|tc|fc)$", low):
            side = "left" if low[0] == "l" else "right"
    if _FC.match(low.strip()):
        peer = [p.strip().lower() for p in peers]
        ic = any(_IC_PEER.search(p) for p in peer)
        off = any(_OFF_PEER.search(p) for p in peer)
        if ic != off:
            return ("foot_off" if ic else "foot_strike"), side
        return "fc", side
    for pattern, kind in _KIND_PATTERNS:
        if re.search(pattern, low):
            return kind, side
    kind = re.sub(r"[^a-z0-9]+", "_", low).strip("_") or "event"
    return kind, side


@dataclass(frozen=True)
class ClockEntry:
    """How one device clock maps to the session clock.

    ``t_session = offset_s + t_device * (1 + drift_ppm * 1e-6)``

    Parameters
    ----------
    clock
        Identifier shared by the streams on this clock.
    offset_s, offset_sd_s
        Offset and its standard deviation (s).
    drift_ppm, drift_sd_ppm
        Rate error and its standard deviation (parts per million); 0 and NaN when not estimated.
    method
        How it was obtained: ``"reference"`` (this clock defines the session clock), ``"same_file"``,
        ``"trigger"``, ``"cross_correlation"``, ``"events"``, ``"lsl"``, ``"unsynchronised"`` (no estimate yet:
        offset 0 assumed, with infinite uncertainty).
    reference
        The clock it was synchronised against (``"session"``).
    quality
        Free text or a score from the method (peak ratio, residual RMS, ...).
    """

    clock: str
    offset_s: float = 0.0
    offset_sd_s: float = math.inf
    drift_ppm: float = 0.0
    drift_sd_ppm: float = math.nan
    method: str = "unsynchronised"
    reference: str = SESSION_CLOCK
    quality: str = ""

    def to_session(self, t_device: float) -> float:
        """Map a device-clock time (s) to the session clock (s)."""
        return self.offset_s + t_device * (1.0 + self.drift_ppm * 1e-6)

    def to_device(self, t_session: float) -> float:
        """Map a session-clock time (s) to this device clock (s)."""
        return (t_session - self.offset_s) / (1.0 + self.drift_ppm * 1e-6)
