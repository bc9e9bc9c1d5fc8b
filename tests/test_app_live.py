"""The web app on a recording in progress: a real `fusionlab record --lsl` subprocess writing an SWMR live file,
read through the Flask test client (logged in) while it grows, then after the merge.

The test outlet (tests/_lsl_sender.py via tests/test_record.py's `Sender`) sends sample k of channel c = k * 10 + c
with timestamp t0 + k / rate, so the values shown can be checked exactly. Skipped only when liblsl cannot be loaded
(never in CI: tests/test_record.py decides).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.test_record import senders  # noqa: F401 - the fixture (tests/test_record.py skips without liblsl)
from tests.test_app_auth import _login, _route

RATE_HZ = 200.0
N_CH = 2
STREAM = "lsl.fl_app_live"


def _find(node: Any, cid: str) -> dict[str, Any] | None:
    """The props of the component with id ``cid`` in a Dash layout JSON."""
    if isinstance(node, dict):
        if node.get("props", {}).get("id") == cid:
            return node["props"]
        for v in node.values():
            hit = _find(v, cid)
            if hit is not None:
                return hit
    elif isinstance(node, list):
        for v in node:
            hit = _find(v, cid)
            if hit is not None:
                return hit
    return None


def _stream_values(fig: dict[str, Any]) -> dict[int, np.ndarray]:
    """The values drawn for each channel of the test stream (x is session time, y the samples)."""
    from fusionlab.app._data import decode_array

    out = {}
    for tr in fig["data"]:
        name = tr.get("name", "")
        if name.startswith("fl_app_live c"):
            out[int(name.split()[1][1:])] = decode_array(tr["y"]).astype(np.float64)
    return out


def _check_sent(values: dict[int, np.ndarray]) -> int:
    """Every channel shows consecutive samples with exactly the sent values; returns the number of samples."""
    assert values and set(values) <= set(range(N_CH))  # the page's default choice: the first channel at least
    c0 = min(values)
    k = np.round((values[c0] - c0) / 10).astype(int)
    assert len(k) > 0 and np.all(np.diff(k) == 1), "samples missing or repeated"
    for c, y in values.items():
        np.testing.assert_array_equal(y, k * 10.0 + c)
    return len(k)


def _sessions_table(client: Any) -> list[dict[str, Any]]:
    r = _route(client, "/")
    assert r.status_code == 200
    return _find(r.get_json(), "sessions-table")["data"]


def _live_callback(client: Any) -> dict[str, Any]:
    """The dependency of the session page's live refresh (its output spec, as the browser sends it)."""
    deps = client.get("/_dash-dependencies").get_json()
    return next(d for d in deps if any(i["id"] == "session-live-poll" for i in d["inputs"]))


def _refresh(client: Any, dep: dict[str, Any], sid: str, traces: list[str], n: int) -> dict[str, Any]:
    body = {"output": dep["output"],
            "outputs": [{"id": o.split(".")[0], "property": o.split(".", 1)[1]}
                        for o in dep["output"].strip(".").split("...")],
            "inputs": [{"id": "session-live-poll", "property": "n_intervals", "value": n}],
            "state": [{"id": "session-traces", "property": "value", "value": traces},
                      {"id": "session-view", "property": "data", "value": {"window": None}},
                      {"id": "session-key", "property": "data", "value": {"sid": sid}}],
            "changedPropIds": ["session-live-poll.n_intervals"]}
    r = client.post("/_dash-update-component", json=body)
    assert r.status_code == 200, r.text[:500]
    return r.get_json()["response"]


