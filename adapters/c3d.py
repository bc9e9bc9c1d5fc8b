"""C3D reader and writer (ezc3d; the data section is read with NumPy).

What is read
    Markers (m), model outputs that C3D stores as points (angles, forces, moments, powers, modelled markers,
    scalars: converted with their own ``POINT:<TYPE>_UNITS``, never as if they were mm), analog channels (scaled as
    ezc3d scales them; SI where the unit is known), force platforms of types 1-4 (force N, moment N·m, centre of
    pressure m, free moment N·m; corners, origin and calibration matrix kept), events with their context, subject
    parameters and manufacturer. Force platforms are computed with ezc3d's equations in vectorised NumPy
    (`fusionlab.adapters._forceplate_math`; equal to ezc3d's extraction to 1e-15 on every shared file, 20x faster).
Time
    Point sample ``i`` is at ``(first_frame + i) / point_rate`` and analog sample ``j`` at
    ``first_frame / point_rate + j / analog_rate``, with ``first_frame`` as ezc3d reports it (0-based). With that
    origin, ``EVENT:TIMES`` lines up with the data. All streams of one file share one clock.
Reading
    ezc3d reads the header and the parameters (from a copy of the file cut at the data section); NumPy reads the
    data section with ezc3d's layout and arithmetic (`fusionlab.adapters._c3d_data`; equal to ``ezc3d.c3d(path)``
    bit for bit on every shared file, 0.13 s instead of 4.7 s for the 192-MB benchmark file). A layout the NumPy
    reader does not implement (rotations, mixed float/integer points) is read by ezc3d as a whole; the streams'
    ``meta["data_reader"]`` (and the source's metadata) say which reader was used. Where ezc3d reads undefined
    memory (``ANALOG:SCALE``/``OFFSET`` shorter than the channel list), those channels get scale 1 / offset 0 and a
    warning.
Safety
    ezc3d is C++: before a file is handed to it, `check_c3d` walks the header and the parameter section in pure
    Python and checks that the data section fits in the file, so truncated, random or corrupt files give a clear
    `FileFormatError`. ``fusionlab ingest`` additionally runs every reader in a child process with a timeout.
"""

from __future__ import annotations

import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from fusionlab import __version__
from fusionlab.adapters._c3d_data import read_c3d_content
from fusionlab.adapters._common import check_path, source_info, stream_prefix
from fusionlab.adapters._forceplate_math import PlatformError, compute_platforms
from fusionlab.exceptions import FileFormatError, FusionlabError, FusionlabWarning, UnitError, ValidationError
from fusionlab.model import ClockEntry, Event, Session, Stream, normalise_event, unique_labels
from fusionlab.units import to_si

__all__ = ["C3DHeader", "check_c3d", "read_c3d", "write_c3d"]

ADAPTER = "c3d"
COP_MIN_FORCE_N = 20.0  # centre of pressure is left undefined (NaN) when |Fz| is below this
_PROCESSORS = {84: "Intel", 85: "DEC", 86: "MIPS"}
_XYZ = ("x", "y", "z")

# POINT type groups: parameter listing the labels -> parameter giving their unit, and the unit when it is missing
_POINT_TYPES: dict[str, tuple[str, str]] = {
    "ANGLES": ("ANGLE_UNITS", "deg"),
    "FORCES": ("FORCE_UNITS", "N"),
    "MOMENTS": ("MOMENT_UNITS", "Nmm"),
    "POWERS": ("POWER_UNITS", "W"),
    "SCALARS": ("SCALAR_UNITS", "mm"),
    "MODELED_MARKERS": ("MODELED_MARKER_UNITS", "mm"),
    "REACTIONS": ("REACTION_UNITS", "N"),
}
_SUFFIX_TYPES = (("angles", "ANGLES"), ("angle", "ANGLES"), ("force", "FORCES"), ("forces", "FORCES"),
                 ("moment", "MOMENTS"), ("moments", "MOMENTS"), ("power", "POWERS"), ("powers", "POWERS"))


# Vicon Plug-in Gait and pyCGM2 write kinetics normalised by body mass but declare absolute units (N·mm, W).
# A channel whose peak in SI is below these limits cannot be an absolute value in human gait.
_PER_KG_LIMITS = {"MOMENTS": 10.0, "POWERS": 30.0, "FORCES": 50.0}
_PER_KG_UNITS = {"N·m": "N·m/kg", "W": "W/kg", "N": "N/kg"}


def _per_kg_channels(data: np.ndarray, limit: float) -> list[int]:
    """Indices of channels (axis 1 of (n, k, 3) data) whose largest magnitude is finite and below ``limit``."""
    out = []
    for j in range(data.shape[1]):
        x = data[:, j]
        if np.all(np.isnan(x)):
            continue
        peak = float(np.nanmax(np.abs(x)))
        if 0 < peak < limit:
            out.append(j)
    return out


@dataclass(frozen=True)
class C3DHeader:
    """What `check_c3d` learned from the header and parameter section."""

    processor: str
    n_points: int
    n_analog_per_frame: int
    first_frame: int
    last_frame: int
    point_scale: float
    point_rate_hz: float
    data_start_block: int
    is_float: bool
    n_parameters: int
    parameters: dict[str, dict[str, Any]]  # GROUP -> PARAM -> value (only the few checked here)


def _float(raw: bytes, processor: str) -> float:
    if processor == "DEC":  # DEC F-float: swap 16-bit words, then IEEE value is 4x too large
        return struct.unpack("<f", raw[2:4] + raw[0:2])[0] / 4.0
    if processor == "MIPS":
        return struct.unpack(">f", raw)[0]
    return struct.unpack("<f", raw)[0]


def check_c3d(path: str | os.PathLike[str]) -> C3DHeader:
    """Validate a C3D file's structure in pure Python, before ezc3d sees it.

    Checks the header, walks every group and parameter of the parameter section (bounds, name lengths, data
    sizes) and checks that the data section announced by the header fits in the file.

    Raises
    ------
    FileFormatError
        With the reason: not a C3D file, MIPS/SGI processor (ezc3d cannot read it), corrupt parameter section,
        truncated data, impossible header values.
    """
    p = check_path(path)
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(512)
        if len(head) < 512:
            raise FileFormatError(p, f"not a C3D file: {len(head)} bytes, a C3D header alone has 512")
        if head[1] != 0x50:
            raise FileFormatError(p, f"not a C3D file: byte 2 is 0x{head[1]:02x}, a C3D header has 0x50 there")
        param_block = head[0]
        if param_block < 2 or (param_block - 1) * 512 + 4 > size:
            raise FileFormatError(p, f"corrupt C3D header: parameter section at block {param_block} is outside the "
                                     f"{size}-byte file")
        fh.seek((param_block - 1) * 512)
        phead = fh.read(4)
        n_param_blocks = phead[2]
        proc_code = phead[3]
        if proc_code not in _PROCESSORS:
            raise FileFormatError(p, f"corrupt C3D parameter section: processor type {proc_code} is not 84 (Intel), "
                                     "85 (DEC) or 86 (MIPS)")
        processor = _PROCESSORS[proc_code]
        if processor == "MIPS":
            raise FileFormatError(p, "MIPS/SGI (big-endian) C3D files cannot be read by ezc3d; convert the file "
                                     "to Intel (PC) format with a C3D editor (e.g. Mokka or Motion Lab Systems' "
                                     "C3Deditor)")
        if n_param_blocks == 0:
            raise FileFormatError(p, "corrupt C3D parameter section: it declares 0 blocks")
        section_end = (param_block - 1) * 512 + n_param_blocks * 512
        if section_end > size:
            raise FileFormatError(p, f"truncated C3D file: the parameter section needs {section_end} bytes, the file "
                                     f"has {size}")
        fh.seek((param_block - 1) * 512)
        section = fh.read(n_param_blocks * 512)

    def u16(b: bytes, i: int) -> int:
        return struct.unpack("<H", b[i:i + 2])[0]

    n_points = u16(head, 2)
    n_analog = u16(head, 4)
    first = u16(head, 6)
    last = u16(head, 8)
    scale = _float(head[12:16], processor)
    data_start = u16(head, 16)
    rate = _float(head[20:24], processor)
    params, n_params = _walk_parameters(p, section, processor, (param_block - 1) * 512)
    if not math.isfinite(scale):
        raise FileFormatError(p, f"corrupt C3D header: point scale is {scale}")
    is_float = scale < 0
    point_rate = _param_float(params, "POINT", "RATE")
    rate = point_rate if point_rate and math.isfinite(point_rate) and point_rate > 0 else rate
    if not (math.isfinite(rate) and rate > 0):
        raise FileFormatError(p, f"corrupt C3D file: point rate is {rate} Hz in the header and POINT:RATE is missing")
    # data-section size check
    ds = _param_int(params, "POINT", "DATA_START")
    if ds and ds > 0:
        data_start = ds
    if data_start < 2 or data_start <= param_block:
        raise FileFormatError(p, f"corrupt C3D header: data section starts at block {data_start}, inside the header "
                                 "or parameter section")
    n_frames = last - first + 1 if last >= first else 0
    frames_param = _param_int(params, "POINT", "FRAMES")
    if frames_param and frames_param > 0 and last == 65535:  # long recordings: header cannot hold the count
        n_frames = frames_param
    elem = 4 if is_float else 2
    frame_bytes = (n_points * 4 + n_analog) * elem
    need = (data_start - 1) * 512 + n_frames * frame_bytes
    if need > size:
        have = max(0, size - (data_start - 1) * 512)
        complete = have // frame_bytes if frame_bytes else 0
        raise FileFormatError(p, f"truncated C3D file: the header announces {n_frames} frames "
                                 f"({n_frames * frame_bytes} bytes of data) but the file holds only {have} bytes of "
                                 f"data ({complete} complete frames); re-export or re-copy the file")
    return C3DHeader(processor=processor, n_points=n_points, n_analog_per_frame=n_analog, first_frame=first,
                     last_frame=last, point_scale=scale, point_rate_hz=rate, data_start_block=data_start,
                     is_float=is_float, n_parameters=n_params, parameters=params)


