"""Sagittal angles of the simple marker model against Plug-in Gait's own angles on real trials."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d
from fusionlab.exceptions import ValidationError
from fusionlab.kinematics import ANGLE_CHANNELS, sagittal_angles
from tests.conftest import shared_path

TRIALS = ["c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "btkdata/PiG_Motion-FlatFoot-Full.c3d",
          "c3d_org/sample03_gait-pig.c3d", "c3d_org/sample04_sub_labels.c3d", "c3d_org/sample09_PlugInC3D.c3d",
          "c3d_org/sample23_Vicon_analysis.c3d", "c3d_org/sample11_2198928.c3d"]


def _read(rel: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(shared_path(rel), prefix="")


@pytest.mark.parametrize("rel", TRIALS)
def test_hip_and_knee_follow_plug_in_gait(rel: str) -> None:
    """Up to a constant offset (PiG's thigh and knee axes differ), hip and knee flexion follow PiG's angles."""
    s = _read(rel)
    mine = sagittal_angles(s.stream("markers"))
    assert mine.channels == ANGLE_CHANNELS and mine.clock == s.stream("markers").clock
    pig = s.stream("angles")
    for side, key in (("left", "L"), ("right", "R")):
        for joint, pig_name in (("hip_flexion", "HipAngles"), ("knee_flexion", "KneeAngles")):
            ref = pig.channel(next(c for c in pig.channels if c.split(":")[-1] == key + pig_name))[:, 0].copy()
            ref[ref == 0.0] = np.nan  # PiG writes 0 where it could not compute
            got = mine.channel(f"{side}_{joint}")
            ok = np.isfinite(ref) & np.isfinite(got)
            assert ok.sum() > 50
            d = np.rad2deg(got[ok] - ref[ok])
            assert np.corrcoef(got[ok], ref[ok])[0, 1] >= 0.95, (side, joint)
            assert np.std(d) <= 3.5, (side, joint, np.std(d))
            assert abs(np.mean(d)) <= 10.0, (side, joint, np.mean(d))


def test_missing_pelvis_markers_are_refused() -> None:
    s = _read("c3d_org/sample30_Biogesta_marche281.c3d")  # no PSIS or sacrum markers (sample00 MAC has VSAC)
    with pytest.raises(ValidationError, match="PSIS or a sacrum"):
        sagittal_angles(s.stream("markers"))
