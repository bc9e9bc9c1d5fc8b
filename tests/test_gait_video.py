"""GaitVideo: a virtual side camera built from real marker data with annotated events, and the real demo video."""

from __future__ import annotations

import itertools
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionlab.gait._params import temporal_strides
from fusionlab.gait._validate import event_metrics, match_events
from fusionlab.consts import MEDIAPIPE_LANDMARKS
from fusionlab.gait._video import GaitVideo
from fusionlab.model import ClockEntry, Event, Session, Stream
from fusionlab.persist import open_session, save_session
from tests.conftest import shared_path

LANDMARKS = MEDIAPIPE_LANDMARKS
FOCAL_PX = 1400.0
DISTANCE_M = 5.0
# Trials with heel, toe and pelvis markers and annotated foot strikes and foot-offs
TRIALS = ("btkdata/PiG_Motion-FlatFoot-Full.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d",
          "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")


def _marker(markers: Stream, name: str) -> np.ndarray:
    """The marker ``name`` (or ``<subject>:name``) with the most samples."""
    cands = [markers.channel(c).astype(np.float64) for c in markers.channels if c == name or c.endswith(":" + name)]
    if not cands:
        raise KeyError(name)
    return max(cands, key=lambda x: int(np.isfinite(x[:, 0]).sum()))


def virtual_camera(markers: Stream, rng: np.random.Generator, *, fps: float = 30.0, noise_px: float = 1.5,
                   hidden_s: tuple[tuple[float, float], ...] = (), jitter_s: float = 0.002) -> Stream:
    """A pinhole side camera (f = 1400 px, 5 m from the walkway line, z up) seeing heel, toe and hip markers.

    Returns a 33-landmark ``pose2d`` stream at ``fps`` with jittered (irregular) frame times, Gaussian pixel noise,
    visibility 0.95 (0.2 in the ``hidden_s`` intervals and where a marker is missing), on clock ``"cam"`` (same
    time base as the markers), and ``meta["scale_m_per_px"]`` = 5 m / f with a 1 % SD.
    """
    t = markers.times()
    def pelvis_side(s: str) -> np.ndarray:
        pts = []
        for n in (f"{s}ASI", f"{s}PSI"):
            try:
                pts.append(_marker(markers, n))
            except KeyError:
                continue
        return np.nanmean(np.stack(pts), axis=0)

    hips = {"left": pelvis_side("L"), "right": pelvis_side("R")}
    centre = 0.5 * (hips["left"] + hips["right"])
    ranges = np.nanmax(centre[:, :2], axis=0) - np.nanmin(centre[:, :2], axis=0)
    walk_axis = int(np.argmax(ranges))
    lat_axis = 1 - walk_axis
    w0, l0 = np.nanmean(centre[:, walk_axis]), np.nanmean(centre[:, lat_axis])
    t_cam = np.arange(t[0] + 0.05, t[-1] - 0.05, 1.0 / fps)
    t_cam = t_cam + rng.uniform(-jitter_s, jitter_s, t_cam.size)
    data = np.full((t_cam.size, len(LANDMARKS), 2), np.nan)
    conf = np.zeros((t_cam.size, len(LANDMARKS)))
    points = {"left_hip": hips["left"], "right_hip": hips["right"]}
    for s, side in (("L", "left"), ("R", "right")):
        points[f"{side}_heel"] = _marker(markers, f"{s}HEE")
        points[f"{side}_foot_index"] = _marker(markers, f"{s}TOE")
    for name, p in points.items():
        j = LANDMARKS.index(name)
        w, lat, z = (np.interp(t_cam, t, p[:, k], left=np.nan, right=np.nan) for k in (walk_axis, lat_axis, 2))
        depth = DISTANCE_M + (lat - l0)
        data[:, j, 0] = FOCAL_PX * (w - w0) / depth + 960 + rng.normal(0, noise_px, t_cam.size)
        data[:, j, 1] = -FOCAL_PX * (z - 0.9) / depth + 540 + rng.normal(0, noise_px, t_cam.size)
        conf[:, j] = np.where(np.isfinite(data[:, j, 0]), 0.95, 0.0)
    for a, b in hidden_s:
        conf[(t_cam >= a) & (t_cam <= b)] = 0.2
    scale = DISTANCE_M / FOCAL_PX
    return Stream("cam.pose2d", "video_pose", data, LANDMARKS, ("px",) * len(LANDMARKS), components=("x", "y"),
                  frame="image:cam0", time_s=np.sort(t_cam), confidence=conf, clock="cam",
                  meta={"scale_m_per_px": scale, "scale": {"m_per_px": scale, "sd_m_per_px": 0.01 * scale}})


