"""Ingest source files into a session: each reader runs isolated, the session changes atomically.

ezc3d and other readers are compiled code: a malformed file could crash or hang them. `ingest` therefore runs
each reader in a child process with a time limit. Children are forked from a fork server (a clean,
single-threaded process started once per program), never from the calling process itself: a process that has
already run threaded libraries (MediaPipe, Qt, the web server) cannot be forked safely, and a child forked from it
can crash in malloc on a perfectly good file. The child writes what it read into a private
staging session file; the parent then merges all staging files into the session inside one `transaction`, so
either every source of a call is added or (on any error, unless ``on_error="skip"``) none is, and the session
on disk is never half-written.
"""

from __future__ import annotations

import inspect
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


_INTERNAL_OPTIONS = ("session_path", "prefix")  # set by `ingest` itself, not by the caller


def accepted_options(reader: Callable[..., Any], options: dict[str, Any]) -> dict[str, Any]:
    """The options (among ``prefix``, ``placement``, ``rate_hz``, ``subject_height_m``, ...) that a reader accepts.

    The CLI offers one set of options for every format; each reader receives those it declares, and a given option
    that no reader of the call accepts is reported by `ingest`.
    """
    params = inspect.signature(reader).parameters
    return {k: v for k, v in options.items() if k in params and v is not None}


def _child_read(path: str, staging: str, result_file: str, options: dict[str, Any],
                reader_ref: tuple[str, str, str]) -> None:
    """Run in the child process: read one source with the reader ``(module, function, adapter name)`` the parent
    chose, and write it to a staging session file."""
    import faulthandler

    faulthandler.disable()  # a crash in the reader is reported by the parent in one line, not as a C stack dump
    code = 0
    result: dict[str, Any] = {"warnings": []}
    try:
        import importlib

        module, function, adapter = reader_ref
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            reader = getattr(importlib.import_module(module), function)
            used = accepted_options(reader, options)
            session = reader(path, **used)
            save_session(session, staging)
        result["warnings"] = sorted({str(w.message) for w in caught})
        result["adapter"] = adapter
        result["options_used"] = sorted(used)
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


_CONTEXT: Any = None


def _context() -> Any:
    """The multiprocessing context of the reader children: a fork server on POSIX (see the module docstring)."""
    global _CONTEXT
    if _CONTEXT is None:
        if sys.platform == "win32":  # pragma: no cover - no fork on Windows
            _CONTEXT = mp.get_context("spawn")
        else:
            _CONTEXT = mp.get_context("forkserver")
            # the server imports the readers once (not MediaPipe: the video reader imports it in the child)
            _CONTEXT.set_forkserver_preload(["fusionlab.ingest", "fusionlab.adapters"])
    return _CONTEXT


