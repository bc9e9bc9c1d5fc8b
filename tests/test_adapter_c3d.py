"""C3D adapter against the real files of ../shared/data (c3d.org suite, BTK, kineticstoolkit, gaitalytics)."""

from __future__ import annotations

import itertools
import math
import struct
import warnings
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from fusionlab.adapters import find_adapter
from fusionlab.adapters.c3d import check_c3d, read_c3d, write_c3d
from fusionlab.exceptions import FileFormatError
from fusionlab.ingest import ingest
from fusionlab.persist import open_session
from tests.conftest import SHARED, shared_path

MIPS = ["c3d_org/sample01_Eb015si.c3d", "c3d_org/sample01_Eb015sr.c3d", "c3d_org/sample02_sgi_int.c3d",
        "c3d_org/sample02_sgi_real.c3d", "c3d_org/sample06_MACsample.c3d"]


def _all_c3d() -> list[str]:
    if not SHARED.is_dir():
        return ["<missing shared data>"]
    files = sorted(p for p in SHARED.rglob("*") if p.suffix.lower() == ".c3d")
    return [str(p.relative_to(SHARED)) for p in files]


READABLE = [f for f in _all_c3d() if f not in MIPS]


def _header_counts(path: Path) -> dict[str, float]:
    """Counts read straight from the file with ezc3d, independent of fusionlab."""
    c = ezc3d.c3d(str(path))
    fp = c["parameters"].get("FORCE_PLATFORM", {})
    used = int(np.ravel(fp["USED"]["value"])[0]) if "USED" in fp and np.size(fp["USED"]["value"]) else 0
    return {"points": c["header"]["points"]["size"], "frames": c["data"]["points"].shape[2],
            "rate": c["header"]["points"]["frame_rate"], "analog_rate": c["header"]["analogs"]["frame_rate"],
            "analog_channels": c["data"]["analogs"].shape[1], "analog_samples": c["data"]["analogs"].shape[2],
            "plates_used": used}


@pytest.mark.parametrize("rel", READABLE)
def test_every_readable_c3d_ingests_and_matches_header(rel: str, tmp_path: Path) -> None:
    path = shared_path(rel)
    expected = _header_counts(path)
    session = tmp_path / "s.h5"
    report = ingest([path], session, subject="T01")
    assert report.streams
    with open_session(session) as r:
        infos = [r.stream_info(n) for n in r.stream_names]
        source = r.sources()[0]
    points = [i for i in infos if i["modality"] in ("markers", "model")]
    assert sum(len(i["channels"]) for i in points) == expected["points"]
    for i in points:
        assert i["n_samples"] == expected["frames"]
        assert i["rate_hz"] == pytest.approx(expected["rate"])
        assert i["units"][0] in ("m", "rad", "N", "N·m", "W", "N/kg", "N·m/kg", "W/kg", "1") or i["modality"] == "model"
    analog = [i for i in infos if i["modality"] == "analog"]
    if expected["analog_channels"] and expected["analog_rate"] > 0:
        assert len(analog) == 1
        assert len(analog[0]["channels"]) == expected["analog_channels"]
        assert analog[0]["n_samples"] == expected["analog_samples"]
        assert analog[0]["rate_hz"] == pytest.approx(expected["analog_rate"])
    plates = [i for i in infos if i["modality"] == "forceplate"]
    warnings_text = " ".join(source.metadata["warnings"])
    if expected["analog_rate"] > 0 and "cannot be computed" not in warnings_text:
        assert len(plates) == expected["plates_used"] == source.metadata["n_force_platforms"]
    else:  # the reason is recorded, not silently dropped
        assert expected["plates_used"] == 0 or "force platform" in warnings_text.lower()
    # all streams of one file share one clock, and the first source defines the session clock
    clocks = {i["clock"] for i in infos}
    assert len(clocks) == 1
    with open_session(session) as r:
        entry = r.clocks()[clocks.pop()]
    assert entry.method == "reference"
    assert entry.offset_s == 0.0
    assert entry.offset_sd_s == 0.0
    assert source.sha256 and source.adapter == "c3d"


