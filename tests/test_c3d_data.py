"""The NumPy reader of the C3D data section gives exactly what ``ezc3d.c3d(path)`` gives.

For every C3D of ../shared/data that ezc3d reads, and for edited copies that exercise ezc3d's frame-count rules
(``POINT:FRAMES`` against the header, "to the end of the file", a truncated last frame, a file written by ezc3d with
its empty ROTATION group): points (NaN at the same places), analogs, the header and every parameter (type,
description, lock, value, order) are compared with ``==``, no tolerance. The only values not compared are those
ezc3d reads from undefined memory (``ANALOG:SCALE`` shorter than the channel list), listed in `UNDEFINED_IN_EZC3D`.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import Any

import ezc3d
import numpy as np
import pytest

from fusionlab.adapters import _c3d_data
from fusionlab.adapters._c3d_data import UnsupportedLayoutError, read_c3d_content
from fusionlab.adapters.c3d import read_c3d
from tests.conftest import shared_path
from tests.test_adapter_c3d import READABLE

# Files read by ezc3d as a whole instead of NumPy, with the reason (none today).
EXPECTED_FALLBACK: dict[str, str] = {}

# Analog channels whose values ezc3d reads past the end of ANALOG:SCALE (undefined memory: about 1e-311, different
# at each run). The NumPy reader uses scale 1 there and says so in its notes.
UNDEFINED_IN_EZC3D: dict[str, list[int]] = {"c3d_org/sample11_evart.c3d": [24, 25, 26, 27]}


# ------------------------------------------------------------------------------------------------ comparison
def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    return type(a) is type(b) and a == b


def _parameter_differences(ref: Any, ours: Any) -> list[str]:
    out = []
    if list(ref) != list(ours):
        out.append(f"groups {list(ref)} != {list(ours)}")
    for g in ref:
        if g not in ours:
            continue
        if list(ref[g]) != list(ours[g]):
            out.append(f"{g}: parameters {list(ref[g])} != {list(ours[g])}")
        for k, a in ref[g].items():
            b = ours[g].get(k)
            if k == "__METADATA__":
                if a != b:
                    out.append(f"{g}: metadata {a} != {b}")
                continue
            if b is None:
                continue
            for f in ("type", "description", "is_locked"):
                if a[f] != b[f]:
                    out.append(f"{g}:{k}:{f} {a[f]!r} != {b[f]!r}")
            if not _same_value(a["value"], b["value"]):
                out.append(f"{g}:{k}:value {a['value']!r} != {b['value']!r}")
    for g in ours:  # ezc3d's attribute access to the groups (c["parameters"].POINT) follows
        accessor = getattr(ours, g, None)
        if accessor is None or accessor.__dict__ is not ours[g]:
            out.append(f"c['parameters'].{g} does not give the {g} group")
    return out


def _header_differences(ref: Any, ours: Any) -> list[str]:
    out = []
    for key in ("points", "analogs", "rotations", "events"):
        a, b = dict(ref[key]), dict(ours[key])
        if list(a) != list(b) or any(not _same_value(np.asarray(a[k]) if isinstance(a[k], tuple) else a[k],
                                                     np.asarray(b[k]) if isinstance(b[k], tuple) else b[k])
                                     for k in a):
            out.append(f"header {key}: {a} != {b}")
    return out


def _compare(path: Path, *, undefined: list[int] | None = None, reader: str = "numpy") -> Any:
    ref = ezc3d.c3d(str(path))
    ours = read_c3d_content(path)
    assert ours.reader == reader, ours.notes
    pts = ref["data"]["points"][:3]
    assert ours.points.shape == pts.shape and ours.points.dtype == np.float64
    assert ours.n_frames == pts.shape[2]
    np.testing.assert_array_equal(np.isnan(ours.points), np.isnan(pts))  # invalid points exactly where ezc3d has them
    assert np.array_equal(ours.points, pts, equal_nan=True)  # and every value bit for bit (no tolerance)
    ana = ref["data"]["analogs"]
    assert ours.analogs.shape == ana.shape and ours.analogs.dtype == np.float64
    keep = np.setdiff1d(np.arange(ana.shape[1]), undefined or [])
    assert np.array_equal(ours.analogs[:, keep], ana[:, keep], equal_nan=True)
    assert _header_differences(ref["header"], ours.header) == []
    assert _parameter_differences(ref["parameters"], ours.parameters) == []
    assert ours.points.flags.writeable and ours.analogs.flags.writeable  # read_c3d scales them to SI in place
    return ours


# ------------------------------------------------------------------------------------------------ shared files
@pytest.mark.parametrize("rel", READABLE)
def test_equal_to_ezc3d(rel: str) -> None:
    path = shared_path(rel)
    ours = _compare(path, undefined=UNDEFINED_IN_EZC3D.get(rel),
                    reader="ezc3d" if rel in EXPECTED_FALLBACK else "numpy")
    if rel in UNDEFINED_IN_EZC3D:
        assert any("ANALOG:SCALE lists" in n for n in ours.notes)
        # the channels without a scale are the file's counts minus offset, times GEN_SCALE (scale 1): real values
        # in the 16-bit range, where ezc3d gives numbers around 1e-311
        gen = float(np.ravel(ours.parameters["ANALOG"]["GEN_SCALE"]["value"])[0])
        unscaled = ours.analogs[0, UNDEFINED_IN_EZC3D[rel]]
        assert np.all(np.isfinite(unscaled)) and np.all(np.abs(unscaled) <= 65536 * abs(gen))
        assert np.all(np.abs(unscaled).max(axis=1) > 1000 * abs(gen) / 32768)
    else:
        assert ours.notes == []


def test_fallback_list_is_reported() -> None:
    """The files that fall back to ezc3d (expected: none); read_c3d records the reader in every stream."""
    shared_path("MANIFEST.md")
    contents = {rel: read_c3d_content(shared_path(rel)) for rel in READABLE}
    fallback = {rel: c.notes for rel, c in contents.items() if c.reader != "numpy"}
    assert fallback == {rel: [f"data section read by ezc3d: {why}"] for rel, why in EXPECTED_FALLBACK.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_c3d(shared_path("c3d_org/sample02_dec_int.c3d"))
    assert {st.meta["data_reader"] for st in s.streams} == {"numpy"}
    assert s.sources[0].metadata["data_reader"] == "numpy"


# ------------------------------------------------------------------------------------------------ edited copies
def _param_at(data: bytes, group: str, name: str) -> int:
    """Byte position of the value of GROUP:NAME (walking the parameter chain)."""
    pos = (data[0] - 1) * 512 + 4
    groups: dict[int, str] = {}
    while True:
        n, gid = struct.unpack_from("bb", data, pos)
        label = data[pos + 2:pos + 2 + abs(n)].decode()
        offset = struct.unpack_from("<H", data, pos + 2 + abs(n))[0]
        body = pos + 4 + abs(n)
        if gid < 0:
            groups[-gid] = label
        elif label == name and groups.get(gid) == group:
            n_dims = data[body + 1]
            return body + 2 + n_dims
        assert offset
        pos += 2 + abs(n) + offset


def _edit(src: Path, dst: Path, *, first: int | None = None, last: int | None = None, frames: int | None = None,
          analog_rate: float | None = None, cut_bytes: int = 0) -> Path:
    data = bytearray(src.read_bytes())
    if first is not None:
        struct.pack_into("<H", data, 6, first)
    if last is not None:
        struct.pack_into("<H", data, 8, last)
    if frames is not None:
        struct.pack_into("<h", data, _param_at(bytes(data), "POINT", "FRAMES"), frames)
    if analog_rate is not None:  # Intel files only
        struct.pack_into("<f", data, _param_at(bytes(data), "ANALOG", "RATE"), analog_rate)
    dst.write_bytes(bytes(data[:len(data) - cut_bytes]))
    return dst


def test_frames_parameter_overrides_the_header(tmp_path: Path) -> None:
    """ezc3d trusts POINT:FRAMES over the header's last frame."""
    src = shared_path("c3d_org/sample02_pc_real.c3d")  # 89 frames
    ours = _compare(_edit(src, tmp_path / "frames.c3d", frames=50))
    assert ours.n_frames == 50


