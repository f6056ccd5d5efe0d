"""Shared fixtures: settings, databases per backend, the app, clients, admin auth, live servers.

Every test that takes ``database_url`` (directly or through ``settings``/``app``/``client``)
runs once on SQLite and once on PostgreSQL, with ids ``sqlite`` and ``postgres``.
"""

from __future__ import annotations

import gc
import warnings
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
from tests.dbs import BACKENDS, PostgresFactory, SqliteFactory, require_postgres
from tests.support.ports import free_port
from tests.support.servers import ServerProcess
from tests.support.smtp import SmtpSink

__all__ = ["ServerProcess", "SmtpSink", "free_port"]  # still importable from here

ROOT = Path(__file__).resolve().parent.parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the PostgreSQL server ``postgres``, however it asks for it:
    the backend parameter carries the mark itself; here the tests that take a PostgreSQL
    database directly get it, so ``-m "not postgres"`` runs exactly what needs no server."""
    for item in items:
        if "postgres_factory" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)


@pytest.fixture(autouse=True)
def no_leaked_resources(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test that leaves a socket, transport or file to the garbage collector.

    A leaked object in a reference cycle is only found when the collector next runs, which
    used to be in some later, unrelated test (``ResourceWarning: unclosed transport``, turned
    into an error there by ``filterwarnings = error``): a flaky suite. Collecting after every
    test, after its other fixtures are torn down, pins the warning on the test that leaked.
    """
    yield
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    # What survived is the suite's own (imports, caches, session fixtures): set it aside so the
    # next test's collection walks only what that test made, not the whole heap again.
    gc.freeze()
    # ResourceWarning (a socket, transport or file) or SQLAlchemy's SAWarning for a pooled
    # connection that nothing returned: anything the collector has to say is a leak.
    leaks = [f"{w.category.__name__}: {w.message}" for w in caught]
    if leaks:
        pytest.fail(f"{request.node.nodeid} leaked: " + "; ".join(leaks), pytrace=False)


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


@pytest.fixture(params=BACKENDS)
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


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Any]:
    """``start(database_url, workers=1, **env)``: a real ``scheduler serve``, stopped after."""
    servers: list[ServerProcess] = []

    def start(database_url: str, **kwargs: Any) -> ServerProcess:
        server = ServerProcess(database_url, tmp_path / f"srv{len(servers)}", **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    sink.stop()
