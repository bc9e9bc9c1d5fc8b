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
    """C3D: header word 1 is (parameter block, 0x50) and the parameter section starts with a processor type (84
    Intel, 85 DEC, 86 MIPS) in its 4th byte, where the head reaches it."""
    if len(head) < 2 or head[1] != 0x50 or head[0] < 2:
        return False
    start = (head[0] - 1) * 512
    return len(head) < start + 4 or head[start + 3] in (84, 85, 86)


def _sniff_mot(_head: bytes, text: str) -> bool:
    return "endheader" in text.lower()


def _sniff_kistler(_head: bytes, text: str) -> bool:
    return "bioware" in text.lower() or ("abs time" in text.lower() and "fz" in text.lower())


def _sniff_forceplate_csv(_head: bytes, text: str) -> bool:
    first = text.strip().splitlines()[:40]
    return any(("fz" in line.lower() and "fx" in line.lower()) for line in first)


def _sniff_xdf(head: bytes, _text: str) -> bool:
    return head.startswith(b"XDF:")


def _sniff_mobilised(head: bytes, _text: str) -> bool:
    from fusionlab.adapters.imu_mobilised import looks_like_mobilised_mat

    return looks_like_mobilised_mat(head)


def _sniff_gaitmap_imu(_head: bytes, text: str) -> bool:
    from fusionlab.adapters.imu_gaitmap import looks_like_gaitmap_imu

    return looks_like_gaitmap_imu(text)


def _sniff_gaitmap_mocap(_head: bytes, text: str) -> bool:
    from fusionlab.adapters.imu_gaitmap import looks_like_gaitmap_mocap

    return looks_like_gaitmap_mocap(text)


def _sniff_imu_csv(_head: bytes, text: str) -> bool:
    from fusionlab.adapters.imu_csv import looks_like_imu_csv

    return looks_like_imu_csv(text)


def _sniff_xsens(_head: bytes, text: str) -> bool:
    from fusionlab.adapters.imu_xsens import looks_like_xsens

    return looks_like_xsens(text)


def _sniff_video(head: bytes, _text: str) -> bool:
    # MP4/MOV (ISO base media: "ftyp" box at offset 4), Matroska/WebM (EBML magic), AVI (RIFF....AVI )
    return (head[4:8] == b"ftyp" or head.startswith(b"\x1a\x45\xdf\xa3")
            or (head[:4] == b"RIFF" and head[8:12] == b"AVI "))


# Order matters only where sniffers could both accept a file: the specific IMU layouts come before the generic
# force-plate CSV (whose sniffer looks for "fx" and "fz" anywhere in the first lines).
REGISTRY: tuple[AdapterEntry, ...] = (
    AdapterEntry("c3d", (".c3d",), "fusionlab.adapters.c3d", "read_c3d",
                 "C3D motion capture (markers, analogs, model outputs, force plates, events) via ezc3d", _sniff_c3d),
    AdapterEntry("opensim_mot", (".mot",), "fusionlab.adapters.forceplate", "read_opensim_mot",
                 "OpenSim .mot ground reaction forces", _sniff_mot),
    AdapterEntry("xdf", (".xdf",), "fusionlab.adapters.xdf", "read_xdf",
                 "XDF (Lab Streaming Layer / LabRecorder): numeric streams on their own LSL clocks, markers as events",
                 _sniff_xdf),
    AdapterEntry("mobilised_mat", (".mat",), "fusionlab.adapters.imu_mobilised", "read_mobilised_mat",
                 "Mobilise-D data.mat: lower-back IMU per trial with reference walking bouts and contacts",
                 _sniff_mobilised),
    AdapterEntry("gaitmap_imu", (".csv",), "fusionlab.adapters.imu_gaitmap", "read_gaitmap_imu",
                 "gaitmap IMU CSV (two header rows: sensor, axis; acc m/s^2, gyr deg/s; 204.8 Hz default)",
                 _sniff_gaitmap_imu),
    AdapterEntry("gaitmap_mocap", (".csv",), "fusionlab.adapters.imu_gaitmap", "read_gaitmap_mocap",
                 "gaitmap marker CSV (two header rows: marker, x/y/z; mm; 100 Hz default)", _sniff_gaitmap_mocap),
    AdapterEntry("imu_csv", (".csv", ".tsv", ".txt"), "fusionlab.adapters.imu_csv", "read_imu_csv",
                 "Generic IMU CSV (time, acc_x.., gyr_x.., mag_x.. with units in brackets; one sensor per file)",
                 _sniff_imu_csv),
    AdapterEntry("xsens_mtmanager", (".txt", ".csv", ".tsv"), "fusionlab.adapters.imu_xsens", "read_xsens_mtmanager",
                 "Xsens MT Manager text export (PacketCounter, Acc_X.., Gyr_X.., Mag_X.., Quat/Mat)", _sniff_xsens),
    AdapterEntry("kistler_bioware", (".txt",), "fusionlab.adapters.forceplate", "read_kistler_bioware",
                 "Kistler BioWare text export (force plates)", _sniff_kistler),
    AdapterEntry("video_mediapipe", (".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm"),
                 "fusionlab.adapters.video_mediapipe", "read_video_pose",
                 "video: MediaPipe Pose landmarks (px, visibility, world m) of one person, offline", _sniff_video),
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
    claimants = [entry for entry in REGISTRY if suffix in entry.suffixes]
    if len(claimants) == 1 and len(claimants[0].suffixes) == 1:
        return claimants[0]  # the suffix is specific to one reader: let it give the precise error
    if len(claimants) == 1:  # e.g. '.mp4': only the video reader takes it, and the content is not a video
        kind = claimants[0].description.split(":")[0]
        raise FileFormatError(p, f"not a readable {kind} file: its content does not match its suffix {suffix!r} "
                                 f"(the {claimants[0].name} reader does not recognise it); the file is damaged, "
                                 "incomplete or misnamed.")
    first = text.lstrip("\ufeff").splitlines()[0].replace(" ", "").lower() if text.strip() else ""
    if first.startswith("s_id,foot,start,end"):  # gaitmap stride list: indices of an IMU recording, no data
        raise FileFormatError(p, "a gaitmap stride list (s_id, foot, start, end: sample indices of an IMU recording), "
                                 "not a recording: attach it to its IMU CSV with fusionlab ingest IMU.csv "
                                 "--stride-events FILE (stride events) or --stride-borders FILE (IC-to-IC borders)")
    supported = "; ".join(f"{e.name} ({', '.join(e.suffixes)}): {e.description}" for e in REGISTRY)
    raise FileFormatError(p, f"unknown or unsupported format (suffix {suffix or 'none'!r}). Supported: {supported}.")


def read(path: str | os.PathLike[str], **options: Any) -> Session:
    """Read any supported source file into a `Session` (see `REGISTRY`)."""
    return find_adapter(path).load()(path, **options)
