"""The database's change token: equal only while nothing was committed, on both backends.

Feeds reuse a fingerprint while the token is unchanged, so a token that missed a commit would
serve a stale calendar. Commits come from "another process" here: a second engine on the same
database, with connections of its own.
"""

from __future__ import annotations

import asyncio
import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import asyncpg
from sqlalchemy import insert, select, text, update
from sqlalchemy.engine import make_url

import scheduler.models
from notifications.models import metadata
from scheduler.db import Database
from scheduler.models import Course
from tests.dbs import PostgresFactory

# Tables whose writes leave the PostgreSQL token alone (migration 0013): they change all the
# time and no feed or page cache reads them. Every other table must bump it.
UNTRACKED = {"messages", "login_sessions", "sign_in_links", "api_tokens", "rate_limit_windows"}


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


async def test_token_holds_without_commits_and_moves_after_any_commit(database_url: str) -> None:
    watcher = Database.from_url(database_url)
    other = Database.from_url(database_url)
    try:
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


async def test_postgres_token_is_this_databases_alone(
    postgres_url: str, postgres_factory: PostgresFactory
) -> None:
    """Commits in another database on the server (other tests, other apps) do not move it."""
    elsewhere_url = await asyncio.to_thread(postgres_factory.new)
    watcher = Database.from_url(postgres_url)
    elsewhere = Database.from_url(elsewhere_url)
    try:
        first = await watcher.change_token()
        assert first is not None
        for n in range(3):
            await add_course(elsewhere, f"elsewhere-{n}")
        assert await watcher.change_token() == first
    finally:
        await watcher.dispose()
        await elsewhere.dispose()
        await asyncio.to_thread(postgres_factory.drop, elsewhere_url)


async def test_postgres_token_cannot_vouch_while_a_write_is_in_flight(postgres_url: str) -> None:
    """The counter moves before its writer commits: until then the token says "cannot tell".

    Else a fingerprint computed before the commit would be stored under the moved token and
    served until the next write (see ``Database.change_token``).
    """
    watcher = Database.from_url(postgres_url)
    writer = Database.from_url(postgres_url)
    try:
        first = await watcher.change_token()
        assert first is not None
        async with writer.engine.connect() as conn:
            async with conn.begin():
                await conn.execute(
                    update(Course).where(Course.slug == "nobody").values(title="x")
                )  # no row: nothing to bump
                assert await watcher.change_token() == first
                now = datetime.now(UTC)
                await conn.execute(
                    insert(Course).values(
                        slug="in-flight",
                        title="In flight",
                        description="",
                        delivery="in_person",
                        created_at=now,
                        updated_at=now,
                    )
                )
                assert await watcher.change_token() is None
            after = await watcher.change_token()
        assert after is not None and after != first
        assert await watcher.change_token() == after
    finally:
        await watcher.dispose()
        await writer.dispose()


def _migration_0013() -> ModuleType:
    path = Path(scheduler.__file__).parent / "migrations" / "versions" / "0013_change_counter.py"
    spec = importlib.util.spec_from_file_location("migration_0013", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_postgres_every_table_moves_the_token_or_is_named_as_not(postgres_url: str) -> None:
    """A table added later without triggers would let its writes leave cached feeds stale."""
    db = Database.from_url(postgres_url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                text(
                    "SELECT c.relname, count(*) FROM pg_trigger t"
                    " JOIN pg_class c ON c.oid = t.tgrelid"
                    " WHERE t.tgname LIKE 'change_counter_%' GROUP BY c.relname"
                )
            )
            triggered = {name: int(n) for name, n in rows.all()}
    finally:
        await db.dispose()
    assert set(triggered) == set(metadata.tables) - UNTRACKED
    assert set(triggered.values()) == {4}  # insert, update, delete, truncate
    assert set(_migration_0013().TRACKED) == set(triggered)
