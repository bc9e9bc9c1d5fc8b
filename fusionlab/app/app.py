"""The web app factory: `create_app` builds the Flask server (login gate) and the Dash pages on it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionlab.app._clinical import ParameterCache
from fusionlab.app._data import DEFAULT_MAX_POINTS, ZOOM_MAX_POINTS, FigureCache, OverviewCache, SessionIndex
from fusionlab.app._upload import DEFAULT_UPLOAD_MAX_BYTES, JobTable
from fusionlab.app._users import UserStore, can, private_dir, write_private
from fusionlab.app._video import FrameServer
from fusionlab.exceptions import ValidationError

__all__ = ["AppContext", "create_app", "frame_url", "get_context", "load_secret_key"]

SECRET_FILENAME = "secret_key"
_HERE = Path(__file__).resolve().parent


@dataclass
class AppContext:
    """What the pages need, per app (kept in ``server.config``, so several apps can live in one process)."""

    data_dir: Path
    index: SessionIndex
    figures: FigureCache = field(default_factory=FigureCache)
    max_points: int = DEFAULT_MAX_POINTS
    zoom_max_points: int = ZOOM_MAX_POINTS
    params: ParameterCache = field(default_factory=ParameterCache)
    frames: FrameServer = field(default_factory=FrameServer)
    jobs: JobTable = field(default_factory=JobTable)
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    overviews: OverviewCache | None = None
    """Ready overview figures on disk (``DIR/.fusionlab/cache/``); None: built at every view (memory cache only)."""


def get_context() -> AppContext:
    """The `AppContext` of the app serving the current request."""
    import flask

    return flask.current_app.config["FUSIONLAB_CONTEXT"]


def load_secret_key(data_dir: str | os.PathLike[str]) -> bytes:
    """The app's secret key (signs the session cookie, keys the opaque session ids): generated once (32 random
    bytes) and kept in ``DIR/.fusionlab/secret_key`` with mode 0600. Deleting the file logs everybody out and
    changes every session id."""
    path = private_dir(data_dir, create=True) / SECRET_FILENAME
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    key = secrets.token_bytes(32)
    write_private(path, key)
    return key


def _claim_global_callbacks(app: Any) -> None:
    """Move the callbacks the page modules just registered with ``dash.callback`` onto this app now.

    Dash would do it at the first request; doing it here keeps two apps created in one process (tests) from
    picking up each other's callbacks.
    """
    from dash import _callback

    app.callback_map.update(_callback.GLOBAL_CALLBACK_MAP)
    app._callback_list.extend(_callback.GLOBAL_CALLBACK_LIST)
    _callback.GLOBAL_CALLBACK_MAP.clear()
    _callback.GLOBAL_CALLBACK_LIST.clear()


FRAME_ROUTE = "/_fusionlab/frame/<sid>"
"""The session page's video frame (JPEG): ``?t=<session time s>&cam=<index>``. Starts with ``/_``, so the login gate
answers 401 (not a redirect) without a login; the session is named by its opaque id only."""


def frame_url(sid: str, t_s: float, camera: int = 0) -> str:
    """The URL of the video frame of session ``sid`` at session time ``t_s`` (ms resolution)."""
    return f"/_fusionlab/frame/{sid}?t={t_s:.3f}&cam={int(camera)}"


def _install_frame_route(server: Any) -> None:
    import flask

    @server.route(FRAME_ROUTE, methods=["GET"])
    def video_frame(sid: str) -> Any:
        c = get_context()
        path = c.index.path_of(sid)
        try:
            t = float(flask.request.args.get("t", "nan"))
            cam = int(flask.request.args.get("cam", "0"))
        except ValueError:
            flask.abort(400)
        if path is None:
            flask.abort(404)
        frame = c.frames.frame(path, t, camera=cam)
        if frame is None:
            flask.abort(404)
        resp = flask.Response(frame.jpeg, mimetype="image/jpeg")
        resp.headers["X-Frame-Index"] = str(frame.index)
        return resp


UPLOAD_ROUTE = "/_fusionlab/upload"
"""POST the raw bytes of one recording (not a form: the body is streamed to disk as it arrives). Headers:
``X-Requested-With: fusionlab-upload`` (required; a cross-site form cannot set it), ``X-Upload-Name`` (the file name,
percent-encoded), ``X-Upload-Target`` (``new`` or the opaque id of an existing session), ``X-Upload-Subject`` and
``X-Upload-Date`` (new sessions; percent-encoded), ``X-Upload-Process`` (``1``: detect events and fuse after the
ingest). Answers JSON: ``202 {"job": id, "message"}``, or ``{"error": message}`` with 400 (bad request), 403 (role),
404 (unknown session), 411 (no Content-Length), 413 (too large) or 415 (not a supported recording)."""
EXPORT_ROUTE = "/_fusionlab/export/<sid>/<fmt>"
"""GET a session's results: ``fmt`` = ``results.csv`` (`fusionlab.app._export.results_csv`) or ``session.c3d``."""
EXPORT_FORMATS = ("results.csv", "session.c3d")


