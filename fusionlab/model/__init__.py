"""Data model: streams, events, clocks and sessions (NumPy only)."""

from fusionlab.model._events import SESSION_CLOCK, SIDES, ClockEntry, Event, normalise_event
from fusionlab.model._session import Session, SourceInfo
from fusionlab.model._stream import MODALITIES, Stream, unique_labels

__all__ = [
    "MODALITIES",
    "SESSION_CLOCK",
    "SIDES",
    "ClockEntry",
    "Event",
    "Session",
    "SourceInfo",
    "Stream",
    "normalise_event",
    "unique_labels",
]
