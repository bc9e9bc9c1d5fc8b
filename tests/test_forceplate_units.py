"""Metamorphic: a C3D walk rewritten in other units gives the same force-plate streams and events.

Each real walk is rewritten with ezc3d with its points, ``FORCE_PLATFORM:CORNERS`` and ``ORIGIN`` in metres
(``POINT:UNITS`` "m"); the moment channels are either left in N·mm (``ANALOG:UNITS`` "Nmm") or converted to N·m
(``ANALOG:UNITS`` "Nm"). The stored force (N), moment (N·m) and centre of pressure (m) must equal the original's to
float32 storage precision, and `GaitForcePlate` must give the same events. Before the channel-units rule of
`fusionlab.adapters._forceplate_math`, the "Nmm" copies had their moments read as N·m (1000x too large): the centre
of pressure fell off every plate and no plate event was found.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import ezc3d
import numpy as np
import pytest

from fusionlab.adapters._forceplate_math import compute_platforms
from fusionlab.adapters.c3d import read_c3d
from fusionlab.gait._forceplate import GaitForcePlate
from fusionlab.persist import open_session, save_session
from tests.conftest import shared_path

WALKS = (
    "btkdata/PiG_Motion-FlatFoot-Full.c3d",  # Vicon, two type-2 plates
    "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d",  # Vicon, one type-2 plate
    "c3d_org/sample10_TYPE-4.C3D",  # one type-4 plate (CAL_MATRIX)
)
POINT_TYPES = ("ANGLES", "FORCES", "MOMENTS", "POWERS", "SCALARS", "REACTIONS")


def _set(c: Any, group: str, name: str, value: Any) -> None:
    if name in c["parameters"][group]:
        c["parameters"][group][name]["value"] = value
    else:
        c.add_parameter(group, name, value)


def _markers(c: Any) -> list[int]:
    """Indices of the points that are positions (model outputs such as angles and moments keep their units)."""
    labels = [str(x).strip() for x in c["parameters"]["POINT"]["LABELS"]["value"]]
    typed = {str(x).strip() for key in POINT_TYPES for x in c["parameters"]["POINT"].get(key, {}).get("value", [])}
    return [i for i, lab in enumerate(labels) if lab not in typed]


def write_in_metres(src: Path, dst: Path, moments: str) -> None:
    """``src`` (points in mm) rewritten with lengths in m; moment channels in ``moments`` ("Nmm" or "Nm")."""
    c = ezc3d.c3d(str(src))
    p = c["parameters"]
    assert str(p["POINT"]["UNITS"]["value"][0]).strip() == "mm"
    pts = c["data"]["points"]
    idx = _markers(c)
    pts[:3, idx, :] *= 1e-3
    c["data"]["points"] = pts
    _set(c, "POINT", "UNITS", ["m"])
    for key in ("CORNERS", "ORIGIN"):
        _set(c, "FORCE_PLATFORM", key, np.asarray(p["FORCE_PLATFORM"][key]["value"], dtype=float) * 1e-3)
    units = [str(u).strip() for u in p["ANALOG"]["UNITS"]["value"]]
    chans = np.asarray(p["FORCE_PLATFORM"]["CHANNEL"]["value"], dtype=int)
    types = np.ravel(p["FORCE_PLATFORM"]["TYPE"]["value"])
    analogs = c["data"]["analogs"]
    for k in range(int(np.ravel(p["FORCE_PLATFORM"]["USED"]["value"])[0])):
        assert int(types[k]) in (2, 4)
        for j in chans[3:6, k] - 1:
            assert units[j] == "Nmm"
            if moments == "Nm":
                if int(types[k]) == 2:
                    analogs[0, j, :] *= 1e-3
                units[j] = "Nm"
    if moments == "Nm":
        cal = p["FORCE_PLATFORM"].get("CAL_MATRIX")
        if cal is not None and np.size(cal["value"]):  # type 4: the calibration's moment rows give N·m now
            m = np.array(cal["value"], dtype=float)
            m[3:6] *= 1e-3
            _set(c, "FORCE_PLATFORM", "CAL_MATRIX", m)
    c["data"]["analogs"] = analogs
    _set(c, "ANALOG", "UNITS", units)
    c.write(str(dst))


def _ingest(src: Path, dst: Path) -> tuple[list[Any], list[tuple[str, str, float]], list[str]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = read_c3d(src)
    notes = list(s.sources[0].metadata.get("warnings", []))
    save_session(s, dst)
    with open_session(dst) as r:
        plates = [r.read_stream(n) for n in sorted(r.find_streams(modality="forceplate"))]
        det = GaitForcePlate().detect(r)
    events = sorted((e.kind, e.side, e.time_s) for res in det.results_ for e in res.events)
    return plates, events, notes


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("fp_units_orig")
    return {rel: _ingest(shared_path(rel), folder / (Path(rel).stem + ".h5")) for rel in WALKS}


@pytest.mark.parametrize("moments", ["Nmm", "Nm"])
@pytest.mark.parametrize("rel", WALKS)
def test_metres_copy_gives_same_plates_and_events(rel: str, moments: str, originals: dict[str, Any],
                                                  tmp_path: Path) -> None:
    dst = tmp_path / f"metres_{moments}.c3d"
    write_in_metres(shared_path(rel), dst, moments)
    plates, events, notes = _ingest(dst, tmp_path / "s.h5")
    ref_plates, ref_events, _ = originals[rel]
    assert not [n for n in notes if n.startswith("plate ")]  # no unit note on the plates
    assert len(plates) == len(ref_plates) > 0
    for a, b in zip(ref_plates, plates, strict=True):
        assert b.units == ("N", "N·m", "m", "N·m")
        assert b.meta["channel_unit_rule"] == "declared"
        for j, name in enumerate(a.channels):
            x, y = np.asarray(a.data[:, j], dtype=float), np.asarray(b.data[:, j], dtype=float)
            assert np.array_equal(np.isnan(x), np.isnan(y)), name
            fin = np.isfinite(x)
            scale = float(np.abs(x[fin]).max())
            # float32 storage of both, float32 file parameters and analogs: a few units of 2**-24 of the range
            np.testing.assert_allclose(y[fin], x[fin], rtol=0, atol=1e-6 * scale, err_msg=name)
    assert ref_events, "the original walk must give plate events for this test to mean anything"
    assert events == ref_events


def test_mislabelled_moments_fall_back_to_position_rule() -> None:
    """sample23 labels its moment channels "Nm" but holds N·mm (points in mm): the data decide, with a note."""
    c = ezc3d.c3d(str(shared_path("c3d_org/sample23_Vicon_analysis.c3d")))
    pfs = compute_platforms(c["parameters"], c["data"]["analogs"][0])
    assert pfs and all(pf["unit_rule"] == "position" and pf["moment_scale"] == 1.0 for pf in pfs)
    assert all("falls off the plate" in pf["unit_notes"][0] and "Mx" in pf["unit_notes"][0] for pf in pfs)


def test_declared_unit_used_when_data_agree_with_it(tmp_path: Path) -> None:
    """The same file with the N·mm moments relabelled N·mm keeps them; relabelled N·m it falls back (same result)."""
    src = shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")
    c = ezc3d.c3d(str(src))
    base = compute_platforms(c["parameters"], c["data"]["analogs"][0])
    units = [str(u).strip() for u in c["parameters"]["ANALOG"]["UNITS"]["value"]]
    for j in np.asarray(c["parameters"]["FORCE_PLATFORM"]["CHANNEL"]["value"], dtype=int)[3:6, 0] - 1:
        units[j] = "N.m"  # wrong on purpose: the values are N·mm
    c["parameters"]["ANALOG"]["UNITS"]["value"] = units
    wrong = compute_platforms(c["parameters"], c["data"]["analogs"][0])
    assert wrong[0]["unit_rule"] == "position" and wrong[0]["unit_notes"]
    np.testing.assert_array_equal(wrong[0]["cop"], base[0]["cop"])


@pytest.mark.parametrize(("rot", "ys", "axis"), [(np.diag([1.0, -1.0, -1.0]), "-Z", "-z"),
                                                  (np.array([[1.0, 0, 0], [0, 0, -1.0], [0, 1.0, 0]]), "-Y", "-y")])
def test_up_from_plate_corners(rot: np.ndarray, ys: str, axis: str, tmp_path: Path) -> None:
    """A lab whose up is -Z or -Y: the plate stream says so (from CORNERS) and its force is positive along it."""
    c = ezc3d.c3d(str(shared_path("c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d")))
    pts = c["data"]["points"]
    idx = _markers(c)
    pts[:3, idx, :] = np.einsum("ij,jkn->ikn", rot, pts[:3, idx, :])
    c["data"]["points"] = pts
    corners = np.asarray(c["parameters"]["FORCE_PLATFORM"]["CORNERS"]["value"], dtype=float)
    _set(c, "FORCE_PLATFORM", "CORNERS", np.einsum("ij,jkn->ikn", rot, corners))
    _set(c, "POINT", "Y_SCREEN", [ys])
    c.write(str(tmp_path / "r.c3d"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fp = read_c3d(tmp_path / "r.c3d").by_modality("forceplate")[0]
    assert fp.meta["vertical_axis"] == axis
    f_up = np.asarray(fp.data[:, 0], dtype=float) @ np.asarray(fp.meta["up_from_corners"])
    assert f_up.max() > 500 and f_up.min() > -50  # body weight along "up", never pulling
