"""What the benchmarks share: a throwaway PostgreSQL database, a real server, a lean client.

Everything runs on this machine: the server listens on 127.0.0.1 and the database is the local
cluster the tests use (``BENCH_PG_HOST``/``BENCH_PG_PORT``/``BENCH_PG_USER`` to point elsewhere
on the same host).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg

from tests.support.servers import ServerProcess

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BENCH_PG_PORT", "5432"))
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
ROOT = Path(__file__).resolve().parent.parent


def row(
    benchmark: str,
    metric: str,
    value: float | str,
    *,
    floor: float | None = None,
    old_floor: float | None = None,
    target: str = "",
    ok: bool = True,
) -> dict[str, Any]:
    """One line of the results table; ``ratio`` is value/floor when both are numbers.

    ``floor`` is the honest floor (``bench/floors/``: the least a correct server on the same
    stack does); ``old_floor`` the earlier floor built from the service's own work, printed
    beside it with its ratio so the two can be compared.
    """
    ratio = old_ratio = None
    if isinstance(value, int | float) and floor:
        ratio = round(value / floor, 3)
    if isinstance(value, int | float) and old_floor:
        old_ratio = round(value / old_floor, 3)
    return {
        "benchmark": benchmark,
        "metric": metric,
        "value": value,
        "floor": floor,
        "ratio": ratio,
        "old floor": old_floor,
        "old ratio": old_ratio,
        "target": target,
        "ok": ok,
    }


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


# -- PostgreSQL ---------------------------------------------------------------------------------


async def pg_connect(database: str = "postgres", **kwargs: Any) -> asyncpg.Connection:
    return await asyncpg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, database=database, timeout=10, **kwargs
    )


def sqlalchemy_url(database: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{database}"


async def create_database() -> str:
    """A new, migrated PostgreSQL database; returns its name. Drop it with :func:`drop_database`."""
    from scheduler import migrate

    name = f"sched_bench_{uuid.uuid4().hex[:10]}"
    admin = await pg_connect()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        await migrate.upgrade(sqlalchemy_url(name))
    except BaseException:
        await drop_database(name)
        raise
    return name


async def drop_database(name: str) -> None:
    admin = await pg_connect()
    try:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await admin.close()


@asynccontextmanager
async def throwaway_database() -> AsyncIterator[str]:
    """A new, migrated PostgreSQL database, dropped afterwards; yields its name."""
    name = await create_database()
    try:
        yield name
    finally:
        await drop_database(name)


# -- the server ---------------------------------------------------------------------------------


class Server(ServerProcess):
    """``scheduler serve --workers N`` in a temporary folder, with its workers' memory in view."""

    def __init__(self, database_url: str, *, workers: int = 2, **env: str) -> None:
        super().__init__(
            database_url,
            Path(tempfile.mkdtemp(prefix="scheduler-bench-")),
            workers=workers,
            secret_key="bench-secret-key-not-for-production",
            **env,
        )

    def worker_rss_mb(self) -> dict[int, float]:
        return {pid: rss_mb(pid) for pid in self.worker_pids()}


def rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB, from /proc/<pid>/status (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def importable(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository on ``PYTHONPATH``: a server started in its own temporary
    folder (``ServerProcess``) can then import ``bench`` for a floor app."""
    path = os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))
    return {**env, "PYTHONPATH": path}


class FloorServer(ServerProcess):
    """A floor app (``bench/floors/``) under ``uvicorn --workers N``, started, awaited and
    stopped as the service is (``tests/support/servers.py``); floors answer ``/healthz`` too."""

    def __init__(self, app: str, *, workers: int = 1, **env: str) -> None:
        super().__init__(
            None,
            Path(tempfile.mkdtemp(prefix="scheduler-floor-")),
            workers=workers,
            command=[
                *(sys.executable, "-m", "uvicorn", app),
                *("--port", "{port}", "--workers", str(workers)),
                *("--http", "httptools", "--no-access-log", "--log-level", "warning"),
            ],
            **importable(env),
        )


# -- a lean HTTP/1.1 client ---------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection that spends as little CPU as a client can.

    The load generator shares two cores with the server and the database, so a heavy client
    would make the service look slower than it is; this one only formats bytes and reads
    ``Content-Length`` bodies, which is all uvicorn sends for JSON answers.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> Connection:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            self.writer.close()

    async def request(
        self, method: str, path: str, body: bytes = b"", headers: str = ""
    ) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status = int((await self.reader.readline()).split(b" ", 2)[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)
