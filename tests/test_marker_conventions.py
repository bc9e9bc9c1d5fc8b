"""Other labs' C3D conventions give the same marker gait events (metamorphic tests on a real walk).

One real Plug-in-Gait walk (BTKData PiG_Motion-FlatFoot-Full.c3d, 100 Hz, 3.1 s) is renamed, rotated, written in
metres or resampled; the Zeni events must not change (1e-9 s; one frame when resampled). The full table over four
shared walks and every variant is benchmarks/c3d_conventions.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from pathlib import Path

import ezc3d
import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from benchmarks.c3d_conventions import axes
from fusionlab.adapters.c3d import read_c3d
from fusionlab.gait._forceplate import GaitForcePlate
from fusionlab.gait._markers import GaitFootVelocity, GaitZeni, _foot_markers, _pelvis_candidates, _sided
from fusionlab.model import ClockEntry, Session, Stream, normalise_event
from fusionlab.persist import open_session, save_session
from fusionlab.sync._signals import find_foot_markers, find_pelvis_markers, marker_signals
from tests.conftest import shared_path

WALK = "btkdata/PiG_Motion-FlatFoot-Full.c3d"
# role of each Plug-in-Gait foot / pelvis marker of the walk
PIG_ROLES = {"HEE": "heel", "TOE": "toe", "ANK": "ankle", "ASI": "asis", "PSI": "psis"}
FAMILIES = {  # role -> template; {S} = L/R, {Side} = Left/Right
    "HEE_L": {"heel": "HEE_{S}", "toe": "TOE_{S}", "ankle": "ANK_{S}", "asis": "ASI_{S}", "psis": "PSI_{S}"},
    "HEEL_L": {"heel": "HEEL_{S}", "toe": "TOE_{S}", "ankle": "ANKLE_{S}", "asis": "ASIS_{S}", "psis": "PSIS_{S}"},
    "Heel_L": {"heel": "Heel_{S}", "toe": "Toe_{S}", "ankle": "Ankle_{S}", "asis": "ASIS_{S}", "psis": "PSIS_{S}"},
    "HeelL": {"heel": "Heel{S}", "toe": "Toe{S}", "ankle": "Ankle{S}", "asis": "Asis{S}", "psis": "Psis{S}"},
    "LHeel": {"heel": "{S}Heel", "toe": "{S}Toe", "ankle": "{S}Ankle", "asis": "{S}ASIS", "psis": "{S}PSIS"},
    "L_Heel": {"heel": "{S}_Heel", "toe": "{S}_Toe", "ankle": "{S}_Ankle", "asis": "{S}_ASIS", "psis": "{S}_PSIS"},
    "L.Heel": {"heel": "{S}.Heel", "toe": "{S}.Toe", "ankle": "{S}.Ankle", "asis": "{S}.ASIS", "psis": "{S}.PSIS"},
    "LeftHeel": {"heel": "{Side}Heel", "toe": "{Side}Toe", "ankle": "{Side}Ankle", "asis": "{Side}ASIS",
                 "psis": "{Side}PSIS"},
    "Left_Heel": {"heel": "{Side}_Heel", "toe": "{Side}_Toe", "ankle": "{Side}_Ankle", "asis": "{Side}_ASIS",
                  "psis": "{Side}_PSIS"},
    "qualisys": {"heel": "{S}Heel", "toe": "{S}ToeTip", "ankle": "{S}AnkleOut", "asis": "{S}ASI", "psis": "{S}PSI"},
    "calcaneus": {"heel": "{S}_Calc", "toe": "{S}_Hallux", "ankle": "{S}_Ankle", "asis": "{S}_ASIS",
                  "psis": "{S}_PSIS"},
    "cast_ior": {"heel": "{S}_FCC", "toe": "{S}_FM1", "ankle": "{S}_FAL", "asis": "{S}_IAS", "psis": "{S}_IPS"},
    "subject_prefix": {r: "Pat01:{S}" + k for k, r in PIG_ROLES.items()},
    "lower_case": {r: "{s}" + k.lower() for k, r in PIG_ROLES.items()},
}


@pytest.fixture(scope="module")
def walk() -> tuple[Stream, list[tuple[str, str, float]]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = read_c3d(shared_path(WALK), prefix="").stream("markers")
    return m, zeni(m)


def zeni(m: Stream) -> list[tuple[str, str, float]]:
    res = GaitZeni()._detect_stream(m)
    assert res is not None
    return [(e.kind, e.side, e.time_s) for e in res.events]


def same(a: list[tuple[str, str, float]], b: list[tuple[str, str, float]], tol_s: float) -> None:
    assert len(a) == len(b) > 8
    for (ka, sa, ta), (kb, sb, tb) in zip(a, b, strict=True):
        assert (ka, sa) == (kb, sb)
        assert abs(ta - tb) <= tol_s, (ka, sa, ta, tb)


def renamed(m: Stream, family: str) -> Stream:
    tmpl = FAMILIES[family]
    new = []
    for ch in m.channels:
        side, stem = ch[:1], ch[1:]
        if side in ("L", "R") and stem in PIG_ROLES:
            word = "Left" if side == "L" else "Right"
            new.append(tmpl[PIG_ROLES[stem]].format(S=side, Side=word, s=side.lower()))
        else:
            new.append(ch)
    assert len(set(new)) == len(new)
    return dataclasses.replace(m, channels=tuple(new))


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_marker_renames_give_the_same_zeni_events(walk: tuple, family: str) -> None:
    m, base = walk
    r = renamed(m, family)
    feet = _foot_markers(r.channels)
    assert set(feet) == {"left", "right"}
    assert {role for roles in feet.values() for role in roles} == {"heel", "toe", "ankle"}
    same(zeni(r), base, 1e-9)


@pytest.mark.parametrize("name", ["SACR", "S1", "V_Sacral", "sacrum", "Pat01:SACR", "VSAC", "Sacrum"])
def test_sacrum_names(name: str) -> None:
    assert _pelvis_candidates(("LHEE", name, "RHEE")) == [[name]]
    if name != "VSAC":  # the synchronisation's pelvis signal has never used Motion Analysis' virtual sacrum
        assert find_pelvis_markers(("LHEE", name)) == [name]


@pytest.mark.parametrize(("name", "expected"), [
    ("HEE_L", ("left", "hee")), ("Heel_R", ("right", "heel")), ("HeelL", ("left", "heel")),
    ("L.Heel", ("left", "heel")), ("LeftHeel", ("left", "heel")), ("Right_Heel", ("right", "heel")),
    ("Pat01:RHEE", ("right", "hee")), ("lhee", ("left", "hee")), ("L_FCC", ("left", "fcc")),
    ("LToeTip", ("left", "toetip")), ("R.TO", ("right", "to")), ("RCalc", ("right", "calc")),
    ("L_Calcaneus", ("left", "calcaneus")), ("LHLX", ("left", "hlx")),
    ("TLNG", ("left", "tln")), ("MT1D", ("right", "mt1")), ("Talon_G", ("left", "talon")),  # French G/D after the stem
    ("GTG", None), ("HEAD", None),
    ("Heel", None),  # an unsided name is not a left "hee"
    ("LMALL", None),  # L + MALL (not a known stem), not LMAL + L
    ("RKNE", None), ("PELL", None), ("LTOL", None),
])
def test_side_readings(name: str, expected: tuple[str, str] | None) -> None:
    assert _sided(name) == expected


def test_a_name_that_reads_as_both_sides_is_not_used() -> None:
    # "L_HEE_R": left as the first word, right as the last: which foot is it? Neither is taken.
    assert _sided("L_HEE_R") is None
    assert "left" not in _foot_markers(("L_HEE_R", "RHEE"))
    assert find_foot_markers(("L_HEE_R", "RHEE")) == {"right": {"heel": "RHEE"}}


def _rewrite(tmp_path: Path, edit: str) -> Stream:
    """The walk written back with ezc3d after ``edit``; its markers read by the adapter."""
    c = ezc3d.c3d(str(shared_path(WALK)))
    pts = c["data"]["points"]
    point = c["parameters"]["POINT"]
    typed = {str(x).strip() for key in ("ANGLES", "FORCES", "MOMENTS", "POWERS", "SCALARS")
             for x in point.get(key, {}).get("value", [])}
    idx = [i for i, lab in enumerate(point["LABELS"]["value"]) if lab.strip() not in typed]
    if edit.startswith("y_up"):
        rot = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # z (up) -> +y
        pts[:3, idx, :] = np.einsum("ij,jkn->ikn", rot, pts[:3, idx, :])
        if edit == "y_up":
            point["Y_SCREEN"]["value"] = ["+Y"]
        elif edit == "y_up_undeclared":
            point.pop("Y_SCREEN")
            point.pop("X_SCREEN")
    elif edit == "metres":
        pts[:3, idx, :] *= 1e-3
        point["UNITS"]["value"] = ["m"]
    c["data"]["points"] = pts
    c.write(str(tmp_path / f"{edit}.c3d"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(tmp_path / f"{edit}.c3d", prefix="").stream("markers")


@pytest.mark.parametrize("edit", ["y_up", "y_up_undeclared", "y_up_stale"])
def test_y_up_files_give_the_same_zeni_events(walk: tuple, tmp_path: Path, edit: str) -> None:
    # y_up: the file declares it (POINT:Y_SCREEN +Y); undeclared: no POINT:X/Y_SCREEN; stale: still says +Z. The
    # pelvis stands ~0.8 m above the feet along y, which decides.
    _, base = walk
    r = _rewrite(tmp_path, edit)
    res = GaitZeni()._detect_stream(r)
    assert res is not None and res.meta["up_axis"] == "y"
    assert any("vertical axis: y" in w for w in res.warnings) == (edit != "y_up")
    same(zeni(r), base, 1e-9)


def test_lab_with_downward_vertical_gives_the_same_events(tmp_path: Path) -> None:
    """A lab whose z axis points down (the walk turned 180 deg about x, markers and plate corners, POINT:Y_SCREEN
    "-Z"): the markers show the pelvis 0.8 m below the feet along +z, and heights are measured along -z. Zeni,
    foot-velocity and force-plate events and the synchronisation's marker signals are those of the original."""
    sessions = {}
    for name in ("original", "z_down"):
        c = ezc3d.c3d(str(shared_path(WALK)))
        if name == "z_down":
            axes(c, "z_down")
        c.write(str(tmp_path / f"{name}.c3d"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_session(read_c3d(tmp_path / f"{name}.c3d"), tmp_path / f"{name}.h5")
        with open_session(tmp_path / f"{name}.h5") as r:
            m = r.read_stream(r.find_streams(modality="markers")[0])
            evs = {type(d).__name__: [(e.kind, e.side, e.time_s) for res in d.detect(r).results_ for e in res.events]
                   for d in (GaitZeni(), GaitFootVelocity(), GaitForcePlate())}
            sessions[name] = (m, evs, GaitZeni()._detect_stream(m))
    (m0, ev0, _), (m1, ev1, res1) = sessions["original"], sessions["z_down"]
    assert np.nanmax(np.abs(m1.data[..., 2] + m0.data[..., 2])) < 1e-3  # really turned: z negated (float32 mm)
    assert res1.meta["up_axis"] == "-z" and any("points down" in w for w in res1.warnings)
    for det, e0 in ev0.items():
        assert len(e0) >= 3, det
        same(ev1[det], e0, 1e-9) if det != "GaitForcePlate" else same_plate(ev1[det], e0)
    s0 = {s.quantity: s for s in marker_signals(m0)}
    s1 = {s.quantity: s for s in marker_signals(m1)}
    assert set(s0) == set(s1) and any(n.startswith("heel_vertical_velocity") for n in s0)
    for n, sig in s0.items():
        np.testing.assert_allclose(s1[n].y, sig.y, atol=1e-5, equal_nan=True, err_msg=n)


def same_plate(a: list[tuple[str, str, float]], b: list[tuple[str, str, float]]) -> None:
    """Force-plate events: the same contacts, to float32 rounding of the rotated plate corners."""
    assert len(a) == len(b)
    for (ka, sa, ta), (kb, sb, tb) in zip(a, b, strict=True):
        assert (ka, sa) == (kb, sb) and abs(ta - tb) <= 1e-6


def test_metres_give_the_same_zeni_events(walk: tuple, tmp_path: Path) -> None:
    m, base = walk
    r = _rewrite(tmp_path, "metres")
    assert r.orig_units[0] == "m"
    # float32 storage of metres rounds differently from float32 millimetres: positions agree to 1e-7 relative
    np.testing.assert_allclose(r.data, m.data, rtol=2e-7, atol=1e-9)
    same(zeni(r), base, 1e-6)


@pytest.mark.parametrize("rate_hz", [50.0, 120.0, 250.0])
def test_resampled_markers_give_the_same_zeni_events_within_one_frame(walk: tuple, rate_hz: float) -> None:
    m, base = walk
    t = m.times()
    ff = int(np.ceil(t[0] * rate_hz - 1e-9))
    t_new = (ff + np.arange(int(np.floor(t[-1] * rate_hz + 1e-9)) - ff + 1)) / rate_hz
    data = np.full((len(t_new), *m.data.shape[1:]), np.nan)
    for j in range(m.data.shape[1]):
        x = m.data[:, j, :]
        ok = np.isfinite(x).all(axis=1)
        d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            if b - a >= 4:
                inside = (t_new >= t[a] - 1e-9) & (t_new <= t[b - 1] + 1e-9)
                data[inside, j, :] = CubicSpline(t[a:b], x[a:b], axis=0)(t_new[inside])
    r = dataclasses.replace(m, data=data, rate_hz=rate_hz, start_s=float(t_new[0]))
    frame_s = 1.0 / min(rate_hz, float(m.rate_hz))
    # events in the first / last 0.1 s depend on where the recording starts and ends (the first-sample strike of
    # this walk at 1.500 s is not in the 50 Hz copy, which starts 10 ms later)
    inner = [e for e in base if t[0] + 0.1 <= e[2] <= t[-1] - 0.1]
    got = [e for e in zeni(r) if t[0] + 0.1 <= e[2] <= t[-1] - 0.1]
    same(got, inner, frame_s)


@pytest.mark.parametrize(("label", "context", "expected"), [
    ("Foot Strike", "Left", ("foot_strike", "left")), ("Foot Off", "Right", ("foot_off", "right")),
    ("Left Foot Strike", "", ("foot_strike", "left")), ("Right Foot Off", "", ("foot_off", "right")),
    ("LHS", "", ("foot_strike", "left")), ("RTO", "", ("foot_off", "right")),
    ("Heel Strike", "Left", ("foot_strike", "left")), ("Toe Off", "Right", ("foot_off", "right")),
    ("IC", "Left", ("foot_strike", "left")),
    ("Initial Contact", "Right", ("foot_strike", "right")), ("Final Contact", "Left", ("foot_off", "left")),
    ("Foot Contact", "Left", ("foot_strike", "left")), ("foot strike", "right", ("foot_strike", "right")),
    ("General Left-FP", "General", ("general_left_fp", "general")),
])
def test_normalise_event_label_families(label: str, context: str, expected: tuple[str, str]) -> None:
    assert normalise_event(label, context) == expected


def test_fc_is_read_from_its_peers() -> None:
    assert normalise_event("FC", "Left", peers=["IC", "FC"]) == ("foot_off", "left")  # initial / final contact
    assert normalise_event("FC", "Left", peers=["FC", "FO"]) == ("foot_strike", "left")  # foot contact / foot off
    assert normalise_event("RFC", peers=["RIC", "RFC"]) == ("foot_off", "right")
    assert normalise_event("FC", "Left") == ("fc", "left")  # alone: not a guess


def test_unidentifiable_markers_say_what_was_looked_for(walk: tuple, tmp_path: Path) -> None:
    m, _ = walk
    names = tuple(f"{ch[0]}FootPoint{ch[1:]}" if ch[1:] in PIG_ROLES and ch[0] in "LR" else ch for ch in m.channels)
    r = dataclasses.replace(m, channels=names)
    assert not _foot_markers(r.channels)
    path = tmp_path / "s.h5"
    save_session(Session(streams=(r,), clocks={r.clock: ClockEntry(r.clock, 0, 0, 0, 0, "reference")}), path)
    with open_session(path) as reader:
        det = GaitZeni().detect(reader)
    assert len(det.results_) == 1 and not det.results_[0].events
    msg = " ".join(det.results_[0].warnings)
    assert "no foot markers identified" in msg
    for looked_for in ("HEE", "HEEL", "FCC", "TOE", "FM1", "ANK", "HEE_L", "LHEE"):
        assert looked_for in msg


def test_french_marker_names_give_a_walk(tmp_path: Path) -> None:
    """A French lab's walk (c3d.org sample30, Biogesta: TLNG/TLND talon, MT1G/MT5G ... with G/D for gauche/droite,
    no pelvis markers): the feet are found and the foot-velocity events alternate like a walk (before: no foot
    markers, no event)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = read_c3d(shared_path("c3d_org/sample30_Biogesta_marche281.c3d"), prefix="").stream("markers")
    assert _foot_markers(m.channels) == {"left": {"toe": "MT1G", "mt5": "MT5G", "heel": "TLNG"},
                                         "right": {"toe": "MT1D", "mt5": "MT5D", "heel": "TLND"}}
    res = GaitFootVelocity()._detect_stream(m)
    strikes = [e for e in res.events if e.kind == "foot_strike"]
    assert len(strikes) >= 4
    assert all(a.side != b.side for a, b in itertools.pairwise(strikes))  # left, right, left, ...
    steps = np.diff([e.time_s for e in strikes])
    assert np.all((steps > 0.4) & (steps < 1.0))  # a step of a walk