def _trial(rel: str) -> tuple[Stream, list[Event]]:
    from fusionlab.adapters.c3d import read_c3d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = read_c3d(shared_path(rel), prefix="")
    events = [e for e in trial.events if e.kind in ("foot_strike", "foot_off") and e.side in ("left", "right")]
    return trial.stream("markers"), events


def _inside(annotations: list[Event], cam: Stream, edge_s: float = 0.15) -> list[Event]:
    """Annotations at least ``edge_s`` inside the camera recording (an event at its first frame cannot be seen)."""
    t = cam.times()
    return [e for e in annotations if t[0] + edge_s <= e.time_s <= t[-1] - edge_s]


@pytest.mark.parametrize("rel", TRIALS)
def test_virtual_camera_events_match_annotations(rel: str) -> None:
    """Median timing error against the C3D annotations about one frame at 30 fps; every annotation found."""
    markers, annotations = _trial(rel)
    rng = np.random.default_rng(7)
    cam = virtual_camera(markers, rng)
    res = GaitVideo().detect_stream(cam)
    m = match_events(res.events, _inside(annotations, cam), tolerance_s=0.1)
    metrics = event_metrics(m)
    print(rel, {k: (v["n_reference"], v["n_matched"], v["median_abs_error_s"], v["mean_error_s"])
                for k, v in metrics.items()})
    assert metrics["all"]["recall"] >= 0.85
    assert metrics["all"]["precision"] >= 0.85
    assert metrics["all"]["median_abs_error_s"] <= 1.5 / 30
    assert all(e.source == "video" and e.detector == "video_zeni v1" and e.clock == "cam" for e in res.events)
    assert all(0.01 < e.sd_s < 0.06 for e in res.events)


def test_virtual_camera_pooled_error_and_spatial() -> None:
    """Pooled over the trials and 3 noise draws: median error <= 1 frame; stride length near the markers'."""
    errors = []
    for rel in TRIALS:
        markers, annotations = _trial(rel)
        for seed in range(3):
            cam = virtual_camera(markers, np.random.default_rng(seed))
            res = GaitVideo().detect_stream(cam)
            m = match_events(res.events, _inside(annotations, cam), tolerance_s=0.1)
            errors += [d.time_s - r.time_s for d, r in m.pairs]
            for s in res.strides:  # heel displacement over the stride, from the markers directly
                heel = _marker(markers, "LHEE" if s.side == "left" else "RHEE")
                t = markers.times()
                pa = np.array([np.interp(s.start_s, t, heel[:, k]) for k in range(2)])
                pb = np.array([np.interp(s.end_s, t, heel[:, k]) for k in range(2)])
                truth = float(np.linalg.norm(pb - pa))
                assert abs(s.params["stride_length_m"].value - truth) < 0.08 * truth + 0.03
    err = np.abs(errors)
    print(f"video virtual camera: {len(err)} matched events, median |error| {1000 * np.median(err):.1f} ms, "
          f"p95 {1000 * np.percentile(err, 95):.1f} ms")
    assert np.median(err) <= 1 / 30


def test_no_event_in_a_gap() -> None:
    markers, annotations = _trial(TRIALS[0])
    fs = sorted(e.time_s for e in annotations if e.kind == "foot_strike")
    hidden = (fs[1] - 0.15, fs[1] + 0.15)  # an annotated strike falls in the hidden stretch
    cam = virtual_camera(markers, np.random.default_rng(3), hidden_s=(hidden,))
    res = GaitVideo().detect_stream(cam)
    assert res.events
    assert not [e for e in res.events if hidden[0] - 1 / 30 <= e.time_s <= hidden[1] + 1 / 30]
    assert any(g0 <= hidden[0] + 0.05 and g1 >= hidden[1] - 0.05 for g0, g1 in res.meta["gaps_s"])
    # strides are never formed across the gap
    strides = temporal_strides(res.events, "cam", gaps=res.meta["gaps_s"])
    assert not [s for s in strides if s.start_s < hidden[1] and s.end_s > hidden[0]]


