"""A C3D file's data section read with NumPy; ezc3d reads only the header and the parameters.

Why
    ``ezc3d.c3d(path)`` builds one C++ object per point and per analog sample and then copies them into NumPy
    arrays one value at a time: about 5 s for a 10-minute, 64-channel recording, most of a ``fusionlab ingest``.
    Reading the data section as arrays takes a fraction of a second.

How
    1. ezc3d reads a temporary copy of the file cut at the start of the data section (header and parameter
       section only): its data loop stops at the end of the file after no frame, so ezc3d does everything it does
       for parameters (mandatory parameters, header/parameter consistency, Vicon fix-ups) and nothing else.
       ezc3d 1.7.2 then rewrites a few things from the data it read (``POINT:FRAMES``, ``ANALOG:USED`` when a
       file has no analog sub-frames, the header's last frame); `_match_full_read` applies the same changes for
       the frames read here, so ``parameters`` and ``header`` equal those of ``ezc3d.c3d(path)``.
    2. The data section is read in chunks of frames into the output arrays, with ezc3d's layout and arithmetic
       (ezc3d 1.7.2, ``src/Point.cpp``, ``src/Channel.cpp``, ``src/Data.cpp``, ``src/ezc3d.cpp``):

       * frame = points, then ``ANALOG`` sub-frames; the layout comes from ezc3d's header *after* its consistency
         step (``POINT:USED``, ``ANALOG:USED``, ``ANALOG:RATE / POINT:RATE``), data start from the header;
       * a point is float when its ``POINT:SCALE`` (``SCALE2``..., the first value when the list is short) is
         negative, else int16 times that scale; analogs are float when the header's scale factor is negative;
       * DEC floats: 16-bit words swapped and 1 subtracted from the exponent byte when it is not 0 (ezc3d's
         byte rule, which is "divide by 4" for every normal number);
       * invalid points (NaN): float files, 4th word < 0; integer files, the residual byte (high byte of the 4th
         word, signed) times the scale is < 0;
       * analog = ``float32(value - |OFFSET|) * SCALE * GEN_SCALE`` (float32 subtraction, then float64, left to
         right), ``SHADOW`` files get scale 1 and offset 0 when the lists are empty;
       * frames: the header's count (after ezc3d replaced it by ``POINT:FRAMES``), limited to the complete frames
         in the file; 65535 frames means "to the end of the file" (Vicon files longer than the header can say).

    The result equals ``ezc3d.c3d(path)`` bit for bit (``tests/test_c3d_data.py``, every C3D of ../shared/data).

Where ezc3d's result is undefined
    ezc3d indexes ``ANALOG:SCALE``/``OFFSET`` and ``GEN_SCALE[0]`` without bounds checks: a list shorter than the
    channel count makes it read whatever memory follows (values around 1e-311 that change from run to run, as on
    c3d.org sample11 ``evart``). Here those channels get scale 1, offset 0 (GEN_SCALE 1), and `C3DContent.notes`
    says so.

ROTATION group
    ezc3d's writer adds an empty ``ROTATION`` group (``USED`` 0) to every file it writes. ezc3d reads rotation data
    into the frames the header announces, whether it read them or not: on the cut copy it writes out of bounds and
    crashes. The group is therefore renamed in the cut copy (same length, ``~~~~~~~~``) and given back its name,
    ``USED`` (set by ezc3d from frame 0) and the header's ``rotations`` entry afterwards.

Fallback
    Layouts outside these rules (rotations, ``ROTATION:USED`` > 0; mixed float/integer points; a parameter section
    that does not end before the data; an empty ``POINT:SCALE`` or ``POINT:FRAMES``) are read by ``ezc3d.c3d(path)``
    as before; `C3DContent.reader` is then ``"ezc3d"`` and `C3DContent.notes` gives the reason.
"""

from __future__ import annotations

import math
import os
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = ["C3DContent", "UnsupportedLayoutError", "read_c3d_content"]

