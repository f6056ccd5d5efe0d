"""Server-rendered pages: the Jinja2 environment, the render helpers and the security headers.

Templates live in ``templates/`` (``base.html``, ``public/``, ``admin/``); the environment is
built once by the app's lifespan and reached through ``request.state.templates``. Autoescaping is
always on, so a registrant named ``<script>`` is shown as text on every page.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from scheduler.assets import TEMPLATES
from scheduler.errors import RateLimited
from scheduler.models import ATTENDANCE_LABELS, MODE_LABELS
from scheduler.web import ratelimit

STATIC_DIR = Path(__file__).resolve().parent / "static"

# No inline script or style anywhere: everything comes from /static, so the policy can be strict.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ]
)
# Added by the request middleware (web/middleware.py) to every answer that lacks them.
SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    # Manage pages carry a secret token in their URL: never send it on to another site.
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


# -- formatting filters ---------------------------------------------------------------------


def local_time(instant: datetime | None, zone: str, fmt: str = "%a %-d %b %Y, %-I:%M %p %Z") -> str:
    """An instant as wall-clock time in ``zone`` with the zone's abbreviation (e.g. CST)."""
    if instant is None:
        return ""
    return instant.astimezone(ZoneInfo(zone)).strftime(fmt)


def when(session: Any) -> str:
    """``Tue 12 Jan 2027, 9:00 AM – 1:00 PM CST`` (the end date is repeated when it differs)."""
    zone = ZoneInfo(session.timezone)
    start = session.starts_at.astimezone(zone)
    end = session.ends_at.astimezone(zone)
    if start.date() == end.date():
        tail = end.strftime("%-I:%M %p %Z")
    else:
        tail = end.strftime("%a %-d %b %Y, %-I:%M %p %Z")
    return f"{start.strftime('%a %-d %b %Y, %-I:%M %p')} – {tail}"


def when_html(session: Any) -> Markup:
    """:func:`when` inside a span that names the instants and the zone, for ``localtime.js``.

    The text is the session's own time with its zone's abbreviation, so the page reads right
    without script; the script adds the reader's local time after it when their zone differs.
    """
    starts = session.starts_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ends = session.ends_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Markup(
        '<span class="when" data-starts="{}" data-ends="{}" data-zone="{}">{}</span>'
    ).format(starts, ends, session.timezone, escape(when(session)))


def meeting_when(session: Any, meeting: Any) -> str:
    """One meeting of a session as :func:`when` writes a session, in the session's zone."""
    zone = ZoneInfo(session.timezone)
    start = meeting.starts_at.astimezone(zone)
    end = meeting.ends_at.astimezone(zone)
    return f"{start.strftime('%a %-d %b %Y, %-I:%M %p')} – {end.strftime('%-I:%M %p %Z')}"


def datetime_local(instant: datetime | None, zone: str) -> str:
    """The value an ``<input type=datetime-local>`` wants, in the session's own zone."""
    if instant is None:
        return ""
    return instant.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M")


def utc_time(instant: datetime | None) -> str:
    return "" if instant is None else instant.strftime("%Y-%m-%d %H:%M UTC")


def make_templates(directory: Path = TEMPLATES) -> Jinja2Templates:
    """The Jinja2 environment for the pages: autoescaped, strict about undefined names."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["local_time"] = local_time
    env.filters["datetime_local"] = datetime_local
    env.filters["utc_time"] = utc_time
    env.globals["when"] = when
    env.globals["when_html"] = when_html
    env.globals["meeting_when"] = meeting_when
    env.globals["attendance_label"] = lambda a: ATTENDANCE_LABELS.get(a, a)
    env.globals["mode_label"] = lambda m: MODE_LABELS.get(m, m)
    return Jinja2Templates(env=env)


# -- rendering ------------------------------------------------------------------------------


def csrf_token(request: Request) -> str:
    """The CSRF token of this browser's session, made on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def flash(request: Request, message: str) -> None:
    """A one-line notice shown on the next page this browser renders."""
    request.session["flash"] = message[:300]


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    private: bool = False,
) -> Response:
    """Render template ``name`` with the CSRF token, the signed-in admin and any flash message.

    ``private`` pages (admin pages, a registrant's manage page) are never stored by caches.
    """
    templates: Jinja2Templates = request.state.templates
    full: dict[str, Any] = {
        "csrf_token": csrf_token(request),
        "admin_email": request.session.get("admin_email"),
        "flash": request.session.pop("flash", None),
        "errors": {},
        "values": {},
        "page_title": "",
    }
    full.update(context or {})
    headers = {"Cache-Control": "no-store"} if private else None
    return templates.TemplateResponse(request, name, full, status_code=status_code, headers=headers)


def error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    """An HTML error page with the right status; used for 403, 404, 409, 410 and 429."""
    return render(
        request,
        "error.html",
        {"page_title": title, "title": title, "message": message},
        status_code=status_code,
        private=True,
    )


async def enforce_rate_limit(request: Request, bucket: str) -> Response | None:
    """Count a login or registration attempt against the client's per-minute limit.

    Returns a 429 page (with ``Retry-After``) when the client is over the limit, else ``None``.
    """
    try:
        await ratelimit.enforce(request, bucket)
    except RateLimited as exc:
        response = error_page(request, 429, "Too many attempts", exc.message)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return None