def test_no_scale_no_lengths_and_short_stream() -> None:
    markers, _ = _trial(TRIALS[0])
    cam = virtual_camera(markers, np.random.default_rng(0))
    cam = Stream(cam.name, cam.modality, cam.data, cam.channels, cam.units, components=cam.components,
                 frame=cam.frame, time_s=cam.time_s, confidence=cam.confidence, clock=cam.clock)
    res = GaitVideo().detect_stream(cam)
    assert res.events and not res.strides
    assert any("scale" in w for w in res.warnings)
    short = Stream("s.pose2d", "video_pose", cam.data[:3], cam.channels, cam.units, components=cam.components,
                   frame=cam.frame, time_s=cam.time_s[:3], confidence=cam.confidence[:3], clock="cam")
    assert GaitVideo().detect_stream(short).events == []


def test_detect_reads_pose_streams_from_a_session(tmp_path: Path) -> None:
    markers, _ = _trial(TRIALS[0])
    cam = virtual_camera(markers, np.random.default_rng(0))
    path = tmp_path / "cam.h5"
    save_session(Session(streams=(cam,), clocks={"cam": ClockEntry("cam", 0, 0, 0, 0, "reference")}), path)
    with open_session(path) as r:
        det = GaitVideo().detect(r)
    assert len(det.results_) == 1
    assert det.results_[0].streams == ("cam.pose2d",)
    assert det.get_params()["min_visibility"] == 0.5


# ---------------------------------------------------------------------------------------------------- real video
@pytest.fixture(scope="module")
def demo_session() -> Session:
    from fusionlab.adapters.video_mediapipe import read_video_pose

    return read_video_pose(shared_path("video/sports2d/demo.mp4"), subject_height_m=1.65)


@pytest.fixture(scope="module")
def demo_pose(demo_session: Session) -> Stream:
    return next(s for s in demo_session.streams if s.name.endswith("pose2d"))


def test_demo_video_plausible(demo_pose: Stream) -> None:
    res = GaitVideo().detect_stream(demo_pose)
    fs = [e for e in res.events if e.kind == "foot_strike"]
    assert len(fs) >= 6
    sides = [e.side for e in fs]
    assert all(a != b for a, b in itertools.pairwise(sides)), sides  # strikes alternate
    strides = temporal_strides(res.events, demo_pose.clock, gaps=res.meta["gaps_s"])
    assert len(strides) >= 4
    assert all(0.8 <= s.params["stride_time_s"].value <= 1.6 for s in strides)
    lengths = [s.params["stride_length_m"].value for s in res.strides]
    assert lengths and all(0.9 < v < 1.9 for v in lengths)
    speeds = [s.params["gait_speed_m_per_s"].value for s in res.strides]
    assert all(0.7 < v < 1.8 for v in speeds)
    # no event where the walker is not seen
    t, vis = demo_pose.times(), demo_pose.confidence
    for e in res.events:
        i = int(np.argmin(np.abs(t - e.time_s)))
        assert np.nanmin(vis[i, [23, 24]]) >= 0.5 and not math.isnan(demo_pose.data[i, 0, 0])


def test_demo_video_through_the_command_line(demo_session: Session, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from fusionlab.cli import main

    path = tmp_path / "demo.h5"
    save_session(demo_session, path)
    capsys.readouterr()
    assert main(["events", str(path), "--source", "video", "--json"]) == 0
    events = json.loads(capsys.readouterr().out)
    assert len(events) >= 10 and {e["source"] for e in events} == {"video"}
    assert {e["detector"] for e in events} == {"video_zeni v1"}
    with open_session(path) as r:
        assert len(r.events(source="video")) == len(events)
        assert "gait_video_video_zeni_v1" in r.derived_names()
    assert main(["params", str(path), "--source", "video", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    (video,) = report["sources"]
    speed = video["parameters"]["gait_speed_m_per_s"]
    assert 0.9 < speed["left"]["mean"] < 1.6 and 0.9 < speed["right"]["mean"] < 1.6