CHUNK_BYTES = 1 << 22  # data section read 4 MiB at a time: temporaries stay small, the output is the only copy
_ALL_OF_FILE = 0xFFFF  # ezc3d: this frame count means "read to the end of the file"
_PROCESSORS = {84: "Intel", 85: "DEC", 86: "MIPS"}


class UnsupportedLayoutError(Exception):
    """The file's data section is outside what the NumPy reader implements (ezc3d reads it instead)."""


@dataclass
class C3DContent:
    """What ``read_c3d`` needs from a C3D file, as ``ezc3d.c3d(path)`` would give it.

    ``points`` is ``(3, n_points, n_frames)`` float64 (x, y, z; NaN where the point is invalid) and ``analogs``
    ``(1, n_channels, n_samples)`` float64 in the file's units: the shapes of ezc3d's ``c["data"]["points"][:3]``
    and ``c["data"]["analogs"]``. Both are writable. With the NumPy reader they are transposed views of
    frame-major arrays (``(n_frames, n_points, 3)`` and ``(n_samples, n_channels)``, the order of the file).
    """

    header: Mapping[str, Any]  # ezc3d's c["header"]
    parameters: Mapping[str, Any]  # ezc3d's c["parameters"]
    points: NDArray[np.float64]
    analogs: NDArray[np.float64]
    n_frames: int
    reader: Literal["numpy", "ezc3d"]
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Layout:
    processor: str
    n_points: int
    n_channels: int
    n_subframes: int
    n_frames_header: int
    data_offset: int
    rotation: bool  # the file has a ROTATION group (hidden from ezc3d's reading of the parameters)
    float_points: bool
    float_analogs: bool
    point_scales: NDArray[np.float64]  # per point
    analog_scales: NDArray[np.float64]  # per channel
    analog_offsets: NDArray[np.int64]  # per channel, absolute values
    gen_scale: float

    @property
    def point_bytes(self) -> int:
        return self.n_points * 4 * (4 if self.float_points else 2)

    @property
    def frame_bytes(self) -> int:
        return self.point_bytes + self.n_subframes * self.n_channels * (4 if self.float_analogs else 2)


# ============================================================================================== public entry
def read_c3d_content(path: str | os.PathLike[str], *,
                     reader: Literal["auto", "numpy", "ezc3d"] = "auto") -> C3DContent:
    """Read a C3D file: ezc3d for the header and parameters, NumPy for the data section.

    Parameters
    ----------
    path
        A C3D file that `fusionlab.adapters.c3d.check_c3d` accepted.
    reader
        ``"auto"``: NumPy, or ezc3d for a layout the NumPy reader does not implement (see the module notes);
        ``"numpy"``: raise `UnsupportedLayoutError` instead of falling back; ``"ezc3d"``: ``ezc3d.c3d(path)`` only.

    Raises
    ------
    UnsupportedLayoutError
        With ``reader="numpy"``, for a layout outside the NumPy reader (``"auto"`` falls back to ezc3d then, and
        also when the NumPy reader fails in an unforeseen way; `C3DContent.notes` records it).
    Exception
        Whatever ezc3d raises on a file it cannot read (the caller turns it into a `FileFormatError`).
    """
    p = Path(path)
    if reader == "ezc3d":
        return _read_with_ezc3d(p, [])
    if reader == "numpy":
        return _read_with_numpy(p)
    try:
        return _read_with_numpy(p)
    except UnsupportedLayoutError as e:
        return _read_with_ezc3d(p, [f"data section read by ezc3d: {e}"])
    except (ValueError, TypeError, IndexError, KeyError, OverflowError, struct.error, OSError) as e:
        # a layout nobody foresaw: ezc3d reads the file as before, and the note says why (a bug to report)
        return _read_with_ezc3d(p, [f"data section read by ezc3d: the NumPy reader failed ({type(e).__name__}: {e})"])


def _read_with_ezc3d(p: Path, notes: list[str]) -> C3DContent:
    import ezc3d

    c = ezc3d.c3d(str(p))
    pts = c["data"]["points"]
    return C3DContent(header=c["header"], parameters=c["parameters"], points=pts[:3], analogs=c["data"]["analogs"],
                      n_frames=int(pts.shape[2]), reader="ezc3d", notes=notes)


