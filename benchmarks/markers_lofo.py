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
    plate_calibrated(trials)
    pelvis_free(trials)
    crops = [edge_crops(trials), edge_crops(load_other_walks(args.data), title="other shared C3D walks")]
    print("\n  pooled over both (the source of EDGE_SD_S and EDGE_FIRST_SAMPLE_SD_S):")
    rows = [r for c in crops for r in c["rows"] if r["found"]]
    for rule in sorted({r["rule"] for r in rows}):
        err = np.array([r["err"] for r in rows if r["rule"] == rule]) * 1000
        print(f"    {rule!r}: n={len(err)}, RMS {np.sqrt(np.mean(err ** 2)):.1f} ms")
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



def plate_calibrated(trials: dict[str, dict[str, Any]]) -> None:
    """Tried, not kept: the strike delay calibrated per trial from its own clean force-plate strikes (plate onset
    minus the published Zeni maximum of the same side, median over the trial's other plate strikes: a strike's own
    plate is never used for it; same side if any, else the other side, else the 30 ms default)."""
    from fusionlab.gait._markers import GaitZeni
    from tests.test_gait_markers import match

    pub, v5 = GaitZeni(strike_delay_s=None), GaitZeni()
    errs: dict[str, list[tuple[str, float]]] = {"v5 default (30 ms)": [], "plate-calibrated, same side first": []}
    for name, tr in trials.items():
        res, r5 = pub._detect_stream(tr["m"]), v5._detect_stream(tr["m"])
        if res is None or r5 is None:
            continue
        zen = [e for e in res.events if e.kind == "foot_strike"]
        fp = [e for e in tr["fp"] if e.kind == "foot_strike"]
        pairs = []
        for i, z in enumerate(zen):
            near = [f for f in fp if f.side == z.side and abs(f.time_s - z.time_s) < 0.15]
            if near:
                f = min(near, key=lambda f, z=z: abs(f.time_s - z.time_s))
                pairs.append((i, z.side, f.time_s - z.time_s))
        cal = []
        for i, z in enumerate(zen):
            same = [d for j, s, d in pairs if j != i and s == z.side]
            other = [d for j, s, d in pairs if j != i]
            cal.append((z.side, z.time_s + float(np.median(same or other)) if (same or other) else z.time_s + 0.03))
        for side in ("left", "right"):
            ann = [e.time_s for e in tr["ann"] if e.kind == "foot_strike" and e.side == side]
            errs["plate-calibrated, same side first"] += [(name, e) for e in match(
                [t for s, t in cal if s == side], ann)]
            errs["v5 default (30 ms)"] += [(name, e) for e in match(
                [e.time_s for e in r5.events if e.kind == "foot_strike" and e.side == side], ann)]
    print("\n=== tried, not kept: strike delay calibrated from the trial's own other clean plate strikes (ms)")
    for label, v in errs.items():
        a = np.abs([e for _, e in v]) * 1000
        og = np.abs([e for n, e in v if LAB[n] != "treadmill"]) * 1000
        print(f"  {label:36s} all: median {np.median(a):5.1f} p95 {np.percentile(a, 95):5.1f} (n={len(a)}) | "
              f"overground: median {np.median(og):5.1f} p95 {np.percentile(og, 95):5.1f} (n={len(og)})")


# MANIFEST's negative-test files among the other walks: their marker data do not decode to a walk (sample11_evart:
# most frames of every marker near (0.14, 0.14, 0.14) m; sample28_BTS_*: no POINT:RATE, duplicate labels, 1-4 km of
# marker travel), so neither the full walk nor a crop of it has true events; listed apart in the crop counts
NEGATIVE_TEST = ("sample11_evart", "sample28_BTS_")


def crop(m: Any, i0: int, i1: int) -> Any:
    """Samples [i0, i1) of a marker stream (as a lab exporting a tighter trial would)."""
    import dataclasses

    if m.time_s is not None:
        return dataclasses.replace(m, data=m.data[i0:i1], time_s=m.time_s[i0:i1])
    return dataclasses.replace(m, data=m.data[i0:i1], start_s=float(m.times()[i0]))


def load_other_walks(data: Path) -> dict[str, dict[str, Any]]:
    """Markers stream of every other shared C3D file with foot markers and at least 200 samples (no annotations):
    only used for the recording-edge crops, whose truth is the full walk's own events."""
    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.gait._markers import _foot_markers

    names = {Path(rel).name for rel in C3D_FILES}
    out = {}
    for path in sorted(p for p in data.rglob("*") if p.suffix.lower() == ".c3d" and p.name not in names):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = read_c3d(path)
        except Exception:  # some shared files are format tests without a readable markers stream
            continue
        ms = [st for st in trial.streams if st.modality == "markers" and st.data.ndim == 3]
        if ms and _foot_markers(ms[0].channels) and ms[0].n_samples >= 200:
            out[path.stem] = {"m": ms[0], "ann": []}
    return out


def _unmatched(events: list[Any], truth: list[Any], name: str) -> list[tuple[str, str, str, float]]:
    return [(name, x.kind, x.label, round(x.time_s, 3)) for x in events
            if not any(y.kind == x.kind and y.side == x.side and abs(y.time_s - x.time_s) < 0.1 for y in truth)]


