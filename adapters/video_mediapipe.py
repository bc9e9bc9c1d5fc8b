"""Video reader: MediaPipe Pose landmarks of one person, with container timestamps.

What is read
    For every decoded frame, the 33 MediaPipe Pose landmarks of the selected person: image coordinates (px) with
    their visibility as per-sample confidence (stream ``<prefix>pose2d``), and MediaPipe's world landmarks (m,
    origin between the hips; stream ``<prefix>pose3d``). Frames where the person was not found are NaN.
Model
    The legacy MediaPipe Pose graphs and models bundled in the ``mediapipe==0.10.21`` wheel, used offline: the
    BlazePose person detector (``pose_detection.tflite``) and the landmark model ``pose_landmark_full.tflite``
    (``model_complexity=1``). The wheel does not bundle the lite (0) and heavy (2) landmark models: MediaPipe's
    Python solution would download them at run time, so they are refused here unless the file is present.
Time
    ``time_s`` is each frame's presentation timestamp from the container (``frame.pts * time_base``, read with
    PyAV), never ``index / fps``: variable-frame-rate files keep their real times. The stream is irregular
    (``rate_hz=None``). Only a container without any timestamps falls back to ``index / nominal fps`` (with a
    warning, recorded in the metadata).
Several people
    MediaPipe Pose finds one person per image. Here every frame is searched for all people (the detector runs on
    overlapping square tiles, so that small people are found too), the landmark model runs on each person's
    region of interest, and the people are tracked across frames (hip centre, constant velocity, Hungarian
    assignment). The person is then chosen by a documented rule, see `read_video_pose`.
Speed
    Frames are analysed in fixed chunks of `CHUNK_FRAMES` frames that start afresh (detector on the first frame),
    so chunks are independent: one thread decodes and deals chunks round-robin to ``workers`` inference threads,
    each with its own MediaPipe graphs (MediaPipe releases the GIL while it computes), and decoding and inference
    overlap. Tracking runs afterwards, in frame order. ``workers=1`` is the plain sequential decode-then-infer
    loop; both give identical results.
Cache
    Pose results stored in a session carry an ``inference_key`` (video SHA-256, person rule, model, versions).
    `find_cached` / `cached_or_compute` / ``read_video_pose(session_path=...)`` reuse them instead of analysing a
    video again; the scale is recomputed from the stored pixels (cheap).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import queue
import re
import sys
import tempfile
import threading
import tomllib
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
from numpy.typing import NDArray

from fusionlab import __version__
from fusionlab.adapters._common import check_path, file_sha256, source_info, stream_prefix
from fusionlab.consts import MEDIAPIPE_LANDMARKS
from fusionlab.exceptions import FileFormatError, FusionlabWarning, ValidationError
from fusionlab.model import ClockEntry, Session, SourceInfo, Stream

__all__ = [
    "EYE_HEIGHT_PER_STATURE",
    "LANDMARK_NAMES",
    "CachedPose",
    "CameraCalibration",
    "ScaleEstimate",
    "VideoInfo",
    "cached_or_compute",
    "find_cached",
    "probe_video",
    "read_calibration",
    "read_frame_times",
    "read_video_pose",
    "scale_from_calibration",
    "scale_from_subject_height",
]

logger = logging.getLogger(__name__)

ADAPTER = "video_mediapipe"
ALGORITHM_VERSION = "1"  # bump when detection, tracking or selection change: invalidates cached results
LANDMARK_NAMES: tuple[str, ...] = MEDIAPIPE_LANDMARKS
"""MediaPipe Pose's 33 landmarks, in MediaPipe's order (`fusionlab.consts.MEDIAPIPE_LANDMARKS`)."""

_L = {name: i for i, name in enumerate(LANDMARK_NAMES)}
_EYES = (_L["left_eye"], _L["right_eye"])
_FEET = (_L["left_heel"], _L["right_heel"], _L["left_foot_index"], _L["right_foot_index"])
_HIPS = (_L["left_hip"], _L["right_hip"])
_SHOULDERS = (_L["left_shoulder"], _L["right_shoulder"])

EYE_HEIGHT_PER_STATURE = 0.936
"""Height of the eyes above the floor as a fraction of stature, standing: 0.936 (Drillis & Contini 1966, segment
lengths as fractions of body height, as reproduced in Winter, Biomechanics and Motor Control of Human Movement,
4th ed. 2009, Fig. 4.1)."""
EYE_HEIGHT_RATIO_REL_SD = 0.01
"""Assumed between-person relative SD of `EYE_HEIGHT_PER_STATURE` (1 %), added to the measurement spread."""
HEIGHT_PERCENTILE = 90.0
"""Per-frame eye-to-floor heights are summarised by this percentile: during gait the knee is flexed and the
pelvis lower for most of the cycle; near mid-stance the subject is closest to standing height."""
MIN_VISIBILITY = 0.5
UPRIGHT_MAX_DEG = 20.0
DETECTOR_INPUT_PX = 224  # input size of pose_detection.tflite
ROI_SCALE = 1.25  # MediaPipe PoseDetectionToRoi: box = 2 x |hip centre - scale point|, scaled by 1.25, square
MAX_PERSONS_PER_FRAME = 6
CHUNK_FRAMES = 15  # frames analysed in sequence by one thread (ROIs carried from frame to frame)
DETECT_EVERY_N_FRAMES = 5  # within a chunk, the person detector runs on frames 0, 5, 10 (and when nobody is tracked)
TRACK_MAX_GAP_S = 1.0
TRACK_MIN_FRAMES = 5
_MODEL_FILES = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite", 2: "pose_landmark_heavy.tflite"}
_VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm")

PersonRule = Literal["walker"] | tuple[float, float] | tuple[float, float, float, float]

_DETECTOR_GRAPH = """
input_stream: "image"
output_stream: "detections"
node {
  calculator: "PoseDetectionCpu"
  input_stream: "IMAGE:image"
  output_stream: "DETECTIONS:detections"
}
"""

_LANDMARK_GRAPH = """
input_stream: "image"
input_stream: "roi"
output_stream: "landmarks"
output_stream: "world_landmarks"
output_stream: "aux_landmarks"
node {
  calculator: "ConstantSidePacketCalculator"
  output_side_packet: "PACKET:model_complexity"
  options: { [mediapipe.ConstantSidePacketCalculatorOptions.ext]: { packet { int_value: {complexity} } } }
}
node {
  calculator: "PoseLandmarkByRoiCpu"
  input_side_packet: "MODEL_COMPLEXITY:model_complexity"
  input_stream: "IMAGE:image"
  input_stream: "ROI:roi"
  output_stream: "LANDMARKS:landmarks"
  output_stream: "AUXILIARY_LANDMARKS:aux_landmarks"
  output_stream: "WORLD_LANDMARKS:world_landmarks"
}
"""


# ---------------------------------------------------------------------------------------------------- containers
class VideoInfo(NamedTuple):
    """What the container says about the video stream (`probe_video`)."""

    width_px: int
    height_px: int
    n_frames_header: int  # 0 when the container does not say
    fps_nominal: float  # average frame rate declared by the container (NaN when unknown)
    time_base: Fraction | None
    codec: str
    container: str
    duration_s: float  # NaN when unknown


def _open_container(p: Path) -> Any:
    import av

    try:
        return av.open(str(p))
    except av.error.FFmpegError as e:
        raise FileFormatError(p, f"not a readable video file: FFmpeg cannot open it ({e.strerror or e}). Supported "
                                 f"containers: {', '.join(_VIDEO_SUFFIXES)}") from e


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read the container header of a video file (no decoding).

    Raises
    ------
    FileFormatError
        If the file cannot be opened as a video container, has no video stream, or the stream cannot be decoded
        (unknown codec, header truncated).
    """
    p = check_path(path)
    with _open_container(p) as c:
        return _video_info(p, c)


