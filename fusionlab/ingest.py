"""Ingest source files into a session: each reader runs isolated, the session changes atomically.

ezc3d and other readers are compiled code: a malformed file could crash or hang them. `ingest` therefore runs
each reader in a child process (``fork``) with a time limit. The child writes what it read into a private
staging session file; the parent then merges all staging files into the session inside one `transaction`, so
either every source of a call is added or (on any error, unless ``on_error="skip"``) none is, and the session
on disk is never half-written.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fusionlab.exceptions import FileFormatError, FusionlabError, ValidationError
from fusionlab.persist import merge_file_into, save_session, transaction

__all__ = ["IngestReport", "ingest"]


@dataclass
class IngestReport:
    """What `ingest` did."""

    session: str
    streams: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _child_read(path: str, staging: str, result_file: str, options: dict[str, Any]) -> None:
    """Run in the child process: read one source and write it to a staging session file."""
    import faulthandler

    faulthandler.disable()  # a crash in the reader is reported by the parent in one line, not as a C stack dump
    code = 0
    result: dict[str, Any] = {"warnings": []}
    try:
        from fusionlab.adapters import find_adapter

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            entry = find_adapter(path)
            session = entry.load()(path, **options)
            save_session(session, staging)
        result["warnings"] = sorted({str(w.message) for w in caught})
        result["adapter"] = entry.name
    except FusionlabError as e:
        result.update(error=str(e), kind=type(e).__name__)
        code = 3
    except Exception as e:  # report anything else as an internal error, with the traceback
        result.update(error=f"{type(e).__name__}: {e}", kind="internal", traceback=traceback.format_exc())
        code = 4
    try:
        Path(result_file).write_text(json.dumps(result))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _read_isolated(path: Path, staging: Path, options: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    result_file = staging.with_suffix(".json")
    ctx = mp.get_context("fork" if sys.platform != "win32" else "spawn")
    proc = ctx.Process(target=_child_read, args=(str(path), str(staging), str(result_file), options), daemon=True)
    proc.start()
    proc.join(timeout_s)
    if proc.is_alive():
        proc.kill()
        proc.join()
        raise FileFormatError(path, f"reading took longer than {timeout_s:.0f} s and was stopped; the file is probably "
                                    "corrupt (or pass a longer --timeout-s)")
    if proc.exitcode is not None and proc.exitcode < 0:
        raise FileFormatError(path, f"the reader crashed (signal {-proc.exitcode}) on this file; it is corrupt or a "
                                    "variant the reader does not support")
    try:
        result = json.loads(result_file.read_text())
    except (OSError, ValueError):
        raise FileFormatError(path, f"the reader stopped without a result (exit status {proc.exitcode})") from None
    if "error" in result:
        if result.get("kind") == "internal":
            raise FusionlabError(f"{path}: internal error while reading: {result['error']}\n{result.get('traceback')}")
        if result.get("kind") == "ValidationError":
            raise ValidationError(result["error"])
        msg = result["error"]
        prefix = f"{path}: "
        raise FileFormatError(path, msg[len(prefix):] if msg.startswith(prefix) else msg)
    return result


def ingest(sources: Sequence[str | os.PathLike[str]], session_path: str | os.PathLike[str], *,
           subject: str = "", session_date: str = "", metadata: dict[str, Any] | None = None,
           overwrite: bool = False, prefix: str | None = None, isolate: bool = True, timeout_s: float | None = None,
           on_error: Literal["raise", "skip"] = "raise",
           progress: Callable[[str], None] | None = None) -> IngestReport:
    """Add source files (C3D, force-plate exports, ...) to a session file.

    Parameters
    ----------
    sources
        Files to ingest; the reader is chosen from each file (`fusionlab.adapters.find_adapter`).
    session_path
        Session file; created when missing.
    subject, session_date, metadata
        Subject pseudonym, ``YYYY-MM-DD`` date and free metadata for the session.
    overwrite
        Replace streams that exist already (default: refuse).
    prefix
        Stream-name prefix (only with one source); default: each file's stem and a dot.
    isolate
        Run each reader in a child process with a time limit (default). False reads in this process.
    timeout_s
        Time limit per file; default 120 s plus 2 s per MB.
    on_error
        ``"raise"``: any bad file aborts the whole call and the session is left as it was. ``"skip"``: bad files
        are reported in `IngestReport.skipped` and the others are ingested.
    progress
        Called with each file name as it is read (the CLI hooks a progress bar here).

    Raises
    ------
    FileFormatError
        A source cannot be read (with ``on_error="raise"``).
    ValidationError
        Stream names exist already (without ``overwrite``), or subject/date conflict with the session's.
    """
    from fusionlab.model import Session

    if prefix is not None and len(sources) > 1:
        msg = "Invalid value for 'prefix': a prefix can only be given when ingesting a single source."
        raise ValidationError(msg)
    session_path = Path(session_path)
    report = IngestReport(session=str(session_path))
    options: dict[str, Any] = {} if prefix is None else {"prefix": prefix}
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{session_path.name}.staging-", dir=session_path.parent
                                        if session_path.parent.exists() else None))
    try:
        staged: list[Path] = []
        for k, src in enumerate(sources):
            path = Path(src)
            if progress is not None:
                progress(path.name)
            staging = staging_dir / f"{k}.h5"
            try:
                if not path.is_file():
                    raise FileFormatError(path, "no such file")
                if isolate:
                    limit = timeout_s if timeout_s is not None else 120.0 + 2.0 * path.stat().st_size / 1e6
                    result = _read_isolated(path, staging, options, limit)
                    report.warnings.extend(f"{path.name}: {w}" if not w.startswith(path.name) else w
                                           for w in result["warnings"])
                else:
                    from fusionlab.adapters import read

                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        save_session(read(path, **options), staging)
                    report.warnings.extend(str(w.message) for w in caught)
            except FileFormatError as e:
                if on_error == "skip":
                    report.skipped[str(path)] = e.reason
                    continue
                raise
            staged.append(staging)
            report.sources.append(str(path))
        if not staged and not (subject or session_date or metadata):
            return report
        with transaction(session_path, create=True) as f:
            for staging in staged:
                report.streams.extend(merge_file_into(f, staging, overwrite=overwrite))
            _ensure_reference_clock(f)
            from fusionlab.persist import write_session_into

            write_session_into(f, Session(subject=subject, session_date=session_date, metadata=metadata or {}))
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return report


def _ensure_reference_clock(f: Any) -> None:
    """Make the first ingested clock the session clock when the session has none yet.

    The session clock is the clock of the first source ingested (offset 0, exactly). Later sources keep
    ``method="unsynchronised"`` (offset 0 assumed, infinite uncertainty) until ``fusionlab sync`` estimates them.
    """
    clocks = f["clocks"]
    if any(str(clocks[c].attrs["method"]) == "reference" for c in clocks):
        return
    order = sorted(f["sources"], key=lambda k: str(f["sources"][k].attrs["ingested_at"]))
    first_clock = None
    for k in order:
        name = f["sources"][k].attrs["path"]
        for s in f["streams"]:
            meta = json.loads(f["streams"][s].attrs["meta"])
            if meta.get("source") == name:
                first_clock = str(f["streams"][s].attrs["clock"])
                break
        if first_clock:
            break
    if first_clock is None and len(clocks):
        first_clock = sorted(clocks)[0]
    if first_clock is None:
        return
    a = clocks[first_clock].attrs
    a["offset_s"], a["offset_sd_s"], a["drift_ppm"], a["drift_sd_ppm"] = 0.0, 0.0, 0.0, 0.0
    a["method"] = "reference"
    a["quality"] = "defines the session clock (first source ingested)"
