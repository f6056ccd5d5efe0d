"""``Database.dispose()`` closes every connection the object opened, also under a late caller.

The suite once failed at random with ``ResourceWarning: unclosed transport``: a connection the
engine's own dispose never sees (the one ``change_token()`` keeps pinned) could be opened again
by a call that ran after, or alongside, the app's shutdown, and was then left to the garbage
collector. Counting the server's backends shows what is still open, whatever the collector does.
"""

from __future__ import annotations

import asyncio
import gc
import warnings

import asyncpg

from scheduler.db import Database
from tests.dbs import PG_HOST, PG_PORT, PG_USER


async def backends(database: str) -> int:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                database,
            )
        )
    finally:
        await conn.close()


async def test_dispose_closes_the_pinned_connection_even_with_calls_in_flight(postgres_url):
    database = postgres_url.rsplit("/", 1)[1]
    db = Database.from_url(postgres_url)
    assert await db.change_token() is not None  # pins a connection
    async with db.write() as conn:  # and a pooled one
        await conn.exec_driver_sql("SELECT 1")
    assert await backends(database) == 2

    # Callers that race the shutdown: none may pin a connection once dispose() has begun.
    racing = [asyncio.create_task(db.change_token()) for _ in range(5)]
    await db.dispose()
    await asyncio.gather(*racing)
    assert await db.change_token() is None

    assert await backends(database) == 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_sqlite_watcher_is_not_reopened_after_dispose(sqlite_url):
    db = Database.from_url(sqlite_url)
    assert await db.change_token() is not None
    await db.dispose()
    assert db._watcher is None
    assert await db.change_token() is None
    assert db._watcher is None