def _param_float(params: dict[str, dict[str, Any]], group: str, name: str) -> float | None:
    v = params.get(group, {}).get(name)
    return float(v[0]) if isinstance(v, list) and v and isinstance(v[0], float) else None


def _param_int(params: dict[str, dict[str, Any]], group: str, name: str) -> int | None:
    v = params.get(group, {}).get(name)
    if isinstance(v, list) and v:
        return int(v[0])
    return None


def _walk_parameters(p: Path, section: bytes, processor: str, base: int = 0) -> tuple[dict[str, dict[str, Any]], int]:
    """Walk the parameter section (starting at file byte ``base``); return numeric values of POINT/ANALOG
    parameters and the parameter count. Errors name the entry's file byte."""
    groups: dict[int, str] = {}
    values: dict[str, dict[str, Any]] = {}
    pending: list[tuple[int, str, Any]] = []
    pos = 4
    n = 0
    end = len(section)
    while pos < end - 2:
        name_len = struct.unpack("b", section[pos:pos + 1])[0]
        gid = struct.unpack("b", section[pos + 1:pos + 2])[0]
        if name_len == 0:
            break
        name_len = abs(name_len)
        if gid == 0:
            raise FileFormatError(p, f"corrupt C3D parameter section, file byte {base + pos}: group id 0")
        name_raw = section[pos + 2:pos + 2 + name_len]
        if len(name_raw) < name_len:
            raise FileFormatError(p, f"corrupt C3D parameter section, file byte {base + pos}: name runs past the "
                                     "section")
        try:
            name = name_raw.decode("ascii").strip().upper()
        except UnicodeDecodeError:
            raise FileFormatError(p, f"corrupt C3D parameter section, file byte {base + pos}: parameter name is not "
                                     "ASCII "
                                     f"({name_raw!r})") from None
        off_pos = pos + 2 + name_len
        if off_pos + 2 > end:
            raise FileFormatError(p, f"corrupt C3D parameter section, file byte {base + pos}: entry runs past the "
                                     "section")
        offset = struct.unpack("<h", section[off_pos:off_pos + 2])[0]
        next_pos = off_pos + offset if offset > 0 else end
        if offset < 0 or (offset > 0 and next_pos > end + 512):
            raise FileFormatError(p, f"corrupt C3D parameter section, file byte {base + pos} ({name}): pointer to "
                                     "the next "
                                     f"entry ({offset}) is outside the section")
        body = off_pos + 2
        if gid < 0:
            groups[-gid] = name
        else:
            if body + 2 > end:
                raise FileFormatError(p, f"corrupt C3D parameter section in {name}: truncated entry")
            dtype = struct.unpack("b", section[body:body + 1])[0]
            n_dims = section[body + 1]
            if dtype not in (-1, 1, 2, 4):
                raise FileFormatError(p, f"corrupt C3D parameter section in {name}: data type {dtype} is not "
                                         "-1, 1, 2 or 4")
            if n_dims > 7:
                raise FileFormatError(p, f"corrupt C3D parameter section in {name}: {n_dims} dimensions (at most 7)")
            dims = list(section[body + 2:body + 2 + n_dims])
            count = int(np.prod(dims)) if dims else 1
            data_pos = body + 2 + n_dims
            data_len = count * abs(dtype)
            if data_pos + data_len > end or (offset > 0 and data_pos + data_len > next_pos):
                raise FileFormatError(p, f"corrupt C3D parameter section in {name}: its {data_len} data bytes run "
                                         "past the entry")
            raw = section[data_pos:data_pos + data_len]
            if dtype == 2 and count <= 8:
                pending.append((gid, name, [v for (v,) in struct.iter_unpack("<h", raw)]))
            elif dtype == 4 and count <= 8:
                pending.append((gid, name, [_float(raw[i:i + 4], processor) for i in range(0, data_len, 4)]))
            n += 1
        if offset == 0:
            break
        pos = next_pos
    for gid, name, value in pending:
        group = groups.get(gid)
        if group is not None:
            values.setdefault(group, {})[name] = value
    return values, n


# ------------------------------------------------------------------------------------------------------ reading
def _pvalue(params: dict[str, Any], group: str, name: str, default: Any = None) -> Any:
    try:
        value = params[group][name]["value"]
    except (KeyError, TypeError):
        return default
    return value.tolist() if isinstance(value, np.ndarray) else value


def _labels(params: dict[str, Any], group: str, n: int, stem: str) -> list[str]:
    labels: list[str] = []
    for key in ("LABELS", *(f"LABELS{k}" for k in range(2, 10))):
        labels.extend(str(x) for x in (_pvalue(params, group, key, []) or []))
        if len(labels) >= n:
            break
    labels = labels[:n]
    labels += [f"{stem}{k + 1}" for k in range(len(labels), n)]
    return labels


def _si_or_keep(unit: str, what: str, path: Path) -> tuple[float, str]:
    try:
        conv = to_si(unit)
    except UnitError:
        warnings.warn(f"{path.name}: {what} has unit {unit!r}, which fusionlab cannot convert to SI; values are "
                      "kept as they are, with that unit.", FusionlabWarning, stacklevel=4)
        return 1.0, unit or "1"
    return conv.factor, conv.si_unit


def _classify_points(params: dict[str, Any], labels: list[str],
                     convert_point_unit: bool | None, path: Path) -> tuple[dict[int, str], dict[str, str]]:
    """Return {point index: type} for model outputs and {type: original unit}. Markers are not in the dict."""
    kinds: dict[int, str] = {}
    units: dict[str, str] = {}
    index = {lab.strip(): i for i, lab in enumerate(labels)}
    declared = False
    for type_name, (unit_param, default_unit) in _POINT_TYPES.items():
        members = _pvalue(params, "POINT", type_name, None)
        unit_val = _pvalue(params, "POINT", unit_param, None)
        if members:
            declared = True
            for m in members:
                i = index.get(str(m).strip())
                if i is not None:
                    kinds[i] = type_name
        if unit_val:
            units[type_name] = str(unit_val[0]).strip()
        else:
            units[type_name] = default_unit
    if not declared:  # older files: recognise Plug-in-Gait style names ("LKneeAngles", "RHipPower")
        for i, lab in enumerate(labels):
            low = lab.strip().lower().split(":")[-1]
            for suffix, type_name in _SUFFIX_TYPES:
                if low.endswith(suffix):
                    kinds[i] = type_name
                    break
        if kinds:
            types = sorted(set(kinds.values()))
            note = ("converted with the usual Vicon units (deg, N, N·mm, W)" if convert_point_unit is not False
                    else "kept unscaled (convert_point_unit=False)")
            warnings.warn(f"{path.name}: {len(kinds)} points look like model outputs ({', '.join(types)}) but the "
                          f"file does not declare them in POINT:ANGLES/FORCES/...; they are {note}. Pass "
                          "convert_point_unit=False to keep them unscaled.", FusionlabWarning, stacklevel=3)
    return kinds, units