# ============================================================================================== NumPy reader
def _read_with_numpy(p: Path) -> C3DContent:
    size = p.stat().st_size
    with p.open("rb") as fh:
        head = fh.read(512)
        if len(head) < 512 or head[1] != 0x50 or head[0] < 2:
            raise UnsupportedLayoutError("not a plain C3D header")
        param_offset = (head[0] - 1) * 512
        fh.seek(param_offset)
        phead = fh.read(4)
        if len(phead) < 4:
            raise UnsupportedLayoutError("no parameter section")
        processor = _PROCESSORS.get(phead[3])
        if processor not in ("Intel", "DEC"):
            raise UnsupportedLayoutError(f"processor type {phead[3]}")
        data_start_block = struct.unpack("<H", head[16:18])[0]  # ezc3d reads the data where the header says
        data_offset = (data_start_block - 1) * 512
        param_end = param_offset + max(phead[2], 1) * 512
        if data_start_block < 1 or data_offset < param_end:
            raise UnsupportedLayoutError(f"the data section (block {data_start_block}) starts inside the header or the "
                                    "parameter section")
        fh.seek(0)
        meta_bytes = bytearray(fh.read(min(data_offset, size)))
    walk = _walk_parameters(meta_bytes, param_offset)
    rotation = [g for g in walk.groups.values() if g[0] == "ROTATION"]
    if len(rotation) > 1:
        raise UnsupportedLayoutError("two ROTATION groups")
    hidden = ""
    if rotation:
        # ezc3d reads rotation data for every frame the header announces, into the frames it read: with no frame
        # read (the cut copy) it writes out of bounds and crashes. Hide the group from it under another name.
        _, at, length = rotation[0]
        hidden = "~" * length
        if any(g[0] == hidden for g in walk.groups.values()):
            raise UnsupportedLayoutError(f"a group is named {hidden!r}")
        meta_bytes[at:at + length] = hidden.encode("latin-1")

    meta, swig_header = _read_parameters(bytes(meta_bytes))
    notes: list[str] = []
    layout = _layout(meta, swig_header, processor, data_offset, bool(rotation), notes)
    n_frames = _frames_to_read(layout, size)
    rotation_ratio = _check_rotation(meta, swig_header, hidden, layout, n_frames) if rotation else 0
    points, analogs = _read_data(p, layout, n_frames)
    _match_full_read(meta, swig_header, layout, n_frames, walk.frames, hidden, rotation_ratio)
    return C3DContent(header=meta["header"], parameters=meta["parameters"], points=points.transpose(2, 1, 0),
                      analogs=analogs.T[np.newaxis], n_frames=n_frames, reader="numpy", notes=notes)


def _read_parameters(meta_bytes: bytes) -> tuple[Any, Any]:
    """ezc3d's reading of the header and parameters: a copy of the file cut at the data start, so no frame."""
    import ezc3d

    fd, tmp = tempfile.mkstemp(prefix="fusionlab-c3d-", suffix=".c3d")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(meta_bytes)
        try:
            meta = ezc3d.c3d(tmp)
        except Exception as e:
            raise UnsupportedLayoutError(f"ezc3d cannot read the parameters without the data ({e})") from None
    finally:
        Path(tmp).unlink()
    if meta["data"]["points"].shape[2] != 0:
        raise UnsupportedLayoutError("ezc3d read frames from the parameter section")
    return meta, meta.c3d_swig.header()


def _values(params: Mapping[str, Any], group: str, name: str) -> NDArray[Any] | None:
    try:
        value = params[group][name]["value"]
    except KeyError:
        return None
    return np.ravel(np.asarray(value), order="F")  # ezc3d's flat order


def _concat(params: Mapping[str, Any], group: str, name: str) -> NDArray[Any]:
    """A parameter and its continuations (``SCALE``, ``SCALE2``, ``SCALE3`` ...), as ezc3d concatenates them."""
    parts = []
    first = _values(params, group, name)
    if first is not None:
        parts.append(first)
    k = 2
    while (more := _values(params, group, f"{name}{k}")) is not None:
        parts.append(more)
        k += 1
    return np.concatenate(parts) if parts else np.zeros(0)


