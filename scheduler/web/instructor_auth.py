"""Instructor sign-in (``/instructor``): emailed one-time links, as coordinators sign in.

An instructor is whoever the admins list in the instructors directory; asking for a link at
``/instructor/login`` with that address makes their account on first use
(``sign_in.request_instructor_link``). The answer never tells whether the address is known.
The pages are ``link_sign_in``'s, the coordinators' own: a GET of the link spends nothing (mail
scanners fetch links); its POST carries the CSRF token, spends the link and starts a fresh
cookie session.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from scheduler import sign_in
from scheduler.web.link_sign_in import LinkSignIn

PAGES = LinkSignIn(
    role="instructor",
    home="/instructor",
    folder="instructor",
    title="Instructor sign-in",
    email_error="Enter the email address the training network has for you.",
    send_link=sign_in.request_instructor_link,
)
LOGIN_PATH = PAGES.login_path


@dataclass(frozen=True)
class SignedInInstructor:
    account_id: int
    email: str
    name: str


async def current_instructor(request: Request) -> SignedInInstructor | None:
    """The instructor signed in on this browser, or None."""
    found = await PAGES.signed_in(request)
    return None if found is None else SignedInInstructor(found.account_id, found.email, found.name)


routes = PAGES.routes
