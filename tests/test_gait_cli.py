"""fusionlab events / params / validate: real C3D sessions, JSON schemas, storage, hand-computed validation."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import h5py
import pytest

from fusionlab.cli import main
from fusionlab.exceptions import ValidationError
from fusionlab.gait import _detect
from fusionlab.gait._detect import detect_session, store_results
from fusionlab.gait._validate import validate_sessions
from fusionlab.gait.base import GaitResult
from fusionlab.model import ClockEntry, Event, Session
from fusionlab.persist import open_session, save_session
from tests.conftest import shared_path

KINDS = {"foot_strike", "foot_off"}
SIDES = {"left", "right"}
DETECTOR_SOURCES = {"forceplate", "markers", "imu", "video"}


@pytest.fixture(scope="module")
def c3d_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session of a Plug-in Gait walk with annotated events, markers and force plates."""
    from fusionlab.ingest import ingest

    out = tmp_path_factory.mktemp("gait") / "walk.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([shared_path("btkdata/PiG_Motion-FlatFoot-Full.c3d")], out, isolate=False)
    return out


def _copy(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes())
    return dst


def _run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> object:
    capsys.readouterr()
    assert main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_events_json_schema_and_annotations(c3d_session: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(c3d_session, tmp_path / "s.h5")
    events = _run_json(capsys, "events", str(path), "--json")
    assert isinstance(events, list) and events
    for e in events:
        assert {"time_s", "sd_s", "side", "kind", "source", "detector"} <= set(e)
        assert isinstance(e["time_s"], float) and (e["sd_s"] is None or e["sd_s"] >= 0)
        assert e["side"] in SIDES and e["kind"] in KINDS
        assert e["source"] in DETECTOR_SOURCES | {"annotation"}
    assert [e["time_s"] for e in events] == sorted(e["time_s"] for e in events)
    annotations = [e for e in events if e["source"] == "annotation"]
    detected = [e for e in events if e["source"] != "annotation"]
    with open_session(path) as r:
        stored_ann = [e for e in r.events(source="annotation") if e.kind in KINDS and e.side in SIDES]
    assert len(annotations) == len(stored_ann) and all(e["sd_s"] is None for e in annotations)
    assert detected and all(e["sd_s"] is not None and "stream" in e for e in detected)
    # annotations are never detector output: no detector event carries the source file's name as detector
    assert not {e["detector"] for e in detected} & {e["detector"] for e in annotations}


def test_events_stored_replaced_not_duplicated(c3d_session: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = _copy(c3d_session, tmp_path / "s.h5")
    with open_session(path) as r:
        n_ann = len(r.events(source="annotation"))
    main(["events", str(path)])
    with open_session(path) as r:
        first = {s: len(r.events(source=s)) for s in DETECTOR_SOURCES}
        derived = r.derived_names()
        streams = r.stream_names
    assert sum(first.values()) > 0
    assert any(d.startswith("gait_markers_") for d in derived)
    main(["events", str(path)])
    with open_session(path) as r:
        assert {s: len(r.events(source=s)) for s in DETECTOR_SOURCES} == first
        assert len(r.events(source="annotation")) == n_ann  # annotations untouched
        assert r.derived_names() == derived
        assert r.stream_names == streams
        assert all(e.source != "annotation" for s in DETECTOR_SOURCES for e in r.events(source=s))
    out = capsys.readouterr().out
    assert "detected event(s)" in out


def test_derived_group_layout(c3d_session: Path, tmp_path: Path) -> None:
    path = _copy(c3d_session, tmp_path / "s.h5")
    results = detect_session(path, "markers")
    names = store_results(path, results)
    assert names
    with h5py.File(path, "r") as f:
        g = f["derived"][names[0]]
        for key in ("source", "detector", "algorithm", "parameters", "input_streams", "fusionlab_version",
                    "created_at", "summary", "results", "units"):
            assert key in g.attrs, key
        assert g.attrs["source"] == "markers"
        assert json.loads(g.attrs["input_streams"])
        n = g["start_s"].shape[0]
        assert n > 0 and g["stride_time_s"].shape == (n,) and g["stride_time_s_sd"].shape == (n,)
        summary = json.loads(g.attrs["summary"])
        assert summary["stride_time_s"]["left"]["n"] > 0
    stored = _detect.read_derived(path)[names[0]]
    assert len(stored["strides"]) == n and stored["attrs"]["source"] == "markers"
    assert all(s.clock == "session" and "stride_time_s" in s.params for s in stored["strides"])


def test_no_store_leaves_file_unchanged(c3d_session: Path, tmp_path: Path) -> None:
    path = _copy(c3d_session, tmp_path / "s.h5")
    before = path.read_bytes()
    assert main(["events", str(path), "--no-store", "--source", "markers"]) == 0
    assert path.read_bytes() == before


def test_params_json(c3d_session: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = _run_json(capsys, "params", str(c3d_session), "--json")
    assert isinstance(report, dict) and set(report) == {"session", "sources", "notes"}
    sources = {s["source"] for s in report["sources"]}
    assert "annotation" in sources and "markers" in sources
    for s in report["sources"]:
        assert {"source", "detector", "streams", "n_strides", "parameters"} <= set(s)
        for p, v in s["parameters"].items():
            assert {"unit", "left", "right", "symmetry_index_pct"} <= set(v), p
            for side in ("left", "right"):
                assert {"n", "mean", "sd", "cv_pct", "sd_of_mean"} <= set(v[side])
    ann = next(s for s in report["sources"] if s["source"] == "annotation")
    assert 0.8 < ann["parameters"]["stride_time_s"]["left"]["mean"] < 1.6
    assert main(["params", str(c3d_session)]) == 0
    assert "stride_time_s" in capsys.readouterr().out


def test_validate_json_two_sessions(c3d_session: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = _copy(c3d_session, tmp_path / "again.h5")
    one = _run_json(capsys, "validate", str(c3d_session), "--json", "--source", "markers")
    two = _run_json(capsys, "validate", str(c3d_session), str(other), "--json", "--source", "markers")
    assert one["reference"] == "annotation" and one["tolerance_s"] == 0.1
    comp1 = {(c["source"], c["detector"]): c for c in one["comparisons"]}
    comp2 = {(c["source"], c["detector"]): c for c in two["comparisons"]}
    assert comp1 and set(comp1) == set(comp2) and all(k[0] == "markers" for k in comp1)
    for key, c in comp1.items():
        assert {"foot_strike", "foot_off", "all"} == set(c["events"])
        m1, m2 = c["events"]["all"], comp2[key]["events"]["all"]
        assert m2["n_matched"] == 2 * m1["n_matched"] and m2["n_reference"] == 2 * m1["n_reference"]
        assert comp2[key]["n_sessions"] == 2
        assert {"n_reference", "n_detected", "n_matched", "precision", "recall", "median_abs_error_s",
                "p95_abs_error_s", "mean_error_s", "detected_kind", "reference_kind"} == set(m1)
        for a in c["parameters"].values():
            assert {"n", "bias", "sd_difference", "loa_low", "loa_high", "icc_a1", "unit"} <= set(a)
    assert main(["validate", str(c3d_session), "--reference", "markers", "--tolerance-ms", "60"]) == 0
    assert "ICC(2,1)" in capsys.readouterr().out


def _ev(t: float, side: str, kind: str, source: str, clock: str = "dev") -> Event:
    return Event(time_s=t, kind=kind, side=side, source=source, sd_s=math.nan if source == "annotation" else 0.01,
                 clock=clock, detector="file.c3d" if source == "annotation" else "fake v1")


def test_validate_hand_computed_synthetic(tmp_path: Path) -> None:
    """Annotations on a device clock offset by +0.5 s from the session clock; a fake detector on another clock."""
    ann = [_ev(t, "left", "foot_strike", "annotation") for t in (1.0, 2.0, 3.0)]
    ann += [_ev(t, "right", "foot_strike", "annotation") for t in (1.5, 2.5)]
    ann += [_ev(t, "left", "foot_off", "annotation") for t in (1.6, 2.6)]
    path = tmp_path / "syn.h5"
    save_session(Session(events=tuple(ann), clocks={"dev": ClockEntry("dev", 0.5, 0, 0, 0, "reference"),
                                                    "cam": ClockEntry("cam", 1.0, 0.01, 0, 0, "cross_correlation")}),
                 path)
    # detector times on the cam clock (session = cam + 1.0); session-clock truth = annotation + 0.5
    det = [_ev(t - 0.5, "left", "foot_strike", "video", "cam") for t in (1.02, 1.96, 3.30)]  # +20, -40, miss
    det += [_ev(t - 0.5, "right", "foot_strike", "video", "cam") for t in (1.5, 2.5, 2.55)]  # 0, 0, extra
    det += [_ev(t - 0.5, "left", "foot_off", "video", "cam") for t in (1.63, 5.0)]  # +30, outside span
    res = GaitResult(source="video", detector="fake v1", streams=("cam.pose2d",), clock="cam", events=det)
    report = validate_sessions([path], "annotation", tolerance_s=0.1, results={str(path): [res]})
    (c,) = report["comparisons"]
    fs, fo, all_ = c["events"]["foot_strike"], c["events"]["foot_off"], c["events"]["all"]
    assert (fs["n_reference"], fs["n_detected"], fs["n_matched"]) == (5, 5, 4)
    assert fs["precision"] == pytest.approx(0.8) and fs["recall"] == pytest.approx(0.8)
    assert fs["median_abs_error_s"] == pytest.approx(0.01, abs=1e-9)  # |e| = 0.02, 0.04, 0, 0
    assert fs["mean_error_s"] == pytest.approx(-0.005, abs=1e-9)
    assert (fo["n_reference"], fo["n_detected"], fo["n_matched"]) == (2, 1, 1)  # 5.0 s is outside the span
    assert fo["median_abs_error_s"] == pytest.approx(0.03, abs=1e-9)
    assert all_["n_matched"] == 5 and all_["recall"] == pytest.approx(5 / 7)
    # session clock: reference strides L 1.5-2.5, L 2.5-3.5, R 2.0-3.0; detector strides L 1.52-2.46 (R 2.0
    # inside), R 2.0-3.0 (L 2.46 inside); L 2.46-3.80 has two right strikes inside and is rejected.
    # Pairs: L 0.94 vs 1.0 (d = -0.06), R 1.0 vs 1.0 (d = 0): bias -0.03, SD(d) = 0.06 / sqrt(2)
    st = c["parameters"]["stride_time_s"]
    assert st["n"] == 2 and st["bias"] == pytest.approx(-0.03, abs=1e-9)
    assert st["loa_high"] == pytest.approx(-0.03 + 1.96 * 0.06 / math.sqrt(2), abs=1e-9)
    # a reference of foot strikes only: the detector's foot offs are not compared (not false positives)
    only_fs = tmp_path / "only_fs.h5"
    save_session(Session(events=tuple(e for e in ann if e.kind == "foot_strike"),
                         clocks={"dev": ClockEntry("dev", 0.5, 0, 0, 0, "reference"),
                                 "cam": ClockEntry("cam", 1.0, 0.01, 0, 0, "cross_correlation")}), only_fs)
    (c2,) = validate_sessions([only_fs], "annotation", tolerance_s=0.1, results={str(only_fs): [res]})["comparisons"]
    assert c2["events"]["foot_strike"] == fs
    fo2 = c2["events"]["foot_off"]
    assert (fo2["n_reference"], fo2["n_detected"], fo2["precision"], fo2["reference_kind"]) == (0, 0, None, False)
    assert c2["events"]["all"]["precision"] == pytest.approx(0.8) and c2["events"]["all"]["n_detected"] == 5
    assert fs["reference_kind"] and fo["reference_kind"]
    # reference = a detector family that does not exist here: nothing to compare, said so
    report = validate_sessions([path], "markers", results={str(path): [res]})
    assert report["comparisons"] == [] and "no reference events" in report["sessions"][0]["notes"][0]


def test_store_refuses_annotation_source(tmp_path: Path) -> None:
    path = tmp_path / "syn.h5"
    save_session(Session(events=(_ev(1.0, "left", "foot_strike", "annotation"),),
                         clocks={"dev": ClockEntry("dev", 0, 0, 0, 0, "reference")}), path)
    bad = GaitResult(source="markers", detector="fake v1", streams=(), clock="dev",
                     events=[_ev(1.0, "left", "foot_strike", "annotation")])
    with pytest.raises(ValidationError, match="annotation"):
        store_results(path, [bad])


def test_missing_module_is_skipped_with_a_note(c3d_session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(_detect.DETECTOR_MODULES, "video", ("fusionlab.gait._does_not_exist",))
    notes: list[str] = []
    results = detect_session(c3d_session, "video", notes=notes)
    assert results == [] and any("not available" in n for n in notes)


def test_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], c3d_session: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not a session")
    for cmd in ("events", "params", "validate"):
        assert main([cmd, str(text)]) == 1
        assert "not a fusionlab session" in capsys.readouterr().err
    assert main(["events", str(tmp_path / "missing.h5")]) == 1
    with pytest.raises(SystemExit) as exc:
        main(["events", str(c3d_session), "--source", "kinect"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    assert main(["validate", str(c3d_session), "--tolerance-ms", "0"]) == 1
    assert "tolerance" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="Allowed values"):
        detect_session(c3d_session, "kinect")


def test_validate_against_one_stored_reference_system(tmp_path: Path) -> None:
    """A dataset's reference systems (source 'reference', one detector per system): choose one with '/'."""
    ref = [Event(t, "foot_strike", "left", "reference", clock="dev", detector=sysname)
           for sysname, shift in (("sys:A", 0.0), ("sys:B", 0.03)) for t in (1.0 + shift, 2.0 + shift)]
    path = tmp_path / "ref.h5"
    save_session(Session(events=tuple(ref), clocks={"dev": ClockEntry("dev", 0, 0, 0, 0, "reference")}), path)
    det = [_ev(t, "left", "foot_strike", "imu") for t in (1.01, 2.01)]
    res = GaitResult(source="imu", detector="fake v1", streams=("x",), clock="dev", events=det)
    report = validate_sessions([path], "reference/sys:A", results={str(path): [res]})
    fs = report["comparisons"][0]["events"]["foot_strike"]
    assert fs["n_reference"] == 2 and fs["median_abs_error_s"] == pytest.approx(0.01)
    # both systems pooled would count each contact twice (recall halved): not compared, and the note says why
    report = validate_sessions([path], "reference", results={str(path): [res]})
    assert report["comparisons"] == [] and report["sessions"][0]["compared"] == []
    (note,) = [n for n in report["sessions"][0]["notes"] if "choose one" in n]
    assert "sys:A" in note and "sys:B" in note and "not compared" in note and "reference/sys:A" in note
    assert main(["validate", str(path), "--reference", "reference"]) == 1  # nothing compared: an error, not a table


def test_every_detector_follows_the_contract(c3d_session: Path) -> None:
    """Keyword-only defaulted parameters, JSON parameters, detect returns self, events as the contract says."""
    import inspect

    from fusionlab.gait._detect import find_detectors
    from fusionlab.gait.base import BaseGaitDetector

    classes = find_detectors("all")
    assert {c.source for c in classes} >= {"markers", "video"}
    with open_session(c3d_session) as reader:
        for cls in classes:
            sig = inspect.signature(cls.__init__)
            for name, p in sig.parameters.items():
                if name != "self":
                    assert p.kind is p.KEYWORD_ONLY and p.default is not p.empty, (cls.__name__, name)
            det = cls()
            json.dumps(det.get_params())
            assert det.detect(reader) is det, cls.__name__
            assert isinstance(det, BaseGaitDetector)
            for res in det.results_:
                assert isinstance(res, GaitResult) and res.source == cls.source
                for e in res.events:
                    assert e.source == cls.source and e.detector == det.detector_id, (cls.__name__, e)
                    assert e.clock == res.clock and e.kind in KINDS and e.side in SIDES
                    assert math.isfinite(e.sd_s) and e.sd_s > 0, (cls.__name__, e)



def test_validate_lists_sessions_where_a_detector_gave_no_event(c3d_session: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Zeni needs pelvis markers: on a copy of the walk without them it gives no event. The pooled recall counts
    that session's annotations as missed, the session is named with the detector's reason, and the figures over the
    session where it ran equal the single-session figures."""
    import dataclasses

    from fusionlab.gait._markers import _norm
    from fusionlab.persist import load_session

    session = load_session(c3d_session)
    pelvis = {"sacr", "lasi", "rasi", "lpsi", "rpsi"}
    streams = []
    for st in session.streams:
        keep = [i for i, ch in enumerate(st.channels) if _norm(ch) not in pelvis]
        if st.modality == "markers":
            assert len(keep) < len(st.channels)
            st = dataclasses.replace(st, channels=tuple(st.channels[i] for i in keep), data=st.data[:, keep],
                                     units=tuple(st.units[i] for i in keep),
                                     orig_units=tuple(st.orig_units[i] for i in keep) if st.orig_units else (),
                                     confidence=None if st.confidence is None else st.confidence[:, keep])
        streams.append(st)
    bare = tmp_path / "no_pelvis.h5"
    save_session(dataclasses.replace(session, streams=tuple(streams)), bare)

    one = _run_json(capsys, "validate", str(c3d_session), "--json", "--source", "markers")
    both = _run_json(capsys, "validate", str(c3d_session), str(bare), "--json", "--source", "markers")
    z1 = next(c for c in one["comparisons"] if c["detector"].startswith("zeni"))
    z2 = next(c for c in both["comparisons"] if c["detector"].startswith("zeni"))
    assert z1["sessions_without_events"] == [] and "events_in_sessions_with_events" not in z1
    assert z2["n_sessions"] == 2 and [g["path"] for g in z2["sessions_without_events"]] == [str(bare)]
    assert "pelvis" in z2["sessions_without_events"][0]["why"].lower()
    m1, m2 = z1["events"]["all"], z2["events"]["all"]
    assert m1["n_matched"] > 0 and m2["n_matched"] == m1["n_matched"]
    assert m2["n_reference"] == 2 * m1["n_reference"]
    assert m2["recall"] == pytest.approx(m1["recall"] / 2)
    assert z2["events_in_sessions_with_events"] == z1["events"]
    assert main(["validate", str(c3d_session), str(bare), "--source", "markers"]) == 0
    out = capsys.readouterr().out
    assert "no event in 1 of 2 session(s), counted as missed above" in out and "no_pelvis.h5" in out


def test_a_source_with_nothing_to_analyse_says_so(c3d_session: Path) -> None:
    """``--source imu`` on a C3D session (no IMU stream): no event, and a note naming what the session holds; a
    source that has streams gives no such note."""
    notes: list[str] = []
    assert detect_session(c3d_session, "imu", notes=notes) == []
    (note,) = [n for n in notes if n.startswith("no stream the imu detectors")]
    assert "markers" in note and "forceplate" in note
    notes = []
    assert detect_session(c3d_session, "markers", notes=notes)
    assert not any(n.startswith("no stream the") for n in notes)


def test_imu_streams_the_detectors_cannot_use_say_why(tmp_path: Path) -> None:
    """A real Xsens foot sensor exported without gyroscope (acc and orientation only): at a foot placement, the foot
    detector says it needs gyr (no event); with no placement, a note says no gait detector analyses the stream."""
    from fusionlab.ingest import ingest

    src = shared_path("formats/xsens_mtmanager/opensense_walking_009-001/MT_012005D6_009-001_00B421E6.txt")
    for placement in ("left_foot", None):
        path = tmp_path / f"{placement}.h5"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ingest([src], path, isolate=False, reader_options={"placement": placement})
        notes: list[str] = []
        results = detect_session(path, "imu", notes=notes)
        assert not [e for r in results for e in r.events]
        if placement:
            acc_only = [r for r in results if any(w.startswith("no gyr channel (it has acc)") for w in r.warnings)]
            assert len(acc_only) == 1 and acc_only[0].detector.startswith("footimu")
        else:
            assert results == [] and any("placement unknown" in n and "--placement" in n for n in notes)


def test_validate_notes_a_reference_that_marks_the_other_event(tmp_path: Path) -> None:
    """gaitmap's segmentation borders (gyroscope minima at the push-off) read as foot strikes: every one coincides
    with a foot-IMU foot off, none with a strike; validate says so. The IC-to-IC borders of the other walk do not
    trigger it."""
    from fusionlab.adapters.imu_gaitmap import read_gaitmap_imu

    g = "imu/gaitmap/"
    cases = {"segmentation": ("imu_sample.csv", "stride_borders_sample.csv", None),
             "ic": ("imu_sample_ic_stride.csv", "stride_borders_sample_ic_stride.csv", 102.4)}
    for name, (imu, borders, rate) in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            session = read_gaitmap_imu(shared_path(g + imu), rate_hz=rate, stride_borders=shared_path(g + borders))
        path = tmp_path / f"{name}.h5"
        save_session(session, path)
        notes = validate_sessions([path], "reference")["sessions"][0]["notes"]
        flagged = [n for n in notes if "coincide with this detector's foot offs" in n]
        assert bool(flagged) == (name == "segmentation"), notes