def _video_info(p: Path, c: Any) -> VideoInfo:
    if not c.streams.video:
        raise FileFormatError(p, f"no video stream in the {c.format.name} container (audio or data only)")
    s = c.streams.video[0]
    cc = s.codec_context
    if cc is None or not cc.name or not cc.width or not cc.height:
        raise FileFormatError(p, "the video stream cannot be decoded (unknown codec or frame size): the file is "
                                 "probably truncated or damaged; re-copy or re-export it")
    rate = s.average_rate or s.guessed_rate
    duration = float(s.duration * s.time_base) if s.duration and s.time_base else (
        c.duration / 1e6 if c.duration else math.nan)
    return VideoInfo(width_px=int(cc.width), height_px=int(cc.height), n_frames_header=int(s.frames or 0),
                     fps_nominal=float(rate) if rate else math.nan, time_base=s.time_base, codec=str(cc.name),
                     container=str(c.format.name), duration_s=duration)


def _iter_frames(p: Path, stats: dict[str, Any]) -> Iterator[tuple[int, float, NDArray[np.uint8]]]:
    """Decode every frame: ``(index, time_s, rgb (h, w, 3) uint8)``; fills ``stats`` (timestamp source, drops).

    The time is the frame's presentation timestamp in seconds (``pts * time_base``). Frames whose timestamp does
    not increase are dropped (counted in ``stats``).
    """
    import av

    with _open_container(p) as c:
        info = _video_info(p, c)
        stats["info"] = info
        s = c.streams.video[0]
        n = 0
        last_t = -math.inf
        no_pts = 0
        dropped: list[float] = []
        try:
            for frame in c.decode(s):
                if frame.pts is not None and frame.time_base is not None:
                    t = float(frame.pts * frame.time_base)
                else:
                    no_pts += 1
                    rate = info.fps_nominal if info.fps_nominal > 0 else 30.0
                    t = (n + len(dropped)) / rate
                if not t > last_t:
                    dropped.append(t)
                    continue
                last_t = t
                yield n, t, frame.to_ndarray(format="rgb24")
                n += 1
        except av.error.FFmpegError as e:
            raise FileFormatError(p, f"decoding failed after {n} frames (near t = {max(last_t, 0):.3f} s): "
                                     f"{e.strerror or e}; the file is truncated or damaged") from e
        if n == 0:
            raise FileFormatError(p, "no frame could be decoded from the video stream; the file is truncated or "
                                     "damaged")
        stats["n_frames"] = n
        stats["dropped_non_increasing"] = len(dropped)
        stats["timestamps"] = ("container_pts" if no_pts == 0 else
                               "index_over_nominal_fps" if no_pts == n + len(dropped) else "mixed")


def _check_packets(p: Path, info: VideoInfo) -> int:
    """Read every packet of the video stream (no decoding): a truncated file shows up here, before inference."""
    import av

    n = 0
    with _open_container(p) as c:
        try:
            for packet in c.demux(c.streams.video[0]):
                if packet.size:
                    n += 1
        except av.error.FFmpegError as e:
            raise FileFormatError(p, f"the container is damaged after {n} packets ({e.strerror or e}); re-copy or "
                                     "re-export the file") from e
    if n == 0:
        raise FileFormatError(p, "the video stream holds no data (0 packets): the file is truncated or damaged")
    if info.n_frames_header and n < info.n_frames_header:
        raise FileFormatError(p, f"truncated video: the container announces {info.n_frames_header} frames but holds "
                                 f"data for only {n}; re-copy or re-export the file")
    return n


def read_frame_times(path: str | os.PathLike[str]) -> NDArray[np.float64]:
    """Presentation time (s) of every frame, from the container (``pts * time_base``), in display order.

    Decodes the video (without converting frames), because presentation order differs from file order when
    the codec uses B-frames. Non-increasing timestamps are dropped, as in `read_video_pose`.
    """
    import av

    p = check_path(path)
    out: list[float] = []
    with _open_container(p) as c:
        _video_info(p, c)
        s = c.streams.video[0]
        try:
            for frame in c.decode(s):
                if frame.pts is None:
                    raise FileFormatError(p, "the container has no presentation timestamps")
                t = float(frame.pts * frame.time_base)
                if not out or t > out[-1]:
                    out.append(t)
        except av.error.FFmpegError as e:
            raise FileFormatError(p, f"decoding failed after {len(out)} frames: {e.strerror or e}") from e
    return np.asarray(out, dtype=np.float64)


# ---------------------------------------------------------------------------------------------------- inference
class _Candidate(NamedTuple):
    """One person found in one frame."""

    xy: NDArray[np.float64]  # (33, 2) px, image frame
    visibility: NDArray[np.float64]  # (33,) in [0, 1]
    world: NDArray[np.float64]  # (33, 3) m, MediaPipe world frame
    score: float  # detector score
    size_px: float  # side of the region of interest (px)

    @property
    def hip(self) -> NDArray[np.float64]:
        return self.xy[list(_HIPS)].mean(axis=0)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        x0, y0 = self.xy.min(axis=0)
        x1, y1 = self.xy.max(axis=0)
        return float(x0), float(y0), float(x1), float(y1)