def test_markers_in_metres_and_model_outputs_not_scaled_as_mm() -> None:
    path = shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")
    s = read_c3d(path, prefix="")
    markers = s.stream("markers")
    assert markers.units[0] == "m"
    assert markers.orig_units[0] == "mm"
    raw = ezc3d.c3d(str(path))
    labels = raw["parameters"]["POINT"]["LABELS"]["value"]
    i = labels.index("LHEE")
    np.testing.assert_allclose(markers.channel("LHEE"), raw["data"]["points"][:3, i, :].T / 1000.0, rtol=1e-6)
    heel = markers.channel("LHEE")
    travel = max(np.nanmax(heel[:, k]) - np.nanmin(heel[:, k]) for k in (0, 1))
    assert 2.0 < travel < 10.0  # a walk across the lab, in metres
    angles = s.stream("angles")
    assert angles.units[0] == "rad" and angles.orig_units[0] == "deg"
    knee_flexion_max = np.nanmax(angles.channel("LKneeAngles")[:, 0])
    assert math.radians(45) < knee_flexion_max < math.radians(80)  # swing-phase knee flexion
    moments = s.stream("moments")
    assert moments.orig_units[0] == "Nmm"
    # pyCGM2 writes moments normalised by body mass while declaring N·mm: they are labelled N·m/kg
    assert set(moments.units) == {"N·m/kg"}
    j = labels.index("LKneeMoment")
    np.testing.assert_allclose(moments.channel("LKneeMoment"), raw["data"]["points"][:3, j, :].T / 1000.0,
                               rtol=1e-6)
    # physical check of that reading: the model's ground reaction force per kg times body mass is the plate force
    mass = read_c3d(path).sources[0].metadata["subject_parameters"]["mass_kg"]
    grf_per_kg = s.stream("forces")
    assert grf_per_kg.units[grf_per_kg.channels.index("LGroundReactionForce")] == "N/kg"
    peak_model = np.nanmax(np.linalg.norm(grf_per_kg.channel("LGroundReactionForce"), axis=1)) * mass
    peak_plate = np.nanmax(np.linalg.norm(s.stream("forceplate1").channel("force"), axis=1))
    assert peak_model == pytest.approx(peak_plate, rel=0.03)


