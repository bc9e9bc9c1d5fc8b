"""Virtual IMUs and camera built from real markers: the simulated signals carry the truth they claim."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d
from fusionlab.exceptions import ValidationError
from fusionlab.kinematics import joint_centres, segment_angle
from fusionlab.persist import save_session
from fusionlab.simulate import (DEFAULT_IMUS, MEDIAPIPE_LANDMARKS, Fault, ImuNoise, simulate_session, virtual_camera,
                                virtual_imu)
from fusionlab.sync import synchronize_session
from tests.conftest import shared_path

TRIAL = "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"


@pytest.fixture(scope="module")
def trial():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(shared_path(TRIAL), prefix="")


def test_virtual_shank_gyro_is_the_shank_rotation_rate(trial) -> None:
    m = trial.stream("markers")
    noise = ImuNoise()
    imu, truth = virtual_imu(m, "left_shank", np.random.default_rng(0), noise=noise)
    c = joint_centres(m)
    shank = np.unwrap(segment_angle(c["left_ankle"] - c["left_knee"], c["anterior"], c["up"]))
    rate = np.gradient(shank, m.times())
    ok = np.isfinite(rate) & np.isfinite(truth["gyr"][:, 2])
    # the sagittal rotation is about the segment's medio-lateral (z) axis
    assert np.corrcoef(truth["gyr"][ok, 2], rate[ok])[0, 1] > 0.99
    assert np.nanstd(truth["gyr"][:, 2]) > 5 * np.nanstd(truth["gyr"][:, 0])
    # errors as configured: measured - truth - bias is white noise of the stated SD
    resid = imu.channel("gyr") - truth["gyr"] - truth["gyr_bias"]
    assert np.nanstd(resid) == pytest.approx(noise.gyr_noise_rad_s, rel=0.1)
    # specific force: gravity plus motion (|f| about g on average over walking)
    assert 8.5 < np.nanmedian(np.linalg.norm(truth["acc"], axis=1)) < 12.0


def test_bias_jump_and_video_swap_are_where_they_were_put(trial) -> None:
    m = trial.stream("markers")
    t = m.times()
    jump = Fault("imu_bias_jump", start_s=t[0] + 2.0, duration_s=1.0, target="left_shank", magnitude=0.3)
    _, truth = virtual_imu(m, "left_shank", np.random.default_rng(1), bias_jump=jump)
    inside = (t >= jump.start_s) & (t < jump.start_s + 1.0)
    step = np.median(truth["gyr_bias"][inside, 2]) - np.median(truth["gyr_bias"][(t < jump.start_s)
                                                                                  & (t > jump.start_s - 1), 2])
    assert step == pytest.approx(0.3, abs=0.02)
    swap = Fault("video_swap", start_s=t[0] + 1.5, duration_s=2.0)
    video, vt = virtual_camera(m, np.random.default_rng(2), swap=swap)
    w = (vt["t"] >= swap.start_s) & (vt["t"] < swap.start_s + 2.0)
    li, ri = MEDIAPIPE_LANDMARKS.index("left_heel"), MEDIAPIPE_LANDMARKS.index("right_heel")
    ok = np.isfinite(video.data[:, li, 0]) & np.isfinite(vt["xy"][:, ri, 0])
    # inside the window the "left heel" is the right heel, outside it is the left heel
    err_swapped = np.abs(video.data[w & ok, li, 0] - vt["xy"][w & ok, ri, 0])
    err_normal = np.abs(video.data[~w & ok, li, 0] - vt["xy"][~w & ok, li, 0])
    assert np.median(err_swapped) < 10 and np.median(err_normal) < 10
    assert video.confidence is not None and np.all(video.confidence[np.isfinite(video.data[:, :, 0])] > 0)


def test_sync_finds_the_simulated_clock_offsets(trial, tmp_path: Path) -> None:
    s = simulate_session(trial, imu_offset_s=1.234, video_offset_s=-0.5, seed=3)
    assert {st.clock for st in s.streams} == {"sim:mocap", "sim:imu", "sim:video"}
    assert s.metadata["simulation"]["imu_offset_s"] == 1.234
    path = tmp_path / "sim.h5"
    save_session(s, path)
    report = synchronize_session(path, store=False)
    got = {r.clock: r for r in report.results}
    assert abs(got["sim:imu"].offset_s - 1.234) <= 0.005
    assert abs(got["sim:video"].offset_s + 0.5) <= max(0.010, 3 * got["sim:video"].offset_sd_s)


def test_default_placements_and_checked_options(trial) -> None:
    s = simulate_session(trial, video=False, include_truth=False)
    assert s.metadata["simulation"]["imus"] == list(DEFAULT_IMUS) and s.metadata["simulation"]["notes"] == []
    # the pelvis and feet only (knee markers removed): the defaults fall back to the feet, with a note
    feet = dataclasses.replace(trial.stream("markers"), channels=tuple(
        "XKNE_" + c if c.upper() in ("LKNE", "RKNE") else c for c in trial.stream("markers").channels))
    no_knees = dataclasses.replace(trial, streams=(feet,))
    s = simulate_session(no_knees, video=False, include_truth=False)
    assert s.metadata["simulation"]["imus"] == ["left_foot", "right_foot"]
    assert "no IMU on left_shank" in s.metadata["simulation"]["notes"][0]
    with pytest.raises(ValidationError, match=r"left_shank \(left_shank: needs the left knee"):
        simulate_session(no_knees, imus=("left_shank",))
    for kw, match in (({"fps": 0.0}, "'fps'"), ({"fps": float("nan")}, "'fps'"), ({"imu_offset_s": np.inf}, "offset"),
                      ({"seed": -2}, "'seed'"), ({"faults": (Fault("imu_bias_jump", 1.0, target="x"),)}, "'x'")):
        with pytest.raises(ValidationError, match=match):
            simulate_session(trial, **kw)
