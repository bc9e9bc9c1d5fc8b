"""Xsens MT Manager text exports (``MT_<...>_<DeviceId>.txt``): one sensor per file.

Layout (see ``docs/imu-formats.md``)::

    // Start Time: Unknown                  <- header lines start with '//': old exports give the update rate,
    // Update Rate: 100.0Hz                    filter profile and firmware; MT Manager 2019+ exports give the
    // Firmware Version: 4.0.2                 DeviceId, product code, versions and coordinate system, but no rate
    PacketCounter<TAB>SampleTimeFine<TAB>...<TAB>Acc_X<TAB>Acc_Y<TAB>Acc_Z<TAB>Gyr_X...<TAB>Mat[1][1]...
    00472<TAB><TAB>...<TAB>0.102257<TAB>4.888482<TAB>...

Delimiters: tab, comma, semicolon or a single space. Empty fields stay empty (``a;;b``; with spaces a run of
spaces), so rows are split on the single delimiter character, never on whitespace runs. Empty fields and ``NaN``
are missing values.

Units (MT Manager defaults): ``Acc_*`` m/s² (includes gravity), ``Gyr_*`` rad/s, ``Mag_*`` arbitrary units
normalised to the Earth's field at the last magnetic calibration (no tesla value in the file), ``Roll/Pitch/Yaw``
degrees, ``Quat_q0..q3`` scalar-first, ``Mat[r][c]`` rotation matrix. Orientation outputs rotate sensor-frame
vectors into the Xsens global frame (ENU unless the header says otherwise): ``v_G = R v_S``.

Time: from ``SampleTimeFine`` (10 kHz ticks, 32-bit, unwrapped) when every row has it, else from ``PacketCounter``
(16-bit, unwrapped) divided by the update rate, else from the row index. Dropped packets (gaps in the counter) become
NaN rows at the missing samples; their number is in ``meta["dropped_packets"]``. Sample ``i`` of a file is at
``counter_first / rate + i / rate``, so sensors of one Awinda recording (which share the packet counter) line up
at zero clock offset.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from fusionlab.adapters._common import (
    base_meta,
    check_path,
    check_rate_hz,
    file_identity,
    unsynchronised_session,
)
from fusionlab.adapters._imu_common import (
    Policy,
    apply_unit_check,
    build_imu_stream,
    check_imu_units,
    check_placement,
    check_policy,
)
from fusionlab.adapters._tables import collect_rows, read_text_lines, split_cells, to_float_array
from fusionlab.consts import ORIENTATION_CHANNEL, QUAT_COMPONENTS
from fusionlab.exceptions import FileFormatError, FusionlabWarning, ValidationError
from fusionlab.model import Session, Stream

__all__ = ["DEFAULT_XSENS_RATE_HZ", "XsensHeader", "looks_like_xsens", "read_xsens_mtmanager"]

ADAPTER = "xsens_mtmanager"
DEFAULT_XSENS_RATE_HZ = 100.0
"""Rate assumed (with a warning) when neither the file nor the caller gives one (OpenSim assumes it too)."""
SAMPLE_TIME_FINE_HZ = 10_000.0
"""``SampleTimeFine`` counts 10 kHz ticks."""
_STF_WRAP = 2 ** 32
_PC_WRAP = 2 ** 16
_XSENS_MARKERS = ("PacketCounter", "SampleTimeFine", "Acc_X", "Gyr_X", "Mag_X", "Quat_q0", "Mat[1][1]", "Roll",
                  "FreeAcc_E", "dq_W", "VelInc_X")
_VECTOR = {"acc": "Acc", "gyr": "Gyr", "mag": "Mag"}
_MAT = re.compile(r"^Mat\[(\d)\]\[(\d)\]$")


@dataclass(frozen=True)
class XsensHeader:
    """What the ``//`` lines and the column-name row of an MT Manager export say."""

    fields: dict[str, str]
    delimiter: str
    columns: tuple[str, ...]
    column_line: int
    rate_hz: float | None = None
    device_id: str | None = None
    coordinate_system: str | None = None
    comments: tuple[str, ...] = field(default_factory=tuple)


def looks_like_xsens(text: str) -> bool:
    """True for an MT Manager export: ``//`` header lines and/or Xsens column names such as ``PacketCounter``."""
    lines = [ln for ln in text.splitlines()[:80] if ln.strip()]
    has_comment = bool(lines) and lines[0].lstrip().startswith("//")
    for ln in lines:
        if ln.lstrip().startswith("//"):
            continue
        tokens = set(re.split(r"[\t,; ]", ln.strip()))
        return ("PacketCounter" in tokens or "SampleTimeFine" in tokens
                or (has_comment and any(m in tokens for m in _XSENS_MARKERS)))
    return False


