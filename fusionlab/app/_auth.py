"""Login, logout and the gate in front of every route of the web app (Flask side of the Dash app).

- Login state is Flask's signed session cookie, managed by flask-login: it gives a tested ``login_user`` /
  ``logout_user`` / ``current_user`` and "strong" session protection (the session is dropped when the client's
  address or browser changes) instead of hand-written session handling. No "remember me" cookie is ever set.
- The cookie is HttpOnly, SameSite=Strict (never sent on cross-site requests, which also stops cross-site request
  forgery of Dash callbacks) and Secure when served over HTTPS (``cookie_secure``). It holds only the login name, a
  session identifier and the CSRF token of the login form: no patient data.
- `require_login` runs before every request: only the login page, ``/assets/*`` (the stylesheet, no data) and the
  favicon are public. Anything else without a login gets a redirect to ``/login`` (page requests) or ``401`` (Dash
  requests: ``/_dash-layout``, ``/_dash-dependencies``, ``/_dash-update-component``, component bundles).
- After a failed login for a name, further attempts for that name are refused for a while (`LoginThrottle`).
"""

from __future__ import annotations

import html
import secrets
import time
from collections.abc import Callable
from typing import Any

from fusionlab.app._audit import audit
from fusionlab.app._users import User, UserStore

__all__ = ["LoginThrottle", "install_auth"]

PUBLIC_PREFIXES = ("/assets/",)
PUBLIC_PATHS = ("/login", "/_favicon.ico", "/favicon.ico")
_CSRF_KEY = "login_csrf"


class LoginThrottle:
    """At most ``max_failures`` failed logins per name within ``window_s``; then refuse that name until the window
    has passed (slows down password guessing; the scrypt cost slows each guess too).
    """

    def __init__(self, max_failures: int = 5, window_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self._fails: dict[str, list[float]] = {}

    def _recent(self, name: str) -> list[float]:
        now = self.clock()
        recent = [t for t in self._fails.get(name, []) if now - t < self.window_s]
        self._fails[name] = recent
        return recent

    def blocked(self, name: str) -> bool:
        """Whether ``name`` is refused now."""
        return len(self._recent(name)) >= self.max_failures

    def failed(self, name: str) -> None:
        """Record a failed attempt."""
        self._recent(name).append(self.clock())

    def succeeded(self, name: str) -> None:
        """Forget the failures of ``name``."""
        self._fails.pop(name, None)


class _LoginUser:
    """flask-login's view of a `User`."""

    is_authenticated = True
    is_active = True
    is_anonymous = False

    def __init__(self, user: User) -> None:
        self.user = user
        self.name = user.name
        self.role = user.role

    def get_id(self) -> str:
        return self.user.name


def _login_page(error: str = "", csrf: str = "") -> str:
    err = f'<p class="login-error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fusionlab - sign in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body"><main class="login-box">
<h1>fusionlab</h1><p class="muted">Gait lab workstation. Sign in to see patient data.</p>{err}
<form method="post" action="/login" autocomplete="off">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<label>User <input name="username" autofocus required autocomplete="username"></label>
<label>Password <input name="password" type="password" required autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></main></body></html>"""


def install_auth(server: Any, data_dir: Any, store: UserStore, *, throttle: LoginThrottle | None = None) -> None:
    """Add flask-login, the login/logout routes and the login gate to a Flask app (before Dash is attached)."""
    import flask
    import flask_login

    throttle = throttle or LoginThrottle()
    manager = flask_login.LoginManager()
    manager.session_protection = "strong"
    manager.init_app(server)

    @manager.user_loader
    def _load(name: str) -> _LoginUser | None:
        u = store.get(name)  # re-read on every request: a removed user is logged out at once
        return None if u is None else _LoginUser(u)

    @server.before_request
    def require_login() -> Any:
        path = flask.request.path
        if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES):
            return None
        if flask_login.current_user.is_authenticated:
            return None
        if flask.request.method == "GET" and not path.startswith("/_"):
            return flask.redirect("/login")
        return flask.Response('{"error": "login required"}', status=401, mimetype="application/json")

    @server.after_request
    def _headers(resp: Any) -> Any:
        h = resp.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        # the browser may load nothing from other hosts: no CDN, no fonts, no analytics (offline by construction)
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                     "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
                     "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'self'")
        if not flask.request.path.startswith(("/assets/", "/_dash-component-suites/")):
            h["Cache-Control"] = "no-store"  # pages and callback responses carry patient data
        return resp

    @server.route("/login", methods=["GET", "POST"])
    def login() -> Any:
        if flask.request.method == "GET":
            if flask_login.current_user.is_authenticated:
                return flask.redirect("/")
            token = flask.session.setdefault(_CSRF_KEY, secrets.token_urlsafe(32))
            return _login_page(csrf=token)
        form = flask.request.form
        token = flask.session.get(_CSRF_KEY)
        if not token or not secrets.compare_digest(str(form.get("csrf", "")), token):
            flask.session[_CSRF_KEY] = new = secrets.token_urlsafe(32)
            return _login_page("The form expired; please sign in again.", new), 400
        name = str(form.get("username", "")).strip()
        password = str(form.get("password", ""))
        if throttle.blocked(name):
            audit(data_dir, name if store.get(name) else "-", "login_refused_throttled")
            return _login_page("Too many failed attempts; wait a few minutes.", token), 429
        user = store.verify(name, password)
        if user is None:
            throttle.failed(name)
            # the attempted name is logged only if it is a real user (people type passwords into the name field)
            audit(data_dir, name if store.get(name) else "-", "login_failed")
            return _login_page("Wrong user or password.", token), 401
        throttle.succeeded(name)
        flask.session.clear()  # a fresh session at login (no fixation)
        flask_login.login_user(_LoginUser(user), remember=False)
        audit(data_dir, user.name, "login")
        return flask.redirect("/")

    @server.route("/logout", methods=["GET", "POST"])
    def logout() -> Any:
        user = flask_login.current_user
        if user.is_authenticated:
            audit(data_dir, user.name, "logout")
        flask_login.logout_user()
        flask.session.clear()
        return flask.redirect("/login")


def current_user_name() -> str:
    """Login name of the request's user (``"-"`` outside a request or when nobody is logged in)."""
    import flask_login

    try:
        u = flask_login.current_user
        return u.name if u.is_authenticated else "-"
    except (RuntimeError, AttributeError):
        return "-"


def current_user_role() -> str:
    """Role of the request's user (``""`` when nobody is logged in)."""
    import flask_login

    try:
        u = flask_login.current_user
        return u.role if u.is_authenticated else ""
    except (RuntimeError, AttributeError):
        return ""
