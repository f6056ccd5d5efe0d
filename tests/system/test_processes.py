"""Real ``scheduler serve`` processes dispatching from one PostgreSQL database.

Two processes deliver 1,000 messages with each delivered exactly once; a process killed with
SIGKILL mid-run loses nothing when started again, and any duplicate is one that was in flight.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select

from notifications.models import Message
from scheduler import booking, catalog
from scheduler.db import Database
from tests.helpers import session_body
from tests.support.smtp import SmtpSink

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
OUTBOX_ID = re.compile(r"<outbox-(\d+)\.")


async def fill_session(db: Database, count: int, *, start: int = 0) -> None:
    """``count`` confirmed registrations, each writing its confirmation to the outbox."""
    if start == 0:
        await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
        await catalog.create_session(db, "managing-bias", session_body(in_person=5000))
    people = [
        booking.RegistrationInput(
            name=f"Officer {n}",
            email=f"officer{n}@example.org",
            agency="PD",
            attendance="in_person",
        )
        for n in range(start, start + count)
    ]
    gate = asyncio.Semaphore(8)

    async def one(person: booking.RegistrationInput) -> None:
        async with gate:
            await booking.register(db, 1, person, reminder_offsets=())

    await asyncio.gather(*(one(p) for p in people))


async def outbox_counts(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = await conn.execute(select(Message.status, func.count()).group_by(Message.status))
        return {status: int(n) for status, n in rows.all()}


async def wait_for(check: Callable[[], Any], what: str, seconds: float = 120) -> None:
    """Poll real processes, within a bound; not a timing assertion."""
    for _ in range(int(seconds / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def received_ids(smtp: SmtpSink) -> Counter[int]:
    ids: Counter[int] = Counter()
    for message in smtp.messages:
        match = OUTBOX_ID.match(str(message["Message-ID"]))
        assert match is not None
        ids[int(match.group(1))] += 1
    return ids


async def test_two_processes_deliver_each_of_1000_exactly_once(
    postgres_url: str, live_server_factory: Any, smtp_server: SmtpSink
) -> None:
    db = Database.from_url(postgres_url)
    servers: list[Any] = []
    try:
        env = {"SCHEDULER_SMTP_URL": smtp_server.url}
        servers.extend(live_server_factory(postgres_url, **env) for _ in range(2))
        # Enqueued while both are running, as registrations arrive in production.
        await fill_session(db, 1000)

        async def all_sent() -> bool:
            return (await outbox_counts(db)).get("sent", 0) == 1000

        await wait_for(all_sent, "1,000 messages marked sent")
        assert await outbox_counts(db) == {"sent": 1000}
    finally:
        for server in servers:  # before the SMTP server goes away
            server.stop()
        await db.dispose()
    ids = received_ids(smtp_server)
    assert len(ids) == 1000
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]


async def test_sigkill_mid_dispatch_loses_nothing(
    postgres_url: str,
    live_server_factory: Any,
    smtp_server: SmtpSink,
    record_property: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = Database.from_url(postgres_url)
    server = live_server_factory(
        postgres_url, SCHEDULER_SMTP_URL=smtp_server.url, SCHEDULER_OUTBOX_LEASE="10s"
    )
    try:
        await fill_session(db, 600)

        async def some_sent() -> bool:
            return smtp_server.count() >= 150

        await wait_for(some_sent, "the first messages")
        assert server.process is not None
        server.process.kill()  # SIGKILL: no shutdown, no chance to settle the batch
        server.process.wait()
        async with db.read() as conn:
            in_flight = set(
                (
                    await conn.execute(select(Message.id).where(Message.status == "sending"))
                ).scalars()
            )
        delivered_before = smtp_server.count()
        assert delivered_before < 600, "the kill came too late to interrupt anything"

        server.start()

        async def all_sent() -> bool:
            return (await outbox_counts(db)).get("sent", 0) == 600

        await wait_for(all_sent, "every message after the restart")
        assert await outbox_counts(db) == {"sent": 600}
    finally:
        server.stop()  # before the SMTP server goes away
        await db.dispose()

    ids = received_ids(smtp_server)
    assert len(ids) == 600  # nothing lost
    duplicates = {i for i, n in ids.items() if n > 1}
    assert duplicates <= in_flight  # only messages that were in flight went out twice
    assert max(ids.values()) <= 2
    record_property("in_flight_at_kill", len(in_flight))
    record_property("duplicates", len(duplicates))
    with capsys.disabled():
        print(
            f"\n[sigkill] delivered before kill: {delivered_before}, in flight: {len(in_flight)}, "
            f"delivered twice: {len(duplicates)}"
        )
