"""``create_app(settings)``: routes, middleware, exception handlers and the lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import Jobs
from scheduler.web import (
    admin,
    admin_agency_import,
    agency_api,
    agency_auth,
    agency_batch,
    agency_calendar,
    agency_console,
    agency_holds,
    agency_people,
    api,
    attendance_api,
    attendance_pages,
    certificates,
    checkin,
    feeds,
    finder,
    instructor_auth,
    lookup,
    metrics,
    openapi,
    public,
)
from scheduler.web.auth import session_middleware
from scheduler.web.body_limit import ATTENDANCE_MAX_BYTES, ATTENDANCE_UPLOADS
from scheduler.web.errors import EXCEPTION_HANDLERS
from scheduler.web.middleware import RequestMiddleware
from scheduler.web.pages import STATIC_DIR, make_templates


def create_app(settings: Settings) -> Starlette:
    """Build the ASGI app. Nothing is opened until the lifespan starts."""
    app_metrics = metrics.Metrics.from_environment()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        db = Database.from_url(settings.database_url, pool_size=settings.db_pool_size)
        jobs = Jobs(db, settings)
        if settings.run_jobs:
            await jobs.start()
        pages = {"templates": make_templates()}
        try:
            yield {**pages, "db": db, "settings": settings, "jobs": jobs, "metrics": app_metrics}
        finally:
            await jobs.stop()
            await db.dispose()

    # Routes are tried in order: calendar feeds first, as every subscribed calendar polls
    # them, then the API with registration, then the pages.
    routes = [
        *feeds.routes,
        *metrics.routes,
        *openapi.routes,
        *api.routes,
        *attendance_api.routes,
        *finder.routes,
        *lookup.routes,
        *certificates.routes,
        *agency_api.routes,
        *public.routes,
        *checkin.routes,
        *admin.routes,
        *attendance_pages.routes,
        *instructor_auth.routes,
        *agency_auth.routes,
        *agency_console.routes,
        *agency_batch.routes,
        *agency_holds.routes,
        *agency_people.routes,
        *agency_calendar.routes,
        Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[
            # Everything per request in one pure ASGI layer (web/middleware.py), then the
            # page session, which calendar feeds skip.
            Middleware(
                RequestMiddleware,
                metrics=app_metrics,
                max_body_bytes=settings.max_body_bytes,
                uploads=(
                    (agency_batch.UPLOAD_PATHS, agency_batch.UPLOAD_MAX_BYTES),
                    (admin_agency_import.UPLOAD_PATTERN, admin_agency_import.UPLOAD_MAX_BODY),
                    (ATTENDANCE_UPLOADS, ATTENDANCE_MAX_BYTES),
                ),
                routes=routes,
                smtputf8=settings.smtputf8,
            ),
            session_middleware(settings),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
