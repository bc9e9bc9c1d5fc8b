"""Web-app library functions: peak-keeping downsampling, session index, session figure on a real session,
conflicts, zoom (no browser, no web server)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest

from fusionlab.app._data import (
    SessionIndex,
    TraceKey,
    conflict_rows,
    decode_array,
    downsample_envelope,
    downsample_minmax,
    explain_conflict,
    filter_rows,
    session_figure,
    session_update,
    sort_rows,
    window_from_relayout,
)
from fusionlab.fusion import Conflict, FusedSignal, FusionResult, read_fusion, store_fusion
from fusionlab.model import Event
from fusionlab.persist import open_session
from tests.conftest import shared_path

SAMPLE = "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"


# ---------------------------------------------------------------------------------------------------- downsampling
def test_downsample_minmax_keeps_every_spike_and_is_bounded() -> None:
    rng = np.random.default_rng(1)
    n = 600_000  # 10 min at 1 kHz
    t = np.arange(n) / 1000.0
    y = np.sin(2 * np.pi * 1.0 * t) + 0.05 * rng.standard_normal(n)
    # spikes at least one bucket apart (2400 samples at max_points=500): min/max keeps the largest and the smallest
    # value of each bucket, so two same-sign spikes inside one bucket show as the larger one until zoomed in
    spikes = np.arange(40) * 15_000 + rng.integers(0, 10_000, size=40)
    heights = rng.choice([-1, 1], size=40) * rng.uniform(5, 50, size=40)
    y[spikes] += heights
    for max_points in (500, 2000, 4001):
        td, yd = downsample_minmax(t, y, max_points)
        assert len(td) == len(yd) <= max_points
        assert np.all(np.diff(td) >= 0)
        kept = dict(zip(td.tolist(), yd.tolist(), strict=True))
        for i in spikes:
            assert kept.get(t[i]) == y[i], f"spike at sample {i} lost with max_points={max_points}"
        assert yd.max() == y.max() and yd.min() == y.min()
    assert np.array_equal(downsample_minmax(t[:100], y[:100], 500)[1], y[:100])  # short input: unchanged


def test_downsample_minmax_keeps_gaps_as_nan() -> None:
    t = np.arange(10_000) / 100.0
    y = np.cos(t)
    y[3000:5000] = np.nan  # 20 s gap
    td, yd = downsample_minmax(t, y, 200)
    assert len(td) <= 200 and np.isnan(yd).any()
    gap = np.isnan(yd)
    assert np.all((td[gap] >= 29.0) & (td[gap] < 51.0))
    assert np.isfinite(yd[td < 29.0]).all() and np.isfinite(yd[td > 51.0]).all()


def test_downsample_envelope_never_narrows_the_band() -> None:
    rng = np.random.default_rng(2)
    t = np.arange(50_000) / 200.0
    mean = np.sin(t) + rng.standard_normal(t.size) * 0.1
    sd = 0.05 + 0.5 * (rng.random(t.size) > 0.999)  # rare wide spots must survive
    lo, hi = mean - 1.96 * sd, mean + 1.96 * sd
    tb, lob, hib = downsample_envelope(t, lo, hi, 400)
    assert len(tb) <= 400
    bucket = np.searchsorted(tb[::2], t, side="right") - 1
    assert np.all(lob[2 * bucket] <= lo) and np.all(hib[2 * bucket] >= hi)


# ---------------------------------------------------------------------------------------------------- real session
@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusionlab.ingest import ingest

    out = tmp_path_factory.mktemp("app_data") / "walk.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([shared_path(SAMPLE)], out, subject="S007", session_date="2026-02-03", isolate=False)
    return out


@pytest.fixture(scope="module")
def fused_session(session: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session plus a stored fusion result (fused knee angle, a conflict, fused events) made by hand."""
    out = tmp_path_factory.mktemp("app_fused") / "walk_fused.h5"
    shutil.copy(session, out)
    t = np.arange(0.7, 5.4, 0.01)
    mean = np.stack([np.sin(t), np.cos(t)], axis=1) * 0.5
    var = np.full_like(mean, 0.02**2)
    sig = FusedSignal("knee_angle", t, mean, var, ("left_knee", "right_knee"), ("rad", "rad"),
                      frame="joint:sagittal", inputs=("markers", "video"))
    conflict = Conflict(2.0, 2.6, "knee_angle", "video", "high", 41.2,
                        {"nis": 41.2, "dof": 6.0, "p": 1e-6, "median_residual": 0.31, "unit": "rad"})
    events = [Event(time_s=1.1, kind="foot_strike", side="right", source="fused", sd_s=0.004, clock="session",
                    detector="fusion_events_test")]
    store_fusion(out, [FusionResult("angles", "test-model", signals=[sig], conflicts=[conflict], events=events)])
    return out