def _layout(meta: Any, hdr: Any, processor: str, data_offset: int, rotation: bool, notes: list[str]) -> _Layout:
    params = meta["parameters"]
    if hdr.hasRotationalData():  # the ROTATION group is hidden from ezc3d; another name would be a new layout
        raise UnsupportedLayoutError("ezc3d sees rotation data")
    n_points = int(hdr.nb3dPoints())
    n_channels = int(hdr.nbAnalogs())
    n_sub = int(hdr.nbAnalogByFrame())
    float_analogs = hdr.scaleFactor() < 0
    point_scales = np.zeros(n_points)
    if n_points:
        scales = _concat(params, "POINT", "SCALE").astype(float)
        if scales.size == 0:
            raise UnsupportedLayoutError("POINT:SCALE is empty")
        point_scales = np.where(np.arange(n_points) < scales.size,
                                scales[np.minimum(np.arange(n_points), scales.size - 1)], scales[0])
    kinds = set((point_scales < 0).tolist())
    if len(kinds) > 1:
        raise UnsupportedLayoutError("POINT:SCALE mixes float (negative) and integer (positive) points")
    float_points = kinds == {True}

    analog_scales = np.zeros(n_channels)
    offsets = np.zeros(n_channels, dtype=np.int64)
    gen = 1.0
    if n_channels and n_sub:
        sc = _concat(params, "ANALOG", "SCALE").astype(float)
        off = np.abs(_concat(params, "ANALOG", "OFFSET").astype(np.int64))
        if "SHADOW" in params:  # ezc3d: SHADOW files keep these in another group; defaults when empty
            sc = sc if sc.size else np.ones(n_channels)
            off = off if off.size else np.zeros(n_channels, dtype=np.int64)
        gen_values = _values(params, "ANALOG", "GEN_SCALE")
        if gen_values is None or gen_values.size == 0:
            notes.append("ANALOG:GEN_SCALE is empty; 1 is used (ezc3d reads undefined memory there)")
        else:
            gen = float(gen_values[0])
        if sc.size < n_channels:
            notes.append(f"ANALOG:SCALE lists {sc.size} values for {n_channels} channels; channels "
                         f"{sc.size + 1}-{n_channels} are read with scale 1 (ezc3d reads undefined memory there)")
            sc = np.concatenate([sc, np.ones(n_channels - sc.size)])
        if off.size < n_channels:
            notes.append(f"ANALOG:OFFSET lists {off.size} values for {n_channels} channels; channels "
                         f"{off.size + 1}-{n_channels} are read with offset 0 (ezc3d reads undefined memory there)")
            off = np.concatenate([off, np.zeros(n_channels - off.size, dtype=np.int64)])
        analog_scales, offsets = sc[:n_channels], off[:n_channels]
    if rotation and n_points == 0 and n_channels == 0:
        raise UnsupportedLayoutError("a ROTATION group in a file without points or analogs")
    return _Layout(processor=processor, n_points=n_points, n_channels=n_channels, n_subframes=n_sub,
                   n_frames_header=int(hdr.nbFrames()), data_offset=data_offset, rotation=rotation,
                   float_points=float_points,
                   float_analogs=float_analogs, point_scales=point_scales, analog_scales=analog_scales,
                   analog_offsets=offsets, gen_scale=gen)


def _frames_to_read(layout: _Layout, size: int) -> int:
    """ezc3d's frame count: the header's (as ezc3d fixed it), at most the complete frames in the file."""
    if layout.n_frames_header == 0 or layout.frame_bytes == 0:
        return 0
    complete = max(0, size - layout.data_offset) // layout.frame_bytes
    if layout.n_frames_header == _ALL_OF_FILE and not layout.rotation:
        return complete
    return min(layout.n_frames_header, complete)


