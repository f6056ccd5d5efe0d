"""Shared fixtures: settings, databases per backend, the app, clients, admin auth, live servers.

Every test that takes ``database_url`` (directly or through ``settings``/``app``/``client``)
runs once on SQLite and once on PostgreSQL, with ids ``sqlite`` and ``postgres``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from scheduler.app import create_app
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.tokens import create_token
from tests.dbs import PostgresFactory, SqliteFactory, require_postgres

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteFactory]:
    factory = SqliteFactory(tmp_path_factory.mktemp("sqlite"))
    factory.setup()
    yield factory
    factory.teardown()


@pytest.fixture(scope="session")
def postgres_factory() -> Iterator[PostgresFactory]:
    require_postgres()
    factory = PostgresFactory()
    factory.setup()
    yield factory
    factory.teardown()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    factory: SqliteFactory | PostgresFactory = request.getfixturevalue(f"{backend}_factory")
    url = factory.new()
    yield url
    factory.drop(url)


@pytest.fixture
def empty_database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A database of the backend with no tables yet, for migration and CLI tests."""
    factory: SqliteFactory | PostgresFactory = request.getfixturevalue(f"{backend}_factory")
    url = factory.new(empty=True)
    yield url
    factory.drop(url)


@pytest.fixture
def postgres_url(postgres_factory: PostgresFactory) -> Iterator[str]:
    url = postgres_factory.new()
    yield url
    postgres_factory.drop(url)


@pytest.fixture
def sqlite_url(sqlite_factory: SqliteFactory) -> Iterator[str]:
    url = sqlite_factory.new()
    yield url
    sqlite_factory.drop(url)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        base_url="http://testserver",
        secret_key="test-secret-key-not-for-production",
        mail_dir=tmp_path / "mail",
        run_jobs=False,
        rate_limit=0,
    )


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database.from_url(settings.database_url)
    yield database
    await database.dispose()


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Any]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        yield manager.app


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def admin_token(db: Database) -> str:
    return await create_token(db, "tests")


@pytest.fixture
def admin_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """A real ``scheduler serve`` process on a free port, for tests that race real clients."""

    def __init__(self, database_url: str, workdir: Path, *, workers: int = 1, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / f"server-{self.port}.log"
        self.env = {
            **os.environ,
            "SCHEDULER_DATABASE_URL": database_url,
            "SCHEDULER_BASE_URL": self.url,
            "SCHEDULER_SECRET_KEY": "live-server-secret-key-for-tests",
            "SCHEDULER_MAIL_DIR": str(workdir / "mail"),
            "SCHEDULER_RATE_LIMIT": "0",
            **env,
        }
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> LiveServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "scheduler",
                    "serve",
                    "--port",
                    str(self.port),
                    "--workers",
                    str(self.workers),
                ],
                cwd=self.workdir,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not come up:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(database_url: str, **kwargs: Any) -> LiveServer:
        server = LiveServer(database_url, tmp_path / f"srv{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


class SmtpSink:
    """A real SMTP server (aiosmtpd, in a thread) on a free port that keeps what it receives.

    ``refuse`` maps a recipient address to the reply its RCPT TO gets (e.g. ``"550 5.1.1 no
    such user"``); ``stop()`` and ``start()`` take the server away and bring it back on the
    same port.
    """

    def __init__(self) -> None:
        import threading

        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.received: list[tuple[str, list[str], bytes]] = []
        self.refuse: dict[str, str] = {}
        self._lock = threading.Lock()
        self._controller: Any = None

    # aiosmtpd handler hooks
    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"

    def start(self) -> SmtpSink:
        from aiosmtpd.controller import Controller

        # aiosmtpd inspects every attribute of its handler on each connection (evaluating
        # properties such as ``messages``), so it gets a small handler of its own.
        self._controller = Controller(_SinkHandler(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def messages(self) -> list[Any]:
        """Every received message, parsed by the standard ``email`` package."""
        import email
        from email.policy import default

        with self._lock:
            raw = [content for _, _, content in self.received]
        return [email.message_from_bytes(content, policy=default) for content in raw]

    def count(self) -> int:
        with self._lock:
            return len(self.received)


class _SinkHandler:
    def __init__(self, sink: SmtpSink) -> None:
        self.handle_RCPT = sink.handle_RCPT
        self.handle_DATA = sink.handle_DATA


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
