"""The pyqtgraph window: synchronized plots, event lanes, video with pose overlay, one cursor, playback.

Imported only by `fusionlab.viewer.show` / ``fusionlab view`` (needs PySide6 and pyqtgraph).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np
import pyqtgraph as pg
from pyqtgraph.Qt import QtCore, QtGui, QtWidgets

from fusionlab.viewer._data import POSE_CONNECTIONS, PoseTrack, VideoFrames, ViewerData

__all__ = ["CURSOR_RGB", "PALETTE", "LiveViewerWindow", "ViewerWindow"]

log = logging.getLogger(__name__)

PALETTE: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
    (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
)
"""Curve colours (tab10), by track order within a plot."""
CURSOR_RGB = (255, 215, 0)
"""The time cursor (gold): no curve uses it."""
POSE_RGB = (0, 255, 0)
DEFAULT_CHANNELS_PER_STREAM = 4
PLAY_INTERVAL_MS = 15
DOWNSAMPLE_MODES = ("pyramid", "pyqtgraph", "none")


class ViewerWindow(QtWidgets.QMainWindow):
    """Synchronized viewer of a session.

    Parameters
    ----------
    data
        What to show (`ViewerData.load`).
    window_s
        Width of the visible time window (s); zoom changes it.
    downsample
        Display downsampling. ``"pyramid"`` (default, also ``True``): each curve is drawn from its precomputed
        min/max pyramid (`fusionlab.viewer.MinMaxPyramid`) at the level giving 1-2 buckets per pixel column, for
        the visible window plus half a window on each side; the curve data change only when the view leaves that
        span or the zoom changes level, so while playing most redraws only move the cursor and the video.
        ``"pyqtgraph"``: pyqtgraph's clip-to-view + auto-downsampling ("peak"), recomputed from the samples at
        every scroll. ``"none"`` (also ``False``): every sample is drawn (for comparison in the benchmark).
    follow
        How the view follows the cursor: ``"scroll"`` (default) keeps the cursor in the middle, every plot scrolls
        at every redraw; ``"page"`` keeps the window fixed while the cursor crosses it and turns the page (the
        cursor back at 10 % of the window) when it reaches the right edge, so most redraws only move the cursor
        and the video.
    visible
        Track keys shown at start; None shows the first `DEFAULT_CHANNELS_PER_STREAM` channels of each stream
        and every fused signal.
    """

    def __init__(self, data: ViewerData, *, window_s: float = 5.0, downsample: bool | str = "pyramid",
                 visible: list[str] | None = None, follow: str = "scroll") -> None:
        super().__init__()
        self.data = data
        self.window_s = window_s
        mode = {True: "pyramid", False: "none"}.get(downsample, downsample) if isinstance(downsample, bool) \
            else str(downsample)
        if mode not in DOWNSAMPLE_MODES:
            msg = f"downsample must be one of {', '.join(DOWNSAMPLE_MODES)}, got {downsample!r}"
            raise ValueError(msg)
        self.downsample = mode
        self._loaded: dict[str, tuple[float, float, int]] = {}  # pyramid mode: key -> (t0, t1, level) drawn
        self.n_curve_updates = 0
        self.time_s = data.t_min_s
        self.speed = 1.0
        self.playing = False
        if follow not in ("scroll", "page"):
            msg = f"follow must be 'scroll' or 'page', got {follow!r}"
            raise ValueError(msg)
        self.follow_mode = follow
        self.follow = True
        self._play_wall0 = 0.0
        self._play_t0 = 0.0
        self.n_redraws = 0
        self.setWindowTitle(f"fusionlab view - {data.path.name}")
        self.resize(1400, 900)
        if visible is None:
            visible = []
            per_group: dict[str, int] = {}
            for tr in data.tracks:
                n = per_group.get(tr.group, 0)
                if tr.modality == "fused" or n < DEFAULT_CHANNELS_PER_STREAM:
                    visible.append(tr.key)
                per_group[tr.group] = n + 1
        self.visible: set[str] = set(visible)
        self.plots: dict[str, pg.PlotItem] = {}
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.bands: dict[str, pg.FillBetweenItem] = {}
        self.cursors: list[pg.InfiniteLine] = []
        self._build()
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(PLAY_INTERVAL_MS)
        self._timer.timeout.connect(self.tick)
        self.set_time(self.time_s)

    # ------------------------------------------------------------------------------------------ layout
    def _build(self) -> None:
        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        outer = QtWidgets.QVBoxLayout(central)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        outer.addWidget(split, 1)
        # stream / channel chooser
        self.tree = QtWidgets.QTreeWidget()
        self.tree.setHeaderLabels(["streams and channels"])
        self._tree_items: dict[str, QtWidgets.QTreeWidgetItem] = {}
        for group in self.data.groups():
            parent = QtWidgets.QTreeWidgetItem([group])
            self.tree.addTopLevelItem(parent)
            for tr in self.data.tracks:
                if tr.group != group:
                    continue
                item = QtWidgets.QTreeWidgetItem([f"{tr.label} [{tr.unit}]"])
                item.setData(0, QtCore.Qt.ItemDataRole.UserRole, tr.key)
                item.setCheckState(0, QtCore.Qt.CheckState.Checked if tr.key in self.visible
                                   else QtCore.Qt.CheckState.Unchecked)
                parent.addChild(item)
                self._tree_items[tr.key] = item
        self.tree.itemChanged.connect(self._on_tree_changed)
        split.addWidget(self.tree)
        # plots
        self.glw = pg.GraphicsLayoutWidget()
        split.addWidget(self.glw)
        # video
        right = QtWidgets.QWidget()
        rl = QtWidgets.QVBoxLayout(right)
        self.video_view = pg.GraphicsLayoutWidget()
        self.video_box = self.video_view.addViewBox(lockAspect=True, invertY=True)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.video_box.addItem(self.image_item)
        self.bones_item = pg.PlotDataItem(pen=pg.mkPen(POSE_RGB, width=2), connect="pairs")
        self.pose_item = pg.ScatterPlotItem(size=6, pen=None, brush=pg.mkBrush(*POSE_RGB))
        self.video_box.addItem(self.bones_item)
        self.video_box.addItem(self.pose_item)
        self.video_label = QtWidgets.QLabel("")
        self.video_label.setWordWrap(True)
        rl.addWidget(self.video_view, 1)
        rl.addWidget(self.video_label)
        split.addWidget(right)
        split.setSizes([220, 800, 380])
        self.pose: PoseTrack | None = self.data.poses[0] if self.data.poses else None
        self.frames: VideoFrames | None = None
        self.frame_index = -1
        self.frame_time_s = math.nan
        if self.pose is not None and self.pose.video is not None:
            try:
                self.frames = VideoFrames(self.pose.video)
            except Exception as e:
                self.data.notes.append(f"cannot decode {self.pose.video}: {e}; showing the pose alone")
        if self.pose is None:
            self.video_label.setText("no video pose stream in this session")
            right.hide()
        elif self.frames is None:
            w, h = self.pose.frame_size_px
            self.video_box.setRange(xRange=(0, w or 1), yRange=(0, h or 1))
        # controls
        bar = QtWidgets.QHBoxLayout()
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.clicked.connect(self.toggle_play)
        back = QtWidgets.QPushButton("< Step")
        back.clicked.connect(lambda: self.step(-1))
        fwd = QtWidgets.QPushButton("Step >")
        fwd.clicked.connect(lambda: self.step(1))
        self.speed_box = QtWidgets.QComboBox()
        self.speed_box.addItems(["0.25x", "0.5x", "1x", "2x"])
        self.speed_box.setCurrentText("1x")
        self.speed_box.currentTextChanged.connect(lambda s: self.set_speed(float(s[:-1])))
        self.zoom_box = QtWidgets.QDoubleSpinBox()
        self.zoom_box.setRange(0.05, 3600.0)
        self.zoom_box.setSuffix(" s window")
        self.zoom_box.setValue(self.window_s)
        self.zoom_box.valueChanged.connect(self.set_window)
        self.slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.slider.setRange(0, 10000)
        self.slider.valueChanged.connect(self._on_slider)
        self.time_label = QtWidgets.QLabel("")
        for w in (self.play_button, back, fwd, self.speed_box, self.zoom_box):
            bar.addWidget(w)
        bar.addWidget(self.slider, 1)
        bar.addWidget(self.time_label)
        outer.addLayout(bar)
        self.notes_label = QtWidgets.QLabel("\n".join(self.data.notes))
        self.notes_label.setWordWrap(True)
        outer.addWidget(self.notes_label)
        if not self.data.notes:
            self.notes_label.hide()
        self._build_plots()

    def _build_plots(self) -> None:
        self.glw.clear()
        self.plots.clear()
        self.curves.clear()
        self.bands.clear()
        self.cursors.clear()
        self._loaded.clear()
        master: pg.PlotItem | None = None
        row = 0
        for group in self.data.groups():
            tracks = [t for t in self.data.tracks if t.group == group and t.key in self.visible]
            if not tracks:
                continue
            p = self.glw.addPlot(row=row, col=0)
            row += 1
            p.setLabel("left", group, units=tracks[0].unit if len({t.unit for t in tracks}) == 1 else None)
            # speed: no grid (grid lines are drawn by the axes, with text, at every scroll), the time axis only
            # on the last plot, and the static left axis and legend cached as pixmaps
            p.hideAxis("bottom")
            p.getAxis("left").setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            p.getAxis("left").setWidth(70)
            auto = self.downsample == "pyqtgraph"
            p.setClipToView(auto)
            p.setDownsampling(auto=auto, mode="peak")
            legend = p.addLegend(offset=(5, 5), labelTextSize="7pt")
            legend.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            for i, tr in enumerate(tracks):
                color = PALETTE[i % len(PALETTE)]
                if tr.band_sd is not None:
                    lo = pg.PlotDataItem(tr.time_s, tr.values - 2 * tr.band_sd, pen=None)
                    hi = pg.PlotDataItem(tr.time_s, tr.values + 2 * tr.band_sd, pen=None)
                    band = pg.FillBetweenItem(lo, hi, brush=pg.mkBrush(*color, 60))
                    p.addItem(band)
                    self.bands[tr.key] = band
                if self.downsample == "pyramid":  # data set by _update_curves for the view
                    curve = p.plot([], [], pen=pg.mkPen(color, width=1), name=tr.label, connect="finite")
                else:
                    curve = p.plot(tr.time_s, tr.values, pen=pg.mkPen(color, width=1), name=tr.label,
                                   connect="finite")
                self.curves[tr.key] = curve
            # a fixed y range from the data (no auto-range at every scroll or curve update)
            lo = [float(np.nanmin(tr.pyramid.mins[-1])) for tr in tracks if len(tr.values)]
            hi = [float(np.nanmax(tr.pyramid.maxs[-1])) for tr in tracks if len(tr.values)]
            lo_f, hi_f = [v for v in lo if math.isfinite(v)], [v for v in hi if math.isfinite(v)]
            if lo_f and hi_f:
                y0, y1 = min(lo_f), max(hi_f)
                pad = 0.05 * (y1 - y0) if y1 > y0 else 0.5
                p.setYRange(y0 - pad, y1 + pad, padding=0)
            p.enableAutoRange(x=False, y=False)
            self._add_cursor(p)
            if master is None:
                master = p
            else:
                p.setXLink(master)
            self.plots[group] = p
        if self.data.events:
            p = self.glw.addPlot(row=row, col=0)
            p.setMaximumHeight(40 + 18 * len(self.data.events))
            lanes = sorted(self.data.events)
            p.getAxis("left").setTicks([[(i, lane) for i, lane in enumerate(lanes)]])
            p.setYRange(-0.5, len(lanes) - 0.5)
            p.setMouseEnabled(y=False)
            p.hideAxis("bottom")
            p.getAxis("left").setWidth(70)
            p.getAxis("left").setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
            for i, lane in enumerate(lanes):
                ts = np.array([t for t, _ in self.data.events[lane]])
                p.addItem(pg.ScatterPlotItem(ts, np.full(len(ts), i), symbol="t1", size=10, pen=None,
                                             brush=pg.mkBrush(*PALETTE[i % len(PALETTE)])))
            self._add_cursor(p)
            if master is not None:
                p.setXLink(master)
            self.plots["events"] = p
            master = master or p
        last = list(self.plots.values())[-1] if self.plots else None
        if last is not None:
            last.showAxis("bottom")
            last.setLabel("bottom", "session time", units="s")
        self._master = master
        if master is not None:
            master.sigXRangeChanged.connect(self._on_range_changed)
            master.vb.sigResized.connect(self._on_resized)

    def _add_cursor(self, p: pg.PlotItem) -> None:
        line = pg.InfiniteLine(pos=self.time_s, angle=90, movable=True, pen=pg.mkPen(CURSOR_RGB, width=2))
        line.sigDragged.connect(lambda ln: self.set_time(float(ln.value()), scroll=False))
        p.addItem(line, ignoreBounds=True)
        self.cursors.append(line)

    # ------------------------------------------------------------------------------------------ time control
    def set_time(self, t_s: float, *, scroll: bool = True) -> None:
        """Move the cursor (and the video frame) to session time ``t_s``; keep it in view while following."""
        t_s = float(np.clip(t_s, self.data.t_min_s, self.data.t_max_s))
        self.time_s = t_s
        for c in self.cursors:
            if c.value() != t_s:
                c.blockSignals(True)
                c.setValue(t_s)
                c.blockSignals(False)
        if scroll and self.follow and self._master is not None:
            if self.follow_mode == "scroll":
                self._master.setXRange(t_s - self.window_s / 2, t_s + self.window_s / 2, padding=0)
            else:
                x0, x1 = self._master.vb.viewRange()[0]
                if not (x0 <= t_s <= x1) or abs((x1 - x0) - self.window_s) > 1e-9 * max(1.0, self.window_s):
                    x0 = t_s - 0.1 * self.window_s
                    self._master.setXRange(x0, x0 + self.window_s, padding=0)
        if self._master is not None:
            x0, x1 = self._master.vb.viewRange()[0]
            self._update_curves(float(x0), float(x1))
        self._update_video()
        span = self.data.t_max_s - self.data.t_min_s
        self.slider.blockSignals(True)
        self.slider.setValue(round(10000 * (t_s - self.data.t_min_s) / span) if span > 0 else 0)
        self.slider.blockSignals(False)
        self.time_label.setText(f"{t_s:9.3f} s")

    def _update_video(self) -> None:
        if self.pose is None:
            return
        i = self.pose.frame_index(self.time_s)
        if i == self.frame_index:
            return
        self.frame_index = i
        self.frame_time_s = float(self.pose.time_s[i])
        if self.frames is not None:
            img = self.frames.frame(self.frame_time_s)
            self.image_item.setImage(img, autoLevels=False, levels=(0, 255))
        xy = self.pose.xy[i]
        ok = np.isfinite(xy).all(axis=1)
        self.pose_item.setData(xy[ok, 0], xy[ok, 1])
        pairs = np.array([xy[[a, b]] for a, b in POSE_CONNECTIONS if ok[a] and ok[b]]).reshape(-1, 2)
        self.bones_item.setData(pairs[:, 0], pairs[:, 1]) if len(pairs) else self.bones_item.clear()
        what = self.pose.video.name if self.pose.video is not None else "pose only (video file not found)"
        self.video_label.setText(f"{self.pose.stream}: frame {i} at {self.frame_time_s:.3f} s ({what})")

    def step(self, n_frames: int = 1) -> None:
        """Step by video frames (or by 10 ms when the session has no video pose)."""
        self.pause()
        if self.pose is not None:
            i = int(np.clip(self.pose.frame_index(self.time_s) + n_frames, 0, len(self.pose.time_s) - 1))
            self.set_time(float(self.pose.session_time_s[i]))
        else:
            self.set_time(self.time_s + 0.01 * n_frames)

    def scrub(self, fraction: float) -> None:
        """Jump to a fraction (0-1) of the session's span (what the slider does)."""
        self.set_time(self.data.t_min_s + fraction * (self.data.t_max_s - self.data.t_min_s))

    def set_window(self, width_s: float) -> None:
        """Zoom: show ``width_s`` seconds around the cursor."""
        self.window_s = float(width_s)
        if self.zoom_box.value() != width_s:
            self.zoom_box.blockSignals(True)
            self.zoom_box.setValue(width_s)
            self.zoom_box.blockSignals(False)
        self.set_time(self.time_s)

    def set_speed(self, speed: float) -> None:
        """Playback speed (1 = real time)."""
        self._play_t0, self._play_wall0 = self.time_s, time.monotonic()
        self.speed = speed

    def set_visible(self, key: str, on: bool) -> None:
        """Show or hide one track (rebuilds the plots)."""
        item = self._tree_items[key]
        item.setCheckState(0, QtCore.Qt.CheckState.Checked if on else QtCore.Qt.CheckState.Unchecked)

    def play(self) -> None:
        """Play at ``speed`` x real time from the cursor."""
        if self.time_s >= self.data.t_max_s:
            self.time_s = self.data.t_min_s
        self._play_t0, self._play_wall0 = self.time_s, time.monotonic()
        self.playing = True
        self.play_button.setText("Pause")
        self._timer.start()

    def pause(self) -> None:
        """Stop playing."""
        self.playing = False
        self.play_button.setText("Play")
        self._timer.stop()

    def toggle_play(self) -> None:
        """Play or pause."""
        self.pause() if self.playing else self.play()

    def tick(self) -> None:
        """One playback step: the cursor follows the wall clock."""
        t = self._play_t0 + (time.monotonic() - self._play_wall0) * self.speed
        if t >= self.data.t_max_s:
            self.set_time(self.data.t_max_s)
            self.pause()
            return
        self.set_time(t)
        self.n_redraws += 1

    # ------------------------------------------------------------------------------------------ callbacks
    def _on_slider(self, value: int) -> None:
        self.scrub(value / 10000.0)

    def _update_curves(self, t0: float, t1: float) -> None:
        """Pyramid mode: give each curve the points of ``[t0, t1]`` (plus half a window each side) if it lacks them.

        A curve keeps its data while the view stays inside the span it was given and the zoom needs the same
        pyramid level, so scrolling while playing changes no curve data most of the time.
        """
        if self.downsample != "pyramid" or t1 <= t0 or self._master is None:
            return
        n_px = max(100, int(self._master.vb.width()))
        margin = 0.5 * (t1 - t0)
        for key, curve in self.curves.items():
            tr = self.data.track(key)
            pyr = tr.pyramid
            t = tr.time_s
            n_in_view = int(np.searchsorted(t, t1, side="right") - np.searchsorted(t, t0, side="left"))
            level = pyr.level_for(n_in_view, n_px)
            got = self._loaded.get(key)
            if got is not None and got[2] == level and got[0] <= t0 and t1 <= got[1]:
                continue
            x, y, level = pyr.view(t0 - margin, t1 + margin, n_px, level=level)
            curve.setData(x, y, connect="finite")
            self._loaded[key] = (t0 - margin, t1 + margin, level)
            self.n_curve_updates += 1

    def _on_range_changed(self, _vb: Any, rng: tuple[float, float]) -> None:
        self._update_curves(float(rng[0]), float(rng[1]))
        width = float(rng[1] - rng[0])
        if width > 0 and abs(width - self.window_s) > 1e-9 * max(1.0, width):
            self.window_s = width
            self.zoom_box.blockSignals(True)
            self.zoom_box.setValue(width)
            self.zoom_box.blockSignals(False)

    def _on_resized(self, *_: Any) -> None:
        self._loaded.clear()  # the pixel width changed: the pyramid level may change
        if self._master is not None:
            x0, x1 = self._master.vb.viewRange()[0]
            self._update_curves(float(x0), float(x1))

    def _on_tree_changed(self, item: QtWidgets.QTreeWidgetItem, _col: int) -> None:
        key = item.data(0, QtCore.Qt.ItemDataRole.UserRole)
        if key is None:
            return
        if item.checkState(0) == QtCore.Qt.CheckState.Checked:
            self.visible.add(key)
        else:
            self.visible.discard(key)
        self._build_plots()
        self.set_time(self.time_s)

    # ------------------------------------------------------------------------------------------ geometry (tests)
    def data_to_window_px(self, group: str, t_s: float, value: float) -> tuple[int, int]:
        """Window pixel (x, y) where the point ``(t_s, value)`` of a plot is drawn (for tests and tools)."""
        p = self.plots[group]
        scene_pt = p.vb.mapViewToScene(QtCore.QPointF(t_s, value))
        view_pt = self.glw.mapFromScene(scene_pt)
        win_pt = self.glw.mapTo(self, view_pt)
        return round(win_pt.x()), round(win_pt.y())

    def image_to_window_px(self, x_px: float, y_px: float) -> tuple[int, int]:
        """Window pixel where the video image pixel ``(x_px, y_px)`` is drawn."""
        scene_pt = self.video_box.mapViewToScene(QtCore.QPointF(x_px, y_px))
        view_pt = self.video_view.mapFromScene(scene_pt)
        win_pt = self.video_view.mapTo(self, view_pt)
        return round(win_pt.x()), round(win_pt.y())

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:  # noqa: N802 - Qt's name
        """Stop playback and close the video."""
        self.pause()
        if self.frames is not None:
            self.frames.close()
        super().closeEvent(event)