def _check_rotation(meta: Any, hdr: Any, hidden: str, layout: _Layout, n: int) -> int:
    """Accept a ROTATION group that holds no rotation (``USED`` 0, as ezc3d's writer leaves it); its ratio.

    ezc3d's full read checks the group (``DATA_START``, ``USED``, ``RATIO`` or ``RATE``), reads no bytes for 0
    rotations and then sets ``USED`` from frame 0. Rotations themselves (``USED`` > 0), a file with no complete
    frame or with fewer frames than the header says (ezc3d then indexes frames it did not read) go to ezc3d.
    """
    group = meta["parameters"][hidden]

    def first(name: str, types: tuple[int, ...]) -> float:
        entry = group.get(name)
        if entry is None or entry["type"] not in types or np.size(entry["value"]) == 0:
            raise UnsupportedLayoutError(f"ROTATION:{name} is missing, empty or of type {entry and entry['type']}")
        return float(np.ravel(entry["value"], order="F")[0])

    first("DATA_START", (1, 2))
    if first("USED", (1, 2)) != 0:
        raise UnsupportedLayoutError("the file holds rotations (ROTATION:USED > 0)")
    if n == 0 or n != layout.n_frames_header:
        raise UnsupportedLayoutError("a ROTATION group with a frame count that ezc3d cannot read safely")
    ratio = first("RATIO", (1, 2)) if "RATIO" in group else first("RATE", (4,)) / hdr.frameRate()
    if not (math.isfinite(ratio) and 0 <= ratio < 2**31):
        raise UnsupportedLayoutError(f"ROTATION ratio {ratio}")
    return int(ratio)


def _dec_to_ieee(words: NDArray[np.uint32]) -> NDArray[np.float32]:
    """DEC F-floats (as little-endian uint32) to IEEE float32, byte for byte as ezc3d's ``readFloat`` does."""
    x = (words >> np.uint32(16)) | (words << np.uint32(16))
    top = x >> np.uint32(24)
    x -= (top != 0).astype(np.uint32) << np.uint32(24)
    return x.view(np.float32)