def export_url(sid: str, fmt: str) -> str:
    """The download URL of a session's export (``fmt`` in `EXPORT_FORMATS`)."""
    return f"/_fusionlab/export/{sid}/{fmt}"


def _json_response(status: int, **body: Any) -> Any:
    import flask

    return flask.Response(flask.json.dumps(body), status=status, mimetype="application/json")


def _install_upload_route(server: Any) -> None:
    import urllib.parse

    import flask

    from fusionlab.app._audit import audit
    from fusionlab.app._auth import current_user_name, current_user_role
    from fusionlab.app._data import session_id
    from fusionlab.app._upload import (
        Job,
        check_recording,
        new_session_path,
        run_ingest,
        safe_filename,
        upload_folder,
        validate_date,
        validate_subject,
    )

    @server.route(UPLOAD_ROUTE, methods=["POST"])
    def upload() -> Any:
        import shutil

        c = get_context()
        user, role = current_user_name(), current_user_role()
        h = flask.request.headers
        if not can(role, "upload"):
            audit(c.data_dir, user, "upload_refused", None, reason="role")
            return _json_response(403, error=f"your role ({role}) may not upload recordings (read-only).")
        if h.get("X-Requested-With") != "fusionlab-upload":
            return _json_response(400, error="uploads come from the sessions page (missing X-Requested-With).")
        length = flask.request.content_length
        if length is None:
            return _json_response(411, error="the upload needs a Content-Length (send the file itself as the body).")
        limit = c.upload_max_bytes
        if length > limit:  # refused before one byte of the body is read
            audit(c.data_dir, user, "upload_refused", None, reason="too_large", bytes=length)
            return _json_response(413, error=f"the file is {length / 1e6:.1f} MB; the limit is {limit / 1e6:.1f} MB.")
        try:
            name = safe_filename(urllib.parse.unquote(h.get("X-Upload-Name", "")))
            target = h.get("X-Upload-Target", "new")
            date = validate_date(urllib.parse.unquote(h.get("X-Upload-Date", "")))
            if target == "new":
                subject = validate_subject(urllib.parse.unquote(h.get("X-Upload-Subject", "")))
                session_path = None
            else:
                subject = ""
                session_path = c.index.path_of(target)
                if session_path is None:
                    return _json_response(404, error="no such session (it may have been moved); reload the page.")
        except ValidationError as e:
            return _json_response(400, error=str(e))
        process = h.get("X-Upload-Process", "0") == "1"

        folder = upload_folder(c.data_dir)
        dest = folder / name
        flask.request.max_content_length = limit  # this route's limit, not the 16 MB of the Dash callbacks
        received = 0
        try:
            stream = flask.request.stream
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                while chunk := stream.read(1 << 20):
                    received += len(chunk)
                    if received > limit:
                        raise OverflowError
                    fh.write(chunk)
            if received != length:
                shutil.rmtree(folder, ignore_errors=True)
                return _json_response(400, error="the upload was interrupted; try again.")
            entry = check_recording(dest, name)
        except OverflowError:
            shutil.rmtree(folder, ignore_errors=True)
            return _json_response(413, error=f"the file is larger than the limit of {limit / 1e6:.1f} MB.")
        except ValidationError as e:
            shutil.rmtree(folder, ignore_errors=True)
            audit(c.data_dir, user, "upload_refused", None, reason="type", bytes=received)
            return _json_response(415, error=str(e))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        new = session_path is None
        if session_path is None:
            session_path = new_session_path(c.data_dir, date)
        sid = session_id(session_path.relative_to(c.data_dir).as_posix(), c.index.key)
        job = Job(id=folder.name[:16], user=user, filename=name, fmt=entry.name, session=sid, new_session=new,
                  process=process)
        audit(c.data_dir, user, "upload", sid, upload=folder.name, format=entry.name, bytes=received,
              new_session=new, job=job.id)

        def work(update: Any) -> dict[str, Any]:
            try:
                out = run_ingest(dest, session_path, subject=subject, session_date=date, process=process,
                                 update=update, shown_name=name)
            except Exception as e:
                audit(c.data_dir, user, "ingest", sid, job=job.id, result="failed")
                raise e from None
            audit(c.data_dir, user, "ingest", sid, job=job.id, result="ok", streams=len(out["streams"]))
            return out

        c.jobs.submit(job, work)
        return _json_response(202, job=job.id, session=sid,
                              message=f"{name} ({entry.name}, {received / 1e6:.1f} MB) received; ingesting ...")


