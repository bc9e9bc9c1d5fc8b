"""The session page's video frame (fusionlab.app._video and the frame route), without a browser."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fusionlab.app._video import FrameServer, cursor_time, draw_pose, encode_jpeg, pose_videos
from tests.conftest import SAMPLE_DATA

CLIP = SAMPLE_DATA / "video" / "sports2d_walker_2s.mp4"


@pytest.fixture(scope="module")
def video_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusionlab.cli import main as cli

    d = tmp_path_factory.mktemp("video")
    clip = shutil.copy(CLIP, d)
    out = d / "walker.h5"
    assert cli(["ingest", str(clip), "-o", str(out), "--subject-height-m", "1.65", "-q"]) == 0
    return out


def _decode(jpeg: bytes) -> np.ndarray:
    import av

    with av.open(io.BytesIO(jpeg), format="mjpeg") as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def test_cursor_time() -> None:
    assert cursor_time("cursor", {"t": 3.25}) == 3.25
    assert cursor_time("view", None, {"window": [1, 2], "cursor": 1.5}) == 1.5
    assert cursor_time("view", None, {"window": [1, 2]}) is None  # a plain zoom does not move the frame
    for bad in ({"t": None}, {"t": "x"}, {"t": float("nan")}, {"t": True}, {}, None):
        assert cursor_time("cursor", bad) is None
    assert cursor_time(None, {"t": 1.0}) is None


def test_draw_pose_and_jpeg() -> None:
    img = np.zeros((60, 80, 3), np.uint8)
    xy = np.full((33, 2), np.nan)
    xy[23], xy[25] = (10.0, 10.0), (70.0, 50.0)  # left hip -> left knee: one bone
    out = draw_pose(img, xy, color=(0, 255, 0))
    assert img.sum() == 0  # the input is not changed
    assert (out[10, 10] == (0, 255, 0)).all() and (out[50, 70] == (0, 255, 0)).all()
    assert (out[30, 40] == (0, 255, 0)).all()  # on the bone, half way
    assert (out[50, 10] == 0).all()
    assert (draw_pose(img, np.full((33, 2), np.nan)) == 0).all()  # nothing seen, nothing drawn
    dec = _decode(encode_jpeg(out))
    assert dec.shape == out.shape and abs(int(dec[30, 40, 1]) - 255) < 40


def test_frame_server(video_session: Path) -> None:
    fs = FrameServer()
    (pose,) = fs.poses(video_session)
    assert pose.stream.endswith("pose2d") and pose.video.name == CLIP.name and len(pose.time_s) == 60
    t0 = float(pose.session_time_s[0])
    f0 = fs.frame(video_session, t0)
    assert f0.index == 0 and f0.jpeg[:2] == b"\xff\xd8"
    assert _decode(f0.jpeg).shape == (497, 884, 3)
    f1 = fs.frame(video_session, float(pose.session_time_s[30]) + 0.01)  # the frame on display at that time
    assert f1.index == 30 and f1.jpeg != f0.jpeg
    assert fs.frame(video_session, t0 - 10).index == 0 and fs.frame(video_session, t0 + 100).index == 59
    assert fs.frame(video_session, float("nan")) is None and fs.frame(video_session, t0, camera=1) is None
    assert fs.caption(video_session, float(pose.session_time_s[30])) == f1.caption()
    assert "frame 31/60" in f1.caption()
    fs.close()


def test_no_video_file_no_panel(video_session: Path, tmp_path: Path) -> None:
    lone = tmp_path / "lone.h5"
    shutil.copy(video_session, lone)  # the video is not beside this copy
    assert pose_videos(lone) == []
    assert FrameServer().frame(lone, 3.0) is None


def test_frame_route_behind_login(video_session: Path) -> None:
    from fusionlab.app._users import UserStore
    from fusionlab.app.app import create_app, frame_url

    root = video_session.parent
    if not UserStore(root).list():
        UserStore(root).add("ann", "correct horse", "clinician")
    app = create_app(root)
    sid = app.server.config["FUSIONLAB_CONTEXT"].index.scan()[0]["id"]
    c = app.server.test_client()
    url = frame_url(sid, 3.0)
    assert c.get(url).status_code == 401
    csrf = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    c.post("/login", data={"csrf": csrf, "username": "ann", "password": "correct horse"})
    r = c.get(url)
    assert r.status_code == 200 and r.mimetype == "image/jpeg" and r.headers["Cache-Control"] == "no-store"
    assert r.headers["X-Frame-Index"] == "15"
    assert c.get(f"/_fusionlab/frame/{sid}?t=abc").status_code == 400
    assert c.get(frame_url("0" * 24, 3.0)).status_code == 404
    assert c.get(frame_url(sid, 3.0, camera=3)).status_code == 404


def test_conflict_click_moves_the_cursor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import fusionlab.app._data as data

    conflict: Any = type("C", (), {"start_s": 2.0, "end_s": 3.0, "quantity": "knee_angle", "modality": "video",
                                    "severity": "high", "evidence": {}, "score": 1.0})()
    result = type("R", (), {"conflicts": [conflict], "signals": []})()
    monkeypatch.setattr(data, "_read_fusion_or_empty", lambda _p: {"r": result})
    monkeypatch.setattr(data, "figure_for_view", lambda *a, **k: {"data": [], "layout": {}})
    up = data.session_update(tmp_path / "x.h5", trigger="conflict", conflict_index=0)
    assert up.view["cursor"] == 2.0 and up.view["window"] == [1.5, 3.5]
    up = data.session_update(tmp_path / "x.h5", trigger="zoom", relayout={"xaxis.range[0]": 1, "xaxis.range[1]": 2})
    assert "cursor" not in up.view
