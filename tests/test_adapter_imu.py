"""IMU readers (generic CSV, gaitmap, Mobilise-D, Xsens MT Manager, XDF) and unit detection, on real files.

Real files: ``../shared/data/imu/gaitmap/`` (gaitmap example data), ``imu/mobgap/lab/HA/001/data.mat``
(Mobilise-D), ``formats/xsens_mtmanager/`` and ``formats/xdf/`` (see the MANIFESTs), and
``sample_data/imu/gaitmap_left_foot_15s.csv`` (the left foot of gaitmap's file as a generic CSV in g and deg/s).
Expected numbers are read with NumPy/csv independently of fusionlab, or come from the MANIFESTs and the
xdf-modules README.
"""

from __future__ import annotations

import csv
import math
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from fusionlab.adapters import find_adapter, read
from fusionlab.adapters._imu_common import ImuUnitError, check_imu_units
from fusionlab.adapters.imu_csv import read_imu_csv
from fusionlab.adapters.imu_gaitmap import (
    read_gaitmap_imu,
    read_gaitmap_mocap,
    read_gaitmap_stride_borders,
    read_gaitmap_stride_events,
)
from fusionlab.adapters.imu_mobilised import read_mobilised_mat
from fusionlab.adapters.imu_xsens import read_xsens_mtmanager
from fusionlab.adapters.xdf import read_xdf
from fusionlab.consts import PLACEMENTS
from fusionlab.exceptions import FileFormatError, FusionlabWarning, UnitError, ValidationError
from fusionlab.ingest import ingest
from fusionlab.persist import open_session
from fusionlab.units import GRAVITY_MS2
from tests.conftest import SAMPLE_DATA, shared_path

GAITMAP = "imu/gaitmap"
IMU_SAMPLE = f"{GAITMAP}/imu_sample.csv"
MOCAP_SAMPLE = f"{GAITMAP}/mocap_sample.csv"
STRIDES = f"{GAITMAP}/stride_events_sample.csv"
IC_STRIDE = f"{GAITMAP}/imu_sample_ic_stride.csv"
IC_BORDERS = f"{GAITMAP}/stride_borders_sample_ic_stride.csv"
MOBILISED = "imu/mobgap/lab/HA/001/data.mat"
XSENS = "formats/xsens_mtmanager"
XDF = "formats/xdf"
CSV_SAMPLE = SAMPLE_DATA / "imu" / "gaitmap_left_foot_15s.csv"
DEG = math.pi / 180.0


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FusionlabWarning)
        return fn(*args, **kw)


def _gaitmap_numbers() -> tuple[np.ndarray, list[str], list[str]]:
    """gaitmap's imu_sample.csv read with NumPy and csv only."""
    path = shared_path(IMU_SAMPLE)
    with path.open() as fh:
        sensors, axes = next(csv.reader(fh)), None
        axes = next(csv.reader(fh))
    return np.genfromtxt(path, delimiter=",", skip_header=2), sensors, axes


# ================================================================================================ dispatch
def test_dispatch_picks_the_right_reader(tmp_path: Path) -> None:
    expected = {
        shared_path(IMU_SAMPLE): "gaitmap_imu",
        shared_path(f"{GAITMAP}/imu_sample_healthy_stair_up.csv"): "gaitmap_imu",  # empty first header cells
        shared_path(MOCAP_SAMPLE): "gaitmap_mocap",
        CSV_SAMPLE: "imu_csv",
        shared_path(MOBILISED): "mobilised_mat",
        shared_path(f"{XDF}/minimal.xdf"): "xdf",
        SAMPLE_DATA / "forceplate" / "amti_style_plate1.csv": "forceplate_csv",
        SAMPLE_DATA / "forceplate" / "opensim_subject01_walk1_grf.mot": "opensim_mot",
        shared_path("formats/kistler_bioware/kistler_DJ_2plates.txt"): "kistler_bioware",
    }
    for p in sorted(shared_path(XSENS).rglob("*.txt")):
        expected[p] = "xsens_mtmanager"
    for path, name in expected.items():
        assert find_adapter(path).name == name, path
    # a generic IMU CSV saved as .txt is still the generic reader, not Kistler or Xsens
    txt = tmp_path / "export.txt"
    txt.write_bytes(CSV_SAMPLE.read_bytes())
    assert find_adapter(txt).name == "imu_csv"
    # the stride-event list has no clock of its own: no reader claims it, and the error says how to attach it
    with pytest.raises(FileFormatError, match=r"gaitmap stride list .* --stride-events"):
        find_adapter(shared_path(STRIDES))


# ================================================================================================ gaitmap
def test_gaitmap_imu() -> None:
    values, sensors, axes = _gaitmap_numbers()
    s = read_gaitmap_imu(shared_path(IMU_SAMPLE))
    assert [st.name for st in s.streams] == ["imu_sample.left_foot", "imu_sample.right_foot"]
    assert len(s.clocks) == 1 and next(iter(s.clocks)).startswith("gaitmap_imu:imu_sample:")
    for st, sensor in zip(s.streams, ("left_sensor", "right_sensor"), strict=True):
        assert st.modality == "imu" and st.n_samples == 7928 == values.shape[0]
        assert st.rate_hz == 204.8 and st.start_s == 0.0
        assert st.channels == ("acc", "gyr") and st.units == ("m/s^2", "rad/s")
        assert st.orig_units == ("m/s^2", "deg/s") and st.components == ("x", "y", "z")
        assert st.frame == f"sensor:{st.meta['placement']}" and st.meta["sensor_id"] == sensor
        for k, ax in enumerate("xyz"):
            acc_col = next(j for j in range(1, len(axes)) if sensors[j] == sensor and axes[j] == f"acc_{ax}")
            gyr_col = next(j for j in range(1, len(axes)) if sensors[j] == sensor and axes[j] == f"gyr_{ax}")
            np.testing.assert_array_equal(st.data[:, 0, k], values[:, acc_col])
            np.testing.assert_allclose(st.data[:, 1, k], values[:, gyr_col] * DEG, rtol=1e-15)
        # resting |acc| is gravity in m/s^2; the gyroscope peaks at a few rad/s (foot swing)
        check = st.meta["unit_check"]
        assert check["status"] == "ok" and check["rest_windows"] >= 5
        assert check["channels"]["acc"]["resting_norm"] == pytest.approx(GRAVITY_MS2, abs=0.1)
        rest = np.linalg.norm(st.data[-300:, 0], axis=1).mean()  # the subject stands still at the end
        assert rest == pytest.approx(9.81, abs=0.1)
        assert 5.0 < np.nanpercentile(np.linalg.norm(st.data[:, 1], axis=1), 99.5) < 15.0  # rad/s


