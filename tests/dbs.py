"""Throwaway databases for tests: a migrated template per backend, copied per test.

PostgreSQL databases are cloned with ``CREATE DATABASE ... TEMPLATE`` and SQLite files are copied,
so each test gets a fresh, fully migrated schema in milliseconds. When PostgreSQL cannot be
reached the tests that need it skip locally and fail in CI (``CI=true``): CI must never pass by
skipping.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import threading
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
    """Migrated databases cloned from one template, made ahead and dropped behind the tests.

    ``CREATE DATABASE ... TEMPLATE`` costs about 0.3 s on this machine and ``DROP DATABASE``
    about 0.05 s: paid inside each test, that was minutes of a suite that is mostly waiting on
    the server. A thread keeps ``READY`` databases made while tests run and drops the used ones
    after them, on a connection of its own.
    """

    READY = 2

    def __init__(self) -> None:
        self.template = f"sched_tmpl_{uuid.uuid4().hex[:10]}"
        self._ready: queue.Queue[str] = queue.Queue()
        self._used: queue.Queue[str] = queue.Queue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="pg-databases", daemon=True)

    def setup(self) -> None:
        async def go() -> None:
            conn = await _admin_connect()
            try:
                await conn.execute(f'CREATE DATABASE "{self.template}"')
            finally:
                await conn.close()
            await migrate.upgrade(pg_url(self.template))

        asyncio.run(go())
        self._thread.start()

    def new(self, *, empty: bool = False) -> str:
        """A fresh migrated database, or with ``empty`` one with no tables at all."""
        if empty:
            name = f"sched_t_{uuid.uuid4().hex[:12]}"
            asyncio.run(_admin(f'CREATE DATABASE "{name}" TEMPLATE template0'))
            return pg_url(name)
        while True:
            try:
                name = self._ready.get(timeout=0.5)
            except queue.Empty:
                if self._failure is not None:
                    raise RuntimeError("making test databases failed") from self._failure
                continue
            self._wake.set()
            return pg_url(name)

    def drop(self, url: str) -> None:
        self._used.put(url.rsplit("/", 1)[1])
        self._wake.set()

    def teardown(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=120)
        names = [*_drain(self._ready), *_drain(self._used), self.template]
        asyncio.run(_drop_all(names))

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            conn = loop.run_until_complete(_admin_connect())
            try:
                while not self._stop.is_set():
                    self._wake.wait(timeout=1)
                    self._wake.clear()
                    while not self._stop.is_set():
                        if not self._used.empty():
                            loop.run_until_complete(_drop(conn, self._used.get()))
                        elif self._ready.qsize() < self.READY:
                            name = f"sched_t_{uuid.uuid4().hex[:12]}"
                            loop.run_until_complete(
                                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
                            )
                            self._ready.put(name)
                        else:
                            break
            finally:
                loop.run_until_complete(conn.close())
        except BaseException as exc:  # reported by new(): a test must not wait forever
            self._failure = exc
        finally:
            loop.close()


def _drain(q: queue.Queue[str]) -> list[str]:
    names = []
    while not q.empty():
        names.append(q.get())
    return names


async def copy_database(url: str) -> str:
    """A copy of the PostgreSQL database at ``url`` as it is now (nobody may be connected to
    it), for comparing two runs from one start; give it to ``PostgresFactory.drop`` after."""
    name = f"sched_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{url.rsplit("/", 1)[1]}"')
    return pg_url(name)


async def _admin(statement: str) -> None:
    conn = await _admin_connect()
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def _drop(conn: asyncpg.Connection, name: str) -> None:
    await conn.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
    )
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


async def _drop_all(names: list[str]) -> None:
    conn = await _admin_connect()
    try:
        for name in names:
            await _drop(conn, name)
    finally:
        await conn.close()


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
