"""Session files: format checks, lossless save/load, lazy windows, atomic writes under kill -9."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from fusionlab.exceptions import SessionFormatError, ValidationError
from fusionlab.model import ClockEntry, Event, Session, Stream
from fusionlab.persist import FORMAT_VERSION, load_session, open_session, save_session, transaction


def _session(n: int = 5000, name: str = "trial.") -> Session:
    rng = np.random.default_rng(0)
    t = np.arange(n) / 1000.0
    analog = np.column_stack([np.sin(2 * np.pi * 1.1 * t), rng.normal(size=n)]).astype(float)
    analog[100:120, 1] = np.nan
    markers = rng.normal(size=(n // 10, 3, 3))
    markers[5:9, 1] = np.nan
    clock = ClockEntry(clock="dev", method="unsynchronised")
    video_t = np.cumsum(rng.uniform(0.03, 0.04, size=50))
    conf = rng.uniform(0, 1, size=(50, 2))
    streams = (
        Stream(f"{name}analog", "analog", analog, ("sin", "noise"), ("V", "V"), rate_hz=1000.0, start_s=0.25,
               clock="dev"),
        Stream(f"{name}markers", "markers", markers, ("A", "B", "C"), ("m",) * 3, components=("x", "y", "z"),
               frame="lab", rate_hz=100.0, start_s=0.25, clock="dev", storage_dtype="float32", orig_units=("mm",) * 3),
        Stream(f"{name}pose", "video_pose", rng.normal(size=(50, 2, 2)), ("hip", "knee"), ("px", "px"),
               components=("x", "y"), frame="image:cam0", time_s=video_t, confidence=conf, clock="dev"),
    )
    events = (Event(1.0, "foot_strike", "left", "annotation", label="Left Foot Strike", clock="dev", detector="f"),
              Event(1.5, "foot_off", "right", "annotation", sd_s=0.01, clock="dev", detector="f"))
    return Session(streams=streams, events=events, clocks={"dev": clock}, subject="P01", session_date="2026-03-01")


def test_save_and_load_are_lossless(tmp_path: Path) -> None:
    s = _session()
    path = tmp_path / "s.h5"
    save_session(s, path)
    back = load_session(path)
    assert back.subject == "P01" and back.session_date == "2026-03-01"
    for orig in s.streams:
        got = back.stream(orig.name)
        assert got.channels == orig.channels and got.units == orig.units and got.frame == orig.frame
        assert got.orig_units == orig.orig_units and got.components == orig.components
        if orig.storage_dtype == "float32":
            np.testing.assert_allclose(got.data, orig.data.astype(np.float32), equal_nan=True)
        else:
            np.testing.assert_array_equal(got.data, orig.data)
        np.testing.assert_array_equal(got.times(), orig.times())
        if orig.confidence is not None:
            np.testing.assert_allclose(got.confidence, orig.confidence.astype(np.float32))
    assert [(e.time_s, e.kind, e.side, e.label) for e in back.events] == \
        [(e.time_s, e.kind, e.side, e.label) for e in s.events]
    with open_session(path) as r:
        info = r.stream_info("trial.analog")
        assert info["missing_percent"] == pytest.approx(100 * 20 / (5000 * 2))
        with h5py.File(path) as f:
            ds = f["streams/trial.analog/data"]
            assert ds.compression == "gzip" and ds.shuffle and ds.chunks is not None


def test_window_reads_on_device_and_session_clock(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    with transaction(path) as f:  # pretend sync found the device 2 s behind the session clock
        f["clocks/dev"].attrs["offset_s"] = 2.0
        f["clocks/dev"].attrs["offset_sd_s"] = 0.001
    with open_session(path) as r:
        w = r.read_stream("trial.analog", 1.0, 1.5)
        assert w.n_samples == 500 and w.times()[0] == pytest.approx(1.0)
        ws = r.read_stream("trial.analog", 3.0, 3.5, clock="session")
        np.testing.assert_array_equal(ws.data, w.data)
        np.testing.assert_allclose(r.to_session_time(ws)[0], 3.0)
        assert r.stream_info("trial.analog")["start_s"] == pytest.approx(2.25)
        ev = r.events()
        assert ev[0].time_s == pytest.approx(3.0) and ev[0].clock == "session"
        pose = r.read_stream("trial.pose", 0.5, 1.0)
        assert np.all((pose.times() >= 0.5) & (pose.times() < 1.0))


def test_refuses_to_overwrite_streams_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    with pytest.raises(ValidationError, match="already has stream"):
        save_session(_session(), path)
    save_session(_session(), path, overwrite=True)
    save_session(_session(name="second."), path)
    with open_session(path) as r:
        assert len(r.stream_names) == 6


def test_refuses_other_subject(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    other = Session(streams=_session(name="x.").streams, clocks={"dev": ClockEntry("dev")}, subject="P02")
    with pytest.raises(ValidationError, match="P01"):
        save_session(other, path)


def test_not_a_session_and_newer_version(tmp_path: Path) -> None:
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["x"] = np.arange(3)
    with pytest.raises(SessionFormatError, match="not a fusionlab session") as info:
        open_session(plain)
    assert str(plain) in str(info.value)
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"this is not hdf5" * 100)
    with pytest.raises(SessionFormatError, match="not an HDF5 file"):
        open_session(junk)
    newer = tmp_path / "newer.h5"
    save_session(_session(), newer)
    with h5py.File(newer, "r+") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(SessionFormatError, match="newer fusionlab"):
        open_session(newer)
    with pytest.raises(SessionFormatError, match="newer fusionlab"):
        save_session(_session(name="y."), newer)


def test_failed_transaction_leaves_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    before = path.read_bytes()
    with pytest.raises(RuntimeError), transaction(path) as f:
        del f["streams/trial.analog"]
        raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".s.h5.tmp-*"))


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from fusionlab.model import Stream, Session, ClockEntry
    from fusionlab.persist import save_session
    path, k = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(k)
    data = rng.normal(size=(1_500_000, 8))
    s = Session(streams=(Stream(f"big{k}", "analog", data, tuple("abcdefgh"), ("V",) * 8, rate_hz=1000.0,
                                clock=f"c{k}"),), clocks={f"c{k}": ClockEntry(f"c{k}")})
    print("start", flush=True)
    save_session(s, path)
    print("done", flush=True)
""")


