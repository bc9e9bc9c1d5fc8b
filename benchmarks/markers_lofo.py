"""Out-of-sample check of the Zeni foot-strike refinements: leave-one-file-out (LOFO) and leave-one-lab-out (LOLO).

Run:  python benchmarks/markers_lofo.py [--data ../shared/data]

Each refinement family has one free parameter. For every held-out fold the parameter is chosen on the other folds
(smallest pooled median absolute strike error against the lab annotations) and the held-out file(s) are scored
with it; the held-out errors are pooled. The two sample09 files (one trial exported twice) are always in the same
fold. Labs: btk PiG, sample00 MAC, sample00 Vicon pyCGM2, sample03 (2 files), sample04, sample09, sample11,
sample23, gaitalytics treadmill. "overground" repeats everything without the treadmill file (21 of ~74 matches).
Scoring rule as tests/test_gait_markers.py (nearest annotation of the kind and side within 100 ms, one-to-one).
The force-plate rows compare the same detections with GaitForcePlate's clean strikes instead of the annotations;
the convention table compares the annotations themselves with the plate onsets, and the published Zeni maximum with
the plate onsets per lab and side. Two-parameter families (heel rest + delay) choose the pair on the training folds.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.validate_shared import C3D_FILES  # noqa: E402

LAB = {"PiG_Motion-FlatFoot-Full": "btk PiG", "PiG_Motion-FlatFoot-Hole": "btk PiG",
       "sample00_MAC_Walk1": "sample00 MAC", "sample00_vicon_pyCGM2_CGM24_Walking01": "sample00 pyCGM2",
       "sample03_gait-pig": "sample03", "sample03_gait-pig-nz": "sample03", "sample04_sub_labels": "sample04",
       "sample09_PlugInC3D": "sample09", "sample09_VER4C3D": "sample09", "sample11_2198928": "sample11",
       "sample23_Vicon_analysis": "sample23", "treadmill_events": "treadmill"}


def load(data: Path, folder: Path) -> dict[str, dict[str, Any]]:
    """Markers stream, annotations and clean force-plate events of every annotated walk."""
    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.gait._forceplate import GaitForcePlate
    from fusionlab.persist import open_session, save_session

    out = {}
    for rel in C3D_FILES:
        dst = folder / (Path(rel).stem + ".h5")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            save_session(read_c3d(data / rel), dst)
        with open_session(dst) as r:
            out[Path(rel).stem] = {"m": r.read_stream(r.find_streams(modality="markers")[0]),
                                   "ann": r.events(source="annotation", clock="device"),
                                   "fp": [e for res in GaitForcePlate().detect(r).results_ for e in res.events]}
    return out


def per_file(det: Any, trials: dict[str, dict[str, Any]], ref: str = "ann",
             kind: str = "foot_strike") -> dict[str, dict[str, Any]]:
    from tests.test_gait_markers import score

    out = {}
    for name, tr in trials.items():
        res = det._detect_stream(tr["m"])
        one: dict[str, Any] = {}
        score(res.events if res is not None else [], tr[ref], one, kinds=(kind,))
        out[name] = one[kind]
    return out


def pool(parts: list[dict[str, Any]]) -> dict[str, float]:
    err = [e for p in parts for e in p["err"]]
    a = np.abs(err) * 1000
    n, det = sum(p["n"] for p in parts), sum(p["det"] for p in parts)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "recall": len(a) / max(n, 1),
            "precision": len(a) / max(det, 1), "n": len(a), "bias_ms": float(np.median(err) * 1000)}


def held_out(grid: dict[Any, dict[str, dict[str, Any]]], names: list[str],
             fold: Callable[[str], str]) -> tuple[dict[str, float], dict[str, Any]]:
    held, chosen = [], {}
    for f in sorted({fold(n) for n in names}):
        train = [n for n in names if fold(n) != f]
        best = min(grid, key=lambda p: pool([grid[p][n] for n in train])["median_ms"])
        chosen[f] = best
        held += [grid[best][n] for n in names if fold(n) == f]
    return pool(held), chosen


def main(argv: list[str] | None = None) -> int:
    from fusionlab.gait._markers import GaitZeni

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as td:
        trials = load(args.data, Path(td))
    families: dict[str, tuple[list[Any], Callable[[Any], GaitZeni]]] = {
        "published (no refinement)": ([None], lambda p: GaitZeni(strike_delay_s=None)),
        "delay, constant (s; v3 default)": (
            [0.0, 0.01, 0.02, 0.025, 0.03, 0.035, 0.04, 0.05], lambda p: GaitZeni(strike_delay_s=p)),
        "delay, fraction of stride (v2)": (
            [0.015, 0.02, 0.025, 0.0275, 0.03, 0.0325, 0.035, 0.04],
            lambda p: GaitZeni(strike_delay_stride_fraction=p)),
        "heel speed threshold (m/s; v1)": (
            [0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7, 0.8], lambda p: GaitZeni(refine_strike_m_per_s=p)),
        "heel rest (m/s) + delay (s) for ankle": (
            [(w, d) for w in (0.01, 0.02, 0.03, 0.05, 0.08) for d in (0.02, 0.025, 0.03, 0.035, 0.04)],
            lambda p: GaitZeni(heel_rest_m_per_s=p[0], strike_delay_s=p[1])),
    }

    def by_file(n: str) -> str:
        return "sample09" if n.startswith("sample09") else n

    def by_lab(n: str) -> str:
        return LAB[n]

    overground = [n for n in trials if LAB[n] != "treadmill"]
    for subset, names in (("all files", list(trials)), ("overground", overground)):
        print(f"\n=== foot strike, {subset}: in-sample (best parameter) | LOFO | LOLO  (median / p95 ms, recall, "
              "precision)")
        for label, (params, make) in families.items():
            grid = {p: per_file(make(p), {n: trials[n] for n in names}) for p in params}
            best = min(grid, key=lambda p: pool(list(grid[p].values()))["median_ms"])
            ins = pool(list(grid[best].values()))
            lofo, _ = held_out(grid, names, by_file)
            lolo, chosen = held_out(grid, names, by_lab)
            print(f"  {label:38s} in {ins['median_ms']:5.1f} / {ins['p95_ms']:5.1f} ({best}) | LOFO "
                  f"{lofo['median_ms']:5.1f} / {lofo['p95_ms']:5.1f} | LOLO {lolo['median_ms']:5.1f} / "
                  f"{lolo['p95_ms']:5.1f} | recall {lolo['recall']:.3f} precision {lolo['precision']:.3f} "
                  f"n={lolo['n']} | LOLO choices {sorted(set(chosen.values()), key=str)}")
    conventions(trials)
    pelvis_free(trials)
    print("\n=== per lab, signed median error (ms) against annotations | against force plates (n)")
    for label, d in (("v3 default (30 ms)", GaitZeni()), ("published", GaitZeni(strike_delay_s=None)),
                     ("heel rest 0.03 m/s", GaitZeni(heel_rest_m_per_s=0.03))):
        ann = per_file(d, trials)
        fp = per_file(d, trials, ref="fp")
        labs = sorted({LAB[n] for n in trials})
        cells = []
        for lab in labs:
            names = [n for n in trials if LAB[n] == lab and n != "sample09_VER4C3D"]
            a = [e for n in names for e in ann[n]["err"]]
            f = [e for n in names for e in fp[n]["err"]]
            cells.append(f"{lab}: {np.median(a) * 1000:+.0f} | " + (f"{np.median(f) * 1000:+.0f} ({len(f)})" if f
                                                                      else "-"))
        fps = pool([fp[n] for n in trials if n != "sample09_VER4C3D"])
        print(f"  {label}: " + "; ".join(cells) + f"; pooled against force plates: median {fps['median_ms']:.1f} ms "
              f"(n={fps['n']})")
    det = GaitZeni()
    offs = pool(list(per_file(det, trials, kind="foot_off").values()))
    print(f"\nfoot off (unchanged by the strike refinement): median {offs['median_ms']:.1f} ms, "
          f"p95 {offs['p95_ms']:.1f} ms, recall {offs['recall']:.3f}, precision {offs['precision']:.3f}")
    return 0


def pelvis_free(trials: dict[str, dict[str, Any]]) -> None:
    """The pelvis-free strike criterion of GaitZeni's fallback (`_pelvis_free_strikes`) run on every overground
    stance, as if the pelvis were missing, against the Zeni strike (same 30 ms delay) of the same foot within 100 ms and
    against the annotations: the source of ``PELVIS_FREE_SD_S`` (no parameter is fitted; V is measured per stride)."""
    from fusionlab.gait._markers import STRIKE_DELAY_S, GaitZeni, _heel_like, _pelvis_free_strikes, _prepare
    from fusionlab.gait.base import GaitResult
    from tests.test_gait_markers import match

    vs_zeni, vs_ann = [], []
    for name, tr in trials.items():
        if name == "sample09_VER4C3D" or LAB[name] == "treadmill":
            continue
        det = GaitZeni()
        walk = _prepare(tr["m"], det.cutoff_hz, det.max_turn_deg_per_s)
        res = det._detect_stream(tr["m"])
        for side in walk.feet:
            heel = _heel_like(walk.feet[side], side, GaitResult("", "", (), ""))
            if heel is None:
                continue
            pf = [t + STRIKE_DELAY_S for _, t, _, _ in _pelvis_free_strikes(heel, walk)]
            zen = [e.time_s for e in res.events if e.kind == "foot_strike" and e.side == side]
            ann = [e.time_s for e in tr["ann"] if e.kind == "foot_strike" and e.side == side]
            vs_zeni += match(pf, zen)
            vs_ann += match(pf, ann)
    z, a = np.asarray(vs_zeni) * 1000, np.asarray(vs_ann) * 1000
    print("\n=== pelvis-free strike (heel forward speed falls to the stride's walking speed, + 30 ms), overground, "
          "sample09 once")
    print(f"  minus Zeni v3 (n={len(z)}): median {np.median(z):+.1f} ms, robust SD "
          f"{1.4826 * np.median(np.abs(z - np.median(z))):.1f} ms, RMS {np.sqrt(np.mean(z ** 2)):.1f} ms, max |.| "
          f"{np.abs(z).max():.1f} ms")
    print(f"  against the annotations (n={len(a)}): median |e| {np.median(np.abs(a)):.1f} ms, bias {np.median(a):+.1f} "
          f"ms, p95 {np.percentile(np.abs(a), 95):.1f} ms")


def conventions(trials: dict[str, dict[str, Any]]) -> None:
    """Do the labs annotate the strike at the plate onset (annotation convention), and how far does the published
    Zeni maximum lead the plate onset (per lab and side)? One clean plate strike pairs with the annotation of the
    same side within 100 ms; the published maximum pairs with the plate strike within 150 ms."""
    from fusionlab.gait._markers import GaitZeni
    from tests.test_gait_markers import match

    print("\n=== annotation convention and Zeni lead, against clean force-plate strikes (ms; median [min, max] (n))")
    pub = GaitZeni(strike_delay_s=None)
    rows: dict[str, dict[str, list[float]]] = {}
    for name, tr in trials.items():
        if name == "sample09_VER4C3D":
            continue
        res = pub._detect_stream(tr["m"])
        for side in ("left", "right"):
            fp = [e.time_s for e in tr["fp"] if e.kind == "foot_strike" and e.side == side]
            ann = [e.time_s for e in tr["ann"] if e.kind == "foot_strike" and e.side == side]
            zen = [e.time_s for e in res.events if e.kind == "foot_strike" and e.side == side] if res else []
            cell = rows.setdefault(LAB[name], {})
            cell.setdefault("ann - plate", []).extend(-np.array(match(fp, ann)))
            cell.setdefault(f"plate - Zeni max ({side})", []).extend(-np.array(match(zen, fp, 0.15)))

    def fmt(v: list[float]) -> str:
        a = np.asarray(v) * 1000
        return f"{np.median(a):+4.0f} [{a.min():+4.0f}, {a.max():+4.0f}] ({len(a)})" if len(a) else "-"

    for lab, cell in sorted(rows.items()):
        print(f"  {lab:16s} " + "; ".join(f"{k}: {fmt(v)}" for k, v in cell.items()))


if __name__ == "__main__":
    sys.exit(main())