def edge_crops(trials: dict[str, dict[str, Any]], det: Any = None, quiet: bool = False,
               title: str = "annotated walks") -> dict[str, Any]:
    """Recording edges on real walks: every interior Zeni event of the full data (>= 0.4 s from its edges) is cut
    out of the recording at k samples from its extremum (strike: maximum = event - delay; off: minimum), k from
    -EDGE_ZONE_S to +EDGE_ZONE_S of samples (negative: the extremum itself is outside the cropped data), once as
    the first and once as the last sample; 1.5 s of data are kept on the other side. The cropped walk is detected
    again and its events compared with the full walk's (the truth here, so the lab annotations play no part):
    recall and error per rule and k, and every cropped event with no full-walk event of its kind and side within
    100 ms (a false event created by the crop), also over 1.5 s crops starting at every other sample (every phase of
    the gait cycle at both edges, e.g. mid-swing and mid-stance). No parameter is fitted here; this is the source of
    ``EDGE_SD_S`` and ``EDGE_FIRST_SAMPLE_SD_S``."""
    from fusionlab.gait._markers import EDGE_ZONE_S, GaitZeni

    det = det or GaitZeni()
    rows: list[dict[str, Any]] = []
    false: list[tuple[str, str, str, float]] = []
    for name, tr in trials.items():
        if name == "sample09_VER4C3D":
            continue
        m = tr["m"]
        t = m.times()
        rate = float(m.rate_hz)
        n = len(t)
        full = det._detect_stream(m)
        if full is None:
            continue
        ref = [e for e in full.events if not e.label and t[0] + 0.4 < e.time_s < t[-1] - 0.4]
        keep = round(1.5 * rate)  # a shorter overground walk (< 1 m) looks like a treadmill
        nz = round(EDGE_ZONE_S * rate)
        for e in ref:
            t_ext = e.time_s - (det.strike_delay_s or 0.0 if e.kind == "foot_strike" else 0.0)
            i_ext = int(np.floor((t_ext - t[0]) * rate))
            for at_start in (True, False):
                for k in range(-nz, nz + 1):
                    i0, i1 = (i_ext - k, i_ext - k + keep) if at_start else (i_ext + 1 + k - keep, i_ext + 1 + k)
                    if i0 < 0 or i1 > n:
                        continue
                    res = det._detect_stream(crop(m, i0, i1))
                    evs = res.events if res is not None else []
                    own = [x for x in evs if x.kind == e.kind and x.side == e.side and abs(x.time_s - e.time_s) < 0.1]
                    hit = min(own, key=lambda x: abs(x.time_s - e.time_s), default=None)
                    ann = [a.time_s for a in tr["ann"] if a.kind == e.kind and a.side == e.side
                           and abs(a.time_s - e.time_s) < 0.1]
                    rows.append({"file": name, "kind": e.kind, "start": at_start, "k": k, "found": hit is not None,
                                 "t_edge": float(t[i0] if at_start else t[i1 - 1]), "truth": e.time_s,
                                 "ann": min(ann, key=lambda a: abs(a - e.time_s), default=None),
                                 "err": (hit.time_s - e.time_s) if hit else None,
                                 "rule": (hit.label.split(":")[1].strip()[:16] if hit and hit.label else "normal")
                                 if hit else None, "sd": hit.sd_s if hit else None})
                    false += _unmatched(evs, full.events, name)
        for i0 in range(0, n - keep + 1, 2):  # every phase of the gait cycle at both edges
            res = det._detect_stream(crop(m, i0, i0 + keep))
            false += _unmatched(res.events if res is not None else [], full.events, name)
    false = sorted(set(false))
    if not quiet:
        print(f"\n=== recording-edge crops of the {title} ({det.detector_id}): recall (median |error| vs the full "
              "walk, ms) by the extremum's distance k from the edge (samples; < 0: the extremum is outside the data)")
        for kind in ("foot_strike", "foot_off"):
            for at_start in (True, False):
                cells = []
                for kk in sorted({r["k"] for r in rows}):
                    sel = [r for r in rows if r["kind"] == kind and r["start"] == at_start and r["k"] == kk]
                    if not sel:
                        continue
                    f = [r for r in sel if r["found"]]
                    med = np.median(np.abs([r["err"] for r in f])) * 1000 if f else float("nan")
                    cells.append(f"{kk:+d}:{len(f)}/{len(sel)}({med:.0f})")
                print(f"  {kind} at the {'start' if at_start else 'end'}: " + " ".join(cells))
        for rule in sorted({r["rule"] for r in rows if r["found"]}):
            err = np.array([r["err"] for r in rows if r["found"] and r["rule"] == rule]) * 1000
            sds = np.array([r["sd"] for r in rows if r["found"] and r["rule"] == rule]) * 1000
            print(f"  rule {rule!r}: n={len(err)}, median {np.median(err):+.1f} ms, |e| median "
                  f"{np.median(np.abs(err)):.1f} p95 {np.percentile(np.abs(err), 95):.1f} max "
                  f"{np.abs(err).max():.1f} ms, RMS {np.sqrt(np.mean(err ** 2)):.1f} ms; mean sd_s {sds.mean():.1f} ms")
        edge = [f for f in false if f[2].startswith("edge")]
        print(f"  events of a cropped walk with no full-walk event within 100 ms: {len(false)} distinct, of which "
              f"{len(edge)} from the edge rules" + "".join(f"\n    {f}" for f in edge[:20]))
        per_file: dict[str, int] = {}
        for f in false:
            per_file[f[0]] = per_file.get(f[0], 0) + 1
        print(f"  per file (MANIFEST negative-test files {NEGATIVE_TEST}: corrupt marker data, the full walk is no "
              f"truth there): {per_file}")
    return {"rows": rows, "false": false}


if __name__ == "__main__":
    sys.exit(main())
