"""Clinical profiles (data in ``fusionlab/app/profiles.json``) and the profile chosen per patient.

The choice is stored in ``DIR/.fusionlab/patients.json`` (``{pseudonym: {"profile", "set_by", "set_at"}}``, mode
0600, atomic writes). Only roles with the ``set_profile`` permission (clinician, admin) may change it; researchers
read it. Patients without a choice use `DEFAULT_PROFILE`.
"""

from __future__ import annotations

import datetime as _dt
import functools
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fusionlab.app._users import can, private_dir
from fusionlab.exceptions import ValidationError

__all__ = ["DEFAULT_PROFILE", "PatientStore", "evaluate_thresholds", "load_profiles"]

DEFAULT_PROFILE = "general"
PATIENTS_FILENAME = "patients.json"
_HERE = Path(__file__).resolve().parent


@functools.lru_cache(maxsize=1)
def _profiles() -> dict[str, Any]:
    raw = json.loads((_HERE / "profiles.json").read_text(encoding="utf-8"))
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def load_profiles() -> dict[str, dict[str, Any]]:
    """``{profile_id: {"name", "lead": [parameter], "kinematics": bool, "thresholds": [{"parameter", "flag_if",
    "limit", "unit", "source"}]}}``."""
    return _profiles()


def evaluate_thresholds(profile: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The profile thresholds a session's values cross: ``[{"parameter", "value", "limit", "flag_if", "unit",
    "source", "text"}]``. A value whose 95 % interval still reaches the limit is reported as ``"uncertain":
    True`` (the finding could be measurement noise)."""
    out = []
    for th in profile.get("thresholds", []):
        v = values.get(th["parameter"])
        if not v or v.get("value") is None or not math.isfinite(v["value"]):
            continue
        x, lim = float(v["value"]), float(th["limit"])
        crossed = x < lim if th["flag_if"] == "below" else x > lim
        if not crossed:
            continue
        sem = v.get("sem")
        half = 1.96 * sem if isinstance(sem, (int, float)) and math.isfinite(sem) else 0.0
        uncertain = (x + half >= lim) if th["flag_if"] == "below" else (x - half <= lim)
        name = th["parameter"].replace("_", " ")
        out.append({**th, "value": x, "uncertain": bool(uncertain),
                    "text": f"{name} {x:.3g} {th['unit']} is {th['flag_if']} {lim:g}"
                            + (" (within its 95 % interval of the limit)" if uncertain else "")})
    return out


class PatientStore:
    """The per-patient settings of a data folder (today: the clinical profile)."""

    def __init__(self, data_dir: str | os.PathLike[str]) -> None:
        self.data_dir = Path(data_dir)
        self.path = private_dir(self.data_dir) / PATIENTS_FILENAME

    def _read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def profile_of(self, subject: str) -> str:
        """The profile id chosen for a patient (`DEFAULT_PROFILE` when none, or when the stored one no longer
        exists)."""
        p = self._read().get(subject, {}).get("profile", DEFAULT_PROFILE)
        return p if p in load_profiles() else DEFAULT_PROFILE

    def set_profile(self, subject: str, profile: str, *, user: str, role: str) -> None:
        """Choose a patient's profile.

        Raises
        ------
        PermissionError
            If ``role`` may not ``set_profile`` (researchers are read-only).
        ValidationError
            If ``profile`` is unknown or ``subject`` is empty.
        """
        if not can(role, "set_profile"):
            msg = f"role {role!r} may not change a patient's profile (clinician or admin only)"
            raise PermissionError(msg)
        if profile not in load_profiles():
            msg = (f"Invalid value for 'profile'. Allowed values are {', '.join(load_profiles())}, but got "
                   f"{profile!r} instead.")
            raise ValidationError(msg)
        if not subject:
            msg = "a patient pseudonym is needed to store a profile"
            raise ValidationError(msg)
        data = self._read()
        data[subject] = {"profile": profile, "set_by": user,
                         "set_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
        folder = private_dir(self.data_dir, create=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".patients-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, sort_keys=True)
            Path(tmp).chmod(0o600)
            Path(tmp).replace(self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
