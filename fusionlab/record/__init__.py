"""Live recording: LSL streams into a session, through a flushed SWMR live file (see `fusionlab.record._live`).

``fusionlab record --lsl -o S01.h5`` records into ``S01.h5.live`` (readable while being written, with `open_live`)
and merges it into ``S01.h5`` with one atomic transaction at the end (or ``fusionlab record --finalize``).
pylsl is imported only when recording starts.
"""

from fusionlab.record._live import (
    LiveSessionReader,
    LiveStreamSpec,
    LiveWriter,
    clock_from_corrections,
    finalize_live,
    live_path,
    live_segments,
    open_live,
    read_live,
    segment_path,
)
from fusionlab.record._lsl import LslRecorder, RecordStats, find_lsl_streams, record_lsl

__all__ = ["LiveSessionReader", "LiveStreamSpec", "LiveWriter", "LslRecorder", "RecordStats",
           "clock_from_corrections", "finalize_live", "find_lsl_streams", "live_path", "live_segments",
           "open_live", "read_live", "record_lsl", "segment_path"]
