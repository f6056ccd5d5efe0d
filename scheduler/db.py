"""Engines for SQLite and PostgreSQL, and the two kinds of transaction the service uses.

``Database.write()`` is for every change. On PostgreSQL it is an ordinary transaction whose
``FOR UPDATE`` row locks serialise the work that must not interleave. SQLite ignores ``FOR
UPDATE``, so there a write transaction starts with ``BEGIN IMMEDIATE``: it takes the database's
write lock up front, so two writers can never both read and then deadlock upgrading their locks
(SQLAlchemy's "Transactions with SQLite" recipe). WAL lets readers go on meanwhile, and the busy
timeout makes a second writer wait instead of failing.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Hashable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection, QueuePool
from sqlalchemy.util import greenlet_spawn

from scheduler.errors import SchedulerError

log = logging.getLogger("scheduler.db")

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str, *, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Create the async engine for ``url`` with the settings each backend needs."""
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            echo=echo,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        )
        _prepare_sqlite(engine)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        # No pre-ping: it costs a round trip on every checkout, on the hot path of every
        # registration. A connection that died while idle fails its first statement instead;
        # SQLAlchemy recognises the disconnect and invalidates the pool, that request gets a
        # 503, and the next ones connect afresh (tests/test_outage.py shows the recovery).
        pool_recycle=1800,
    )
    _discard_broken_connections(engine)
    return engine


def _discard_broken_connections(engine: AsyncEngine) -> None:
    """Treat every connection-level failure as a disconnect, so SQLAlchemy throws the
    connection away instead of returning it to the pool.

    SQLAlchemy's asyncpg dialect only counts a connection that asyncpg already marked closed;
    one whose protocol was left mid-operation (``InternalClientError: cannot switch to state
    ...; another operation is in progress``) or that failed with ``InterfaceError`` or an
    ``OSError`` looks alive and would fail the next request too.
    """

    @event.listens_for(engine.sync_engine, "handle_error")
    def on_error(context: ExceptionContext) -> None:
        if not context.is_disconnect and is_database_outage(context.original_exception):
            context.is_disconnect = True


def _prepare_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves instead of the driver's implicit, deferred one.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sqlite_immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


_watcher_epochs = itertools.count(1)

# The flag a connection carries (in its ``info``) from an outbox INSERT to its COMMIT.
_WROTE_OUTBOX = "scheduler.wrote_outbox"


def _note_outbox_insert(conn: Connection, _cursor: Any, statement: str, *_args: Any) -> None:
    if statement.startswith("INSERT INTO messages"):
        conn.info[_WROTE_OUTBOX] = True


@dataclass(eq=False, slots=True)
class DriverTransaction:
    """What ``Database.driver_write()`` lends: the asyncpg connection its transaction runs on.

    Its user sets ``wrote_outbox`` once a statement has written rows to the outbox, so the
    commit tells the outbox listeners (``Database.add_outbox_listener``). No SQLAlchemy event
    sees a statement sent straight on asyncpg, so this is how that path says so.
    """

    conn: asyncpg.Connection
    wrote_outbox: bool = False