def test_header_frame_count_without_frames_parameter(tmp_path: Path) -> None:
    src = shared_path("btkdata/PiG_Motion-FlatFoot-Hole.c3d")  # integer file with gaps
    ours = _compare(_edit(src, tmp_path / "nofr.c3d", first=1, last=100, frames=0))
    assert ours.n_frames == 100


def test_65535_frames_means_to_the_end_of_the_file(tmp_path: Path) -> None:
    """Vicon writes 65535 in the header for long files; ezc3d then reads every complete frame."""
    src = shared_path("c3d_org/sample02_dec_real.c3d")  # DEC float, 89 frames
    ours = _compare(_edit(src, tmp_path / "long.c3d", first=1, last=65535, frames=0))
    assert ours.n_frames >= 89
    assert int(ours.parameters["POINT"]["FRAMES"]["value"][0]) == ours.n_frames


def test_incomplete_last_frame_is_dropped(tmp_path: Path) -> None:
    """A file that ends inside a frame: ezc3d keeps the complete frames (read_c3d's check_c3d refuses it first)."""
    src = shared_path("c3d_org/sample02_pc_int.c3d")  # Intel integer
    data = src.read_bytes()
    c = ezc3d.c3d(str(src))
    n = c["data"]["points"].shape[2]
    n_sub = round(c["header"]["analogs"]["frame_rate"] / c["header"]["points"]["frame_rate"])
    frame_bytes = (4 * c["header"]["points"]["size"] + n_sub * c["header"]["analogs"]["size"]) * 2
    data_offset = (struct.unpack_from("<H", data, 16)[0] - 1) * 512
    keep = data_offset + (n - 3) * frame_bytes + frame_bytes // 2
    ours = _compare(_edit(src, tmp_path / "cut.c3d", cut_bytes=len(data) - keep))
    assert ours.n_frames == n - 3


