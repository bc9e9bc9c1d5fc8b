"""Helpers shared by the adapters: provenance, path and option checks, clocks, label cleaning, warnings."""

from __future__ import annotations

import hashlib
import math
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from fusionlab import __version__
from fusionlab.exceptions import FileFormatError, FusionlabWarning, ValidationError
from fusionlab.model import ClockEntry, Event, Session, SourceInfo, Stream

__all__ = [
    "base_meta",
    "check_path",
    "check_rate_hz",
    "file_clock_id",
    "file_identity",
    "file_sha256",
    "source_info",
    "stream_prefix",
    "unsynchronised_session",
    "warn_ignored_columns",
]


def check_path(path: str | os.PathLike[str]) -> Path:
    """Return ``path`` as a Path after checking it is a readable, non-empty regular file."""
    p = Path(path)
    if not p.exists():
        raise FileFormatError(p, "no such file")
    if not p.is_file():
        raise FileFormatError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise FileFormatError(p, "the file is empty (0 bytes)")
    return p


def file_sha256(path: str | os.PathLike[str], chunk_bytes: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def source_info(path: Path, adapter: str, version: str, options: dict[str, Any],
                metadata: dict[str, Any] | None = None, sha256: str | None = None) -> SourceInfo:
    """Provenance record of one source file (only the file name is kept, not the directory)."""
    return SourceInfo(path=path.name, sha256=sha256 or file_sha256(path), adapter=adapter, adapter_version=version,
                      options=options, size_bytes=path.stat().st_size, metadata=metadata or {})


def stream_prefix(path: Path) -> str:
    """Default stream-name prefix for a source file: its stem, made safe for HDF5 names, plus a dot."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "source"
    return stem + "."


def check_rate_hz(value: float | None, name: str = "rate_hz", *, optional: bool = True) -> None:
    """Check a sampling-rate option: a positive, finite number of Hz (or None when ``optional``).

    Raises
    ------
    ValidationError
        Anything else, naming the option and the value received.
    """
    if value is None and optional:
        return
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        msg = f"Invalid value for {name!r}. Expected a positive number of Hz, but got {value!r} instead."
        raise ValidationError(msg)


def file_clock_id(path: Path, adapter: str, sha256: str) -> str:
    """Identifier of a file's own device clock: ``"<adapter>:<stem>:<sha256[:8]>"``."""
    return f"{adapter}:{path.stem}:{sha256[:8]}"


class FileIdentity(NamedTuple):
    """What names the data read from one file: its SHA-256, its own clock and the prefix of its stream names."""

    sha256: str
    clock_id: str
    prefix: str


def file_identity(path: Path, adapter: str, prefix: str | None = None) -> FileIdentity:
    """The file's SHA-256, its clock `file_clock_id` and the stream prefix (``prefix``, else `stream_prefix`)."""
    sha = file_sha256(path)
    return FileIdentity(sha, file_clock_id(path, adapter, sha), stream_prefix(path) if prefix is None else prefix)


def base_meta(path: Path, adapter: str, sha256: str, options: dict[str, Any]) -> dict[str, Any]:
    """The provenance keys every stream's ``meta`` starts with (source, sha256, adapter, version, options)."""
    return {"source": path.name, "sha256": sha256, "adapter": adapter, "adapter_version": __version__,
            "options": options}


def unsynchronised_session(path: Path, adapter: str, sha256: str, streams: Sequence[Stream], options: dict[str, Any],
                           metadata: dict[str, Any], quality: str, *, events: Sequence[Event] = (),
                           more_sources: Sequence[SourceInfo] = ()) -> Session:
    """A session of one file on its own unsynchronised clock `file_clock_id` (``quality`` says how time was read).

    ``more_sources`` are provenance records of further files read with it (e.g. a reference event list).
    """
    clock_id = file_clock_id(path, adapter, sha256)
    info = source_info(path, adapter, __version__, options, metadata, sha256=sha256)
    clock = ClockEntry(clock=clock_id, method="unsynchronised", quality=quality)
    return Session(streams=tuple(streams), events=tuple(events), clocks={clock_id: clock},
                   sources=(info, *more_sources))


def warn_ignored_columns(path: Path, columns: Sequence[str], what: str,
                         fix: str = "leave them out of the export") -> None:
    """Warn (`FusionlabWarning`, at the reader's caller) that ``columns`` are not ``what`` and were not read.

    ``fix`` says how to silence the warning; the columns are expected in the source metadata
    (``ignored_columns``).
    """
    if not columns:
        return
    warnings.warn(f"{path.name}: {len(columns)} column(s) are not {what} and were not read: {', '.join(columns)}. "
                  f"They are listed in the source metadata ('ignored_columns'); {fix} to silence this warning.",
                  FusionlabWarning, stacklevel=3)
