"""Adapters: one reader per source format, each returning a `fusionlab.Session` in SI units.

`read(path)` picks the reader from the file (its suffix, then its first bytes). Installed as
``fusionlab.adapters``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

from fusionlab.exceptions import FileFormatError
from fusionlab.model import Session

__all__ = ["REGISTRY", "AdapterEntry", "find_adapter", "read"]


class AdapterEntry(NamedTuple):
    """A registered reader."""

    name: str
    suffixes: tuple[str, ...]
    module: str
    function: str
    description: str
    sniff: Callable[[bytes, str], bool]

    def load(self) -> Callable[..., Session]:
        """Import and return the reader function."""
        import importlib

        return getattr(importlib.import_module(self.module), self.function)


def _sniff_c3d(head: bytes, _text: str) -> bool:
    return len(head) >= 2 and head[1] == 0x50


def _sniff_mot(_head: bytes, text: str) -> bool:
    return "endheader" in text.lower()


def _sniff_kistler(_head: bytes, text: str) -> bool:
    return "bioware" in text.lower() or ("abs time" in text.lower() and "fz" in text.lower())


def _sniff_forceplate_csv(_head: bytes, text: str) -> bool:
    first = text.strip().splitlines()[:40]
    return any(("fz" in line.lower() and "fx" in line.lower()) for line in first)


REGISTRY: tuple[AdapterEntry, ...] = (
    AdapterEntry("c3d", (".c3d",), "fusionlab.adapters.c3d", "read_c3d",
                 "C3D motion capture (markers, analogs, model outputs, force plates, events) via ezc3d", _sniff_c3d),
    AdapterEntry("opensim_mot", (".mot",), "fusionlab.adapters.forceplate", "read_opensim_mot",
                 "OpenSim .mot ground reaction forces", _sniff_mot),
    AdapterEntry("kistler_bioware", (".txt",), "fusionlab.adapters.forceplate", "read_kistler_bioware",
                 "Kistler BioWare text export (force plates)", _sniff_kistler),
    AdapterEntry("forceplate_csv", (".csv", ".txt", ".tsv"), "fusionlab.adapters.forceplate", "read_forceplate_csv",
                 "Force-plate CSV (AMTI/Bertec style: Fx, Fy, Fz, Mx, My, Mz at a stated rate)",
                 _sniff_forceplate_csv),
)


def find_adapter(path: str | os.PathLike[str]) -> AdapterEntry:
    """Choose the reader for a file.

    Raises
    ------
    FileFormatError
        If no reader accepts the file; the message lists the supported formats.
    """
    p = Path(path)
    if not p.is_file():
        raise FileFormatError(p, "no such file")
    with p.open("rb") as fh:
        head = fh.read(8192)
    text = head.decode("utf-8", errors="replace")
    suffix = p.suffix.lower()
    for entry in REGISTRY:
        if suffix in entry.suffixes and entry.sniff(head, text):
            return entry
    for entry in REGISTRY:
        if suffix in entry.suffixes and len(entry.suffixes) == 1:
            return entry  # the suffix is specific: let that reader give the precise error
    supported = "; ".join(f"{e.name} ({', '.join(e.suffixes)}): {e.description}" for e in REGISTRY)
    raise FileFormatError(p, f"unknown or unsupported format (suffix {suffix or 'none'!r}). Supported: {supported}.")


def read(path: str | os.PathLike[str], **options: Any) -> Session:
    """Read any supported source file into a `Session` (see `REGISTRY`)."""
    return find_adapter(path).load()(path, **options)
