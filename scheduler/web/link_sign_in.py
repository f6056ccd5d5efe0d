"""Sign-in by emailed one-time link: the same pages for every role that signs in that way.

Coordinators (``/agency/login``) and instructors (``/instructor/login``) sign in alike; a
``LinkSignIn`` holds what differs (the role, where its pages live, their wording, who may ask
for a link) and serves the pages:

- ``{home}/login`` asks for an email and always answers "if it is known, a link is on its
  way"; the per-client rate limit (``login`` bucket) and the per-account link limit bound it.
- The emailed link opens a page with one button: a GET spends nothing (mail scanners fetch
  links), the POST carries the page's CSRF token and spends the link, then starts a fresh
  cookie session holding the account session's token.
- The cookie is the same signed session the admin pages use; ``account_session`` in it names
  a row of ``login_sessions``, the one sign-in table (``scheduler.logins``), that says whether
  it still holds. ``signed_in`` reads it back, for this role only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from scheduler import sign_in
from scheduler.db import Database
from scheduler.errors import Gone
from scheduler.web.auth import check_form, protected
from scheduler.web.pages import csrf_token, enforce_rate_limit, error_page, flash, render


@dataclass(frozen=True)
class LinkSignIn:
    """One role's sign-in pages, under ``home`` (``/agency``), with templates in ``folder``.

    ``send_link(db, email)`` emails a link when the address may have one (the caller answers
    the same either way); ``email_error`` is the form's message for an address without an @.
    """

    role: str
    home: str
    folder: str
    title: str
    email_error: str
    send_link: Callable[[Database, str], Awaitable[bool]]

    @property
    def login_path(self) -> str:
        return f"{self.home}/login"

    async def signed_in(self, request: Request) -> sign_in.SignedIn | None:
        """The account of this role signed in on this browser, or None."""
        if "session" not in request.scope:
            return None
        token = request.session.get("account_session")
        if not isinstance(token, str) or len(token) > 100:
            return None
        found = await sign_in.signed_in(request.state.db, token)
        return found if found is not None and found.role == self.role else None

    def _page(
        self, request: Request, name: str, title: str, status_code: int = 200, **context: object
    ) -> Response:
        return render(
            request,
            f"{self.folder}/{name}",
            {"page_title": title, **context},
            status_code=status_code,
            private=True,
        )

    async def login_form(self, request: Request) -> Response:
        return self._page(request, "login.html", self.title)

    async def login(self, request: Request) -> Response:
        limited = await enforce_rate_limit(request, "login")
        if limited is not None:
            return limited
        form = await request.form()
        email = str(form.get("email", "")).strip()[:320]
        if "@" not in email:
            return self._page(
                request,
                "login.html",
                self.title,
                status_code=422,
                values={"email": email},
                errors={"email": self.email_error},
            )
        await self.send_link(request.state.db, email)
        # The same answer whether or not the address is known.
        return self._page(request, "login_sent.html", "Check your email")

    async def confirm_form(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not await sign_in.peek(request.state.db, token):
            return error_page(
                request,
                410,
                "Link used or expired",
                f"This sign-in link was used or has expired. Ask for a new one at "
                f"{self.login_path}.",
            )
        return self._page(request, "login_confirm.html", "Sign in", token=token)

    async def confirm(self, request: Request) -> Response:
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
        return RedirectResponse(self.home, 303)

    async def logout(self, request: Request) -> Response:
        refused = await check_form(request)
        if refused is not None:
            return refused
        token = request.session.get("account_session")
        if isinstance(token, str):
            await sign_in.sign_out(request.state.db, token)
        request.session.clear()
        flash(request, "You are signed out.")
        return RedirectResponse(self.login_path, 303)

    @property
    def routes(self) -> list[Route]:
        return [
            Route(self.login_path, self.login_form, methods=["GET"]),
            Route(self.login_path, protected(self.login), methods=["POST"]),
            Route(self.login_path + "/{token}", self.confirm_form, methods=["GET"]),
            Route(self.login_path + "/{token}", self.confirm, methods=["POST"]),
            Route(self.home + "/logout", self.logout, methods=["POST"]),
        ]
