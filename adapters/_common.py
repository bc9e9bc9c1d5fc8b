"""Helpers shared by the adapters: provenance, path checks, label cleaning."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from fusionlab.exceptions import FileFormatError
from fusionlab.model import SourceInfo

__all__ = ["check_path", "file_sha256", "source_info", "stream_prefix"]


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
