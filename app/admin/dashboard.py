"""The usage dashboard: server-rendered HTML pages under /admin/ for people signed in with the
admin key.

Sign-in pastes the admin key into a form; a Flask session cookie (signed, HttpOnly,
SameSite=Lax, path /admin) then marks the browser signed in. The signing secret is derived from
the admin key, so every worker and instance agrees on it without more configuration, and a new
admin key signs everyone out. The session holds a flag, a fingerprint of the admin key and a
CSRF token, never the key. With no admin key configured the pages are closed (403), as the
admin API is. Data comes from `reports` only; the pages use no JavaScript and no external asset.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from .. import reports
from ..database import Database
from ..ledger.outcomes import Outcome
from ..services import services
from . import charts

log = logging.getLogger("switchboard.dashboard")
dashboard = Blueprint("dashboard", __name__, template_folder="templates")

SESSION_CONTEXT = b"switchboard-dashboard-session"
FINGERPRINT_CONTEXT = b"switchboard-dashboard-fingerprint"
# A signed session cookie is refused once this old: a copied cookie does not work for ever.
SESSION_LIFETIME = timedelta(hours=12)
RECENT_CALLS = 50
TOP = 10
OUTCOMES = tuple(Outcome)
# Outcomes the recent-calls table does not mark as failures.
UNMARKED = (Outcome.OK, Outcome.IN_PROGRESS)
# No script may run and nothing may be fetched from elsewhere: the pages are HTML, inline CSS
# and inline SVG only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def session_secret(admin_key: str) -> str:
    """The session signing secret: the same in every process that has the same admin key."""
    return hmac.new(admin_key.encode(), SESSION_CONTEXT, hashlib.sha256).hexdigest()


def fingerprint(admin_key: str) -> str:
    """Names the admin key a session was signed in with, without revealing it."""
    return hmac.new(admin_key.encode(), FINGERPRINT_CONTEXT, hashlib.sha256).hexdigest()[:32]


def _admin_key() -> str | None:
    return services().settings.admin_key


def signed_in() -> bool:
    key = _admin_key()
    return bool(key and session.get("signed_in") and session.get("fp") == fingerprint(key))


def csrf_token() -> str:
    """This session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _csrf_ok() -> bool:
    expected = session.get("csrf")
    given = request.form.get("csrf_token", "")
    return isinstance(expected, str) and hmac.compare_digest(given.encode(), expected.encode())


def _page(template: str, status: int = 200, **context: Any) -> Response:
    return make_response(render_template(f"dashboard/{template}", **context), status)


@dashboard.before_request
def require_sign_in() -> Response | None:
    """Closed without an admin key; everything but the login page needs a signed-in session."""
    if not _admin_key():
        return _page("login.html", 403, closed=True)
    if request.endpoint == "dashboard.login" or signed_in():
        return None
    return redirect(url_for("dashboard.login"), 303)


@dashboard.after_request
def harden(resp: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        resp.headers.setdefault(name, value)
    return resp


@dashboard.route("/login", methods=["GET", "POST"])
def login() -> Response:
    if request.method == "GET":
        if signed_in():
            return redirect(url_for("dashboard.overview"), 303)
        return _page("login.html", csrf=csrf_token())
    if not _csrf_ok():
        session.clear()
        return _page(
            "login.html",
            400,
            csrf=csrf_token(),
            error="The sign-in form expired or your browser refused its cookie: try again.",
        )
    given = request.form.get("admin_key", "").strip()
    expected = _admin_key() or ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        log.warning("dashboard sign-in refused for %s", request.remote_addr)
        return _page("login.html", 401, csrf=csrf_token(), error="That is not the admin key.")
    session.clear()  # a fresh session (and CSRF token) for the signed-in browser
    session.update(signed_in=True, fp=fingerprint(expected), csrf=secrets.token_urlsafe(32))
    log.info("dashboard sign-in from %s", request.remote_addr)
    return redirect(url_for("dashboard.overview"), 303)


@dashboard.post("/logout")
def logout() -> Response:
    if not _csrf_ok():
        return _page("login.html", 400, csrf=csrf_token(), error="The sign-out form expired.")
    session.clear()
    return redirect(url_for("dashboard.login"), 303)


@dashboard.get("/")
def overview() -> Response:
    filters = Filters.from_args(request.args)
    context: dict[str, Any] = {
        "filters": filters, "outcomes": OUTCOMES, "unmarked": UNMARKED, "csrf": csrf_token(),
    }  # fmt: skip
    try:
        data = load_overview(services().db, filters)
    except reports.ReportError as exc:
        return _page("overview.html", 400, error=str(exc), **context)
    return _page("overview.html", overview=data, **context)


# ---- the page's data ----------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The overview's query: the period, key and model scope everything; outcome the calls."""

    since: str = "30d"
    until: str = ""
    key: str = ""
    model: str = ""
    outcome: str = ""

    @classmethod
    def from_args(cls, args: MultiDict[str, str]) -> Filters:
        def arg(name: str, default: str = "") -> str:
            return args.get(name, default).strip()[:200]

        return cls(arg("since", "30d"), arg("until"), arg("key"), arg("model"), arg("outcome"))

    def scope(self) -> dict[str, str | None]:
        return {
            "since": self.since or None,
            "until": self.until or None,
            "key": self.key or None,
            "model": self.model or None,
        }


@dataclass(frozen=True)
class Overview:
    cost_chart: charts.Chart
    tokens_chart: charts.Chart
    totals: dict[str, Any]
    top_keys: list[dict[str, Any]]
    top_users: list[dict[str, Any]]
    calls: list[dict[str, Any]]


def load_overview(db: Database, filters: Filters) -> Overview:
    """Everything the overview shows; raises `reports.ReportError` for unusable filters."""
    scope = filters.scope()
    per_day = reports.usage(db, by=("day", "model"), **scope)
    try:
        total_rows = reports.usage(db, by=(), **scope)
    except reports.ReportError:
        total_rows = []  # a reports version without a totals row: summed from per_day below
    colours = charts.model_colours(per_day)
    return Overview(
        cost_chart=charts.stacked_bars(per_day, "cost_usd", colours, label=charts.usd),
        tokens_chart=charts.stacked_bars(per_day, "total_tokens", colours, label=charts.count),
        totals=charts.totals(total_rows[0] if total_rows else None, per_day),
        top_keys=charts.top_by_cost(reports.usage(db, by=("key",), **scope), "key", TOP),
        top_users=charts.top_by_cost(reports.usage(db, by=("user",), **scope), "user", TOP),
        calls=reports.list_calls(db, limit=RECENT_CALLS, outcome=filters.outcome or None, **scope),
    )


class DashboardSessions(SecureCookieSessionInterface):
    """Sessions for the dashboard's pages only: every other request (the API's hot path)
    gets the null session without reading a cookie."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not request.path.startswith("/admin"):
            return self.null_session_class()
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Register the pages; with an admin key, derive the session secret and cookie settings."""
    key = app.extensions["switchboard"].settings.admin_key
    if key:
        app.secret_key = session_secret(key)
    app.session_interface = DashboardSessions()
    app.config.update(
        SESSION_COOKIE_NAME="switchboard_dashboard",
        SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    for name, fmt in (("usd", charts.usd), ("count", charts.count), ("ms", charts.ms)):
        app.add_template_filter(fmt, name)
    app.register_blueprint(dashboard, url_prefix="/admin")