def read_c3d(path: str | os.PathLike[str], *, prefix: str | None = None, convert_point_unit: bool | None = None,
             on_forceplate_error: Literal["raise", "warn", "ignore"] = "warn") -> Session:
    """Read a C3D file into a `Session`.

    Parameters
    ----------
    path
        The C3D file (Intel or DEC processor, integer or float).
    prefix
        Prefix of the stream names; default: the file stem and a dot (``"Walking01.markers"``).
    convert_point_unit
        Model outputs stored as points (angles, moments, ...) are converted with their declared unit
        (``POINT:ANGLE_UNITS`` ...). When a file does not declare them, None (default) and True convert with the
        usual Vicon units and warn; False keeps them unscaled.
    on_forceplate_error
        What to do when ezc3d cannot compute the force platforms (missing or inconsistent FORCE_PLATFORM
        parameters): raise, warn and read the rest, or ignore.

    Returns
    -------
    Session
        Streams ``<prefix>markers`` ``(n, n_markers, 3)`` m; ``<prefix>angles``/``moments``/... (model outputs,
        ``(n, k, 3)``, SI); ``<prefix>analog`` ``(n, n_channels)``; ``<prefix>forceplate<k>`` with channels
        ``force`` (N), ``moment`` (N·m), ``cop`` (m) and ``free_moment`` (N·m), each ``(n, 3)`` in the lab
        frame; annotation events; one clock for all of them.

    Raises
    ------
    FileFormatError
        If the file is not a readable C3D file (see `check_c3d`).
    """
    p = check_path(path)
    header = check_c3d(p)
    options: dict[str, Any] = {"convert_point_unit": convert_point_unit, "on_forceplate_error": on_forceplate_error}
    try:
        content = read_c3d_content(p)
    except Exception as e:  # ezc3d raises plain RuntimeError/OSError/ValueError
        raise FileFormatError(p, f"ezc3d could not read the file: {e}") from e
    params = content.parameters
    hdr = content.header
    # force platforms from the analog channels in their file units, before the analogs are scaled to SI in place
    platforms: list[dict[str, Any]] = []
    fp_error: Exception | None = None
    declared_plates = int(np.ravel(_pvalue(params, "FORCE_PLATFORM", "USED", [0]) or [0])[0])
    if declared_plates and content.analogs.shape[2] and hdr["analogs"]["frame_rate"] > 0:
        try:
            platforms = compute_platforms(params, content.analogs[0])
        except PlatformError as e:
            fp_error = e
    prefix = stream_prefix(p) if prefix is None else prefix
    from fusionlab.adapters._common import file_sha256

    sha = file_sha256(p)
    clock_id = f"c3d:{p.stem}:{sha[:8]}"
    rate = float(hdr["points"]["frame_rate"]) or header.point_rate_hz
    first_frame = int(hdr["points"]["first_frame"])
    t0 = first_frame / rate
    base_meta: dict[str, Any] = {"source": p.name, "sha256": sha, "adapter": ADAPTER, "adapter_version": __version__,
                                 "options": options, "processor": header.processor,
                                 "storage": "float" if header.is_float else "integer", "first_frame": first_frame,
                                 "data_reader": content.reader}
    if content.notes:
        base_meta["data_reader_notes"] = list(content.notes)
    streams: list[Stream] = []
    warn_list: list[str] = [n for n in content.notes if not n.startswith("data section read by ezc3d")]

    # ---- points: markers and model outputs
    pts = content.points  # (3, n_points, n_frames) float64, writable
    n_points = pts.shape[1]
    if n_points:
        labels = _labels(params, "POINT", n_points, "point")
        kinds, type_units = _classify_points(params, labels, convert_point_unit, p)
        marker_unit = str((_pvalue(params, "POINT", "UNITS", ["mm"]) or ["mm"])[0]).strip() or "mm"
        try:
            marker_factor = to_si(marker_unit).factor
        except UnitError:
            warnings.warn(f"{p.name}: POINT:UNITS is {marker_unit!r}; assuming mm.", FusionlabWarning, stacklevel=2)
            marker_factor, marker_unit = 1e-3, "mm"
        xyz = pts
        groups: dict[str, list[int]] = {"MARKERS": [i for i in range(n_points) if i not in kinds]}
        for i, k in sorted(kinds.items()):
            groups.setdefault(k, []).append(i)
        for type_name, idx in groups.items():
            if not idx:
                continue
            if type_name == "MARKERS":
                factor, si_unit, orig = marker_factor, "m", marker_unit
                name, modality = "markers", "markers"
            else:
                orig = type_units.get(type_name, "")
                if type_name == "MODELED_MARKERS" and not _pvalue(params, "POINT", "MODELED_MARKER_UNITS"):
                    orig = marker_unit
                if convert_point_unit is False:
                    factor, si_unit = 1.0, orig
                else:
                    factor, si_unit = _si_or_keep(orig, f"POINT:{type_name}", p)
                name, modality = type_name.lower(), "model"
            # (3, k, n) -> (n, k, 3); scale in place on a contiguous block of the points array
            block = xyz[:, idx[0]:idx[-1] + 1, :] if idx == list(range(idx[0], idx[-1] + 1)) else xyz[:, idx, :]
            if factor != 1.0:
                block *= factor
            data = block.transpose(2, 1, 0)
            if modality == "markers":  # several systems write gaps as exactly (0, 0, 0) with a valid residual
                zeros = np.all(data == 0.0, axis=2)
                if zeros.any():
                    data[zeros] = np.nan
                    warn_list.append(f"{int(zeros.sum())} marker sample(s) at exactly (0, 0, 0) in "
                                     f"{int(zeros.any(axis=0).sum())} marker(s), how some systems write gaps, are "
                                     "stored as missing (NaN)")
            chans, dups = unique_labels([labels[i] for i in idx])
            if dups:
                warn_list.append(f"duplicate point labels renamed with _1 suffixes: {', '.join(sorted(set(dups)))}")
            units = [si_unit] * len(idx)
            if type_name in _PER_KG_LIMITS and si_unit in _PER_KG_UNITS and convert_point_unit is not False:
                per_kg = _per_kg_channels(data, _PER_KG_LIMITS[type_name])
                if per_kg:  # channels of the same model output that are entirely empty share the convention
                    per_kg += [j for j in range(data.shape[1]) if np.all(np.isnan(data[:, j])) and j not in per_kg]
                for j in per_kg:
                    units[j] = _PER_KG_UNITS[si_unit]
                if type_name == "FORCES":  # Plug-in Gait "NormalisedGRF": percent of body weight
                    for j, ch in enumerate(chans):
                        if "normalised" in ch.lower() or "normalized" in ch.lower():
                            data[:, j] *= 0.01 / factor if factor else 0.01
                            units[j] = "1"
                            warn_list.append(f"{ch}: read as percent of body weight, stored as a fraction (unit 1)")
                if per_kg:
                    warn_list.append(
                        f"{len(per_kg)} {type_name.lower()} channel(s) declared in {orig!r} hold values normalised by "
                        f"body mass (peaks below {_PER_KG_LIMITS[type_name]:g} {si_unit}, impossible as absolute "
                        f"values in gait); they are labelled {_PER_KG_UNITS[si_unit]}: "
                        f"{', '.join(chans[j] for j in per_kg[:8])}{' ...' if len(per_kg) > 8 else ''}")
            orig_scale = [1.0 / factor] * len(idx)
            for j, u in enumerate(units):
                if u == "1" and type_name == "FORCES":
                    orig_scale[j] = 100.0 / factor
            streams.append(Stream(
                name=prefix + name, modality=modality, data=data, channels=chans, units=tuple(units),
                orig_units=(orig,) * len(idx), components=_XYZ, frame="lab", rate_hz=rate, start_s=t0,
                clock=clock_id, storage_dtype="float32",
                meta={**base_meta, "point_type": type_name, "lab_axes": _lab_axes(params),
                      "orig_scale": orig_scale}))

    # ---- analogs
    analogs = content.analogs  # (1, n_channels, n_samples), writable
    n_ch = analogs.shape[1]
    analog_rate = float(hdr["analogs"]["frame_rate"])
    if n_ch and analogs.shape[2] and analog_rate > 0:
        a_labels = _labels(params, "ANALOG", n_ch, "analog")
        a_units_raw = [str(u).strip() for u in (_pvalue(params, "ANALOG", "UNITS", []) or [])]
        a_units_raw += ["V"] * (n_ch - len(a_units_raw))
        data = analogs[0].T  # (n_samples, n_ch) view
        si_units: list[str] = []
        for j, u in enumerate(a_units_raw[:n_ch]):
            try:
                conv = to_si(u)
                if conv.factor != 1.0:
                    data[:, j] *= conv.factor
                si_units.append(conv.si_unit)
            except UnitError:
                si_units.append(u or "1")
                warn_list.append(f"analog channel {a_labels[j]!r} has unit {u!r}, kept unscaled")
        saturated = _saturated_channels(analogs[0], params, header, a_labels)
        if saturated:
            warnings.warn(f"{p.name}: analog channel(s) {', '.join(saturated)} reach the 16-bit integer limit "
                          "(values clipped: ANALOG:SCALE too small for the signal when the file was written); those "
                          "samples are not trustworthy.", FusionlabWarning, stacklevel=2)
            warn_list.append(f"analog channels clipped at the integer limit: {', '.join(saturated)}")
        chans, dups = unique_labels(a_labels)
        if dups:
            warn_list.append(f"duplicate analog labels renamed with _1 suffixes: {', '.join(sorted(set(dups)))}")
        streams.append(Stream(
            name=prefix + "analog", modality="analog", data=data, channels=chans, units=tuple(si_units),
            orig_units=tuple(a_units_raw[:n_ch]), frame="none", rate_hz=analog_rate, start_s=t0, clock=clock_id,
            storage_dtype="float32", meta={**base_meta, "saturated_channels": saturated}))

    # ---- force platforms
    if fp_error is not None:
        msg = f"the force platforms cannot be computed ({fp_error}); markers and analogs were read."
        if on_forceplate_error == "raise":
            raise FileFormatError(p, msg)
        if on_forceplate_error == "warn":
            warnings.warn(f"{p.name}: {msg}", FusionlabWarning, stacklevel=2)
        warn_list.append(msg)
    elif declared_plates and not platforms:
        warn_list.append("FORCE_PLATFORM declares plates but the file holds no analog samples (ANALOG:RATE 0); "
                         "force platforms not read")
    else:
        unit_notes = [n for pf in platforms for n in pf.get("unit_notes", ())]
        if unit_notes:  # moment / COP channel units not taken from their ANALOG:UNITS, or not checkable
            warnings.warn(f"{p.name}: force-plate channel units: " + "; ".join(unit_notes), FusionlabWarning,
                          stacklevel=2)
            warn_list.extend(unit_notes)
        poly = _pvalue(params, "FORCE_PLATFORM", "FPCOPPOLY", None)
        zero = _pvalue(params, "FORCE_PLATFORM", "ZERO", None)
        streams.extend(_forceplate_streams(platforms, prefix, analog_rate, t0, clock_id, base_meta,
                                           None if poly is None else np.asarray(poly, dtype=float),
                                           zero_frames=None if zero is None else np.ravel(zero).tolist(),
                                           analog_per_frame=analog_rate / rate if rate else 1.0))

    if len(dict.fromkeys(s.name for s in streams)) != len(streams):
        raise FileFormatError(p, "stream names collide; pass another prefix")

    events = _events(params, p, clock_id)
    n_frames = content.n_frames
    if events:
        t_end = t0 + n_frames / rate
        outside = [e for e in events if not (t0 - 1.0 / rate <= e.time_s <= t_end + 1.0 / rate)]
        if outside:
            warn_list.append(f"{len(outside)} event(s) lie outside the recording ({t0:.3f}-{t_end:.3f} s)")
    metadata = {
        "format": "C3D",
        "processor": header.processor,
        "storage": "float" if header.is_float else "integer",
        "point_rate_hz": rate,
        "analog_rate_hz": analog_rate,
        "first_frame": first_frame,
        "n_frames": int(n_frames),
        "n_markers": len(groups.get("MARKERS", [])) if n_points else 0,
        "n_points": int(n_points),
        "n_analog_channels": int(n_ch),
        "n_force_platforms": len(platforms),
        "data_reader": content.reader,
        "data_reader_notes": list(content.notes),
        "manufacturer": _manufacturer(params),
        "subject_parameters": _subject_parameters(params),
        "c3d_subject_names": [str(x) for x in (_pvalue(params, "SUBJECTS", "NAMES", []) or [])],
        "c3d_subjects": _subjects_group(params),
        "c3d_event_details": _event_details(params),
        "lab_axes": _lab_axes(params),
        "warnings": warn_list,
    }
    for w in warn_list:
        if not w.startswith("analog channels clipped") and not w.startswith("ezc3d could not"):
            warnings.warn(f"{p.name}: {w}", FusionlabWarning, stacklevel=2)
    info = source_info(p, ADAPTER, __version__, options, metadata, sha256=sha)
    clock = ClockEntry(clock=clock_id, method="unsynchronised", quality="C3D file clock (all streams of the file)")
    return Session(streams=tuple(streams), events=tuple(events), clocks={clock_id: clock}, sources=(info,))