def _tiles(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Detector tiles ``(x0, y0, w, h)``: overlapping squares along the long side (>= 20 % overlap).

    The detector sees a 224 x 224 image; on a whole 16:9 frame a walking adult a few metres away is too small
    for it (demo.mp4: the person on the roof is never found on the whole frame, always on the tiles).
    """
    long_side, short_side = max(width, height), min(width, height)
    if long_side < 1.2 * short_side:
        return [(0, 0, width, height)]
    n = math.ceil((long_side - 0.2 * short_side) / (0.8 * short_side))
    starts = np.linspace(0, long_side - short_side, n).round().astype(int)
    if width >= height:
        return [(int(x), 0, short_side, short_side) for x in starts]
    return [(0, int(y), short_side, short_side) for y in starts]


def _check_model_complexity(model_complexity: int) -> Path:
    if model_complexity not in _MODEL_FILES:
        msg = f"Invalid value for 'model_complexity'. Allowed values are 0, 1, 2, but got {model_complexity!r} instead."
        raise ValidationError(msg)
    import mediapipe

    model = Path(mediapipe.__file__).parent / "modules" / "pose_landmark" / _MODEL_FILES[model_complexity]
    if not model.is_file():
        msg = (f"model_complexity={model_complexity} needs {model.name}, which is not installed (the mediapipe "
               f"{mediapipe.__version__} wheel bundles only pose_landmark_full.tflite; MediaPipe would download the "
               "others at run time, and fusionlab works offline). Use model_complexity=1, or copy the model file to "
               f"{model.parent}.")
        raise ValidationError(msg)
    return model


_Seed = tuple[float, float, float, float, float]  # (score, hip_x, hip_y, scale_x, scale_y) px: where to look


class _PoseAnalyser:
    """MediaPipe graphs for one thread: person detection on tiles, landmarks in each person's ROI.

    Within a chunk of `CHUNK_FRAMES` frames, each person's ROI for the next frame comes from the landmarks just
    found (MediaPipe's own tracking rule: auxiliary landmarks 0 and 1, like the detector's key points), and the
    detector runs on the first frame of the chunk, then every `DETECT_EVERY_N_FRAMES` frames (to find people
    who enter the view) or whenever nobody is tracked. Chunks start afresh, so a chunk's result does not depend
    on which thread analysed the one before.
    """

    def __init__(self, model_complexity: int) -> None:
        from mediapipe.framework.formats import rect_pb2
        from mediapipe.python.solution_base import SolutionBase

        self._rect = rect_pb2.NormalizedRect
        self._detector = SolutionBase(graph_config=_DETECTOR_GRAPH)
        self._landmarker = SolutionBase(
            graph_config=_LANDMARK_GRAPH.replace("{complexity}", str(int(model_complexity))))
        self.n_detector_runs = 0
        self.n_landmark_runs = 0

    def close(self) -> None:
        self._detector.close()
        self._landmarker.close()

    def detect(self, rgb: NDArray[np.uint8]) -> list[_Seed]:
        """People in one frame, duplicates across tiles merged (highest score first)."""
        import cv2

        self.n_detector_runs += 1
        height, width = rgb.shape[:2]
        found = []
        for x0, y0, w, h in _tiles(width, height):
            tile = rgb[y0:y0 + h, x0:x0 + w]
            k = DETECTOR_INPUT_PX / max(w, h)
            if k < 1.0:  # the graph resizes anyway; resizing here first avoids copying the full tile into it
                tile = cv2.resize(tile, (max(1, round(w * k)), max(1, round(h * k))), interpolation=cv2.INTER_AREA)
            else:
                tile = np.ascontiguousarray(tile)
            result = self._detector.process({"image": tile})
            for d in result.detections or []:
                kp = d.location_data.relative_keypoints
                if len(kp) < 2:
                    continue
                found.append((float(d.score[0]), x0 + kp[0].x * w, y0 + kp[0].y * h, x0 + kp[1].x * w,
                              y0 + kp[1].y * h))
        found.sort(reverse=True)
        kept: list[_Seed] = []
        for d in found:
            if not any(_same_person(d, k) for k in kept):
                kept.append(d)
        return kept[:MAX_PERSONS_PER_FRAME]

    def landmarks(self, rgb: NDArray[np.uint8], seed: _Seed) -> tuple[_Candidate, _Seed] | None:
        """Landmarks of the person in the ROI of ``seed`` and the seed for the next frame, or None."""
        self.n_landmark_runs += 1
        height, width = rgb.shape[:2]
        _, cx, cy, sx, sy = seed
        size = _roi_size(seed)
        # rotation that brings the hip -> scale-point vector to vertical (DetectionsToRectsCalculator, target 90 deg)
        rotation = math.pi / 2 - math.atan2(-(sy - cy), sx - cx)
        rotation = (rotation + math.pi) % (2 * math.pi) - math.pi
        half = 0.5 * size * (abs(math.cos(rotation)) + abs(math.sin(rotation)))
        bx0, by0 = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
        bx1, by1 = min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))
        if bx1 - bx0 < 8 or by1 - by0 < 8 or size < 8:
            return None
        crop = np.ascontiguousarray(rgb[by0:by1, bx0:bx1])  # the ROI's bounding box: less to copy into the graph
        cw, ch = bx1 - bx0, by1 - by0
        roi = self._rect(x_center=(cx - bx0) / cw, y_center=(cy - by0) / ch, width=size / cw, height=size / ch,
                         rotation=rotation)
        result = self._landmarker.process({"image": crop, "roi": roi})
        if result.landmarks is None or result.world_landmarks is None or result.aux_landmarks is None:
            return None
        lm, wl, aux = result.landmarks.landmark, result.world_landmarks.landmark, result.aux_landmarks.landmark
        if len(lm) < 33 or len(wl) < 33 or len(aux) < 2:
            return None
        xy = np.array([(bx0 + q.x * cw, by0 + q.y * ch) for q in lm[:33]], dtype=np.float64)
        vis = np.clip(np.array([q.visibility for q in lm[:33]], dtype=np.float64), 0.0, 1.0)
        world = np.array([(q.x, q.y, q.z) for q in wl[:33]], dtype=np.float64)
        nxt = (seed[0], bx0 + aux[0].x * cw, by0 + aux[0].y * ch, bx0 + aux[1].x * cw, by0 + aux[1].y * ch)
        return _Candidate(xy=xy, visibility=vis, world=world, score=seed[0], size_px=size), nxt

    def analyse(self, rgb: NDArray[np.uint8], position: int,
                seeds: list[_Seed]) -> tuple[list[_Candidate], list[_Seed]]:
        """Everyone found in one frame, and the seeds for the next frame of the chunk.

        ``position`` is the frame's index within its chunk; ``seeds`` come from the previous frame (empty at the
        start of a chunk).
        """
        seeds = list(seeds)
        if position % DETECT_EVERY_N_FRAMES == 0 or not seeds:
            seeds += [d for d in self.detect(rgb) if not any(_same_person(d, s) for s in seeds)]
        out: list[tuple[_Candidate, _Seed]] = []
        for seed in seeds[:MAX_PERSONS_PER_FRAME]:
            found = self.landmarks(rgb, seed)
            if found is None:
                continue
            cand = found[0]
            # two ROIs that converged on one person: keep the more visible skeleton
            dup = next((i for i, (o, _) in enumerate(out)
                        if np.linalg.norm(o.hip - cand.hip) < 0.15 * max(o.size_px, cand.size_px)), None)
            if dup is None:
                out.append(found)
            elif cand.visibility.mean() > out[dup][0].visibility.mean():
                out[dup] = found
        return [c for c, _ in out], [s for _, s in out]


def _roi_size(seed: _Seed) -> float:
    return 2.0 * math.hypot(seed[3] - seed[1], seed[4] - seed[2]) * ROI_SCALE


def _same_person(a: _Seed, b: _Seed) -> bool:
    return math.hypot(a[1] - b[1], a[2] - b[2]) < 0.25 * max(_roi_size(a), _roi_size(b))


# MediaPipe / TFLite C++ log lines written straight to file descriptor 2 on every run, that say nothing about the data
_BENIGN_NATIVE_LOG = re.compile(
    r"^INFO: Created TensorFlow Lite XNNPACK delegate"
    r"|^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|inference_feedback_manager\.cc:\d+\] Feedback manager requires a model with a single signature"
    r"|landmark_projection_calculator\.cc:\d+\] Using NORM_RECT without IMAGE_DIMENSIONS")


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Collect what native code writes to file descriptor 2 meanwhile; write back all but `_BENIGN_NATIVE_LOG` lines.

    MediaPipe's graphs log from C++ (TFLite delegate, absl warnings) past Python's ``sys.stderr``: a user ingesting
    a video saw seven lines of them before the one-line result.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().decode("utf-8", errors="replace").splitlines()
                    if line.strip() and not _BENIGN_NATIVE_LOG.search(line)]
            if kept:
                os.write(2, ("\n".join(kept) + "\n").encode())


def _analyse_video(p: Path, model_complexity: int, workers: int,
                   stats: dict[str, Any]) -> tuple[NDArray[np.float64], list[list[_Candidate]]]:
    """Decode and analyse every frame.

    ``workers=1``: the plain sequential loop (decode a frame, analyse it, next). Otherwise one thread decodes
    and deals whole chunks of `CHUNK_FRAMES` frames round-robin to ``workers`` inference threads (each with its
    own graphs), through bounded queues. Both give identical results.
    """
    if workers <= 1:
        analyser = _PoseAnalyser(model_complexity)
        times: list[float] = []
        cands: list[list[_Candidate]] = []
        seeds: list[_Seed] = []
        try:
            for i, t, rgb in _iter_frames(p, stats):
                position = i % CHUNK_FRAMES
                found, seeds = analyser.analyse(rgb, position, seeds if position else [])
                times.append(t)
                cands.append(found)
        finally:
            stats["detector_runs"] = analyser.n_detector_runs
            stats["landmark_runs"] = analyser.n_landmark_runs
            analyser.close()
        return np.asarray(times, dtype=np.float64), cands

    analysers = [_PoseAnalyser(model_complexity) for _ in range(workers)]
    inboxes: list[queue.Queue[tuple[int, NDArray[np.uint8]] | None]] = [
        queue.Queue(maxsize=CHUNK_FRAMES + 4) for _ in range(workers)]
    time_of: dict[int, float] = {}
    results: dict[int, list[_Candidate]] = {}
    failures: list[BaseException] = []
    stop = threading.Event()

    def decode() -> None:
        try:
            for i, t, rgb in _iter_frames(p, stats):
                if stop.is_set():
                    break
                time_of[i] = t
                inboxes[(i // CHUNK_FRAMES) % workers].put((i, rgb))
        except BaseException as e:  # handed to the calling thread, re-raised there
            failures.append(e)
            stop.set()
        finally:
            for box in inboxes:
                box.put(None)

    def infer(analyser: _PoseAnalyser, inbox: queue.Queue[tuple[int, NDArray[np.uint8]] | None]) -> None:
        seeds: list[_Seed] = []
        while (item := inbox.get()) is not None:
            if stop.is_set():
                continue  # keep draining so that the decoder never blocks
            i, rgb = item
            position = i % CHUNK_FRAMES
            try:
                results[i], seeds = analyser.analyse(rgb, position, seeds if position else [])
            except BaseException as e:  # handed to the calling thread, re-raised there
                failures.append(e)
                stop.set()

    threads = [threading.Thread(target=decode, name="fusionlab-video-decode", daemon=True)]
    threads += [threading.Thread(target=infer, args=(a, box), name=f"fusionlab-pose-{k}", daemon=True)
                for k, (a, box) in enumerate(zip(analysers, inboxes, strict=True))]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    finally:
        stop.set()  # on an interrupt: the decoder stops, the workers drain their queues and end
        for th in threads:
            if th.ident is not None:
                th.join()
        stats["detector_runs"] = sum(a.n_detector_runs for a in analysers)
        stats["landmark_runs"] = sum(a.n_landmark_runs for a in analysers)
        for a in analysers:
            a.close()
    if failures:
        raise failures[0]
    n = len(time_of)
    return (np.array([time_of[i] for i in range(n)], dtype=np.float64), [results[i] for i in range(n)])


# ---------------------------------------------------------------------------------------------------- tracking
class _Track:
    """Frames and candidates of one person across the video."""

    def __init__(self, track_id: int, frame: int, cand: _Candidate, k: int) -> None:
        self.id = track_id
        self.frames = [frame]
        self.members = [k]
        self.hip = cand.hip
        self.velocity = np.zeros(2)
        self.size = cand.size_px

    def add(self, frame: int, cand: _Candidate, k: int) -> None:
        gap = frame - self.frames[-1]
        step = (cand.hip - self.hip) / gap
        self.velocity = step if len(self.frames) == 1 else 0.5 * self.velocity + 0.5 * step
        self.hip = cand.hip
        self.size = 0.8 * self.size + 0.2 * cand.size_px
        self.frames.append(frame)
        self.members.append(k)


def _track(cands: list[list[_Candidate]], times: NDArray[np.float64]) -> list[_Track]:
    """Link the people found in each frame into tracks (in frame order).

    Cost of linking a track to a candidate: distance between the candidate's hip centre and the track's hip
    centre predicted at constant velocity, divided by the larger ROI size (a body-size unit); gated at
    ``0.35 + 0.1 * gap`` (gap in frames). One-to-one assignment per frame (Hungarian algorithm). A track
    unseen for more than `TRACK_MAX_GAP_S` is closed.
    """
    from scipy.optimize import linear_sum_assignment

    tracks: list[_Track] = []
    for f, frame_cands in enumerate(cands):
        active = [tr for tr in tracks if times[f] - times[tr.frames[-1]] <= TRACK_MAX_GAP_S]
        assigned: set[int] = set()
        if active and frame_cands:
            cost = np.full((len(active), len(frame_cands)), 1e9)
            for r, tr in enumerate(active):
                gap = f - tr.frames[-1]
                predicted = tr.hip + tr.velocity * gap
                gate = min(1.5, 0.35 + 0.1 * gap)
                for c, cand in enumerate(frame_cands):
                    d = float(np.linalg.norm(cand.hip - predicted)) / max(tr.size, cand.size_px)
                    if d < gate:
                        cost[r, c] = d
            rows, cols = linear_sum_assignment(cost)
            for r, c in zip(rows, cols, strict=True):
                if cost[r, c] < 1e9:
                    active[r].add(f, frame_cands[c], c)
                    assigned.add(int(c))
        for c, cand in enumerate(frame_cands):
            if c not in assigned:
                tracks.append(_Track(len(tracks), f, cand, c))
    return tracks


def _track_summary(tr: _Track, cands: list[list[_Candidate]], times: NDArray[np.float64],
                   width: int) -> dict[str, Any]:
    hips = np.array([cands[f][k].hip for f, k in zip(tr.frames, tr.members, strict=True)])
    boxes = np.array([cands[f][k].bbox for f, k in zip(tr.frames, tr.members, strict=True)])
    travel = float(np.percentile(hips[:, 0], 95) - np.percentile(hips[:, 0], 5)) if len(hips) else 0.0
    return {"id": tr.id, "n_frames": len(tr.frames), "first_time_s": float(times[tr.frames[0]]),
            "last_time_s": float(times[tr.frames[-1]]), "hip_x_travel_px": round(travel, 1),
            "hip_x_travel_fraction_of_width": round(travel / width, 4),
            "hip_first_px": [round(float(v), 1) for v in hips[0]],
            "hip_last_px": [round(float(v), 1) for v in hips[-1]],
            "bbox_union_px": [round(float(boxes[:, 0].min()), 1), round(float(boxes[:, 1].min()), 1),
                              round(float(boxes[:, 2].max()), 1), round(float(boxes[:, 3].max()), 1)]}


def _normalise_person(person: Any) -> str | tuple[float, ...]:
    if isinstance(person, str):
        if person != "walker":
            msg = ("Invalid value for 'person'. Allowed values are 'walker', a point (x, y) or a box (x0, y0, x1, y1) "
                   f"in pixels of the first frame, but got {person!r} instead.")
            raise ValidationError(msg)
        return person
    try:
        values = tuple(float(v) for v in person)
    except (TypeError, ValueError):
        values = ()
    if len(values) not in (2, 4) or not all(math.isfinite(v) for v in values):
        msg = ("Invalid value for 'person'. Allowed values are 'walker', a point (x, y) or a box (x0, y0, x1, y1) in "
               f"pixels of the first frame, but got {person!r} instead.")
        raise ValidationError(msg)
    if len(values) == 4:
        x0, y0, x1, y1 = values
        values = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    return values


def _select(tracks: list[_Track], cands: list[list[_Candidate]], times: NDArray[np.float64], width: int,
            person: str | tuple[float, ...], p: Path) -> tuple[_Track, dict[str, Any]]:
    """Choose the track of the person to keep (see `read_video_pose`, Notes)."""
    long_tracks = [tr for tr in tracks if len(tr.frames) >= TRACK_MIN_FRAMES] or tracks
    summaries = {tr.id: _track_summary(tr, cands, times, width) for tr in long_tracks}
    info: dict[str, Any] = {"requested": person if isinstance(person, str) else list(person),
                            "n_tracks": len(tracks), "tracks": sorted(summaries.values(),
                                                                      key=lambda s: -s["hip_x_travel_px"])[:10]}
    if person == "walker":
        chosen = max(long_tracks, key=lambda tr: (summaries[tr.id]["hip_x_travel_px"], len(tr.frames)))
        info["rule"] = ("walker: among tracks of at least 5 frames, the person whose hip centre (mid-point of the "
                        "left and right hip landmarks) travels furthest horizontally in the image, measured as the "
                        "5th-95th percentile range of its x coordinate over the frames where it is tracked")
    else:
        f_ref = next(f for f, c in enumerate(cands) if c)
        in_ref = [(tr, tr.members[tr.frames.index(f_ref)]) for tr in tracks if f_ref in tr.frames]
        boxes = {tr.id: cands[f_ref][k].bbox for tr, k in in_ref}
        pad = {tr.id: 0.05 * (cands[f_ref][k].bbox[3] - cands[f_ref][k].bbox[1]) for tr, k in in_ref}
        if len(person) == 2:
            x, y = person
            inside = [(tr, k) for tr, k in in_ref if boxes[tr.id][0] - pad[tr.id] <= x <= boxes[tr.id][2] + pad[tr.id]
                      and boxes[tr.id][1] - pad[tr.id] <= y <= boxes[tr.id][3] + pad[tr.id]]
            if not inside:
                found = "; ".join(f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f})" for b in boxes.values())
                raise ValidationError(f"{p}: no person contains the point ({x:g}, {y:g}) px in the first frame with a "
                                      f"person (t = {times[f_ref]:.3f} s); people found there (x0, y0, x1, y1 px): "
                                      f"{found}. Pick a point inside one of them.")
            chosen = min(inside, key=lambda tk: float(np.linalg.norm(cands[f_ref][tk[1]].hip - np.array([x, y]))))[0]
            info["rule"] = ("point: the person whose landmark box (padded by 5 % of its height) contains the point "
                            "in the first frame in which anyone is found; the nearest hip centre breaks ties")
        else:
            ious = {tr.id: _iou(boxes[tr.id], person) for tr, _ in in_ref}
            best = max(in_ref, key=lambda tk: ious[tk[0].id], default=None)
            if best is None or ious[best[0].id] <= 0.0:
                found = "; ".join(f"({b[0]:.0f}, {b[1]:.0f}, {b[2]:.0f}, {b[3]:.0f})" for b in boxes.values())
                raise ValidationError(f"{p}: no person overlaps the box {tuple(round(v) for v in person)} px in the "
                                      f"first frame with a person (t = {times[f_ref]:.3f} s); people found there "
                                      f"(x0, y0, x1, y1 px): {found}.")
            chosen = best[0]
            info["rule"] = ("box: the person whose landmark box overlaps the given box most (intersection over "
                            "union) in the first frame in which anyone is found")
            info["iou"] = round(ious[chosen.id], 3)
        info["reference_frame"] = {"index": f_ref, "time_s": float(times[f_ref])}
    summary = summaries.get(chosen.id) or _track_summary(chosen, cands, times, width)
    info["selected"] = summary
    return chosen, info


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _runs(mask: NDArray[np.bool_], times: NDArray[np.float64]) -> list[list[float]]:
    """Time ranges ``[first_s, last_s]`` of the runs of True in ``mask``."""
    out = []
    idx = np.flatnonzero(mask)
    if idx.size:
        breaks = np.flatnonzero(np.diff(idx) > 1)
        starts = np.r_[idx[0], idx[breaks + 1]]
        ends = np.r_[idx[breaks], idx[-1]]
        out = [[round(float(times[a]), 6), round(float(times[b]), 6)] for a, b in zip(starts, ends, strict=True)]
    return out


# ---------------------------------------------------------------------------------------------------- scale
class ScaleEstimate(NamedTuple):
    """Metres per pixel for movements in the subject's plane, with its standard deviation."""

    m_per_px: float
    sd_m_per_px: float
    method: str  # "subject_height" or "calibration"
    n_frames: int
    details: dict[str, Any]