def _parse_header(lines: list[str], p: Path) -> XsensHeader:
    """Parse the ``//`` lines and the column-name row (pure; raises `FileFormatError` on a bad header)."""
    fields: dict[str, str] = {}
    comments: list[str] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        if line.lstrip().startswith("//"):
            body = line.lstrip()[2:].strip()
            comments.append(body)
            if ":" in body:
                key, value = body.split(":", 1)
                if value.strip():
                    fields[key.strip()] = value.strip()
            continue
        stripped = line.rstrip("\r\n")
        if "\t" in stripped:
            delim = "\t"
        elif ";" in stripped:
            delim = ";"
        elif "," in stripped:
            delim = ","
        else:
            delim = " "
        cols = split_cells(stripped.strip(), delim, drop_trailing_empty=True)
        if not any(c in _XSENS_MARKERS or _MAT.match(c) for c in cols):
            raise FileFormatError(p, f"line {i + 1} should name the columns (PacketCounter, Acc_X, ...) but reads "
                                     f"{stripped[:80]!r}; this is not an MT Manager export")
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise FileFormatError(p, f"line {i + 1}: duplicated column name(s) {', '.join(dup)}")
        rate = None
        for key in ("Update Rate", "Sample Rate", "Output Rate", "Sampling Rate"):
            if key in fields:
                m = re.search(r"([-+]?\d+(?:\.\d*)?)", fields[key])
                if not m or not float(m.group(1)) > 0:
                    raise FileFormatError(p, f"the header line '// {key}: {fields[key]}' does not give a rate in Hz")
                rate = float(m.group(1))
                break
        device = fields.get("DeviceId") or fields.get("Device ID")
        if device is None:
            m = re.search(r"_([0-9A-Fa-f]{8})$", p.stem)
            device = m.group(1).upper() if m else None
        return XsensHeader(fields=fields, delimiter=delim, columns=tuple(cols), column_line=i, rate_hz=rate,
                           device_id=device, coordinate_system=fields.get("Coordinate system"),
                           comments=tuple(comments))
    raise FileFormatError(p, "no column-name row: the file holds only '//' header lines")


def _read_values(p: Path, lines: list[str], header: XsensHeader) -> tuple[NDArray[np.float64], list[int]]:
    """Data rows as floats (empty fields are NaN) and their line numbers."""
    rows, numbers = collect_rows(p, lines, header.column_line + 1, len(header.columns), header.delimiter,
                                 header.column_line, comment_prefixes=("//",),
                                 fix="Re-export it, or delete the incomplete row; empty fields must stay in place")
    values, _ = to_float_array(p, rows, numbers, header.columns, allow_empty=True,
                               fix="Re-export the recording as text from MT Manager")
    return values, numbers


