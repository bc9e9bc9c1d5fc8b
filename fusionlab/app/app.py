"""The web app factory: `create_app` builds the Flask server (login gate) and the Dash pages on it."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fusionlab.app._clinical import ParameterCache
from fusionlab.app._data import DEFAULT_MAX_POINTS, ZOOM_MAX_POINTS, FigureCache, SessionIndex
from fusionlab.app._users import UserStore, private_dir
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
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
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


def create_app(data_dir: str | os.PathLike[str], *, cookie_secure: bool = False, max_points: int = DEFAULT_MAX_POINTS,
               zoom_max_points: int = ZOOM_MAX_POINTS, require_users: bool = True) -> Any:
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
                                     max_points, zoom_max_points),
    )
    install_auth(server, data_dir, store)  # before Dash: the gate runs ahead of Dash's own hooks
    _install_frame_route(server)

    _callback.GLOBAL_CALLBACK_MAP.clear()  # drop callbacks of an app created earlier and never started
    _callback.GLOBAL_CALLBACK_LIST.clear()
    app = dash.Dash(
        "fusionlab.app", server=server, use_pages=True, pages_folder="pages",
        assets_folder=str(_HERE / "assets"), serve_locally=True, external_stylesheets=[], external_scripts=[],
        title="fusionlab", update_title=None, suppress_callback_exceptions=True, compress=False,
        include_pages_meta=False,
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