class CameraCalibration(NamedTuple):
    """One camera of a Pose2Sim/Sports2D calibration file (OpenCV conventions, world -> camera extrinsics)."""

    name: str
    size_px: tuple[int, int]
    matrix: NDArray[np.float64]  # (3, 3) intrinsics K, px
    distortions: NDArray[np.float64]  # OpenCV k1, k2, p1, p2[, k3]
    rotation: NDArray[np.float64]  # (3, 3) R: x_camera = R x_world + t
    translation_m: NDArray[np.float64]  # (3,) t, m
    fisheye: bool


def read_calibration(path: str | os.PathLike[str], camera: str | None = None,
                     frame_size_px: tuple[int, int] | None = None) -> CameraCalibration:
    """Read one camera from a Pose2Sim/Sports2D calibration TOML file.

    Parameters
    ----------
    path
        TOML file with one table per camera holding ``size``, ``matrix``, ``distortions``, ``rotation``
        (Rodrigues vector, rad) and ``translation`` (m): OpenCV world-to-camera extrinsics.
    camera
        Table name (or ``name`` value) of the camera; may be omitted when the file holds one camera.
    frame_size_px
        ``(width, height)`` of the video. When it differs from the calibrated ``size`` with the same aspect ratio
        the intrinsics are scaled; otherwise it is an error.

    Raises
    ------
    FileFormatError
        If the file is not TOML, has no camera table, or a table misses a key or has wrong shapes.
    ValidationError
        If several cameras match (or none), or the frame size does not fit.
    """
    import cv2

    p = check_path(path)
    try:
        with p.open("rb") as fh:
            doc = tomllib.load(fh)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(p, f"not a TOML calibration file: {e}") from e
    cams = {k: v for k, v in doc.items() if isinstance(v, dict) and "matrix" in v}
    if not cams:
        raise FileFormatError(p, "no camera table in the calibration file (a table with 'matrix', 'distortions', "
                                 "'rotation', 'translation' and 'size', as Pose2Sim and Sports2D write)")
    if len(cams) == 1 and camera is None:
        key = next(iter(cams))
    else:
        keys = [k for k, v in cams.items() if camera in (k, v.get("name"))]
        if len(cams) == 1 and not keys:
            keys = list(cams)  # a single camera: its name need not match the stream's camera label
        if len(keys) != 1:
            msg = (f"Invalid value for 'camera'. Allowed values are {', '.join(sorted(cams))} (cameras in "
                   f"{p.name}), but got {camera!r} instead.")
            raise ValidationError(msg)
        key = keys[0]
    cam = cams[key]
    try:
        K = np.asarray(cam["matrix"], dtype=np.float64)
        dist = np.asarray(cam.get("distortions", [0.0, 0.0, 0.0, 0.0]), dtype=np.float64).ravel()
        rvec = np.asarray(cam["rotation"], dtype=np.float64).ravel()
        tvec = np.asarray(cam["translation"], dtype=np.float64).ravel()
        size = tuple(round(float(v)) for v in cam["size"])
    except (KeyError, TypeError, ValueError) as e:
        raise FileFormatError(p, f"camera {key!r}: missing or non-numeric entry ({e}); expected 'size', 'matrix', "
                                 "'distortions', 'rotation', 'translation'") from e
    if K.shape != (3, 3) or rvec.shape != (3,) or tvec.shape != (3,) or len(size) != 2 or dist.size not in (4, 5, 8):
        raise FileFormatError(p, f"camera {key!r}: expected a 3x3 matrix, 3 rotation and 3 translation values, a "
                                 f"[width, height] size and 4, 5 or 8 distortions; got shapes {K.shape}, "
                                 f"{rvec.shape}, {tvec.shape}, {len(size)}, {dist.size}")
    if frame_size_px is not None and tuple(frame_size_px) != size:
        kx, ky = frame_size_px[0] / size[0], frame_size_px[1] / size[1]
        if abs(kx - ky) > 0.01 * kx:
            msg = (f"{p.name}: camera {key!r} was calibrated for {size[0]}x{size[1]} px but the video is "
                   f"{frame_size_px[0]}x{frame_size_px[1]} px (another aspect ratio); use the calibration of this "
                   "video's camera and resolution.")
            raise ValidationError(msg)
        K = K.copy()
        K[0] *= kx
        K[1] *= ky
        size = (int(frame_size_px[0]), int(frame_size_px[1]))
    R, _ = cv2.Rodrigues(rvec)
    return CameraCalibration(name=str(key), size_px=(int(size[0]), int(size[1])), matrix=K, distortions=dist,
                             rotation=R, translation_m=tvec, fisheye=bool(cam.get("fisheye", False)))