def test_gaitmap_rate_is_a_parameter_and_checked() -> None:
    s = read_gaitmap_imu(shared_path(IMU_SAMPLE), rate_hz=102.4)
    assert s.streams[0].rate_hz == 102.4
    with pytest.raises(ValidationError, match="Invalid value for 'rate_hz'"):
        read_gaitmap_imu(shared_path(IMU_SAMPLE), rate_hz=0)
    # the stair files write the time (s) in the first column; it must lie on the rate's grid
    up = read_gaitmap_imu(shared_path(f"{GAITMAP}/imu_sample_healthy_stair_up.csv"))
    assert up.sources[0].metadata["first_column"] == "time (s)"
    with pytest.raises(FileFormatError, match="not on the 100 Hz grid"):
        read_gaitmap_imu(shared_path(f"{GAITMAP}/imu_sample_healthy_stair_up.csv"), rate_hz=100.0)


def test_gaitmap_mocap() -> None:
    path = shared_path(MOCAP_SAMPLE)
    values = np.genfromtxt(path, delimiter=",", skip_header=2)
    s = read_gaitmap_mocap(path)
    (st,) = s.streams
    assert st.name == "mocap_sample.markers" and st.modality == "markers" and st.frame == "lab"
    assert st.n_samples == 3870 and st.rate_hz == 100.0 and st.data.shape == (3870, 6, 3)
    assert set(st.channels) == {"L_TOE", "R_TOE", "L_FCC", "R_FCC", "L_FM5", "R_FM5"}
    assert st.units == ("m",) * 6 and st.orig_units == ("mm",) * 6 and st.components == ("x", "y", "z")
    np.testing.assert_allclose(st.data.reshape(3870, 18), values[:, 1:] / 1000.0, rtol=1e-15)
    heights = np.nanmedian(st.data[:, :, 2], axis=0)
    assert np.all((heights > 0.02) & (heights < 0.15))  # foot markers, m
    imu = read_gaitmap_imu(shared_path(IMU_SAMPLE))
    # the same trial: same duration (38.7 s) but separate device clocks for sync to align
    assert st.duration_s == pytest.approx(imu.streams[0].duration_s, abs=0.02)  # within ~1 mocap frame
    assert set(s.clocks).isdisjoint(imu.clocks)
    assert all(c.method == "unsynchronised" for c in s.clocks.values())


def test_gaitmap_stride_events() -> None:
    rows = list(csv.DictReader(shared_path(STRIDES).open()))
    s = read_gaitmap_imu(shared_path(IMU_SAMPLE), stride_events=shared_path(STRIDES))
    clock = s.streams[0].clock
    assert len(s.sources) == 2 and s.sources[1].metadata["n_strides"] == len(rows) == 57
    t_end = s.streams[0].times()[-1]
    for side in ("left", "right"):
        mine = [r for r in rows if r["foot"] == side]
        ic = {float(r["ic"]) for r in mine} | {float(r["pre_ic"]) for r in mine}
        tc = {float(r["tc"]) for r in mine}
        fs = sorted(e.time_s for e in s.events if e.kind == "foot_strike" and e.side == side)
        fo = sorted(e.time_s for e in s.events if e.kind == "foot_off" and e.side == side)
        np.testing.assert_allclose(fs, sorted(i / 204.8 for i in ic))
        np.testing.assert_allclose(fo, sorted(i / 204.8 for i in tc))
    counts = {(k, sd): sum(e.kind == k and e.side == sd for e in s.events)
              for k in ("foot_strike", "foot_off") for sd in ("left", "right")}
    assert counts == {("foot_strike", "left"): 29, ("foot_strike", "right"): 30, ("foot_off", "left"): 28,
                      ("foot_off", "right"): 29}
    assert all(e.source == "reference" and e.clock == clock and e.detector == "gaitmap:mocap" for e in s.events)
    assert all(0.0 <= e.time_s <= t_end for e in s.events)
    assert min(e.time_s for e in s.events) == pytest.approx(311 / 204.8)  # first right pre_ic
    # read on their own, on a given clock; a wrong rate puts events outside the recording and is refused
    alone = read_gaitmap_stride_events(shared_path(STRIDES), rate_hz=204.8, clock=clock)
    assert not alone.streams and len(alone.events) == len(s.events)
    with pytest.raises(FileFormatError, match="outside the IMU recording"):  # events of another, longer trial
        read_gaitmap_imu(shared_path(f"{GAITMAP}/imu_sample_healthy_stair_up.csv"), stride_events=shared_path(STRIDES))


def test_gaitmap_stride_borders() -> None:
    rows = list(csv.DictReader(shared_path(IC_BORDERS).open()))
    s = read_gaitmap_imu(shared_path(IC_STRIDE), rate_hz=102.4, stride_borders=shared_path(IC_BORDERS))
    clock = s.streams[0].clock
    assert len(s.sources) == 2 and s.sources[1].metadata["n_strides"] == len(rows) == 14
    for side in ("left", "right"):
        ic = {int(r[k]) for r in rows if r["foot"] == side for k in ("start", "end")}  # shared borders once
        fs = sorted(e.time_s for e in s.events if e.side == side)
        np.testing.assert_allclose(fs, sorted(i / 102.4 for i in ic))
        assert len(fs) == 11
    assert all(e.kind == "foot_strike" and e.source == "reference" and e.clock == clock
               and e.detector == "gaitmap:mocap" for e in s.events)
    assert s.events[0].time_s == pytest.approx(696 / 102.4)
    alone = read_gaitmap_stride_borders(shared_path(IC_BORDERS), rate_hz=102.4, clock=clock)
    assert not alone.streams and len(alone.events) == len(s.events)


@pytest.mark.parametrize(("content", "match"), [
    ("s_id,foot,begin,stop\n0,left,1,2\n", "no column.s. start, end"),
    ("s_id,foot,start,end,gsd_id\n", "no stride"),
    ("s_id,foot,start,end,gsd_id\n0,middle,696,812,1\n", "line 2: foot 'middle'"),
    ("s_id,foot,start,end,gsd_id\n0,left,696,,1\n", "line 2: end '' is not a sample index"),
    ("s_id,foot,start,end,gsd_id\n0,left,abc,812,1\n", "line 2: start 'abc' is not a sample index"),
    ("s_id,foot,start,end,gsd_id\n0,left,696,812,1\n1,right,900,800,1\n", "line 3: the stride ends"),
    ("s_id,foot,start,end,gsd_id\n0,left,696,812\n", "line 2 has 4 values for 5 columns"),
])
def test_bad_gaitmap_stride_borders(tmp_path: Path, content: str, match: str) -> None:
    bad = tmp_path / "my_borders.csv"
    bad.write_text(content)
    with pytest.raises(FileFormatError, match=match) as e:
        read_gaitmap_stride_borders(bad, rate_hz=102.4, clock="c")
    assert "my_borders.csv" in str(e.value)
    with pytest.raises(FileFormatError, match=r"my_borders\.csv"):  # the same through the IMU reader's option
        read_gaitmap_imu(shared_path(IC_STRIDE), rate_hz=102.4, stride_borders=bad)


