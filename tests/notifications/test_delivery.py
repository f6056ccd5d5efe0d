"""Each message kind, delivered to a real SMTP server and parsed back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import select

from notifications.models import Message
from scheduler.config import Settings
from scheduler.db import Database
from tests.helpers import make_course, make_session, person
from tests.notifications.mailbox import (
    by_recipient,
    event_of,
    html_of,
    invite_of,
    kinds,
    smtp_dispatcher,
    text_of,
)
from tests.support.smtp import SmtpSink

JOIN = "https://meet.example.org/secret-room-123"


async def register(client: httpx.AsyncClient, session_id: int, body: dict[str, str]) -> Any:
    response = await client.post(f"/api/sessions/{session_id}/registrations", json=body)
    assert response.status_code == 201, response.text
    return response.json()


async def deliver(db: Database, settings: Settings, smtp: SmtpSink) -> list[Any]:
    before = smtp.count()
    dispatcher = smtp_dispatcher(db, settings, smtp.url)
    try:
        await dispatcher.drain()
    finally:
        await dispatcher.close()
    return smtp.messages[before:]


async def statuses(db: Database) -> dict[str, int]:
    async with db.read() as conn:
        rows = (await conn.execute(select(Message.status))).scalars().all()
    counts: dict[str, int] = {}
    for status in rows:
        counts[status] = counts.get(status, 0) + 1
    return counts


async def test_confirmation_in_person(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="in_person", zone="America/Chicago")
    seat = await register(client, session["id"], person(1))

    received = await deliver(db, settings, smtp_server)

    assert kinds(received) == ["confirmation"]
    mail = received[0]
    assert mail["To"].addresses[0].addr_spec == "officer1@example.org"
    assert mail["To"].addresses[0].display_name == "Officer 1"
    assert mail["From"].addresses[0].addr_spec == "no-reply@training.invalid"
    # No SCHEDULER_REPLY_TO: no Reply-To pointing back at the no-reply sender.
    assert mail["Reply-To"] is None and mail["Date"] is not None
    assert mail["Message-ID"].startswith("<outbox-") and mail["Message-ID"].endswith(
        "@training.invalid>"
    )
    for body in (text_of(mail), html_of(mail)):
        assert "Managing Bias" in body
        assert "Metro Training Center" in body and "1 Main St" in body
        assert seat["manage_url"] in body
        assert JOIN not in body
        # Times are in the session's zone, with its abbreviation.
        assert "9:00 AM C" in body and ("CST" in body or "CDT" in body)
    cal = invite_of(mail)
    assert cal is not None and str(cal["METHOD"]) == "REQUEST"
    event = event_of(cal)
    assert int(event["SEQUENCE"]) == 0
    assert "Metro Training Center" in str(event["LOCATION"])
    assert mail.get_content_type() == "multipart/mixed"
    assert await statuses(db) == {"sent": 1, "pending": 3}  # the three reminders wait


async def test_join_url_only_for_confirmed_virtual(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="hybrid", in_person=1, virtual=1)
    await register(client, session["id"], person(1, attendance="virtual"))
    await register(client, session["id"], person(2, attendance="virtual"))  # waitlisted
    await register(client, session["id"], person(3, attendance="in_person"))

    mails = by_recipient(await deliver(db, settings, smtp_server))

    confirmed = mails["officer1@example.org"][0]
    assert kinds([confirmed]) == ["confirmation"]
    assert JOIN in text_of(confirmed) and JOIN in html_of(confirmed)
    assert "Metro Training Center" not in text_of(confirmed)  # a virtual seat needs no venue
    assert JOIN in event_of(invite_of(confirmed)).to_ical().decode()

    waiting = mails["officer2@example.org"][0]
    assert kinds([waiting]) == ["waitlisted"]
    assert "position 1" in text_of(waiting) and "position 1" in html_of(waiting)
    assert invite_of(waiting) is None
    assert JOIN not in waiting.as_string()

    in_person = mails["officer3@example.org"][0]
    assert JOIN not in in_person.as_string()
    assert "Metro Training Center" in text_of(in_person)


async def test_cancel_promotes_with_cancel_and_request(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="virtual", virtual=1)
    first = await register(client, session["id"], person(1, attendance="virtual"))
    await register(client, session["id"], person(2, attendance="virtual"))
    await deliver(db, settings, smtp_server)

    response = await client.delete(f"/api/registrations/{first['token']}")
    assert response.status_code == 200, response.text
    mails = by_recipient(await deliver(db, settings, smtp_server))

    cancelled = mails["officer1@example.org"]
    assert kinds(cancelled) == ["registration_cancelled"]
    cal = invite_of(cancelled[0])
    assert cal is not None and str(cal["METHOD"]) == "CANCEL"
    assert int(event_of(cal)["SEQUENCE"]) >= 1
    assert JOIN not in cancelled[0].as_string()

    promoted = mails["officer2@example.org"]
    assert kinds(promoted) == ["promoted"]
    cal = invite_of(promoted[0])
    assert cal is not None and str(cal["METHOD"]) == "REQUEST"
    assert JOIN in text_of(promoted[0]) and JOIN in html_of(promoted[0])


async def test_reschedule_sends_old_and_new_with_higher_sequence(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="in_person", in_person=1, days=12)
    await register(client, session["id"], person(1))
    await register(client, session["id"], person(2))  # waitlisted
    [confirmation, _] = sorted(await deliver(db, settings, smtp_server), key=lambda m: str(m["To"]))
    first_sequence = int(event_of(invite_of(confirmation))["SEQUENCE"])

    start = datetime.fromisoformat(session["starts_at"])
    new_start = start.replace(hour=13).replace(tzinfo=None)
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={
            "starts_at": new_start.isoformat(timespec="minutes"),
            "ends_at": new_start.replace(hour=16).isoformat(timespec="minutes"),
            "venue": {"name": "Annex Hall", "address": "9 Side St"},
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    mails = by_recipient(await deliver(db, settings, smtp_server))

    changed = mails["officer1@example.org"]
    assert kinds(changed) == ["session_changed"]
    for body in (text_of(changed[0]), html_of(changed[0])):
        assert "9:00 AM" in body and "1:00 PM" in body  # old and new side by side
        assert "Metro Training Center" in body and "Annex Hall" in body
    cal = invite_of(changed[0])
    assert cal is not None and str(cal["METHOD"]) == "REQUEST"
    assert int(event_of(cal)["SEQUENCE"]) > first_sequence
    assert "13:00" in str(event_of(cal)["DTSTART"].dt.strftime("%H:%M"))

    waiting = mails["officer2@example.org"]
    assert kinds(waiting) == ["session_changed"]
    assert invite_of(waiting[0]) is None
    assert "waitlist (position 1)" in text_of(waiting[0])


async def test_session_cancelled(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="virtual", virtual=1)
    await register(client, session["id"], person(1, attendance="virtual"))
    await register(client, session["id"], person(2, attendance="virtual"))
    # Not yet dispatched: the confirmation and waitlisted mails are moot once it is cancelled.
    response = await client.post(f"/api/sessions/{session['id']}/cancel", headers=admin_headers)
    assert response.status_code == 200, response.text

    mails = by_recipient(await deliver(db, settings, smtp_server))

    assert kinds(mails["officer1@example.org"]) == ["session_cancelled"]
    cal = invite_of(mails["officer1@example.org"][0])
    assert cal is not None and str(cal["METHOD"]) == "CANCEL"
    assert JOIN not in mails["officer1@example.org"][0].as_string()
    assert kinds(mails["officer2@example.org"]) == ["session_cancelled"]
    assert invite_of(mails["officer2@example.org"][0]) is None
    counts = await statuses(db)
    assert counts["sent"] == 2 and "pending" not in counts


async def test_cancelled_registration_still_told_when_session_cancelled(
    client: httpx.AsyncClient,
    admin_headers: dict[str, str],
    db: Database,
    settings: Settings,
    smtp_server: SmtpSink,
) -> None:
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="in_person")
    seat = await register(client, session["id"], person(1))
    assert (await client.delete(f"/api/registrations/{seat['token']}")).status_code == 200
    assert (
        await client.post(f"/api/sessions/{session['id']}/cancel", headers=admin_headers)
    ).status_code == 200

    received = await deliver(db, settings, smtp_server)

    # Their own cancellation went into the outbox first; the session's cancellation must not
    # swallow it, and nothing else reaches them.
    assert kinds(received) == ["registration_cancelled"]