def test_analog_rate_zero_means_no_analog_subframes(tmp_path: Path) -> None:
    """ezc3d takes the analog sub-frames from ANALOG:RATE / POINT:RATE, and then sets ANALOG:USED to 0."""
    src = shared_path("c3d_org/sample02_pc_real.c3d")
    ours = _compare(_edit(src, tmp_path / "norate.c3d", analog_rate=0.0))
    assert ours.analogs.shape[1:] == (0, 0)
    assert int(np.ravel(ezc3d.c3d(str(src))["parameters"]["ANALOG"]["USED"]["value"])[0]) > 0
    assert int(np.ravel(ours.parameters["ANALOG"]["USED"]["value"])[0]) == 0


def test_file_written_by_ezc3d_with_its_empty_rotation_group(tmp_path: Path) -> None:
    """ezc3d's writer adds ROTATION (USED 0); read_c3d's exports and the benchmark's file have it."""
    for rel in ("btkdata/PiG_Motion-FlatFoot-Hole.c3d", "ezc3d_testfiles/Qualisys.c3d"):
        c = ezc3d.c3d(str(shared_path(rel)))
        out = tmp_path / f"{Path(rel).stem}_ezc3d.c3d"
        c.write(str(out))
        assert "ROTATION" in ezc3d.c3d(str(out))["parameters"]
        ours = _compare(out)
        assert ours.n_frames == c["data"]["points"].shape[2]


def test_fallback_to_ezc3d_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    path = shared_path("c3d_org/sample10_TYPE-4.C3D")

    def unsupported(*_args: Any, **_kwargs: Any) -> Any:
        raise UnsupportedLayoutError("test layout")

    monkeypatch.setattr(_c3d_data, "_layout", unsupported)
    with pytest.raises(UnsupportedLayoutError, match="test layout"):
        read_c3d_content(path, reader="numpy")
    ours = _compare(path, reader="ezc3d")
    assert ours.notes == ["data section read by ezc3d: test layout"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_c3d(path)
    assert {st.meta["data_reader"] for st in s.streams} == {"ezc3d"}
    assert s.sources[0].metadata["data_reader_notes"] == ["data section read by ezc3d: test layout"]


def test_read_c3d_streams_equal_ezc3d_scaled_to_si() -> None:
    """End to end: the marker and analog streams are ezc3d's values times the unit factor."""
    path = shared_path("c3d_org/sample10_TYPE-4.C3D")
    ref = ezc3d.c3d(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_c3d(path, prefix="")
    np.testing.assert_array_equal(s.stream("markers").data, ref["data"]["points"][:3].transpose(2, 1, 0) * 1e-3)
    factors = np.array([1, 1, 1, 1e-3, 1e-3, 1e-3])  # N, N, N, N·mm x3
    np.testing.assert_array_equal(s.stream("analog").data, ref["data"]["analogs"][0].T * factors)