def _read_isolated(path: Path, staging: Path, options: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    result_file = staging.with_suffix(".json")
    from fusionlab.adapters import find_adapter

    entry = find_adapter(path)  # in the parent: suffix and first bytes only, no compiled reader code
    # absolute path: the fork server's working directory may differ from this process's
    args = (str(Path(path).resolve()), str(staging), str(result_file), options,
            (entry.module, entry.function, entry.name))
    proc = _context().Process(target=_child_read, args=args, daemon=True)
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
        # the child read the absolute path: drop either spelling of the path, `FileFormatError` puts it back once
        for prefix in (f"{Path(path).resolve()}: ", f"{path}: "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
                break
        raise FileFormatError(path, msg)
    return result


def ingest(sources: Sequence[str | os.PathLike[str]], session_path: str | os.PathLike[str], *,
           subject: str = "", session_date: str = "", metadata: dict[str, Any] | None = None,
           overwrite: bool = False, prefix: str | None = None, isolate: bool = True, timeout_s: float | None = None,
           on_error: Literal["raise", "skip"] = "raise", reader_options: dict[str, Any] | None = None,
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
    reader_options
        Options for the readers, e.g. ``{"placement": "left_foot", "rate_hz": 100.0, "subject_height_m": 1.75}``;
        each reader receives the ones it accepts (`accepted_options`).
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
    options: dict[str, Any] = dict(reader_options or {})
    if prefix is not None:
        options["prefix"] = prefix
    if session_path.is_file():
        # readers that cache expensive results in the session (video pose, keyed by the video's SHA-256) look there
        # first; the session is only read here, never written by the reader
        options.setdefault("session_path", str(session_path))
    staging_dir = Path(tempfile.mkdtemp(prefix=f".{session_path.name}.staging-", dir=session_path.parent
                                        if session_path.parent.exists() else None))
    try:
        staged: list[Path] = []
        options_used: set[str] = set()
        readers_seen: set[str] = set()
        placed: list[str] = []  # files that took the one placement given
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
                    from fusionlab.adapters import find_adapter

                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        reader = find_adapter(path).load()
                        used = accepted_options(reader, options)
                        save_session(reader(path, **used), staging)
                        result = {"options_used": sorted(used)}
                    report.warnings.extend(str(w.message) for w in caught)
            except FileFormatError as e:
                if on_error == "skip":
                    report.skipped[str(path)] = e.reason
                    continue
                raise
            except FusionlabError as e:  # a reader's option/validation error, or a reader bug (internal error)
                if on_error == "skip":
                    text = str(e).removeprefix(f"{path}: ")
                    report.skipped[str(path)] = text.splitlines()[0] + (
                        " (a fusionlab bug: please report it with this file)" if "internal error" in text else "")
                    continue
                raise
            staged.append(staging)
            report.sources.append(str(path))
            options_used.update(result.get("options_used", ()))
            readers_seen.add(path.name)
            if "placement" in result.get("options_used", ()):
                placed.append(path.name)
        if len(placed) > 1:
            report.warnings.append(f"placement {options['placement']!r} was given to {len(placed)} files "
                                   f"({', '.join(placed)}): each is stored at that placement; ingest files of "
                                   "different sensors one by one, each with its own --placement")
        given = {k for k, v in options.items() if v is not None and k not in _INTERNAL_OPTIONS}
        if readers_seen and given - options_used:
            report.warnings.append(
                "reader option(s) " + ", ".join(sorted(given - options_used)) + " not used: no file read in this "
                "call takes them (" + ", ".join(sorted(readers_seen)) + ")")
        if not staged and not (subject or session_date or metadata):
            return report
        with transaction(session_path, create=True) as f:
            first_clocks: list[str] = []
            for staging in staged:
                names = merge_file_into(f, staging, overwrite=overwrite)
                report.streams.extend(names)
                first_clocks.extend(str(f["streams"][n].attrs["clock"]) for n in names)
            _ensure_reference_clock(f, first_clocks)
            from fusionlab.persist import write_session_into

            write_session_into(f, Session(subject=subject, session_date=session_date, metadata=metadata or {}))
    finally:
        shutil.rmtree(staging_dir, ignore_errors=True)
    return report


def _ensure_reference_clock(f: Any, clocks_in_order: list[str]) -> None:
    """Make the first clock ingested the session clock when the session has none yet.

    The session clock is the clock of the first stream of the first source ingested (offset 0, exactly). Later
    sources keep ``method="unsynchronised"`` (offset 0 assumed, infinite uncertainty) until ``fusionlab sync``
    estimates them. When the first clock is already mapped to its recording system's clock (LSL: method ``"lsl"``,
    mapped to the LSL host clock), that host clock becomes the session clock: an entry ``lsl_host`` with method
    ``reference`` and no streams, so every LSL stream keeps its mapping.
    """
    clocks = f["clocks"]
    if any(str(clocks[c].attrs["method"]) == "reference" for c in clocks):
        return
    first_clock = next((c for c in clocks_in_order if c in clocks), None)
    if first_clock is None:
        return
    if str(clocks[first_clock].attrs["method"]) == "lsl":
        g = clocks.create_group("lsl_host")
        g.attrs["offset_s"], g.attrs["offset_sd_s"], g.attrs["drift_ppm"], g.attrs["drift_sd_ppm"] = 0.0, 0.0, 0.0, 0.0
        g.attrs["method"], g.attrs["reference"] = "reference", "session"
        g.attrs["quality"] = "the LSL host clock of the first recording ingested defines the session clock"
        return
    a = clocks[first_clock].attrs
    a["offset_s"], a["offset_sd_s"], a["drift_ppm"], a["drift_sd_ppm"] = 0.0, 0.0, 0.0, 0.0
    a["method"] = "reference"
    a["quality"] = "defines the session clock (first source ingested)"