def test_gaitmap_stride_borders_outside_the_recording(tmp_path: Path) -> None:
    late = tmp_path / "late_borders.csv"
    late.write_text("s_id,foot,start,end,gsd_id\n0,left,696,812,1\n1,left,812,9000,1\n")
    with pytest.raises(FileFormatError, match=r"late_borders\.csv: 1 stride borders lie outside the IMU recording"):
        read_gaitmap_imu(shared_path(IC_STRIDE), rate_hz=102.4, stride_borders=late)


# ================================================================================================ generic CSV
def test_generic_csv_sample_matches_gaitmap() -> None:
    s = read_imu_csv(CSV_SAMPLE)  # the placement comes from the file's '# placement:' line
    (st,) = s.streams
    assert st.name == "gaitmap_left_foot_15s.left_foot" and st.frame == "sensor:left_foot"
    assert st.rate_hz == 204.8 and st.n_samples == 3072 and st.start_s == 0.0
    assert st.units == ("m/s^2", "rad/s") and st.orig_units == ("g", "deg/s")
    assert st.meta["placement"] == "left_foot" and st.meta["sensor_id"] == "gaitmap_left_sensor"
    assert st.meta["unit_check"]["channels"]["acc"]["status"] == "ok"
    assert st.meta["unit_check"]["channels"]["acc"]["looks_like"] == "g"
    ref = read_gaitmap_imu(shared_path(IMU_SAMPLE)).stream("imu_sample.left_foot")
    # written with 10 significant digits, so equal to 1e-9 relative (plus a tiny absolute floor near zero)
    np.testing.assert_allclose(st.data, ref.data[:3072], rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(st.times(), ref.times()[:3072])


def test_generic_csv_placement_is_required(tmp_path: Path) -> None:
    text = CSV_SAMPLE.read_text().replace("# placement: left_foot\n", "")
    path = tmp_path / "no_placement.csv"
    path.write_text(text)
    with pytest.raises(ValidationError, match="placement is required") as info:
        read_imu_csv(path)
    assert all(p in str(info.value) for p in PLACEMENTS)
    with pytest.raises(ValidationError, match=r"Invalid value for 'placement'.*left_foot.*but got 'ankle'"):
        read_imu_csv(path, placement="ankle")
    assert read_imu_csv(path, placement="Right_Foot").streams[0].name == "no_placement.right_foot"
    with pytest.raises(ValidationError, match="contradicts the file's line"):
        read_imu_csv(CSV_SAMPLE, placement="right_foot")


def _with_header(tmp_path: Path, old: str, new: str, name: str = "wrong_units.csv") -> Path:
    text = CSV_SAMPLE.read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new))
    return path


