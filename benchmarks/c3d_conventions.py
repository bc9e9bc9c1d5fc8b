"""Metamorphic check: the same walks written with other labs' C3D conventions must give the same gait events.

Run:  python benchmarks/c3d_conventions.py [--data ../shared/data] [--only FAMILY,...] [--json]

Four annotated shared walks (Vicon Plug-in-Gait overground, Motion Analysis overground, the gaitalytics treadmill,
a Vicon 120 Hz walk with a sacrum marker and no heel marker) are rewritten with ezc3d into a temporary folder:

- ``original``: the shared file itself (every variant is compared with it);
- ``identity``: read and written back by ezc3d unchanged (the control for the rewriting);
- renames (``name:*``): the foot and pelvis markers renamed consistently within a variant (side as a suffix, side
  words, subject prefix, lower case, CAST/IOR, OpenSim-like, Qualisys-like, other sacrum names);
- axes (``axes:*``): Y vertical (every point and the force-plate corners rotated; ``FORCE_PLATFORM:ORIGIN`` is in
  the plate's own axes and does not change), with ``POINT:Y_SCREEN`` "+Y", absent, or left at the original "+Z";
  walking along the other horizontal axis; walking the other way (both rotations about the vertical); the lab's z
  axis pointing down (``z_down``: 180 deg about x, ``POINT:Y_SCREEN`` "-Z");
- units (``units:m``): points in metres (``POINT:UNITS`` "m"; plate corners and origin, which are in
  ``POINT:UNITS``, scaled too);
- rate (``rate:N``): markers resampled to N Hz (cubic spline through each gap-free run, on the frames
  ``(first_frame + i) / N`` inside the original span, so the clock and the event times are kept); analog data and
  force plates dropped, model outputs dropped;
- event labels (``events:*``): the annotations relabelled in other systems' conventions (times unchanged).

Each copy is ingested and validated against its own annotations (`fusionlab validate --reference annotation`).
The table gives, per walk and variant, the Zeni and foot-velocity recall / precision / median |error| for foot
strikes (FS) and foot offs (FO), the number of annotations read (strikes/offs), and ``max|dt|``: the largest
difference between the variant's Zeni events and the original file's (matched by kind and side within 0.1 s;
``+k/-k``: events only in one of them). Nothing under ../shared/data is changed.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WALKS = {
    "pig": "btkdata/PiG_Motion-FlatFoot-Full.c3d",
    "mac": "c3d_org/sample00_MAC_Walk1.c3d",
    "treadmill": "gaitalytics/treadmill_events.c3d",
    "vicon120": "c3d_org/sample23_Vicon_analysis.c3d",
}

# name templates per role; {S} = L/R, {Side} = Left/Right, {s} = l/r
RENAMES: dict[str, dict[str, str]] = {
    "HEE_L": {"heel": "HEE_{S}", "toe": "TOE_{S}", "ankle": "ANK_{S}", "mt5": "MT5_{S}", "asis": "ASI_{S}",
              "psis": "PSI_{S}", "sacrum": "SACR"},
    "HEEL_L": {"heel": "HEEL_{S}", "toe": "TOE_{S}", "ankle": "ANKLE_{S}", "mt5": "MT5_{S}", "asis": "ASIS_{S}",
               "psis": "PSIS_{S}", "sacrum": "SACRUM"},
    "Heel_L": {"heel": "Heel_{S}", "toe": "Toe_{S}", "ankle": "Ankle_{S}", "mt5": "MT5_{S}", "asis": "ASIS_{S}",
               "psis": "PSIS_{S}", "sacrum": "Sacrum"},
    "HeelL": {"heel": "Heel{S}", "toe": "Toe{S}", "ankle": "Ankle{S}", "mt5": "Mt5{S}", "asis": "Asis{S}",
              "psis": "Psis{S}", "sacrum": "S1"},
    "LHeel": {"heel": "{S}Heel", "toe": "{S}Toe", "ankle": "{S}Ankle", "mt5": "{S}MT5", "asis": "{S}ASIS",
              "psis": "{S}PSIS", "sacrum": "V_Sacral"},
    "L_Heel": {"heel": "{S}_Heel", "toe": "{S}_Toe", "ankle": "{S}_Ankle", "mt5": "{S}_MT5", "asis": "{S}_ASIS",
               "psis": "{S}_PSIS", "sacrum": "sacrum"},
    "LeftHeel": {"heel": "{Side}Heel", "toe": "{Side}Toe", "ankle": "{Side}Ankle", "mt5": "{Side}MT5",
                 "asis": "{Side}ASIS", "psis": "{Side}PSIS", "sacrum": "SACR"},
    "Left_Heel": {"heel": "{Side}_Heel", "toe": "{Side}_Toe", "ankle": "{Side}_Ankle", "mt5": "{Side}_MT5",
                  "asis": "{Side}_ASIS", "psis": "{Side}_PSIS", "sacrum": "Sacrum"},
    "opensim": {"heel": "{S}.Heel", "toe": "{S}.Toe", "ankle": "{S}.Ankle", "mt5": "{S}.MT5", "asis": "{S}.ASIS",
                "psis": "{S}.PSIS", "sacrum": "Sacrum"},
    "qualisys": {"heel": "{S}Heel", "toe": "{S}ToeTip", "ankle": "{S}AnkleOut", "mt5": "{S}Forefoot5",
                 "asis": "{S}ASI", "psis": "{S}PSI", "sacrum": "SACR"},
    "cast_ior": {"heel": "{S}_FCC", "toe": "{S}_FM1", "ankle": "{S}_FAL", "mt5": "{S}_FM5", "asis": "{S}_IAS",
                 "psis": "{S}_IPS", "sacrum": "S1"},
}
RATES_HZ = (50.0, 60.0, 120.0, 150.0, 250.0)
# event label conventions: (strike, off) -> (label, context) per side
EVENT_STYLES: dict[str, Callable[[str, str], tuple[str, str]]] = {
    "vicon": lambda kind, side: ({"fs": "Foot Strike", "fo": "Foot Off"}[kind], side.title()),
    "one_label": lambda kind, side: (f"{side.title()} {({'fs': 'Foot Strike', 'fo': 'Foot Off'})[kind]}", ""),
    "mac": lambda kind, side: (f"{side[0].upper()}{({'fs': 'HS', 'fo': 'TO'})[kind]}", ""),
    "mac_in_context": lambda kind, side: ("", f"{side[0].upper()}{({'fs': 'HS', 'fo': 'TO'})[kind]}"),
    "heel_toe": lambda kind, side: ({"fs": "Heel Strike", "fo": "Toe Off"}[kind], side.title()),
    "ic_fc": lambda kind, side: ({"fs": "IC", "fo": "FC"}[kind], side.title()),
    "initial_final": lambda kind, side: ({"fs": "Initial Contact", "fo": "Final Contact"}[kind], side.title()),
    "foot_contact": lambda kind, side: ({"fs": "Foot Contact", "fo": "Foot Off"}[kind], side.title()),
    "lower_case": lambda kind, side: ({"fs": "foot strike", "fo": "foot off"}[kind], side.lower()),
}


# ---------------------------------------------------------------- helpers on an ezc3d object

def _params(c: Any, group: str) -> dict[str, Any]:
    return c["parameters"].get(group, {})


def _value(c: Any, group: str, name: str, default: Any = None) -> Any:
    entry = _params(c, group).get(name)
    return default if entry is None else entry["value"]


def _set(c: Any, group: str, name: str, value: Any) -> None:
    if group in c["parameters"] and name in c["parameters"][group]:
        c["parameters"][group][name]["value"] = value
    else:
        c.add_parameter(group, name, value)


def _labels(c: Any) -> list[str]:
    return [str(s).strip() for s in _value(c, "POINT", "LABELS", [])]


def _typed_points(c: Any) -> set[int]:
    """Indices of points that are not markers (angles, forces, moments, powers, scalars, reactions)."""
    labels = _labels(c)
    out: set[int] = set()
    for t in ("ANGLES", "FORCES", "MOMENTS", "POWERS", "SCALARS", "REACTIONS"):
        names = {str(s).strip() for s in _value(c, "POINT", t, [])}
        out |= {i for i, lab in enumerate(labels) if lab in names}
    return out


def _roles(labels: list[str]) -> dict[str, tuple[str, str]]:
    """Original label -> (role, side) for the foot and pelvis markers, as the unmodified walk names them (the
    shared walks' names are the ones fusionlab's rules were written for; checked by the identity row)."""
    from fusionlab.gait._markers import _foot_markers, _pelvis_candidates, _sided

    out: dict[str, tuple[str, str]] = {}
    for side, roles in _foot_markers(tuple(labels)).items():
        for role, ch in roles.items():
            out[ch] = (role, side)
    for cand in _pelvis_candidates(tuple(labels)):
        for ch in cand:
            hit = _sided(ch)
            if len(cand) == 1:
                out[ch] = ("sacrum", "general")
            elif hit is not None:
                out[ch] = ("asis" if hit[1].startswith("as") else "psis", hit[0])
    return out


def rename(c: Any, family: str) -> None:
    labels = _labels(c)
    if family == "subject_prefix":
        new = [f"Pat01:{lab}" for lab in labels]
    elif family == "lower_case":
        new = [lab.lower() for lab in labels]
    else:
        tmpl = RENAMES[family]
        roles = _roles(labels)
        new = list(labels)
        for i, lab in enumerate(labels):
            if lab in roles:
                role, side = roles[lab]
                s = {"left": "L", "right": "R"}.get(side, "")
                new[i] = tmpl[role].format(S=s, Side=side.title(), s=s.lower())
        # a duplicated original label (MAC: LANK twice) is renamed at every position, like a lab's rename would;
        # another marker that already has a new name (gaitalytics has LASIS and a second LASI) is moved aside
        renamed = {labels[i]: new[i] for i in range(len(labels)) if labels[i] in roles}
        for i, lab in enumerate(labels):
            if lab not in roles and lab in renamed.values():
                new[i] = f"{lab}_orig"
        clash = sorted({n for n in renamed.values() if sum(v == n for v in renamed.values()) > 1})
        if clash:
            raise RuntimeError(f"{family}: renamed labels collide: {clash}")
    _set(c, "POINT", "LABELS", new)
    # the point-type lists (POINT:ANGLES, MODELED_MARKERS, ...) name points by label: renamed with them
    mapping = {}
    for old_label, new_label in zip(labels, new, strict=True):
        mapping.setdefault(old_label, new_label)
    for key in ("ANGLES", "FORCES", "MOMENTS", "POWERS", "SCALARS", "REACTIONS", "MODELED_MARKERS"):
        members = _value(c, "POINT", key)
        if members:
            _set(c, "POINT", key, [mapping.get(str(m).strip(), str(m).strip()) for m in members])


def _rotate(c: Any, rot: np.ndarray) -> None:
    pts = c["data"]["points"]
    typed = _typed_points(c)
    idx = [i for i in range(pts.shape[1]) if i not in typed]
    pts[:3, idx, :] = np.einsum("ij,jkn->ikn", rot, pts[:3, idx, :])
    c["data"]["points"] = pts
    corners = _value(c, "FORCE_PLATFORM", "CORNERS")
    if corners is not None and np.size(corners):
        _set(c, "FORCE_PLATFORM", "CORNERS", np.einsum("ij,jkn->ikn", rot, np.asarray(corners, dtype=float)))


Y_UP = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])  # (x, y, z) -> (x, z, -y): old up (z) becomes +y
SIDEWAYS = np.array([[0, -1.0, 0], [1.0, 0, 0], [0, 0, 1.0]])  # 90 deg about z: walking along x -> along y
REVERSE = np.diag([-1.0, -1.0, 1.0])  # 180 deg about z
DOWN = np.diag([1.0, -1.0, -1.0])  # 180 deg about x: the lab's z axis points down


def axes(c: Any, variant: str) -> None:
    if variant.startswith("y_up"):
        _rotate(c, Y_UP)
        if variant == "y_up":
            _set(c, "POINT", "X_SCREEN", ["+X"])
            _set(c, "POINT", "Y_SCREEN", ["+Y"])
        elif variant == "y_up_undeclared":
            for key in ("X_SCREEN", "Y_SCREEN"):
                c["parameters"]["POINT"].pop(key, None)
        # y_up_stale: X_SCREEN / Y_SCREEN left as the original file has them ("+Z" up): wrong on purpose
    elif variant == "sideways":
        _rotate(c, SIDEWAYS)
    elif variant == "reverse":
        _rotate(c, REVERSE)
    elif variant == "z_down":
        _rotate(c, DOWN)
        _set(c, "POINT", "Y_SCREEN", ["-Z"])
    else:
        raise ValueError(variant)


def metres(c: Any) -> None:
    unit = str(_value(c, "POINT", "UNITS", ["mm"])[0]).strip()
    if unit != "mm":
        raise RuntimeError(f"expected mm, found {unit!r}")
    pts = c["data"]["points"]
    typed = _typed_points(c)
    idx = [i for i in range(pts.shape[1]) if i not in typed]
    pts[:3, idx, :] *= 1e-3
    c["data"]["points"] = pts
    _set(c, "POINT", "UNITS", ["m"])
    if "MODELED_MARKER_UNITS" in _params(c, "POINT"):
        _set(c, "POINT", "MODELED_MARKER_UNITS", ["m"])
    for key in ("CORNERS", "ORIGIN"):
        v = _value(c, "FORCE_PLATFORM", key)
        if v is not None and np.size(v):
            _set(c, "FORCE_PLATFORM", key, np.asarray(v, dtype=float) * 1e-3)


def relabel_events(c: Any, style: str) -> None:
    from fusionlab.model import normalise_event

    labels = [str(s).strip() for s in _value(c, "EVENT", "LABELS", [])]
    contexts = [str(s).strip() for s in _value(c, "EVENT", "CONTEXTS", [])]
    new_l, new_c = [], []
    for i, lab in enumerate(labels):
        ctx = contexts[i] if i < len(contexts) else ""
        if not lab:
            lab, ctx = ctx, ""
        kind, side = normalise_event(lab, ctx)  # the original file's own convention, read by the current rule
        if kind in ("foot_strike", "foot_off") and side in ("left", "right"):
            lab, ctx = EVENT_STYLES[style]("fs" if kind == "foot_strike" else "fo", side)
        new_l.append(lab)
        new_c.append(ctx)
    _set(c, "EVENT", "LABELS", new_l)
    _set(c, "EVENT", "CONTEXTS", new_c)


def resample(src: Path, dst: Path, rate_hz: float) -> None:
    """Markers only, resampled to ``rate_hz`` on the original clock (cubic spline per gap-free run)."""
    import ezc3d
    from scipy.interpolate import CubicSpline

    c = ezc3d.c3d(str(src))
    rate = float(c["header"]["points"]["frame_rate"])
    ff = int(c["header"]["points"]["first_frame"])
    pts = c["data"]["points"][:3]
    typed = _typed_points(c)
    labels = _labels(c)
    idx = [i for i in range(pts.shape[1]) if i not in typed]
    t_old = (ff + np.arange(pts.shape[2])) / rate
    ff_new = math.ceil(t_old[0] * rate_hz - 1e-9)
    n_new = math.floor(t_old[-1] * rate_hz + 1e-9) - ff_new + 1
    t_new = (ff_new + np.arange(n_new)) / rate_hz
    out = np.full((4, len(idx), n_new), np.nan)
    out[3] = 1.0
    for k, i in enumerate(idx):
        x = pts[:, i, :].T.astype(float)
        ok = np.isfinite(x).all(axis=1) & ~np.all(x == 0.0, axis=1)
        d = np.diff(np.concatenate([[0], ok.astype(np.int8), [0]]))
        for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
            if b - a < 4:
                continue
            inside = (t_new >= t_old[a] - 1e-9) & (t_new <= t_old[b - 1] + 1e-9)
            out[:3, k, inside] = CubicSpline(t_old[a:b], x[a:b], axis=0)(t_new[inside]).T
    new = ezc3d.c3d()
    new["parameters"]["POINT"]["RATE"]["value"] = [rate_hz]
    new["parameters"]["POINT"]["LABELS"]["value"] = [labels[i] for i in idx]
    new["parameters"]["POINT"]["UNITS"]["value"] = list(_value(c, "POINT", "UNITS", ["mm"]))
    for key in ("X_SCREEN", "Y_SCREEN"):
        if key in _params(c, "POINT"):
            new.add_parameter("POINT", key, list(_value(c, "POINT", key)))
    new["data"]["points"] = out
    for key in ("USED", "TIMES", "LABELS", "CONTEXTS", "ICON_IDS", "GENERIC_FLAGS", "DESCRIPTIONS", "SUBJECTS"):
        v = _value(c, "EVENT", key)
        if v is not None:
            a = np.asarray(v)
            new.add_parameter("EVENT", key, list(v) if isinstance(v, list)
                              else [int(x) for x in a.ravel()] if a.dtype.kind in "iu" else a.astype(float))
    new["header"]["points"]["first_frame"] = int(ff_new)
    new.add_parameter("TRIAL", "ACTUAL_START_FIELD", [ff_new + 1, 0])
    new.add_parameter("TRIAL", "ACTUAL_END_FIELD", [ff_new + n_new, 0])
    new.write(str(dst))


def variants() -> list[str]:
    out = ["original", "identity"]
    out += [f"name:{f}" for f in (*RENAMES, "subject_prefix", "lower_case")]
    out += ["axes:y_up", "axes:y_up_undeclared", "axes:y_up_stale", "axes:sideways", "axes:reverse", "axes:z_down",
            "units:m"]
    out += [f"rate:{r:g}" for r in RATES_HZ]
    out += [f"events:{s}" for s in EVENT_STYLES]
    return out


def write_variant(src: Path, dst: Path, variant: str) -> None:
    import ezc3d

    family, _, arg = variant.partition(":")
    if family == "original":
        shutil.copyfile(src, dst)
        return
    if family == "rate":
        resample(src, dst, float(arg))
        return
    c = ezc3d.c3d(str(src))
    if family == "name":
        rename(c, arg)
    elif family == "axes":
        axes(c, arg)
    elif family == "units":
        metres(c)
    elif family == "events":
        relabel_events(c, arg)
    elif family != "identity":
        raise ValueError(variant)
    c.write(str(dst))


# ---------------------------------------------------------------- evaluation

def evaluate(c3d: Path, session: Path) -> dict[str, Any]:
    """Ingest one C3D file, run every detector, validate against the annotations."""
    from fusionlab.gait._detect import detect_session, to_session_events
    from fusionlab.gait._validate import validate_sessions
    from fusionlab.ingest import ingest
    from fusionlab.persist import open_session

    session.unlink(missing_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ingest([c3d], session, isolate=False)
        notes: list[str] = []
        res = detect_session(session, "all", notes=notes)
        report = validate_sessions([session], "annotation", results={str(session): res})
    with open_session(session) as r:
        clocks = r.clocks()
        ann = [e for e in r.events() if e.source == "annotation"]
    events = {}
    for g in res:
        key = f"{g.source}/{g.detector.split()[0]}"
        events.setdefault(key, []).extend(to_session_events(g.events, clocks))
    return {"report": report, "events": events, "notes": notes,
            "annotations": {k: sum(e.kind == k and e.side in ("left", "right") for e in ann)
                            for k in ("foot_strike", "foot_off")},
            "warnings": sorted({str(w.message) for w in caught})}


def event_diff(a: list[Any], b: list[Any], tol_s: float = 0.1) -> tuple[float, int, int]:
    """Largest |dt| between matched events (same kind and side), events only in a, only in b."""
    used: set[int] = set()
    worst, only_a = 0.0, 0
    for e in a:
        best, bj = math.inf, -1
        for j, f in enumerate(b):
            if j in used or f.kind != e.kind or f.side != e.side:
                continue
            d = abs(f.time_s - e.time_s)
            if d < best:
                best, bj = d, j
        if bj >= 0 and best <= tol_s:
            used.add(bj)
            worst = max(worst, best)
        else:
            only_a += 1
    return worst, only_a, len(b) - len(used)


def _messages(r: dict[str, Any]) -> set[str]:
    """Warnings and detector notes with the copy's own file and stream names blanked (to compare variants)."""
    return {re.sub(r"[\w.-]+__[\w.-]+?\.(c3d|h5|markers|forceplate\d+|analog)\b", "<file>", m)
            for m in r["warnings"] + r["notes"]}