def _valid_frames(xy: NDArray[np.float64], vis: NDArray[np.float64], idx: Sequence[int]) -> NDArray[np.bool_]:
    return np.all(vis[:, list(idx)] > MIN_VISIBILITY, axis=1) & np.all(np.isfinite(xy[:, list(idx), 0]), axis=1)


def _floor_points(xy: NDArray[np.float64], vis: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Per frame, the visible heel or toe landmark lowest in the image (the floor contact), ``(n, 2)`` px."""
    feet = xy[:, list(_FEET)]
    seen = (vis[:, list(_FEET)] > MIN_VISIBILITY) & np.isfinite(feet[..., 1])
    fy = np.where(seen, feet[..., 1], -np.inf)
    ok = seen.any(axis=1)
    pick = np.argmax(fy, axis=1)
    pts = feet[np.arange(len(xy)), pick]
    return pts, ok


def _check_height(subject_height_m: float) -> None:
    try:
        ok = math.isfinite(float(subject_height_m)) and 0.3 < float(subject_height_m) < 2.8
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = (f"Invalid value for 'subject_height_m'. Expected a stature in metres (0.3-2.8), but got "
               f"{subject_height_m!r} instead.")
        raise ValidationError(msg)


def scale_from_subject_height(xy: NDArray[np.float64], visibility: NDArray[np.float64], subject_height_m: float,
                              frame_size_px: tuple[int, int]) -> ScaleEstimate:
    """Metres per pixel from the subject's stature.

    Parameters
    ----------
    xy
        ``(n, 33, 2)`` float, px, image frame: landmarks of the subject (NaN where absent).
    visibility
        ``(n, 33)`` in [0, 1].
    subject_height_m
        Stature (m).
    frame_size_px
        ``(width, height)``.

    Notes
    -----
    Per frame, the vertical distance from the eyes (mean of ``left_eye`` and ``right_eye``) down to the floor
    contact (the visible heel or toe landmark lowest in the image) is measured in frames where eyes and a foot
    are visible (> 0.5), the trunk is within 20° of vertical and the whole body is inside the image. The
    `HEIGHT_PERCENTILE` (90th) percentile of these heights is divided by `EYE_HEIGHT_PER_STATURE` (0.936) to
    give the stature in pixels. Assumes the subject stays at about one distance from the camera (walking
    across the view) and a camera without strong tilt or lens distortion. SD: the spread (1.4826 x MAD) of the
    upper half of the per-frame heights, relative, combined with `EYE_HEIGHT_RATIO_REL_SD`.
    """
    _check_height(subject_height_m)
    width, height = frame_size_px
    eyes_ok = _valid_frames(xy, visibility, _EYES)
    floor, feet_ok = _floor_points(xy, visibility)
    eye_y = xy[:, list(_EYES), 1].mean(axis=1)
    trunk = xy[:, list(_SHOULDERS)].mean(axis=1) - xy[:, list(_HIPS)].mean(axis=1)
    present = np.all(np.isfinite(xy[:, :, 0]), axis=1)
    lo = np.where(present[:, None], xy.min(axis=1), np.nan)
    hi = np.where(present[:, None], xy.max(axis=1), np.nan)
    with np.errstate(invalid="ignore"):
        lean_deg = np.degrees(np.arctan2(np.abs(trunk[:, 0]), -trunk[:, 1]))
        inside = (lo[:, 0] > 1) & (lo[:, 1] > 1) & (hi[:, 0] < width - 2) & (hi[:, 1] < height - 2)
        h_px = floor[:, 1] - eye_y
        ok = eyes_ok & feet_ok & (lean_deg < UPRIGHT_MAX_DEG) & inside & (h_px > 0)
    h = h_px[ok]
    if h.size < 5:
        msg = (f"cannot estimate the scale from the subject's height: only {h.size} frames show the subject upright "
               "and whole (eyes and a foot visible, trunk within 20° of vertical, body inside the image); 5 needed")
        raise ValidationError(msg)
    h_ref = float(np.percentile(h, HEIGHT_PERCENTILE))
    upper = h[h >= np.median(h)]
    meas_rel_sd = 1.4826 * float(np.median(np.abs(upper - np.median(upper)))) / h_ref
    stature_px = h_ref / EYE_HEIGHT_PER_STATURE
    m_per_px = subject_height_m / stature_px
    rel_sd = math.hypot(meas_rel_sd, EYE_HEIGHT_RATIO_REL_SD)
    return ScaleEstimate(m_per_px=m_per_px, sd_m_per_px=m_per_px * rel_sd, method="subject_height",
                         n_frames=int(h.size),
                         details={"subject_height_m": float(subject_height_m), "eye_to_floor_px": round(h_ref, 2),
                                  "stature_px": round(stature_px, 2), "percentile": HEIGHT_PERCENTILE,
                                  "eye_height_per_stature": EYE_HEIGHT_PER_STATURE,
                                  "ratio_source": "Drillis & Contini 1966, via Winter 2009 Fig. 4.1",
                                  "measurement_rel_sd": round(meas_rel_sd, 4)})


def scale_from_calibration(xy: NDArray[np.float64], visibility: NDArray[np.float64],
                           calibration: CameraCalibration) -> ScaleEstimate:
    """Metres per pixel at the subject's depth, from a calibrated camera.

    Parameters
    ----------
    xy, visibility
        As in `scale_from_subject_height`.
    calibration
        The camera (`read_calibration`); world frame with z up and the floor at z = 0 (Pose2Sim convention).

    Notes
    -----
    Per frame, the floor contact point (visible heel or toe landmark lowest in the image) is undistorted and its
    ray intersected with the floor plane z = 0; the depth of that point along the optical axis, ``Z``, gives
    ``m_per_px = Z / f`` with ``f = (fx + fy) / 2``: the size of one pixel in the plane parallel to the image at
    the subject's depth. The median over frames is returned; SD: 1.4826 x MAD of the per-frame values (the
    calibration's own error is not stated in the file and is not included). When no ray meets the floor in
    front of the camera (other world conventions), the depth of the world origin is used instead.
    """
    import cv2

    K = calibration.matrix
    R, t = calibration.rotation, calibration.translation_m
    f_px = 0.5 * (K[0, 0] + K[1, 1])
    floor, ok = _floor_points(xy, visibility)
    pts = floor[ok].reshape(-1, 1, 2)
    depth = np.empty(0)
    centre = -R.T @ t  # camera centre in the world frame
    if pts.size:
        if calibration.fisheye:
            norm = cv2.fisheye.undistortPoints(pts, K, calibration.distortions[:4])
        else:
            norm = cv2.undistortPoints(pts, K, calibration.distortions)
        rays_cam = np.concatenate([norm.reshape(-1, 2), np.ones((norm.shape[0], 1))], axis=1)
        rays = rays_cam @ R  # = (R.T @ ray)^T for each ray
        with np.errstate(divide="ignore", invalid="ignore"):
            s = -centre[2] / rays[:, 2]  # X = C + s d meets z = 0; depth along the optical axis = s (ray z = 1)
        depth = s[np.isfinite(s) & (s > 0)]
    if depth.size >= 3 and centre[2] > 0:
        m = depth / f_px
        m_per_px = float(np.median(m))
        sd = 1.4826 * float(np.median(np.abs(m - m_per_px)))
        how = "floor contact ray intersected with the plane z = 0"
        n = int(depth.size)
        z = float(np.median(depth))
    else:
        z = float(t[2])
        m_per_px, sd, n = z / f_px, math.nan, 0
        how = "depth of the world origin (no floor intersection in front of the camera)"
    return ScaleEstimate(m_per_px=m_per_px, sd_m_per_px=sd, method="calibration", n_frames=n,
                         details={"camera": calibration.name, "depth_m": round(z, 4), "focal_px": round(f_px, 3),
                                  "how": how, "camera_height_m": round(float((-R.T @ t)[2]), 4)})


# ---------------------------------------------------------------------------------------------------- session
class CachedPose(NamedTuple):
    """Pose streams of one video found in a session (`find_cached`)."""

    pose2d: Stream
    pose3d: Stream
    clock: ClockEntry | None
    source: SourceInfo | None


def _mediapipe_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mediapipe")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def _inference_key(sha256: str, person: str | tuple[float, ...], model_complexity: int) -> tuple[str, dict[str, Any]]:
    """What determines the landmarks: the video bytes, the person rule, the model and the code versions."""
    spec = {"sha256": sha256, "person": person if isinstance(person, str) else list(person),
            "model_complexity": int(model_complexity), "mediapipe": _mediapipe_version(),
            "adapter_version": __version__, "algorithm_version": ALGORITHM_VERSION}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest(), spec


def find_cached(session_path: str | os.PathLike[str], video_path: str | os.PathLike[str], *,
                person: PersonRule = "walker", model_complexity: int = 1,
                sha256: str | None = None) -> CachedPose | None:
    """Pose streams of this video already stored in a session, or None.

    A stored result matches when its ``inference_key`` does: same video bytes (SHA-256), person rule, model
    complexity, MediaPipe, adapter and algorithm versions. Scale, camera label and stream names do not matter
    (they do not change the landmarks).

    Raises
    ------
    SessionFormatError
        If ``session_path`` exists but is not a fusionlab session.
    """
    from fusionlab.persist import open_session

    sp = Path(session_path)
    if not sp.is_file():
        return None
    sha = sha256 or file_sha256(check_path(video_path))
    key, _ = _inference_key(sha, _normalise_person(person), model_complexity)
    with open_session(sp) as r:
        infos = {n: r.stream_info(n) for n in r.find_streams(modality="video_pose")}
        by_kind: dict[str, str] = {}
        for name, info in infos.items():
            meta = info["meta"]
            if meta.get("adapter") == ADAPTER and meta.get("inference_key") == key:
                by_kind.setdefault(str(meta.get("kind")), name)
        if "pose2d" not in by_kind or "pose3d" not in by_kind:
            return None
        s2, s3 = r.read_stream(by_kind["pose2d"]), r.read_stream(by_kind["pose3d"])
        clock = r.clocks().get(s2.clock)
        source = next((s for s in r.sources() if s.sha256 == sha), None)
    logger.info("pose of %s found in %s (streams %s, %s)", Path(video_path).name, sp.name, s2.name, s3.name)
    return CachedPose(pose2d=s2, pose3d=s3, clock=clock, source=source)


def cached_or_compute(session_path: str | os.PathLike[str], video_path: str | os.PathLike[str], *,
                      save: bool = True, overwrite: bool = False, **options: Any) -> Session:
    """Pose of a video from the session if it was analysed before, else analyse it (and store it when ``save``).

    ``options`` are those of `read_video_pose`. On a cache hit nothing is written and no inference runs.
    """
    from fusionlab.persist import save_session

    session = read_video_pose(video_path, session_path=session_path, **options)
    hit = session.streams[0].meta.get("cache", {}).get("hit", False)
    if save and not hit:
        save_session(session, session_path, overwrite=overwrite)
    return session


def read_video_pose(path: str | os.PathLike[str], *, camera: str = "cam0", person: PersonRule = "walker",
                    subject_height_m: float | None = None, calibration: str | os.PathLike[str] | None = None,
                    model_complexity: int = 1, workers: int | None = None, prefix: str | None = None,
                    session_path: str | os.PathLike[str] | None = None) -> Session:
    """Read a video into a `Session`: MediaPipe Pose landmarks of one person per frame.

    Parameters
    ----------
    path
        Video file (MP4/MOV/MKV/WebM/AVI; any codec FFmpeg decodes).
    camera
        Camera label, used in the frame names ``image:<camera>`` and ``world:<camera>`` (and to pick the camera
        in a multi-camera calibration file).
    person
        Who to keep when several people are in view: ``"walker"`` (default), a point ``(x, y)`` or a box
        ``(x0, y0, x1, y1)`` in pixels of the first frame in which anyone is found. See Notes.
    subject_height_m
        The subject's stature (m): gives the pixel-to-metre scale (`scale_from_subject_height`).
    calibration
        Pose2Sim/Sports2D calibration TOML of this camera: gives the scale at the subject's depth
        (`scale_from_calibration`). With both, the calibration is used and the height estimate kept beside it.
    model_complexity
        MediaPipe landmark model: 1 (``pose_landmark_full``, bundled in the wheel). 0 and 2 only when their model
        file has been installed (they are not in the wheel and are never downloaded).
    workers
        Inference threads. 1: plain sequential decode-then-infer loop. Default: ``min(2, os.cpu_count())``; with
        two or more, a decoding thread and the inference threads overlap. Results do not depend on it.
    prefix
        Prefix of the stream names; default the file stem and a dot (``"demo.pose2d"``).
    session_path
        A session file to look in first: if it holds this video's pose for the same person rule and model
        (`find_cached`), those results are returned and no inference runs.

    Returns
    -------
    Session
        ``<prefix>pose2d``: ``(n_frames, 33, 2)`` px, frame ``image:<camera>`` (x right, y down, origin at the
        top-left corner of the top-left pixel), confidence = visibility ``(n_frames, 33)`` in [0, 1];
        ``<prefix>pose3d``: ``(n_frames, 33, 3)`` m, frame ``world:<camera>`` (MediaPipe world landmarks: origin
        between the hips, x to the image right, y down, z away from the camera), same times and confidence.
        Both irregular (``rate_hz=None``) with ``time_s`` = container presentation times, NaN where the person
        was not found, on one clock ``video:<stem>:<sha8>`` (``unsynchronised``).

    Raises
    ------
    FileFormatError
        Not a video, truncated or undecodable, or no person found in any frame.
    ValidationError
        Invalid options; a point or box that contains nobody; a calibration of another camera or resolution.

    Warns
    -----
    FusionlabWarning
        When the scale cannot be estimated from the subject's height (too few upright, whole-body frames): the
        pose is stored without it and the reason is kept in ``meta["scale_estimates"]``.

    Notes
    -----
    Person selection. Every frame is searched for everyone (detector on overlapping square tiles, landmark model
    in each person's region of interest), people are tracked across frames by their hip centre, and:

    * ``"walker"``: among tracks of at least 5 frames, the one whose hip centre travels furthest horizontally
      (5th-95th percentile range of its x coordinate). Made for a subject walking across a side view.
    * ``(x, y)``: the person whose landmark box (padded by 5 % of its height) contains the point, in the first
      frame in which anyone is found (the nearest hip centre breaks ties).
    * ``(x0, y0, x1, y1)``: the person whose landmark box overlaps the box most (IoU) in that frame.

    The metadata (``meta["person_selection"]``) records the rule, every track found (frames, times, hip travel,
    box) and the time ranges in which the selected person was tracked.

    Scale. ``meta["scale_m_per_px"]`` and ``meta["scale_method"]`` (``"calibration"`` or ``"subject_height"``;
    None without either), with SD in ``meta["scale"]`` and every estimate in ``meta["scale_estimates"]``. The
    pixel data are never rescaled: metres per pixel hold only in the plane parallel to the image at the
    subject's depth.
    """
    p = check_path(path)
    person_n = _normalise_person(person)
    _check_model_complexity(model_complexity)
    if subject_height_m is not None:
        _check_height(subject_height_m)
    if workers is None:
        workers = max(1, min(2, os.cpu_count() or 1))
    if not isinstance(workers, int) or workers < 1:
        msg = f"Invalid value for 'workers'. Expected a positive integer, but got {workers!r} instead."
        raise ValidationError(msg)
    sha = file_sha256(p)
    key, spec = _inference_key(sha, person_n, model_complexity)
    prefix = stream_prefix(p) if prefix is None else prefix
    options = {"camera": camera, "person": spec["person"], "subject_height_m": subject_height_m,
               "calibration": None if calibration is None else Path(calibration).name,
               "calibration_sha256": None if calibration is None else file_sha256(check_path(calibration)),
               "model_complexity": int(model_complexity)}

    if session_path is not None:
        cached = find_cached(session_path, p, person=person, model_complexity=model_complexity, sha256=sha)
        if cached is not None:
            return _session_from_cache(cached, p, Path(session_path), prefix, camera, subject_height_m, calibration,
                                       options, sha)

    info = probe_video(p)
    _check_packets(p, info)
    calib = None if calibration is None else read_calibration(calibration, camera, (info.width_px, info.height_px))
    stats: dict[str, Any] = {}
    with _filtered_native_stderr():
        times, cands = _analyse_video(p, model_complexity, workers, stats)
    info = stats.get("info", info)
    n = len(times)
    if not any(cands):
        raise FileFormatError(p, f"no person found in any of the {n} frames; MediaPipe Pose needs the whole body "
                                 "(or most of it) in view, lit, and at least about 1/8 of the frame height tall")
    tracks = _track(cands, times)
    chosen, selection = _select(tracks, cands, times, info.width_px, person_n, p)
    xy = np.full((n, 33, 2), np.nan)
    vis = np.full((n, 33), np.nan)
    world = np.full((n, 33, 3), np.nan)
    for f, k in zip(chosen.frames, chosen.members, strict=True):
        c = cands[f][k]
        xy[f], vis[f], world[f] = c.xy, c.visibility, c.world
    found = np.isfinite(xy[:, 0, 0])
    selection["tracked_ranges_s"] = _runs(found, times)[:200]
    boxes = np.array([cands[f][k].bbox for f, k in zip(chosen.frames, chosen.members, strict=True)])
    selection["bbox_height_px_median"] = round(float(np.median(boxes[:, 3] - boxes[:, 1])), 1)
    steps = np.diff(times)
    timestamps = {"source": stats.get("timestamps", "container_pts"),
                  "how": "PyAV frame.pts * frame.time_base, presentation order",
                  "time_base": str(info.time_base), "first_s": float(times[0]), "last_s": float(times[-1]),
                  "step_s_median": float(np.median(steps)) if steps.size else math.nan,
                  "step_s_min": float(steps.min()) if steps.size else math.nan,
                  "step_s_max": float(steps.max()) if steps.size else math.nan,
                  "variable_frame_rate": bool(steps.size and (steps.max() - steps.min()) > 1e-3 * np.median(steps)),
                  "dropped_non_increasing": int(stats.get("dropped_non_increasing", 0))}
    warn_list: list[str] = []
    if timestamps["source"] != "container_pts":
        warn_list.append("the container has no presentation timestamps for some frames; their times are index / "
                         "nominal fps")
    if timestamps["dropped_non_increasing"]:
        warn_list.append(f"{timestamps['dropped_non_increasing']} frames with non-increasing timestamps were dropped")
    for w in warn_list:
        warnings.warn(f"{p.name}: {w}.", FusionlabWarning, stacklevel=2)
    import av

    base: dict[str, Any] = {
        "source": p.name, "sha256": sha, "adapter": ADAPTER, "adapter_version": __version__, "options": options,
        "inference_key": key,
        "versions": {"mediapipe": _mediapipe_version(), "model_complexity": int(model_complexity),
                     "landmark_model": _MODEL_FILES[int(model_complexity)], "detector_model": "pose_detection.tflite",
                     "pyav": av.__version__, "algorithm_version": ALGORITHM_VERSION},
        "frame_size_px": [info.width_px, info.height_px], "fps_nominal": info.fps_nominal, "codec": info.codec,
        "container": info.container, "n_frames": n, "n_frames_header": info.n_frames_header,
        "n_frames_no_person": int(n - found.sum()),
        "timestamps": timestamps, "person_selection": selection,
        "detector_tiles_px": [list(t) for t in _tiles(info.width_px, info.height_px)],
        "inference": {**spec, "chunk_frames": CHUNK_FRAMES, "detect_every_n_frames": DETECT_EVERY_N_FRAMES,
                      "detector_runs": stats.get("detector_runs"), "landmark_runs": stats.get("landmark_runs")},
        "cache": {"hit": False},
    }
    scales = _scales(xy, vis, (info.width_px, info.height_px), subject_height_m, calib, warn_list)
    return _to_session(p, prefix, camera, times, xy, vis, world, base, scales, options, sha, warn_list=warn_list)


def _session_from_cache(cached: CachedPose, p: Path, session_path: Path, prefix: str, camera: str,
                        subject_height_m: float | None, calibration: str | os.PathLike[str] | None,
                        options: dict[str, Any], sha: str) -> Session:
    """A `Session` from stored pose streams: no inference; scale recomputed for the options of this call."""
    frame_size = (int(cached.pose2d.meta["frame_size_px"][0]), int(cached.pose2d.meta["frame_size_px"][1]))
    calib = None if calibration is None else read_calibration(calibration, camera, frame_size)
    base = {k: v for k, v in cached.pose2d.meta.items() if k not in ("kind", "scale", "scale_estimates", "cache")}
    base["cache"] = {"hit": True, "session": session_path.name, "streams": [cached.pose2d.name, cached.pose3d.name]}
    base["options"] = options
    xy = np.asarray(cached.pose2d.data, dtype=np.float64)
    vis = np.asarray(cached.pose2d.confidence, dtype=np.float64)
    world = np.asarray(cached.pose3d.data, dtype=np.float64)
    warn_list: list[str] = []
    scales = _scales(xy, vis, frame_size, subject_height_m, calib, warn_list)
    return _to_session(p, prefix, camera, cached.pose2d.times(), xy, vis, world, base, scales, options, sha,
                       clock=cached.clock, source=cached.source, warn_list=warn_list)


def _scales(xy: NDArray[np.float64], vis: NDArray[np.float64], frame_size: tuple[int, int],
            subject_height_m: float | None, calib: CameraCalibration | None,
            warn_list: list[str]) -> dict[str, Any]:
    """Scale estimates, as metadata: ``{"scale": primary or None, "scale_estimates": {...}}``."""
    estimates: dict[str, Any] = {}
    if subject_height_m is not None:
        _check_height(subject_height_m)
        try:
            estimates["subject_height"] = scale_from_subject_height(xy, vis, subject_height_m, frame_size)._asdict()
        except ValidationError as e:  # the video is still worth reading; the reason is kept in the metadata
            warnings.warn(f"{e}; the pose is stored without this scale.", FusionlabWarning, stacklevel=3)
            warn_list.append(str(e))
            estimates["subject_height"] = {"error": str(e)}
    if calib is not None:
        estimates["calibration"] = scale_from_calibration(xy, vis, calib)._asdict()
    primary = next((e for e in (estimates.get("calibration"), estimates.get("subject_height"))
                    if e is not None and "error" not in e), None)
    scale = None if primary is None else {
        "m_per_px": primary["m_per_px"], "sd_m_per_px": primary["sd_m_per_px"], "method": primary["method"],
        "applies_to": "lengths in the plane parallel to the image at the subject's depth"}
    return {"scale": scale, "scale_estimates": estimates,
            "scale_m_per_px": None if scale is None else scale["m_per_px"],
            "scale_method": None if scale is None else scale["method"]}


def _to_session(p: Path, prefix: str, camera: str, times: NDArray[np.float64], xy: NDArray[np.float64],
                vis: NDArray[np.float64], world: NDArray[np.float64], base: dict[str, Any], scales: dict[str, Any],
                options: dict[str, Any], sha: str, *, clock: ClockEntry | None = None,
                source: SourceInfo | None = None, warn_list: list[str] | None = None) -> Session:
    clock_id = clock.clock if clock is not None else f"video:{p.stem}:{sha[:8]}"
    meta = {**base, **scales}
    n = len(times)
    common = {"channels": LANDMARK_NAMES, "rate_hz": None, "time_s": times, "clock": clock_id,
              "modality": "video_pose", "storage_dtype": "float64"}
    pose2d = Stream(name=f"{prefix}pose2d", data=xy, units=("px",) * 33, components=("x", "y"),
                    frame=f"image:{camera}", confidence=vis.copy(), **common,
                    meta={**meta, "kind": "pose2d",
                          "orig_coordinates": "MediaPipe NormalizedLandmark x, y (fractions of the image width and "
                                              "height), multiplied by the width and height in px"})
    pose3d = Stream(name=f"{prefix}pose3d", data=world, units=("m",) * 33, components=("x", "y", "z"),
                    frame=f"world:{camera}", confidence=vis.copy(), **common,
                    meta={**meta, "kind": "pose3d",
                          "world_frame": "MediaPipe pose_world_landmarks: metres, origin at the centre between the "
                                         "hips, x to the image right, y down, z away from the camera"})
    if clock is None:
        clock = ClockEntry(clock=clock_id, method="unsynchronised",
                           quality="video container presentation timestamps (one clock per video file)")
    metadata = {"format": "video", "container": meta.get("container"), "codec": meta.get("codec"),
                "frame_size_px": meta.get("frame_size_px"), "fps_nominal": meta.get("fps_nominal"), "n_frames": n,
                "duration_s": float(times[-1] - times[0]) if n else 0.0,
                "subject_parameters": {} if options.get("subject_height_m") is None else
                {"height_m": options["subject_height_m"]},
                "warnings": list(warn_list or [])}
    info = source if source is not None else source_info(p, ADAPTER, __version__, options, metadata, sha256=sha)
    return Session(streams=(pose2d, pose3d), clocks={clock_id: clock}, sources=(info,))
