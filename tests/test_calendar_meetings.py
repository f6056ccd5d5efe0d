"""A three-day session across the November DST change, read back by three parsers.

Feed and invites on both databases: three events at the right UTC instants; moving day 2
changes only day 2 (same UID, higher SEQUENCE); removing day 3 leaves it CANCELLED.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from notifications.models import Message
from notifications.outbox import OutboxMessage
from scheduler.mail_content import MailContextProvider
from tests.calendar_parsers import with_icalendar, with_icaljs, with_vobject
from tests.helpers import make_course, person, session_body

# The first Sunday of November 2027: Chicago leaves daylight time at 02:00 on the 7th.
DAYS = ("2027-11-06", "2027-11-07", "2027-11-08")
UTC_STARTS = [datetime(2027, 11, 6, 14, tzinfo=UTC), datetime(2027, 11, 7, 15, tzinfo=UTC)]
UTC_STARTS.append(datetime(2027, 11, 8, 15, tzinfo=UTC))


def meetings(*days: str, start: str = "09:00", end: str = "17:00") -> list[dict[str, Any]]:
    return [{"starts_at": f"{d}T{start}", "ends_at": f"{d}T{end}"} for d in days]


def read_all(data: bytes, tmp_path: Path, name: str) -> dict[str, dict[str, Any]]:
    """Every parser's reading, checked to agree on times, status and sequence."""
    path = tmp_path / f"{name}.ics"
    path.write_bytes(data)
    readings = {
        "icalendar": with_icalendar(data),
        "vobject": with_vobject(data),
        "ical.js": with_icaljs([path])[0]["events"],
    }
    first = readings["icalendar"]
    for parser, events in readings.items():
        assert set(events) == set(first), parser
        for uid, event in events.items():
            for key in ("start", "end", "status", "sequence"):
                assert event[key] == first[uid][key], (parser, uid, key)
    return first


