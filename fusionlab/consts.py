"""Names shared across fusionlab: sensor placements, IMU channel names, their SI units and components.

Every adapter and algorithm uses these names, so that an IMU stream read from any format looks the same:
modality ``"imu"``, name ``<prefix><placement>``, data ``(n, k, 3)`` float64 with channels among `IMU_CHANNELS`
(in that order when present), units `IMU_UNITS`, components `XYZ`, frame ``"sensor:<placement>"``.
"""

from __future__ import annotations

__all__ = [
    "IMU_CHANNELS",
    "IMU_UNITS",
    "ORIENTATION_CHANNEL",
    "PLACEMENTS",
    "QUAT_COMPONENTS",
    "XYZ",
]

PLACEMENTS: tuple[str, ...] = (
    "left_foot",
    "right_foot",
    "left_shank",
    "right_shank",
    "left_thigh",
    "right_thigh",
    "pelvis",
    "lower_back",
    "trunk",
    "head",
    "left_wrist",
    "right_wrist",
    "unknown",
)
"""Where an IMU was worn. ``"unknown"`` when the file does not say and the user did not either."""

IMU_CHANNELS: tuple[str, ...] = ("acc", "gyr", "mag")
"""IMU channel names, in the order they appear in a stream (absent channels are skipped)."""

IMU_UNITS: dict[str, str] = {"acc": "m/s^2", "gyr": "rad/s", "mag": "T"}
"""SI unit of each IMU channel inside a session (accelerometer includes gravity)."""

XYZ: tuple[str, ...] = ("x", "y", "z")
"""Component names of vector channels (axis 2 of the data)."""

ORIENTATION_CHANNEL = "quat"
"""Channel name of an orientation quaternion (stream ``<prefix><placement>.orientation``)."""

QUAT_COMPONENTS: tuple[str, ...] = ("x", "y", "z", "w")
"""Quaternion components, scalar-last (scipy convention)."""

MEDIAPIPE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)
"""MediaPipe Pose's 33 landmarks, in MediaPipe's order (``mp.solutions.pose.PoseLandmark`` in snake_case): the
channels of every ``video_pose`` stream."""
