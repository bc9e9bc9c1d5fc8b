"""Units, labels and event normalisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusionlab.exceptions import UnitError, ValidationError
from fusionlab.model import Stream, normalise_event, unique_labels
from fusionlab.units import GRAVITY_MS2, to_si


@pytest.mark.parametrize(("unit", "factor", "si"), [
    ("mm", 1e-3, "m"), ("N.mm", 1e-3, "N·m"), ("Nmm", 1e-3, "N·m"), ("NTMM", 1e-3, "N·m"), ("N-M", 1.0, "N·m"),
    ("deg", math.pi / 180, "rad"), ("deg/s", math.pi / 180, "rad/s"), ("g", GRAVITY_MS2, "m/s^2"),
    ("m/s²", 1.0, "m/s^2"), ("mV", 1e-3, "V"), ("uT", 1e-6, "T"), ("d.u.", 1.0, "1"), ("NT", 1.0, "N"),
])
def test_to_si(unit: str, factor: float, si: str) -> None:
    conv = to_si(unit)
    assert conv.factor == pytest.approx(factor)
    assert conv.si_unit == si


def test_unknown_unit_is_an_error() -> None:
    with pytest.raises(UnitError, match="furlong"):
        to_si("furlong")


def test_unique_labels() -> None:
    labels, dups = unique_labels(["LANK", " LANK", "RANK", "LANK", "LANK_1"])
    assert labels == ("LANK", "LANK_2", "RANK", "LANK_3", "LANK_1")
    assert dups == ["LANK", "LANK"]


@pytest.mark.parametrize(("label", "context", "expected"), [
    ("Foot Strike", "Left", ("foot_strike", "left")), ("Foot Off", "Right", ("foot_off", "right")),
    ("RHS", "", ("foot_strike", "right")), ("LTO", "", ("foot_off", "left")),
    ("Left Foot Strike", "", ("foot_strike", "left")), ("Left-FP", "General", ("left_fp", "general")),
    ("Event", "General", ("event", "general")),
])
def test_normalise_event(label: str, context: str, expected: tuple[str, str]) -> None:
    assert normalise_event(label, context) == expected


def test_stream_validation_messages() -> None:
    data = np.zeros((3, 2))
    with pytest.raises(ValidationError, match="strictly increasing"):
        Stream("s", "imu", data, ("a", "b"), ("m/s^2",) * 2, frame="sensor:x", time_s=np.array([0.0, 0.1, 0.1]))
    with pytest.raises(ValidationError, match="positive rate_hz"):
        Stream("s", "imu", data, ("a", "b"), ("m/s^2",) * 2, frame="sensor:x", rate_hz=0.0)
    with pytest.raises(ValidationError, match="unique"):
        Stream("s", "imu", data, ("a", "a"), ("m/s^2",) * 2, frame="sensor:x", rate_hz=100.0)
    with pytest.raises(ValidationError, match="modality"):
        Stream("s", "eeg", data, ("a", "b"), ("V",) * 2, rate_hz=100.0)
    with pytest.raises(ValidationError, match="floating point"):
        Stream("s", "analog", np.zeros((3, 2), dtype=int), ("a", "b"), ("V",) * 2, rate_hz=100.0)
