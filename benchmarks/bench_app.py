#!/usr/bin/env python
"""Session-page figure benchmark: `fusionlab.app._data.session_figure` downsampled vs full resolution.

Usage::

    python benchmarks/bench_app.py [--minutes 10] [--markers 40] [--max-points 2800] [--repeat 3]

Builds a synthetic session: two 1 kHz force plates (force + moment, 6 channels each, with heel-strike peaks and
spikes), 200 Hz markers (``--markers`` of them, x/y/z), 18 events per minute per side, and a stored fusion result
(a 100 Hz fused angle, 2 channels, with conflicts). It then times the page's first figure (the default traces: the
vertical force of each plate, heel and toe markers, the fused angle with its band, the events lane) three ways:

    overview     whole session, ``--max-points`` per trace (min/max buckets; what the page sends on load)
    zoom 10 s    a 10 s window (what a relayout callback sends; full resolution: 10 000 plate samples < 20 000)
    full         whole session, no downsampling (what a naive page would send)

Columns: build time (median of ``--repeat``; the file is read every time, nothing is cached), JSON size (what the
browser downloads and parses, as Dash serialises it) and points drawn.

Then, in a real browser (Debian's Chromium, headless, driven by Playwright; ``--no-browser`` skips it, and it is
skipped when Chromium or playwright is missing), the session page is loaded ``--repeat`` times in each of three
setups on the same file, in the same run:

    first view       the app as shipped, but its stored overview (`OverviewCache`) deleted before every load:
                     the server builds the overview from the file (a session opened by a link before any list view)
    overview ready   the app as shipped: the sessions page (shown after the login) prebuilt the overview in the
                     background; the server reads it from ``DIR/.fusionlab/cache/``
    full resolution  every sample (``max_points`` = 10^9, no stored overview: built from the file at every load)

The in-memory figure cache is cleared before every load. Per load, measured in the page from navigation start
(``performance.now()``):

    drawn        the graph div has plotly's ``_fullLayout`` and its SVG, checked every animation frame
    interactive  the figure is drawn and nothing is pending: a ``setTimeout(0)`` queued after the last redraw
                 (``plotly_afterplot``, e.g. a re-layout by dcc.Graph after mounting) has run and the last long task
                 has ended, with nothing new for the next 600 ms
    long tasks   total time of the main thread's tasks over 50 ms (PerformanceObserver), including that window
    zoom redraw  ``Plotly.relayout`` to a 10 s window, client side only (what a drag-zoom costs before the server
                 answers)
    MB           bytes of the page's callback responses (the figure travels in the page-content callback)

plus the phases: Dash ready (``/_dash-dependencies`` answered), figure requested and received (the page-content
callback), plotly.js ready (``window.Plotly`` defined). Between loads the benchmark waits for the zoom's server
answer to be drawn and goes to ``about:blank``, so each load starts from an idle page. ``--no-full-browser`` skips
the (slow) full-resolution page, for quick iterations only. Exits 0 whatever the result; non-zero only on errors.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def build_session(path: Path, minutes: float, n_markers: int) -> None:
    """Write the synthetic session (see the module docstring)."""
    from fusionlab.fusion import Conflict, FusedSignal, FusionResult, store_fusion
    from fusionlab.model import ClockEntry, Event, Session, Stream
    from fusionlab.persist import save_session

    rng = np.random.default_rng(0)
    dur = minutes * 60.0
    streams = []
    step_s = 1.1  # one stride per side
    for plate in (1, 2):
        n = int(dur * 1000)
        t = np.arange(n) / 1000.0
        phase = ((t + 0.55 * (plate - 1)) % step_s) / step_s
        fz = np.where(phase < 0.6, 800 * np.abs(np.sin(np.pi * phase / 0.6)) ** 0.7, 0.0) + rng.normal(0, 2, n)
        fz[rng.choice(n, 30, replace=False)] += 400.0  # spikes that downsampling must keep
        force = np.stack([0.1 * fz * np.cos(2 * np.pi * phase), 0.05 * fz, fz], axis=1)
        moment = np.stack([0.01 * fz, 0.02 * fz, 0.001 * fz], axis=1)
        data = np.stack([force, moment], axis=1).astype(np.float32)  # (n, 2 channels, 3 components) = 6 channels
        streams.append(Stream(f"bench.forceplate{plate}", "forceplate", data, ("force", "moment"), ("N", "N·m"),
                              frame="lab", rate_hz=1000.0, components=("x", "y", "z"), orig_units=("N", "N·m"),
                              clock="bench", storage_dtype="float32"))
    n = int(dur * 200)
    t = np.arange(n) / 200.0
    names = tuple([f"M{i:02d}" for i in range(n_markers - 4)] + ["LHEE", "RHEE", "LTOE", "RTOE"])
    pos = (rng.normal(0, 0.3, (1, n_markers, 3)) + np.stack([1.2 * t, 0 * t, 0 * t], axis=1)[:, None, :]
           + 0.05 * np.sin(2 * np.pi * t / step_s)[:, None, None]).astype(np.float32)
    streams.append(Stream("bench.markers", "markers", pos, names, ("m",) * n_markers, frame="lab", rate_hz=200.0,
                          components=("x", "y", "z"), orig_units=("mm",) * n_markers, clock="bench",
                          storage_dtype="float32", meta={"lab_axes": {"y_screen": "+Z"}}))
    events = tuple(Event(time_s=float(ts), kind=kind, side=side, source="annotation", label=kind, clock="bench",
                         detector="bench")
                   for side, off in (("left", 0.0), ("right", 0.55)) for k, ts in enumerate(np.arange(off, dur, step_s))
                   for kind in ("foot_strike", "foot_off") if ts + (0.66 if kind == "foot_off" else 0) < dur)
    save_session(Session(streams=tuple(streams), events=events, clocks={"bench": ClockEntry(clock="bench")},
                         subject="BENCH-001", session_date="2026-01-01"), path)
    tf = np.arange(0, dur, 0.01)
    mean = np.stack([0.6 * np.sin(2 * np.pi * tf / step_s), 0.6 * np.cos(2 * np.pi * tf / step_s)], axis=1)
    sig = FusedSignal("knee_angle", tf, mean, np.full_like(mean, 0.03**2), ("left_knee", "right_knee"),
                      ("rad", "rad"), frame="joint:sagittal", inputs=("markers", "imu"))
    conflicts = [Conflict(float(s), float(s) + 2.0, "knee_angle", "imu", "medium", 20.0, {"nis": 20.0})
                 for s in np.arange(30.0, dur, 60.0)]
    store_fusion(path, [FusionResult("angles", "bench", signals=[sig], conflicts=conflicts)])


def _time(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


_PROBE = """
window.__fl = {longtask_ms: 0, longtask_end: 0, n_afterplot: 0};
try {
  new PerformanceObserver((list) => { for (const e of list.getEntries()) {
      window.__fl.longtask_ms += e.duration;
      window.__fl.longtask_end = Math.max(window.__fl.longtask_end, e.startTime + e.duration); } })
    .observe({type: "longtask", buffered: true});
} catch (e) { window.__fl.longtask_ms = NaN; }
(function poll() {
  if (window.Plotly && !window.__fl.plotly) { window.__fl.plotly = performance.now(); }
  const gd = document.querySelector("#session-graph .js-plotly-plot");
  if (gd && gd._fullLayout && gd._fullData && gd._fullData.length && gd.querySelector(".main-svg")) {
    const fl = window.__fl;
    fl.drawn = performance.now();
    fl.n_traces = gd._fullData.length;
    // free: a setTimeout(0) queued after the first draw and after every later redraw (dcc.Graph resizes the plot
    // ~100 ms after mounting: a second relayout) has run
    const free = () => setTimeout(() => { fl.free = performance.now(); }, 0);
    gd.on("plotly_afterplot", () => { fl.n_afterplot += 1; fl.last_afterplot = performance.now(); free(); });
    free();
    // settled when nothing happened for 600 ms: interactive = the main thread free after the last redraw and
    // after the last long task
    (function settle() {
      const last = Math.max(fl.free || 0, fl.last_afterplot || 0, fl.longtask_end);
      if (fl.free && performance.now() - last > 600) {
        fl.interactive = Math.max(fl.free, fl.longtask_end);
        fl.longtask_at_interactive = fl.longtask_ms;
        return;
      }
      setTimeout(settle, 50);
    })();
    return;
  }
  requestAnimationFrame(poll);
})();
"""
_PHASES = """() => {
  const res = performance.getEntriesByType('resource');
  const cb = res.filter(e => e.name.includes('_dash-update-component'));
  const big = cb.reduce((a, e) => (a && a.encodedBodySize >= e.encodedBodySize) ? a : e, null);
  const nav = performance.getEntriesByType('navigation')[0];
  return {renderer_ready: Math.max(...res.filter(e => e.name.includes('_dash-dependencies')).map(e => e.responseEnd)),
          figure_sent: big ? big.requestStart : NaN, figure_received: big ? big.responseEnd : NaN,
          html: nav ? nav.responseEnd : NaN};
}"""


def browser_bench(path: Path, repeat: int, max_points: int, minutes: float, *, full: bool = True
                  ) -> list[tuple[str, dict[str, float]]]:
    """Time the session page in headless Chromium, shipped (downsampled) vs full resolution (module docstring)."""
    import shutil
    import threading

    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from fusionlab.app._users import UserStore
    from fusionlab.app.app import create_app

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    UserStore(path.parent).add("bench", "bench password", "researcher")
    servers = []
    results = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            cases = ((f"downsampled, first view ({max_points}/trace)", max_points, "cold"),
                     (f"downsampled, overview ready ({max_points}/trace)", max_points, "warm"),
                     ("full resolution (every sample)", 10**9, "none"))
            for label, mp, overview in cases if full else cases[:2]:
                app = create_app(path.parent, max_points=mp)
                ctx_obj = app.server.config["FUSIONLAB_CONTEXT"]
                if overview == "none":
                    ctx_obj.overviews = None  # a naive page: no stored overview, build at every load
                sid = ctx_obj.index.scan()[0]["id"]
                srv = make_server("127.0.0.1", 0, app.server, threaded=True)
                threading.Thread(target=srv.serve_forever, daemon=True).start()
                servers.append(srv)
                base = f"http://127.0.0.1:{srv.server_port}"
                ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
                ctx.set_default_timeout(300_000)
                pg = ctx.new_page()
                pg.goto(base + "/login")
                pg.fill("input[name=username]", "bench")
                pg.fill("input[name=password]", "bench password")
                pg.click("button[type=submit]")
                pg.wait_for_url(base + "/")
                pg.add_init_script(_PROBE)
                runs: list[dict[str, float]] = []
                cache_dir = path.parent / ".fusionlab" / "cache"
                if ctx_obj.overviews is not None:
                    # the sessions page (shown after the login) prebuilt the overview in the background
                    ctx_obj.overviews.wait()
                    if overview == "warm":
                        assert ctx_obj.overviews.file_of(sid).is_file()
                for _ in range(repeat):
                    ctx_obj.figures._d.clear()  # nothing in memory: from the file (or the stored overview)
                    if overview == "cold":  # no stored overview (e.g. opened by a link before any list view)
                        shutil.rmtree(cache_dir, ignore_errors=True)
                    pg.goto(f"{base}/session/{sid}")
                    pg.wait_for_function("() => window.__fl && window.__fl.interactive")
                    m = pg.evaluate("() => window.__fl")
                    m.update(pg.evaluate(_PHASES))
                    m["mb"] = pg.evaluate(
                        "() => performance.getEntriesByType('resource').filter(e => e.name.includes("
                        "'_dash-update-component')).reduce((s, e) => s + e.encodedBodySize, 0) / 1e6")
                    mid = minutes * 30.0
                    m["zoom_ms"] = pg.evaluate(
                        "async ([a, b]) => { const gd = document.querySelector('#session-graph .js-plotly-plot');"
                        " const t = performance.now(); await Plotly.relayout(gd, {'xaxis.range': [a, b]});"
                        " return performance.now() - t; }", [mid, mid + 10.0])
                    # the relayout also asks the server for the window's data: wait until it is drawn, then leave
                    # the page, so that the next load does not share the renderer with this page's work
                    pg.wait_for_function(
                        "() => { const gd = document.querySelector('#session-graph .js-plotly-plot');"
                        " const w = gd && gd.layout.meta && gd.layout.meta.window;"
                        " return w && (w[1] - w[0]) < 60; }")
                    pg.goto("about:blank")
                    pg.wait_for_timeout(500)
                    runs.append(m)
                results.append((label, {k: statistics.median([r[k] for r in runs]) for k in
                                        ("drawn", "interactive", "longtask_at_interactive", "zoom_ms", "mb",
                                         "renderer_ready", "figure_sent", "figure_received", "plotly")}))
                results[-1][1]["all_interactive"] = [round(r["interactive"]) for r in runs]
                ctx.close()
        finally:
            browser.close()
            for srv in servers:
                srv.shutdown()
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--markers", type=int, default=40)
    ap.add_argument("--max-points", type=int, default=0, help="points per trace in the overview (default: the app's)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-browser", action="store_true", help="skip the in-browser measurement")
    ap.add_argument("--no-full-browser", action="store_true",
                    help="skip the (slow) full-resolution page in the browser (for quick iterations only)")
    args = ap.parse_args(argv)

    from plotly.io.json import to_json_plotly

    from fusionlab.app._data import DEFAULT_MAX_POINTS, ZOOM_MAX_POINTS, figure_for_view

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        t0 = time.perf_counter()
        build_session(path, args.minutes, args.markers)
        print(f"synthetic session: {args.minutes:g} min, 2 plates x 6 ch at 1 kHz, {args.markers} markers at 200 Hz, "
              f"fused angle at 100 Hz; {path.stat().st_size / 1e6:.1f} MB, written in {time.perf_counter() - t0:.1f} s")
        mid = args.minutes * 30.0
        cases = [("overview", None, args.max_points or DEFAULT_MAX_POINTS),
                 ("zoom 10 s", (mid, mid + 10.0), ZOOM_MAX_POINTS),
                 ("full", None, 10**9)]
        print(f"\n{'view':10s} {'build s':>8s} {'JSON MB':>8s} {'points':>10s} {'serialise s':>12s}  full resolution")
        for label, view, max_points in cases:
            if view is None:
                build, fig = _time(lambda mp=max_points: figure_for_view(path, None, None, max_points=mp), args.repeat)
            else:
                build, fig = _time(lambda v=view, mp=max_points: figure_for_view(path, None, v, zoom_max_points=mp),
                                   args.repeat)
            ser, text = _time(lambda f=fig: to_json_plotly(f), 1)
            meta = fig["layout"]["meta"]
            print(f"{label:10s} {build:8.3f} {len(text) / 1e6:8.2f} {meta['n_points']:10d} {ser:12.3f}  "
                  f"{'yes' if meta['full_resolution'] else 'no'}")
        if args.no_browser:
            return 0
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            print("\nbrowser: skipped (pip install playwright; it drives the installed Chromium)")
            return 0
        import shutil

        if not (shutil.which("chromium") or Path("/usr/bin/chromium").is_file()):
            print("\nbrowser: skipped (no chromium; apt-get install chromium)")
            return 0
        import os

        load = os.getloadavg()
        rows = browser_bench(path, args.repeat, args.max_points or DEFAULT_MAX_POINTS, args.minutes,
                             full=not args.no_full_browser)
        print(f"\nsession page in headless Chromium, median of {args.repeat} loads, ms from navigation start "
              f"(load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; after: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs):")
        print(f"{'page':44s} {'drawn':>7s} {'interactive':>11s} {'long tasks':>10s} {'zoom redraw':>11s} "
              f"{'MB':>6s}  each load")
        for label, m in rows:
            print(f"{label:44s} {m['drawn']:7.0f} {m['interactive']:11.0f} {m['longtask_at_interactive']:10.0f} "
                  f"{m['zoom_ms']:11.0f} {m['mb']:6.2f}  {m['all_interactive']}")
        print("\nphases (median, ms from navigation start): Dash ready (/_dash-dependencies answered), figure "
              "requested, figure received, plotly.js ready")
        for label, m in rows:
            print(f"{label:44s} {m['renderer_ready']:7.0f} {m['figure_sent']:7.0f} {m['figure_received']:7.0f} "
                  f"{m['plotly']:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
