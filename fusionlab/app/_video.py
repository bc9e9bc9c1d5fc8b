"""The session page's video frame: the frame on display at a session time, with the pose landmarks drawn on it.

Pure functions and one small server-side cache; no Dash here, so it is unit-tested without a browser.

* `pose_videos`: the ``video_pose`` streams (image landmarks) of a session whose source video is found (the recorded
  path, else a file of that name beside the session: `fusionlab.viewer._data.find_video`), as viewer `PoseTrack`s.
* `draw_pose`: the 33 landmarks and the skeleton (`POSE_CONNECTIONS`) burnt into an RGB image.
* `encode_jpeg`: an RGB image as JPEG bytes (PyAV's MJPEG encoder; no imaging library needed).
* `FrameServer`: decodes with the viewer's `VideoFrames` (PyAV, presentation timestamps, forward decoding), one
  decoder per video behind a lock (the web server is threaded), and keeps the last encoded frames.
* `cursor_time`: the session time a page event points at (the mouse over the plots, a clicked conflict).
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.viewer._data import POSE_CONNECTIONS, PoseTrack, VideoFrames, find_video

__all__ = ["FrameServer", "VideoFrame", "cursor_time", "draw_pose", "encode_jpeg", "pose_videos"]

POSE_RGB = (0, 230, 118)  # landmarks and bones
JOINT_RADIUS_PX = 3
BONE_RADIUS_PX = 1


def pose_videos(path: str | os.PathLike[str]) -> list[PoseTrack]:
    """The image-landmark ``video_pose`` streams of a session whose video file is found, in stream order.

    A stream counts when its frame is ``image:<camera>``, its data is ``(n, 33, >=2)`` pixels and its source video
    (``meta["source"]``, as recorded by the video adapter) exists at the recorded path or beside the session.
    """
    from fusionlab.persist import open_session

    path = Path(path)
    out = []
    with open_session(path) as r:
        for name in r.stream_names:
            info = r.stream_info(name)
            if info["modality"] != "video_pose" or not str(info["frame"]).startswith("image:"):
                continue
            if info["n_samples"] == 0:
                continue
            meta = info["meta"]
            source = str(meta.get("source", ""))
            video = find_video(path, source)
            if video is None:
                continue
            s = r.read_stream(name)
            if s.data.ndim != 3 or s.data.shape[2] < 2:
                continue
            size = tuple(int(v) for v in meta.get("frame_size_px", (0, 0)))
            out.append(PoseTrack(stream=name, camera=str(info["frame"]).split(":", 1)[1],
                                 time_s=np.asarray(s.times(), dtype=np.float64),
                                 session_time_s=np.asarray(r.to_session_time(s), dtype=np.float64),
                                 xy=np.asarray(s.data[:, :, :2], dtype=np.float64),
                                 frame_size_px=(size[0], size[1]), video=video, source_name=source))
    return out


def _stamp(img: NDArray[np.uint8], x: NDArray[np.float64], y: NDArray[np.float64], radius: int,
           color: tuple[int, int, int]) -> None:
    """Paint a filled disc of ``radius`` px at every ``(x, y)`` (clipped to the image)."""
    r = int(radius)
    oy, ox = np.mgrid[-r:r + 1, -r:r + 1]
    disc = ox**2 + oy**2 <= r * r + r  # a slightly fuller disc reads better at small radii
    ox, oy = ox[disc], oy[disc]
    xs = (np.rint(x)[:, None] + ox[None, :]).ravel().astype(np.int64)
    ys = (np.rint(y)[:, None] + oy[None, :]).ravel().astype(np.int64)
    h, w = img.shape[:2]
    ok = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    img[ys[ok], xs[ok]] = color


def draw_pose(img: NDArray[np.uint8], xy: NDArray[np.float64], *, color: tuple[int, int, int] = POSE_RGB,
              joint_radius: int = JOINT_RADIUS_PX, bone_radius: int = BONE_RADIUS_PX) -> NDArray[np.uint8]:
    """A copy of ``img`` (``(h, w, 3)`` uint8 RGB) with the landmarks ``xy`` (``(33, 2)`` px, NaN = not seen) as
    dots and the skeleton's bones (`POSE_CONNECTIONS`) as lines between landmarks that are both seen."""
    out = np.array(img, dtype=np.uint8, copy=True)
    xy = np.asarray(xy, dtype=np.float64)
    ok = np.isfinite(xy).all(axis=1)
    for a, b in POSE_CONNECTIONS:
        if a < len(xy) and b < len(xy) and ok[a] and ok[b]:
            n = int(max(abs(xy[b, 0] - xy[a, 0]), abs(xy[b, 1] - xy[a, 1]), 1.0)) + 1
            f = np.linspace(0.0, 1.0, n)
            _stamp(out, xy[a, 0] + f * (xy[b, 0] - xy[a, 0]), xy[a, 1] + f * (xy[b, 1] - xy[a, 1]), bone_radius,
                   color)
    if ok.any():
        _stamp(out, xy[ok, 0], xy[ok, 1], joint_radius, color)
    return out


def encode_jpeg(img: NDArray[np.uint8], *, quality: int = 5) -> bytes:
    """JPEG bytes of an RGB image ``(h, w, 3)`` uint8 (PyAV's MJPEG encoder; ``quality`` is FFmpeg's qscale,
    2 = best ... 31 = worst)."""
    import av

    h, w = img.shape[:2]
    cc = av.CodecContext.create("mjpeg", "w")
    cc.width, cc.height = w, h
    cc.pix_fmt = "yuvj420p"
    cc.time_base = Fraction(1, 25)
    cc.qmin = cc.qmax = int(quality)  # a fixed quantiser (the rate control has no target for a single frame)
    frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img[:, :, :3]), format="rgb24").reformat(
        format="yuvj420p")
    frame.pts = 0
    return b"".join(bytes(p) for p in (*cc.encode(frame), *cc.encode(None)))