def test_generic_csv_wrong_acc_unit_is_detected(tmp_path: Path) -> None:
    path = _with_header(tmp_path, "acc_x[g],acc_y[g],acc_z[g]", "acc_x[m/s^2],acc_y[m/s^2],acc_z[m/s^2]")
    with pytest.raises(ImuUnitError) as info:
        read_imu_csv(path)
    msg = str(info.value)
    assert isinstance(info.value, FileFormatError) and isinstance(info.value, UnitError)
    assert info.value.path == str(path) and "wrong_units.csv" in msg
    assert "channel 'acc'" in msg and "looks like g, but the file says m/s^2" in msg
    m = re.search(r"resting \|acc\| = ([0-9.]+) ± ([0-9.e-]+) in (\d+) window", msg)
    assert m and float(m.group(1)) == pytest.approx(1.0, abs=0.02) and int(m.group(3)) >= 1
    assert "Fix: Write the unit the values are really in" in msg and "acc_x[g]" in msg and "check_units='warn'" in msg
    # warn keeps the declared unit (never silently another one); ignore keeps it quietly, with the evidence in meta
    with pytest.warns(FusionlabWarning, match="looks like g"):
        st = read_imu_csv(path, check_units="warn").streams[0]
    assert st.orig_units[0] == "m/s^2" and np.linalg.norm(st.data[:50, 0], axis=1).mean() == pytest.approx(1.0, 0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        st = read_imu_csv(path, check_units="ignore").streams[0]
    assert st.meta["unit_check"]["status"] == "mismatch"
    with pytest.raises(ValidationError, match="Invalid value for 'check_units'"):
        read_imu_csv(path, check_units="maybe")  # type: ignore[arg-type]


def test_generic_csv_wrong_gyr_unit_is_detected(tmp_path: Path) -> None:
    path = _with_header(tmp_path, "gyr_x[deg/s],gyr_y[deg/s],gyr_z[deg/s]", "gyr_x[rad/s],gyr_y[rad/s],gyr_z[rad/s]")
    with pytest.raises(ImuUnitError, match=r"channel 'gyr'.*above 20 rad/s.*looks like deg/s, but the file says rad/s"):
        read_imu_csv(path)


def test_csv_without_units_uses_si_defaults_and_checks_them() -> None:
    # mobgap's CSV export: acc in g and gyr in deg/s, but no units in the header (so m/s^2 and rad/s by default)
    path = shared_path("imu/mobgap/data_csv/HA/001/TimeMeasure1_Test5_Trial1.csv")
    assert find_adapter(path).name == "imu_csv"
    with pytest.raises(ImuUnitError) as info:
        read_imu_csv(path, placement="lower_back", rate_hz=100.0)
    assert "channel 'acc'" in str(info.value) and "looks like g" in str(info.value)
    assert "channel 'gyr'" in str(info.value)
    with pytest.raises(FileFormatError, match="no sampling rate"):
        read_imu_csv(path, placement="lower_back")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("# placement: pelvis\ntime,acc_x,acc_y,acc_z,gyr_x,gyr_y\n0,0,0,1,0,0\n", "no gyr_z column"),
        ("# placement: pelvis\ntime,acc_x[g],acc_y[g],acc_z[deg],gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n",
         "different units"),
        ("# placement: pelvis\ntime,acc_x[furlong],acc_y[furlong],acc_z[furlong],gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n",
         "cannot convert"),
        ("# placement: pelvis\ntime,acc_x[deg/s],acc_y[deg/s],acc_z[deg/s],gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n",
         "must be in m/s\\^2"),
        ("# placement: pelvis\ntime,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n0.01,0,x,1,0,0,0\n",
         "found 'x'"),
        ("# placement: pelvis\ntime,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n0,0,0,1,0,0,0\n",
         "time must increase"),
        ("# placement: pelvis\ntime,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0\n", "line 3 has 6 values"),
        ("# placement: pelvis\n# rate_hz: 50\ntime,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z\n0,0,0,1,0,0,0\n"
         "0.01,0,0,1,0,0,0\n0.02,0,0,1,0,0,0\n", "does not fit that rate"),
        ("# placement: pelvis\n", "no column-name row"),
    ],
)
def test_bad_generic_csv(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(FileFormatError, match=match) as info:
        read_imu_csv(path, check_units="ignore")
    assert info.value.path == str(path)


def test_generic_csv_without_time_column(tmp_path: Path) -> None:
    rows = ["# placement: trunk", "acc_x[g],acc_y[g],acc_z[g],gyr_x[deg/s],gyr_y[deg/s],gyr_z[deg/s],"
                                  "mag_x[uT],mag_y[uT],mag_z[uT]"]
    rows += ["0.01,0.02,0.99,0.5,-0.3,0.1,20,5,-40"] * 200 + [",,,,,,,,"]
    path = tmp_path / "no_time.tsv"
    path.write_text("\n".join(r.replace(",", "\t") for r in rows) + "\n")
    st = read_imu_csv(path, rate_hz=50.0).streams[0]
    assert st.rate_hz == 50.0 and st.channels == ("acc", "gyr", "mag") and st.units == ("m/s^2", "rad/s", "T")
    assert st.n_samples == 201 and st.data[0, 2, 0] == pytest.approx(20e-6) and np.isnan(st.data[-1]).all()
    assert st.meta["unit_check"]["channels"]["mag"]["status"] == "ok"


# ================================================================================================ unit detection
def _synthetic(rate: float = 100.0, rest_s: float = 3.0, walk_s: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Rest then 'walking': acc (m/s^2) and gyr (rad/s) of a body segment."""
    rng = np.random.default_rng(1)
    n_rest, n_walk = int(rest_s * rate), int(walk_s * rate)
    t = np.arange(n_walk) / rate
    acc = np.vstack([np.tile([0.0, 0.0, GRAVITY_MS2], (n_rest, 1)),
                     np.column_stack([3 * np.sin(2 * np.pi * t), 2 * np.cos(2 * np.pi * t),
                                      GRAVITY_MS2 + 4 * np.sin(4 * np.pi * t)])])
    gyr = np.vstack([np.zeros((n_rest, 3)), np.column_stack([np.zeros(n_walk), 4 * np.sin(2 * np.pi * t),
                                                             np.zeros(n_walk)])])
    return acc + rng.normal(0, 0.02, acc.shape), gyr + rng.normal(0, 0.003, gyr.shape)


@pytest.mark.parametrize(
    ("acc_scale", "gyr_scale", "declared", "expected"),
    [
        (1.0, 1.0, {"acc": "m/s^2", "gyr": "rad/s"}, {"acc": ("ok", "m/s^2"), "gyr": ("ok", None)}),
        (1 / GRAVITY_MS2, 1 / DEG, {"acc": "g", "gyr": "deg/s"}, {"acc": ("ok", "g"), "gyr": ("ok", None)}),
        (1 / GRAVITY_MS2, 1.0, {"acc": "m/s^2", "gyr": "rad/s"}, {"acc": ("mismatch", "g"), "gyr": ("ok", None)}),
        (1000 / GRAVITY_MS2, 1.0, {"acc": "g", "gyr": "rad/s"}, {"acc": ("mismatch", "mg"), "gyr": ("ok", None)}),
        (1.0, 1 / DEG, {"acc": "m/s^2", "gyr": "rad/s"}, {"acc": ("ok", "m/s^2"), "gyr": ("mismatch", "deg/s")}),
        (1.0, 1.0, {"acc": "m/s^2", "gyr": "deg/s"}, {"acc": ("ok", "m/s^2"), "gyr": ("mismatch", "rad/s")}),
    ],
)
def test_check_imu_units_rules(acc_scale: float, gyr_scale: float, declared: dict[str, str],
                               expected: dict[str, tuple[str, str | None]]) -> None:
    acc, gyr = _synthetic()
    check = check_imu_units(acc * acc_scale, gyr * gyr_scale, 100.0, declared)
    assert check["rest_windows"] >= 4
    for ch, (status, looks) in expected.items():
        assert check["channels"][ch]["status"] == status, check["channels"][ch]["evidence"]
        assert check["channels"][ch]["looks_like"] == looks


def test_check_imu_units_without_rest_says_so() -> None:
    acc, gyr = _synthetic(rest_s=0.0)
    check = check_imu_units(acc, gyr, 100.0, {"acc": "m/s^2", "gyr": "rad/s"})
    assert check["rest_windows"] == 0 and check["status"] == "inconclusive"
    assert check["channels"]["acc"]["status"] == "inconclusive"
    assert "could not be made" in check["channels"]["acc"]["evidence"]


# ================================================================================================ Mobilise-D
def test_mobilised_streams_and_rates() -> None:
    s = read_mobilised_mat(shared_path(MOBILISED))
    imu = s.by_modality("imu")
    assert [st.name for st in imu] == ["data.test5_trial1.lower_back", "data.test5_trial2.lower_back",
                                       "data.test11_trial1.lower_back"]
    assert [st.n_samples for st in imu] == [1246, 1075, 13759]
    assert len(s.clocks) == 1 and all(st.clock == imu[0].clock for st in s.streams)
    starts = [st.start_s for st in imu]
    assert starts[0] == 0.0 and starts[1] == pytest.approx(30.559) and starts[2] == pytest.approx(679.082)
    for st in imu:
        assert st.rate_hz == 100.0 and st.frame == "sensor:lower_back"
        assert st.channels == ("acc", "gyr", "mag") and st.orig_units == ("g", "deg/s", "uT")
        assert st.units == ("m/s^2", "rad/s", "T")
        acc_check = st.meta["unit_check"]["channels"]["acc"]
        assert acc_check["status"] == "ok" and acc_check["resting_norm"] == pytest.approx(0.98, abs=0.03)
        mag = np.median(np.linalg.norm(st.data[:, 2], axis=1))
        assert 1e-5 < mag < 7e-5  # T
        assert st.times()[0] >= 0 and np.all(np.diff(st.times()) > 0)
        assert st.name + ".pressure" in [x.name for x in s.streams]
    bar = s.stream("data.test5_trial1.lower_back.pressure")
    assert bar.units == ("Pa",) and 95_000 < np.median(bar.data) < 105_000


def test_mobilised_reference_events_and_strides() -> None:
    import scipy.io as sio

    s = read_mobilised_mat(shared_path(MOBILISED))
    mat = sio.loadmat(str(shared_path(MOBILISED)), squeeze_me=True, struct_as_record=False)
    meta = s.sources[0].metadata
    all_len: list[float] = []
    all_plausible: list[bool] = []
    for st in s.by_modality("imu"):
        tname = st.name.split(".")[1]
        t0, t1 = st.times()[0], st.times()[-1]
        for system in ("INDIP", "Stereophoto"):
            det = f"mobilised:{system}"
            ev = [e for e in s.events if e.detector == det and t0 - 0.05 <= e.time_s <= t1 + 0.05]
            fs = [e for e in ev if e.kind == "foot_strike"]
            assert fs and {e.side for e in fs} == {"left", "right"}
            assert all(e.source == "reference" and e.clock == st.clock for e in ev)
            n_bouts = meta["reference"][tname][system]["n_bouts"]
            assert sum(e.kind == "walking_bout_start" for e in ev) == n_bouts >= 1
            assert sum(e.kind == "walking_bout_end" for e in ev) == n_bouts
            assert meta["reference"][tname][system]["events_outside_recording"] == 0
            for bout in meta["reference"][tname][system]["bouts"]:
                strides = bout["strides"]
                length = np.array(strides["stride_length_m"], dtype=float)
                duration = np.array(strides["stride_duration_s"], dtype=float)
                ok = np.isfinite(length) & np.isfinite(duration)
                assert ok.sum() >= 1
                plausible = (length[ok] > 0.5) & (length[ok] < 2.0) & (duration[ok] > 0.7) & (duration[ok] < 2.0)
                if tname.startswith("test5"):  # straight walks: every stride
                    assert plausible.all(), (length, duration)
                else:  # simulated daily living: turns and shuffles give some short or slow strides
                    all_len.extend(length[ok])
                    all_plausible.extend(plausible)
                # each stride starts and ends at one of the reference initial contacts, same side as its start
                ic = np.array([e.time_s for e in fs])
                for a, b in zip(strides["start_s"], strides["end_s"], strict=True):
                    if not (math.isfinite(a) and math.isfinite(b)):
                        continue  # the reference system lost this stride (NaN in the file, kept as NaN)
                    assert np.min(np.abs(ic - a)) < 1e-6 and np.min(np.abs(ic - b)) < 1e-6
                    assert t0 <= a < b <= t1
    assert 0.9 < np.median(all_len) < 1.4 and np.mean(all_plausible) > 0.75  # measured: 79.8 % (75 of 94)
    # the first INDIP initial contact of Test5 Trial1: 5.05 s in MATLAB's 1-based time = 0-based sample 504
    first = mat["data"].TimeMeasure1.Test5.Trial1.Standards.INDIP.ContinuousWalkingPeriod.InitialContact_Event[0]
    assert first == pytest.approx(5.05)
    got = min(e.time_s for e in s.events if e.detector == "mobilised:INDIP" and e.kind == "foot_strike")
    assert got == pytest.approx(504 / 100.0)


def test_mobilised_selection_and_errors(tmp_path: Path) -> None:
    one = read_mobilised_mat(shared_path(MOBILISED), test=5, trial="Trial2")
    assert [st.name for st in one.by_modality("imu")] == ["data.test5_trial2.lower_back"]
    assert one.by_modality("imu")[0].start_s == pytest.approx(30.559)  # same clock as when all trials are read
    lwb = read_mobilised_mat(shared_path(MOBILISED), test="Test11", reference_level="lwb")
    assert lwb.sources[0].metadata["reference_level"] == "MicroWB"
    with pytest.raises(ValidationError, match="nothing matches"):
        read_mobilised_mat(shared_path(MOBILISED), test=7)
    with pytest.raises(FileFormatError, match=r"no variable 'data'.*infoForAlgo"):
        read_mobilised_mat(shared_path("imu/mobgap/lab/HA/001/infoForAlgo.mat"))
    fake = tmp_path / "data.mat"
    fake.write_bytes(b"MATLAB 7.3 MAT-file, Platform: x" + b" " * 200)
    with pytest.raises(FileFormatError, match=r"v7\.3"):
        read_mobilised_mat(fake)
    cut = tmp_path / "cut.mat"
    cut.write_bytes(shared_path(MOBILISED).read_bytes()[:5000])
    with pytest.raises(FileFormatError, match="truncated or corrupt"):
        read_mobilised_mat(cut)


# ================================================================================================ Xsens
XSENS_FILES = {  # file: (rate_hz, rate stated in the file, first and last PacketCounter, rows, delimiter)
    "opensense_walking_009-001/MT_012005D6_009-001_00B421E6.txt": (100.0, True, 472, 2903, 2432, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B421ED.txt": (100.0, True, 472, 2952, 2481, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B421EE.txt": (100.0, True, 472, 2923, 2452, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B421EF.txt": (100.0, True, 472, 2940, 2469, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B42268.txt": (100.0, True, 472, 2967, 2496, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B42279.txt": (100.0, True, 472, 2964, 2493, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B4227C.txt": (100.0, True, 472, 2945, 2474, "\t"),
    "opensense_walking_009-001/MT_012005D6_009-001_00B4227D.txt": (100.0, True, 472, 2976, 2505, "\t"),
    "opensim_tests/MT_012005D6_031-000_00B421AF.txt": (100.0, True, 3583, 6951, 3369, "\t"),
    "opensim_tests/MT_012005D6_031-000_00B4227B.txt": (100.0, True, 3583, 6951, 3369, "\t"),
    "opensim_tests/MT_012005D6-000_sit_to_stand-000_00B421ED.txt": (40.0, True, 35166, 36692, 1459, "\t"),
    "opensim_tests/MT_01200454_000-000_00B40DE4.txt": (100.0, False, 3027, 3030, 4, "\t"),
    "opensim_tests/MT_01200312-002-000_00B474BA.txt": (100.0, False, 1330, 1334, 5, "\t"),
    "opensim_tests/MT2022_ACC_00B42D4B.txt": (100.0, False, 51400, 51404, 5, "\t"),
    "opensim_tests/MT2022_ACC_GYRO_ROT_ALL_TAB_NAN_00B42D4B.txt": (100.0, False, 51400, 51404, 5, "\t"),
    "opensim_tests/MT2022_ACC_GYRO_ROT_EULER_TAB_00B42D4F.txt": (100.0, False, 51400, 51404, 5, "\t"),
    "opensim_tests/MT2022_ACC_GYRO_ROT_MAT_COMMA_00B42D4B.txt": (100.0, False, 51400, 51404, 5, ","),
    "opensim_tests/MT2022_ACC_GYRO_ROT_MAT_SEMICOLON_00B42D4B.txt": (100.0, False, 51400, 51404, 5, ";"),
    "opensim_tests/MT2022_ACC_GYRO_ROT_MAT_SPACE_00B42D4B.txt": (100.0, False, 51400, 51404, 5, " "),
    "opensim_tests/MT46_01-000_00B42D4D.txt": (100.0, True, 4097, 4101, 5, "\t"),
    "opensim_tests/MT46_01-000_00B42D4E.txt": (100.0, True, 4097, 4101, 5, "\t"),
    "opensim_tests/test1_00B421E6.txt": (100.0, True, 20117, 20119, 3, "\t"),
}


def test_every_xsens_sample_is_listed() -> None:
    on_disk = {p.relative_to(shared_path(XSENS)).as_posix() for p in shared_path(XSENS).rglob("*.txt")}
    assert on_disk == set(XSENS_FILES)


@pytest.mark.parametrize("rel", sorted(XSENS_FILES))
def test_xsens_files(rel: str) -> None:
    rate, stated, pc_first, pc_last, n_rows, delim = XSENS_FILES[rel]
    path = shared_path(f"{XSENS}/{rel}")
    if stated:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FusionlabWarning)
            s = read_xsens_mtmanager(path, placement="left_foot")
    else:
        with pytest.warns(FusionlabWarning, match="assuming 100 Hz"):
            s = read_xsens_mtmanager(path, placement="left_foot")
        assert read_xsens_mtmanager(path, rate_hz=60.0).streams[0].rate_hz == 60.0  # no warning when given
    md = s.sources[0].metadata
    assert md["delimiter"] == delim and md["n_rows"] == n_rows
    assert md["packet_counter_first"] == pc_first and md["packet_counter_last"] == pc_last
    assert md["rate_source"] == ("header update rate" if stated else "assumed (not in the file)")
    device = re.search(r"_([0-9A-F]{8})\.txt$", rel).group(1)
    assert md["device_id"] == device
    n = pc_last - pc_first + 1
    for st in s.streams:
        assert st.rate_hz == rate and st.n_samples == n and st.start_s == pytest.approx(pc_first / rate)
        assert st.meta["sensor_id"] == device and st.frame == "sensor:left_foot"
        assert st.meta["dropped_packets"] == n - n_rows
        assert np.count_nonzero(np.all(np.isnan(st.data.reshape(n, -1)), axis=1)) >= n - n_rows
    imu = [st for st in s.streams if not st.name.endswith(".orientation")]
    if imu:
        (st,) = imu
        assert st.name == f"{path.stem}.left_foot" and set(st.channels) <= {"acc", "gyr", "mag"}
        assert st.units == tuple({"acc": "m/s^2", "gyr": "rad/s", "mag": "1"}[c] for c in st.channels)
        acc = np.nanmedian(np.linalg.norm(st.channel("acc"), axis=1))
        assert 8.0 < acc < 12.0 or "sit_to_stand" in rel  # m/s^2 (gravity dominates)
    orient = [st for st in s.streams if st.name.endswith(".orientation")]
    for st in orient:
        assert st.channels == ("quat",) and st.components == ("x", "y", "z", "w") and st.data.shape[1:] == (1, 4)
        q = st.data[:, 0]
        ok = np.all(np.isfinite(q), axis=1)
        np.testing.assert_allclose(np.linalg.norm(q[ok], axis=1), 1.0, atol=1e-3)


def test_xsens_dropped_packets() -> None:
    s = read_xsens_mtmanager(shared_path(f"{XSENS}/opensim_tests/MT_012005D6-000_sit_to_stand-000_00B421ED.txt"))
    (st,) = s.streams  # orientation only (Mat columns), 40 Hz
    assert st.name.endswith(".orientation") and st.rate_hz == 40.0
    assert st.meta["dropped_packets"] == 68 and st.meta["n_gaps"] == 64
    lost = np.all(np.isnan(st.data[:, 0]), axis=1)
    assert lost.sum() == 68
    assert st.meta["gaps"][0] == {"after_row_line": 9, "missing": 1}  # packets 35168 -> 35170
    assert lost[35169 - 35166] and not lost[35168 - 35166] and not lost[35170 - 35166]


def test_xsens_delimiter_variants_give_the_same_numbers() -> None:
    rel = f"{XSENS}/opensim_tests/MT2022_ACC_GYRO_ROT_{{}}_00B42D4B.txt"
    read = {k: _quiet(read_xsens_mtmanager, shared_path(rel.format(k))) for k in
            ("MAT_COMMA", "MAT_SEMICOLON", "MAT_SPACE", "ALL_TAB_NAN")}
    ref = read["MAT_COMMA"]
    for key in ("MAT_SEMICOLON", "MAT_SPACE"):
        for a, b in zip(ref.streams, read[key].streams, strict=True):
            assert a.channels == b.channels and a.start_s == b.start_s
            np.testing.assert_array_equal(a.data, b.data)
    # the tab file has Acc_X of row 1 replaced by NaN by hand (MANIFEST); everything else agrees
    tab_imu, tab_quat = read["ALL_TAB_NAN"].streams
    assert np.isnan(tab_imu.data[0, 0, 0]) and np.isnan(tab_imu.data).sum() == 1
    tab = tab_imu.data.copy()
    tab[0, 0, 0] = ref.streams[0].data[0, 0, 0]
    np.testing.assert_array_equal(tab, ref.streams[0].data)
    # its Quat (scalar-first in the file, stored scalar-last) is the same rotation as the Mat of the comma file
    line = shared_path(rel.format("ALL_TAB_NAN")).read_text().splitlines()
    header = line[12].split("\t")
    first = dict(zip(header, line[13].split("\t"), strict=True))
    np.testing.assert_allclose(tab_quat.data[0, 0], [float(first[f"Quat_q{i}"]) for i in (1, 2, 3, 0)])
    angle = (Rotation.from_quat(tab_quat.data[:, 0]).inv() * Rotation.from_quat(ref.streams[1].data[:, 0])).magnitude()
    assert np.all(angle < 1e-4)
    assert tab_quat.meta["orientation_source"].startswith("Quat_q0..q3")
    assert ref.streams[1].meta["orientation_source"].startswith("Mat[r][c]")


def test_xsens_sensors_of_one_recording_line_up() -> None:
    files = sorted(shared_path(f"{XSENS}/opensense_walking_009-001").glob("*.txt"))
    sessions = [read_xsens_mtmanager(p) for p in files]
    assert {s.streams[0].start_s for s in sessions} == {4.72}
    assert len({next(iter(s.clocks)) for s in sessions}) == 8  # one clock per file, aligned at offset 0


def _xsens_text(delim: str, header: list[str], rows: list[list[str]], rate_line: bool = True) -> str:
    lines = ["// Start Time: Unknown"] + (["// Update Rate: 100.0Hz"] if rate_line else [])
    lines += ["// Firmware Version: 4.0.2", delim.join(header)] + [delim.join(r) for r in rows]
    return "\n".join(lines) + "\n"


def test_xsens_sample_time_fine_and_counter_wraps(tmp_path: Path) -> None:
    header = ["PacketCounter", "SampleTimeFine", "Acc_X", "Acc_Y", "Acc_Z"]
    pcs = [65534, 65535, 0, 2, 3]  # 16-bit wrap, packet 1 lost
    stf = [(2 ** 32 - 200 + 100 * k) % 2 ** 32 for k in (0, 1, 2, 4, 5)]  # 32-bit wrap, 10 kHz ticks at 100 Hz
    rows = [[str(p), str(t), "0.1", "0.2", "9.8"] for p, t in zip(pcs, stf, strict=True)]
    path = tmp_path / "MT_test_00B4AAAA.txt"
    path.write_text(_xsens_text("\t", header, rows))
    st = read_xsens_mtmanager(path).streams[0]
    assert st.n_samples == 6 and st.meta["dropped_packets"] == 1 and np.isnan(st.data[3]).all()
    assert st.start_s == pytest.approx((2 ** 32 - 200) / 1e4) and st.meta["time_source"].startswith("SampleTimeFine")
    assert st.meta["packet_counter_wraps"] == 1 and st.meta["dropped_by_packet_counter"] == 1
    # without SampleTimeFine the counter gives the time: unwrapped across 65535 -> 0
    rows2 = [[str(p), "", "0.1", "0.2", "9.8"] for p in pcs]
    path.write_text(_xsens_text("\t", header, rows2))
    st = read_xsens_mtmanager(path).streams[0]
    assert st.n_samples == 6 and st.start_s == pytest.approx(655.34) and st.meta["dropped_packets"] == 1
    assert st.meta["time_source"].startswith("PacketCounter")


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([["10", "0.1", "0.2", "9.8"], ["10", "0.1", "0.2", "9.8"]], "PacketCounter repeats"),
        ([["10", "0.1", "0.2", "9.8"], ["9", "0.1", "0.2", "9.8"]], "PacketCounter goes back"),
        ([["10", "0.1", "0.2"]], r"has 3 values .* separated by tabs"),
        ([["10", "0.1", "abc", "9.8"]], "found 'abc' in column 'Acc_Y'"),
    ],
)
def test_bad_xsens(tmp_path: Path, rows: list[list[str]], match: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(_xsens_text("\t", ["PacketCounter", "Acc_X", "Acc_Y", "Acc_Z"], rows))
    with pytest.raises(FileFormatError, match=match):
        read_xsens_mtmanager(path)


def test_xsens_space_file_split_on_whitespace_runs_is_refused(tmp_path: Path) -> None:
    src = shared_path(f"{XSENS}/opensim_tests/MT2022_ACC_GYRO_ROT_MAT_SPACE_00B42D4B.txt").read_text()
    path = tmp_path / "collapsed.txt"
    path.write_text(re.sub(r" {2,}", " ", src))  # what a naive tool does to the empty fields
    with pytest.raises(FileFormatError, match="separated by single spaces"):
        read_xsens_mtmanager(path, rate_hz=100.0)
    with pytest.raises(FileFormatError, match="contradicts"):
        read_xsens_mtmanager(shared_path(f"{XSENS}/opensim_tests/test1_00B421E6.txt"), rate_hz=60.0)


# ================================================================================================ XDF
def test_xdf_minimal_documented_values() -> None:
    s = read_xdf(shared_path(f"{XDF}/minimal.xdf"))
    (st,) = s.streams
    assert st.name == "minimal.SendDataC" and st.modality == "analog" and st.rate_hz is None
    expected = np.array([[192, 255, 238], [12, 22, 32], [13, 23, 33], [14, 24, 34], [15, 25, 35],
                         [12, 22, 32], [13, 23, 33], [14, 24, 34], [15, 25, 35]], dtype=float)
    np.testing.assert_array_equal(st.data, expected)
    np.testing.assert_allclose(st.time_s, 5.1 + 0.1 * np.arange(9), atol=1e-12)
    lsl = st.meta["lsl"]
    assert (lsl["name"], lsl["type"], lsl["channel_count"], lsl["nominal_srate"], lsl["channel_format"]) == (
        "SendDataC", "EEG", "3", "10", "int16")
    assert st.meta["footer"]["first_timestamp"] == "5.1" and st.meta["footer"]["last_timestamp"] == "5.9"
    assert st.meta["footer"]["sample_count"] == "9"
    assert st.meta["footer"]["clock_offsets"]["offset"] == [{"time": "50979.76", "value": "-.01"},
                                                            {"time": "50979.86", "value": "-.02"}]
    # the string stream 0x02C0FFEE: its first sample is an XML document (kept), then 8 marker words (events)
    md = s.sources[0].metadata
    assert [x["stream_id"] for x in md["streams"]] == [0, 0x02C0FFEE]
    (xml,) = md["string_samples"]["SendDataString"]
    assert xml[0] == pytest.approx(5.1) and xml[1].startswith("<?xml")
    assert [e.label for e in s.events] == ["Hello", "World", "from", "LSL", "Hello", "World", "from", "LSL"]
    np.testing.assert_allclose([e.time_s for e in s.events], 5.2 + 0.1 * np.arange(8), atol=1e-12)
    assert all(e.source == "annotation" and e.kind in ("hello", "world", "from", "lsl") for e in s.events)
    # each LSL stream keeps its own clock; the offsets pyxdf reads from the ClockOffset chunks are kept
    assert st.meta["lsl_clock_offsets"] == [[6.1, -0.1], [7.1, -0.1]]
    entry = s.clocks[st.clock]
    assert entry.method == "lsl" and entry.offset_s == pytest.approx(-0.1) and math.isinf(entry.offset_sd_s)
    assert s.clocks[s.events[0].clock].method == "unsynchronised"  # no offsets for the string stream


def test_xdf_empty_streams() -> None:
    s = read_xdf(shared_path(f"{XDF}/empty_streams.xdf"))
    (st,) = s.streams
    assert st.name == "empty_streams.Data_stream_test_stream_0_counter" and st.channels == ("ch:00",)
    np.testing.assert_array_equal(st.data[:, 0], np.arange(10))
    np.testing.assert_allclose(np.diff(st.time_s), 1.0, atol=1e-6)
    md = s.sources[0].metadata
    assert sorted(x["name"] for x in md["skipped_streams"]) == ["Empty data stream: test stream 0 counter",
                                                                 "Empty marker stream: test stream 0 counter"]
    assert all(x["reason"] == "0 samples" for x in md["skipped_streams"])
    assert md["string_samples"] == {"ctrl": [[pytest.approx(91725.01400425), '{"state": 2}']]}
    assert not s.events
    entry = s.clocks[st.clock]
    assert entry.method == "lsl" and abs(entry.offset_s) < 1e-3 and entry.offset_sd_s < 1e-3
    assert entry.drift_ppm == 0.0 and math.isnan(entry.drift_sd_ppm)  # 7 offsets over 30 s: too short for drift
    assert len(st.meta["lsl_clock_offsets"]) == 7


def test_xdf_clock_resets_are_split_into_segments() -> None:
    path = shared_path(f"{XDF}/clock_resets.xdf")
    with pytest.warns(FusionlabWarning, match="clock was reset"):
        s = read_xdf(path)
    seg1, seg2 = s.streams
    assert (seg1.name, seg2.name) == ("clock_resets.BioSemi.seg1", "clock_resets.BioSemi.seg2")
    assert seg1.n_samples + seg2.n_samples == 27815 and seg1.data.shape[1] == 8
    for st in (seg1, seg2):
        assert np.all(np.diff(st.time_s) > 0)
    assert seg1.time_s[-1] == pytest.approx(653288.5104147) and seg2.time_s[0] == pytest.approx(100.6156308)
    c1, c2 = s.clocks[seg1.clock], s.clocks[seg2.clock]
    assert c1.method == c2.method == "lsl" and seg1.clock != seg2.clock
    # offsets documented in the README: -652340.28 s before the reset, +1121.17 s after
    assert c1.to_session(seg1.time_s[0]) - seg1.time_s[0] == pytest.approx(-652340.284, abs=1e-3)
    assert c2.to_session(seg2.time_s[0]) - seg2.time_s[0] == pytest.approx(1121.166, abs=1e-3)
    # on the recording host's clock the second segment follows the first (the host clock ran on)
    assert c2.to_session(seg2.time_s[0]) > c1.to_session(seg1.time_s[-1])
    assert 1.0 / np.median(np.diff(seg1.time_s)) == pytest.approx(100.0, rel=0.1)
    markers = s.events
    assert len(markers) == 175 and len({e.clock for e in markers}) == 2
    assert all(e.clock in s.clocks and e.source == "annotation" for e in markers)
    resets = s.sources[0].metadata["clock_resets"]
    assert {r["stream"] for r in resets} == {"BioSemi", "MyMarkerStream"}
    with pytest.raises(FileFormatError, match="clock was reset"):
        read_xdf(path, on_clock_reset="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_xdf(path, on_clock_reset="ignore").streams) == 2


def test_bad_xdf(tmp_path: Path) -> None:
    path = tmp_path / "not.xdf"
    path.write_bytes(b"RIFF" + b"\x00" * 100)
    with pytest.raises(FileFormatError, match="magic"):
        read_xdf(path)
    cut = tmp_path / "cut.xdf"
    cut.write_bytes(shared_path(f"{XDF}/minimal.xdf").read_bytes()[:40])
    with pytest.raises(FileFormatError, match="truncated or corrupt"):
        read_xdf(cut)
    # cut after the first samples: what is there is read, with a warning that the footer is missing
    cut.write_bytes(shared_path(f"{XDF}/minimal.xdf").read_bytes()[:1000])
    with pytest.warns(FusionlabWarning, match="no footer"):
        s = read_xdf(cut)
    assert s.streams[0].n_samples < 9


# ================================================================================================ ingest
def test_ingest_round_trip(tmp_path: Path) -> None:
    session = tmp_path / "imu_session.h5"
    sources = [CSV_SAMPLE, shared_path(IMU_SAMPLE), shared_path(MOCAP_SAMPLE), shared_path(MOBILISED),
               shared_path(f"{XSENS}/opensense_walking_009-001/MT_012005D6_009-001_00B421E6.txt"),
               shared_path(f"{XDF}/minimal.xdf")]
    report = ingest(sources, session, subject="P01", session_date="2026-01-15")
    assert len(report.sources) == len(sources)
    with open_session(session) as r:
        names = set(r.stream_names)
        assert {"gaitmap_left_foot_15s.left_foot", "imu_sample.left_foot", "imu_sample.right_foot",
                "mocap_sample.markers", "data.test5_trial1.lower_back", "MT_012005D6_009-001_00B421E6.unknown",
                "MT_012005D6_009-001_00B421E6.unknown.orientation", "minimal.SendDataC"} <= names
        st = r.read_stream("imu_sample.left_foot")
        direct = read_gaitmap_imu(shared_path(IMU_SAMPLE)).streams[0]
        np.testing.assert_array_equal(st.data, direct.data)
        assert st.units == ("m/s^2", "rad/s") and st.frame == "sensor:left_foot" and st.rate_hz == 204.8
        assert st.meta["unit_check"]["status"] == "ok"
        clocks = r.clocks()
        # one clock defines the session clock (ingest picks it); the others keep what the readers set
        methods = [c.method for c in clocks.values()]
        assert methods.count("reference") == 1
        assert clocks[st.clock].method in ("unsynchronised", "reference")
        assert clocks[r.read_stream("minimal.SendDataC").clock].method in ("lsl", "reference")
        ref = r.events(source="reference", clock="device")
        assert {e.detector for e in ref} == {"mobilised:INDIP", "mobilised:Stereophoto"}
        assert [e.label for e in r.events(source="annotation")][:4] == ["Hello", "World", "from", "LSL"]
        xs = r.read_stream("MT_012005D6_009-001_00B421E6.unknown.orientation")
        assert xs.components == ("x", "y", "z", "w") and xs.start_s == pytest.approx(4.72)
    # a stride-event list alone has no reader: ingest refuses it and leaves the session as it was
    with pytest.raises(FileFormatError, match=r"gaitmap stride list .* --stride-events"):
        ingest([shared_path(STRIDES)], session)
    # a unit mismatch stops the ingest with the reader's message
    bad = _with_header(tmp_path, "acc_x[g],acc_y[g],acc_z[g]", "acc_x[m/s^2],acc_y[m/s^2],acc_z[m/s^2]")
    with pytest.raises(FileFormatError, match="looks like g"):
        ingest([bad], session)
    assert read(CSV_SAMPLE).streams[0].n_samples == 3072


def test_gaitmap_rate_is_never_silently_assumed() -> None:
    """gaitmap CSVs do not state their rate: without rate_hz the 204.8 Hz of gaitmap's example data is assumed with
    a warning naming the file (imu_sample_ic_stride.csv is 102.4 Hz: read at 204.8 Hz it is half as long); a given
    rate gives no warning; a time column (the stair files) gives the rate itself."""
    g = "imu/gaitmap/"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assumed = read_gaitmap_imu(shared_path(g + "imu_sample_ic_stride.csv"))
    assert any("imu_sample_ic_stride.csv" in str(w.message) and "assumed" in str(w.message) for w in caught)
    assert assumed.streams[0].rate_hz == 204.8 and "assumed" in assumed.streams[0].meta["rate_source"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        given = read_gaitmap_imu(shared_path(g + "imu_sample_ic_stride.csv"), rate_hz=102.4)
        stairs = read_gaitmap_imu(shared_path(g + "imu_sample_healthy_stair_up.csv"))
    assert not [w for w in caught if "rate" in str(w.message)]
    assert given.streams[0].duration_s == pytest.approx(2 * assumed.streams[0].duration_s, rel=1e-3)
    t = np.loadtxt(shared_path(g + "imu_sample_healthy_stair_up.csv"), delimiter=",", skiprows=2, usecols=0)
    assert stairs.streams[0].rate_hz == pytest.approx(1.0 / np.median(np.diff(t)), rel=1e-9)
    assert stairs.streams[0].meta["rate_source"].startswith("from the file's time column")
