"""Instructor sign-in (``/instructor``): emailed one-time links, as coordinators sign in.

An instructor is whoever the admins list in the instructors directory; asking for a link at
``/instructor/login`` with that address makes their account on first use
(``sign_in.request_instructor_link``). The answer never tells whether the address is known.
The link opens a page with one button (a GET spends nothing: mail scanners fetch links); its
POST carries the CSRF token, spends the link and starts a fresh cookie session.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import sign_in
from scheduler.errors import Gone
from scheduler.web.auth import check_form, protected
from scheduler.web.pages import csrf_token, enforce_rate_limit, error_page, flash, render

LOGIN_PATH = "/instructor/login"


@dataclass(frozen=True)
class SignedInInstructor:
    account_id: int
    email: str
    name: str


async def current_instructor(request: Request) -> SignedInInstructor | None:
    """The instructor signed in on this browser, or None."""
    if "session" not in request.scope:
        return None
    token = request.session.get("account_session")
    if not isinstance(token, str) or len(token) > 100:
        return None
    found = await sign_in.signed_in(request.state.db, token)
    if found is None or found.role != "instructor":
        return None
    return SignedInInstructor(found.account_id, found.email, found.name)


def _page(request: Request, name: str, title: str, **context: object) -> Response:
    status = int(str(context.pop("status_code", 200)))
    return render(request, name, {"page_title": title, **context}, status_code=status, private=True)


async def login_form(request: Request) -> Response:
    return _page(request, "instructor/login.html", "Instructor sign-in")


@protected
async def login(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "login")
    if limited is not None:
        return limited
    form = await request.form()
    email = str(form.get("email", "")).strip()[:320]
    if "@" not in email:
        return _page(
            request,
            "instructor/login.html",
            "Instructor sign-in",
            values={"email": email},
            errors={"email": "Enter the email address the training network has for you."},
            status_code=422,
        )
    await sign_in.request_instructor_link(request.state.db, email)
    return _page(request, "instructor/login_sent.html", "Check your email")


async def confirm_form(request: Request) -> Response:
    token = request.path_params["token"]
    if not await sign_in.peek(request.state.db, token):
        return error_page(
            request,
            410,
            "Link used or expired",
            f"This sign-in link was used or has expired. Ask for a new one at {LOGIN_PATH}.",
        )
    return _page(request, "instructor/login_confirm.html", "Sign in", token=token)


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
    request.session.clear()
    request.session["account_session"] = session_token
    csrf_token(request)
    return RedirectResponse("/instructor", 303)


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


routes = [
    Route(LOGIN_PATH, login_form, methods=["GET"]),
    Route(LOGIN_PATH, login, methods=["POST"]),
    Route(LOGIN_PATH + "/{token}", confirm_form, methods=["GET"]),
    Route(LOGIN_PATH + "/{token}", confirm, methods=["POST"]),
    Route("/instructor/logout", logout, methods=["POST"]),
]
