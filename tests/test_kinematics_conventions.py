"""Other labs' marker names and vertical axes give the same sagittal joint angles (metamorphic tests on real walks).

One real Plug-in-Gait walk (BTKData PiG_Motion-FlatFoot-Full.c3d, 100 Hz, 3.1 s) is rewritten with ezc3d: its leg
markers renamed (side after the stem, side words, CAST/IOR, Qualisys-like, subject prefix, lower case) and/or every
point rotated to Y-up with POINT:Y_SCREEN left at "+Z" (stale) or removed. The rotation only permutes and negates
coordinates, so the stored floats are unchanged: hip, knee and ankle angles must equal the original's within
1e-9 rad, with the same gaps. The real Qualisys walk in sample_data (CAST/IOR names) is checked the other way round.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from benchmarks.c3d_conventions import axes
from fusionlab.adapters.c3d import read_c3d
from fusionlab.kinematics import ANGLE_CHANNELS, _up_axis, find_leg_markers, sagittal_angles
from fusionlab.model import Stream
from tests.conftest import shared_path

WALK = "btkdata/PiG_Motion-FlatFoot-Full.c3d"
QUALISYS_WALK = Path(__file__).resolve().parents[1] / "sample_data" / "qualisys_walking.c3d"
PIG = ("ASI", "PSI", "THI", "KNE", "TIB", "ANK", "HEE", "TOE")  # Plug-in Gait stems of the walk's leg markers
ANGLE_ROLES = ("asi", "psi", "kne", "ank", "hee", "toe")  # the roles the angles use
TOL_RAD = 1e-9


def _family(stems: tuple[str, ...], fmt: str) -> dict[str, str]:
    return {pig: fmt.format(stem=stem, S="{S}", Side="{Side}", s="{s}") for pig, stem in zip(PIG, stems, strict=True)}


WORDS = ("Asis", "Psis", "Thigh", "Knee", "Tibia", "Ankle", "Heel", "Toe")
FAMILIES: dict[str, dict[str, str]] = {  # Plug-in Gait stem -> new label; {S} = L/R, {Side} = Left/Right, {s} = l/r
    "pig": _family(PIG, "{S}{stem}"),
    "HEE_L": _family(PIG, "{stem}_{S}"),
    "Heel_L": _family(WORDS, "{stem}_{S}"),
    "HeelL": _family(WORDS, "{stem}{S}"),
    "LeftHeel": _family(WORDS, "{Side}{stem}"),
    "L.Heel": _family(WORDS, "{S}.{stem}"),
    "cast_ior": _family(("IAS", "IPS", "FTC", "FLE", "TTC", "FAL", "FCC", "FM2"), "{S}_{stem}"),
    "qualisys": _family(("ASIS", "PSIS", "Thigh", "KneeOut", "Shin", "AnkleOut", "HeelBack", "ToeTip"), "{S}{stem}"),
    "subject_prefix": _family(PIG, "Pat01:{S}{stem}"),
    "lower_suffix": _family(tuple(s.lower() for s in PIG), "{stem}_{s}"),
}


def _read(path: Path) -> Stream:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(path, prefix="").stream("markers")


def _write_variant(src: Path, dst: Path, family: str, frame: str) -> dict[str, str]:
    """Rewrite ``src`` renamed with ``family`` and, unless ``frame`` is "z_up", rotated to Y-up (`axes`);
    return the map old label -> new label."""
    c = ezc3d.c3d(str(src))
    labels = [str(s).strip() for s in c["parameters"]["POINT"]["LABELS"]["value"]]
    mapping = {}
    for lab in labels:
        side, stem = lab[:1], lab[1:]
        if side in ("L", "R") and stem in PIG:
            side_word = "Left" if side == "L" else "Right"
            mapping[lab] = FAMILIES[family][stem].format(S=side, Side=side_word, s=side.lower())
    new = [mapping.get(lab, lab) for lab in labels]
    assert len(mapping) == 2 * len(PIG) and len(set(new)) == len(new)
    c["parameters"]["POINT"]["LABELS"]["value"] = new
    if frame != "z_up":
        axes(c, frame)  # y_up: POINT:Y_SCREEN "+Y"; y_up_stale: left at "+Z"; y_up_undeclared: removed
    c.write(str(dst))
    return mapping


@pytest.fixture(scope="module")
def original() -> tuple[Stream, np.ndarray]:
    m = _read(shared_path(WALK))
    return m, sagittal_angles(m).data


def _same_angles(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    for j, name in enumerate(ANGLE_CHANNELS):
        ok = np.isfinite(a[:, j])
        assert ok.sum() > 250, name  # the walk has 315 samples
        assert np.array_equal(ok, np.isfinite(b[:, j])), name
        assert np.max(np.abs(a[ok, j] - b[ok, j])) <= TOL_RAD, name


@pytest.mark.parametrize("frame", ["z_up", "y_up_stale"])
@pytest.mark.parametrize("family", [f for f in FAMILIES if f != "pig"])
def test_renamed_walk_gives_the_same_angles(original: tuple[Stream, np.ndarray], tmp_path: Path, family: str,
                                             frame: str) -> None:
    m0, ref = original
    dst = tmp_path / f"{family}.c3d"
    mapping = _write_variant(shared_path(WALK), dst, family, frame)
    m = _read(dst)
    legs0, legs = find_leg_markers(m0.channels), find_leg_markers(m.channels)
    for side in "lr":
        for role in ANGLE_ROLES:
            assert legs[side + role] == mapping[legs0[side + role]], (side, role)
    assert _up_axis(m) == (2 if frame == "z_up" else 1)  # the markers overrule a stale POINT:Y_SCREEN
    _same_angles(ref, sagittal_angles(m).data)


@pytest.mark.parametrize("frame", ["y_up", "y_up_stale", "y_up_undeclared", "z_down"])
def test_y_up_walk_gives_the_same_angles(original: tuple[Stream, np.ndarray], tmp_path: Path, frame: str) -> None:
    _, ref = original
    dst = tmp_path / f"{frame}.c3d"
    _write_variant(shared_path(WALK), dst, "pig", frame)
    m = _read(dst)
    assert _up_axis(m) == (2 if frame == "z_down" else 1)  # z_down: z, pointing down (180 deg about x)
    _same_angles(ref, sagittal_angles(m).data)


def test_qualisys_cast_walk_has_angles_and_pig_names_give_the_same(tmp_path: Path) -> None:
    """The real Qualisys walk names its markers CAST/IOR (L_IAS, L_IPS, L_FLE, L_FAL, L_FCC, L_FM1): found, with
    a knee that flexes like a walking knee; renamed to Plug-in Gait names, the angles are the same."""
    m = _read(QUALISYS_WALK)
    legs = find_leg_markers(m.channels)
    assert {k: legs[k] for k in ("lasi", "rpsi", "lkne", "rank", "lhee", "rtoe")} == {
        "lasi": "L_IAS", "rpsi": "R_IPS", "lkne": "L_FLE", "rank": "R_FAL", "lhee": "L_FCC", "rtoe": "R_FM1"}
    a = sagittal_angles(m).data
    for side in ("left", "right"):
        knee = np.rad2deg(a[:, ANGLE_CHANNELS.index(f"{side}_knee_flexion")])
        assert np.isfinite(knee).mean() > 0.9
        assert np.nanmin(knee) < 10.0 and 50.0 < np.nanmax(knee) < 75.0
    c = ezc3d.c3d(str(QUALISYS_WALK))
    cast = {"IAS": "ASI", "IPS": "PSI", "FLE": "KNE", "FAL": "ANK", "FCC": "HEE", "FM1": "TOE"}
    labels = [str(s).strip() for s in c["parameters"]["POINT"]["LABELS"]["value"]]
    c["parameters"]["POINT"]["LABELS"]["value"] = [lab[0] + cast[lab[2:]] if lab[2:] in cast else lab
                                                   for lab in labels]
    c.write(str(tmp_path / "pig_names.c3d"))
    m2 = _read(tmp_path / "pig_names.c3d")
    assert find_leg_markers(m2.channels)["lkne"] == "LKNE"
    b = sagittal_angles(m2).data
    assert np.array_equal(np.isfinite(a), np.isfinite(b))
    assert np.nanmax(np.abs(a - b)) <= TOL_RAD