def _install_export_route(server: Any) -> None:
    import flask

    from fusionlab.app._audit import audit
    from fusionlab.app._auth import current_user_name, current_user_role
    from fusionlab.app._export import results_csv, session_c3d
    from fusionlab.exceptions import FileFormatError

    @server.route(EXPORT_ROUTE, methods=["GET"])
    def export(sid: str, fmt: str) -> Any:
        c = get_context()
        user, role = current_user_name(), current_user_role()
        if not can(role, "export"):
            return _json_response(403, error=f"your role ({role}) may not export.")
        if fmt not in EXPORT_FORMATS:
            flask.abort(404)
        path = c.index.path_of(sid)
        if path is None:
            flask.abort(404)
        if fmt == "results.csv":
            from fusionlab.persist import open_session

            with open_session(path) as r:
                header = {"subject": r.subject or "", "session_date": r.session_date or "", "session_id": sid}
            body: bytes = results_csv(path, header=header).encode("utf-8")
            mimetype = "text/csv"
        else:
            try:
                body, _counts = session_c3d(path)
            except FileFormatError as e:
                return _json_response(409, error=f"this session cannot be exported to C3D: {e.reason}")
            mimetype = "application/octet-stream"
        audit(c.data_dir, user, "export", sid, format=fmt, bytes=len(body))
        resp = flask.Response(body, mimetype=mimetype)
        # no pseudonym in the file name: the browser may keep it in its download history
        resp.headers["Content-Disposition"] = f'attachment; filename="session-{sid[:8]}-{fmt}"'
        return resp


def create_app(data_dir: str | os.PathLike[str], *, cookie_secure: bool = False, max_points: int = DEFAULT_MAX_POINTS,
               zoom_max_points: int = ZOOM_MAX_POINTS, require_users: bool = True,
               upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES) -> Any:
    """Build the web app serving every session under ``data_dir``.

    Parameters
    ----------
    data_dir
        Folder of session files (``*.h5``, searched recursively; re-scanned on every page load). Its private
        folder ``.fusionlab/`` holds the users file, the secret key and the audit log.
    cookie_secure
        Mark the session cookie Secure (only sent over HTTPS): set it when a TLS proxy sits in front.
    max_points, zoom_max_points
        Points per trace in the overview and in zoomed views.
    require_users
        Refuse to build an app nobody can log in to.
    upload_max_bytes
        Largest recording accepted by the upload route (the Dash callbacks keep a 16 MB request limit).

    Returns
    -------
    dash.Dash
        The app; ``app.server`` is the Flask WSGI application.

    Raises
    ------
    FileNotFoundError
        If ``data_dir`` is not a folder.
    ValidationError
        If there are no users yet (run ``fusionlab users add NAME --data DIR``).
    """
    import dash
    import flask
    from dash import _callback, dcc, html

    from fusionlab.app._auth import current_user_name, current_user_role, install_auth

    data_dir = Path(data_dir).resolve()
    if not data_dir.is_dir():
        msg = f"{data_dir}: no such folder (give the folder of session files with --data DIR)"
        raise FileNotFoundError(msg)
    store = UserStore(data_dir)
    if require_users and not store.list():
        msg = (f"no users yet in {store.path}; nobody could log in. Add one first: "
               f"fusionlab users add NAME --role admin --data {data_dir}")
        raise ValidationError(msg)
    key = load_secret_key(data_dir)

    server = flask.Flask("fusionlab.app")
    server.config.update(
        SECRET_KEY=key,
        SESSION_COOKIE_NAME="fusionlab_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=cookie_secure,
        PERMANENT_SESSION_LIFETIME=12 * 3600,
        REMEMBER_COOKIE_DURATION=0,
        MAX_CONTENT_LENGTH=16 * 1024 * 1024,
        FUSIONLAB_CONTEXT=AppContext(data_dir, SessionIndex(data_dir, key), FigureCache(),
                                     max_points, zoom_max_points, upload_max_bytes=upload_max_bytes,
                                     overviews=OverviewCache(data_dir / ".fusionlab" / "cache")),
    )
    install_auth(server, data_dir, store)  # before Dash: the gate runs ahead of Dash's own hooks
    _install_frame_route(server)
    _install_upload_route(server)
    _install_export_route(server)

    _callback.GLOBAL_CALLBACK_MAP.clear()  # drop callbacks of an app created earlier and never started
    _callback.GLOBAL_CALLBACK_LIST.clear()
    app = dash.Dash(
        "fusionlab.app", server=server, use_pages=True, pages_folder="pages",
        assets_folder=str(_HERE / "assets"), serve_locally=True, external_stylesheets=[], external_scripts=[],
        title="fusionlab", update_title=None, suppress_callback_exceptions=True, compress=False,
        include_pages_meta=False, eager_loading=True,
    )
    app.config.include_assets_files = True
    _claim_global_callbacks(app)

    def shell() -> Any:
        return html.Div([
            html.Header([
                dcc.Link("fusionlab", href="/", className="brand"),
                dcc.Link("sessions", href="/", className="nav"),
                dcc.Link("triage", href="/triage", className="nav"),
                html.Span(f"{current_user_name()} ({current_user_role()})", id="hdr-user", className="user"),
                html.A("Log out", href="/logout", className="logout"),
            ], className="topbar"),
            html.Main(dash.page_container, className="content"),
        ])

    app.layout = shell
    return app