def test_kill_9_during_write_leaves_previous_valid_file(tmp_path: Path) -> None:
    """Kill a writer at several points of its write; each time the session is the previous valid one."""
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    before = path.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # kill when the writer's working copy exists (copying), then when it has grown by 2, 20 and 60 MB (writing)
    for k, grown_bytes in enumerate((0, 2e6, 20e6, 60e6)):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(k)], stdout=subprocess.PIPE,
                                env=env, text=True)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = list(tmp_path.glob(".s.h5.tmp-*"))
            if tmps and tmps[0].exists() and tmps[0].stat().st_size - len(before) >= grown_bytes:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the writer finished before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert path.read_bytes() == before  # byte for byte the previous file
        with open_session(path) as r:
            assert sorted(r.stream_names) == ["trial.analog", "trial.markers", "trial.pose"]
            np.testing.assert_array_equal(r.read_stream("trial.analog").data, _session().streams[0].data)
    # the next writer cleans up what the killed ones left behind, and succeeds
    save_session(_session(name="after."), path)
    assert not list(tmp_path.glob(".s.h5.tmp-*"))
    with open_session(path) as r:
        assert "after.analog" in r.stream_names


def test_info_json_contract(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fusionlab.cli import main

    path = tmp_path / "s.h5"
    save_session(_session(), path)
    assert main(["info", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"streams", "events", "clocks", "metadata"}
    for s in out["streams"]:
        assert set(s) >= {"name", "modality", "rate_hz", "n_samples", "start_s", "channels"}
    pose = next(s for s in out["streams"] if s["name"] == "trial.pose")
    assert pose["rate_hz"] is None  # irregular: explicit timestamps
    for e in out["events"]:
        assert set(e) >= {"time_s", "side", "kind", "source"}
        assert e["sd_s"] is None or math.isfinite(e["sd_s"])
    assert out["metadata"]["subject"] == "P01"
    assert out["clocks"][0]["offset_sd_s"] is None  # unsynchronised: infinite uncertainty, printed as null


def test_read_stream_selected_channels(tmp_path: Path) -> None:
    path = tmp_path / "s.h5"
    save_session(_session(), path)
    with open_session(path) as r:
        for name in r.stream_names:
            full = r.read_stream(name)
            if len(full.channels) < 2:
                continue
            want = [full.channels[-1], full.channels[0]]  # any order, as asked
            part = r.read_stream(name, channels=want)
            assert part.channels == tuple(want)
            assert part.units == (full.units[-1], full.units[0])
            np.testing.assert_array_equal(part.data, full.data[:, [len(full.channels) - 1, 0]])
            np.testing.assert_array_equal(part.times(), full.times())
            if full.confidence is not None:
                np.testing.assert_array_equal(part.confidence, full.confidence[:, [len(full.channels) - 1, 0]])
            w = r.read_stream(name, 0.5, 1.0, channels=want[:1])
            np.testing.assert_array_equal(w.data[:, 0], r.read_stream(name, 0.5, 1.0).data[:, -1])
            with pytest.raises(KeyError, match="no channel"):
                r.read_stream(name, channels=["nope"])
