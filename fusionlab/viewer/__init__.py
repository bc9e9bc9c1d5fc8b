"""Synchronized session viewer (pyqtgraph + PySide6): ``fusionlab view SESSION.h5``.

`ViewerData` (headless) reads what is shown through the library; the Qt window (`fusionlab.viewer._window`) is
imported only by `show` / `make_window`, so ``import fusionlab.viewer`` needs no display and no Qt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fusionlab.viewer._data import MinMaxPyramid, PoseTrack, Track, VideoFrames, ViewerData, find_video

__all__ = ["MinMaxPyramid", "PoseTrack", "Track", "VideoFrames", "ViewerData", "find_video", "make_window", "show"]


def make_window(path: str | os.PathLike[str], *, live: bool = False, **kwargs: Any) -> Any:
    """Create (not show) the viewer window of a session, or of its live recording when ``live``.

    Creates the ``QApplication`` when there is none. Keyword arguments go to ``ViewerWindow``.
    """
    import pyqtgraph as pg

    from fusionlab.viewer._window import LiveViewerWindow, ViewerWindow

    pg.mkQApp("fusionlab view")
    if live:
        from fusionlab.record import open_live

        return LiveViewerWindow(open_live(path), **kwargs)
    return ViewerWindow(ViewerData.load(Path(path)), **kwargs)


def show(path: str | os.PathLike[str], *, live: bool = False, play: bool = False, **kwargs: Any) -> int:
    """Open the viewer and run the Qt event loop until the window is closed. Returns the exit code."""
    import pyqtgraph as pg

    win = make_window(path, live=live, **kwargs)
    win.show()
    if play and not live:
        win.play()
    return int(pg.exec() or 0)