def _rows(fig: dict) -> dict[str, str]:
    """Row title -> y axis reference."""
    titles = [a["text"].strip("<b>/") for a in fig["layout"]["annotations"]]
    return {title: ("y" if i == 0 else f"y{i + 1}") for i, title in enumerate(titles)}


def test_session_figure_real_session_one_shared_axis_bounded(session: Path) -> None:
    fig = session_figure(session, max_points=300)
    rows = _rows(fig)
    assert any(r.startswith("force plates") for r in rows) and any(r.startswith("markers") for r in rows)
    assert "events" in rows
    assert {tr["xaxis"] for tr in fig["data"]} == {"x"}  # one x axis: zoom is linked across all rows
    assert not [k for k in fig["layout"] if k.startswith("xaxis") and k != "xaxis"]
    by_row = {title: [tr for tr in fig["data"] if tr["yaxis"] == ref] for title, ref in rows.items()}
    force = next(v for k, v in by_row.items() if k.startswith("force plates"))
    markers = next(v for k, v in by_row.items() if k.startswith("markers"))
    assert force and markers and by_row["events"]
    for tr in fig["data"]:
        assert len(decode_array(tr["x"])) <= 300
    # the force plate (4930 samples at 1 kHz) was downsampled but kept its peak
    with open_session(session) as r:
        name = next(n for n in r.stream_names if n.endswith("forceplate1"))
        fz = r.read_stream(name).data[:, 0, 2]
    y = decode_array(force[0]["y"])
    assert len(y) < len(fz) and np.nanmax(y) == pytest.approx(np.nanmax(fz), rel=1e-6)
    assert not fig["layout"]["meta"]["full_resolution"]
    events = by_row["events"]
    assert {tr["y"][0] for tr in events} == {"annotation"}
    assert sum(len(tr["x"]) for tr in events) == 18


def test_zoomed_window_is_full_resolution(session: Path) -> None:
    fig = session_figure(session, window=(1.0, 1.5), max_points=2000)
    assert fig["layout"]["meta"]["full_resolution"]
    force = next(tr for tr in fig["data"] if "forceplate1" in tr["name"] or tr["name"].startswith("forceplate1"))
    x = decode_array(force["x"])
    assert len(x) == 500 and x[0] == pytest.approx(1.0) and x[-1] == pytest.approx(1.499)
    assert fig["layout"]["xaxis"]["range"] == [1.0, 1.5]


def test_trace_choice(session: Path) -> None:
    with open_session(session) as r:
        markers = next(n for n in r.stream_names if n.endswith(".markers"))
    key = TraceKey(markers, "LHEE", "z")
    assert TraceKey.decode(key.encode()) == key
    fig = session_figure(session, traces=[key.encode()])
    assert [tr["name"] for tr in fig["data"] if tr["yaxis"] != _rows(fig)["events"]] == ["markers LHEE.z [m]"]


def test_fused_signals_band_conflicts_and_fused_events(fused_session: Path) -> None:
    fig = session_figure(fused_session, max_points=200)
    rows = _rows(fig)
    assert next(iter(rows)).startswith("fused knee_angle [deg]")  # fused on top, radians shown in degrees
    fused = [tr for tr in fig["data"] if tr["yaxis"] == "y"]
    assert [tr.get("fill") for tr in fused].count("tonexty") == 2  # one 95 % band per channel
    means = [tr for tr in fused if tr["name"].endswith("fused [deg]")]
    assert len(means) == 2 and all(len(decode_array(tr["x"])) <= 200 for tr in fused)
    lo = decode_array(fused[0]["y"])
    assert np.nanmin(lo) == pytest.approx(np.degrees(-0.5 - 1.96 * 0.02), abs=0.05)
    assert {tr["y"][0] for tr in fig["data"] if tr["yaxis"] == rows["events"]} == {"annotation", "fused"}
    shapes = fig["layout"]["shapes"]
    assert len(shapes) == 1 and (shapes[0]["x0"], shapes[0]["x1"]) == (2.0, 2.6) and shapes[0]["yref"] == "paper"


