"""What the viewer shows, read through the library (no Qt here, so it is unit-testable headless).

* `ViewerData.load`: every stream channel as a `Track` on the session clock (`SessionReader.to_session_time`),
  every fused signal (`fusionlab.fusion.read_fusion`) with its ±2 SD band, events grouped in lanes per source.
* `VideoFrames`: decodes the frame on display at a time from the source video (PyAV, presentation timestamps).
* `PoseTrack`: the 33 image landmarks of a ``video_pose`` stream, per frame.

The viewer owns no processing: it maps times through the session's clock entries and reads. Display downsampling
uses `MinMaxPyramid` (built once per track, at its first display): any visible window at any zoom is drawn from
O(pixels) points that keep every extreme.
"""

from __future__ import annotations

import logging
import math
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.persist import SessionReader, open_session

__all__ = ["MinMaxPyramid", "PoseTrack", "Track", "VideoFrames", "ViewerData", "find_video"]

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
    _pyramid: MinMaxPyramid | None = field(default=None, repr=False, compare=False)

    @property
    def pyramid(self) -> MinMaxPyramid:
        """The min/max pyramid of this track (built at first use, then kept; rebuilt if the data were replaced)."""
        if self._pyramid is None or self._pyramid.time_s is not self.time_s or self._pyramid.values is not self.values:
            self._pyramid = MinMaxPyramid(self.time_s, self.values)
        return self._pyramid


class MinMaxPyramid:
    """Min/max pyramid of one curve, for display at any zoom from O(pixels) points.

    Level 0 is the samples themselves; level ``k`` (k >= 1) holds, for every bucket of ``2**k`` consecutive
    samples, the minimum and the maximum (NaN ignored; NaN only when the whole bucket is NaN), built pairwise from
    level ``k - 1`` (total extra memory: 2 x the samples). `view` picks the coarsest level that still gives at
    least one bucket per pixel column and returns each bucket as two points (min then max) at the time of its
    first sample, so every extreme of the data in view is drawn and a window at any zoom costs
    ``O(pixels)`` points to slice and draw instead of ``O(samples)``.
    """

    MIN_BUCKETS = 64  # stop when a level would have fewer buckets than this

    def __init__(self, time_s: NDArray[np.float64], values: NDArray[np.float64]) -> None:
        self.time_s = time_s
        self.values = values
        self.mins: list[NDArray[np.float64]] = [np.asarray(values, dtype=np.float64)]
        self.maxs: list[NDArray[np.float64]] = [self.mins[0]]
        lo = hi = self.mins[0]
        with np.errstate(invalid="ignore"):
            while len(lo) >= 2 * self.MIN_BUCKETS:
                m = len(lo) // 2
                odd = len(lo) % 2
                nlo = np.fmin(lo[0:2 * m:2], lo[1:2 * m:2])
                nhi = np.fmax(hi[0:2 * m:2], hi[1:2 * m:2])
                if odd:  # the last, partial bucket
                    nlo = np.append(nlo, lo[-1])
                    nhi = np.append(nhi, hi[-1])
                lo, hi = nlo, nhi
                self.mins.append(lo)
                self.maxs.append(hi)

    @property
    def n_levels(self) -> int:
        """Number of levels (level 0 = the samples)."""
        return len(self.mins)

    def level_for(self, n_samples: int, n_pixels: int) -> int:
        """The coarsest level with at least ``n_pixels`` buckets over ``n_samples`` samples (0: draw samples)."""
        if n_samples <= 2 * max(1, n_pixels):
            return 0
        k = math.floor(math.log2(n_samples / max(1, n_pixels)))
        return int(min(max(k, 0), self.n_levels - 1))

    def view(self, t0: float, t1: float, n_pixels: int, *, level: int | None = None
             ) -> tuple[NDArray[np.float64], NDArray[np.float64], int]:
        """Points to draw ``[t0, t1]`` on ``n_pixels`` columns: ``(t, y, level)``.

        Includes one sample (bucket) beyond each end so the curve reaches the edges. At level 0 these are the
        samples themselves; at level k, two points (min, max) per bucket.
        """
        t = self.time_s
        i0 = max(0, int(np.searchsorted(t, t0, side="left")) - 1)
        i1 = min(len(t), int(np.searchsorted(t, t1, side="right")) + 1)
        if level is None:
            level = self.level_for(i1 - i0, n_pixels)
        if level == 0:
            return t[i0:i1], self.mins[0][i0:i1], 0
        b = 1 << level
        j0, j1 = i0 // b, min(len(self.mins[level]), -(-i1 // b))
        tb = t[j0 * b:j1 * b:b]
        x = np.repeat(tb, 2)
        y = np.empty(2 * len(tb))
        y[0::2] = self.mins[level][j0:j1]
        y[1::2] = self.maxs[level][j0:j1]
        return x, y, level


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
            text = e.label if e.kind == "marker" else f"{e.side} {e.kind}".strip()
            self.events.setdefault(e.source, []).append((e.time_s, text))

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
