"""Clock synchronisation: map every device clock of a session to the session clock, with uncertainty.

Methods, best first: `SyncTrigger` (hardware trigger or sync pulse), `SyncCrossCorrelation` (physically matched
signals, see `fusionlab.sync._signals`), `SyncEvents` (matched gait events). `synchronize_session` runs them on a
session file (``fusionlab sync``). They refuse (`SyncRefused`) rather than guess.
"""

from fusionlab.sync._events import SyncEvents, SyncTrigger, trigger_edges
from fusionlab.sync._session import SyncReport, parse_prior, synchronize_session
from fusionlab.sync._signals import forceplate_signals, imu_signals, marker_signals, signals_of, video_signals
from fusionlab.sync._xcorr import SyncCrossCorrelation
from fusionlab.sync.base import BaseSynchronizer, Signal, SyncRefused, SyncResult

__all__ = [
    "BaseSynchronizer",
    "Signal",
    "SyncCrossCorrelation",
    "SyncEvents",
    "SyncRefused",
    "SyncReport",
    "SyncResult",
    "SyncTrigger",
    "forceplate_signals",
    "imu_signals",
    "marker_signals",
    "parse_prior",
    "signals_of",
    "synchronize_session",
    "trigger_edges",
    "video_signals",
]
