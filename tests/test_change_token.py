"""The database's change token: equal only while nothing was committed, on both backends.

Feeds reuse a fingerprint while the token is unchanged, so a token that missed a commit would
serve a stale calendar. Commits come from "another process" here: a second engine on the same
database, with connections of its own.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import asyncpg
import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import make_url

from scheduler.db import Database
from scheduler.models import Course


async def add_course(db: Database, slug: str) -> None:
    now = datetime.now(UTC)
    async with db.write() as conn:
        await conn.execute(
            insert(Course).values(
                slug=slug,
                title=slug.title(),
                description="",
                delivery="in_person",
                created_at=now,
                updated_at=now,
            )
        )


@pytest.mark.serial  # another worker's commits would move the token: it needs the server alone
async def test_token_holds_without_commits_and_moves_after_any_commit(
    database_url: str, backend: str, request: pytest.FixtureRequest
) -> None:
    # A PostgreSQL snapshot covers the whole server: the test databases made in the background
    # for other tests are commits too, so they wait while this test looks for none.
    quiet = (
        request.getfixturevalue("postgres_factory").quiet()
        if backend == "postgres"
        else contextlib.nullcontext()
    )
    watcher = Database.from_url(database_url)
    other = Database.from_url(database_url)
    try:
        with quiet:
            await _holds_then_moves(watcher, other)
    finally:
        await watcher.dispose()
        await other.dispose()


async def _holds_then_moves(watcher: Database, other: Database) -> None:
    first = await watcher.change_token()
    assert first is not None
    async with watcher.read() as conn:
        await conn.execute(select(Course.id))
    assert await watcher.change_token() == first

    await add_course(other, "managing-bias")
    second = await watcher.change_token()
    assert second is not None and second != first

    async with watcher.write() as conn:
        await conn.execute(update(Course).values(title="Managing Bias, revised"))
    third = await watcher.change_token()
    assert third is not None and third not in (first, second)
    assert await watcher.change_token() == third


async def test_an_in_memory_database_cannot_vouch_for_anything() -> None:
    db = Database.from_url("sqlite+aiosqlite:///:memory:")
    try:
        assert await db.change_token() is None
    finally:
        await db.dispose()


async def test_postgres_token_after_its_connection_was_killed(postgres_url: str) -> None:
    db = Database.from_url(postgres_url)
    try:
        assert await db.change_token() is not None
        url = make_url(postgres_url)
        admin = await asyncpg.connect(
            host=url.host, port=url.port, user=url.username, database="postgres"
        )
        try:
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = $1",
                url.database,
            )
        finally:
            await admin.close()
        assert killed >= 1
        # The broken connection answers "cannot tell", never a stale token; then it reconnects.
        assert await db.change_token() is None
        assert await db.change_token() is not None
    finally:
        await db.dispose()