def _unwrap(counter: NDArray[np.float64], wrap: int, p: Path, name: str,
            numbers: list[int]) -> NDArray[np.int64]:
    """Unwrap a wrapping counter; duplicates or backward steps (other than a wrap) raise."""
    k = counter.astype(np.int64)
    if k.size < 2:
        return k
    d = np.diff(k)
    wraps = d < -(wrap // 2)
    d = d + wraps * wrap
    if np.any(d <= 0):
        i = int(np.flatnonzero(d <= 0)[0]) + 1
        kind = "repeats" if d[i - 1] == 0 else "goes back"
        raise FileFormatError(p, f"line {numbers[i]}: {name} {kind} ({k[i - 1]} then {k[i]}); rows are duplicated "
                                 "or out of order. Re-export the recording")
    return np.concatenate(([k[0]], k[0] + np.cumsum(d)))


def _quat_from(values: NDArray[np.float64], col: dict[str, int], header: XsensHeader) -> tuple[
        NDArray[np.float64] | None, str]:
    """Scalar-last quaternions ``(n, 4)`` from Quat, else Mat, else Euler columns (NaN rows stay NaN)."""
    from scipy.spatial.transform import Rotation

    n = values.shape[0]
    if all(f"Quat_q{i}" in col for i in range(4)):
        q = values[:, [col["Quat_q1"], col["Quat_q2"], col["Quat_q3"], col["Quat_q0"]]]  # scalar-first -> last
        return q, "Quat_q0..q3 (scalar-first in the file, reordered to [x, y, z, w])"
    mats = {(int(m.group(1)), int(m.group(2))): j for c, j in col.items() if (m := _MAT.match(c))}
    if len(mats) == 9:
        R = np.stack([np.stack([values[:, mats[r, c]] for c in (1, 2, 3)], axis=1) for r in (1, 2, 3)], axis=1)
        q = np.full((n, 4), np.nan)
        ok = np.all(np.isfinite(R), axis=(1, 2))
        if ok.any():
            q[ok] = Rotation.from_matrix(R[ok]).as_quat()
        return q, "Mat[r][c] (rotation matrix sensor -> global, converted with scipy)"
    if all(c in col for c in ("Roll", "Pitch", "Yaw")):
        e = values[:, [col["Yaw"], col["Pitch"], col["Roll"]]]
        q = np.full((n, 4), np.nan)
        ok = np.all(np.isfinite(e), axis=1)
        if ok.any():
            q[ok] = Rotation.from_euler("ZYX", e[ok], degrees=True).as_quat()
        return q, "Roll/Pitch/Yaw (deg, Xsens Z-Y-X sequence: R = Rz(yaw) Ry(pitch) Rx(roll))"
    return None, ""


def read_xsens_mtmanager(path: str | os.PathLike[str], *, placement: str = "unknown", prefix: str | None = None,
                         rate_hz: float | None = None, mag_field_t: float | None = None,
                         check_units: Policy = "raise") -> Session:
    """Read an Xsens MT Manager text export (one sensor).

    Parameters
    ----------
    path
        The ``.txt`` export (tab, comma, semicolon or space delimited).
    placement
        Where the sensor was worn (`fusionlab.consts.PLACEMENTS`); the file does not say. Default ``"unknown"``.
    prefix
        Stream-name prefix; default: the file stem and a dot.
    rate_hz
        Update rate (Hz) for exports without a rate line (MT Manager 2019 and later) and without SampleTimeFine.
        When the file states a rate, a given ``rate_hz`` must agree. Without either, 100 Hz is assumed with a
        `FusionlabWarning` (``meta["rate_source"]`` says so).
    mag_field_t
        Local magnetic field strength (T). Xsens writes magnetometer values normalised to the field at the last
        magnetic calibration; with this they are scaled to tesla. Default: kept normalised, unit ``"1"``.
    check_units
        ``"raise"`` (default), ``"warn"`` or ``"ignore"`` when acc/gyr values contradict the MT Manager units
        (m/s², rad/s); see `check_imu_units`.

    Returns
    -------
    Session
        ``<prefix><placement>``: ``imu`` ``(n, k, 3)`` float64 with ``acc`` (m/s²), ``gyr`` (rad/s), ``mag``
        (``"1"`` normalised, or T with ``mag_field_t``) as present, frame ``sensor:<placement>``, regular;
        ``<prefix><placement>.orientation`` (when the export has Quat, Mat or Euler columns): ``imu``
        ``(n, 1, 4)`` channel ``quat``, components x, y, z, w (scalar-last), unit ``"1"``, rotating sensor
        vectors into the Xsens global frame. One clock ``"xsens_mtmanager:<stem>:<sha256[:8]>"`` (unsynchronised).
        ``meta`` has ``sensor_id`` (DeviceId), ``packet_counter_first``/``_last``, ``dropped_packets`` and the
        header fields.

    Raises
    ------
    FileFormatError
        No Xsens column row, rows whose field count differs from the header, non-numeric values, counters that
        repeat or go back, a rate that contradicts the file, no data channel at all; `ImuUnitError` on a unit
        mismatch with ``check_units="raise"``.
    ValidationError
        Invalid options.
    """
    p = check_path(path)
    check_policy("check_units", check_units)
    place = check_placement(placement, path=p)
    check_rate_hz(rate_hz)
    if mag_field_t is not None and not (math.isfinite(mag_field_t) and 1e-6 < mag_field_t < 1e-3):
        msg = (f"Invalid value for 'mag_field_t'. Expected the local field strength in T (about 5e-5), but got "
               f"{mag_field_t} instead.")
        raise ValidationError(msg)
    options: dict[str, Any] = {"placement": place, "prefix": prefix, "rate_hz": rate_hz,
                               "mag_field_t": mag_field_t, "check_units": check_units}
    lines = read_text_lines(p, binary_hint="an Xsens .mtb recording must be exported to text in MT Manager "
                                          "(File > Export)")
    header = _parse_header(lines, p)
    values, numbers = _read_values(p, lines, header)
    col = {c: j for j, c in enumerate(header.columns)}
    n_rows = values.shape[0]

    # ---- rate
    if header.rate_hz is not None and rate_hz is not None and abs(header.rate_hz - rate_hz) > 1e-6 * rate_hz:
        raise FileFormatError(p, f"rate_hz={rate_hz:g} contradicts the header's update rate ({header.rate_hz:g} Hz); "
                                 "leave rate_hz out or pass the file's rate")
    rate = header.rate_hz or rate_hz
    rate_source = "header update rate" if header.rate_hz else ("rate_hz argument" if rate_hz else "")

    # ---- time: SampleTimeFine > PacketCounter > row index
    stf = values[:, col["SampleTimeFine"]] if "SampleTimeFine" in col else None
    pc = values[:, col["PacketCounter"]] if "PacketCounter" in col else None
    time_meta: dict[str, Any] = {}
    pc_u = None
    if pc is not None and np.all(np.isfinite(pc)):
        pc_u = _unwrap(pc, _PC_WRAP, p, "PacketCounter", numbers)
        time_meta.update(packet_counter_first=int(pc[0]), packet_counter_last=int(pc[-1]),
                         packet_counter_wraps=int((pc_u[-1] - pc_u[0]) - (pc[-1] - pc[0])) // _PC_WRAP)
    elif pc is not None:
        time_meta["packet_counter_note"] = "some PacketCounter cells are empty; the counter was not used"
    if stf is not None and stf.size and np.all(np.isfinite(stf)):
        ticks = _unwrap(stf, _STF_WRAP, p, "SampleTimeFine", numbers)
        if rate is None:
            step = float(np.median(np.diff(ticks))) if ticks.size > 1 else math.nan
            if not math.isfinite(step) or step <= 0:
                raise FileFormatError(p, "cannot derive the rate from a single SampleTimeFine value; pass rate_hz=")
            rate, rate_source = round(SAMPLE_TIME_FINE_HZ / step, 3), "SampleTimeFine steps"
        idx_f = (ticks - ticks[0]) * rate / SAMPLE_TIME_FINE_HZ
        idx = np.round(idx_f).astype(np.int64)
        worst = float(np.max(np.abs(idx_f - idx))) if idx.size else 0.0
        if worst > 0.25:
            raise FileFormatError(p, f"SampleTimeFine does not lie on a {rate:g} Hz grid (a sample is {worst:.2f} "
                                     "periods off); check the update rate")
        if np.any(np.diff(idx) <= 0):
            raise FileFormatError(p, f"two rows fall on the same {rate:g} Hz sample by SampleTimeFine; the rate is "
                                     "wrong or rows are duplicated")
        start = float(ticks[0]) / SAMPLE_TIME_FINE_HZ
        time_meta.update(time_source="SampleTimeFine (10 kHz ticks, unwrapped at 2^32)",
                         sample_time_fine_first=int(stf[0]))
    else:
        if rate is None:
            rate, rate_source = DEFAULT_XSENS_RATE_HZ, "assumed (not in the file)"
            warnings.warn(f"{p.name}: the export states no update rate and has no SampleTimeFine; assuming "
                          f"{DEFAULT_XSENS_RATE_HZ:g} Hz (the MTw default OpenSim assumes too). Pass rate_hz= to set "
                          "it and silence this warning.", FusionlabWarning, stacklevel=2)
        if pc_u is not None:
            idx = pc_u - pc_u[0]
            start = float(pc[0]) / rate  # type: ignore[index]
            time_meta["time_source"] = "PacketCounter / rate (16-bit counter, unwrapped)"
        else:
            idx = np.arange(n_rows, dtype=np.int64)
            start = 0.0
            time_meta["time_source"] = "row index / rate (no usable PacketCounter or SampleTimeFine)"
    n = int(idx[-1]) + 1
    dropped = n - n_rows
    gaps = [{"after_row_line": numbers[i], "missing": int(d - 1)} for i, d in enumerate(np.diff(idx)) if d > 1]
    if pc_u is not None and "SampleTimeFine" in time_meta.get("time_source", ""):
        time_meta["dropped_by_packet_counter"] = int((pc_u[-1] - pc_u[0] + 1) - n_rows)
    time_meta.update(dropped_packets=int(dropped), gaps=gaps[:50], n_gaps=len(gaps), rate_hz=rate,
                     rate_source=rate_source, start_s=start)

    def grid(a: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.full((n, *a.shape[1:]), np.nan)
        out[idx] = a
        return out

    # ---- channels
    raw: dict[str, NDArray[np.float64]] = {}
    for ch, stem in _VECTOR.items():
        names = [f"{stem}_{a}" for a in "XYZ"]
        present = [nm in col for nm in names]
        if any(present) and not all(present):
            raise FileFormatError(p, f"only some of {', '.join(names)} are present; the export must hold all three "
                                     "axes")
        if all(present):
            raw[ch] = values[:, [col[nm] for nm in names]]
    quat, quat_source = _quat_from(values, col, header)
    if not raw and quat is None:
        raise FileFormatError(p, "the export holds no Acc_*, Gyr_*, Mag_*, Quat_*, Mat[*][*] or Roll/Pitch/Yaw "
                                 "columns; export at least one of them")
    used = {"PacketCounter", "SampleTimeFine"} | {f"{_VECTOR[c]}_{a}" for c in raw for a in "XYZ"}
    if quat is not None:
        used |= {c for c in header.columns if c.startswith(("Quat_q", "Mat[")) or c in ("Roll", "Pitch", "Yaw")}
    unused = [c for c in header.columns if c not in used]

    sha, clock_id, prefix = file_identity(p, ADAPTER, prefix)
    frame_ref = header.coordinate_system or "ENU (MT Manager default; the header does not say)"
    meta0: dict[str, Any] = {**base_meta(p, ADAPTER, sha, options), "placement": place,
                             "sensor_id": header.device_id, "header": dict(header.fields), **time_meta}
    streams: list[Stream] = []
    if raw:
        declared = {"acc": "m/s^2", "gyr": "rad/s", "mag": "a.u."}
        check = check_imu_units(grid(raw["acc"]) if "acc" in raw else None,
                                grid(raw["gyr"]) if "gyr" in raw else None, rate, declared,
                                mag=raw.get("mag") if mag_field_t is not None else None)
        apply_unit_check(check, check_units, p, where=f"device {header.device_id or '?'}",
                         fix="MT Manager exports acc in m/s^2 and gyr in rad/s; check the export settings")
        si = {ch: grid(raw[ch]) for ch in raw}
        units: dict[str, str] = {}
        orig = {"acc": "m/s^2", "gyr": "rad/s", "mag": "a.u."}
        mag_note = None
        if "mag" in si:
            if mag_field_t is None:
                units["mag"] = "1"
                mag_note = ("normalised to the Earth's field at the last magnetic calibration (Xsens a.u.); pass "
                            "mag_field_t= to scale to tesla")
            else:
                si["mag"] = si["mag"] * mag_field_t
                mag_note = f"Xsens a.u. scaled by mag_field_t = {mag_field_t:g} T"
        meta = {**meta0, "unit_check": check, "orig_units": {c: orig[c] for c in si}}
        if mag_note:
            meta["mag_note"] = mag_note
        streams.append(build_imu_stream(f"{prefix}{place}", si, orig, placement=place, clock=clock_id, meta=meta,
                                        rate_hz=rate, start_s=start, units=units))
    if quat is not None:
        meta = {**meta0, "orientation_source": quat_source,
                "orientation_reference": f"Xsens global frame, {frame_ref}",
                "convention": "scalar-last [x, y, z, w]; rotates sensor-frame vectors into the global frame "
                              "(v_G = R(q) v_S)"}
        streams.append(Stream(name=f"{prefix}{place}.orientation", modality="imu",
                              data=grid(quat).reshape(n, 1, 4), channels=(ORIENTATION_CHANNEL,), units=("1",),
                              orig_units=("1",), components=QUAT_COMPONENTS, frame=f"sensor:{place}", rate_hz=rate,
                              start_s=start, clock=clock_id, meta=meta))
    metadata = {"format": "Xsens MT Manager text export", "delimiter": header.delimiter,
                "header": dict(header.fields), "header_lines": list(header.comments), "columns": list(header.columns),
                "unused_columns": unused, "n_rows": n_rows, "device_id": header.device_id,
                "coordinate_system": header.coordinate_system, "orientation_source": quat_source or None,
                **time_meta}
    return unsynchronised_session(p, ADAPTER, sha, streams, options, metadata, time_meta["time_source"])
