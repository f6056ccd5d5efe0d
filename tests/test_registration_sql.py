"""Register's two ways to the database: SQLAlchemy Core (SQLite) and plain asyncpg (PostgreSQL).

The race tests show the logic; these show what is particular to the asyncpg path: the unique
index still answers 409, and a connection that failed or was cancelled mid-transaction never
goes back into the pool to spoil the next registration.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy.engine import make_url

from notifications.models import Message
from scheduler import booking, catalog
from scheduler.db import Database, DriverTransaction, is_database_outage
from scheduler.errors import DuplicateRegistration
from scheduler.models import Registration, SeatPool
from scheduler.registration_sql import AsyncpgTx, CoreTx
from tests.dbs import PostgresFactory, copy_database
from tests.helpers import session_body

OFFSETS = ()


def person(n: int) -> booking.RegistrationInput:
    return booking.RegistrationInput(
        name=f"Officer {n}", email=f"o{n}@example.org", agency="Albany PD", attendance="in_person"
    )


async def new_session(db: Database, seats: int = 5) -> int:
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    return (await catalog.create_session(db, "managing-bias", session_body(in_person=seats))).id


def values(session_id: int, email: str) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "session_id": session_id,
        "attendance": "in_person",
        "name": "Officer",
        "email": email,
        "email_key": email.lower(),
        "agency": "Albany PD",
        "agency_key": "albany pd",
        "rank": None,
        "status": "confirmed",
        "token": email,  # unique, like a real token
        "created_at": now,
        "updated_at": now,
        "confirmed_at": now,
        "sequence": 0,
    }


def confirmation(session_id: int, email: str) -> dict[str, object]:
    return {"kind": "confirmation", "recipient": email, "session_id": session_id}


async def test_the_unique_index_answers_duplicate_on_either_path(db: Database) -> None:
    """Below the session lock's check, the index itself still refuses a second active row, and
    the refused registration leaves neither its seat nor its outbox rows behind."""
    session_id = await new_session(db)
    async with db.read() as conn:
        pool_id = (
            await conn.execute(select(SeatPool.id).where(SeatPool.session_id == session_id))
        ).scalar_one()

    async def insert(email: str) -> int:
        rows = [confirmation(session_id, email)]
        if db.is_sqlite:
            async with db.write() as conn:
                booked = await CoreTx(conn).book(pool_id, True, values(session_id, email), rows)
        else:
            async with db.driver_write() as driver:
                booked = await AsyncpgTx(driver).book(
                    pool_id, True, values(session_id, email), rows
                )
        assert booked is not None
        return booked[0]

    await insert("first@example.org")
    with pytest.raises(DuplicateRegistration):
        await insert("FIRST@example.org")
    async with db.read() as conn:
        count = len((await conn.execute(select(Registration.id))).all())
        taken = (
            await conn.execute(select(SeatPool.confirmed).where(SeatPool.id == pool_id))
        ).scalar_one()
        messages = (await conn.execute(select(Message.recipient))).scalars().all()
    assert (count, taken) == (1, 1)
    assert messages == ["first@example.org"]


@pytest.mark.postgres
async def test_pooled_connections_killed_while_idle_are_replaced_before_a_registration(
    postgres_url: str,
) -> None:
    """After a database restart the pool holds dead connections; none may fail a request."""
    db = Database.from_url(postgres_url, pool_size=1)
    try:
        session_id = await new_session(db)
        url = make_url(postgres_url)
        for n in range(1, 6):
            outcome = await booking.register(db, session_id, person(n), reminder_offsets=OFFSETS)
            assert outcome.status == "confirmed"
            admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username)
            try:
                killed = await admin.fetchval(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE datname = $1",
                    url.database,
                )
            finally:
                await admin.close()
            assert killed >= 1
    finally:
        await db.dispose()
    check = Database.from_url(postgres_url)
    try:
        async with check.read() as conn:
            emails = (await conn.execute(select(Registration.email))).scalars().all()
    finally:
        await check.dispose()
    assert sorted(emails) == [f"o{n}@example.org" for n in range(1, 6)]


@asynccontextmanager
async def registration_stuck_on_the_lock(
    postgres_url: str, db: Database, session_id: int
) -> AsyncIterator[tuple[asyncpg.Connection, asyncio.Task[booking.RegistrationResult]]]:
    """A registration blocked on the session's row lock, which another connection holds."""
    url = make_url(postgres_url)
    holder = await asyncpg.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )
    try:
        async with holder.transaction():
            await holder.execute(
                "SELECT id FROM training_sessions WHERE id = $1 FOR UPDATE", session_id
            )
            waiting = asyncio.create_task(
                booking.register(db, session_id, person(1), reminder_offsets=OFFSETS)
            )
            await asyncio.sleep(0.3)  # it is now blocked on the lock, inside its BEGIN
            assert not waiting.done()
            yield holder, waiting
    finally:
        await holder.close()