def test_conflict_list_click_zooms_and_explains(fused_session: Path) -> None:
    rows = conflict_rows(read_fusion(fused_session))
    assert rows == [{"index": 0, "start_s": 2.0, "end_s": 2.6, "duration_s": 0.6, "quantity": "knee_angle",
                     "modality": "video", "severity": "high"}]
    up = session_update(fused_session, trigger="conflict", conflict_index=0, view={"window": None})
    assert up.view == {"window": [1.5, 3.1], "cursor": 2.0}  # cursor: the video frame goes to the start
    assert up.figure["layout"]["xaxis"]["range"] == [1.5, 3.1]
    assert "video disagrees" in up.explanation and "nis = 41.2" in up.explanation and "0.31 rad" in up.explanation
    text = explain_conflict(read_fusion(fused_session)["angles"].conflicts[0])
    assert text.startswith("From 2.00 s to 2.60 s (0.60 s)")


def test_relayout_refetches_window_and_reset(session: Path) -> None:
    assert window_from_relayout({"xaxis.range[0]": 1, "xaxis.range[1]": 2}) == (1.0, 2.0)
    assert window_from_relayout({"xaxis.autorange": True}) is None
    assert window_from_relayout({"legend.x": 3}) is False and window_from_relayout(None) is False
    up = session_update(session, trigger="zoom", relayout={"xaxis.range[0]": 2.0, "xaxis.range[1]": 2.4},
                        view={"window": None}, max_points=100, zoom_max_points=10_000)
    assert up.view == {"window": [2.0, 2.4]} and up.figure["layout"]["xaxis"]["range"] == [2.0, 2.4]
    assert up.figure["layout"]["meta"]["full_resolution"]
    assert up.figure["layout"]["meta"]["window"] == pytest.approx([1.9, 2.5])  # 25 % margin each side
    unchanged = session_update(session, trigger="zoom", relayout={"dragmode": "pan"}, view={"window": [2, 3]})
    assert unchanged.figure is None and unchanged.view is None
    reset = session_update(session, trigger="zoom", relayout={"xaxis.autorange": True}, view={"window": [2, 3]})
    assert reset.view == {"window": None} and reset.figure["layout"]["xaxis"]["autorange"] is True


# ---------------------------------------------------------------------------------------------------- index
def test_session_index_picks_up_new_files_skips_others(session: Path, fused_session: Path, tmp_path: Path) -> None:
    shutil.copy(session, tmp_path / "S007_walk.h5")
    with h5py.File(tmp_path / "not_a_session.h5", "w") as f:
        f["x"] = 1
    (tmp_path / ".hidden.h5").write_bytes(b"")
    index = SessionIndex(tmp_path, key=b"k" * 32)
    rows = index.scan()
    assert len(rows) == 1 and index.n_unreadable == 1
    row = rows[0]
    assert row["subject"] == "S007" and row["date"] == "2026-02-03" and row["n_events"] == 18
    assert row["modalities"].startswith("forceplate, markers") and row["duration_s"] == pytest.approx(4.93)
    assert "S007" not in row["id"] and "walk" not in row["id"]
    assert index.path_of(row["id"]) == tmp_path / "S007_walk.h5"
    assert SessionIndex(tmp_path, key=b"k" * 32).scan()[0]["id"] == row["id"]  # stable across restarts
    assert SessionIndex(tmp_path, key=b"j" * 32).scan()[0]["id"] != row["id"]  # keyed
    (tmp_path / "sub").mkdir()
    shutil.copy(fused_session, tmp_path / "sub" / "S008.h5")
    rows = index.scan()
    assert len(rows) == 2
    fused_row = next(r for r in rows if r["n_conflicts"])
    assert fused_row["n_conflicts"] == 1
    assert [r["n_conflicts"] for r in sort_rows(rows, "n_conflicts", descending=True)] == [1, 0]
    assert len(filter_rows(rows, "s007 2026-02 FORCEPLATE")) == 2
    assert len(filter_rows(rows, "normalised by body mass")) == 2  # warnings are searchable too
    assert filter_rows(rows, "nobody") == []
    with pytest.raises(ValueError, match="Allowed values"):
        sort_rows(rows, "path")


