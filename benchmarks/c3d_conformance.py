"""C3D conformance report: ingest every C3D in ../shared/data and compare with the file headers.

Run:  python benchmarks/c3d_conformance.py [--data ../shared/data]

Prints one row per file (processor, storage, points, frames, rates, plates, events, result) and the figures the
README quotes: how many files ingest, how many are refused and why, force-plate onset versus annotated foot strike,
TYPE-4 plate versus the c3d.org reference spreadsheet, and the C3D -> session -> C3D round trip error.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import ezc3d
import numpy as np

from fusionlab.adapters.c3d import check_c3d, read_c3d, write_c3d
from fusionlab.exceptions import FileFormatError
from fusionlab.ingest import ingest
from fusionlab.persist import open_session


def _row(path: Path, tmp: Path) -> tuple[str, ...]:
    try:
        h = check_c3d(path)
    except FileFormatError as e:
        return (path.name, "-", "-", "-", "-", "-", "-", "-", f"refused: {e.reason[:60]}")
    session = tmp / f"{path.stem}.h5"
    try:
        report = ingest([path], session)
    except FileFormatError as e:
        return (path.name, h.processor, "float" if h.is_float else "int", "-", "-", "-", "-", "-",
                f"refused: {e.reason[:60]}")
    c = ezc3d.c3d(str(path))
    with open_session(session) as r:
        infos = [r.stream_info(n) for n in r.stream_names]
        n_events = len(r.events())
    points = sum(len(i["channels"]) for i in infos if i["modality"] in ("markers", "model"))
    frames = {i["n_samples"] for i in infos if i["modality"] in ("markers", "model")}
    plates = sum(i["modality"] == "forceplate" for i in infos)
    ok = points == c["header"]["points"]["size"] and frames <= {c["data"]["points"].shape[2]}
    fp = c["parameters"].get("FORCE_PLATFORM", {})
    used = int(np.ravel(fp["USED"]["value"])[0]) if "USED" in fp and np.size(fp["USED"]["value"]) else 0
    note = "ok" if ok else "MISMATCH"
    if plates != used:
        note += f" ({used} plates declared, {plates} read: see warnings)"
    if report.warnings:
        note += f"; {len(report.warnings)} warning(s)"
    return (path.name, h.processor, "float" if h.is_float else "int", str(points),
            str(next(iter(frames)) if frames else 0), f"{h.point_rate_hz:g}", str(plates), str(n_events), note)


def _onset_figure(data: Path) -> str:
    s = read_c3d(data / "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d", prefix="")
    plate = s.stream("forceplate1")
    fz = np.abs(plate.channel("force")[:, 2])
    t = plate.times()
    onset = t[np.flatnonzero((fz[1:] > 20) & (fz[:-1] <= 20))[0] + 1]
    strikes = [e.time_s for e in s.events if e.side == "left" and e.kind == "foot_strike"]
    err = min(abs(onset - x) for x in strikes)
    return f"plate onset (Fz > 20 N) vs annotated Left Foot Strike: {err * 1000:.2f} ms (one analog sample = 1 ms)"


def _type4_figure(data: Path) -> str:
    import xlrd

    sheet = xlrd.open_workbook(str(data / "c3d_org/sample10_TYPE-4.xls")).sheet_by_index(0)
    cal = np.array([[sheet.cell_value(r, c) for c in range(9, 15)] for r in range(14, 20)])
    s4 = read_c3d(data / "c3d_org/sample10_TYPE-4.C3D", prefix="")
    analog = s4.stream("analog").data * np.array([1, 1, 1, 1e3, 1e3, 1e3])
    ref = analog @ cal
    ours = s4.stream("forceplate1").channel("force")
    err = np.nanmax(np.abs(np.linalg.norm(ours, axis=1) - np.linalg.norm(ref[:, :3], axis=1)))
    f2 = read_c3d(data / "c3d_org/sample10_TYPE-2.C3D", prefix="").stream("forceplate1").channel("force")
    fz_diff = np.nanmax(np.abs(f2[:, 2] - ours[:, 2])) / np.nanmax(np.abs(ours[:, 2]))
    peak = np.nanmax(np.abs(ours))
    return (f"TYPE-4 plate |F| vs c3d.org reference spreadsheet: max {err:.3f} N (peak {peak:.0f} N);"
            f" TYPE-2 vs TYPE-4 Fz: max {100 * fz_diff:.1f} % of peak (TYPE-2 ignores cross-talk)")


def _round_trip_figure(data: Path, tmp: Path) -> str:
    src = data / "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"
    session = tmp / "rt.h5"
    ingest([src], session)
    out = tmp / "rt.c3d"
    write_c3d(session, out)
    a, b = ezc3d.c3d(str(src)), ezc3d.c3d(str(out))
    la = a["parameters"]["POINT"]["LABELS"]["value"]
    lb = b["parameters"]["POINT"]["LABELS"]["value"]
    pa = a["data"]["points"][:3]
    pb = b["data"]["points"][:3][:, [lb.index(x) for x in la]]
    rel = np.nanmax(np.abs(pa - pb) / np.maximum(1.0, np.abs(pa)))
    an = np.max(np.abs(a["data"]["analogs"] - b["data"]["analogs"]))
    return f"round trip C3D -> session -> C3D: points max relative error {rel:.1e}, analogs max abs error {an:.1e}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    args = ap.parse_args()
    data = Path(args.data)
    files = sorted(p for p in data.rglob("*") if p.suffix.lower() == ".c3d")
    if not files:
        print(f"no C3D files under {data}", file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as td, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tmp = Path(td)
        for p in files:
            rows.append((str(p.relative_to(data)), *_row(p, tmp)[1:]))
        head = ("file", "proc", "store", "points", "frames", "rate", "plates", "events", "result")
        widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head) - 1)]
        for r in [head, *rows]:
            print("  ".join(x.ljust(w) for x, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])
        n_ok = sum(r[-1].startswith("ok") for r in rows)
        refused = [r for r in rows if r[-1].startswith("refused")]
        print(f"\n{n_ok} of {len(rows)} C3D files ingest with header agreement; {len(refused)} refused with a reason; "
              f"{len(rows) - n_ok - len(refused)} mismatches")
        print(_onset_figure(data))
        print(_type4_figure(data))
        print(_round_trip_figure(data, tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
