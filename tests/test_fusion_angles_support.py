"""Fused joint angles exist only where the data support them (docs/fusion-angles.md): no estimate where the
smoother has bridged or extrapolated further than its 95 % band can bound (band wider than the joint's whole range
of motion), and none from marker frames that are not a body (`fusionlab.kinematics.body_frames`)."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d
from fusionlab.fusion._angles import _RANGE_OF_MOTION_RAD, fuse_angles
from fusionlab.kinematics import body_frames, sagittal_angles, segment_frames
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data


def _markers(rel: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ses = read_c3d(shared_path(rel), prefix="")
    return ses, next(s for s in ses.streams if s.modality == "markers")


def _sd_max(joint: str) -> float:
    return _RANGE_OF_MOTION_RAD[joint] / (2.0 * 1.959963984540054)


def test_no_fused_angle_beyond_the_markers_and_none_missing_inside():
    # btkdata/Gait.c3d: markers cover 40 % of the record; the smoother's extrapolation reached -5846 deg (knee)
    ses, m = _markers("btkdata/Gait.c3d")
    raw = sagittal_angles(m)
    res = fuse_angles(ses, use=("markers",), conflicts=False)
    for sig in res.signals:
        joint = sig.name.removesuffix("_angle")
        for k, ch in enumerate(sig.channels):
            side = ch.split("_")[0]
            seen = np.isfinite(raw.channel(next(c for c in raw.channels if c.startswith(f"{side}_{joint}"))))
            i0, i1 = int(np.argmax(seen)), len(seen) - int(np.argmax(seen[::-1]))
            est = np.isfinite(sig.mean[:, k])
            assert est[i0:i1].all(), ch  # every sample between the first and last measurement is estimated
            assert not est[0] and not est[-1], ch  # seconds away from any measurement: not estimated
            assert np.all(np.sqrt(sig.var[est, k]) <= _sd_max(joint)), ch
            assert np.all(np.isnan(sig.var[~est, k])), ch
            assert np.abs(sig.mean[est, k]).max() < math.pi, ch
            assert sig.meta["not_estimated_s"][ch], ch
            assert any(w.startswith(f"{ch} angle: not estimated (NaN)") for w in res.warnings), ch


def test_a_long_marker_gap_is_bridged_only_as_far_as_the_band_bounds_the_truth():
    # PiG-Full with every marker removed for 1.0 s in the middle: the truth is the angle of the complete markers
    ses, m = _markers("btkdata/PiG_Motion-FlatFoot-Full.c3d")
    truth = sagittal_angles(m)
    t = m.times()
    gap = (t >= t[len(t) // 2]) & (t < t[len(t) // 2] + 1.0)
    data = np.array(m.data, dtype=np.float64, copy=True)
    data[gap] = np.nan
    holed = dataclasses.replace(ses, streams=tuple(dataclasses.replace(s, data=data) if s is m else s
                                                   for s in ses.streams))
    res = fuse_angles(holed, use=("markers",), conflicts=False)
    knee = next(s for s in res.signals if s.name == "knee_angle")
    i_mid = int(np.flatnonzero(gap).mean())
    assert not np.isfinite(knee.mean[i_mid]).any()  # 0.5 s from the nearest measurement: no knee estimate
    hits = []
    for sig in res.signals:
        joint = sig.name.removesuffix("_angle")
        for k, side in enumerate(("left", "right")):
            est = np.isfinite(sig.mean[:, k])
            assert est[~gap].all()  # outside the gap nothing is lost
            bridged = gap & est
            true = np.asarray(truth.channel(next(c for c in truth.channels if c.startswith(f"{side}_{joint}"))))
            err = sig.mean[bridged, k] - true[bridged]
            hits += list(np.abs(err) <= 1.96 * np.sqrt(sig.var[bridged, k]))
    # where the gap is bridged, the 95 % band holds the truth (pooled over the six channels; measured 0.98 here,
    # 0.09-1.00 per channel over other gaps: docs)
    assert len(hits) > 100 and np.mean(hits) >= 0.9


def test_marker_frames_that_are_not_a_body_give_no_angle():
    # sample11_evart: markers collapse to one point in most frames
    _, m = _markers("c3d_org/sample11_evart.c3d")
    a = sagittal_angles(m)
    unchecked = sagittal_angles(m, check_body=False)
    assert a.meta["unusable_frames"] and "not a body" in a.meta["warnings"][0]
    x, x0 = np.asarray(a.channel("left_knee_flexion")), np.asarray(unchecked.channel("left_knee_flexion"))
    assert np.isfinite(x0).sum() > 200 and np.isfinite(x).sum() < 20
    # a clean walk is untouched
    _, clean = _markers("btkdata/PiG_Motion-FlatFoot-Full.c3d")
    same, counts, note = body_frames(clean)
    assert same is clean and not counts and note is None
    assert "warnings" not in sagittal_angles(clean).meta


def test_coincident_markers_give_nan_not_a_numpy_warning():
    # sample28_BTS_dynamic: markers at one place (zero-length pelvis axis) divided 0/0 in kinematics._unit
    _, m = _markers("c3d_org/sample28_BTS_dynamic.C3D")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sagittal_angles(m, check_body=False)
        segment_frames(m)


def test_corrupt_markers_give_no_fused_angle_in_the_frames_that_are_not_a_body():
    ses, m = _markers("c3d_org/sample28_BTS_dynamic.C3D")
    checked, unchecked = sagittal_angles(m), sagittal_angles(m, check_body=False)
    res = fuse_angles(ses, use=("markers",), conflicts=False)
    assert any("not a body" in w for w in res.warnings)
    n_bad = 0
    for sig in res.signals:
        joint = sig.name.removesuffix("_angle")
        for k, ch in enumerate(sig.channels):
            name = next(c for c in checked.channels if c.startswith(ch))
            bad = np.isfinite(unchecked.channel(name)) & ~np.isfinite(checked.channel(name))
            n_bad += int(bad.sum())
            assert not np.isfinite(sig.mean[bad, k]).any(), ch
            assert np.all(np.sqrt(sig.var[np.isfinite(sig.var[:, k]), k]) <= _sd_max(joint)), ch
    assert n_bad > 100  # the check is exercised (417 channel-frames)
