"""Admin sign-in for the web pages: a signed session cookie, CSRF tokens, login throttling.

The session is Starlette's ``SessionMiddleware``: the cookie holds signed JSON (itsdangerous),
is HttpOnly and SameSite=Lax, and Secure when the service is reached over https. Every form that
changes something carries the session's CSRF token; a post without it, or with a wrong one, is
refused with 403 before the handler runs, so nothing changes.

Failed logins are counted per email and per client address in memory; past the limit further
attempts are refused until the window has passed. Each process counts on its own, which still
bounds guessing to a few attempts per window per process; the per-minute rate limit sits on top.
"""

from __future__ import annotations

import hmac
import time
from collections import deque
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any
from urllib.parse import quote

from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import accounts
from scheduler.config import Settings
from scheduler.errors import Unauthorized
from scheduler.web.pages import csrf_token, enforce_rate_limit, error_page, flash, render

SESSION_COOKIE = "scheduler_session"
SESSION_MAX_AGE = 12 * 60 * 60
LOGIN_PATH = "/admin/login"

Handler = Callable[[Request], Awaitable[Response]]


def session_middleware(settings: Settings) -> Middleware:
    """The signed-cookie session for the pages; Secure whenever the base URL is https."""
    return Middleware(
        SessionMiddleware,
        secret_key=settings.secret_key,
        session_cookie=SESSION_COOKIE,
        max_age=SESSION_MAX_AGE,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )


class LoginThrottle:
    """Counts failed logins per key in a sliding window; ``clock`` is injectable for tests."""

    def __init__(
        self,
        *,
        max_failures: int = 5,
        window_seconds: float = 15 * 60,
        max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.max_keys = max_keys
        self.clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self.clock()
        stamps = self._failures.get(key, deque())
        while stamps and now - stamps[0] >= self.window:
            stamps.popleft()
        return stamps

    def retry_after(self, keys: list[str]) -> int:
        """Seconds until any of ``keys`` may try again; 0 when none is locked out."""
        wait = 0.0
        for key in keys:
            stamps = self._recent(key)
            if len(stamps) >= self.max_failures:
                wait = max(wait, self.window - (self.clock() - stamps[0]))
        return int(wait) + (1 if wait else 0)

    def failed(self, keys: list[str]) -> None:
        if len(self._failures) >= self.max_keys:
            # Bounded memory under a flood of distinct keys: forget the oldest entries.
            for stale in list(self._failures)[: self.max_keys // 10]:
                del self._failures[stale]
        now = self.clock()
        for key in keys:
            stamps = self._recent(key)
            stamps.append(now)
            self._failures[key] = stamps

    def succeeded(self, keys: list[str]) -> None:
        for key in keys:
            self._failures.pop(key, None)


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


def admin_page(handler: Handler) -> Handler:
    """An admin page or form: anonymous visitors go to the login page; POSTs need CSRF."""

    @wraps(handler)
    async def wrapper(request: Request) -> Response:
        if not isinstance(request.session.get("admin_id"), int):
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


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def login_form(request: Request) -> Response:
    if isinstance(request.session.get("admin_id"), int):
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
    throttle: LoginThrottle = request.state.login_throttle
    keys = [f"email:{email}", f"ip:{_client(request)}"]
    values = {"email": email}
    wait = throttle.retry_after(keys)
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
        admin_id = await accounts.verify_login(request.state.db, email, password)
    except Unauthorized:
        throttle.failed(keys)
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
    throttle.succeeded(keys[:1])
    request.session.clear()
    request.session.update({"admin_id": admin_id, "admin_email": email})
    csrf_token(request)
    return RedirectResponse(target, 303)


@admin_page
async def logout(request: Request) -> Response:
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
