"""Sent messages are marked as the batch goes out, so a crash can repeat only a few of them."""

from __future__ import annotations

import asyncio
from email.message import EmailMessage

from sqlalchemy import func, select

from notifications.models import Message, MessageStatus
from scheduler import booking, catalog
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import make_dispatcher
from tests.helpers import session_body


class StallingTransport:
    """Delivers the first ``stall_after`` messages, then holds every later send until released."""

    def __init__(self, stall_after: int) -> None:
        self.stall_after = stall_after
        self.sent: list[EmailMessage] = []
        self.release = asyncio.Event()

    async def send(self, message: EmailMessage) -> None:
        if len(self.sent) >= self.stall_after:
            await self.release.wait()
        self.sent.append(message)

    async def close(self) -> None:
        return None


async def sent_rows(db: Database) -> int:
    async with db.read() as conn:
        count = await conn.execute(select(func.count()).where(Message.status == MessageStatus.SENT))
        return int(count.scalar_one())


async def test_sent_messages_are_marked_before_the_batch_ends(db: Database, settings: Settings):
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    session = await catalog.create_session(db, "managing-bias", session_body(in_person=100))
    for n in range(30):
        person = booking.RegistrationInput(
            name=f"Officer {n}",
            email=f"officer{n}@example.org",
            agency="PD",
            attendance="in_person",
        )
        await booking.register(db, session.id, person, reminder_offsets=())
    transport = StallingTransport(stall_after=20)
    dispatcher = make_dispatcher(db, settings, transport)
    batch = asyncio.create_task(dispatcher.run_once())
    try:
        async with asyncio.timeout(10):  # the old all-at-the-end marking never gets here
            while len(transport.sent) < 20 or await sent_rows(db) < 20 - dispatcher.parallel:  # noqa: ASYNC110 (polls the database)
                await asyncio.sleep(0.05)
        # The batch is still going (ten sends are held), yet most of what went out is marked:
        # a crash now would send again at most one write's worth, not all twenty.
        assert not batch.done()
        assert await sent_rows(db) >= 20 - dispatcher.parallel
    finally:
        transport.release.set()
    result = await batch
    assert result.sent == 30
    assert await sent_rows(db) == 30
