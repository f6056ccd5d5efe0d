"""Admin sign-in for the web pages: a signed session cookie, CSRF tokens, login throttling.

The session is Starlette's ``SessionMiddleware``: the cookie holds signed JSON (itsdangerous),
is HttpOnly and SameSite=Lax, and Secure when the service is reached over https. Every form that
changes something carries the session's CSRF token; a post without it, or with a wrong one, is
refused with 403 before the handler runs, so nothing changes.

The cookie names a sign-in recorded in the database (``scheduler.logins``); every admin request
checks that record, so signing out (or a revoked sign-in, or a removed admin) ends access on
every instance, whatever copies of the cookie exist.

Sign-in attempts are counted in the database per email and per client address
(``ratelimit.login_attempt``): past 5 in a 15-minute window further attempts are refused until
the window has passed, however many workers and instances serve the site; the per-minute rate
limit sits on top.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from scheduler import accounts, logins
from scheduler.config import Settings
from scheduler.errors import Unauthorized
from scheduler.web import ratelimit
from scheduler.web.pages import csrf_token, enforce_rate_limit, error_page, flash, render

SESSION_COOKIE = "scheduler_session"
SESSION_MAX_AGE = 12 * 60 * 60
LOGIN_PATH = "/admin/login"

Handler = Callable[[Request], Awaitable[Response]]


# Calendar feeds (course, all-courses, registrant, instructor and agency ones) are public or
# keyed by a token in their URL, and no feed handler reads or writes the page session.
SESSIONLESS_SUFFIX = "/calendar.ics"


class PageSessionMiddleware(SessionMiddleware):
    """Starlette's signed-cookie session, not loaded for calendar feed requests.

    Subscribed calendars poll the feeds all day, and a browser that is signed in sends its
    cookie with them too: for feeds the cookie is never verified or decoded (an HMAC and a JSON
    parse), and the handler sees an empty session that is not kept.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].endswith(SESSIONLESS_SUFFIX):
            scope["session"] = {}
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def session_middleware(settings: Settings) -> Middleware:
    """The signed-cookie session for the pages; Secure whenever the base URL is https."""
    return Middleware(
        PageSessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )


def csrf_ok(request: Request, submitted: object) -> bool:
    expected = request.session.get("csrf")
    if not isinstance(expected, str) or not isinstance(submitted, str) or not submitted:
        return False
    return hmac.compare_digest(expected.encode(), submitted.encode())


async def check_form(request: Request) -> Response | None:
    """For a POST: a 403 page unless the form carries this session's CSRF token."""
    if request.method != "POST":
        return None
    form = await request.form()
    if not csrf_ok(request, form.get("csrf_token")):
        return error_page(
            request,
            403,
            "Form expired",
            "This form could not be checked (missing or wrong security token). "
            "Go back, reload the page and try again.",
        )
    return None


def protected(handler: Handler) -> Handler:
    """A public form handler whose POSTs must carry the CSRF token."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        refused = await check_form(request)
        return refused if refused is not None else await handler(request)

    return wrapper


async def signed_in_admin(request: Request) -> int | None:
    """The admin id of this request's sign-in, checked against the server's record.

    A cookie whose sign-in was revoked, expired or belongs to a removed admin is emptied.
    """
    admin_id = request.session.get("admin_id")
    if not isinstance(admin_id, int):
        return None
    signed = await logins.check(request.state.db, request.session.get("login"))
    if signed is None or signed.kind != logins.ADMIN or signed.user_id != admin_id:
        request.session.clear()
        return None
    return admin_id


def admin_page(handler: Handler) -> Handler:
    """An admin page or form: visitors without a live sign-in go to the login page; POSTs need
    CSRF."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        if await signed_in_admin(request) is None:
            target = request.url.path
            if request.method == "GET" and request.url.query:
                target += "?" + request.url.query
            return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='/')}", 303)
        refused = await check_form(request)
        return refused if refused is not None else await handler(request)

    return wrapper


def safe_next(value: object) -> str:
    """Only a path inside /admin is a place to go after login (no open redirect)."""
    if (
        isinstance(value, str)
        and value.startswith("/admin")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) < 500
    ):
        return value
    return "/admin"


async def login_form(request: Request) -> Response:
    if await signed_in_admin(request) is not None:
        return RedirectResponse(safe_next(request.query_params.get("next")), 303)
    return render(
        request,
        "admin/login.html",
        {"page_title": "Admin sign-in", "next": safe_next(request.query_params.get("next"))},
        private=True,
    )


@protected
async def login(request: Request) -> Response:
    """Check the password; on success start a fresh session (new CSRF token, no fixation)."""
    limited = await enforce_rate_limit(request, "login")
    if limited is not None:
        return limited
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()[:320]
    password = str(form.get("password", ""))[:1024]
    target = safe_next(form.get("next"))
    db = request.state.db
    keys = ratelimit.login_keys(email, request)
    values = {"email": email}
    wait = await ratelimit.login_attempt(db, keys)
    if wait:
        response = render(
            request,
            "admin/login.html",
            {
                "page_title": "Admin sign-in",
                "next": target,
                "values": values,
                "errors": {"form": f"Too many failed attempts. Try again in {wait // 60 + 1} min."},
            },
            status_code=429,
            private=True,
        )
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        admin_id = await accounts.verify_login(db, email, password)
    except Unauthorized:
        return render(
            request,
            "admin/login.html",
            {
                "page_title": "Admin sign-in",
                "next": target,
                "values": values,
                "errors": {"form": "Wrong email or password."},
            },
            status_code=401,
            private=True,
        )
    await ratelimit.login_succeeded(db, keys)
    login_id = await logins.start(db, logins.ADMIN, admin_id)
    request.session.clear()
    request.session.update({"admin_id": admin_id, "admin_email": email, "login": login_id})
    csrf_token(request)
    return RedirectResponse(target, 303)


@admin_page
async def logout(request: Request) -> Response:
    await logins.end(request.state.db, request.session.get("login"))
    request.session.clear()
    flash(request, "You are signed out.")
    return RedirectResponse(LOGIN_PATH, 303)


def current_admin(request: Request) -> dict[str, Any] | None:
    admin_id = request.session.get("admin_id")
    if not isinstance(admin_id, int):
        return None
    return {"id": admin_id, "email": request.session.get("admin_email")}


routes = [
    Route(LOGIN_PATH, login_form, methods=["GET"]),
    Route(LOGIN_PATH, login, methods=["POST"]),
    Route("/admin/logout", logout, methods=["POST"]),
]