def _saturated_channels(analogs: np.ndarray, params: dict[str, Any], header: C3DHeader,
                        labels: list[str]) -> list[str]:
    """Channels of an integer file whose values were clipped at, or wrapped around, the int16 limits.

    ``analogs`` is ``(n_channels, n_samples)``, already scaled to SI by the caller. Clipping shows as repeated
    values at ±32767 counts; overflow (a value past the limit written modulo 2^16, as in c3d.org sample25
    ``analogfpscale04i``) shows as jumps of nearly 65536 counts between consecutive samples.
    """
    if header.is_float:
        return []
    gen = float((_pvalue(params, "ANALOG", "GEN_SCALE", [1.0]) or [1.0])[0])
    scales = np.asarray(_pvalue(params, "ANALOG", "SCALE", []) or [], dtype=float)
    offsets = np.asarray(_pvalue(params, "ANALOG", "OFFSET", []) or [], dtype=float)
    units = [str(u) for u in (_pvalue(params, "ANALOG", "UNITS", []) or [])]
    out = []
    for j in range(analogs.shape[0]):
        if j >= len(scales) or scales[j] == 0:
            continue
        off = offsets[j] if j < len(offsets) else 0.0
        try:
            unit_factor = to_si(units[j]).factor if j < len(units) else 1.0
        except UnitError:
            unit_factor = 1.0
        count = abs(gen * scales[j] * unit_factor)  # one integer count in stored units
        counts = analogs[j] / (gen * scales[j] * unit_factor) + off
        clipped = int(np.count_nonzero(counts >= 32766.5) + np.count_nonzero(counts <= -32767.5))
        jumps = np.abs(np.diff(analogs[j])) > 0.75 * 65536 * count
        if clipped >= 3 or np.any(jumps):
            out.append(labels[j])
    return out


def _zero_samples(zero_frames: list[Any] | None, analog_per_frame: float, n: int) -> list[int] | None:
    """Analog samples ``[i0, i1)`` of the ``FORCE_PLATFORM:ZERO`` 3D-frame range, or None when it asks for no
    baseline.

    c3d.org: ZERO holds the first and last 3D frame (1-based, counted from the first frame stored in the file) whose
    force-plate signals are the unloaded baseline; ``0, 0`` means no baseline correction and a first frame of 0 is
    read as 1. A range whose end is before its start (ezc3d writes ``1, 0``) or outside the recording is none.
    """
    if zero_frames is None or len(zero_frames) < 2:
        return None
    try:
        f0, f1 = int(zero_frames[0]), int(zero_frames[1])
    except (TypeError, ValueError):
        return None
    if f0 == 0 and f1 == 0:
        return None
    f0 = max(f0, 1)
    if f1 < f0:
        return None
    i0, i1 = round((f0 - 1) * analog_per_frame), min(round(f1 * analog_per_frame), n)
    return [i0, i1] if i1 > i0 else None