@pytest.mark.postgres
async def test_a_connection_killed_mid_registration_is_an_outage_and_is_not_pooled(
    postgres_url: str,
) -> None:
    db = Database.from_url(postgres_url, pool_size=1)
    try:
        session_id = await new_session(db)
        async with registration_stuck_on_the_lock(postgres_url, db, session_id) as (
            holder,
            waiting,
        ):
            await holder.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            with pytest.raises(Exception) as failed:
                await waiting
        assert is_database_outage(failed.value)  # so the web layer answers 503, not 500
        again = await booking.register(db, session_id, person(1), reminder_offsets=OFFSETS)
        assert again.status == "confirmed"
    finally:
        await db.dispose()


@pytest.mark.postgres
async def test_a_registration_cancelled_while_waiting_for_the_lock_leaves_nothing(
    postgres_url: str,
) -> None:
    """A client that hangs up mid-registration: its transaction rolls back, its connection goes."""
    db = Database.from_url(postgres_url, pool_size=1)
    try:
        session_id = await new_session(db)
        async with registration_stuck_on_the_lock(postgres_url, db, session_id) as (_, waiting):
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
        after = await booking.register(db, session_id, person(2), reminder_offsets=OFFSETS)
        assert after.status == "confirmed"
        async with db.read() as conn:
            emails = (await conn.execute(select(Registration.email))).scalars().all()
            kinds = (await conn.execute(select(Message.recipient))).scalars().all()
        assert emails == ["o2@example.org"]
        assert set(kinds) == {"o2@example.org"}
    finally:
        await db.dispose()


class Boom(Exception):
    """A failure after the booking, inside the transaction."""


@pytest.mark.postgres
async def test_a_driver_commit_that_wrote_the_outbox_tells_the_listeners(
    postgres_url: str,
) -> None:
    """The asyncpg path's outbox signal: a listener hears each commit that wrote outbox rows,
    as the commit returns; a rollback, or a commit that wrote none, tells it nothing."""
    db = Database.from_url(postgres_url)
    heard: list[str] = []
    db.add_outbox_listener(lambda: heard.append("commit"))
    try:
        session_id = await new_session(db)
        async with db.read() as conn:
            pool_id = (
                await conn.execute(select(SeatPool.id).where(SeatPool.session_id == session_id))
            ).scalar_one()

        async def book(tx: DriverTransaction, email: str) -> None:
            booked = await AsyncpgTx(tx).book(
                pool_id, True, values(session_id, email), [confirmation(session_id, email)]
            )
            assert booked is not None

        with pytest.raises(Boom):
            async with db.driver_write() as tx:
                await book(tx, "rolled-back@example.org")
                assert tx.wrote_outbox
                raise Boom
        assert heard == []

        with pytest.raises(DuplicateRegistration):
            await booking.register(db, session_id, person(1), reminder_offsets=OFFSETS)
            await booking.register(db, session_id, person(1), reminder_offsets=OFFSETS)
        assert heard == ["commit"]  # the first one only

        async with db.driver_write() as tx:
            await tx.conn.execute("SELECT 1 FROM training_sessions FOR UPDATE")
        assert heard == ["commit"]

        async with db.driver_write() as tx:
            await book(tx, "committed@example.org")
        assert heard == ["commit", "commit"]

        async with db.read() as conn:
            recipients = (await conn.execute(select(Message.recipient))).scalars().all()
        assert sorted(recipients) == ["committed@example.org", "o1@example.org"]
    finally:
        await db.dispose()


# -- the two paths write the same rows -----------------------------------------------------------

# Microseconds, to show neither path rounds a timestamp.
FROZEN = datetime(2026, 3, 2, 14, 30, 15, 123456, tzinfo=UTC)
REMINDERS = (timedelta(days=1), timedelta(hours=2))
# The same people, in the same order, on both paths: a seat; the agency's second (over the cap
# of one: waitlisted though seats are free); another agency's seat, which fills the room; one
# waitlisted because it is full; a virtual seat; and the first again, in other letters.
ATTEMPTS = (
    booking.RegistrationInput(
        name="Ana Ruiz",
        email="Ana.Ruiz@example.org",
        agency="Albany  PD",
        attendance="in_person",
        rank="Sergeant",
        post_id="NY-123/4",
        post_state="NY",
    ),
    booking.RegistrationInput(
        name="Ben Ode", email="ben@example.org", agency="albany pd", attendance="in_person"
    ),
    booking.RegistrationInput(
        name="Cy Wu", email="cy@example.org", agency="Troy PD", attendance="in_person"
    ),
    booking.RegistrationInput(
        name="Di Lee", email="di@example.org", agency="Utica PD", attendance="in_person"
    ),
    booking.RegistrationInput(
        name="Ed Poe", email="ed@example.org", agency="Utica PD", attendance="virtual"
    ),
    booking.RegistrationInput(
        name="Ana Ruiz", email="ANA.RUIZ@example.org", agency="Albany PD", attendance="virtual"
    ),
)
OUTCOMES = ["confirmed", "waitlisted", "confirmed", "waitlisted", "confirmed", "duplicate"]


