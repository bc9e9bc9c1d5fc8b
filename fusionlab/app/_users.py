"""Users of the web app: a JSON file of salted scrypt password hashes and roles, in the data folder's private folder.

The file is ``DIR/.fusionlab/users.json`` (folder mode 0700, file mode 0600), written atomically (temporary file +
``os.replace``) under an advisory lock. Passwords are never stored: each user has
``scrypt$<n>$<r>$<p>$<salt b64>$<key b64>`` (RFC 7914 scrypt from ``hashlib``, a 16-byte random salt per hash, so
the same password gives a different hash for every user and every change). The cost parameters travel with the hash,
so they can be raised later without invalidating existing users.

This module has no web dependency (no Flask, no Dash): the CLI (`fusionlab users`) and the app both use it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import functools
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fusionlab.exceptions import ValidationError

__all__ = ["PERMISSIONS", "PRIVATE_DIRNAME", "ROLES", "User", "UserStore", "can", "hash_password", "private_dir",
           "verify_password"]

Role = Literal["clinician", "researcher", "admin"]
ROLES: tuple[str, ...] = ("clinician", "researcher", "admin")
"""clinician: views, exports, uploads (later annotates); researcher: read-only (views and exports); admin: everything +
user management."""

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "view": ("clinician", "researcher", "admin"),
    "export": ("clinician", "researcher", "admin"),  # read-only: exporting changes nothing
    "annotate": ("clinician", "admin"),
    "upload": ("clinician", "admin"),
    "set_profile": ("clinician", "admin"),
    "manage_users": ("admin",),
}
"""Which roles may do what. ``view``, ``export``, ``upload`` and ``set_profile`` are enforced server-side (pages,
routes); ``annotate`` and ``manage_users`` when their pages exist."""

PRIVATE_DIRNAME = ".fusionlab"
USERS_FILENAME = "users.json"
MIN_PASSWORD_LENGTH = 8
_NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")

# scrypt cost: n=2**15, r=8 -> 32 MiB and ~0.1 s per hash on a 2020s CPU (OWASP's minimum is n=2**17 with r=8,p=1
# *or* equivalent; 2**15 keeps login snappy on a lab workstation, raise SCRYPT_N for internet-facing use).
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32


def can(role: str, action: str) -> bool:
    """Whether ``role`` may do ``action`` (see `PERMISSIONS`); unknown roles and actions may do nothing."""
    return role in PERMISSIONS.get(action, ())


def private_dir(data_dir: str | os.PathLike[str], *, create: bool = False) -> Path:
    """The app's private folder inside the data folder (``DIR/.fusionlab``), created with mode 0700 if asked."""
    p = Path(data_dir) / PRIVATE_DIRNAME
    if create:
        p.mkdir(mode=0o700, parents=True, exist_ok=True)
        p.chmod(0o700)
    return p


def write_private(path: Path, data: bytes, *, append: bool = False) -> None:
    """Write (or append) ``data`` to a file readable by its owner only (created with mode 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
    fd = os.open(path, flags, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """Salted scrypt hash of ``password`` as ``scrypt$n$r$p$salt$key`` (base64); a new random salt every call."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20),
                         dklen=_KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a hash made by `hash_password` (constant-time comparison)."""
    try:
        scheme, n_s, r_s, p_s, salt_s, key_s = encoded.split("$")
        n, r, p = int(n_s), int(r_s), int(p_s)
        salt, key = base64.b64decode(salt_s), base64.b64decode(key_s)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=256 * n * r + (1 << 20),
                         dklen=len(key))
    return hmac.compare_digest(got, key)


@dataclass(frozen=True)
class User:
    """A user of the web app (no password: only its hash is stored, and it is not kept here)."""

    name: str
    role: str
    created_at: str = ""


class UserStore:
    """The users file of a data folder.

    Parameters
    ----------
    data_dir
        The folder ``fusionlab serve --data`` serves; the file is ``data_dir/.fusionlab/users.json``.
    """

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)

    @property
    def path(self) -> Path:
        """The users file."""
        return private_dir(self.data_dir) / USERS_FILENAME

    # ------------------------------------------------------------------ reading
    def _load(self) -> dict[str, dict[str, str]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("users"), dict):
            msg = f"{self.path}: not a fusionlab users file (expected {{'users': {{...}}}})."
            raise ValidationError(msg)
        return data["users"]

    def list(self) -> list[User]:
        """All users, sorted by name."""
        return [User(name, u["role"], u.get("created_at", "")) for name, u in sorted(self._load().items())]

    def get(self, name: str) -> User | None:
        """One user, or None."""
        u = self._load().get(name)
        return None if u is None else User(name, u["role"], u.get("created_at", ""))

    def verify(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs, else None. Takes as long for unknown names as for wrong passwords."""
        u = self._load().get(name)
        if u is None:
            verify_password(password, _dummy_hash())  # same cost: do not reveal which names exist by timing
            return None
        if not verify_password(password, u["password"]):
            return None
        return User(name, u["role"], u.get("created_at", ""))

    # ------------------------------------------------------------------ writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, dict[str, str]]]:
        import fcntl

        folder = private_dir(self.data_dir, create=True)
        lock = folder / ".users.lock"
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            users = self._load()
            yield users
            self._write(users)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _write(self, users: dict[str, dict[str, str]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".users-", dir=self.path.parent)  # mkstemp creates the file with 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"format": "fusionlab-users", "version": 1, "users": users}, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self.path)
        finally:
            Path(tmp).unlink(missing_ok=True)

    def add(self, name: str, password: str, role: str, *, replace: bool = False) -> User:
        """Add a user (or, with ``replace``, change an existing user's password and role).

        Raises
        ------
        ValidationError
            If the name or role is invalid, the password is too short, or the user exists and ``replace`` is False.
        """
        if not _NAME_RE.match(name):
            msg = (f"Invalid user name {name!r}: use 1-64 letters, digits, '_', '.', '@' or '-' "
                   "(a login name, not a patient's or a person's full name).")
            raise ValidationError(msg)
        if role not in ROLES:
            msg = f"Invalid value for 'role'. Allowed values are {', '.join(ROLES)}, but got {role!r} instead."
            raise ValidationError(msg)
        if len(password) < MIN_PASSWORD_LENGTH:
            msg = f"the password must have at least {MIN_PASSWORD_LENGTH} characters; got {len(password)}."
            raise ValidationError(msg)
        encoded = hash_password(password)
        with self._locked() as users:
            if name in users and not replace:
                msg = f"user {name!r} exists already; use --replace to change their password or role."
                raise ValidationError(msg)
            created = users.get(name, {}).get("created_at") or _dt.datetime.now(_dt.timezone.utc).isoformat(
                timespec="seconds")
            users[name] = {"role": role, "password": encoded, "created_at": created}
        return User(name, role, created)

    def remove(self, name: str) -> None:
        """Remove a user.

        Raises
        ------
        KeyError
            If there is no such user.
        """
        with self._locked() as users:
            if name not in users:
                msg = f"no user {name!r}; users are {', '.join(sorted(users)) or '(none)'}."
                raise KeyError(msg)
            del users[name]


@functools.cache
def _dummy_hash() -> str:
    return hash_password("fusionlab-timing-equaliser")
