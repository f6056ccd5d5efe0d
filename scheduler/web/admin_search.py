"""Admin search of registrations across all sessions, at ``/admin/registrations?q=``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scheduler import search
from scheduler.web.auth import admin_page
from scheduler.web.pages import render
from scheduler.web.params import db_of as _db

MIN_TERM = 2


@admin_page
async def search_page(request: Request) -> Response:
    term = request.query_params.get("q", "").strip()[:200]
    errors: dict[str, str] = {}
    results: list[object] = []
    if term and len(term) < MIN_TERM:
        errors["q"] = f"type at least {MIN_TERM} characters"
    elif term:
        async with _db(request).read() as conn:
            results = await search.search_registrations(conn, term)
    return render(
        request,
        "admin/search.html",
        {
            "page_title": "Find a registration",
            "term": term,
            "values": {"q": term},
            "errors": errors,
            "results": results,
            "limit": search.MAX_RESULTS,
        },
        status_code=422 if errors else 200,
        private=True,
    )


routes = [Route("/admin/registrations", search_page, methods=["GET"])]
