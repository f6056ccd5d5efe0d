"""The session finder: the page at ``/sessions`` and ``GET /api/sessions``.

Both read the same ``FinderQuery`` and the same page of ``finder.find_sessions``; the page
shows bad filters next to their fields with a 422, the API answers 422 in the contract's shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from notifications.models import utcnow
from scheduler import catalog
from scheduler.errors import Invalid
from scheduler.finder import FinderPage, FinderQuery, find_sessions
from scheduler.models import MODES
from scheduler.web.pages import render
from scheduler.web.params import db_of as _db
from scheduler.web.params import settings_of as _settings
from scheduler.web.present import session_json


async def api_find_sessions(request: Request) -> Response:
    query = FinderQuery.parse(request.query_params.multi_items())
    now = utcnow()
    async with _db(request).read() as conn:
        page = await find_sessions(conn, query, now)
    settings = _settings(request)
    return JSONResponse(
        {
            "sessions": [session_json(s, settings, now) for s in page.sessions],
            "next_cursor": page.next_cursor,
        }
    )


async def finder_page(request: Request) -> Response:
    now = utcnow()
    values = {k: v for k, v in request.query_params.items() if k != "cursor"}
    errors: dict[str, str] = {}
    query: FinderQuery | None = None
    page = FinderPage([], None)
    async with _db(request).read() as conn:
        courses = await catalog.list_courses(conn)
        try:
            query = FinderQuery.parse(request.query_params.multi_items())
            page = await find_sessions(conn, query, now)
        except Invalid as exc:
            errors = dict(exc.fields)
            query = None
    next_url = None
    if query is not None and page.next_cursor is not None:
        next_url = "/sessions?" + urlencode({**query.params(), "cursor": page.next_cursor})
    first_url = None
    if query is not None and query.after is not None:
        params = query.params()
        first_url = "/sessions" + (f"?{urlencode(params)}" if params else "")
    context: dict[str, Any] = {
        "page_title": "Find a session",
        "courses": [c for c in courses if c.delivery != ("online",)],
        "modes": MODES,
        "sessions": page.sessions,
        "next_url": next_url,
        "first_url": first_url,
        "filtered": bool(values),
        "values": values,
        "errors": errors,
        "now": now,
    }
    return render(request, "public/sessions.html", context, status_code=422 if errors else 200)


routes = [
    Route("/api/sessions", api_find_sessions, methods=["GET"]),
    Route("/sessions", finder_page, methods=["GET"]),
]
