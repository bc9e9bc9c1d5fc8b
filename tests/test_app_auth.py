"""Web-app login gate, cookie, logout, audit log and opaque ids (Flask test client, no browser)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

from fusionlab.app._audit import read_audit
from fusionlab.app._auth import LoginThrottle
from fusionlab.app._users import UserStore
from tests.conftest import shared_path

SAMPLE = "c3d_org/sample00_vicon_pyCGM2_CGM24_Walking01.c3d"
FILENAME = "S042_walk_visit1.h5"


@pytest.fixture(scope="module")
def session_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusionlab.ingest import ingest

    out = tmp_path_factory.mktemp("app_auth") / "session.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ingest([shared_path(SAMPLE)], out, subject="S042", session_date="2026-03-01", isolate=False)
    return out


@pytest.fixture
def data_dir(tmp_path: Path, session_file: Path) -> Path:
    d = tmp_path / "lab data"
    (d / "2026").mkdir(parents=True)
    shutil.copy(session_file, d / "2026" / FILENAME)
    UserStore(d).add("ann", "correct horse", "clinician")
    return d


@pytest.fixture
def app(data_dir: Path) -> Any:
    from fusionlab.app.app import create_app

    return create_app(data_dir)


def _csrf(client: Any) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)


def _login(client: Any, user: str = "ann", password: str = "correct horse") -> Any:
    return client.post("/login", data={"csrf": _csrf(client), "username": user, "password": password})


def route(client: Any, pathname: str) -> Any:
    """What the browser asks after navigating: the Dash pages router callback for ``pathname``."""
    body = {"output": ".._pages_content.children..._pages_store.data..",
            "outputs": [{"id": "_pages_content", "property": "children"},
                        {"id": "_pages_store", "property": "data"}],
            "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                       {"id": "_pages_location", "property": "search", "value": ""}],
            "changedPropIds": ["_pages_location.pathname"], "state": []}
    return client.post("/_dash-update-component", json=body)


_route = route


def _session_ids(text: str) -> list[str]:
    return re.findall(r"/session/([^)\]\"'\s]+)", text)


def test_everything_refused_without_login(app: Any) -> None:
    c = app.server.test_client()
    r = c.get("/")
    assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert c.get("/session/abc").status_code == 302
    for path in ("/_dash-layout", "/_dash-dependencies", "/_reload-hash"):
        assert c.get(path).status_code == 401, path
    assert _route(c, "/").status_code == 401
    assert c.get("/login").status_code == 200
    assert c.get("/assets/style.css").status_code == 200  # public: the login page's stylesheet, no data


def test_wrong_password_refused_right_one_served_logout_refuses_again(app: Any, data_dir: Path) -> None:
    c = app.server.test_client()
    assert _login(c, password="wrong horse").status_code == 401
    assert _login(c, user="nobody").status_code == 401
    assert c.get("/").status_code == 302 and _route(c, "/").status_code == 401
    r = _login(c)
    assert r.status_code == 302
    cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "fusionlab_session=" in cookie
    page = c.get("/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert "Content-Security-Policy" in page.headers
    assert _route(c, "/").status_code == 200
    c.get("/logout")
    assert c.get("/").status_code == 302
    assert _route(c, "/").status_code == 401
    actions = [(a["user"], a["action"]) for a in read_audit(data_dir)]
    assert actions == [("ann", "login_failed"), ("-", "login_failed"), ("ann", "login"), ("ann", "logout")]


def test_login_needs_the_form_token(app: Any) -> None:
    c = app.server.test_client()
    r = c.post("/login", data={"username": "ann", "password": "correct horse"})
    assert r.status_code == 400 and c.get("/").status_code == 302


def test_session_list_has_no_path_and_opaque_ids_view_is_audited(app: Any, data_dir: Path) -> None:
    c = app.server.test_client()
    _login(c)
    r = _route(c, "/")
    assert r.status_code == 200
    text = json.dumps(r.get_json())  # Dash escapes "/" as \u002f in responses
    assert "S042" in text  # the pseudonym is shown in the page (to a logged-in user)...
    ids = _session_ids(text)
    assert len(ids) == 1 and re.fullmatch(r"[0-9a-f]{24}", ids[0])  # ...but URLs carry only the opaque id
    assert FILENAME not in text and str(data_dir) not in text and "S042" not in ids[0]
    assert _route(c, f"/session/{ids[0]}").status_code == 200
    views = [a for a in read_audit(data_dir) if a["action"] == "view_session"]
    assert views == [{**views[0], "user": "ann", "session": ids[0]}]
    assert "S042" not in (data_dir / ".fusionlab" / "audit.log").read_text()
    r = _route(c, "/session/0123456789abcdef01234567")
    assert "Session not found" in r.get_data(as_text=True)


def test_removed_user_is_logged_out(app: Any, data_dir: Path) -> None:
    c = app.server.test_client()
    _login(c)
    assert c.get("/").status_code == 200
    UserStore(data_dir).remove("ann")
    assert c.get("/").status_code == 302


def test_every_page_registers(app: Any) -> None:
    import dash

    paths = {p["module"]: p.get("path_template") or p["path"] for p in dash.page_registry.values()}
    assert paths["fusionlab.app.pages.sessions"] == "/"
    assert paths["fusionlab.app.pages.session"] == "/session/<sid>"
    c = app.server.test_client()
    _login(c)
    deps = c.get("/_dash-dependencies").json
    outputs = " ".join(d["output"] for d in deps)
    assert "session-graph.figure" in outputs and "sessions-table.data" in outputs


def test_no_external_resources(app: Any) -> None:
    c = app.server.test_client()
    _login(c)
    html = c.get("/").get_data(as_text=True)
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert app.config.serve_locally


def test_login_throttle() -> None:
    now = [0.0]
    t = LoginThrottle(max_failures=3, window_s=60.0, clock=lambda: now[0])
    for _ in range(3):
        assert not t.blocked("ann")
        t.failed("ann")
    assert t.blocked("ann") and not t.blocked("rob")
    now[0] = 61.0
    assert not t.blocked("ann")


def test_import_fusionlab_stays_headless() -> None:
    code = ("import sys, fusionlab, fusionlab.cli, fusionlab.app; "
            "print([m for m in sys.modules if m.split('.')[0] in ('dash', 'flask', 'plotly', 'flask_login')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