def _metrics(report: dict[str, Any], det: str) -> dict[str, Any] | None:
    for c in report["comparisons"]:
        if f"{c['source']}/{c['detector']}".startswith(det):
            return c["events"]
    return None


def _cell(m: dict[str, Any] | None, kind: str) -> str:
    if m is None or kind not in m:
        return f"{'-':>15}"
    k = m[kind]
    r, p, e = k.get("recall"), k.get("precision"), k.get("median_abs_error_s")

    def fmt(x: float | None) -> str:
        return f"{x:.2f}" if x is not None else "  - "

    return f"{fmt(r)}/{fmt(p)}/{(f'{1e3 * e:4.1f}' if e is not None else '  - '):>4}"


def run(data: Path, out: Path, only: list[str] | None) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for walk, rel in WALKS.items():
        src = data / rel
        base = None
        for variant in variants():
            if only and variant not in ("original", "identity") and not any(variant.startswith(o) for o in only):
                continue
            tag = variant.replace(":", "_")
            dst = out / f"{walk}__{tag}.c3d"
            try:
                write_variant(src, dst, variant)
                r = evaluate(dst, out / f"{walk}__{tag}.h5")
            except Exception as e:  # reported in the table
                rows[f"{walk} {variant}"] = {"error": f"{type(e).__name__}: {e}"}
                continue
            if variant == "original":
                base = r
            zeni = r["events"].get("markers/zeni2008", [])
            diff = event_diff(base["events"].get("markers/zeni2008", []), zeni) if base else (math.nan, 0, 0)
            oc = r["events"].get("markers/oconnor2007", [])
            diff_oc = event_diff(base["events"].get("markers/oconnor2007", []), oc) if base else (math.nan, 0, 0)
            rows[f"{walk} {variant}"] = {
                "zeni": _metrics(r["report"], "markers/zeni2008"),
                "oconnor": _metrics(r["report"], "markers/oconnor2007"),
                "forceplate": _metrics(r["report"], "forceplate/"),
                "annotations": r["annotations"], "zeni_vs_identity": diff, "oconnor_vs_identity": diff_oc,
                "n_zeni": len(zeni),
                "new_messages": sorted(_messages(r) - _messages(base)) if base and variant != "original" else [],
            }
    return rows