def test_app_shows_a_recording_while_it_grows_then_the_merged_session(tmp_path: Path, senders: Any) -> None:  # noqa: F811
    from fusionlab.app._users import UserStore
    from fusionlab.app.app import create_app
    from fusionlab.persist import open_session
    from fusionlab.record import live_path, open_live

    data = tmp_path / "lab"
    (data / "rec").mkdir(parents=True)
    UserStore(data).add("ann", "correct horse", "researcher")
    session = data / "rec" / "walk.h5"
    s = senders("fl_app_live", RATE_HZ, N_CH, "fl_app_live_src")
    rec = subprocess.Popen([sys.executable, "-m", "fusionlab.cli", "record", "--lsl", "--no-view", "--stream",
                            "fl_app_live", "-o", str(session), "--flush-ms", "300", "--wait-s", "3"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        app = create_app(data)
        client = app.server.test_client()
        assert _login(client).status_code == 302
        # wait for two flushes with samples (the live file's sample count grew twice)
        live = live_path(session)
        deadline = time.monotonic() + 15
        counts = [0]
        while len(set(counts) - {0}) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            if live.exists():
                try:
                    with open_live(live) as r:
                        counts.append(r.stream_info(STREAM)["n_samples"] if STREAM in r.stream_names else 0)
                except OSError:
                    continue
        assert len(set(counts) - {0}) >= 2, "the recorder did not flush twice"

        # the sessions list shows the recording, with its streams so far and the last flush
        rows = _sessions_table(client)
        assert len(rows) == 1
        row = rows[0]
        assert row["status"].startswith("recording (last flush ")
        assert row["n_streams"] == 1 and row["last_flush"]
        sid = row["id"]

        # its page: the samples flushed so far, exactly the values sent
        page = _route(client, f"/session/{sid}").get_json()
        assert "Recording in progress" in str(_find(page, "session-live-status")["children"])
        assert _find(page, "session-live-poll")["disabled"] is False
        n1 = _check_sent(_stream_values(_find(page, "session-graph")["figure"]))
        assert n1 >= min(c for c in counts if c)
        traces = [o["value"] for o in _find(page, "session-traces")["options"]]  # every channel

        # a later refresh (the page's dcc.Interval callback) shows more samples
        dep = _live_callback(client)
        time.sleep(0.8)
        resp = _refresh(client, dep, sid, traces, 1)
        shown = _stream_values(resp["session-graph"]["figure"])
        assert sorted(shown) == list(range(N_CH))
        n2 = _check_sent(shown)
        assert n2 > n1
        assert resp["session-live-poll"]["disabled"] is False

        # stop the recorder: it merges the live file into the session
        rec.send_signal(signal.SIGINT)
        _, err = rec.communicate(timeout=20)
        assert rec.returncode == 0, err[-2000:]
    finally:
        if rec.poll() is None:
            rec.kill()
            rec.wait()
    assert not live.exists() and session.exists()
    with open_session(session) as r:
        n_final = r.stream_info(STREAM)["n_samples"]
    assert n_final >= n2

    rows = _sessions_table(client)
    assert [(r["id"], r["status"], r["last_flush"], r["n_streams"]) for r in rows] == [(sid, "", "", 1)]
    page = _route(client, f"/session/{sid}").get_json()  # same id: now the merged session
    assert _find(page, "session-live-poll")["disabled"] is True
    assert _check_sent(_stream_values(_find(page, "session-graph")["figure"])) == n_final
    # an open page's next refresh shows the merged session and stops polling
    resp = _refresh(client, dep, sid, traces, 2)
    assert resp["session-live-poll"]["disabled"] is True
    assert _check_sent(_stream_values(resp["session-graph"]["figure"])) == n_final
    s.kill()


@pytest.mark.parametrize("name", ["S01.h5.live", "sub/S02.hdf5.live"])
def test_find_live_sessions_lists_first_segments_only(tmp_path: Path, name: str) -> None:
    from fusionlab.app._live import find_live_sessions

    (tmp_path / "sub").mkdir()
    (tmp_path / name).write_bytes(b"")
    (tmp_path / (name[: -len(".live")] + ".2.live")).write_bytes(b"")  # a segment: not a second recording
    (tmp_path / ".hidden.h5.live").write_bytes(b"")
    (tmp_path / "notes.txt.live").write_bytes(b"")
    assert find_live_sessions(tmp_path) == [tmp_path / name[: -len(".live")]]


def test_live_status_and_reader_without_lsl(tmp_path: Path) -> None:
    import datetime as dt

    from fusionlab.app._data import summarize_session
    from fusionlab.app._live import STALE_AFTER_S, live_status, open_any
    from fusionlab.record import LiveStreamSpec, LiveWriter, live_path

    session = tmp_path / "w.h5"
    spec = LiveStreamSpec(name="lsl.x", channels=("a",), units=("V",), clock="lsl:x")
    with LiveWriter(live_path(session), [spec]) as w:
        w.append("lsl.x", np.arange(5) / 10.0, np.arange(5.0)[:, None])
        w.flush()
        with open_any(session) as r:  # a LiveReader on the SWMR file while the writer has it open
            np.testing.assert_array_equal(r.read_stream("lsl.x").data[:, 0], np.arange(5.0))
        assert summarize_session(session)["n_streams"] == 1
        st = live_status(session)
        assert st["live"] and st["status"] == "recording"
        later = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=STALE_AFTER_S + 5)
        assert live_status(session, now=later)["status"] == "recording stopped, not merged"
    live_path(session).unlink()
    assert live_status(session)["live"] is False
