"""fusionlab: a gait-lab workstation that fuses force plates, motion capture, IMUs and video.

``import fusionlab`` stays headless: mediapipe, dash and pyqtgraph are imported only by the functions that need them.
"""

__version__ = "0.1.0"

from fusionlab.exceptions import (
    FileFormatError,
    FrameError,
    FusionlabError,
    FusionlabWarning,
    SessionFormatError,
    UnitError,
    ValidationError,
)
from fusionlab.model import ClockEntry, Event, Session, SourceInfo, Stream
from fusionlab.persist import load_session, open_session, save_session

__all__ = [
    "ClockEntry",
    "Event",
    "FileFormatError",
    "FrameError",
    "FusionlabError",
    "FusionlabWarning",
    "Session",
    "SessionFormatError",
    "SourceInfo",
    "Stream",
    "UnitError",
    "ValidationError",
    "__version__",
    "load_session",
    "open_session",
    "save_session",
]
