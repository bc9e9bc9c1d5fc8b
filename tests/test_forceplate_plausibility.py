"""Force-plate events checked against the force itself on the shared recordings: the lab's documented up axis of
OpenSim ``.mot`` ground reactions and their declared foot, the C3D ``FORCE_PLATFORM:ZERO`` baseline, and plates that
are never unloaded (a warning, no event)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from fusionlab.gait._forceplate import GaitForcePlate
from fusionlab.gait.base import GaitResult
from fusionlab.ingest import ingest
from fusionlab.persist import open_session
from tests.conftest import shared_path

pytestmark = pytest.mark.shared_data

THRESHOLD_N = 20.0


def _detect(rel: str, tmp_path: Path) -> tuple[GaitResult, dict[str, tuple[np.ndarray, np.ndarray, dict]]]:
    """The detector's single result and each plate's (times, force (n, 3), meta)."""
    session = tmp_path / (Path(rel).stem + ".h5")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([shared_path(rel)], session, isolate=False)
    with open_session(session) as r:
        (res,) = GaitForcePlate().detect(r).results_
        plates = {}
        for name in r.find_streams(modality="forceplate"):
            s = r.read_stream(name)
            plates[name] = (s.times(), np.asarray(s.channel("force"), dtype=float), dict(s.meta))
    return res, plates


def _crossings(t: np.ndarray, f: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """Sample times just before ``f`` rises through / falls through ``level``."""
    up = np.flatnonzero((f[:-1] <= level) & (f[1:] > level))
    down = np.flatnonzero((f[:-1] > level) & (f[1:] <= level))
    return t[up], t[down]


def _assert_events_at_crossings(res: GaitResult, plates: dict, axis: int, levels: dict[str, float]) -> None:
    """Every event lies within one sample after a crossing of the threshold by (force[:, axis] - level) of its
    plate, in the right direction, and every crossing of a kept contact has its event."""
    for name, (t, force, _meta) in plates.items():
        dt = float(np.median(np.diff(t)))
        up, down = _crossings(t, force[:, axis] - levels.get(name, 0.0), THRESHOLD_N)
        mine = [e for e in res.events if e.label == name]
        for e in mine:
            ref = up if e.kind == "foot_strike" else down
            assert ref.size and np.min(np.abs(e.time_s - ref - dt / 2)) <= dt / 2 + 1e-9, (name, e)


def test_opensim_rajagopal_uses_the_vertical_y_force_and_the_declared_feet(tmp_path: Path) -> None:
    """y is up in OpenSim: the right foot's contacts 0.266-1.024 and 1.411-2.168 s, the left's 0.836-1.590 s
    (v1 timed a 55 N shear on z and called it 'general')."""
    res, plates = _detect("formats/opensim_mot_grf/rajagopal_grf_walk.mot", tmp_path)
    _assert_events_at_crossings(res, plates, axis=1, levels={})
    got = [(e.kind, e.side, round(e.time_s, 2)) for e in res.events]
    assert got == [("foot_strike", "right", 0.27), ("foot_strike", "left", 0.84), ("foot_off", "right", 1.02),
                   ("foot_strike", "right", 1.41), ("foot_off", "left", 1.59), ("foot_off", "right", 2.17)]
    assert {c["side_method"] for c in res.meta["contacts"]} == {"plate metadata"}
    assert not any("side of each contact is unknown" in w for w in res.warnings)


def test_opensim_subject01_events_are_the_vertical_crossings(tmp_path: Path) -> None:
    """Every crossing of 20 N by the y force of either group, except the last rise 42 ms before the end (a contact
    shorter than min_contact_s in the recording), is an event; the groups do not name their foot ('general')."""
    res, plates = _detect("formats/opensim_mot_grf/subject01_walk1_grf_gait1018.mot", tmp_path)
    _assert_events_at_crossings(res, plates, axis=1, levels={})
    times = sorted(round(e.time_s, 2) for e in res.events)
    assert times == [0.16, 0.62, 0.79, 1.25, 1.41, 1.85, 2.02]
    assert {e.side for e in res.events} == {"general"}


def test_zero_baseline_gives_the_offset_plates_their_contacts(tmp_path: Path) -> None:
    """sample01: plate 1 rests at 21.2 N and plate 2 at 30.6 N in the FORCE_PLATFORM:ZERO frames 1-10 and never falls
    below 18.6 / 25.9 N (v1: no event). The stream keeps the raw force; the detector subtracts the level."""
    res, plates = _detect("c3d_org/sample01_Eb015pi.c3d", tmp_path)
    levels = res.meta["zero_baseline_n"]
    for name, (_t, force, meta) in plates.items():
        assert meta["zero_frames"] == [1, 10] and meta["zero_applied"] is False
        assert np.nanmin(force[:, 2]) > 18.0  # the raw data are unchanged: never below the release level
        assert 20.0 < levels[name] < 32.0
        assert levels[name] == pytest.approx(meta["zero_force_n"][2], abs=1e-3)  # meta rounded to 1 mN
    _assert_events_at_crossings(res, plates, axis=2, levels=levels)
    assert [e.kind for e in res.events] == ["foot_strike", "foot_off", "foot_strike", "foot_off"]


def test_zero_baseline_makes_the_raw_file_agree_with_the_processed_one(tmp_path: Path) -> None:
    """sample03 gait-raw (unzeroed, plate 1 rests at 7.9 N) and gait-pig (the same trial after the lab's processing,
    which zeroed the plates) give the same events within one analog sample once ZERO is applied (v1: 1.9 / 7.2 ms
    apart on the left foot)."""
    raw, _ = _detect("c3d_org/sample03_gait-raw.c3d", tmp_path)
    pig, _ = _detect("c3d_org/sample03_gait-pig.c3d", tmp_path)
    dt = 1.0 / 800.0
    assert [(e.kind, e.side) for e in raw.events] == [(e.kind, e.side) for e in pig.events]
    assert max(abs(a.time_s - b.time_s) for a, b in zip(raw.events, pig.events, strict=True)) <= dt


def test_never_unloaded_plates_are_reported_not_timed(tmp_path: Path) -> None:
    """Codamotion 2015 plates 1 and 2 rest at 25 / 22 N with ZERO 0,0 (no baseline declared): a warning, no
    event from them; plate 3 rests at -71 N: its events are kept, with a warning giving the level."""
    res, _ = _detect("c3d_org/sample00_Codamotion_gaitwands_20150204.c3d", tmp_path)
    for k in (1, 2):
        name = f"sample00_Codamotion_gaitwands_20150204.forceplate{k}"
        assert any(w.startswith(f"{name}: the vertical force never falls below 10 N") for w in res.warnings)
        assert not [e for e in res.events if e.label == name]
    assert any("forceplate3: its unloaded level is -70.7 N" in w for w in res.warnings)
    assert len([e for e in res.events if e.label.endswith("forceplate3")]) == 2


def test_zero_frames_holding_no_data_are_not_a_baseline(tmp_path: Path) -> None:
    """IST gait: the ZERO frame holds exact zeros and plate 1 rests at 18-23 N; v1 reported a left foot strike at
    0.017 s where the data start. Now: no event from plate 1, a warning."""
    res, _ = _detect("c3d_org/sample00_IST_Gait_with_EMG.c3d", tmp_path)
    assert not [e for e in res.events if e.label.endswith("forceplate1")]
    assert any("forceplate1: the FORCE_PLATFORM:ZERO frames 1-1 hold no data" in w for w in res.warnings)
    assert any("forceplate1: the vertical force never falls below 10 N" in w for w in res.warnings)


def test_treadmill_belt_loaded_by_the_other_foot_gives_no_foot_off(tmp_path: Path) -> None:
    """gaitalytics treadmill: after a foot leaves its belt, the other foot (landing on the next belt) still loads it
    near the boundary (~55 N, centre of pressure at the belt edge), so Fz crossed 20 N 0.15-0.35 s after the real
    foot off: 6 false foot offs. With the foot in the air (every marker, toe included, > 2 cm above its level in
    the contact) and the centre of pressure nearer the other foot, no foot off is given; every plate foot off left
    is within 50 ms of an annotated one (this lab's annotations lie up to 36 ms from the plate onsets; the false ones
    were 145-345 ms off), and walks whose plate foot offs are true lose none."""
    res, _ = _detect("gaitalytics/treadmill_events.c3d", tmp_path)
    with open_session(next(tmp_path.glob("*.h5"))) as r:
        ann = [e for e in r.events(source="annotation", clock="device") if e.kind == "foot_off"]
    offs = [e for e in res.events if e.kind == "foot_off"]
    assert len(offs) >= 10
    for e in offs:
        assert min(abs(a.time_s - e.time_s) for a in ann if a.side == e.side) < 0.05, e.time_s
    handed = [c for c in res.meta["contacts"] if any("in the air" in x for x in c["edge"])]
    assert len(handed) == 6 and all(c["fo_s"] is None and c["fs_s"] is not None for c in handed)
    for rel in ("c3d_org/sample09_PlugInC3D.c3d", "c3d_org/sample10_TYPE-3.c3d", "ezc3d_testfiles/BTS.c3d"):
        other, _ = _detect(rel, tmp_path / rel.replace("/", "_"))
        assert not [c for c in other.meta["contacts"] if any("in the air" in x for x in c["edge"])], rel