def _forceplate_streams(platforms: list[dict[str, Any]], prefix: str, rate: float, t0: float, clock_id: str,
                        base_meta: dict[str, Any], cop_poly: np.ndarray | None = None, *,
                        zero_frames: list[Any] | None = None, analog_per_frame: float = 1.0) -> list[Stream]:
    out: list[Stream] = []
    for k, pf in enumerate(platforms):
        extra: dict[str, Any] = {}
        if pf["type"] == 3 and cop_poly is not None and cop_poly.size >= 12 * (k + 1):  # as _forceplate_math reads it
            extra["cop_poly"] = np.ravel(cop_poly, order="F")[12 * k:12 * (k + 1)].tolist()
        f_factor = to_si(pf["unit_force"] or "N").factor
        m_factor = to_si(pf["unit_moment"] or "Nmm").factor
        x_factor = to_si(pf["unit_position"] or "mm").factor
        # scaled to SI straight into the stream's (n, 4, 3) array; the plate's own arrays are released as they go
        data = np.empty((len(pf["force"]), 4, 3))
        for j, (key, factor) in enumerate((("force", f_factor), ("moment", m_factor), ("cop", x_factor),
                                           ("free_moment", m_factor))):
            np.multiply(pf[key], factor, out=data[:, j])
            pf[key] = data[:, j]
        force, cop, tz = data[:, 0], data[:, 2], data[:, 3]
        # the lab's up direction from the plate's geometry: the C3D plate z axis (c0-c1) x (c0-c3) points down into
        # the plate, whatever POINT:Y_SCREEN says (Qualisys files declare "-Z" with z up); the vertical force of a
        # loaded plate is positive along it
        cor = pf["corners"]
        z_plate = np.cross(cor[0] - cor[1], cor[0] - cor[3])
        up = -z_plate / np.linalg.norm(z_plate)
        up_k = int(np.argmax(np.abs(up)))
        # the centre of pressure (and the free moment computed from it) is undefined on an unloaded plate (division
        # by a near-zero Fz gives inf or noise): below COP_MIN_FORCE_N they are NaN
        unloaded = ~(np.abs(force[:, up_k]) >= COP_MIN_FORCE_N)  # the vertical force (lab axis up_k)
        cop[unloaded] = np.nan
        tz[unloaded] = np.nan
        cop[~np.isfinite(cop)] = np.nan
        tz[~np.isfinite(tz)] = np.nan
        # FORCE_PLATFORM:ZERO: the baseline of the declared frames is recorded, never subtracted here (the data stay
        # what the analog channels give; the gait detector decides whether the frames were unloaded and uses it)
        zero: dict[str, Any] = {"zero_frames": None if zero_frames is None else [int(v) for v in zero_frames[:2]],
                                "zero_samples": _zero_samples(zero_frames, analog_per_frame, len(force)),
                                "zero_applied": False}
        if zero["zero_samples"] is not None:
            i0, i1 = zero["zero_samples"]
            with np.errstate(all="ignore"):
                zero["zero_force_n"] = np.nanmean(force[i0:i1], axis=0).tolist()
                zero["zero_force_range_n"] = (np.nanmax(force[i0:i1], axis=0)
                                              - np.nanmin(force[i0:i1], axis=0)).tolist()
                zero["zero_moment_nm"] = np.nanmean(data[i0:i1, 1], axis=0).tolist()
        out.append(Stream(
            name=f"{prefix}forceplate{k + 1}", modality="forceplate", data=data,
            channels=("force", "moment", "cop", "free_moment"), units=("N", "N·m", "m", "N·m"),
            orig_units=(pf["unit_force"], pf["unit_moment"], pf["unit_position"], pf["unit_moment"]),
            components=_XYZ, frame="lab", rate_hz=rate, start_s=t0, clock=clock_id, storage_dtype="float32",
            meta={**base_meta, "plate": k + 1, "plate_type": pf["type"],
                  "corners_m": (pf["corners"] * x_factor).tolist(), "origin_m": (pf["origin"] * x_factor).tolist(),
                  "cal_matrix": pf["cal_matrix"].tolist(), "analog_channels": pf["channels"],
                  "computed_by": "fusionlab.adapters._forceplate_math (ezc3d's equations, vectorised)",
                  "cop_min_force_n": COP_MIN_FORCE_N, **extra,
                  "up_from_corners": up.tolist(), "vertical_axis": ("+" if up[up_k] > 0 else "-") + "xyz"[up_k],
                  # how the moment (type 1: COP) channels' units were decided (see _forceplate_math)
                  "channel_unit_rule": pf.get("unit_rule", "position"), **zero,
                  "moment_channel_scale": pf.get("moment_scale", 1.0), "cop_channel_scale": pf.get("cop_scale", 1.0),
                  "note": "force is the ground reaction force on the subject (vertical component positive during "
                          "stance) in lab axes; moment about the plate's surface centre, lab axes; cop (NaN when "
                          "the plate is unloaded) and free_moment (Tz) as in the C3D force-plate equations"}))
    return out


def _events(params: dict[str, Any], p: Path, clock_id: str) -> list[Event]:
    times = _pvalue(params, "EVENT", "TIMES", None)
    if times is None:
        return []
    arr = np.asarray(times, dtype=float)
    labels = [str(x) for x in (_pvalue(params, "EVENT", "LABELS", []) or [])]
    contexts = [str(x) for x in (_pvalue(params, "EVENT", "CONTEXTS", []) or [])]
    used = _pvalue(params, "EVENT", "USED", None)
    n_used = int(np.asarray(used).ravel()[0]) if used is not None and np.size(used) else len(labels)
    if arr.ndim == 2 and arr.shape[0] == 2:
        minutes, seconds = arr[0], arr[1]
    elif arr.ndim == 1 and arr.size % 2 == 0:  # flat interleaved (minutes, seconds) pairs
        minutes, seconds = arr[0::2], arr[1::2]
    elif arr.ndim == 2 and arr.shape[1] == 2:
        minutes, seconds = arr[:, 0], arr[:, 1]
    else:
        warnings.warn(f"{p.name}: EVENT:TIMES has shape {arr.shape}; events ignored.", FusionlabWarning, stacklevel=3)
        return []
    n = min(n_used, len(seconds), len(labels)) if labels else min(n_used, len(seconds))
    origin = _fusionlab_event_origin(params, 60.0 * np.asarray(minutes, dtype=float) + np.asarray(seconds, dtype=float))
    # the file's own labels (or, Motion Analysis style, its contexts) tell what an ambiguous "FC" means
    peers = [x.strip() for x in labels[:n]] + [x.strip() for x in contexts[:n]]
    out = []
    ambiguous: set[str] = set()
    for i in range(n):
        label = labels[i].strip() if i < len(labels) else ""
        context = contexts[i].strip() if i < len(contexts) else ""
        if not label:  # Motion Analysis files put "LHS"/"RTO" in EVENT:CONTEXTS and leave the label empty
            label, context = context or "event", ""
        kind, side = normalise_event(label, context, peers=peers)
        if kind == "fc":
            ambiguous.add(label)
        # C3D stores event times as float32: take the shortest decimal that float32 denotes (2.732, not
        # 2.7320001125), which is the time the lab's software wrote
        t = 60.0 * float(repr(np.float32(minutes[i]))) + float(repr(np.float32(seconds[i])))
        if not math.isfinite(t):
            continue
        source, detector, sd = "annotation", f"c3d:{p.name}", math.nan
        if i in origin:  # written by fusionlab's exporter from detector output: kept as such, never as annotation
            source, detector, sd = origin[i]
        out.append(Event(time_s=float(t), kind=kind, side=side, source=source, sd_s=sd,
                         label=f"{context} {label}".strip(), clock=clock_id, detector=detector))
    if ambiguous:
        warnings.warn(f"{p.name}: event label(s) {', '.join(sorted(ambiguous))} may mean final contact (with IC "
                      "strikes) or foot contact (with FO/TO foot offs); the file has neither or both, so they are "
                      "kept as events of kind 'fc', not gait events", FusionlabWarning, stacklevel=3)
    return out


def _fusionlab_event_origin(params: dict[str, Any], seconds: np.ndarray) -> dict[int, tuple[str, str, float]]:
    """Events that fusionlab's `write_c3d` marked in its ``FUSIONLAB`` group as detector output.

    ``FUSIONLAB:EVENT_SOURCES``/``EVENT_DETECTORS``/``EVENT_SD_S``/``EVENT_TIMES`` list, per event of
    ``EVENT:TIMES``, its source, detector and timing sd. An entry counts only where the event at the same index still
    has the same time (so a file edited by other software after the export does not mislabel its events).
    """
    sources = [str(x).strip() for x in (_pvalue(params, "FUSIONLAB", "EVENT_SOURCES", []) or [])]
    detectors = [str(x).strip() for x in (_pvalue(params, "FUSIONLAB", "EVENT_DETECTORS", []) or [])]
    sds = np.ravel(np.asarray(_pvalue(params, "FUSIONLAB", "EVENT_SD_S", []) or [], dtype=float))
    times = np.ravel(np.asarray(_pvalue(params, "FUSIONLAB", "EVENT_TIMES", []) or [], dtype=float))
    n = min(len(sources), len(detectors), len(sds), len(times), len(seconds))
    out = {}
    for i in range(n):
        if sources[i] and sources[i] != "annotation" and abs(times[i] - float(seconds[i])) <= 1e-4:
            out[i] = (sources[i], detectors[i], float(sds[i]) if sds[i] >= 0 else math.nan)
    return out


