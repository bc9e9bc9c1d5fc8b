"""Coordinate frames used in sessions.

Every stream names its frame in the ``frame`` attribute. Frame names are families with an optional instance:

``lab``
    The motion-capture laboratory frame of the source file, as the capture system defined it (right-handed,
    origin and axes set by the lab's calibration). C3D files declare which axis points up in
    ``POINT:Y_SCREEN``/``TRIAL:Z_DIRECTION``; the adapter records that as ``lab_up_axis`` in the stream metadata.
    fusionlab never rotates raw marker data; later stages detect the walking direction themselves.
``plate:<n>``
    Force plate ``n`` (1-based, as in the C3D ``FORCE_PLATFORM`` group). Forces, moments and centre of pressure
    computed by ezc3d are expressed in the **lab** frame (ezc3d rotates them with the plate corners), so the
    force-plate streams from C3D have ``frame = "lab"``; the plate's corners and origin are kept as attributes.
    Plate exports without corner information (text files) are in ``plate:<n>``: x and y in the plate's top
    surface, z down into the plate for AMTI/Bertec/Kistler conventions (the reaction force on the foot is then
    ``-F``); the adapter states the sign convention it found in the stream metadata.
``sensor:<id>``
    An IMU's own axes, as printed on the housing (right-handed); accelerometer includes gravity
    (+9.81 m/s² along the axis pointing up when at rest).
``image:<camera>``
    Video pixel coordinates: x to the right, y down, origin at the top-left pixel corner, in pixels.
``world:<camera>``
    MediaPipe world landmarks: metres, origin between the hips, y down (MediaPipe convention).
``segment:<name>``
    A body segment's anatomical frame (e.g. ``segment:left_shank``): x anterior, y up (proximal), z to the
    subject's right, as built from markers by `fusionlab.kinematics` and used by simulated IMUs.
``joint:<plane>``
    Joint angles in an anatomical plane (``joint:sagittal``: flexion/dorsiflexion positive, rad), computed in the
    pelvis-based sagittal plane of `fusionlab.kinematics`.
``none``
    Scalars without a spatial frame (analog voltages, EMG, triggers).
"""

from __future__ import annotations

from typing import NamedTuple

from fusionlab.exceptions import FrameError

__all__ = ["FRAME_FAMILIES", "FrameInfo", "check_frame", "frame_family"]


class FrameInfo(NamedTuple):
    """Description of a frame family."""

    family: str
    units: str
    description: str


FRAME_FAMILIES: dict[str, FrameInfo] = {
    "lab": FrameInfo("lab", "m", "laboratory frame of the capture system (right-handed)"),
    "plate": FrameInfo("plate", "m", "force-plate frame: x, y in the top surface, z into the plate"),
    "sensor": FrameInfo("sensor", "SI", "IMU housing axes (right-handed), accelerometer includes gravity"),
    "image": FrameInfo("image", "px", "image pixels: x right, y down, origin top-left"),
    "world": FrameInfo("world", "m", "pose-estimator world frame (MediaPipe: origin mid-hip, y down)"),
    "segment": FrameInfo("segment", "m", "body segment frame: x anterior, y proximal, z right"),
    "joint": FrameInfo("joint", "rad", "joint angles in an anatomical plane (flexion positive)"),
    "none": FrameInfo("none", "-", "no spatial frame"),
}


def frame_family(frame: str) -> str:
    """Return the family of a frame name (``"sensor:left_foot"`` -> ``"sensor"``)."""
    return frame.split(":", 1)[0]


def check_frame(frame: str) -> str:
    """Validate a frame name and return it.

    Raises
    ------
    FrameError
        If the family is not one of `FRAME_FAMILIES`.
    """
    family = frame_family(frame)
    if family not in FRAME_FAMILIES:
        allowed = ", ".join(FRAME_FAMILIES)
        msg = f"Invalid value for 'frame'. Allowed families are {allowed}, but got {frame!r} instead."
        raise FrameError(msg)
    return frame
