"""Web-app users: salted scrypt hashes, roles, file permissions, the `fusionlab users` command."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from fusionlab.app._users import UserStore, can, hash_password, private_dir, verify_password
from fusionlab.cli import main
from fusionlab.exceptions import ValidationError


def test_hash_is_salted_and_verifies() -> None:
    a, b = hash_password("same password"), hash_password("same password")
    assert a != b  # a new random salt every time
    assert a.startswith("scrypt$") and "same password" not in a
    assert verify_password("same password", a) and verify_password("same password", b)
    assert not verify_password("same passworD", a)
    assert not verify_password("same password", "not-a-hash")


def test_add_verify_wrong_password_roles(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    assert store.list() == []
    store.add("ann", "correct horse", "clinician")
    store.add("rob", "battery staple", "researcher")
    assert store.verify("ann", "correct horse").role == "clinician"
    assert store.verify("ann", "battery staple") is None
    assert store.verify("nobody", "correct horse") is None
    assert [(u.name, u.role) for u in store.list()] == [("ann", "clinician"), ("rob", "researcher")]
    with pytest.raises(ValidationError, match="exists already"):
        store.add("ann", "another one", "admin")
    store.add("ann", "another one", "admin", replace=True)
    assert store.verify("ann", "another one").role == "admin" and store.verify("ann", "correct horse") is None
    with pytest.raises(ValidationError, match="Allowed values are clinician, researcher, admin"):
        store.add("eve", "long enough", "superuser")
    with pytest.raises(ValidationError, match="at least 8"):
        store.add("eve", "short", "admin")
    with pytest.raises(ValidationError, match="Invalid user name"):
        store.add("Ann Smith", "long enough", "admin")
    store.remove("rob")
    assert store.get("rob") is None
    with pytest.raises(KeyError):
        store.remove("rob")


def test_permissions_by_role() -> None:
    assert can("researcher", "view") and can("researcher", "export") and not can("researcher", "annotate")
    assert not can("researcher", "upload") and can("clinician", "upload") and can("admin", "upload")
    assert can("clinician", "export") and not can("clinician", "manage_users")
    assert can("admin", "manage_users")
    assert not can("guest", "view") and not can("admin", "launch_rockets")


def test_file_and_folder_permissions_no_plain_passwords(tmp_path: Path) -> None:
    store = UserStore(tmp_path)
    store.add("ann", "correct horse", "clinician")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(private_dir(tmp_path).stat().st_mode) == 0o700
    text = store.path.read_text()
    assert "correct horse" not in text
    assert json.loads(text)["users"]["ann"]["password"].startswith("scrypt$")


def test_cli_users_add_list_remove(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-pass\n"))
    assert main(["users", "add", "ann", "--role", "clinician", "--password-stdin", "--data", str(tmp_path)]) == 0
    assert UserStore(tmp_path).verify("ann", "s3cret-pass") is not None
    capsys.readouterr()
    assert main(["users", "list", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ann" in out and "clinician" in out and "s3cret" not in out
    assert main(["users", "remove", "ann", "--data", str(tmp_path)]) == 0
    assert UserStore(tmp_path).list() == []
    assert main(["users", "remove", "ann", "--data", str(tmp_path)]) == 1


def test_cli_serve_refuses_without_users(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "no users yet" in err and "fusionlab users add" in err
