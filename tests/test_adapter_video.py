"""Video pose reader (MediaPipe): landmarks, container timestamps, person selection, scale, cache, bad files.

Inference on demo.mp4 (230 frames, 1768x994) takes a few seconds of CPU per run, so it runs twice per module
(walker and a point-selected person), through module-scoped fixtures. Small clips are made in the tests.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from fusionlab.adapters import video_mediapipe as vm
from fusionlab.exceptions import FileFormatError, ValidationError
from fusionlab.model import Session
from fusionlab.persist import load_session, open_session, save_session
from tests.conftest import shared_path

DEMO = "video/sports2d/demo.mp4"
CALIB = "video/sports2d/Calib_demo.toml"
WIDTH, HEIGHT = 1768, 994
HEIGHT_M = 1.65  # stature of the reference person in Sports2D's demo configuration (first_person_height)
JUMPER_POINT = (650.0, 250.0)  # the person standing on the roof in the first frame (the one who later flips)
VFR_STEPS_MS = (25, 45, 33, 50, 20)


def _hip(xy: np.ndarray) -> np.ndarray:
    i, j = vm.LANDMARK_NAMES.index("left_hip"), vm.LANDMARK_NAMES.index("right_hip")
    return 0.5 * (xy[:, i] + xy[:, j])


def _make_clip(path: Path, frames: list[np.ndarray], times_ms: list[int]) -> None:
    """Encode RGB frames as MPEG-4 Part 2 in MP4 with the given presentation times (ms)."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=30)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.bit_rate = 6_000_000
        s.time_base = Fraction(1, 1000)
        s.codec_context.time_base = Fraction(1, 1000)
        for img, t in zip(frames, times_ms, strict=True):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            f.pts, f.time_base = int(t), Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)


@pytest.fixture(scope="module")
def demo() -> Path:
    return shared_path(DEMO)


@pytest.fixture(scope="module")
def walker(demo: Path) -> Session:
    return vm.read_video_pose(demo, subject_height_m=HEIGHT_M, calibration=shared_path(CALIB))


@pytest.fixture(scope="module")
def jumper(demo: Path) -> Session:
    return vm.read_video_pose(demo, person=JUMPER_POINT)