@dataclass
class VideoFrame:
    """One served frame: JPEG bytes and what it shows."""

    jpeg: bytes
    stream: str
    camera: str
    index: int
    n_frames: int
    video_time_s: float
    session_time_s: float
    video_name: str

    def caption(self) -> str:
        """One line for the page."""
        return _caption(self.camera, self.index, self.n_frames, self.session_time_s, self.video_name,
                        self.video_time_s, self.stream)


def _caption(camera: str, i: int, n: int, t_session: float, video: str, t_video: float, stream: str) -> str:
    return (f"{camera}: frame {i + 1}/{n} at {t_session:.3f} s (video {video} at {t_video:.3f} s); "
            f"landmarks of {stream}")


class FrameServer:
    """Frames of the sessions' videos, decoded on demand and cached (per app; thread-safe).

    ``pose_videos`` results are kept per session file (modification time and size in the key), one `VideoFrames`
    decoder per video file (each behind its own lock: decoding is sequential per file), and the last
    ``cache_frames`` encoded JPEGs.
    """

    def __init__(self, *, cache_frames: int = 256, max_decoders: int = 4) -> None:
        self.cache_frames = cache_frames
        self.max_decoders = max_decoders
        self._lock = threading.Lock()
        self._poses: OrderedDict[tuple[Any, ...], list[PoseTrack]] = OrderedDict()
        self._decoders: OrderedDict[Path, tuple[threading.Lock, VideoFrames]] = OrderedDict()
        self._jpegs: OrderedDict[tuple[Any, ...], VideoFrame] = OrderedDict()

    def poses(self, path: str | os.PathLike[str]) -> list[PoseTrack]:
        """`pose_videos` of a session (cached until the file changes)."""
        path = Path(path)
        st = path.stat()
        key = (str(path), st.st_mtime_ns, st.st_size)
        with self._lock:
            if key in self._poses:
                self._poses.move_to_end(key)
                return self._poses[key]
        found = pose_videos(path)
        with self._lock:
            self._poses[key] = found
            while len(self._poses) > 16:
                self._poses.popitem(last=False)
        return found

    def _decoder(self, video: Path) -> tuple[threading.Lock, VideoFrames]:
        with self._lock:
            if video in self._decoders:
                self._decoders.move_to_end(video)
                return self._decoders[video]
            entry = (threading.Lock(), VideoFrames(video))
            self._decoders[video] = entry
            while len(self._decoders) > self.max_decoders:
                _, (lock, old) = self._decoders.popitem(last=False)
                with lock:
                    old.close()
            return entry

    def frame(self, path: str | os.PathLike[str], t_session: float, *, camera: int = 0) -> VideoFrame | None:
        """The frame on display at session time ``t_session`` (the last frame at or before it; the first frame
        before the video starts) of the ``camera``-th pose video of the session, landmarks drawn; None when the
        session has no such video."""
        poses = self.poses(path)
        if not 0 <= camera < len(poses) or not math.isfinite(t_session):
            return None
        pose = poses[camera]
        i = pose.frame_index(float(t_session))
        key = (str(pose.video), pose.stream, i)
        with self._lock:
            if key in self._jpegs:
                self._jpegs.move_to_end(key)
                return self._jpegs[key]
        assert pose.video is not None  # pose_videos keeps only streams whose video was found
        lock, frames = self._decoder(pose.video)
        t_video = float(pose.time_s[i])
        with lock:
            img = frames.frame(t_video)
        out = VideoFrame(encode_jpeg(draw_pose(img, pose.xy[i])), pose.stream, pose.camera, i, len(pose.time_s),
                         t_video, float(pose.session_time_s[i]), pose.video.name)
        with self._lock:
            self._jpegs[key] = out
            while len(self._jpegs) > self.cache_frames:
                self._jpegs.popitem(last=False)
        return out

    def caption(self, path: str | os.PathLike[str], t_session: float, *, camera: int = 0) -> str | None:
        """What `frame` would show at ``t_session``, in one line, without decoding (None: no such video)."""
        poses = self.poses(path)
        if not 0 <= camera < len(poses) or not math.isfinite(t_session):
            return None
        p = poses[camera]
        i = p.frame_index(float(t_session))
        return _caption(p.camera, i, len(p.time_s), float(p.session_time_s[i]), p.video.name if p.video else "",
                        float(p.time_s[i]), p.stream)

    def close(self) -> None:
        """Close every open video."""
        with self._lock:
            for lock, frames in self._decoders.values():
                with lock:
                    frames.close()
            self._decoders.clear()


def cursor_time(trigger: str | None, cursor: Mapping[str, Any] | None = None,
                view: Mapping[str, Any] | None = None) -> float | None:
    """The session time (s) an event of the session page points at, or None (leave the frame as it is).

    ``trigger`` names the input that fired: ``"cursor"`` (the mouse over the plots: ``{"t": s}``, written by
    ``assets/cursor.js``) or ``"view"`` (the page's view state: after a click on a conflict it holds ``cursor``, the
    start of the conflict; a plain zoom or pan holds none).
    """
    if trigger == "cursor":
        x = (cursor or {}).get("t")
    elif trigger == "view":
        x = (view or {}).get("cursor")
    else:
        return None
    if isinstance(x, bool):
        return None
    try:
        t = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return t if math.isfinite(t) else None
