"""Reminder timing under a controlled clock: offsets, reschedule, cancellation, late
registration, downtime past the start (invariant 6)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from sqlalchemy import select

from notifications.models import Message
from scheduler.config import Settings
from scheduler.db import Database
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import smtp_dispatcher, text_of
from tests.support.smtp import SmtpSink

MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> Iterator[Any]:
    # Frozen at the real "now" (the helpers plan sessions from it), moved by each test.
    with time_machine.travel(datetime.now(UTC), tick=False) as traveller:
        yield traveller


async def reminders_sent(db: Database, settings: Settings, smtp: SmtpSink) -> list[Any]:
    """Run the dispatcher at the frozen now; return the reminders that reached the server."""
    before = smtp.count()
    dispatcher = smtp_dispatcher(db, settings, smtp.url)
    await dispatcher.drain()
    await dispatcher.close()
    return [m for m in smtp.messages[before:] if m["X-Outbox-Kind"] == "reminder"]


async def reminder_rows(db: Database) -> list[Any]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(Message).where(Message.kind == "reminder").order_by(Message.id)
        )
        return list(rows.all())


async def new_session(client: httpx.AsyncClient, headers: dict[str, str], **kwargs: Any) -> Any:
    await make_course(client, headers)
    session = await make_session(client, headers, **kwargs)
    session["start"] = datetime.fromisoformat(session["starts_at"]).astimezone(UTC)
    return session


async def register(client: httpx.AsyncClient, session: Any, n: int, **kwargs: Any) -> Any:
    response = await client.post(
        f"/api/sessions/{session['id']}/registrations", json=person(n, **kwargs)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_each_offset_fires_at_its_time_and_not_before(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, days=10)
    seat = await register(client, session, 1)
    start = session["start"]

    for offset, label in (
        (timedelta(days=7), "in 7 days"),
        (timedelta(days=1), "tomorrow"),
        (timedelta(hours=1), "in 1 hour"),
    ):
        clock.move_to(start - offset - MINUTE)
        assert await reminders_sent(db, settings, smtp_server) == []
        clock.move_to(start - offset + MINUTE)
        [mail] = await reminders_sent(db, settings, smtp_server)
        assert label in str(mail["Subject"])
        body = text_of(mail)
        assert "Metro Training Center" in body and "1 Main St" in body
        assert seat["manage_url"] in body
    assert [r.status for r in await reminder_rows(db)] == ["sent"] * 3


async def test_virtual_reminder_carries_the_join_url(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, mode="virtual", virtual=5, days=3)
    await register(client, session, 1, attendance="virtual")
    # The dispatcher was away past the 1-day mark: only the nearest reminder goes out.
    clock.move_to(session["start"] - timedelta(hours=1) + MINUTE)
    [mail] = await reminders_sent(db, settings, smtp_server)
    assert "in 1 hour" in str(mail["Subject"])
    assert "https://meet.example.org/secret-room-123" in text_of(mail)
    statuses = {r.payload["offset_seconds"]: r.status for r in await reminder_rows(db)}
    assert statuses == {86400: "cancelled", 3600: "sent"}


async def test_late_registration_skips_reminders_already_past(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, days=10)
    clock.move_to(session["start"] - timedelta(days=2))
    await register(client, session, 1)

    rows = await reminder_rows(db)
    assert [r.payload["offset_seconds"] for r in rows] == [86400, 3600]
    clock.move_to(session["start"] - timedelta(hours=23))
    [mail] = await reminders_sent(db, settings, smtp_server)
    assert "tomorrow" in str(mail["Subject"])


async def test_reschedule_moves_reminders_and_a_postponement_repeats_them(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, days=10)
    await register(client, session, 1)
    start = session["start"]
    clock.move_to(start - timedelta(days=7) + MINUTE)
    assert len(await reminders_sent(db, settings, smtp_server)) == 1

    # Postpone by five days (same wall-clock time).
    local = datetime.fromisoformat(session["starts_at"])
    new_local = (local + timedelta(days=5)).replace(tzinfo=None)
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={
            "starts_at": new_local.isoformat(timespec="minutes"),
            "ends_at": (new_local + timedelta(hours=4)).isoformat(timespec="minutes"),
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    new_start = start + timedelta(days=5)
    pending = [r for r in await reminder_rows(db) if r.status == "pending"]
    assert sorted(r.due_at for r in pending) == [
        new_start - timedelta(days=7),
        new_start - timedelta(days=1),
        new_start - timedelta(hours=1),
    ]

    # The new 7-day mark reminds again; the old 1-day mark then passes in silence.
    clock.move_to(new_start - timedelta(days=7) - MINUTE)
    assert await reminders_sent(db, settings, smtp_server) == []
    clock.move_to(new_start - timedelta(days=7) + MINUTE)
    [again] = await reminders_sent(db, settings, smtp_server)
    assert "in 7 days" in str(again["Subject"])
    clock.move_to(start - timedelta(days=1) + MINUTE)
    assert await reminders_sent(db, settings, smtp_server) == []

    # Pull it earlier, closer than a day: only the 1-hour reminder is still ahead.
    clock.move_to(new_start - timedelta(days=6))
    earlier_local = (new_local - timedelta(days=6) + timedelta(hours=12)).replace(tzinfo=None)
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={
            "starts_at": earlier_local.isoformat(timespec="minutes"),
            "ends_at": (earlier_local + timedelta(hours=4)).isoformat(timespec="minutes"),
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    pending = [r for r in await reminder_rows(db) if r.status == "pending"]
    assert [r.payload["offset_seconds"] for r in pending] == [3600]


async def test_cancellations_stop_reminders(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, days=10)
    leaving = await register(client, session, 1)
    await register(client, session, 2)
    assert (await client.delete(f"/api/registrations/{leaving['token']}")).status_code == 200
    clock.move_to(session["start"] - timedelta(days=7) + MINUTE)
    [mail] = await reminders_sent(db, settings, smtp_server)
    assert mail["To"].addresses[0].addr_spec == "officer2@example.org"

    response = await client.post(f"/api/sessions/{session['id']}/cancel", headers=admin_headers)
    assert response.status_code == 200
    clock.move_to(session["start"] - timedelta(minutes=30))
    assert await reminders_sent(db, settings, smtp_server) == []
    assert "pending" not in {r.status for r in await reminder_rows(db)}


async def test_waitlisted_get_none_until_promoted(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, in_person=1, days=10)
    first = await register(client, session, 1)
    await register(client, session, 2)  # waitlisted
    assert {r.recipient for r in await reminder_rows(db)} == {"officer1@example.org"}

    clock.move_to(session["start"] - timedelta(days=3))
    assert (await client.delete(f"/api/registrations/{first['token']}")).status_code == 200
    clock.move_to(session["start"] - timedelta(hours=23))
    [mail] = await reminders_sent(db, settings, smtp_server)
    assert mail["To"].addresses[0].addr_spec == "officer2@example.org"


async def test_no_reminder_after_the_start_even_after_downtime(
    clock: Any,
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    session = await new_session(client, admin_headers, days=10)
    await register(client, session, 1)
    # The service was down from before the 7-day mark until after the start.
    clock.move_to(session["start"] + timedelta(minutes=5))
    assert await reminders_sent(db, settings, smtp_server) == []
    rows = await reminder_rows(db)
    assert [r.status for r in rows] == ["cancelled"] * 3
    assert all(r.last_error == "the session has already started" for r in rows)
