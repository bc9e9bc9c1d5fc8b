"""Common types of the synchronisation family.

A synchroniser estimates how a target device clock maps to a reference clock,
``t_reference = offset_s + t_target * (1 + drift_ppm * 1e-6)``, with the standard deviation of both, from
two signals (or event lists) that see the same physical thing. The family verb is ``synchronize``; results are
in attributes ending in ``_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Self

import numpy as np
from numpy.typing import NDArray

from fusionlab.exceptions import FusionlabError

__all__ = ["BaseSynchronizer", "Signal", "SyncRefused", "SyncResult"]


class Signal(NamedTuple):
    """A scalar signal on one device clock.

    Attributes
    ----------
    t
        ``(n,)`` device-clock times (s), strictly increasing.
    y
        ``(n,)`` values; NaN where unknown. Units do not matter (correlation is scale-free) but are named in
        ``quantity``.
    quantity
        What the signal is, e.g. ``"angular_speed:left_foot"``; only signals of the same quantity are compared.
    source
        Stream (and channel) it was derived from.
    """

    t: NDArray[np.float64]
    y: NDArray[np.float64]
    quantity: str
    source: str


class SyncRefused(FusionlabError):  # noqa: N818 - it is a refusal, reported to the user as such
    """The data do not determine the clock mapping; nothing is stored. ``suggestion`` says what would help."""

    def __init__(self, reason: str, suggestion: str = "") -> None:
        self.reason = reason
        self.suggestion = suggestion
        super().__init__(reason + (f" Suggestion: {suggestion}" if suggestion else ""))


@dataclass(frozen=True)
class SyncResult:
    """Estimated mapping of one clock to the reference clock."""

    clock: str
    reference: str
    offset_s: float
    offset_sd_s: float
    drift_ppm: float
    drift_sd_ppm: float
    method: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def interval95_s(self) -> tuple[float, float]:
        """95 % interval of the offset (normal approximation, ±1.96 SD)."""
        return self.offset_s - 1.96 * self.offset_sd_s, self.offset_s + 1.96 * self.offset_sd_s

    def to_reference(self, t_target: float) -> float:
        """Map a target-clock time to the reference clock."""
        return self.offset_s + t_target * (1.0 + self.drift_ppm * 1e-6)


class BaseSynchronizer:
    """Base class: parameters in ``__init__`` only, ``synchronize`` does the work and returns ``self``."""

    offset_s_: float
    offset_sd_s_: float
    drift_ppm_: float
    drift_sd_ppm_: float
    evidence_: dict[str, Any]

    def synchronize(self, reference: Any, target: Any) -> Self:  # pragma: no cover - interface
        """Estimate the mapping of ``target``'s clock to ``reference``'s clock."""
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """Parameters given to ``__init__``."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_") and not k.startswith("_")}

    def clone(self) -> Self:
        """A new, unfitted instance with the same parameters."""
        return type(self)(**self.get_params())

    def result(self, clock: str, reference: str, method: str) -> SyncResult:
        """The fitted mapping as a `SyncResult`."""
        return SyncResult(clock=clock, reference=reference, offset_s=self.offset_s_, offset_sd_s=self.offset_sd_s_,
                          drift_ppm=self.drift_ppm_, drift_sd_ppm=self.drift_sd_ppm_, method=method,
                          evidence=dict(self.evidence_))


def linear_fit(x: NDArray[np.float64], y: NDArray[np.float64]) -> tuple[float, float, float, float, float]:
    """Least-squares ``y = a + b x``; returns a, b, SE(a), SE(b), residual SD (NaN SEs when n < 3)."""
    n = len(x)
    xm = float(np.mean(x))
    sxx = float(np.sum((x - xm) ** 2))
    b = float(np.sum((x - xm) * (y - np.mean(y))) / sxx) if sxx > 0 else 0.0
    a = float(np.mean(y) - b * xm)
    if n < 3 or sxx == 0:
        return a, b, math.nan, math.nan, math.nan
    resid = y - (a + b * x)
    s = float(np.sqrt(np.sum(resid**2) / (n - 2)))
    se_b = s / math.sqrt(sxx)
    se_a = s * math.sqrt(1.0 / n + xm**2 / sxx)
    return a, b, se_a, se_b, s