def by_start(events: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return sorted(events.items(), key=lambda item: item[1]["start"])


async def emailed_invites(db, settings, kind: str) -> list[tuple[str, dict[str, Any]]]:
    """The invites the newest outbox message of ``kind`` carries, as the dispatcher plans them."""
    async with db.read() as conn:
        row = (
            await conn.execute(
                select(Message).where(Message.kind == kind).order_by(Message.id.desc()).limit(1)
            )
        ).one()
    message = OutboxMessage(
        id=row.id,
        kind=row.kind,
        recipient=row.recipient,
        registration_id=row.registration_id,
        session_id=row.session_id,
        payload=row.payload,
        due_at=row.due_at,
        attempts=row.attempts,
        created_at=row.created_at,
        lease_until=None,
    )
    (plan,) = await MailContextProvider(db, settings)([message])
    invites = [plan.invite, *plan.follow_ups] if plan.invite else []
    found = []
    for invite in invites:
        events = with_icalendar(invite.data)
        assert len(events) == 1, "one UID per iTIP message"
        ((uid, event),) = events.items()
        assert (b"METHOD:" + invite.method.encode()) in invite.data
        if invite.method == "CANCEL":
            assert b"TZID" not in invite.data  # Outlook refuses some CANCELs that carry one
        found.append((invite.method, {**event, "uid": uid, "data": invite.data}))
    return found


async def test_three_days_across_the_dst_change(client, admin_headers, db, settings, tmp_path):
    await make_course(client, admin_headers)
    body = session_body("hybrid", in_person=5, virtual=5)
    body.pop("starts_at"), body.pop("ends_at")
    body["meetings"] = meetings(*DAYS)
    created = await client.post(
        "/api/courses/managing-bias/sessions", json=body, headers=admin_headers
    )
    assert created.status_code == 201, created.text
    session = created.json()
    assert session["contact_hours"] == 24
    assert [m["starts_at"] for m in session["meetings"]] == [
        "2027-11-06T09:00:00-05:00",
        "2027-11-07T09:00:00-06:00",
        "2027-11-08T09:00:00-06:00",
    ]
    seat = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    token = seat.json()["token"]

    feed = read_all(
        (await client.get("/courses/managing-bias/calendar.ics")).content, tmp_path, "f0"
    )
    days = by_start(feed)
    assert [e["start"] for _, e in days] == UTC_STARTS
    assert [e["end"].hour for _, e in days] == [22, 23, 23]
    assert [e["summary"] for _, e in days] == [f"Managing Bias (Day {n} of 3)" for n in (1, 2, 3)]
    assert all("Day 3:" in e["description"] for _, e in days)
    mine = by_start(
        read_all((await client.get(f"/registrations/{token}/calendar.ics")).content, tmp_path, "i0")
    )
    assert [e["start"] for _, e in mine] == UTC_STARTS
    confirmation = await emailed_invites(db, settings, "confirmation")
    assert [(m, e["start"]) for m, e in confirmation] == [("REQUEST", s) for s in UTC_STARTS]
    assert [e["uid"] for _, e in confirmation] == [uid for uid, _ in mine]

    # Day 2 moves an hour later.
    ids = [m["id"] for m in session["meetings"]]
    schedule = [
        {"id": ids[0], **meetings(DAYS[0])[0]},
        {"id": ids[1], **meetings(DAYS[1], start="10:00", end="18:00")[0]},
        {"id": ids[2], **meetings(DAYS[2])[0]},
    ]
    moved = await client.patch(
        f"/api/sessions/{session['id']}", json={"meetings": schedule}, headers=admin_headers
    )
    assert moved.status_code == 200, moved.text
    feed2 = read_all(
        (await client.get("/courses/managing-bias/calendar.ics")).content, tmp_path, "f1"
    )
    days2 = by_start(feed2)
    assert [uid for uid, _ in days2] == [uid for uid, _ in days]
    for n in (0, 2):  # days 1 and 3: same times, same SEQUENCE
        for key in ("start", "end", "sequence", "status"):
            assert days2[n][1][key] == days[n][1][key], (n, key)
    assert days2[1][1]["start"] == datetime(2027, 11, 7, 16, tzinfo=UTC)
    assert days2[1][1]["sequence"] > days[1][1]["sequence"]
    mine2 = by_start(
        read_all((await client.get(f"/registrations/{token}/calendar.ics")).content, tmp_path, "i1")
    )
    assert [uid for uid, _ in mine2] == [uid for uid, _ in mine]
    assert [e["sequence"] for _, e in mine2][0::2] == [e["sequence"] for _, e in mine][0::2]
    assert mine2[1][1]["sequence"] > mine[1][1]["sequence"]
    change = await emailed_invites(db, settings, "session_changed")
    assert [(m, e["uid"], e["start"]) for m, e in change] == [
        ("REQUEST", mine[1][0], datetime(2027, 11, 7, 16, tzinfo=UTC))
    ]
    assert change[0][1]["sequence"] == mine2[1][1]["sequence"]

    # Day 3 is removed: it stays in the feed as CANCELLED, under its UID.
    removed = await client.patch(
        f"/api/sessions/{session['id']}", json={"meetings": schedule[:2]}, headers=admin_headers
    )
    assert removed.status_code == 200, removed.text
    assert removed.json()["contact_hours"] == 16
    feed3 = read_all(
        (await client.get("/courses/managing-bias/calendar.ics")).content, tmp_path, "f2"
    )
    days3 = by_start(feed3)
    assert [uid for uid, _ in days3] == [uid for uid, _ in days]
    assert [e["status"] for _, e in days3] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    assert days3[2][1]["sequence"] > days2[2][1]["sequence"]
    assert [e["summary"] for _, e in days3][:2] == [
        "Managing Bias (Day 1 of 2)",
        "Managing Bias (Day 2 of 2)",
    ]
    mine3 = by_start(
        read_all((await client.get(f"/registrations/{token}/calendar.ics")).content, tmp_path, "i2")
    )
    assert [e["status"] for _, e in mine3] == ["CONFIRMED", "CONFIRMED", "CANCELLED"]
    change = await emailed_invites(db, settings, "session_changed")
    assert [(m, e["uid"], e["status"]) for m, e in change] == [("CANCEL", mine[2][0], "CANCELLED")]
    assert change[0][1]["sequence"] > mine2[2][1]["sequence"]