def test_forceplate_onset_equals_annotated_left_foot_strike() -> None:
    """Acceptance: Fz > 20 N onset equals the lab's Left Foot Strike within one analog sample."""
    s = read_c3d(shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"), prefix="")
    plate = s.stream("forceplate1")
    fz = np.abs(plate.channel("force")[:, 2])
    t = plate.times()
    onset = t[np.flatnonzero((fz[1:] > 20) & (fz[:-1] <= 20))[0] + 1]
    offset = t[np.flatnonzero((fz[1:] <= 20) & (fz[:-1] > 20))[0] + 1]
    left_fs = [e.time_s for e in s.events if e.side == "left" and e.kind == "foot_strike"]
    left_fo = [e.time_s for e in s.events if e.side == "left" and e.kind == "foot_off"]
    dt = 1.0 / plate.rate_hz
    assert min(abs(onset - x) for x in left_fs) <= dt
    assert min(abs(offset - x) for x in left_fo) <= dt
    # first point sample sits at first_frame / rate (first_frame 62 in this file)
    assert s.stream("markers").start_s == pytest.approx(62 / 100.0)
    assert plate.start_s == pytest.approx(62 / 100.0)


def test_flat_event_times_are_deinterleaved() -> None:
    """ezc3d returns EVENT:TIMES of this file as a flat (minutes, seconds) array."""
    path = shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d")
    raw = np.asarray(ezc3d.c3d(str(path))["parameters"]["EVENT"]["TIMES"]["value"])
    assert raw.ndim == 1  # the case under test
    s = read_c3d(path, prefix="")
    markers = s.stream("markers")
    t0, t1 = markers.start_s, markers.start_s + markers.duration_s
    assert len(s.events) == 12
    assert all(t0 <= e.time_s <= t1 for e in s.events)
    for side in ("left", "right"):  # strikes and offs alternate on each side
        seq = [e.kind for e in sorted(s.events, key=lambda e: e.time_s) if e.side == side]
        assert all(a != b for a, b in itertools.pairwise(seq))
    strikes = [e.time_s for e in s.events if e.kind == "foot_strike"]
    for plate in s.by_modality("forceplate"):  # each plate's first loading is an annotated strike
        fz = np.abs(plate.channel("force")[:, 2])
        onset = plate.times()[np.flatnonzero(fz > 20)[0]]
        assert min(abs(onset - x) for x in strikes) <= 1.5 / markers.rate_hz  # annotations are on 100 Hz frames


def test_two_dimensional_event_times() -> None:
    path = shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")
    raw = np.asarray(ezc3d.c3d(str(path))["parameters"]["EVENT"]["TIMES"]["value"])
    assert raw.shape[0] == 2
    s = read_c3d(path)
    np.testing.assert_allclose(sorted(e.time_s for e in s.events), sorted(60 * raw[0] + raw[1]))
    contexts = {(e.side, e.kind) for e in s.events}
    assert ("left", "foot_strike") in contexts and ("right", "foot_off") in contexts


def test_motion_analysis_event_labels() -> None:
    s = read_c3d(shared_path("c3d_org/sample00_MAC_Walk1.c3d"))
    kinds = sorted((e.side, e.kind) for e in s.events)
    assert kinds == sorted([("left", "foot_strike")] * 2 + [("right", "foot_strike")] * 2
                           + [("left", "foot_off")] * 2 + [("right", "foot_off")] * 2)


def _xls_reference() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    xlrd = pytest.importorskip("xlrd")
    sheet = xlrd.open_workbook(str(shared_path("c3d_org/sample10_TYPE-4.xls"))).sheet_by_index(0)
    cal = np.array([[sheet.cell_value(r, c) for c in range(9, 15)] for r in range(14, 20)])
    raw = np.array([[sheet.cell_value(r, c) for c in range(1, 7)] for r in range(23, 30)])
    out = np.array([[sheet.cell_value(r, c) for c in range(9, 15)] for r in range(23, 30)])
    scale = np.array([sheet.cell_value(r, 14) for r in range(5, 11)])
    return cal, raw, out, scale


def test_type4_plate_matches_reference_spreadsheet() -> None:
    cal, raw, out, scale = _xls_reference()
    # the spreadsheet's own calculation: outputs = ((counts - offset) * scale) @ CAL_MATRIX
    np.testing.assert_allclose(((raw - 2047) * scale) @ cal, out, atol=1e-9)
    s4 = read_c3d(shared_path("c3d_org/sample10_TYPE-4.C3D"), prefix="")
    plate = s4.stream("forceplate1")
    analog = s4.stream("analog")
    assert analog.orig_units[3:] == ("Nmm",) * 3
    file_units = analog.data * np.array([1, 1, 1, 1e3, 1e3, 1e3])  # back to the file's N and N·mm
    reference = file_units @ cal
    ours = plate.channel("force")
    assert np.nanmax(np.abs(ours)) > 300  # a real footfall, not an empty plate
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference[:, :3], axis=1), atol=0.1)
    # the plate's z axis points down into the plate: lab Fz is minus the plate's Fz, x is unchanged
    np.testing.assert_allclose(ours[:, 2], -reference[:, 2], atol=0.1)
    np.testing.assert_allclose(ours[:, 0], reference[:, 0], atol=0.1)


