"""Transient failures wait and retry with backoff; permanent ones fail with the server's answer."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select

from notifications.dispatcher import RetryPolicy
from notifications.models import Message
from notifications.outbox import retry
from scheduler.config import Settings
from scheduler.db import Database
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import smtp_dispatcher
from tests.support.smtp import SmtpSink


async def confirmations(db: Database) -> list[Any]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(Message).where(Message.kind != "reminder").order_by(Message.id)
        )
        return list(rows.all())


async def setup_registrations(
    client: httpx.AsyncClient, headers: dict[str, str], count: int
) -> None:
    await make_course(client, headers)
    session = await make_session(client, headers, in_person=count)
    for n in range(count):
        response = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(n))
        assert response.status_code == 201


async def test_permanent_refusal_fails_with_the_servers_answer(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await setup_registrations(client, admin_headers, 2)
    smtp_server.refuse["officer0@example.org"] = "550 5.1.1 <officer0@example.org>: no such user"

    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    result = await dispatcher.run_once()
    await dispatcher.close()

    assert (result.sent, result.failed, result.retrying) == (1, 1, 0)
    bad, good = await confirmations(db)
    assert bad.status == "failed" and good.status == "sent"
    assert (
        bad.last_error is not None and "550" in bad.last_error and "no such user" in bad.last_error
    )
    assert bad.attempts == 1
    assert [rcpt for _, rcpt, _ in smtp_server.received] == [["officer1@example.org"]]

    # `scheduler outbox --retry` puts it back; once the address works it goes out.
    async with db.write() as conn:
        assert await retry(conn, bad.id) == 1
    del smtp_server.refuse["officer0@example.org"]
    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    await dispatcher.drain()
    await dispatcher.close()
    assert [m.status for m in await confirmations(db)] == ["sent", "sent"]


async def test_transient_refusal_backs_off_then_gives_up(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await setup_registrations(client, admin_headers, 1)
    smtp_server.refuse["officer0@example.org"] = "451 4.3.0 try again later"
    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    dispatcher.retry = RetryPolicy(max_attempts=3, base=timedelta(seconds=60))
    dispatcher.rng = random.Random(7)

    first = await dispatcher.run_once()
    [message] = await confirmations(db)
    assert first.retrying == 1 and message.status == "pending" and message.attempts == 1
    assert message.last_error is not None and "451" in message.last_error
    assert message.sent_at is None
    delay = message.due_at - message.created_at
    assert timedelta(seconds=30) <= delay <= timedelta(seconds=61)
    # Not due yet: nothing is claimed before the backoff runs out.
    assert (await dispatcher.run_once()).claimed == 0

    second = await dispatcher.run_once(now=message.due_at + timedelta(seconds=1))
    [message2] = await confirmations(db)
    assert second.retrying == 1 and message2.attempts == 2
    # The backoff grows: the second wait is drawn from a doubled ceiling.
    assert message2.due_at - message.due_at >= timedelta(seconds=60)

    third = await dispatcher.run_once(now=message2.due_at + timedelta(seconds=1))
    [message3] = await confirmations(db)
    await dispatcher.close()
    assert third.failed == 1 and message3.status == "failed"
    assert message3.last_error is not None
    assert (
        message3.last_error.startswith("gave up after 3 attempts") and "451" in message3.last_error
    )
    assert smtp_server.received == []


async def test_smtp_down_messages_wait_then_all_go_out_once(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await setup_registrations(client, admin_headers, 30)
    smtp_server.stop()
    dispatcher = smtp_dispatcher(db, settings, smtp_server.url)
    dispatcher.batch_size = 10

    await dispatcher.drain()
    waiting = await confirmations(db)
    assert [m.status for m in waiting] == ["pending"] * 30
    assert all(m.attempts == 1 and m.last_error for m in waiting)
    assert "Connect" in (waiting[0].last_error or "")

    smtp_server.start()
    latest_due = max(m.due_at for m in waiting)
    handled = 0
    for _ in range(10):  # bounded: three batches of ten are due
        result = await dispatcher.run_once(now=latest_due + timedelta(seconds=1))
        handled += result.sent
        if result.claimed == 0:
            break
    await dispatcher.close()

    assert handled == 30
    assert [m.status for m in await confirmations(db)] == ["sent"] * 30
    ids = Counter(str(m["Message-ID"]) for m in smtp_server.messages)
    assert len(ids) == 30 and set(ids.values()) == {1}
