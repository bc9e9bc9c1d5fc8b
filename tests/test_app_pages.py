"""Agreement, patient timeline and triage pages render behind the login (Flask test client on the demo patients)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fusionlab.app._users import UserStore
from tests.test_app_auth import route


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fusionlab.app._demo import build_demo_patients

    root = tmp_path_factory.mktemp("pages")
    build_demo_patients(root, fuse=False)
    UserStore(root).add("ann", "correct horse", "clinician")
    UserStore(root).add("rob", "battery staple", "researcher")
    return root


@pytest.fixture
def app(demo_dir: Path) -> Any:
    from fusionlab.app.app import create_app

    return create_app(demo_dir)


def _login(client: Any, user: str = "ann", password: str = "correct horse") -> None:
    csrf = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text).group(1)
    r = client.post("/login", data={"csrf": csrf, "username": user, "password": password})
    assert r.status_code in (302, 303)


def _route(client: Any, pathname: str) -> Any:
    r = route(client, pathname)
    r.page = r.get_data(as_text=True).replace("\\u002f", "/")  # Dash escapes "/" in JSON
    return r


def test_pages_need_login(app: Any) -> None:
    c = app.server.test_client()
    for path in ("/triage", "/patient/abc", "/agreement/abc"):
        r = c.get(path)
        assert r.status_code == 302 and r.headers["Location"].endswith("/login")
    assert _route(c, "/triage").status_code == 401


def test_triage_timeline_agreement_render(app: Any, demo_dir: Path) -> None:
    c = app.server.test_client()
    _login(c)
    assert c.get("/triage").status_code == 200
    r = _route(c, "/triage")
    assert r.status_code == 200
    text = r.page
    assert "DEMO-P01 (DEMO data)" in text and "DEMO-P02" in text and "DEMO-P03" in text
    pids = re.findall(r"/patient/([0-9a-f]{24})", text)
    sids = re.findall(r"/agreement/([0-9a-f]{24})", text)
    assert len(set(pids)) == 3 and sids
    assert "DEMO-P0" not in "".join(pids)  # opaque ids only
    r = _route(c, f"/patient/{pids[0]}")
    assert r.status_code == 200 and "DEMO DATA" in r.text and "MDC95" in r.text
    assert "Schwartz" in r.text  # normative attribution shown
    r = _route(c, f"/agreement/{sids[0]}")
    assert r.status_code == 200 and "Bland-Altman" in r.text and "Validation behind each modality" in r.text
    assert "Patient not found" in _route(c, "/patient/" + "0" * 24).text
    log = (demo_dir / ".fusionlab" / "audit.log").read_text()
    assert '"view_patient"' in log and '"view_agreement"' in log


def test_researcher_sees_profile_read_only(app: Any) -> None:
    c = app.server.test_client()
    _login(c, "rob", "battery staple")
    pid = re.findall(r"/patient/([0-9a-f]{24})", _route(c, "/triage").page)[0]
    r = _route(c, f"/patient/{pid}")
    assert r.status_code == 200 and "read-only for your role" in r.text
