"""Find my registrations: the form at ``/registrations/lookup`` and its POST.

The answer to a well-formed address is the same page, byte for byte, whether or not the
address has registrations: it never repeats the address and never says whether mail went out.
Two limits apply. Per client, ``SCHEDULER_RATE_LIMIT`` attempts a minute as at the other
public doors (429 past it). Per address, ``LOOKUPS_PER_ADDRESS`` emails a minute, whoever
asks: past it the answer stays the same and no more mail is sent, so nobody can flood an
inbox, and a refusal cannot tell a stranger that the address is known.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler import lookup
from scheduler.errors import Invalid
from scheduler.web import ratelimit
from scheduler.web.auth import protected
from scheduler.web.forms import field_errors
from scheduler.web.pages import enforce_rate_limit, render
from scheduler.web.params import db_of as _db

LOOKUPS_PER_ADDRESS = 3


async def lookup_form(request: Request) -> Response:
    return render(request, "public/lookup.html", {"page_title": "Find my registrations"})


@protected
async def lookup_post(request: Request) -> Response:
    limited = await enforce_rate_limit(request, "lookup")
    if limited is not None:
        return limited
    form = await request.form()
    raw = form.get("email")
    typed = raw.strip() if isinstance(raw, str) else ""
    try:
        email = lookup.parse_email({"email": typed})
    except Invalid as exc:
        return render(
            request,
            "public/lookup.html",
            {
                "page_title": "Find my registrations",
                "values": {"email": typed},
                "errors": field_errors(exc.fields),
            },
            status_code=422,
        )
    db = _db(request)
    hits, _ = await ratelimit.hit(db, "lookup-address", lookup.address_key(email))
    if hits <= LOOKUPS_PER_ADDRESS:
        await lookup.send_links(db, email)
    return render(
        request, "public/lookup_sent.html", {"page_title": "Check your inbox"}, private=True
    )


routes = [
    Route("/registrations/lookup", lookup_form, methods=["GET"]),
    Route("/registrations/lookup", lookup_post, methods=["POST"]),
]
