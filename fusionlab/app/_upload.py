"""Uploads of recordings into sessions: file names, the content type check, storage and the background ingest jobs.

No web framework here (the Flask route in `fusionlab.app.app` calls these functions), so everything is unit-tested
without a server:

- `safe_filename`: the uploaded name reduced to ``A-Za-z0-9._-`` (no folders, no leading dot), suffix kept.
- `check_recording`: the type check, by content: the project's dispatcher (`fusionlab.adapters.find_adapter`)
  must pick a reader *and* that reader's sniffer must accept the first bytes (``find_adapter`` alone falls back to
  the suffix when only one reader claims it, e.g. ``.c3d``); C3D files must also point to a real parameter section
  (the C3D sniffer only tests byte 1 = 0x50, which a PNG's ``\\x89PNG`` passes).
- `upload_folder`: ``DIR/.fusionlab/uploads/<random id>/`` (0700; the hidden private folder is never scanned as
  sessions nor served: no route serves files from it). Uploaded files are kept after the ingest: the session's
  provenance points to them (the video panel finds a pose video there).
- `JobTable`: jobs in memory, run one at a time by a worker thread (`run_ingest`: `fusionlab.ingest.ingest` into
  the chosen session, atomically, then optionally ``events`` + ``fuse``); the page polls `JobTable.for_user`.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fusionlab.app._users import private_dir
from fusionlab.exceptions import FileFormatError, FusionlabError, ValidationError

__all__ = ["DEFAULT_UPLOAD_MAX_BYTES", "Job", "JobTable", "check_recording", "new_session_path", "run_ingest",
           "safe_filename", "upload_folder", "validate_date", "validate_subject"]

DEFAULT_UPLOAD_MAX_BYTES = 1024 * 1024 * 1024
"""Per-file limit (1 GiB: a few minutes of HD video); ``create_app(upload_max_bytes=...)`` changes it."""
UPLOADS_DIRNAME = "uploads"
NEW_SESSIONS_DIRNAME = "uploaded"
"""New sessions made from uploads go to ``DIR/uploaded/<date>-<random>.h5`` (no pseudonym in the file name)."""
_SUBJECT_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
KINDS = "C3D, IMU (CSV, Xsens, gaitmap, Mobilise-D .mat, XDF), force-plate exports (CSV, .mot, Kistler) or video"


def safe_filename(name: str) -> str:
    """The base name of an uploaded file reduced to ``A-Za-z0-9._-`` (no folders, no leading dots), suffix kept.

    Raises
    ------
    ValidationError
        If nothing usable is left (``"..."``, an empty name).
    """
    base = re.split(r"[\\/]", name or "")[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip("._")[-120:]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    if not stem.strip("_-."):
        msg = f"unusable file name {name!r}: give the recording a name with letters or digits."
        raise ValidationError(msg)
    return base


def validate_subject(subject: str) -> str:
    """A subject pseudonym for a new session: 1-64 of ``A-Za-z0-9_.-`` (a pseudonym, not a name)."""
    subject = (subject or "").strip()
    if not _SUBJECT_RE.match(subject):
        msg = ("give the subject's pseudonym for the new session (1-64 letters, digits, '_', '.' or '-'; "
               "a pseudonym such as S042, never a patient's name).")
        raise ValidationError(msg)
    return subject


def validate_date(date: str) -> str:
    """A session date ``YYYY-MM-DD`` (or empty)."""
    date = (date or "").strip()
    if not date:
        return ""
    try:
        if not _DATE_RE.match(date):
            raise ValueError(date)
        _dt.date.fromisoformat(date)
    except ValueError:
        msg = f"invalid session date {date!r}: use YYYY-MM-DD."
        raise ValidationError(msg) from None
    return date


def upload_folder(data_dir: str | os.PathLike[str]) -> Path:
    """A new private folder for one upload: ``DIR/.fusionlab/uploads/<32 hex>/`` (mode 0700)."""
    root = private_dir(data_dir, create=True) / UPLOADS_DIRNAME
    root.mkdir(mode=0o700, exist_ok=True)
    folder = root / secrets.token_hex(16)
    folder.mkdir(mode=0o700)
    return folder


def new_session_path(data_dir: str | os.PathLike[str], date: str) -> Path:
    """Where a new session from an upload goes: ``DIR/uploaded/<date or undated>-<random>.h5``."""
    folder = Path(data_dir) / NEW_SESSIONS_DIRNAME
    folder.mkdir(exist_ok=True)
    return folder / f"{date or 'undated'}-{secrets.token_hex(4)}.h5"


def _c3d_parameter_section_ok(path: Path) -> bool:
    """Whether a C3D header points to a parameter section with a valid processor type (84/85/86: Intel/DEC/MIPS)."""
    with path.open("rb") as fh:
        head = fh.read(2)
        if len(head) < 2 or head[1] != 0x50 or head[0] < 2:
            return False
        fh.seek((head[0] - 1) * 512)
        block = fh.read(4)
    return len(block) == 4 and block[3] in (84, 85, 86)


def check_recording(path: str | os.PathLike[str], shown_name: str | None = None) -> Any:
    """The adapter that reads an uploaded file, chosen and confirmed by its content.

    Returns
    -------
    fusionlab.adapters.AdapterEntry

    Raises
    ------
    ValidationError
        If the content is not a supported recording (the message says what is accepted, with ``shown_name``).
    """
    from fusionlab.adapters import find_adapter

    p = Path(path)
    name = shown_name or p.name
    try:
        entry = find_adapter(p)
    except FileFormatError:
        msg = f"{name}: not a supported recording (the content was checked). Accepted: {KINDS}."
        raise ValidationError(msg) from None
    with p.open("rb") as fh:
        head = fh.read(8192)
    ok = entry.sniff(head, head.decode("utf-8", errors="replace"))
    if ok and entry.name == "c3d":
        ok = _c3d_parameter_section_ok(p)
    if not ok:
        msg = (f"{name}: the name says {entry.name} ({p.suffix}) but the content is not; refused. "
               f"Accepted: {KINDS}.")
        raise ValidationError(msg)
    return entry


# ---------------------------------------------------------------------------------------------------- jobs
@dataclass
class Job:
    """One upload being ingested (what the page shows; no server paths)."""

    id: str
    user: str
    filename: str
    fmt: str
    session: str  # opaque id of the target session
    new_session: bool
    process: bool  # run events + fuse after the ingest
    state: str = "queued"  # queued | running | done | failed
    stage: str = "queued"
    progress: float = 0.0
    message: str = ""
    streams: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)
    finished: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobTable:
    """Ingest jobs in memory (per server process), run one at a time by a worker thread.

    One worker: two jobs never write the same session at once, and a large video does not starve the web server
    of memory. The readers themselves run in child processes (`fusionlab.ingest`), so a crash is contained.
    """

    def __init__(self, max_jobs: int = 200) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fusionlab-ingest")
        self.max_jobs = max_jobs

    def submit(self, job: Job, work: Callable[[Callable[..., None]], dict[str, Any]]) -> Job:
        """Queue ``work(update)``; it reports with ``update(stage=..., progress=...)`` and returns the final fields."""
        with self._lock:
            self._jobs[job.id] = job
            if len(self._jobs) > self.max_jobs:  # forget the oldest finished jobs
                for jid in [j.id for j in sorted(self._jobs.values(), key=lambda j: j.created)
                            if j.finished is not None][: len(self._jobs) - self.max_jobs]:
                    del self._jobs[jid]

        def update(**fields: Any) -> None:
            with self._lock:
                for k, v in fields.items():
                    setattr(job, k, v)

        def run() -> None:
            update(state="running")
            try:
                final = work(update)
                update(state="done", progress=1.0, finished=time.time(), **final)
            except Exception as e:  # shown to the user; the job table must survive anything
                update(state="failed", finished=time.time(), message=str(e) or type(e).__name__)

        self._pool.submit(run)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            j = self._jobs.get(job_id)
            return None if j is None else Job(**j.as_dict())

    def for_user(self, user: str) -> list[Job]:
        """The user's jobs, newest first (copies)."""
        with self._lock:
            jobs = [Job(**j.as_dict()) for j in self._jobs.values() if j.user == user]
        return sorted(jobs, key=lambda j: j.created, reverse=True)

    def wait(self, job_id: str, timeout_s: float = 60.0) -> Job | None:
        """Poll until the job has finished (tests, scripts); the job as it is then."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            j = self.get(job_id)
            if j is None or j.finished is not None:
                return j
            time.sleep(0.05)
        return self.get(job_id)


def _clean(message: str, replacements: dict[str, str]) -> str:
    for long, short in replacements.items():
        message = message.replace(long, short)
    return message


def run_ingest(upload: Path, session_path: Path, *, subject: str, session_date: str, process: bool,
               update: Callable[..., None], shown_name: str) -> dict[str, Any]:
    """The job: ingest ``upload`` into ``session_path`` (created when new; atomic: on error nothing changes), then
    with ``process`` detect gait events and fuse (``fusionlab events`` + ``fusionlab fuse``).

    Raises
    ------
    FusionlabError
        With the ingest's message, server paths replaced by the file name / "the session".
    """
    import warnings

    from fusionlab.ingest import ingest

    names = {str(upload.resolve()): shown_name, str(upload): shown_name, str(session_path.resolve()): "the session",
             str(session_path): "the session"}
    update(stage="reading the recording", progress=0.2)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            report = ingest([upload], session_path, subject=subject, session_date=session_date,
                            progress=lambda _name: update(stage="reading the recording", progress=0.3))
    except FusionlabError as e:
        raise FusionlabError(_clean(f"ingest refused, the session is unchanged: {e}", names)) from None
    out: dict[str, Any] = {"streams": list(report.streams), "warnings": [_clean(w, names) for w in report.warnings]}
    msg = f"{len(report.streams)} stream(s) added"
    if process:
        from fusionlab.cli import gait_events
        from fusionlab.fusion import fuse_session

        update(stage="detecting gait events", progress=0.6)
        notes: list[str] = []
        try:
            events = gait_events(session_path, "all", store=True, notes=notes)
            update(stage="fusing", progress=0.8)
            results = fuse_session(session_path, store=True)
        except (FusionlabError, ValueError, KeyError) as e:  # the recording is stored; say what failed after it
            out["warnings"].append(_clean(f"events/fusion failed (the recording is stored): {e}", names))
        else:
            n_det = sum(e["source"] != "annotation" for e in events)
            n_conf = sum(len(r.conflicts) for r in results)
            msg += f"; {n_det} gait event(s) detected; fused ({n_conf} conflict(s))"
            out["warnings"] += [_clean(n, names) for n in notes]
    out["message"] = msg
    out["stage"] = "done"
    return out

