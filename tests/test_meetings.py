"""Sessions that meet on several days: the API's schedule, its field errors, PATCH by id."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.helpers import future_local, make_course, session_body


def days(*spec: tuple[int, int, int], zone: str = "America/Chicago") -> list[dict[str, str]]:
    """Meetings ``(days from now, start hour, end hour)`` as wall-clock bodies."""
    out = []
    for offset, start, end in spec:
        day = future_local(offset, start, zone)
        out.append(
            {
                "starts_at": day.isoformat(timespec="minutes"),
                "ends_at": day.replace(hour=end).isoformat(timespec="minutes"),
            }
        )
    return out


async def create(client, headers, **body):
    base = session_body()
    base.pop("starts_at")
    base.pop("ends_at")
    base.update(body)
    return await client.post("/api/courses/managing-bias/sessions", json=base, headers=headers)


async def test_a_two_day_session_has_meetings_contact_hours_and_span(client, admin_headers):
    await make_course(client, admin_headers)
    response = await create(client, admin_headers, meetings=days((10, 8, 16), (11, 8, 12)))
    assert response.status_code == 201, response.text
    session = response.json()
    assert [m["starts_at"][11:16] for m in session["meetings"]] == ["08:00", "08:00"]
    assert all(m["id"] for m in session["meetings"])
    assert session["contact_hours"] == 12
    assert session["starts_at"] == session["meetings"][0]["starts_at"]
    assert session["ends_at"] == session["meetings"][1]["ends_at"]
    public = (await client.get(f"/api/sessions/{session['id']}")).json()
    assert public["meetings"] == session["meetings"]


async def test_starts_at_and_ends_at_still_make_one_meeting(client, admin_headers):
    await make_course(client, admin_headers)
    body = session_body()
    response = await client.post(
        "/api/courses/managing-bias/sessions", json=body, headers=admin_headers
    )
    session = response.json()
    assert len(session["meetings"]) == 1 and session["contact_hours"] == 4
    assert session["meetings"][0]["starts_at"] == session["starts_at"]


@pytest.mark.parametrize(
    ("meetings", "path"),
    [
        (days((10, 8, 16), (10, 15, 18)), "meetings[1].starts_at"),  # overlapping
        (days((11, 8, 16), (10, 8, 16)), "meetings[1].starts_at"),  # unordered
        (days((10, 8, 16), (11, 12, 9)), "meetings[1].ends_at"),  # ends before it starts
        (days((-2, 8, 16), (11, 8, 12)), "meetings[0].starts_at"),  # in the past
        ([{"starts_at": "tomorrow", "ends_at": "2030-01-01T10:00"}], "meetings[0].starts_at"),
        (days(*[(10 + n, 8, 9) for n in range(61)]), "meetings"),  # more than 60
        ([], "meetings"),
        ("monday", "meetings"),
    ],
)
async def test_bad_schedules_name_the_field(client, admin_headers, meetings, path):
    await make_course(client, admin_headers)
    response = await create(client, admin_headers, meetings=meetings)
    assert response.status_code == 422, response.text
    assert path in response.json()["error"]["fields"]


async def test_sixty_meetings_are_allowed(client, admin_headers):
    await make_course(client, admin_headers)
    response = await create(
        client, admin_headers, meetings=days(*[(10 + n, 8, 9) for n in range(60)])
    )
    assert response.status_code == 201, response.text
    assert len(response.json()["meetings"]) == 60


async def test_unknown_instructor_and_venue_ids_are_422(client, admin_headers):
    await make_course(client, admin_headers)
    bad = await create(client, admin_headers, meetings=days((10, 8, 16)), instructors=[999])
    assert bad.status_code == 422 and "instructors[0]" in bad.json()["error"]["fields"]
    body = session_body()
    body.pop("venue")
    body["venue_id"] = 12345
    bad = await client.post("/api/courses/managing-bias/sessions", json=body, headers=admin_headers)
    assert bad.status_code == 422 and "venue_id" in bad.json()["error"]["fields"]


async def test_patch_replaces_the_schedule_and_keeps_ids(client, admin_headers):
    await make_course(client, admin_headers)
    session = (await create(client, admin_headers, meetings=days((10, 8, 16), (11, 8, 16)))).json()
    first, second = session["meetings"]
    moved = days((12, 9, 13))[0]
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={
            "meetings": [
                {"id": first["id"], **days((10, 8, 16))[0]},
                {"id": second["id"], **moved},
                days((13, 8, 12))[0],
            ]
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    after = response.json()["meetings"]
    assert [m["id"] for m in after[:2]] == [first["id"], second["id"]]
    assert after[0] == first
    assert after[1]["starts_at"][11:16] == "09:00" and after[2]["id"] not in (
        first["id"],
        second["id"],
    )
    assert response.json()["contact_hours"] == 8 + 4 + 4
    # Leaving one out removes it.
    response = await client.patch(
        f"/api/sessions/{session['id']}", json={"meetings": [after[0]]}, headers=admin_headers
    )
    assert [m["id"] for m in response.json()["meetings"]] == [first["id"]]
    # An id from elsewhere is refused.
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"meetings": [{"id": 987654, **days((10, 8, 16))[0]}]},
        headers=admin_headers,
    )
    assert response.status_code == 422 and "meetings[0].id" in response.json()["error"]["fields"]


async def test_a_past_day_may_stay_while_a_later_one_moves(client, admin_headers, db):
    """A meeting already held is kept as it is; only new or moved ones must be in the future."""
    from sqlalchemy import update

    from scheduler.models import Meeting

    await make_course(client, admin_headers)
    session = (await create(client, admin_headers, meetings=days((10, 8, 16), (11, 8, 16)))).json()
    first, second = session["meetings"]
    async with db.write() as conn:  # day 1 was yesterday
        await conn.execute(
            update(Meeting)
            .where(Meeting.id == first["id"])
            .values(
                starts_at=datetime.fromisoformat(first["starts_at"]) - timedelta(days=11),
                ends_at=datetime.fromisoformat(first["ends_at"]) - timedelta(days=11),
            )
        )
    current = (await client.get(f"/api/sessions/{session['id']}")).json()["meetings"]
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"meetings": [current[0], {"id": second["id"], **days((12, 8, 16))[0]}]},
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text


async def pending_reminders(db):
    from sqlalchemy import select

    from notifications.models import Message

    async with db.read() as conn:
        rows = await conn.execute(
            select(Message.due_at).where(Message.kind == "reminder", Message.status == "pending")
        )
        return sorted(r.due_at for r in rows.all())


async def test_reminders_count_from_the_first_meeting(client, admin_headers, db):
    await make_course(client, admin_headers)
    session = (await create(client, admin_headers, meetings=days((10, 8, 16), (11, 8, 16)))).json()
    seat = await client.post(
        f"/api/sessions/{session['id']}/registrations",
        json={"name": "A B", "email": "ab@example.org", "agency": "PD", "attendance": "in_person"},
    )
    assert seat.status_code == 201
    first = datetime.fromisoformat(session["meetings"][0]["starts_at"])
    due = await pending_reminders(db)
    assert due[-1] == first - timedelta(hours=1)
    ids = [m["id"] for m in session["meetings"]]
    later_day2 = days((12, 8, 16))[0]
    await client.patch(
        f"/api/sessions/{session['id']}",
        json={"meetings": [session["meetings"][0], {"id": ids[1], **later_day2}]},
        headers=admin_headers,
    )
    assert await pending_reminders(db) == due  # day 2 moving changes nothing
    earlier_day1 = days((9, 8, 16))[0]
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"meetings": [{"id": ids[0], **earlier_day1}, {"id": ids[1], **later_day2}]},
        headers=admin_headers,
    )
    new_first = datetime.fromisoformat(response.json()["meetings"][0]["starts_at"])
    assert (await pending_reminders(db))[-1] == new_first - timedelta(hours=1)