# ---------------------------------------------------------------------------------------------------- overview cache
def test_overview_cache_identical_to_uncached_and_rebuilt_when_the_file_changes(fused_session: Path,
                                                                                tmp_path: Path) -> None:
    import json
    import os

    from fusionlab.app._data import OverviewCache, figure_for_view

    path = tmp_path / "s.h5"
    shutil.copy(fused_session, path)
    cache = OverviewCache(tmp_path / "private" / "cache")
    sid = "0123456789abcdef01234567"
    uncached = session_figure(path, max_points=400)
    first = cache.get(path, sid, None, 400)
    assert cache.n_built == 1
    again = cache.get(path, sid, None, 400)
    assert cache.n_built == 1  # read from disk, not rebuilt
    # identical to the uncached figure (the JSON the browser receives)
    assert json.dumps(first, sort_keys=True) == json.dumps(uncached, sort_keys=True)
    assert json.dumps(again, sort_keys=True) == json.dumps(uncached, sort_keys=True)
    f = cache.file_of(sid)
    assert f.is_file() and (f.stat().st_mode & 0o777) == 0o600
    assert "walk" not in f.read_text() and "S007" not in f.read_text().split('"entries"')[0]  # key: no file name
    # via figure_for_view, as the page does; other trace choices and max_points are separate entries
    assert json.dumps(figure_for_view(path, None, None, max_points=400, overviews=cache, sid=sid),
                      sort_keys=True) == json.dumps(uncached, sort_keys=True)
    assert cache.n_built == 1
    with open_session(path) as r:
        markers = next(n for n in r.stream_names if n.endswith(".markers"))
    one = [TraceKey(markers, "LHEE", "z").encode()]
    assert json.dumps(cache.get(path, sid, one, 400), sort_keys=True) == \
        json.dumps(session_figure(path, traces=one, max_points=400), sort_keys=True)
    assert cache.n_built == 2
    cache.get(path, sid, None, 300)
    assert cache.n_built == 3
    # the session file changes (new fusion result stored): rebuilt, and the new content is shown
    t = np.arange(0.7, 5.4, 0.01)
    sig = FusedSignal("hip_angle", t, np.stack([np.sin(t)], axis=1), np.full((len(t), 1), 1e-4), ("left_hip",),
                      ("rad",), frame="joint:sagittal", inputs=("markers",))
    store_fusion(path, [FusionResult("hips", "test-model", signals=[sig])])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000))
    changed = cache.get(path, sid, None, 400)
    assert cache.n_built == 4
    assert any("hip" in a["text"] for a in changed["layout"]["annotations"])
    assert json.dumps(changed, sort_keys=True) == json.dumps(session_figure(path, max_points=400), sort_keys=True)
    assert len(json.loads(f.read_text())["entries"]) == 1  # the old file version's entries are dropped
    # a damaged cache file is rebuilt, not an error
    f.write_text("{not json")
    assert json.dumps(cache.get(path, sid, None, 400), sort_keys=True) == json.dumps(changed, sort_keys=True)
    assert cache.n_built == 5
    with pytest.raises(ValueError, match="opaque session id"):
        cache.file_of("../etc/passwd")


def test_session_figure_reads_only_the_drawn_channels(session: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fusionlab.persist import SessionReader

    asked: list[tuple[str, object]] = []
    orig = SessionReader.read_stream

    def spy(self, name, *a, **kw):  # type: ignore[no-untyped-def]
        asked.append((name, kw.get("channels")))
        return orig(self, name, *a, **kw)

    monkeypatch.setattr(SessionReader, "read_stream", spy)
    with open_session(session) as r:
        markers = next(n for n in r.stream_names if n.endswith(".markers"))
    keys = [TraceKey(markers, "LHEE", "z").encode(), TraceKey(markers, "RHEE", "z").encode()]
    fig = session_figure(session, traces=keys)
    assert asked == [(markers, ["LHEE", "RHEE"])]
    monkeypatch.undo()
    with open_session(session) as r:
        z = r.read_stream(markers).data[:, r.stream_info(markers)["channels"].index("RHEE"), 2]
    drawn = next(tr for tr in fig["data"] if tr["name"].startswith("markers RHEE"))
    y = decode_array(drawn["y"])
    assert np.nanmax(y) == pytest.approx(np.nanmax(z), rel=1e-6)


def test_overview_prebuild_skips_stored_and_rebuilds_changed(session: Path, tmp_path: Path) -> None:
    import os

    from fusionlab.app._data import OverviewCache, default_traces

    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    shutil.copy(session, a)
    shutil.copy(session, b)
    cache = OverviewCache(tmp_path / "cache")
    items = [("aaaa", a), ("bbbb", b), ("cccc", tmp_path / "gone.h5")]  # a missing file is skipped quietly
    assert cache.prebuild(items, 300) == 2
    assert cache.prebuild(items, 300) == 0  # known to be stored: nothing read, nothing built
    with open_session(a) as r:
        traces = default_traces(r)
    fresh = OverviewCache(tmp_path / "cache")  # after a restart: read from disk, not rebuilt
    fresh.get(a, "aaaa", traces, 300)
    assert fresh.n_built == 0
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 1_000_000))  # b changed
    assert cache.prebuild_in_background(items, 300)
    cache.wait(60)
    assert cache.n_built == 3
