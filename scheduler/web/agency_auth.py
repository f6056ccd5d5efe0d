"""Coordinator sign-in for the console and the API: emailed one-time links, account sessions.

``/agency/login`` and its link pages are ``link_sign_in``'s, as the instructors' are; here is
what only coordinators have: their agencies, and asking for access at
``/agency/request-access`` (an admin approves it).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler import agencies, sign_in
from scheduler.errors import Invalid
from scheduler.web.auth import protected
from scheduler.web.link_sign_in import LinkSignIn
from scheduler.web.pages import enforce_rate_limit, render

PAGES = LinkSignIn(
    role="coordinator",
    home="/agency",
    folder="agency",
    title="Coordinator sign-in",
    email_error="Enter the email address your agency registered.",
    send_link=sign_in.request_link,
)
LOGIN_PATH = PAGES.login_path


@dataclass(frozen=True)
class Coordinator:
    account_id: int
    email: str
    name: str
    agency_ids: frozenset[int]


async def current_coordinator(request: Request) -> Coordinator | None:
    """The coordinator signed in on this browser, or None."""
    found = await PAGES.signed_in(request)
    if found is None:
        return None
    return Coordinator(found.account_id, found.email, found.name, found.agency_ids)


async def _access_page(request: Request, status_code: int = 200, **context: object) -> Response:
    async with request.state.db.read() as conn:
        directory = await agencies.search(conn, None, limit=1000)
    return render(
        request,
        "agency/request_access.html",
        {"page_title": "Ask for coordinator access", "agencies": directory, **context},
        status_code=status_code,
        private=True,
    )


async def access_form(request: Request) -> Response:
    return await _access_page(request)


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
        return await _access_page(request, 422, values=values, errors=exc.fields)
    return render(
        request, "agency/access_sent.html", {"page_title": "Request received"}, private=True
    )


routes = [
    *PAGES.routes,
    Route("/agency/request-access", access_form, methods=["GET"]),
    Route("/agency/request-access", access, methods=["POST"]),
]
