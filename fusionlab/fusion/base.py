"""Common types of the fusion family: a fused signal with its variance, a conflict, and a fusion result.

Every fusion model is a function in a private module of this package (``_angles.py``, ``_foot.py``,
``_events.py``) that reads what it needs from a session and returns a `FusionResult`:

* ``signals``: fused quantities on the **session clock** (`FusedSignal`: times, mean and variance per channel, SI
  units, the inputs used and the noise estimated for each modality);
* ``events``: fused events (`fusionlab.model.Event`, ``source="fused"``, ``clock="session"``) with their SD;
* ``conflicts``: windows where one modality disagrees with the others beyond their combined uncertainty
  (`Conflict`: the quantity, the likely culprit, a severity and the evidence);
* ``algorithm``, ``parameters`` and ``inputs``: everything needed to reproduce the result from the session.

`fusionlab.fusion.store_fusion` writes a result to ``/derived/fusion_<name>`` (one atomic transaction) and
`fusionlab.fusion.read_fusion` reads it back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.model import Event

__all__ = ["Conflict", "FusedSignal", "FusionResult", "NothingToFuse"]


class NothingToFuse(ValueError):  # noqa: N818 - a condition, not a failure: the model does not apply
    """The session has nothing this model can fuse (`fuse_session` reports it and goes on with the others)."""


@dataclass(frozen=True)
class FusedSignal:
    """A fused quantity: mean and variance per sample and channel, on the session clock.

    ``mean`` and ``var`` are ``(T, K)``; ``var`` is the smoothed (posterior) variance of the mean, NaN where the
    estimate is undefined. ``noise`` maps each input modality to the measurement noise estimated from the data
    (SD in the signal's unit, e.g. ``{"markers": 0.012, "video": 0.05, "imu": ...}``).
    """

    name: str
    times: NDArray[np.float64]
    mean: NDArray[np.float64]
    var: NDArray[np.float64]
    channels: tuple[str, ...]
    units: tuple[str, ...]
    frame: str = ""
    inputs: tuple[str, ...] = ()
    noise: dict[str, float] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = np.asarray(self.times, dtype=np.float64)
        mean = np.asarray(self.mean, dtype=np.float64)
        var = np.asarray(self.var, dtype=np.float64)
        if mean.ndim == 1:
            mean, var = mean[:, None], var[:, None]
        if mean.shape != var.shape or mean.shape[0] != t.shape[0] or mean.shape[1] != len(self.channels):
            msg = (f"FusedSignal {self.name!r}: inconsistent shapes: times {t.shape}, mean {mean.shape}, "
                   f"var {var.shape}, {len(self.channels)} channels.")
            raise ValueError(msg)
        if len(self.units) != len(self.channels):
            msg = f"FusedSignal {self.name!r}: {len(self.units)} units for {len(self.channels)} channels."
            raise ValueError(msg)
        object.__setattr__(self, "times", t)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "var", var)

    def sd(self) -> NDArray[np.float64]:
        """Posterior standard deviation ``(T, K)``."""
        return np.sqrt(self.var)

    def band(self, level: float = 0.95) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Lower and upper bounds of the two-sided Gaussian credible band at ``level``."""
        from scipy.stats import norm

        k = float(norm.ppf(0.5 + level / 2))
        return self.mean - k * self.sd(), self.mean + k * self.sd()


@dataclass(frozen=True)
class Conflict:
    """A window where ``modality`` disagrees with the fused estimate of the others beyond their combined uncertainty.

    ``severity`` is ``"low"``, ``"medium"`` or ``"high"``; ``score`` is the number behind it (documented by the
    model that raised it, e.g. the windowed normalised residual); ``evidence`` says why, in numbers (e.g.
    ``{"nis": 41.2, "dof": 6.1, "p": 1e-6, "median_residual": 0.31, "unit": "rad"}``).
    """

    start_s: float
    end_s: float
    quantity: str
    modality: str
    severity: str
    score: float = math.nan
    evidence: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON form: ``start_s, end_s, quantity, modality, severity, evidence`` (and ``score``)."""
        return {"start_s": self.start_s, "end_s": self.end_s, "quantity": self.quantity, "modality": self.modality,
                "severity": self.severity, "score": self.score, "evidence": self.evidence}


@dataclass
class FusionResult:
    """What one fusion model produced from one session."""

    name: str
    algorithm: str
    parameters: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    signals: list[FusedSignal] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