def test_type2_and_type4_files_agree() -> None:
    """Same recording, two calibration representations. TYPE-2 keeps only the diagonal sensitivities, so the
    forces agree up to the plate's cross-talk (a few percent), not exactly."""
    f2 = read_c3d(shared_path("c3d_org/sample10_TYPE-2.C3D"), prefix="").stream("forceplate1").channel("force")
    f4 = read_c3d(shared_path("c3d_org/sample10_TYPE-4.C3D"), prefix="").stream("forceplate1").channel("force")
    assert f2.shape == f4.shape
    for axis, tol in ((0, 0.06), (1, 0.10), (2, 0.025)):
        peak = np.nanmax(np.abs(f4[:, axis]))
        assert np.nanmax(np.abs(f2[:, axis] - f4[:, axis])) <= tol * peak
        assert np.corrcoef(f2[:, axis], f4[:, axis])[0, 1] > 0.995


@pytest.mark.parametrize("rel", ["c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", "c3d_org/sample09_PlugInC3D.c3d",
                                 "ezc3d_testfiles/Qualisys.c3d", "btkdata/PiG_Motion-FlatFoot-Hole.c3d",
                                 "c3d_org/sample02_dec_int.c3d"])
def test_round_trip_c3d_session_c3d(rel: str, tmp_path: Path) -> None:
    src = shared_path(rel)
    session = tmp_path / "s.h5"
    ingest([src], session)
    out = tmp_path / "out.c3d"
    counts = write_c3d(session, out)
    a = ezc3d.c3d(str(src))
    b = ezc3d.c3d(str(out))
    la = [x.strip() for x in a["parameters"]["POINT"]["LABELS"]["value"]][: a["header"]["points"]["size"]]
    lb = b["parameters"]["POINT"]["LABELS"]["value"]
    assert counts["points"] == len(la) == len(lb)
    assert b["header"]["points"]["first_frame"] == a["header"]["points"]["first_frame"]
    assert b["header"]["points"]["frame_rate"] == a["header"]["points"]["frame_rate"]
    # duplicate labels were renamed label_1 on ingest; map each original point to its exported position
    seen: dict[str, int] = {}
    idx = []
    for lab in la:
        k = seen.get(lab, 0)
        seen[lab] = k + 1
        idx.append(lb.index(lab if k == 0 else f"{lab}_{k}"))
    pa = a["data"]["points"][:3]
    pb = b["data"]["points"][:3][:, idx]
    assert np.array_equal(np.isnan(pa), np.isnan(pb))
    np.testing.assert_allclose(pb, pa, rtol=2e-7, atol=1e-4, equal_nan=True)  # float32 storage
    aa, ab = a["data"]["analogs"], b["data"]["analogs"]
    assert aa.shape == ab.shape
    np.testing.assert_allclose(ab, aa, rtol=2e-7, atol=1e-6 * max(1.0, float(np.nanmax(np.abs(aa)))))
    ta = np.asarray(a["parameters"]["EVENT"]["TIMES"]["value"]).reshape(-1) if "EVENT" in a["parameters"] else []
    if len(ta):
        tb = b["parameters"]["EVENT"]["TIMES"]["value"]
        times_a = np.sort(60 * np.asarray(ta[0::2] if np.ndim(a["parameters"]["EVENT"]["TIMES"]["value"]) == 1
                                          else a["parameters"]["EVENT"]["TIMES"]["value"][0]) +
                          np.asarray(ta[1::2] if np.ndim(a["parameters"]["EVENT"]["TIMES"]["value"]) == 1
                                     else a["parameters"]["EVENT"]["TIMES"]["value"][1]))
        np.testing.assert_allclose(np.sort(60 * tb[0] + tb[1]), times_a, atol=1e-6)
        # a second ingest of the exported file gives the same events (kind, side, time)
        s1 = sorted((round(e.time_s, 5), e.kind, e.side) for e in read_c3d(src).events)
        s2 = sorted((round(e.time_s, 5), e.kind, e.side) for e in read_c3d(out).events)
        assert s1 == s2


