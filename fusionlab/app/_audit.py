"""The audit log: who viewed (later: exported, annotated) which session, and logins.

``DIR/.fusionlab/audit.log``, JSON lines, mode 0600, append-only (``O_APPEND``: each line is written by one
``write`` call, so concurrent requests do not interleave). Sessions are named by their opaque id, never by path or
subject pseudonym, so the log itself holds no patient data; the id maps to a file only with the data folder and its
secret key.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
from pathlib import Path
from typing import Any

from fusionlab.app._users import private_dir, write_private

__all__ = ["AUDIT_FILENAME", "audit", "read_audit"]

AUDIT_FILENAME = "audit.log"


def audit(data_dir: str | os.PathLike[str], user: str, action: str, session_id: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """Append one record ``{time, user, action, session, ...extra}`` and return it.

    Parameters
    ----------
    user
        Login name (``"-"`` when nobody is logged in, e.g. a failed login of an unknown name).
    action
        ``"login"``, ``"login_failed"``, ``"logout"``, ``"view_session"`` (later ``"export_session"``, ...).
    session_id
        Opaque session id, or None.
    """
    record = {"time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"), "user": user,
              "action": action, "session": session_id, **extra}
    line = (json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    path = private_dir(data_dir, create=True) / AUDIT_FILENAME
    write_private(path, line, append=True)
    return record


def read_audit(data_dir: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of the audit log, oldest first (empty when there is none)."""
    path = Path(private_dir(data_dir)) / AUDIT_FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