async def register_through_core(
    db: Database, session_id: int, person: booking.RegistrationInput
) -> booking.RegistrationResult:
    """Register as SQLite does (and batches, moves and holds do): CoreTx in ``write()``."""
    async with db.write() as conn:
        return await booking._register(CoreTx(conn), session_id, person, REMINDERS, FROZEN)


async def register_through_asyncpg(
    db: Database, session_id: int, person: booking.RegistrationInput
) -> booking.RegistrationResult:
    """Register as PostgreSQL does: AsyncpgTx in ``driver_write()``."""
    return await booking.register(db, session_id, person, reminder_offsets=REMINDERS, now=FROZEN)


async def every_row(url: str) -> dict[str, list[dict[str, object]]]:
    """Every row of every table, in a stable order, read back by asyncpg itself."""
    target = make_url(url)
    conn = await asyncpg.connect(
        host=target.host, port=target.port, user=target.username, database=target.database
    )
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        dump = {}
        for (table,) in tables:
            rows = [dict(row) for row in await conn.fetch(f'SELECT * FROM "{table}"')]
            dump[table] = sorted(rows, key=lambda row: [repr(v) for v in row.values()])
        return dump
    finally:
        await conn.close()


async def run_attempts(
    url: str, session_id: int, path: Callable[..., Awaitable[booking.RegistrationResult]]
) -> list[object]:
    db = Database.from_url(url)
    outcomes: list[object] = []
    try:
        for person in ATTEMPTS:
            try:
                outcome = await path(db, session_id, person)
            except DuplicateRegistration:
                outcomes.append("duplicate")
            else:
                outcomes.append(
                    (outcome.id, outcome.status, outcome.attendance, outcome.waitlist_position)
                )
    finally:
        await db.dispose()
    return outcomes


@pytest.mark.postgres
async def test_both_registration_paths_write_the_same_rows(
    postgres_url: str, postgres_factory: PostgresFactory
) -> None:
    """The same registrations through SQLAlchemy Core and through asyncpg, each on its own copy
    of one database, with the clock stopped: every column of every row of every table matches,
    but the registration tokens, random by design (``secrets.token_urlsafe``). Ids match too:
    both copies start from the same sequences and neither path spends a value the other does
    not."""
    with time_machine.travel(FROZEN, tick=False):
        db = Database.from_url(postgres_url)
        try:
            await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
            body = session_body("hybrid", in_person=2, virtual=2, max_per_agency=1)
            session_id = (await catalog.create_session(db, "managing-bias", body)).id
        finally:
            await db.dispose()
        core_url, asyncpg_url = postgres_url, await copy_database(postgres_url)
        try:
            core = await run_attempts(core_url, session_id, register_through_core)
            driver = await run_attempts(asyncpg_url, session_id, register_through_asyncpg)
            core_rows, asyncpg_rows = await every_row(core_url), await every_row(asyncpg_url)
        finally:
            postgres_factory.drop(asyncpg_url)

    assert [o if o == "duplicate" else o[1] for o in core] == OUTCOMES  # type: ignore[index]
    assert driver == core
    for dump in (core_rows, asyncpg_rows):
        for row in dump["registrations"]:
            assert isinstance(row["token"], str) and len(row["token"]) >= 32
            row["token"] = "<random>"
    # Something to compare: the five registrations, their news and reminders, the two pools.
    assert len(core_rows["registrations"]) == 5
    assert {r["kind"] for r in core_rows["messages"]} == {"confirmation", "reminder", "waitlisted"}
    assert len(core_rows["seat_pools"]) == 2
    assert core_rows.keys() == asyncpg_rows.keys()
    for table, rows in core_rows.items():
        assert len(asyncpg_rows[table]) == len(rows), table
        for core_row, asyncpg_row in zip(rows, asyncpg_rows[table], strict=True):
            for column, value in core_row.items():
                assert asyncpg_row[column] == value, f"{table}.{column} of {core_row}"