@pytest.fixture(scope="module")
def vfr_clip(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """30 frames of the walker (demo frames 90-119, half size) with irregular presentation times."""
    import av
    import cv2

    with av.open(str(demo)) as c:
        frames = [cv2.resize(f.to_ndarray(format="rgb24"), (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
                  for i, f in enumerate(c.decode(video=0)) if 90 <= i < 120]
    steps = list(VFR_STEPS_MS) * 6
    times_ms = [100 + sum(steps[:k]) for k in range(30)]  # starts at 0.1 s, steps 20-50 ms
    path = tmp_path_factory.mktemp("video") / "vfr.mp4"
    _make_clip(path, frames, times_ms)
    return path, np.asarray(times_ms, dtype=np.float64) / 1000.0


# ------------------------------------------------------------------------------------------------ streams
def test_streams_and_landmarks(walker: Session) -> None:
    import mediapipe as mp

    assert tuple(lm.name.lower() for lm in mp.solutions.pose.PoseLandmark) == vm.LANDMARK_NAMES
    s2, s3 = walker.stream("demo.pose2d"), walker.stream("demo.pose3d")
    n = s2.n_samples
    assert n == 230
    assert s2.data.shape == (n, 33, 2) and s3.data.shape == (n, 33, 3)
    assert s2.channels == s3.channels == vm.LANDMARK_NAMES
    assert s2.components == ("x", "y") and s3.components == ("x", "y", "z")
    assert s2.units == ("px",) * 33 and s3.units == ("m",) * 33
    assert s2.frame == "image:cam0" and s3.frame == "world:cam0"
    assert s2.modality == s3.modality == "video_pose"
    assert s2.rate_hz is None and s3.rate_hz is None
    assert s2.clock == s3.clock and s2.clock.startswith("video:demo:") and len(s2.clock) == len("video:demo:") + 8
    assert walker.clocks[s2.clock].method == "unsynchronised"
    np.testing.assert_array_equal(s2.time_s, s3.time_s)
    # visibility is the confidence, in [0, 1], NaN exactly where the person is absent
    conf = s2.confidence
    assert conf is not None and conf.shape == (n, 33)
    absent = np.isnan(s2.data[:, :, 0])
    np.testing.assert_array_equal(np.isnan(conf), absent)
    assert np.all((conf[~absent] >= 0) & (conf[~absent] <= 1))
    np.testing.assert_array_equal(np.isnan(s3.data[:, :, 0]), absent)
    assert s2.meta["n_frames_no_person"] == int(absent[:, 0].sum())
    assert 0 < s2.meta["n_frames_no_person"] < n  # the walker enters after ~1.3 s and leaves before the end
    meta = s2.meta
    assert meta["sha256"] == walker.sources[0].sha256 and meta["adapter"] == "video_mediapipe"
    assert meta["versions"]["mediapipe"] == "0.10.21" and meta["versions"]["model_complexity"] == 1
    assert meta["frame_size_px"] == [WIDTH, HEIGHT] and meta["fps_nominal"] == pytest.approx(30.0)
    assert len(json.dumps(meta)) < 32_000  # stored as one HDF5 attribute (compact attributes hold < 64 kB)


def test_world_landmarks_convention(walker: Session) -> None:
    """MediaPipe 0.10.21 world frame: metres, origin between the hips, y down, x image-right, z away from camera."""
    s2, s3 = walker.stream("demo.pose2d"), walker.stream("demo.pose3d")
    ok = np.isfinite(s3.data[:, 0, 0])
    w, xy = s3.data[ok], s2.data[ok]
    name = vm.LANDMARK_NAMES.index
    hip_mid = 0.5 * (w[:, name("left_hip")] + w[:, name("right_hip")])
    assert np.abs(np.median(hip_mid, axis=0)).max() < 0.02
    assert np.median(w[:, name("nose"), 1]) < -0.4 < 0.4 < np.median(w[:, name("left_ankle"), 1])
    # she walks towards image-left: nose left of the hips in the image and in the world frame
    assert np.median(xy[:, name("nose"), 0] - _hip(xy)[:, 0]) < 0
    assert np.median(w[:, name("nose"), 0] - hip_mid[:, 0]) < 0
    # walking right-to-left, her left side faces the camera: smaller z
    assert np.median(w[:, name("left_shoulder"), 2] - w[:, name("right_shoulder"), 2]) < -0.1


def test_times_from_container(walker: Session, demo: Path) -> None:
    t = walker.stream("demo.pose2d").time_s
    assert t[0] == 0.0 and np.all(np.diff(t) > 0)
    np.testing.assert_allclose(np.diff(t), 1 / 30, atol=1e-9)
    np.testing.assert_array_equal(t, vm.read_frame_times(demo))  # container pts * time_base (1/15360)
    ts = walker.stream("demo.pose2d").meta["timestamps"]
    assert ts["source"] == "container_pts" and ts["time_base"] == "1/15360" and not ts["variable_frame_rate"]


def test_vfr_clip_keeps_container_times(vfr_clip: tuple[Path, np.ndarray]) -> None:
    path, expected = vfr_clip
    np.testing.assert_allclose(vm.read_frame_times(path), expected, rtol=0, atol=1e-9)
    s = vm.read_video_pose(path, workers=1)
    t = s.streams[0].time_s
    np.testing.assert_allclose(t, expected, rtol=0, atol=1e-9)  # not index / fps
    assert s.streams[0].meta["timestamps"]["variable_frame_rate"]
    assert np.isfinite(s.streams[0].data[:, 0, 0]).mean() > 0.9  # the walker is in every frame of the clip


def test_sequential_and_pipelined_agree(vfr_clip: tuple[Path, np.ndarray]) -> None:
    path, _ = vfr_clip
    seq = vm.read_video_pose(path, workers=1)
    par = vm.read_video_pose(path, workers=2)
    for a, b in zip(seq.streams, par.streams, strict=True):
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.confidence, b.confidence)
        np.testing.assert_array_equal(a.time_s, b.time_s)


# ------------------------------------------------------------------------------------------------ who is tracked
def test_walker_crosses_the_image(walker: Session, jumper: Session) -> None:
    hip = _hip(walker.stream("demo.pose2d").data)
    x = hip[np.isfinite(hip[:, 0]), 0]
    travel = (x.max() - x.min()) / WIDTH
    assert travel > 0.4, travel
    assert x[0] - x[-1] > 0.6 * WIDTH  # she walks from right to left
    sel = walker.stream("demo.pose2d").meta["person_selection"]
    assert sel["requested"] == "walker" and "horizontally" in sel["rule"]
    assert sel["selected"]["hip_x_travel_fraction_of_width"] > 0.4
    assert len(sel["tracked_ranges_s"]) >= 1
    # the other person (on the roof, then flipping) does not cross the image in the track picked in frame 0
    hj = _hip(jumper.stream("demo.pose2d").data)
    xj = hj[np.isfinite(hj[:, 0]), 0]
    assert (xj.max() - xj.min()) / WIDTH < 0.2


def test_point_in_first_frame_picks_the_other_person(walker: Session, jumper: Session) -> None:
    hw, hj = _hip(walker.stream("demo.pose2d").data), _hip(jumper.stream("demo.pose2d").data)
    assert np.isfinite(hj[0, 0]) and not np.isfinite(hw[0, 0])  # only the roof person is there at t = 0
    assert abs(hj[0, 0] - JUMPER_POINT[0]) < 100 and hj[0, 1] < 400  # on the roof, high in the image
    both = np.isfinite(hw[:, 0]) & np.isfinite(hj[:, 0])
    if both.any():
        assert np.min(np.linalg.norm(hw[both] - hj[both], axis=1)) > 200
    sel = jumper.stream("demo.pose2d").meta["person_selection"]
    assert sel["requested"] == list(JUMPER_POINT) and sel["reference_frame"]["index"] == 0
    assert sel["selected"]["id"] != walker.stream("demo.pose2d").meta["person_selection"]["selected"]["id"]


def _cand(x: float, y: float, size: float = 400.0) -> vm._Candidate:
    """A synthetic upright person with the hip centre at (x, y)."""
    xy = np.zeros((33, 2))
    xy[:, 0] = x + np.linspace(-40, 40, 33)
    xy[:, 1] = y + np.linspace(-200, 200, 33)
    xy[[23, 24]] = (x, y)
    return vm._Candidate(xy=xy, visibility=np.ones(33), world=np.zeros((33, 3)), score=0.9, size_px=size)


def test_tracking_and_selection_rules() -> None:
    """Two people: A walks 1000 px to the left, B jumps in place; then A crosses B's column below him."""
    n = 60
    times = np.arange(n) / 30.0
    cands = []
    for f in range(n):
        a = _cand(1500.0 - f * 1000.0 / n, 700.0)
        b = _cand(700.0, 250.0 - 40.0 * abs(math.sin(f / 3.0)))
        frame = [b, a] if f % 2 else [a, b]
        if f in (20, 21, 22):
            frame = [b]  # A unseen for three frames
        cands.append(frame)
    tracks = vm._track(cands, times)
    long_tracks = [tr for tr in tracks if len(tr.frames) >= 5]
    assert len(long_tracks) == 2
    chosen, info = vm._select(tracks, cands, times, WIDTH, "walker", Path("x.mp4"))
    assert len(chosen.frames) == n - 3 and info["selected"]["hip_x_travel_px"] > 800
    chosen, info = vm._select(tracks, cands, times, WIDTH, (700.0, 250.0), Path("x.mp4"))
    assert len(chosen.frames) == n and info["selected"]["hip_x_travel_px"] < 1
    chosen, info = vm._select(tracks, cands, times, WIDTH, (1400.0, 450.0, 1600.0, 950.0), Path("x.mp4"))
    assert info["selected"]["hip_x_travel_px"] > 800 and info["iou"] > 0
    with pytest.raises(ValidationError, match=r"no person contains the point \(100, 100\)"):
        vm._select(tracks, cands, times, WIDTH, (100.0, 100.0), Path("x.mp4"))


# ------------------------------------------------------------------------------------------------ scale
def test_scale_from_height_and_calibration(walker: Session) -> None:
    meta = walker.stream("demo.pose2d").meta
    est = meta["scale_estimates"]
    h, c = est["subject_height"], est["calibration"]
    # a 1.65 m person ~400 px tall in a 994 px high frame, ~10 m from the camera
    assert 0.0030 < h["m_per_px"] < 0.0050 and h["n_frames"] >= 30 and 0 < h["sd_m_per_px"] < 0.1 * h["m_per_px"]
    assert 0.0030 < c["m_per_px"] < 0.0050 and 8.0 < c["details"]["depth_m"] < 12.0
    assert abs(h["m_per_px"] / c["m_per_px"] - 1) < 0.25, (h["m_per_px"], c["m_per_px"])
    assert meta["scale"]["method"] == "calibration" and meta["scale_m_per_px"] == c["m_per_px"]
    assert meta["scale_method"] == "calibration"


def test_scale_that_cannot_be_estimated_warns() -> None:
    from fusionlab.exceptions import FusionlabWarning

    xy, vis = np.full((10, 33, 2), np.nan), np.full((10, 33), np.nan)
    warn_list: list[str] = []
    with pytest.warns(FusionlabWarning, match="only 0 frames show the subject upright"):
        scales = vm._scales(xy, vis, (WIDTH, HEIGHT), 1.7, None, warn_list)
    assert scales["scale"] is None and scales["scale_m_per_px"] is None and "error" in scales["scale_estimates"][
        "subject_height"] and warn_list
    with pytest.raises(ValidationError, match="Invalid value for 'subject_height_m'"):
        vm._scales(xy, vis, (WIDTH, HEIGHT), 170.0, None, [])


def test_calibration_scale_exact_on_a_synthetic_camera(tmp_path: Path) -> None:
    """Feet on the floor 8 m in front of a camera 1.5 m high, looking horizontally: m/px = 8 / f."""
    import cv2

    f_px, width, height = 1500.0, 1600, 900
    K = np.array([[f_px, 0, width / 2], [0, f_px, height / 2], [0, 0, 1]])
    # world: z up, camera at (0, 0, 1.5) looking along +y; camera axes x = world x, y = -world z, z = world y
    R = np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]])
    t = -R @ np.array([0.0, 0.0, 1.5])
    rvec = cv2.Rodrigues(R)[0].ravel()
    toml = tmp_path / "calib.toml"
    toml.write_text(f"""[cam_side]
name = "cam_side"
size = [{width}, {height}]
matrix = {K.tolist()}
distortions = [0.0, 0.0, 0.0, 0.0]
rotation = {rvec.tolist()}
translation = {t.tolist()}
fisheye = false
""")
    cal = vm.read_calibration(toml, "cam0")  # one camera: its name need not match
    feet_world = np.array([[x, 8.0, 0.0] for x in np.linspace(-2, 2, 20)])
    proj, _ = cv2.projectPoints(feet_world, rvec, t, K, np.zeros(4))
    xy = np.full((20, 33, 2), np.nan)
    xy[:, :, :] = proj.reshape(20, 1, 2)
    est = vm.scale_from_calibration(xy, np.ones((20, 33)), cal)
    assert est.m_per_px == pytest.approx(8.0 / f_px, rel=1e-9) and est.details["camera_height_m"] == pytest.approx(1.5)
    # a video at half the calibrated resolution: intrinsics scaled, the metric size of a pixel doubles
    half = vm.read_calibration(toml, frame_size_px=(width // 2, height // 2))
    assert half.matrix[0, 0] == pytest.approx(f_px / 2)
    with pytest.raises(ValidationError, match="another aspect ratio"):
        vm.read_calibration(toml, frame_size_px=(width, width))
    two = tmp_path / "two.toml"
    two.write_text(toml.read_text() + toml.read_text().replace("[cam_side]", "[cam_front]"))
    with pytest.raises(ValidationError, match="Allowed values are cam_front, cam_side"):
        vm.read_calibration(two, "cam9")
    bad = tmp_path / "bad.toml"
    bad.write_text("[cam]\nmatrix = [1, 2]\n")
    with pytest.raises(FileFormatError, match=r"missing or non-numeric|expected a 3x3"):
        vm.read_calibration(bad)


# ------------------------------------------------------------------------------------------------ cache
def test_cache_hit_runs_no_inference(walker: Session, demo: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    session_path = tmp_path / "s.h5"
    save_session(walker, session_path)

    def no_inference(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("inference ran although the session holds this video's pose")

    monkeypatch.setattr(vm, "_analyse_video", no_inference)
    again = vm.cached_or_compute(session_path, demo, subject_height_m=HEIGHT_M, calibration=shared_path(CALIB))
    for name in ("demo.pose2d", "demo.pose3d"):
        a, b = walker.stream(name), again.stream(name)
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.time_s, b.time_s)
        assert b.meta["cache"]["hit"] and b.meta["sha256"] == a.meta["sha256"]
    assert again.stream("demo.pose2d").meta["scale_m_per_px"] == pytest.approx(
        walker.stream("demo.pose2d").meta["scale_m_per_px"])
    with open_session(session_path) as r:  # a hit writes nothing
        assert sorted(r.stream_names) == ["demo.pose2d", "demo.pose3d"]
    # another prefix and scale options: still no inference (the scale is recomputed from the stored pixels)
    renamed = vm.read_video_pose(demo, session_path=session_path, prefix="side.", subject_height_m=1.8)
    assert [s.name for s in renamed.streams] == ["side.pose2d", "side.pose3d"]
    assert renamed.streams[0].meta["scale"]["method"] == "subject_height"
    # another person rule is another analysis: the cache must miss
    with pytest.raises(AssertionError, match="inference ran"):
        vm.read_video_pose(demo, session_path=session_path, person=JUMPER_POINT)


def test_ingest_finds_the_video_reader_and_uses_the_cache(walker: Session, demo: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from fusionlab.adapters import find_adapter
    from fusionlab.ingest import ingest

    assert find_adapter(demo).name == "video_mediapipe"
    session_path = tmp_path / "s.h5"
    save_session(walker, session_path)

    def no_inference(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("inference ran although the session holds this video's pose")

    monkeypatch.setattr(vm, "_analyse_video", no_inference)
    # re-ingest with another height: the stored landmarks are reused, the scale recomputed
    report = ingest([demo], session_path, overwrite=True, isolate=False, reader_options={"subject_height_m": 1.80})
    assert sorted(report.streams) == ["demo.pose2d", "demo.pose3d"]
    with open_session(session_path) as r:
        st = r.read_stream("demo.pose2d")
    assert st.meta["cache"]["hit"]
    np.testing.assert_array_equal(st.data, walker.stream("demo.pose2d").data)
    assert st.meta["scale"]["method"] == "subject_height"
    assert st.meta["scale_m_per_px"] == pytest.approx(
        walker.stream("demo.pose2d").meta["scale_estimates"]["subject_height"]["m_per_px"] * 1.80 / HEIGHT_M,
        rel=1e-9)


def test_persist_round_trip(walker: Session, tmp_path: Path) -> None:
    out = tmp_path / "s.h5"
    save_session(walker, out)
    back = load_session(out)
    for st in walker.streams:
        got = back.stream(st.name)
        np.testing.assert_array_equal(got.data, st.data)
        np.testing.assert_array_equal(got.time_s, st.time_s)
        np.testing.assert_allclose(got.confidence, st.confidence, atol=1e-6)  # stored as float32
        assert got.frame == st.frame and got.units == st.units and got.meta["inference_key"] == st.meta["inference_key"]
    assert back.clocks[walker.streams[0].clock].method == "unsynchronised"


# ------------------------------------------------------------------------------------------------ bad input
def _bad_files(tmp: Path, demo: Path) -> dict[str, Path]:
    raw = demo.read_bytes()
    files = {
        "not a readable video file": ("text.mp4", b"hello, this is not a video\n"),
        "cannot open it": ("random.mp4", np.random.default_rng(1).integers(0, 256, 65536, dtype=np.uint8).tobytes()),
        "truncated video: the container announces 230 frames but holds data for only": ("half.mp4", raw[:2_000_000]),
        "cannot be decoded .*truncated": ("header.mp4", raw[:300]),
        "empty": ("empty.mp4", b""),
    }
    out = {}
    for match, (name, data) in files.items():
        (tmp / name).write_bytes(data)
        out[match] = tmp / name
    return out


def test_bad_files(demo: Path, tmp_path: Path) -> None:
    for match, path in _bad_files(tmp_path, demo).items():
        with pytest.raises(FileFormatError, match=match) as info:
            vm.read_video_pose(path)
        assert info.value.path == str(path)


def test_no_person_at_all(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [np.full((240, 320, 3), 90, np.uint8) + rng.integers(0, 20, (240, 320, 3), dtype=np.uint8)
              for _ in range(8)]
    path = tmp_path / "empty_scene.mp4"
    _make_clip(path, frames, [40 * k for k in range(8)])
    with pytest.raises(FileFormatError, match="no person found in any of the 8 frames"):
        vm.read_video_pose(path)


def test_invalid_options(demo: Path) -> None:
    with pytest.raises(ValidationError, match="Invalid value for 'person'"):
        vm.read_video_pose(demo, person="runner")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Invalid value for 'person'"):
        vm.read_video_pose(demo, person=(1.0, 2.0, 3.0))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="Invalid value for 'workers'"):
        vm.read_video_pose(demo, workers=0)
    with pytest.raises(ValidationError, match="Invalid value for 'model_complexity'"):
        vm.read_video_pose(demo, model_complexity=3)
    import mediapipe

    if not (Path(mediapipe.__file__).parent / "modules/pose_landmark/pose_landmark_lite.tflite").exists():
        with pytest.raises(ValidationError, match="not installed"):  # never downloaded
            vm.read_video_pose(demo, model_complexity=0)
