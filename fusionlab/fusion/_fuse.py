"""Run every fusion model a session supports and store the results (`fusionlab fuse`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fusionlab.fusion.base import FusionResult

__all__ = ["MODELS", "fuse_session"]

MODELS = ("events", "angles", "foot")
"""Fusion models in the order they run: fused gait events, sagittal joint angles, foot trajectories."""


def _run(model: str, reader: Any) -> FusionResult:
    if model == "events":
        from fusionlab.fusion._events import fuse_events

        return fuse_events(reader)
    if model == "angles":
        from fusionlab.fusion._angles import fuse_angles

        return fuse_angles(reader)
    if model == "foot":
        from fusionlab.fusion._foot import fuse_foot

        return fuse_foot(reader)
    msg = f"Invalid value for 'model'. Allowed values are {', '.join(MODELS)}, but got {model!r} instead."
    raise ValueError(msg)


def fuse_session(session_path: str | os.PathLike[str] | Path, *, models: Sequence[str] = MODELS,
                 store: bool = True) -> list[FusionResult]:
    """Run the fusion ``models`` on a session; store what they produced (one atomic transaction).

    A model that finds nothing to fuse (e.g. no foot IMU) returns an empty result with the reason in its
    ``warnings``; it is reported, not stored, and a previous result of that model is left as it was.
    """
    from fusionlab.fusion._store import store_fusion
    from fusionlab.persist import open_session

    results = []
    with open_session(session_path) as reader:
        for m in models:
            results.append(_run(m, reader))
    if store:
        store_fusion(session_path, [r for r in results if r.signals or r.events or r.conflicts])
    return results
