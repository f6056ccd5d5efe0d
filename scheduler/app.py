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
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import Jobs
from scheduler.web import admin, api, feeds, openapi, public
from scheduler.web.auth import LoginThrottle, session_middleware
from scheduler.web.errors import EXCEPTION_HANDLERS, error_response
from scheduler.web.limits import BodyLimitMiddleware
from scheduler.web.pages import STATIC_DIR, SecurityHeadersMiddleware, make_templates


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
        pages = {"templates": make_templates(), "login_throttle": LoginThrottle()}
        try:
            yield {**pages, "db": db, "settings": settings, "jobs": jobs}
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
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            Middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes),
            Middleware(SecurityHeadersMiddleware),
            session_middleware(settings),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