def _read_data(p: Path, lay: _Layout, n: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The data section as ``(n, n_points, 3)`` and ``(n * n_subframes, n_channels)`` float64 arrays."""
    points = np.empty((n, lay.n_points, 3))
    analogs = np.empty((n * lay.n_subframes, lay.n_channels))
    fb = lay.frame_bytes
    if n == 0 or fb == 0:
        return points, analogs
    chunk = max(1, CHUNK_BYTES // fb)
    buf = bytearray(min(chunk, n) * fb)
    dec = lay.processor == "DEC"
    ae = 4 if lay.float_analogs else 2
    scales_i = lay.point_scales[np.newaxis, :]
    uniform_scale = lay.n_points > 0 and bool(np.all(lay.point_scales == lay.point_scales[0]))
    off32 = lay.analog_offsets.astype(np.float32)  # ezc3d: float value - int offset, in float
    any_offset = bool(np.any(lay.analog_offsets != 0))
    unit_scale = bool(np.all(lay.analog_scales == 1.0))
    with p.open("rb", buffering=0) as fh:
        fh.seek(lay.data_offset)
        f0 = 0
        while f0 < n:
            m = min(chunk, n - f0)
            view = memoryview(buf)[:m * fb]
            got = 0
            while got < m * fb:
                k = fh.readinto(view[got:])
                if not k:
                    raise UnsupportedLayoutError("the file ended inside the data section")
                got += k
            if lay.n_points:
                out = points[f0:f0 + m]
                if lay.float_points:
                    if dec:
                        raw = _dec_to_ieee(np.ndarray((m, lay.n_points, 4), dtype="<u4", buffer=buf,
                                                      strides=(fb, 16, 4)))
                    else:
                        raw = np.ndarray((m, lay.n_points, 4), dtype="<f4", buffer=buf, strides=(fb, 16, 4))
                    out[...] = raw[:, :, :3]
                    invalid = raw[:, :, 3] < 0
                else:
                    raw_i = np.ndarray((m, lay.n_points, 4), dtype="<i2", buffer=buf, strides=(fb, 8, 2))
                    out[...] = raw_i[:, :, :3]
                    if uniform_scale:
                        out *= lay.point_scales[0]
                    else:
                        out *= lay.point_scales[np.newaxis, :, np.newaxis]
                    # residual = signed high byte of the 4th word times the scale, stored as float by ezc3d
                    residual = ((raw_i[:, :, 3] >> 8) * scales_i).astype(np.float32)
                    invalid = residual < 0
                if invalid.any():
                    out[invalid] = np.nan
            if lay.n_channels and lay.n_subframes:
                shape = (m, lay.n_subframes, lay.n_channels)
                strides = (fb, lay.n_channels * ae, ae)
                if lay.float_analogs:
                    if dec:
                        raw_a: NDArray[Any] = _dec_to_ieee(np.ndarray(shape, dtype="<u4", buffer=buf,
                                                                      offset=lay.point_bytes, strides=strides))
                    else:
                        raw_a = np.ndarray(shape, dtype="<f4", buffer=buf, offset=lay.point_bytes, strides=strides)
                else:
                    raw_a = np.ndarray(shape, dtype="<i2", buffer=buf, offset=lay.point_bytes, strides=strides)
                out_a = analogs[f0 * lay.n_subframes:(f0 + m) * lay.n_subframes].reshape(shape)
                counts = np.subtract(raw_a, off32, dtype=np.float32) if any_offset else raw_a
                if unit_scale:
                    out_a[...] = counts
                else:
                    np.multiply(counts, lay.analog_scales, out=out_a, dtype=np.float64)
                if lay.gen_scale != 1.0:
                    out_a *= lay.gen_scale
            f0 += m
    return points, analogs


# ============================================================================================== ezc3d's post-read
@dataclass
class _Walk:
    groups: dict[int, tuple[str, int, int]]  # group id -> (name as ezc3d reads it, byte position, length)
    frames: tuple[int, tuple[int, ...], list[int]] | None  # POINT:FRAMES as stored: type, dimensions, values


def _walk_parameters(meta: bytes | bytearray, param_offset: int) -> _Walk:
    """Walk the parameter chain as ezc3d does; return the groups and ``POINT:FRAMES`` as stored.

    Also checks that the chain ends inside ``meta`` (before the data section): otherwise ezc3d would read
    parameters from the data, and the cut copy would not give the same parameters. Intel and DEC integers are both
    little-endian.
    """
    def short() -> UnsupportedLayoutError:
        return UnsupportedLayoutError("the parameter section does not end before the data section")

    end = len(meta)
    pos = param_offset + 4
    groups: dict[int, tuple[str, int, int]] = {}
    found: list[tuple[int, int, tuple[int, ...], list[int]]] = []
    while True:
        if pos + 1 > end:
            raise short()
        name_len = struct.unpack_from("b", meta, pos)[0]
        if name_len == 0:
            break
        n = abs(name_len)
        if pos + 2 + n + 2 > end:
            raise short()
        gid = struct.unpack_from("b", meta, pos + 1)[0]
        name = bytes(meta[pos + 2:pos + 2 + n]).split(b"\0")[0].decode("latin-1")  # ezc3d: C string, exact case
        opos = pos + 2 + n
        offset = struct.unpack_from("<H", meta, opos)[0]
        body = opos + 2
        if gid < 0:
            groups[-gid] = (name, pos + 2, n)
            desc_at = body
        else:
            if body + 2 > end:
                raise short()
            dtype, n_dims = struct.unpack_from("bb", meta, body)
            if dtype not in (-1, 1, 2, 4) or n_dims < 0:
                raise UnsupportedLayoutError(f"parameter {name}: type {dtype}, {n_dims} dimensions")
            dims = tuple(meta[body + 2:body + 2 + n_dims])
            count = math.prod(dims) if dims else (1 if dtype != -1 else 0)
            data_at = body + 2 + n_dims
            desc_at = data_at + count * abs(dtype)
            if desc_at > end:
                raise short()
            if name == "FRAMES":
                values = []
                if dtype in (1, 2):
                    fmt = "b" if dtype == 1 else "<h"
                    values = [struct.unpack_from(fmt, meta, data_at + dtype * i)[0] for i in range(count)]
                found.append((gid, dtype, dims if dims else (1,), values))
        if desc_at + 1 > end:
            raise short()
        desc_len = struct.unpack_from("b", meta, desc_at)[0]
        if desc_at + 1 + max(desc_len, 0) > end:
            raise short()
        if offset == 0:
            break
        nxt = opos + offset
        if nxt <= pos:
            raise UnsupportedLayoutError("the parameter chain points backwards")
        pos = nxt
    frames = None
    for gid, dtype, dims, values in found:
        if gid in groups and groups[gid][0] == "POINT":
            if dtype not in (1, 2) or not values:
                raise UnsupportedLayoutError("POINT:FRAMES is empty or not an integer")
            frames = (dtype, dims, values)
            break
    return _Walk(groups=groups, frames=frames)


def _match_full_read(meta: Any, hdr: Any, lay: _Layout, n: int,
                     frames_param: tuple[int, tuple[int, ...], list[int]] | None, hidden: str,
                     rotation_ratio: int) -> None:
    """Change the cut copy's parameters and header as ezc3d changes them after reading ``n`` frames.

    ezc3d 1.7.2 ``c3d::updateParameters`` then ``updateHeader``: ``POINT:FRAMES`` is set to the number of frames
    read when it differs from the stored value (after ``setMandatoryParameters`` turned a negative or multi-value
    ``FRAMES`` into one unsigned 16-bit value); ``ANALOG:USED`` is set to 0 when frames were read without analog
    sub-frames; ``ROTATION:USED`` is set to the rotations of frame 0 (0 here); the header's last frame becomes
    ``first + n - 1`` when ``n`` differs from its frame count. The hidden ROTATION group gets its name back.
    """
    from ezc3d import ezc3d as swig

    params = meta["parameters"]
    # POINT:FRAMES as the full read leaves it
    if frames_param is None:
        stored_type, stored_dims, stored = swig.INT, (1,), [0]
    else:
        stored_type, stored_dims, stored = frames_param
        if len(stored) > 1 or stored[0] < 0:  # setMandatoryParameters
            stored_type, stored_dims, stored = swig.INT, (1,), [stored[0] & 0xFFFF]
    frames = params["POINT"]["FRAMES"]
    if n != stored[0]:
        frames["type"], frames["value"] = swig.INT, np.array([n], dtype="int")
    else:
        frames["type"] = stored_type
        frames["value"] = np.array(stored, dtype="int").reshape(stored_dims, order="F")
    # ANALOG:USED
    if n > 0 and lay.n_subframes == 0:
        used = params["ANALOG"]["USED"]
        if int(np.ravel(used["value"])[0]) != 0:
            used["type"], used["value"] = swig.INT, np.array([0], dtype="int")
    # header
    h = meta["header"]
    last = int(hdr.lastFrame())
    if n != 0 and n != lay.n_frames_header:
        last = int(hdr.firstFrame()) + n - 1
        h["points"]["last_frame"] = last
        h["analogs"]["last_frame"] = int(hdr.nbAnalogByFrame()) * (last + 1) - 1
    if hidden:
        storage = params._storage  # the mapping ezc3d's Parameters wraps: rename in place, keeping the order
        renamed = {("ROTATION" if k == hidden else k): v for k, v in storage.items()}
        storage.clear()
        storage.update(renamed)
        accessor = type(getattr(params, hidden))  # ezc3d's attribute access to a group (c["parameters"].POINT)
        delattr(params, hidden)
        params.ROTATION = accessor(storage["ROTATION"])
        rot = storage["ROTATION"]["USED"]
        rot["type"], rot["value"] = swig.INT, np.array([0], dtype="int")
        h["rotations"].update(size=0, frame_rate=hdr.frameRate() * rotation_ratio,
                              first_frame=rotation_ratio * int(hdr.firstFrame()),
                              last_frame=rotation_ratio * (last + 1) - 1)