class Database:
    """The engine plus the transaction helpers; one per app, opened and closed by its lifespan."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._watcher: sqlite3.Connection | None = None
        self._watcher_epoch = 0
        # The file whose data_version is the change token; None for an in-memory database.
        path = engine.url.database
        in_memory = not path or path == ":memory:" or "mode=memory" in str(engine.url)
        self._watched_file = None if in_memory or not self.is_sqlite else path
        self._watcher_lock = asyncio.Lock()
        self._pinned: AsyncConnection | None = None
        self._pinned_driver: Any = None
        self._disposed = False
        self._outbox_listeners: list[Callable[[], None]] = []
        event.listen(engine.sync_engine, "before_cursor_execute", _note_outbox_insert)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Database:
        return cls(make_engine(url, **kwargs))

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that will change rows: commits on success, rolls back on any error.

        Once a transaction that wrote outbox rows has committed, the outbox listeners run
        (``add_outbox_listener``); after a rollback, nothing does.
        """
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                await conn.execution_options(sqlite_immediate=True)
            async with conn.begin():
                yield conn
            # Read only once committed: after a failure the connection may be invalidated, and
            # touching its info would try to reconnect outside a greenlet (MissingGreenlet). A
            # flag left behind by a rollback costs one needless wake-up at most.
            wrote_outbox = conn.info.pop(_WROTE_OUTBOX, False)
        if wrote_outbox:
            self._outbox_committed()

    @asynccontextmanager
    async def driver_write(self) -> AsyncIterator[DriverTransaction]:
        """A write transaction straight on a pooled asyncpg connection (PostgreSQL only).

        For the hottest path, whose statements are plain SQL: SQLAlchemy's pool still lends the
        connection and takes it back, but no statement passes through SQLAlchemy, so
        this manages what the pool would: a connection goes back only when the transaction
        ended cleanly or with an ordinary answer from the server (or a domain error). One that
        broke, was cancelled mid-statement or met a bug is thrown away, because the pool cannot
        see what state it is in. A pooled connection that died while idle is replaced once
        before anything runs on it, so a database restart does not fail the next request.

        Once a transaction that set ``wrote_outbox`` has committed, the outbox listeners run;
        after a rollback, nothing does.
        """
        if self.is_sqlite:
            raise TypeError("driver_write() is for PostgreSQL; use write()")
        pooled, driver, transaction = await self._begin_on_driver()
        tx = DriverTransaction(driver)
        try:
            try:
                yield tx
            except BaseException as exc:
                if _sound(exc):
                    await transaction.rollback()
                raise
            await transaction.commit()
        except BaseException as exc:
            if not _sound(exc):
                pooled.invalidate()
            raise
        finally:
            await self._give_back(pooled)
        if tx.wrote_outbox:
            self._outbox_committed()

    def add_outbox_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` each time a ``write()`` or ``driver_write()`` transaction that wrote
        outbox rows has committed (the jobs nudge the dispatcher with it).

        It runs in the event loop right after the COMMIT returned, so it must be quick and not
        block. Being after the COMMIT, the dispatcher it wakes finds the rows: SQLAlchemy's own
        ``commit`` event fires before the COMMIT is sent, too early for that.
        """
        self._outbox_listeners.append(callback)

    def remove_outbox_listener(self, callback: Callable[[], None]) -> None:
        self._outbox_listeners.remove(callback)

    def _outbox_committed(self) -> None:
        for callback in list(self._outbox_listeners):
            try:
                callback()
            except Exception:  # the change is committed: its caller must still hear so
                log.exception("outbox listener %r failed", callback)

    async def _give_back(self, pooled: PoolProxiedConnection) -> None:
        # Back in the pool, nothing is awaited. But an overflow connection that finds the pool
        # full is closed, which awaits the driver: that must run in a greenlet (else
        # MissingGreenlet, logged with a traceback on every such return).
        pool = self.engine.sync_engine.pool
        if pooled.is_valid and isinstance(pool, QueuePool) and pool.checkedin() >= pool.size():
            await greenlet_spawn(pooled.close)
        else:
            pooled.close()

    async def _begin_on_driver(self) -> tuple[PoolProxiedConnection, asyncpg.Connection, Any]:
        # engine.raw_connection() and the pooled connection's own close(): a third of the CPU
        # of an AsyncConnection around it. Closing needs no await: SQLAlchemy began nothing on
        # it, so returning it to the pool rolls nothing back, and invalidating it outside a
        # greenlet terminates the socket at once.
        for attempt in (1, 2):
            pooled = await self.engine.raw_connection()
            try:
                driver: asyncpg.Connection = pooled.driver_connection
                transaction = driver.transaction()
                await transaction.start()
            except BaseException as exc:
                if not _sound(exc):
                    pooled.invalidate()
                await self._give_back(pooled)
                if attempt == 2 or _sound(exc) or not isinstance(exc, Exception):
                    raise
                continue
            return pooled, driver, transaction
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A transaction that only reads.

        Not one snapshot on PostgreSQL: at READ COMMITTED each statement sees what was committed
        when it began, so two reads in one block may disagree. Code that needs two reads to agree
        reads them in one statement, or takes the session's lock in ``write()``.
        """
        async with self.engine.connect() as conn, conn.begin():
            yield conn

    async def change_token(self) -> Hashable | None:
        """A value that stays the same only while no write commits in this database.

        Two equal tokens mean nothing a cache depends on was committed between the two calls,
        by this process or any other, so anything computed from the database after the first
        is still true. The reverse does not hold: unrelated writes change the token too.
        ``None`` means this database cannot tell now (an in-memory SQLite database, a write in
        flight on PostgreSQL, a broken connection); then nothing may be reused.

        - SQLite: ``PRAGMA data_version`` on a connection of our own that never writes. It
          changes whenever another connection commits and costs microseconds (a look at the
          WAL index), so it runs in the event loop without a thread hop. It never waits for a
          lock: a busy database answers ``None`` for that call.
        - PostgreSQL: ``change_counter_token()`` (migration 0013), one round trip. Statement
          triggers on every table a cache reads (all but the outbox, sign-ins, API tokens and
          rate-limit windows) bump the sequence ``change_counter`` when a statement touched a
          row, taking a shared advisory lock first that their transaction holds until after
          its commit is visible. The token is the counter, read only when that lock can be
          taken exclusively, i.e. when no transaction that bumped is unfinished; else
          ``None``. It is of this database alone: commits in others on the server leave it.

          Why equal tokens are never stale: a sequence is not transactional, so a bump is seen
          before its commit; reading the counter while a bumper is unfinished and then computing
          from a snapshot that misses its rows would store old content under a token that no
          later bump moves. The lock rules that out: when the token ``v`` is read, every
          transaction that bumped up to ``v`` has committed (or rolled back), so whatever is
          computed after the read sees at least their writes. A transaction committing later
          takes the lock after the read (it could not hold it during it), so it bumps after
          it: the next token is larger, or ``None`` while it is under way. A rolled-back write
          also moves the counter, which only costs one recompute. The counter is a sequence,
          not a row, so writers never wait for each other on it.
        """
        if self.is_sqlite:
            return self._sqlite_data_version()
        return await self._pg_change_counter()

    async def _pg_change_counter(self) -> Hashable | None:
        # One connection of the pool is kept for this, so the hot path skips the pool's
        # checkout and return; the lock keeps its statements one at a time, and each caller's
        # own statement is sent after it asked, so no caller gets an answer older than itself.
        async with self._watcher_lock:
            if self._disposed:
                # A request that outlives the lifespan must not pin a connection that no
                # dispose() will ever close: it would be left to the garbage collector.
                return None
            try:
                if self._pinned is None:
                    self._pinned = await self.engine.connect()
                    raw = await self._pinned.get_raw_connection()
                    self._pinned_driver = raw.driver_connection
                # Autocommit: the advisory lock it takes ends with the statement.
                token = await self._pinned_driver.fetchval("SELECT change_counter_token()")
                return None if token is None else int(token)
            except Exception:
                # Down or broken: nothing may be reused; the caller's own query will fail or
                # succeed on its own, and the next call connects afresh.
                await self._release_pinned()
                return None

    async def _release_pinned(self) -> None:
        pinned, self._pinned, self._pinned_driver = self._pinned, None, None
        if pinned is not None:
            with suppress(Exception):  # it is being thrown away either way
                await pinned.invalidate()
                await pinned.close()

    def _sqlite_data_version(self) -> Hashable | None:
        path = self._watched_file
        if self._disposed or path is None:
            return None
        try:
            if self._watcher is None:
                # Autocommit, no waiting: each pragma is its own short read.
                self._watcher = sqlite3.connect(
                    path, timeout=0, isolation_level=None, check_same_thread=False
                )
                self._watcher_epoch = next(_watcher_epochs)
            version = self._watcher.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error:
            self._close_watcher()
            return None
        # Versions are only comparable on one connection: a new one starts a new epoch.
        return (self._watcher_epoch, int(version))

    def _close_watcher(self) -> None:
        if self._watcher is not None:
            self._watcher.close()
            self._watcher = None

    async def dispose(self) -> None:
        """Close every connection this object opened; ``change_token()`` answers ``None`` after.

        The engine's own dispose closes only the connections in its pool, so the pinned one is
        closed here, after any ``change_token()`` call in flight (under its lock) has finished.
        """
        async with self._watcher_lock:
            self._disposed = True
            self._close_watcher()
            if self._pinned is not None:
                pinned, self._pinned, self._pinned_driver = self._pinned, None, None
                await pinned.close()
        await self.engine.dispose()


def _sound(exc: BaseException) -> bool:
    """Whether a connection that raised ``exc`` is still fit to go back into the pool.

    Only an ordinary answer from the server (a constraint, a lock timeout) or one of our domain
    errors says so; anything else may have left the protocol mid-message.
    """
    return isinstance(exc, SchedulerError | asyncpg.PostgresError) and not is_database_outage(exc)


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot be reached (down, restarting, pool exhausted).

    Such errors say nothing about the request, so they become 503 with ``Retry-After`` instead
    of a 500. Integrity and data errors are not outages: they stay bugs.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa_exc.DBAPIError) and current.connection_invalidated:
            return True
        if isinstance(current, sa_exc.TimeoutError | sa_exc.DisconnectionError):
            return True  # the pool found no live connection in time
        if (
            isinstance(current, sa_exc.DBAPIError)
            and not isinstance(
                current, sa_exc.IntegrityError | sa_exc.DataError | sa_exc.ProgrammingError
            )
            and _outage_message(str(current))
        ):
            return True
        if isinstance(current, OSError | TimeoutError):
            return True  # refused, reset or timed out while talking to the server
        if isinstance(current, asyncpg.InternalClientError):
            return True  # the protocol was left mid-operation (a connection killed under us)
        if isinstance(current, asyncpg.InterfaceError) and not isinstance(
            current, asyncpg.exceptions.DataError
        ):
            return True  # closed under us, or in use by an operation that never finished
        state = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(state, str) and state.startswith(_OUTAGE_SQLSTATES):
            return True
        orig = getattr(current, "orig", None)
        current = (
            orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
        )
    return False


# PostgreSQL's connection exceptions (08), operator intervention such as a shutdown (57P) and
# too many connections (53300).
_OUTAGE_SQLSTATES = ("08", "57P", "53300")
_OUTAGE_PHRASES = (
    "connection is closed",
    "connection was closed",
    "connection refused",
    "terminating connection",
    "the database system is",
    "server closed the connection",
    "database is locked",
)


def _outage_message(text: str) -> bool:
    lowered = text.lower()
    return any(phrase in lowered for phrase in _OUTAGE_PHRASES)
