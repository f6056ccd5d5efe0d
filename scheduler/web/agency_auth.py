"""Coordinator sign-in for the console and the API: emailed one-time links, account sessions.

- ``/agency/login`` asks for an email and always answers "if it is known, a link is on its
  way"; the per-client rate limit (``login`` bucket) and the per-account link limit bound it.
- The emailed link opens a page with one button: a GET spends nothing (mail scanners fetch
  links), the POST carries the page's CSRF token and spends the link, then starts a fresh
  cookie session holding the account session's token.
- The cookie is the same signed session the admin pages use; ``account_session`` in it names
  a row of ``login_sessions``, the one sign-in table (``scheduler.logins``), that says whether
  it still holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import agencies, sign_in
from scheduler.errors import Gone, Invalid
from scheduler.web.auth import check_form, protected
from scheduler.web.pages import csrf_token, enforce_rate_limit, error_page, flash, render

LOGIN_PATH = "/agency/login"


@dataclass(frozen=True)
class Coordinator:
    account_id: int
    email: str
    name: str
    agency_ids: frozenset[int]


async def current_coordinator(request: Request) -> Coordinator | None:
    """The coordinator signed in on this browser, or None."""
    if "session" not in request.scope:
        return None
    token = request.session.get("account_session")
    if not isinstance(token, str) or len(token) > 100:
        return None
    found = await sign_in.signed_in(request.state.db, token)
    if found is None or found.role != "coordinator":
        return None
    return Coordinator(found.account_id, found.email, found.name, found.agency_ids)


async def login_form(request: Request) -> Response:
    return render(request, "agency/login.html", {"page_title": "Coordinator sign-in"}, private=True)


@protected
async def login(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "login")
    if limited is not None:
        return limited
    form = await request.form()
    email = str(form.get("email", "")).strip()[:320]
    if "@" not in email:
        return render(
            request,
            "agency/login.html",
            {
                "page_title": "Coordinator sign-in",
                "values": {"email": email},
                "errors": {"email": "Enter the email address your agency registered."},
            },
            status_code=422,
            private=True,
        )
    await sign_in.request_link(request.state.db, email)
    # The same answer whether or not the address is known.
    return render(
        request, "agency/login_sent.html", {"page_title": "Check your email"}, private=True
    )


async def confirm_form(request: Request) -> Response:
    token = request.path_params["token"]
    if not await sign_in.peek(request.state.db, token):
        return error_page(
            request,
            410,
            "Link used or expired",
            "This sign-in link was used or has expired. Ask for a new one at /agency/login.",
        )
    return render(
        request,
        "agency/login_confirm.html",
        {"page_title": "Sign in", "token": token},
        private=True,
    )


async def confirm(request: Request) -> Response:
    refused = await check_form(request)
    if refused is not None:
        return refused
    limited = await enforce_rate_limit(request, "login")
    if limited is not None:
        return limited
    try:
        session_token = await sign_in.redeem(request.state.db, request.path_params["token"])
    except Gone as exc:
        return error_page(request, 410, "Link used or expired", exc.message)
    # A fresh cookie session: no fixation, a new CSRF token.
    request.session.clear()
    request.session["account_session"] = session_token
    csrf_token(request)
    return RedirectResponse("/agency", 303)


async def logout(request: Request) -> Response:
    refused = await check_form(request)
    if refused is not None:
        return refused
    token = request.session.get("account_session")
    if isinstance(token, str):
        await sign_in.sign_out(request.state.db, token)
    request.session.clear()
    flash(request, "You are signed out.")
    return RedirectResponse(LOGIN_PATH, 303)


async def access_form(request: Request) -> Response:
    async with request.state.db.read() as conn:
        directory = await agencies.search(conn, None, limit=1000)
    return render(
        request,
        "agency/request_access.html",
        {"page_title": "Ask for coordinator access", "agencies": directory},
        private=True,
    )


@protected
async def access(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "login")
    if limited is not None:
        return limited
    form = await request.form()
    values = {k: str(form.get(k, "")) for k in ("name", "email", "agency_id")}
    try:
        await sign_in.request_access(request.state.db, values)
    except Invalid as exc:
        async with request.state.db.read() as conn:
            directory = await agencies.search(conn, None, limit=1000)
        return render(
            request,
            "agency/request_access.html",
            {
                "page_title": "Ask for coordinator access",
                "agencies": directory,
                "values": values,
                "errors": exc.fields,
            },
            status_code=422,
            private=True,
        )
    return render(
        request, "agency/access_sent.html", {"page_title": "Request received"}, private=True
    )


routes = [
    Route(LOGIN_PATH, login_form, methods=["GET"]),
    Route(LOGIN_PATH, login, methods=["POST"]),
    Route(LOGIN_PATH + "/{token}", confirm_form, methods=["GET"]),
    Route(LOGIN_PATH + "/{token}", confirm, methods=["POST"]),
    Route("/agency/logout", logout, methods=["POST"]),
    Route("/agency/request-access", access_form, methods=["GET"]),
    Route("/agency/request-access", access, methods=["POST"]),
]
