"""Common types of the gait family: detector output, per-stride parameters, and the detector contract.

Every detector is a class in a private module of this package (``_forceplate.py``, ``_markers.py``,
``_imu_foot.py``, ``_imu_back.py``, ``_video.py``), named after its family and method (``GaitForcePlate``,
``GaitZeni``, ...), derived from `BaseGaitDetector`: parameters (with unit suffixes) only in ``__init__``, one
verb

    detector.detect(reader: SessionReader) -> Self      # results in detector.results_: list[GaitResult]

one `GaitResult` per analysed stream (or group of streams on one clock); an empty list when the session has no
stream the detector can use. A detector

* reads streams with ``reader.read_stream(name)`` and returns events on the **stream's device clock**
  (``Event.clock`` = the stream's clock id; `SessionReader.events` and `to_session` map them to the session clock);
* never invents an event where the signal is unusable (gap, low visibility, saturated): it skips it and says so in
  ``GaitResult.warnings``;
* gives every event an ``sd_s`` (timing SD, s) from the detector's known error at that sampling rate and the local
  signal quality (documented per detector);
* never uses ``source="annotation"`` events (events stored in source files) as its own output; it may use them only
  in tests and in ``fusionlab validate`` as reference;
* sets ``Event.source`` to its family (``"forceplate"``, ``"markers"``, ``"imu"``, ``"video"``) and
  ``Event.detector`` to ``"<algorithm> v<version>"`` (e.g. ``"zeni2008 v1"``).

Spatiotemporal parameters are per stride (`Stride`): a stride of one side runs from one foot strike of that side to
the next. Temporal parameters come from events alone (`fusionlab.gait.params.temporal_strides`); spatial ones
(stride/step length, step width, speed) need positions and are filled by the modality that has them.

Parameter names and units (SI inside; cadence in steps/min and percentages are the clinical conventions and are
named so):

    stride_time_s, step_time_s, cadence_steps_per_min, stance_pct, swing_pct, double_support_pct,
    stride_length_m, step_length_m, step_width_m, gait_speed_m_per_s
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Self

from fusionlab.model import Event

if TYPE_CHECKING:
    from fusionlab.model import Stream
    from fusionlab.persist import SessionReader

__all__ = ["PARAMETERS", "BaseGaitDetector", "GaitResult", "Stride", "Value"]

PARAMETERS: dict[str, str] = {
    "stride_time_s": "s",
    "step_time_s": "s",
    "cadence_steps_per_min": "steps/min",
    "stance_pct": "% of stride",
    "swing_pct": "% of stride",
    "double_support_pct": "% of stride",
    "stride_length_m": "m",
    "step_length_m": "m",
    "step_width_m": "m",
    "gait_speed_m_per_s": "m/s",
}
"""Every spatiotemporal parameter fusionlab reports, with its unit."""


@dataclass(frozen=True)
class Value:
    """A number with its standard deviation (same unit). ``sd`` is NaN when it cannot be estimated."""

    value: float
    sd: float = math.nan

    def as_dict(self) -> dict[str, float | None]:
        return {"value": _num(self.value), "sd": _num(self.sd)}


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class Stride:
    """One stride of one side: from a foot strike to the next foot strike of the same foot.

    ``start_s`` and ``end_s`` are on the same clock as the events they come from (``clock``). ``params`` maps
    parameter names of `PARAMETERS` to `Value`; a parameter the modality cannot give is absent, never 0.
    """

    side: str
    start_s: float
    end_s: float
    clock: str
    params: dict[str, Value] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"side": self.side, "start_s": self.start_s, "end_s": self.end_s, "clock": self.clock,
                "params": {k: v.as_dict() for k, v in self.params.items()}}


@dataclass
class GaitResult:
    """What one detector found in one stream (or group of streams on one clock)."""

    source: str  # "forceplate", "markers", "imu", "video"
    detector: str  # "<algorithm> v<version>"
    streams: tuple[str, ...]
    clock: str
    events: list[Event] = field(default_factory=list)
    strides: list[Stride] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. walkway axis, direction, treadmill, plate assignment


class BaseGaitDetector:
    """Base of every gait event detector (see the module docstring for the contract).

    Subclasses set ``source`` (``"forceplate"``, ``"markers"``, ``"imu"``, ``"video"``) and ``name`` (the algorithm,
    e.g. ``"zeni2008"``) and ``version``, take their parameters in ``__init__`` (stored as attributes of the same
    name, no validation or work there) and implement `detect`.
    """

    source: ClassVar[str] = ""
    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"

    results_: list[GaitResult]

    @property
    def detector_id(self) -> str:
        """``"<name> v<version>"``, stored in every event's ``detector`` field."""
        return f"{self.name} v{self.version}"

    def get_params(self) -> dict[str, Any]:
        """The parameters given to ``__init__`` (JSON-serialisable), stored with the results."""
        import inspect

        return {k: getattr(self, k) for k in inspect.signature(type(self).__init__).parameters if k != "self"}

    def detect(self, reader: SessionReader) -> Self:
        """Find events (and per-stride parameters where the modality allows) in the session's streams."""
        raise NotImplementedError

    def _unusable_imu(self, stream: Stream, needs: tuple[str, ...] = ("acc", "gyr")) -> GaitResult | None:
        """For an IMU stream at one of the detector's placements: a result without events whose warning says why
        the stream cannot be analysed (a missing channel, irregular sampling), or None when it can."""
        missing = [ch for ch in needs if ch not in stream.channels]
        why = (f"no {' or '.join(missing)} channel (it has {', '.join(stream.channels)}): this detector needs "
               f"{' and '.join(needs)}" if missing else
               "irregular sampling (no fixed rate): this detector needs a regular IMU stream" if not stream.regular
               else None)
        if why is None:
            return None
        return GaitResult(source=self.source, detector=self.detector_id, streams=(stream.name,), clock=stream.clock,
                          warnings=[f"{why}: no event"],
                          meta={"placement": str(stream.meta.get("placement", ""))})