def _subjects_group(params: dict[str, Any]) -> dict[str, list[Any]]:
    """The SUBJECTS group as JSON-able lists (strings stripped, numbers as int/float), for the exporter."""
    out: dict[str, list[Any]] = {}
    for key, entry in (params.get("SUBJECTS") or {}).items():
        if key == "__METADATA__" or not isinstance(entry, dict):
            continue
        v = entry.get("value", [])
        if isinstance(v, list):
            out[key] = [str(x).strip() for x in v]
        else:
            a = np.ravel(np.asarray(v))
            if a.dtype.kind in "iu":
                out[key] = [int(x) for x in a]
            elif a.dtype.kind == "f":
                out[key] = [float(x) for x in a]
    return out


def _event_details(params: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per event label (``"Left Foot Strike"``, as in `Event.label`): its C3D description, subject, icon id and
    generic flag, so that an export can write them back."""
    labels = [str(x).strip() for x in (_pvalue(params, "EVENT", "LABELS", []) or [])]
    contexts = [str(x).strip() for x in (_pvalue(params, "EVENT", "CONTEXTS", []) or [])]
    extra = {key: list(np.ravel(np.asarray(_pvalue(params, "EVENT", key, []) or [])))
             for key in ("DESCRIPTIONS", "SUBJECTS", "ICON_IDS", "GENERIC_FLAGS")}
    out: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(labels):
        context = contexts[i] if i < len(contexts) else ""
        if not label:
            label, context = context or "event", ""
        d: dict[str, Any] = {}
        for key, vals in extra.items():
            if i < len(vals):
                v = vals[i]
                d[key.lower()] = str(v).strip() if key in ("DESCRIPTIONS", "SUBJECTS") else int(v)
        out.setdefault(f"{context} {label}".strip(), d)
    return out


def _manufacturer(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key in ("COMPANY", "SOFTWARE", "VERSION_LABEL", "VERSION"):
        v = _pvalue(params, "MANUFACTURER", key, None)
        if v is not None and np.size(v):
            out[key.lower()] = " ".join(str(x) for x in np.ravel(v)).strip()
    return out


def _lab_axes(params: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key in ("X_SCREEN", "Y_SCREEN"):
        v = _pvalue(params, "POINT", key, None)
        if v:
            out[key.lower()] = str(v[0]).strip()
    return out


_LENGTH_WORDS = ("height", "length", "width", "distance", "delta", "diameter", "offset")


def _subject_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Vicon PROCESSING parameters, with SI conversion where the unit is known (mm lengths, kg mass)."""
    proc = params.get("PROCESSING") or {}
    out: dict[str, Any] = {}
    for key, entry in proc.items():
        if key == "__METADATA__" or not isinstance(entry, dict):
            continue
        v = np.ravel(entry.get("value", []))
        if v.size != 1 or not np.issubdtype(np.asarray(v).dtype, np.number):
            continue
        val = float(v[0])
        low = key.lower()
        if low == "bodymass":
            out["mass_kg"] = val
        elif low == "height":
            out["height_m"] = val / 1000.0 if val > 3.0 else val
        elif any(w in low for w in _LENGTH_WORDS) and not low.endswith(("_x", "_y", "_z")):
            out[f"{key}_m"] = val / 1000.0
        else:
            out[f"{key}_raw"] = val
    return out


# ------------------------------------------------------------------------------------------------------ writing
def write_c3d(session_path: str | os.PathLike[str], out_path: str | os.PathLike[str], *,
              clock: str | None = None, events: Literal["annotation", "all", "none"] = "annotation") -> dict[str, Any]:
    """Export the markers, model outputs, analogs, force platforms and events of one C3D clock of a session to C3D.

    Parameters
    ----------
    session_path
        The session.
    out_path
        The C3D file to write (Intel float). Written to a temporary file and renamed, so a failure leaves no
        half-written file.
    clock
        Which clock's streams to export (sessions can hold several trials); default: the clock of the first
        marker stream.
    events
        ``"annotation"`` (default): only the events of the source files (lab annotations), as ingested.
        ``"all"``: also detector and fused events (those on this clock, and session-clock events mapped to it);
        each is written as a C3D event with its detector in ``EVENT:DESCRIPTIONS`` and in a ``FUSIONLAB``
        parameter group (``EVENT_SOURCES``, ``EVENT_DETECTORS``, ``EVENT_SD_S``, ``EVENT_TIMES``) from which
        `read_c3d` restores them as detector events, never as annotations. ``"none"``: no events.

    Returns
    -------
    dict
        Counts written: ``points``, ``frames``, ``analog_channels``, ``force_platforms``, ``events``,
        ``detector_events`` (of ``events``), ``first_frame``, ``subject_parameters``; and ``notes``, a list of
        what was left out and why.

    Raises
    ------
    ValidationError
        If ``out_path`` is a folder or its folder does not exist (checked before any work).
    FileFormatError
        If the session has nothing a C3D file can hold on the chosen clock (the message says what it has and why
        that is not exported), or ``clock`` is not a clock of the session.
    FusionlabError
        If the file cannot be written there (the message names ``out_path`` and the system's reason).

    Notes
    -----
    C3D holds regularly sampled data only. Streams without a fixed rate (irregular time stamps: LSL/XDF streams,
    variable-frame-rate video) are left out, never resampled (resampling would write samples that were not
    measured), and listed in ``notes``; when nothing regularly sampled remains, the export is refused with their
    names. A C3D file holds one analog block: further analog streams of the clock are listed in ``notes``.

    Force platforms need their analog channels: plates read from a C3D file are written with that file's analog
    block (also with no points at all: ``POINT:USED`` 0). Plates from text exports (OpenSim ``.mot``, AMTI/Kistler
    CSV) carry processed force/moment/COP without the plate geometry, so a session holding only those is refused
    with a message saying so; fusionlab does not invent a plate geometry.

    Subject parameters (``subject_parameters`` of the source, read from ``PROCESSING``) are written back to
    ``PROCESSING`` in the units the reader converts from (``Bodymass`` kg, ``Height`` and lengths mm, the others as
    stored), so a re-ingest gives the same values; ``POINT:X_SCREEN``/``Y_SCREEN`` come from the markers'
    ``lab_axes``. Gait events are written with the Vicon labels (``Foot Strike``/``Foot Off`` and context
    ``Left``/``Right``) that gait software recognises; an annotation whose original label differs (Qualisys or
    Motion Analysis ``LHS``, ``RTO``) keeps it in ``EVENT:DESCRIPTIONS`` ("original label: LHS") when the source
    had no description for it. Time, kind and side come back exactly.

    Force platforms are written back from the plate parameters the reader keeps in the force-plate streams' meta
    (type, corners, origin, calibration matrix, analog channels) with the analog channels they refer to, so a
    re-ingest computes the same forces (and the type-3 ``FPCOPPOLY``). ``FORCE_PLATFORM:ZERO`` (not used in the
    computation) is not kept and is written as ezc3d's default. SUBJECTS and the events' descriptions, subjects, icon
    ids and generic flags are written back from the source's metadata when the session holds them.
    """
    import ezc3d

    from fusionlab.persist import open_session

    if events not in ("annotation", "all", "none"):
        raise ValueError(f"events must be 'annotation', 'all' or 'none', not {events!r}")
    out = Path(out_path)
    _check_output(out)
    notes: list[str] = []
    with open_session(session_path) as r:
        infos = {n: r.stream_info(n) for n in r.stream_names}
        # C3D holds regularly sampled data only: streams without a rate (irregular time stamps) are never candidates
        regular = {n: i for n, i in infos.items() if i["rate_hz"]}
        point_streams = [n for n, i in regular.items() if i["modality"] in ("markers", "model")
                         and i["components"] == list(_XYZ)]
        if clock is None:
            candidates = [regular[n]["clock"] for n in point_streams if regular[n]["modality"] == "markers"]
            candidates += [i["clock"] for i in regular.values() if i["modality"] in ("markers", "model", "analog")]
            if not candidates:
                raise FileFormatError(session_path, _nothing_to_export(infos))
            clock = candidates[0]
        elif clock not in {i["clock"] for i in infos.values()}:
            known = sorted({i["clock"] for i in infos.values()})
            msg = (f"Invalid value for 'clock'. Allowed values are the clocks of the session's streams "
                   f"({', '.join(known) or 'none'}), but got {clock!r} instead.")
            raise FileFormatError(session_path, msg)
        points = [r.read_stream(n) for n in point_streams if infos[n]["clock"] == clock]
        analog_names = [n for n, i in regular.items() if i["modality"] == "analog" and i["clock"] == clock]
        irregular = [n for n, i in infos.items() if i["clock"] == clock and not i["rate_hz"]
                     and i["modality"] in ("markers", "model", "analog")]
        if irregular:
            notes.append(f"left out (no fixed sampling rate; C3D holds only regularly sampled data and fusionlab "
                         f"does not resample them): {', '.join(irregular)}")
        if len(analog_names) > 1:  # one C3D file holds one analog block at one rate
            notes.append(f"left out (a C3D file holds one analog block; {analog_names[0]} is written): "
                         f"{', '.join(analog_names[1:])}")
        analogs = [r.read_stream(n) for n in analog_names[:1]]
        plate_infos = sorted((i for i in infos.values() if i["modality"] == "forceplate" and i["clock"] == clock),
                             key=lambda i: int(i["meta"].get("plate", 0)))
        chosen = _export_events(r, clock, events)
        sha = next((str(s.meta.get("sha256", "")) for s in [*points, *analogs] if s.meta.get("sha256")), "")
        source_meta = next((src.metadata for src in r.sources() if sha and src.sha256 == sha), {})
    if not points and not analogs:
        on_clock = {n: i for n, i in infos.items() if i["clock"] == clock}
        raise FileFormatError(session_path, f"on clock {clock!r}: " + _nothing_to_export(on_clock))
    rates = {s.rate_hz for s in points}
    if len(rates) > 1:
        raise FileFormatError(session_path, f"point streams on clock {clock!r} have different rates {sorted(rates)}")
    if points:
        point_rate = float(rates.pop())
    else:  # no points (POINT:USED 0): the source's frame rate where it divides the analog rate, else the analog rate
        analog_rate = float(analogs[0].rate_hz)  # type: ignore[arg-type]
        point_rate = float(source_meta.get("point_rate_hz") or analog_rate)
        per_frame = analog_rate / point_rate if point_rate > 0 else 0.0
        if per_frame < 1 or abs(per_frame - round(per_frame)) > 1e-9 or analogs[0].n_samples % round(per_frame):
            point_rate = analog_rate
    start = points[0].start_s if points else analogs[0].start_s
    first_frame = round(start * point_rate)
    n_frames = points[0].n_samples if points else round(analogs[0].n_samples * point_rate / analogs[0].rate_hz)
    c = ezc3d.c3d()
    labels: list[str] = []
    blocks: list[np.ndarray] = []
    type_members: dict[str, list[str]] = {}
    type_units: dict[str, str] = {}
    for s in points:
        if s.n_samples != n_frames:
            raise FileFormatError(session_path, f"stream {s.name} has {s.n_samples} frames, expected {n_frames}")
        orig = s.orig_units[0] if s.orig_units else s.units[0]
        if "orig_scale" in s.meta:  # exact inverse of what the reader did, channel by channel
            factor = np.asarray(s.meta["orig_scale"], dtype=float)[np.newaxis, :, np.newaxis]
        else:
            factor = np.full((1, len(s.channels), 1), 1.0 / to_si(orig).factor if s.units[0] != orig else 1.0)
        blocks.append(s.data.transpose(2, 1, 0) * factor)  # (3, k, n) in original units
        labels.extend(s.channels)
        ptype = str(s.meta.get("point_type", "MARKERS"))
        if ptype != "MARKERS":
            type_members.setdefault(ptype, []).extend(s.channels)
            type_units[ptype] = orig
        else:
            c["parameters"]["POINT"]["UNITS"]["value"] = [orig]
    if blocks:
        xyz = np.concatenate(blocks, axis=1)
        data = np.ones((4, xyz.shape[1], n_frames))
        data[:3] = xyz
        c["parameters"]["POINT"]["RATE"]["value"] = [point_rate]
        c["parameters"]["POINT"]["LABELS"]["value"] = labels
        c["data"]["points"] = data
        for ptype, members in type_members.items():
            c.add_parameter("POINT", ptype, members)
            c.add_parameter("POINT", _POINT_TYPES[ptype][0], [type_units[ptype]])
    else:  # POINT:USED 0
        c["parameters"]["POINT"]["RATE"]["value"] = [point_rate]
        c["data"]["points"] = np.ones((4, 0, n_frames))  # ezc3d takes the number of frames from here
        if "rotations" in c["data"]:  # ezc3d's empty default divides by the (zero) point frames
            del c["data"]["rotations"]
    n_analog = 0
    n_plates = 0
    if analogs:
        a = analogs[0]
        factors = np.array([1.0 / to_si(o).factor if (u != o and _known(o)) else 1.0
                            for u, o in zip(a.units, a.orig_units, strict=True)])
        c["parameters"]["ANALOG"]["RATE"]["value"] = [float(a.rate_hz)]  # type: ignore[arg-type]
        c["parameters"]["ANALOG"]["LABELS"]["value"] = list(a.channels)
        c["parameters"]["ANALOG"]["UNITS"]["value"] = list(a.orig_units)
        c["data"]["analogs"] = (a.data * factors).T[np.newaxis]
        n_analog = len(a.channels)
        n_plates = _write_force_platforms(c, plate_infos, n_analog, bool(blocks))
    _write_subjects(c, source_meta)
    n_subject = _write_processing(c, source_meta.get("subject_parameters") or {})
    lab_axes = next((s.meta["lab_axes"] for s in points if s.meta.get("lab_axes")), None) \
        or source_meta.get("lab_axes") or {}
    for key in ("X_SCREEN", "Y_SCREEN"):
        if lab_axes.get(key.lower()):
            c.add_parameter("POINT", key, [str(lab_axes[key.lower()])])
    n_detector = _write_events(c, chosen, source_meta.get("c3d_event_details") or {})
    c["header"]["points"]["first_frame"] = int(first_frame)
    c.add_parameter("TRIAL", "ACTUAL_START_FIELD", [first_frame + 1, 0])
    c.add_parameter("TRIAL", "ACTUAL_END_FIELD", [first_frame + n_frames, 0])
    c.add_parameter("MANUFACTURER", "SOFTWARE", [f"fusionlab {__version__}"])
    _write_atomically(c, out)
    return {"points": len(labels), "frames": n_frames, "analog_channels": n_analog, "force_platforms": n_plates,
            "events": len(chosen), "detector_events": n_detector, "first_frame": first_frame,
            "subject_parameters": n_subject, "notes": notes}


def _check_output(out: Path) -> None:
    """Refuse, before any work, an output path that is a folder or whose folder is missing or not writable."""
    if out.is_dir():
        msg = f"{out}: is a folder, not a file; give the C3D file's name, e.g. {out / 'trial.c3d'}"
        raise ValidationError(msg)
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        msg = f"{out}: cannot write the C3D file: the folder {folder} {what}; create it first or choose another path"
        raise ValidationError(msg)


def _write_atomically(c: Any, out: Path) -> None:
    """Write to a hidden temporary file next to ``out``, then rename; errors name ``out``, never the temporary."""
    tmp = out.with_name(f".tmp-{os.getpid()}-{out.name}")
    if tmp.suffix.lower() != ".c3d":
        tmp = tmp.with_suffix(".c3d")
    try:
        try:
            with tmp.open("xb"):  # ezc3d does not report a file it could not open: find out first
                pass
            c.write(str(tmp))
            if tmp.stat().st_size == 0:
                msg = f"{out}: cannot write the C3D file: ezc3d wrote nothing (disk full or not writable?)"
                raise FusionlabError(msg)
            tmp.replace(out)
        except OSError as e:
            msg = f"{out}: cannot write the C3D file here: {e.strerror or e}"
            raise FusionlabError(msg) from e
    finally:
        tmp.unlink(missing_ok=True)


def _nothing_to_export(infos: dict[str, dict[str, Any]]) -> str:
    """Why the streams ``infos`` give nothing a C3D file can hold, and what would."""
    irregular = [n for n, i in infos.items() if not i["rate_hz"] and i["modality"] in ("markers", "model", "analog")]
    plates = [n for n, i in infos.items() if i["modality"] == "forceplate"]
    msg = "nothing to export to C3D: no marker, model or analog stream with a fixed sampling rate"
    if irregular:
        msg += (f"; {', '.join(irregular)} have no fixed rate (irregular time stamps), and C3D holds only regularly "
                "sampled data (fusionlab does not resample them)")
    if plates:
        msg += (f"; the force-plate streams {', '.join(plates)} are not exported alone: a C3D force platform is "
                "its raw analog channels plus its FORCE_PLATFORM geometry (type, corners, origin), which fusionlab "
                "has only for plates read from a C3D file (exported with that file's analogs); for forces from a "
                "text export (.mot, CSV) it would have to invent the plate geometry")
    others = sorted({i["modality"] for i in infos.values()} - {"markers", "model", "analog", "forceplate"})
    if others:
        msg += (f"; its {' and '.join(others)} streams have no C3D form (C3D holds points, analog channels and "
                "force platforms)")
    return msg + "."


def _export_events(r: Any, clock: str, which: str) -> list[Event]:
    """The events to export, on the device clock ``clock``: source-file annotations of this clock, or all events
    of this clock plus session-clock events (fused output) mapped to it. Events of other device clocks are left out
    (their mapping to this clock is another stream's synchronisation, not this file's)."""
    if which == "none":
        return []
    stored = r.events(clock="device")
    if which == "annotation":
        return [e for e in stored if e.clock == clock and e.source == "annotation"]
    entry = r.clocks().get(clock)
    out = []
    for e in stored:
        if e.clock == clock:
            out.append(e)
        elif e.clock == "session" and entry is not None:
            out.append(Event(**{**e.__dict__, "time_s": entry.to_device(e.time_s), "clock": clock}))
    return sorted(out, key=lambda e: e.time_s)


def _write_force_platforms(c: Any, plate_infos: list[Any], n_analog: int, has_points: bool) -> int:
    """FORCE_PLATFORM parameters from the plate parameters `read_c3d` keeps in each force-plate stream's meta."""
    plates = []
    for info in plate_infos:
        m = info["meta"]
        needed = ("plate_type", "corners_m", "origin_m", "analog_channels")
        if not all(k in m for k in needed):
            continue
        ch = [int(x) for x in m["analog_channels"]]
        if not ch or max(ch) >= n_analog or min(ch) < 0:
            continue
        plates.append((info, m, ch))
    if not plates:
        return 0
    orig = plates[0][0]["orig_units"]
    unit_force = str(orig[0]) if orig else "N"
    unit_position = str(orig[2]) if len(orig) > 2 else "mm"
    x_factor = to_si(unit_position).factor
    n = len(plates)
    corners = np.zeros((3, 4, n))
    origin = np.zeros((3, n))
    n_ch = max(len(ch) for _, _, ch in plates)
    channel = np.zeros((n_ch, n), dtype=int)
    cal = np.zeros((6, 6, n))
    poly = np.zeros((12, n))
    types = []
    for k, (_, m, ch) in enumerate(plates):
        types.append(int(m["plate_type"]))
        corners[:, :, k] = (np.asarray(m["corners_m"], dtype=float) / x_factor).T
        origin[:, k] = np.asarray(m["origin_m"], dtype=float) / x_factor
        channel[: len(ch), k] = np.asarray(ch) + 1
        if "cal_matrix" in m:
            cal[:, :, k] = np.asarray(m["cal_matrix"], dtype=float)
        if "cop_poly" in m:
            poly[:, k] = np.asarray(m["cop_poly"], dtype=float)
    fp = c["parameters"]["FORCE_PLATFORM"]
    fp["USED"]["value"] = [n]
    fp["TYPE"]["value"] = types
    fp["CORNERS"]["value"] = corners
    fp["ORIGIN"]["value"] = origin
    fp["CHANNEL"]["value"] = channel
    if 4 in types:  # the calibration matrix is only defined (and only used) for type-4 plates
        fp["CAL_MATRIX"]["value"] = cal
    c.add_parameter("FORCE_PLATFORM", "UNITS", [unit_force])
    if np.any(poly):  # type-3 centre-of-pressure correction, read back as _forceplate_math reads it
        c.add_parameter("FORCE_PLATFORM", "FPCOPPOLY", poly)
    if not has_points:  # the plate's position unit is POINT:UNITS
        c["parameters"]["POINT"]["UNITS"]["value"] = [unit_position]
    return n


def _write_subjects(c: Any, source_meta: dict[str, Any]) -> None:
    group = source_meta.get("c3d_subjects") or {}
    if not group and source_meta.get("c3d_subject_names"):  # sessions ingested before c3d_subjects was kept
        names = [str(x) for x in source_meta["c3d_subject_names"]]
        group = {"USED": [len(names)], "NAMES": names}
    for key, value in group.items():
        if isinstance(value, list) and value:
            c.add_parameter("SUBJECTS", key, value)


def _write_processing(c: Any, params: dict[str, Any]) -> int:
    """The PROCESSING group (Vicon subject parameters) from the session's ``subject_parameters``, as
    `_subject_parameters` reads them back: ``mass_kg`` -> ``Bodymass`` (kg), ``height_m`` -> ``Height`` (mm),
    ``<name>_m`` -> ``<name>`` (mm), ``<name>_raw`` -> ``<name>`` (as stored). Returns the number written."""
    written: dict[str, float] = {}
    for key, value in params.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
            continue
        if key == "mass_kg":
            name, v = "Bodymass", float(value)
        elif key == "height_m":
            name, v = "Height", float(value) * 1000.0
        elif key.endswith("_raw"):
            name, v = key[:-4], float(value)
        elif key.endswith("_m"):
            name, v = key[:-2], float(value) * 1000.0
        else:
            continue
        if name and name not in written:
            written[name] = v
    for name, v in written.items():
        c.add_parameter("PROCESSING", name, [v])
    return len(written)


def _write_events(c: Any, events: list[Event], details: dict[str, dict[str, Any]]) -> int:
    """EVENT group (and, for detector events, the FUSIONLAB group `read_c3d` reads back); number of detector
    events written."""
    if not events:
        return 0
    times = np.array([[0.0] * len(events), [e.time_s for e in events]])
    contexts = [{"left": "Left", "right": "Right"}.get(e.side, "General") for e in events]
    names = [_event_label(e) for e in events]
    descriptions, subjects, icons, flags = [], [], [], []
    for e, ctx, name in zip(events, contexts, names, strict=True):
        d = (details.get(e.label) or details.get(f"{ctx} {name}") or {}) if e.source == "annotation" else {}
        if e.source == "annotation":
            text = str(d.get("descriptions", ""))
            if not text and e.label and e.label != f"{ctx} {name}":  # "LHS" written as Left "Foot Strike"
                text = f"original label: {e.label}"
            descriptions.append(text)
        else:
            sd = f", sd {e.sd_s * 1000:.0f} ms" if math.isfinite(e.sd_s) else ""
            descriptions.append(f"fusionlab {e.source} detector {e.detector}{sd} (not an annotation)")
        subjects.append(str(d.get("subjects", "")))
        icons.append(int(d.get("icon_ids", {"foot_strike": 1, "foot_off": 2}.get(e.kind, 0))))
        flags.append(int(d.get("generic_flags", 1 if ctx == "General" else 0)))
    c.add_parameter("EVENT", "USED", [len(events)])
    c.add_parameter("EVENT", "TIMES", times)
    c.add_parameter("EVENT", "LABELS", names)
    c.add_parameter("EVENT", "CONTEXTS", contexts)
    c.add_parameter("EVENT", "DESCRIPTIONS", descriptions)
    if any(subjects):
        c.add_parameter("EVENT", "SUBJECTS", subjects)
    c.add_parameter("EVENT", "ICON_IDS", icons)
    c.add_parameter("EVENT", "GENERIC_FLAGS", flags)
    detector = [e for e in events if e.source != "annotation"]
    if detector:
        c.add_parameter("FUSIONLAB", "EVENT_SOURCES", [e.source for e in events])
        c.add_parameter("FUSIONLAB", "EVENT_DETECTORS", [e.detector or e.source for e in events])
        c.add_parameter("FUSIONLAB", "EVENT_SD_S", [e.sd_s if math.isfinite(e.sd_s) else -1.0 for e in events])
        c.add_parameter("FUSIONLAB", "EVENT_TIMES", [float(t) for t in times[1]])
    return len(detector)


def _known(unit: str) -> bool:
    try:
        to_si(unit)
    except UnitError:
        return False
    return True


def _event_label(e: Event) -> str:
    if e.kind == "foot_strike":
        return "Foot Strike"
    if e.kind == "foot_off":
        return "Foot Off"
    parts = e.label.split(" ", 1)
    return parts[1] if len(parts) == 2 and parts[0] in ("Left", "Right", "General") else (e.label or e.kind)
