"""The `Stream`: one device's samples, on its own clock, in SI units."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from fusionlab.exceptions import ValidationError
from fusionlab.frames import check_frame

__all__ = ["MODALITIES", "Modality", "Stream", "unique_labels"]

Modality = Literal[
    "markers",  # optical motion-capture marker trajectories
    "model",  # model outputs stored by a capture system (angles, moments, powers, forces, modelled markers)
    "analog",  # analog channels (EMG, raw plate channels, triggers)
    "forceplate",  # force, moment and centre of pressure of one plate
    "imu",  # inertial sensor
    "video_pose",  # keypoints from video
    "other",
]
MODALITIES: tuple[str, ...] = ("markers", "model", "analog", "forceplate", "imu", "video_pose", "other")


def unique_labels(labels: list[str] | tuple[str, ...]) -> tuple[tuple[str, ...], list[str]]:
    """Strip labels and de-duplicate them with ``_1``, ``_2`` suffixes.

    Returns
    -------
    labels, duplicates
        The unique labels (same order), and the labels that were duplicated (to report them).
    """
    seen: dict[str, int] = {}
    out: list[str] = []
    dups: list[str] = []
    taken = {str(x).strip() for x in labels}
    for raw in labels:
        label = str(raw).strip() or "unnamed"
        if label in seen:
            dups.append(label)
            k = seen[label]
            new = f"{label}_{k}"
            while new in taken:
                k += 1
                new = f"{label}_{k}"
            seen[label] = k + 1
            taken.add(new)
            out.append(new)
        else:
            seen[label] = 1
            out.append(label)
    return tuple(out), dups


@dataclass(frozen=True, eq=False)
class Stream:
    """Samples of one device (or one kind of output of one device) on that device's clock.

    Parameters
    ----------
    name
        Unique name in the session, e.g. ``"walk01.markers"``.
    modality
        One of `MODALITIES`.
    data
        ``(n_samples, n_channels)`` or ``(n_samples, n_channels, n_components)`` float array in SI units;
        NaN where a sample is missing (never 0). Markers are ``(n, n_markers, 3)`` in m.
    channels
        One name per channel (axis 1 of ``data``), unique.
    units
        One SI unit per channel (see `fusionlab.units`).
    frame
        Coordinate frame (see `fusionlab.frames`).
    rate_hz
        Sampling rate for regularly sampled streams; None when ``time_s`` gives explicit times.
    start_s
        Device-clock time of sample 0 for regular streams (s). Ignored when ``time_s`` is given.
    time_s
        ``(n_samples,)`` strictly increasing device-clock times (s) for irregular streams.
    components
        Names of axis 2 of ``data`` (e.g. ``("x", "y", "z")``); empty for 2-D data.
    orig_units
        The units the source file used, one per channel.
    confidence
        Optional ``(n_samples, n_channels)`` per-sample confidence in [0, 1] (e.g. landmark visibility).
    clock
        Identifier of the device clock. Streams that share one clock (all streams of one C3D file) share this
        identifier, and so one clock entry in the session.
    meta
        JSON-serialisable provenance and device information: ``source``, ``sha256``, ``adapter``,
        ``adapter_version``, ``options``, and anything device-specific.
    storage_dtype
        ``"float32"`` or ``"float64"``: how the data are stored in a session file. Sources whose values are
        single precision at best (C3D) use float32.
    """

    name: str
    modality: str
    data: NDArray[np.floating]
    channels: tuple[str, ...]
    units: tuple[str, ...]
    frame: str = "none"
    rate_hz: float | None = None
    start_s: float = 0.0
    time_s: NDArray[np.float64] | None = None
    components: tuple[str, ...] = ()
    orig_units: tuple[str, ...] = ()
    confidence: NDArray[np.floating] | None = None
    clock: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)
    storage_dtype: str = "float64"

    def __post_init__(self) -> None:
        where = f"Stream {self.name!r}"
        if not self.name or "/" in self.name:
            msg = f"{where}: a stream name must be non-empty and must not contain '/'."
            raise ValidationError(msg)
        if self.modality not in MODALITIES:
            msg = (f"Invalid value for 'modality'. Allowed values are {', '.join(MODALITIES)}, "
                   f"but got {self.modality!r} instead.")
            raise ValidationError(msg)
        check_frame(self.frame)
        data = self.data
        if not isinstance(data, np.ndarray) or data.ndim not in (2, 3):
            msg = (f"{where}: data must be a 2-D (n_samples, n_channels) or 3-D (n_samples, n_channels, "
                   f"n_components) array, got shape {getattr(data, 'shape', None)}.")
            raise ValidationError(msg)
        if not np.issubdtype(data.dtype, np.floating):
            msg = f"{where}: data must be floating point (NaN marks missing samples), got {data.dtype}."
            raise ValidationError(msg)
        n, n_ch = data.shape[:2]
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "units", tuple(self.units))
        object.__setattr__(self, "components", tuple(self.components))
        object.__setattr__(self, "orig_units", tuple(self.orig_units) or tuple(self.units))
        if len(self.channels) != n_ch:
            msg = f"{where}: {len(self.channels)} channel names for {n_ch} channels in data."
            raise ValidationError(msg)
        if len(set(self.channels)) != n_ch:
            msg = f"{where}: channel names must be unique; use unique_labels() to de-duplicate them."
            raise ValidationError(msg)
        if len(self.units) != n_ch or len(self.orig_units) != n_ch:
            msg = f"{where}: units and orig_units need one entry per channel ({n_ch})."
            raise ValidationError(msg)
        if data.ndim == 3 and len(self.components) != data.shape[2]:
            msg = f"{where}: {len(self.components)} component names for data of shape {data.shape}."
            raise ValidationError(msg)
        if self.time_s is None:
            if self.rate_hz is None or not math.isfinite(self.rate_hz) or self.rate_hz <= 0:
                msg = f"{where}: a regular stream needs a positive rate_hz, got {self.rate_hz}."
                raise ValidationError(msg)
            if not math.isfinite(self.start_s):
                msg = f"{where}: start_s must be finite, got {self.start_s}."
                raise ValidationError(msg)
        else:
            t = np.asarray(self.time_s, dtype=np.float64)
            if t.shape != (n,):
                msg = f"{where}: time_s must have shape ({n},), got {t.shape}."
                raise ValidationError(msg)
            if n > 1 and not np.all(np.diff(t) > 0):
                bad = int(np.sum(np.diff(t) <= 0))
                first = float(t[1:][np.diff(t) <= 0][0])
                msg = (f"{where}: time_s must be strictly increasing; found {bad} non-increasing steps, "
                       f"the first at {first:.6f} s. Drop duplicate samples before building the stream.")
                raise ValidationError(msg)
            t.flags.writeable = False
            object.__setattr__(self, "time_s", t)
            object.__setattr__(self, "start_s", float(t[0]) if n else 0.0)
        if self.confidence is not None and self.confidence.shape != (n, n_ch):
            msg = f"{where}: confidence must have shape ({n}, {n_ch}), got {self.confidence.shape}."
            raise ValidationError(msg)
        if self.storage_dtype not in ("float32", "float64"):
            msg = (f"Invalid value for 'storage_dtype'. Allowed values are float32, float64, "
                   f"but got {self.storage_dtype!r}.")
            raise ValidationError(msg)
        object.__setattr__(self, "meta", dict(self.meta))

    # ------------------------------------------------------------------ derived properties
    @property
    def n_samples(self) -> int:
        """Number of samples."""
        return int(self.data.shape[0])

    @property
    def regular(self) -> bool:
        """True when samples are at ``start_s + i / rate_hz``."""
        return self.time_s is None

    @property
    def duration_s(self) -> float:
        """Time from the first sample to one period after the last (regular) or to the last sample."""
        if self.n_samples == 0:
            return 0.0
        if self.regular:
            return self.n_samples / float(self.rate_hz)  # type: ignore[arg-type]
        return float(self.time_s[-1] - self.time_s[0])  # type: ignore[index]

    def times(self) -> NDArray[np.float64]:
        """Device-clock time of every sample, ``(n_samples,)`` in s."""
        if self.time_s is not None:
            return self.time_s
        return self.start_s + np.arange(self.n_samples, dtype=np.float64) / float(self.rate_hz)  # type: ignore[arg-type]

    def channel(self, name: str) -> NDArray[np.floating]:
        """Data of one channel, ``(n_samples,)`` or ``(n_samples, n_components)``."""
        try:
            idx = self.channels.index(name)
        except ValueError:
            msg = f"Stream {self.name!r} has no channel {name!r}; channels are {', '.join(self.channels[:20])}."
            raise KeyError(msg) from None
        return self.data[:, idx]

    def missing_fraction(self) -> float:
        """Fraction of values that are NaN (0 for an empty stream)."""
        if self.data.size == 0:
            return 0.0
        n_nan = 0
        step = max(1, 1_000_000 // max(1, int(np.prod(self.data.shape[1:]))))
        for i in range(0, self.n_samples, step):
            n_nan += int(np.count_nonzero(np.isnan(self.data[i:i + step])))
        return n_nan / self.data.size

    def with_name(self, name: str) -> Stream:
        """Return a copy under another name."""
        return replace(self, name=name)

    def __repr__(self) -> str:
        rate = f"{self.rate_hz:g} Hz" if self.rate_hz else "irregular"
        return (f"<Stream {self.name!r} {self.modality} {self.data.shape} {rate} "
                f"start {self.start_s:.3f} s, frame {self.frame}>")
