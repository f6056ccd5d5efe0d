"""The app factory: ``create_app(settings)`` builds an app that opens nothing until its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from scheduler.app import create_app
from scheduler.db import Database
from tests.dbs import _admin_connect

UNREACHABLE = "postgresql+asyncpg://nobody@127.0.0.1:9/nowhere"


@asynccontextmanager
async def running(app: Starlette) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """Run the app's own lifespan, and a client whose requests see the state it yielded."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)  # as an ASGI server passes lifespan state on
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, state


async def connections_to(url: str) -> int:
    """How many server connections PostgreSQL holds open to this test's database."""
    conn = await _admin_connect()
    try:
        name = url.rsplit("/", 1)[1]
        query = "SELECT count(*) FROM pg_stat_activity WHERE datname = $1"
        return int(await conn.fetchval(query, name))
    finally:
        await conn.close()


def test_create_app_returns_a_starlette_app_and_opens_nothing(settings):
    app = create_app(settings.with_(database_url=UNREACHABLE))
    assert isinstance(app, Starlette)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert {"/healthz", "/openapi.json", "/api/courses"} <= paths


async def test_lifespan_opens_the_engine_and_disposes_it(settings, backend):
    app = create_app(settings)
    async with running(app) as (client, state):
        db = state["db"]
        assert isinstance(db, Database)
        assert state["settings"] is settings
        health = (await client.get("/healthz")).json()
        assert (health["status"], health["database"]) == ("ok", "ok")
        pool = db.engine.pool
        assert pool.checkedin() >= 1  # the health check's connection went back to the pool
        if backend == "postgres":
            assert await connections_to(settings.database_url) >= 1
    # Disposing swaps in a fresh, empty pool and closes every connection of the old one.
    assert db.engine.pool is not pool
    assert db.engine.pool.checkedin() == 0
    if backend == "postgres":
        assert await connections_to(settings.database_url) == 0


async def test_each_app_has_its_own_engine(settings):
    async with running(create_app(settings)) as (_, one), running(create_app(settings)) as (_, two):
        assert one["db"] is not two["db"]
        assert one["db"].engine is not two["db"].engine


async def test_errors_have_the_contract_shape(client):
    missing = await client.get("/api/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    wrong = await client.put("/api/courses")
    assert wrong.status_code == 405
    assert set(wrong.json()["error"]) == {"code", "message", "fields"}


async def test_health_says_503_when_the_database_is_down(settings):
    async with running(create_app(settings.with_(database_url=UNREACHABLE))) as (client, _):
        response = await client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["error"]["code"] == "unavailable"
