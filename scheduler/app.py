"""``create_app(settings)``: routes, middleware, exception handlers and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import Jobs
from scheduler.web import admin, api, feeds, openapi, public
from scheduler.web.errors import EXCEPTION_HANDLERS, error_response
from scheduler.web.limits import BodyLimitMiddleware


async def healthz(request: Request) -> Response:
    db: Database = request.state.db
    try:
        async with db.read() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means unhealthy
        return error_response(
            503,
            "unavailable",
            f"database unreachable: {type(exc).__name__}",
            None,
            {"Retry-After": "5"},
        )
    return JSONResponse({"status": "ok", "database": "ok"})


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app. Nothing is opened until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        db = Database.from_url(settings.database_url, pool_size=settings.db_pool_size)
        jobs = Jobs(db, settings)
        if settings.run_jobs:
            await jobs.start()
        try:
            yield {"db": db, "settings": settings, "jobs": jobs}
        finally:
            await jobs.stop()
            await db.dispose()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        *openapi.routes,
        *api.routes,
        *feeds.routes,
        *public.routes,
        *admin.routes,
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