class LiveViewerWindow(ViewerWindow):
    """The viewer on a live recording file: re-reads the last ``history_s`` seconds every ``refresh_ms``.

    The cursor stays at the newest sample; the reader is a SWMR reader (`fusionlab.record.open_live`).
    """

    def __init__(self, reader: Any, *, history_s: float = 30.0, refresh_ms: int = 500, **kwargs: Any) -> None:
        self.reader = reader
        self.history_s = history_s
        super().__init__(ViewerData.load(reader.path, reader=reader), **kwargs)
        self._live_timer = QtCore.QTimer(self)
        self._live_timer.setInterval(refresh_ms)
        self._live_timer.timeout.connect(self.refresh_live)
        self._live_timer.start()

    def refresh_live(self) -> None:
        """Read what the recorder flushed since the last refresh and move the cursor to the end."""
        self.reader.refresh()
        t_end = -math.inf
        for name in self.reader.stream_names:
            info = self.reader.stream_info(name)
            if info["n_samples"] == 0:
                continue
            t_last = info["device_start_s"] + info["duration_s"]
            s = self.reader.read_stream(name, t_last - self.history_s, None)
            t = self.reader.to_session_time(s)
            for ci, ch in enumerate(s.channels):
                key = f"{name}/{ch}"
                for tr in self.data.tracks:
                    if tr.key == key:
                        tr.time_s, tr.values = t, s.data[:, ci]
                        self._loaded.pop(key, None)  # pyramid mode: rebuilt from the new data at next update
                        if key in self.curves and self.downsample != "pyramid":
                            self.curves[key].setData(t, tr.values)
            if len(t):
                t_end = max(t_end, float(t[-1]))
        if math.isfinite(t_end):
            self.data.t_max_s = t_end
            self.data.t_min_s = min(self.data.t_min_s, t_end)
            self.set_time(t_end)
