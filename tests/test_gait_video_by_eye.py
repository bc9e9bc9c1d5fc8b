"""GaitVideo on the real demo video against foot strikes and foot-offs annotated by eye from its frames.

Reference: ``tests/data/video_demo_events_by_eye.csv`` (see its header and ``docs/gait-video-by-eye.md``): every
heel strike and toe-off of the walker in ``video/sports2d/demo.mp4``, read frame by frame from zoomed crops of the
feet, with a per-event uncertainty in frames (1, or 2 where the foot is at the image edge or the toe-off is
ambiguous in the grass). Times are the frames' container timestamps, the same clock as the pose stream.
"""

from __future__ import annotations

import csv
import itertools
from pathlib import Path

import numpy as np
import pytest

from fusionlab.gait._validate import event_metrics, match_events
from fusionlab.gait._video import GaitVideo
from fusionlab.model import Event, Session, Stream
from tests.conftest import shared_path

BY_EYE = Path(__file__).parent / "data" / "video_demo_events_by_eye.csv"
FRAME_S = 1 / 30  # demo.mp4: constant 30 fps (PTS step 512/15360 s)
TOLERANCE_S = 0.1  # matching window, same as the project's event validation


def _by_eye() -> tuple[list[Event], dict[float, int]]:
    """The annotations as events on the camera clock, and the uncertainty (frames) of each, keyed by time."""
    lines = [ln for ln in BY_EYE.read_text().splitlines() if not ln.startswith("#")]
    events, unc = [], {}
    for row in csv.DictReader(lines):
        t = float(row["time_s"])
        events.append(Event(time_s=t, kind=row["kind"], side=row["side"], source="annotation", clock="cam",
                            detector=BY_EYE.name))
        unc[t] = int(row["uncertainty_frames"])
    return events, unc


@pytest.fixture(scope="module")
def demo_session() -> Session:
    # same reading as tests/test_gait_video.py (MediaPipe pose of the walker, ~6 s)
    from fusionlab.adapters.video_mediapipe import read_video_pose

    return read_video_pose(shared_path("video/sports2d/demo.mp4"), subject_height_m=1.65)


@pytest.fixture(scope="module")
def detected(demo_session: Session) -> tuple[list[Event], tuple[float, float]]:
    """The detector's events and the span where it followed the walker (outside its gaps)."""
    pose: Stream = next(s for s in demo_session.streams if s.name.endswith("pose2d"))
    res = GaitVideo().detect_stream(pose)
    runs = res.meta["walking_direction"]
    return list(res.events), (min(r["start_s"] for r in runs), max(r["end_s"] for r in runs))


def _strikes(events: list[Event]) -> list[float]:
    return sorted(e.time_s for e in events if e.kind == "foot_strike")


def _cadence(strikes: list[float]) -> float:
    """Steps per minute between the first and the last strike."""
    return 60.0 * (len(strikes) - 1) / (strikes[-1] - strikes[0])


def test_by_eye_annotations_are_consistent() -> None:
    """The reference itself: strikes alternate, 17 events, frame times on the 30 fps grid."""
    ref, unc = _by_eye()
    assert len(ref) == 17
    fs = sorted((e for e in ref if e.kind == "foot_strike"), key=lambda e: e.time_s)
    assert len(fs) == 9
    assert all(a.side != b.side for a, b in itertools.pairwise(fs))
    assert all(abs(e.time_s / FRAME_S - round(e.time_s / FRAME_S)) < 1e-3 for e in ref)
    assert set(unc.values()) <= {1, 2}


def test_step_count_and_cadence_match_by_eye(detected: tuple[list[Event], tuple[float, float]]) -> None:
    """Strike count within +-1 of the by-eye count; cadence over the same strikes within the annotation error.

    Cadence tolerance: the span between the first and the last strike is read by eye to within the sum of those
    two strikes' uncertainties (1 + 2 frames here), so cadence is known to about c * (u_first + u_last) / span:
    97.7 * 3 / 129 frames = 2.3 steps/min.
    """
    events, _ = detected
    ref, unc = _by_eye()
    det_fs, ref_fs = _strikes(events), _strikes(ref)
    assert abs(len(det_fs) - len(ref_fs)) <= 1, (len(det_fs), len(ref_fs))
    # cadence from the same span: by-eye strikes between the detector's first and last strike
    same = [t for t in ref_fs if det_fs[0] - TOLERANCE_S <= t <= det_fs[-1] + TOLERANCE_S]
    assert len(same) == len(det_fs)
    c_eye, c_det = _cadence(same), _cadence(det_fs)
    tol = c_eye * (unc[same[0]] + unc[same[-1]]) * FRAME_S / (same[-1] - same[0])
    print(f"cadence by eye {c_eye:.2f}, detector {c_det:.2f} steps/min (tolerance {tol:.2f})")
    assert 90 < c_eye < 105  # the annotations: steady 18-19 frames per step
    assert abs(c_det - c_eye) <= tol


def test_event_timing_and_sides_match_by_eye(detected: tuple[list[Event], tuple[float, float]]) -> None:
    """Matched (same side and kind, within 100 ms): median error <= 1 frame for strikes, <= 2 frames overall.

    By eye each event is the first frame where it has happened (half a frame late on average) and is good to
    +-1 frame; a toe leaving the grass is the harder of the two, so foot-offs are allowed 2 frames.
    """
    events, (t0, t1) = detected
    ref, _ = _by_eye()
    seen = [e for e in ref if t0 <= e.time_s <= t1]  # where the detector followed the walker
    m = match_events(events, seen, tolerance_s=TOLERANCE_S)
    metrics = event_metrics(m)
    err = {k: np.array([d.time_s - r.time_s for d, r in m.pairs if k in ("all", r.kind)]) / FRAME_S
           for k in ("foot_strike", "foot_off", "all")}
    print({k: (len(v), float(np.median(np.abs(v))), float(np.max(np.abs(v))), float(np.mean(v)))
           for k, v in err.items()},
          "missed", [(e.side, e.kind, round(e.time_s, 3)) for e in m.missed],
          "extra", [(e.side, e.kind, round(e.time_s, 3)) for e in m.extra])
    # strikes: every one found, none extra, within 1 frame (median) and 2 frames (max)
    assert metrics["foot_strike"]["recall"] == 1.0 and metrics["foot_strike"]["precision"] == 1.0
    assert np.median(np.abs(err["foot_strike"])) <= 1.0
    assert np.max(np.abs(err["foot_strike"])) <= 2.0
    # foot-offs and everything: median within 2 frames; recall and precision as in the virtual-camera tests
    assert np.median(np.abs(err["foot_off"])) <= 2.0
    assert np.median(np.abs(err["all"])) <= 2.0
    assert metrics["all"]["recall"] >= 0.85 and metrics["all"]["precision"] >= 0.85
    # left/right: no detected event lies nearer to a by-eye event of the same kind on the other side
    for d in events:
        near = min((r for r in ref if r.kind == d.kind), key=lambda r: abs(r.time_s - d.time_s))
        assert near.side == d.side, (d, near)
