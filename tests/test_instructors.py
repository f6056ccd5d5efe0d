"""Instructors hear about what they teach, by real email, and keep a private revocable feed."""

from __future__ import annotations

from icalendar import Calendar

from tests.helpers import make_course
from tests.notifications.mailbox import invite_of, text_of
from tests.notifications.test_delivery import deliver
from tests.test_double_booking import block, instructor, post


async def test_assign_change_unassign_and_the_private_feed(
    client, admin_headers, db, settings, smtp_server
):
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    body = block(10, 9, 12, mode="virtual", instructors=[teacher["id"]])
    body.pop("starts_at"), body.pop("ends_at")
    day1, day2 = block(10, 9, 12), block(11, 9, 12)
    body["meetings"] = [
        {"starts_at": d["starts_at"], "ends_at": d["ends_at"]} for d in (day1, day2)
    ]
    session = (await post(client, admin_headers, body)).json()

    assigned = [m for m in await deliver(db, settings, smtp_server) if "teacher1" in m["To"]]
    assert len(assigned) == 2  # one iTIP message per meeting: the email and one follow-up
    methods = [str(invite_of(m)["METHOD"]) for m in assigned]
    assert methods == ["REQUEST", "REQUEST"]
    assert "Day 2:" in text_of(assigned[0])
    assert "secret-room-123" in text_of(assigned[0])  # they teach it: the join URL (inv. 7)

    moved = block(12, 10, 13)
    ids = [m["id"] for m in session["meetings"]]
    response = await client.patch(
        f"/api/sessions/{session['id']}",
        json={
            "meetings": [
                {"id": ids[0], "starts_at": day1["starts_at"], "ends_at": day1["ends_at"]},
                {"id": ids[1], "starts_at": moved["starts_at"], "ends_at": moved["ends_at"]},
            ]
        },
        headers=admin_headers,
    )
    assert response.status_code == 200, response.text
    changed = [m for m in await deliver(db, settings, smtp_server) if "teacher1" in m["To"]]
    assert len(changed) == 1
    assert "Day 2 moved" in text_of(changed[0])

    feed_url = teacher["feed_url"].removeprefix("http://testserver")
    feed = await client.get(feed_url)
    assert feed.status_code == 200 and feed.headers["cache-control"] == "private, no-store"
    events = Calendar.from_ical(feed.content).walk("VEVENT")
    assert len(events) == 2 and all("secret-room-123" in str(e["DESCRIPTION"]) for e in events)

    response = await client.patch(
        f"/api/sessions/{session['id']}", json={"instructors": []}, headers=admin_headers
    )
    assert response.status_code == 200
    gone = [m for m in await deliver(db, settings, smtp_server) if "teacher1" in m["To"]]
    assert [str(invite_of(m)["METHOD"]) for m in gone] == ["CANCEL", "CANCEL"]

    rotated = await client.patch(
        f"/api/instructors/{teacher['id']}", json={"rotate_feed_token": True}, headers=admin_headers
    )
    assert rotated.status_code == 200
    assert (await client.get(feed_url)).status_code == 404
    new_url = rotated.json()["feed_url"].removeprefix("http://testserver")
    assert (await client.get(new_url)).status_code == 200
