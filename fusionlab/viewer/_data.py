"""What the viewer shows, read through the library (no Qt here, so it is unit-testable headless).

* `ViewerData.load`: every stream channel as a `Track` on the session clock (`SessionReader.to_session_time`),
  every fused signal (`fusionlab.fusion.read_fusion`) with its ±2 SD band, events grouped in lanes per source.
* `VideoFrames`: decodes the frame on display at a time from the source video (PyAV, presentation timestamps).
* `PoseTrack`: the 33 image landmarks of a ``video_pose`` stream, per frame.

The viewer owns no processing: it maps times through the session's clock entries and reads; display
downsampling (min/max per pixel) is done by pyqtgraph at draw time.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.persist import SessionReader, open_session

__all__ = ["PoseTrack", "Track", "VideoFrames", "ViewerData", "find_video"]

log = logging.getLogger(__name__)

# MediaPipe Pose skeleton: pairs of landmark indices drawn as bones over the video frame
POSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (11, 12), (11, 13), (13, 15), (12, 14), (14, 16), (11, 23), (12, 24), (23, 24), (23, 25), (25, 27),
    (27, 29), (29, 31), (27, 31), (24, 26), (26, 28), (28, 30), (30, 32), (28, 32), (0, 11), (0, 12),
    (15, 17), (15, 19), (16, 18), (16, 20),
)


@dataclass
class Track:
    """One curve: a channel (or channel component) of a stream, or a fused signal, on the session clock.

    Attributes
    ----------
    key
        Unique ``"<stream>/<channel>"`` (fused: ``"fused:<result>.<signal>/<channel>"``).
    group
        The plot it belongs to (stream name, or ``"fused:<result>.<signal>"``).
    time_s
        ``(n,)`` session-clock times (s).
    values
        ``(n,)`` values in ``unit`` (SI).
    band_sd
        ``(n,)`` standard deviation for an uncertainty band (fused signals), else None.
    """

    key: str
    group: str
    label: str
    modality: str
    unit: str
    time_s: NDArray[np.float64]
    values: NDArray[np.float64]
    band_sd: NDArray[np.float64] | None = None


@dataclass
class PoseTrack:
    """Image landmarks of one camera: ``xy`` (n_frames, 33, 2) px, ``time_s`` device clock, ``session_time_s``."""

    stream: str
    camera: str
    time_s: NDArray[np.float64]
    session_time_s: NDArray[np.float64]
    xy: NDArray[np.float64]
    frame_size_px: tuple[int, int]
    video: Path | None
    source_name: str

    def frame_index(self, t_session: float) -> int:
        """Index of the frame on display at ``t_session`` (the last one at or before it; 0 before the first)."""
        return int(max(0, np.searchsorted(self.session_time_s, t_session + 1e-9, side="right") - 1))


def find_video(session_path: Path, source: str) -> Path | None:
    """The video file of a pose stream: the recorded path if it exists, else a file of that name beside the session."""
    if not source:
        return None
    p = Path(source)
    for cand in (p if p.is_absolute() else session_path.parent / p, session_path.parent / p.name):
        if cand.is_file():
            return cand
    return None


@dataclass
class ViewerData:
    """Everything the viewer draws, read from one session (or a live recording file)."""

    path: Path
    tracks: list[Track] = field(default_factory=list)
    events: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    poses: list[PoseTrack] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    t_min_s: float = 0.0
    t_max_s: float = 1.0

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, reader: SessionReader | None = None) -> ViewerData:
        """Read a session (``reader`` given: read through it, e.g. a live SWMR reader)."""
        path = Path(path)
        own = reader is None
        r = open_session(path) if reader is None else reader
        try:
            out = cls(path=path)
            out._read_streams(r)
            out._read_events(r)
        finally:
            if own:
                r.close()
        out._read_fused()
        out._update_span()
        return out

    def _read_streams(self, r: SessionReader) -> None:
        for name in r.stream_names:
            info = r.stream_info(name)
            if info["n_samples"] == 0:
                continue
            s = r.read_stream(name)
            t = r.to_session_time(s)
            units = list(info["units"])
            comps = list(info["components"])
            if s.modality == "video_pose" and str(info["frame"]).startswith("image:") and s.data.ndim == 3:
                self._add_pose(name, info, s.times(), t, s.data)
            for ci, ch in enumerate(s.channels):
                if s.data.ndim == 2:
                    self.tracks.append(Track(f"{name}/{ch}", name, ch, s.modality, units[ci], t, s.data[:, ci]))
                else:
                    for k, comp in enumerate(comps):
                        self.tracks.append(Track(f"{name}/{ch}.{comp}", name, f"{ch}.{comp}", s.modality,
                                                 units[ci], t, s.data[:, ci, k]))

    def _add_pose(self, name: str, info: dict[str, Any], t_dev: NDArray[np.float64], t: NDArray[np.float64],
                  data: NDArray[np.float64]) -> None:
        meta = info["meta"]
        source = str(meta.get("source", ""))
        video = find_video(self.path, source)
        size = tuple(int(v) for v in meta.get("frame_size_px", (0, 0)))
        camera = str(info["frame"]).split(":", 1)[1]
        if video is None:
            self.notes.append(f"{name}: video file {source!r} not found beside the session "
                              f"({self.path.parent}); showing the pose alone")
        self.poses.append(PoseTrack(stream=name, camera=camera, time_s=np.asarray(t_dev), session_time_s=t,
                                    xy=np.asarray(data[:, :, :2]), frame_size_px=(size[0], size[1]),
                                    video=video, source_name=source))

    def _read_events(self, r: SessionReader) -> None:
        for e in r.events():
            self.events.setdefault(e.source, []).append((e.time_s, f"{e.side} {e.kind}".strip()))

    def _read_fused(self) -> None:
        if self.path.name.endswith(".live"):
            return
        try:
            from fusionlab.fusion import read_fusion

            results = read_fusion(self.path)
        except Exception as e:
            self.notes.append(f"fusion results not readable: {e}")
            return
        for rname, res in results.items():
            for sig in res.signals:
                group = f"fused:{rname}.{sig.name}"
                mean = np.asarray(sig.mean).reshape(len(sig.times), -1)
                var = np.asarray(sig.var).reshape(len(sig.times), -1)
                for ci, ch in enumerate(sig.channels):
                    self.tracks.append(Track(f"{group}/{ch}", group, ch, "fused", sig.units[ci],
                                             np.asarray(sig.times, dtype=np.float64), mean[:, ci],
                                             np.sqrt(np.maximum(var[:, ci], 0.0))))

    def _update_span(self) -> None:
        lo, hi = [], []
        for tr in self.tracks:
            if len(tr.time_s):
                lo.append(float(tr.time_s[0]))
                hi.append(float(tr.time_s[-1]))
        for ev in self.events.values():
            lo += [t for t, _ in ev]
            hi += [t for t, _ in ev]
        if lo:
            self.t_min_s, self.t_max_s = min(lo), max(max(hi), min(lo) + 1e-3)

    def groups(self) -> list[str]:
        """Plot groups in display order (streams, then fused signals)."""
        seen: dict[str, None] = {}
        for tr in self.tracks:
            seen.setdefault(tr.group, None)
        return list(seen)

    def track(self, key: str) -> Track:
        """The track with this key."""
        for tr in self.tracks:
            if tr.key == key:
                return tr
        msg = f"no track {key!r}; tracks are {', '.join(t.key for t in self.tracks[:20])}"
        raise KeyError(msg)


class VideoFrames:
    """Decode the video frame with a given presentation time (PyAV), with a small cache and forward decoding.

    Sequential playback decodes forward without seeking; a jump backwards (or more than 1 s ahead) seeks to the
    keyframe before the target and decodes forward to it.
    """

    def __init__(self, path: Path, *, cache_frames: int = 48) -> None:
        import av

        self.path = path
        self._container = av.open(str(path))
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"
        self._iter: Any = None
        self._last_t = float("inf")
        self._cache: OrderedDict[int, NDArray[np.uint8]] = OrderedDict()
        self._cache_frames = cache_frames

    def close(self) -> None:
        """Close the file."""
        self._container.close()

    @staticmethod
    def _key(t: float) -> int:
        return round(t * 1e4)  # 0.1 ms bins: frame times are at least ms apart

    def frame(self, t_s: float) -> NDArray[np.uint8]:
        """RGB image ``(h, w, 3)`` uint8 of the frame whose timestamp is ``t_s`` (the container's pts, s)."""
        key = self._key(t_s)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if self._iter is None or t_s < self._last_t - 1e-6 or t_s > self._last_t + 1.0:
            tb = self._stream.time_base
            self._container.seek(max(0, int(t_s / tb)) if tb else 0, stream=self._stream, backward=True,
                                 any_frame=False)
            self._iter = self._container.decode(self._stream)
        best = None
        for fr in self._iter:
            if fr.pts is None:
                continue
            ft = float(fr.pts * fr.time_base)
            self._last_t = ft
            img = fr.to_ndarray(format="rgb24")
            self._store(self._key(ft), img)
            if ft >= t_s - 1e-4:
                best = img
                break
        if best is None:  # past the end: show the last decoded frame
            self._iter = None
            best = next(reversed(self._cache.values()))
        return best

    def _store(self, key: int, img: NDArray[np.uint8]) -> None:
        self._cache[key] = img
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