def print_table(rows: dict[str, Any]) -> None:
    print("recall/precision/median|e| ms; ann = annotations read (strikes/offs); dZeni = max |dt| ms of the Zeni "
          "events vs the original file (+only-in-identity/+only-in-variant)")
    head = (f"{'walk variant':34} {'ann':>6} {'Zeni FS':>15} {'Zeni FO':>15} {'FootVel FS':>15} {'FootVel FO':>15} "
            f"{'plates all':>15} {'dZeni':>14} {'dFootVel':>14}")
    print(head)
    print("-" * len(head))
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:34} ERROR {r['error']}")
            continue
        d, a, b = r["zeni_vs_identity"]
        d2, a2, b2 = r["oconnor_vs_identity"]
        dz = f"{1e3 * d:6.2f} +{a}/+{b}" if not math.isnan(d) else "-"
        do = f"{1e3 * d2:6.2f} +{a2}/+{b2}" if not math.isnan(d2) else "-"
        ann = f"{r['annotations']['foot_strike']}/{r['annotations']['foot_off']}"
        print(f"{name:34} {ann:>6} {_cell(r['zeni'], 'foot_strike'):>15} {_cell(r['zeni'], 'foot_off'):>15} "
              f"{_cell(r['oconnor'], 'foot_strike'):>15} {_cell(r['oconnor'], 'foot_off'):>15} "
              f"{_cell(r['forceplate'], 'all'):>15} {dz:>14} {do:>14}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, help="folder for the copies and sessions (default: temporary)")
    parser.add_argument("--only", help="comma-separated variant prefixes (e.g. name:,axes:y_up)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    only = args.only.split(",") if args.only else None
    with tempfile.TemporaryDirectory() as td:
        out = args.out or Path(td)
        out.mkdir(parents=True, exist_ok=True)
        rows = run(args.data, out, only)
    if args.json:
        from fusionlab.cli import json_safe

        print(json.dumps(json_safe(rows), indent=1))
        return 0
    print_table(rows)
    print("\nmessages (warnings, detector notes) that the original file does not give:")
    for name, r in rows.items():
        for w in r.get("new_messages", []):
            print(f"  [{name}] {w[:260]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
