"""Throwaway databases for tests: a migrated template per backend, copied per test.

PostgreSQL databases are cloned with ``CREATE DATABASE ... TEMPLATE`` and SQLite files are copied,
so each test gets a fresh, fully migrated schema in milliseconds. When PostgreSQL cannot be
reached the tests that need it skip locally and fail in CI (``CI=true``): CI must never pass by
skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest

from scheduler import migrate

PG_HOST = os.environ.get("TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("TEST_PG_USER", "postgres")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


# The backends a test runs on, as ``params`` of a fixture: the PostgreSQL one carries the
# ``postgres`` mark, so ``-m "not postgres"`` deselects it.
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


async def _admin_connect() -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5
    )


def require_postgres() -> None:
    async def probe() -> None:
        conn = await _admin_connect()
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL at {PG_HOST}:{PG_PORT} is unreachable: {exc!r}"
        if IN_CI:
            pytest.fail(message + " (CI=true: a needed service must not be skipped)")
        pytest.skip(message)


class PostgresFactory:
    def __init__(self) -> None:
        self.template = f"sched_tmpl_{uuid.uuid4().hex[:10]}"
        self.made: list[str] = []

    def setup(self) -> None:
        async def go() -> None:
            conn = await _admin_connect()
            try:
                await conn.execute(f'CREATE DATABASE "{self.template}"')
            finally:
                await conn.close()
            await migrate.upgrade(pg_url(self.template))

        asyncio.run(go())

    def new(self, *, empty: bool = False) -> str:
        """A fresh migrated database, or with ``empty`` one with no tables at all."""
        name = f"sched_t_{uuid.uuid4().hex[:12]}"
        template = "template0" if empty else self.template

        async def go() -> None:
            conn = await _admin_connect()
            try:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            finally:
                await conn.close()

        asyncio.run(go())
        self.made.append(name)
        return pg_url(name)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]

        async def go() -> None:
            conn = await _admin_connect()
            try:
                await conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                    name,
                )
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            finally:
                await conn.close()

        asyncio.run(go())

    def teardown(self) -> None:
        self.drop(pg_url(self.template))


class SqliteFactory:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.template = folder / "template.db"

    def setup(self) -> None:
        asyncio.run(migrate.upgrade(f"sqlite+aiosqlite:///{self.template}"))

    def new(self, *, empty: bool = False) -> str:
        """A copy of the migrated template, or with ``empty`` a file SQLite has yet to create."""
        path = self.folder / f"t_{uuid.uuid4().hex[:12]}.db"
        if not empty:
            shutil.copyfile(self.template, path)
        return f"sqlite+aiosqlite:///{path}"

    def drop(self, url: str) -> None:
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)

    def teardown(self) -> None:
        self.drop(f"sqlite+aiosqlite:///{self.template}")