# ------------------------------------------------------------------------------------------------ bad files
@pytest.mark.parametrize("rel", MIPS)
def test_mips_files_give_a_clear_error(rel: str) -> None:
    with pytest.raises(FileFormatError, match="MIPS"):
        read_c3d(shared_path(rel))


def _good_bytes() -> bytes:
    return shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d").read_bytes()


def _corrupt_parameters(data: bytes) -> bytes:
    """Keep a valid header, overwrite the parameter section after its first group with random bytes."""
    block = data[0]
    start = (block - 1) * 512
    rng = np.random.default_rng(7)
    junk = rng.integers(0, 256, size=2048, dtype=np.uint8).tobytes()
    return data[:start + 40] + junk + data[start + 40 + len(junk):]


def _bad_group_pointer(data: bytes) -> bytes:
    start = (data[0] - 1) * 512
    name_len = abs(struct.unpack("b", data[start + 4:start + 5])[0])
    off = start + 4 + 2 + name_len
    return data[:off] + struct.pack("<h", 32767) + data[off + 2:]


BAD_FILES = {
    "truncated": (lambda d: d[: len(d) // 2], "truncated"),
    "random bytes": (lambda d: np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                     "not a C3D file"),
    "header only": (lambda d: d[:512], "outside|truncated"),
    "corrupt parameter section": (_corrupt_parameters, "corrupt C3D parameter section|truncated|corrupt"),
    "bad pointer in parameter section": (_bad_group_pointer, "corrupt C3D parameter section"),
    "empty": (lambda d: b"", "empty"),
    "text file": (lambda d: b"Fx,Fy,Fz\n1,2,3\n" * 100, "not a C3D file"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_files_raise_file_format_error(case: str, tmp_path: Path) -> None:
    make, pattern = BAD_FILES[case]
    bad = tmp_path / "bad.c3d"
    bad.write_bytes(make(_good_bytes()))
    with pytest.raises(FileFormatError, match=pattern) as info:
        read_c3d(bad)
    assert str(bad) in str(info.value)


@pytest.mark.parametrize("case", ["truncated", "corrupt parameter section", "random bytes"])
def test_bad_file_ingest_leaves_session_unchanged(case: str, tmp_path: Path) -> None:
    session = tmp_path / "s.h5"
    ingest([shared_path("c3d_org/sample10_TYPE-4.C3D")], session)
    before = session.read_bytes()
    make, _ = BAD_FILES[case]
    bad = tmp_path / "bad.c3d"
    bad.write_bytes(make(_good_bytes()))
    good = shared_path("c3d_org/sample10_TYPE-2.C3D")
    with pytest.raises(FileFormatError, match=r"bad\.c3d"):
        ingest([good, bad], session)  # all or nothing: the good file is not added either
    assert session.read_bytes() == before
    report = ingest([good, bad], session, on_error="skip")
    assert str(bad) in report.skipped
    with open_session(session) as r:
        assert any(n.startswith("sample10_TYPE-2.") for n in r.stream_names)


def test_saturated_integer_channels_are_reported() -> None:
    """sample25 04i: float data converted to integers with a too-small ANALOG:SCALE clips Mx1."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = read_c3d(shared_path("c3d_org/sample25_analogfpscale04i.c3d"))
    analog = s.by_modality("analog")[0]
    assert analog.meta["saturated_channels"]
    assert any("16-bit integer limit" in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        float_version = read_c3d(shared_path("c3d_org/sample25_analogfpscale04.c3d"))
    assert not float_version.by_modality("analog")[0].meta["saturated_channels"]


def test_dispatch_and_check_c3d_header() -> None:
    path = shared_path("c3d_org/sample03_gait-pig-nz.c3d")
    assert find_adapter(path).name == "c3d"
    h = check_c3d(path)
    assert h.processor == "Intel"
    assert h.first_frame == 300  # 1-based in the header; ezc3d reports 299
    assert h.point_rate_hz == pytest.approx(120.0)
    dec = check_c3d(shared_path("c3d_org/sample02_dec_real.c3d"))
    assert dec.processor == "DEC" and dec.is_float and dec.point_rate_hz == pytest.approx(50.0)


def test_gaps_are_nan_in_the_session(tmp_path: Path) -> None:
    """Marker gaps (residual < 0 in the file) are stored as NaN at exactly those frames, never as 0."""
    path = shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d")
    raw = ezc3d.c3d(str(path))
    labels = raw["parameters"]["POINT"]["LABELS"]["value"]
    invalid = raw["data"]["meta_points"]["residuals"][0] < 0  # (n_points, n_frames)
    session = tmp_path / "s.h5"
    ingest([path], session, prefix="t.")
    with open_session(session) as r:
        markers = r.read_stream("t.markers")
        assert r.stream_info("t.markers")["missing_percent"] > 0
    i = labels.index("HEDO")
    assert invalid[i].sum() == 30
    gap = np.isnan(markers.channel("HEDO")).any(axis=1)
    np.testing.assert_array_equal(gap, invalid[i])
    assert not np.any(markers.channel("HEDO")[gap.__invert__()] == 0)


def test_subject_prefixed_labels_and_treadmill_file() -> None:
    s = read_c3d(shared_path("c3d_org/sample04_sub_labels.c3d"), prefix="")
    assert s.stream("markers").channels[0] == "Matt:C7"  # prefixes are kept: labels stay unique across subjects
    assert s.sources[0].metadata["c3d_subject_names"] == ["Matt"]
    t = read_c3d(shared_path("gaitalytics/treadmill_events.c3d"), prefix="")
    assert len(t.events) == 43
    assert t.stream("markers").start_s == pytest.approx(44 / 100.0)  # non-zero first frame
    assert len(t.by_modality("forceplate")) == 2


def test_markers_written_as_exact_zeros_are_missing() -> None:
    """sample23 (Vicon) writes gaps as (0, 0, 0) with a valid residual: stored as NaN, every other sample kept."""
    path = shared_path("c3d_org/sample23_Vicon_analysis.c3d")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = read_c3d(path, prefix="")
    assert any("(0, 0, 0)" in str(w.message) for w in caught)
    m = s.stream("markers")
    raw = ezc3d.c3d(str(path))["data"]["points"][:3]  # (3, n_points, n_frames), mm
    labels = [str(v) for v in ezc3d.c3d(str(path))["parameters"]["POINT"]["LABELS"]["value"]]
    idx = [labels.index(c) for c in m.channels]
    ref = raw[:, idx, :].transpose(2, 1, 0) / 1000.0
    zero = np.all(ref == 0.0, axis=2)
    assert zero.sum() > 1000
    assert np.all(np.isnan(m.data[zero]))
    both = ~zero & np.all(np.isfinite(ref), axis=2)
    np.testing.assert_allclose(m.data[both], ref[both], rtol=1e-6, atol=1e-9)
    assert not np.any(np.all(m.data == 0.0, axis=2))


def test_c3d_sniffer_checks_the_parameter_section() -> None:
    """Content sniffing (files without a .c3d suffix): the header's 0x50 byte alone is not enough, the parameter
    section it points to must start with a processor type."""
    from fusionlab.adapters import _sniff_c3d

    real = shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d").read_bytes()[:8192]
    assert _sniff_c3d(real, "")
    broken = bytearray(real)
    start = (real[0] - 1) * 512
    broken[start + 3] = 0  # no processor type where the parameter section should start
    assert not _sniff_c3d(bytes(broken), "")
    assert not _sniff_c3d(b"\x00P" + b"\x00" * 600, "")  # parameter block 0 does not exist
