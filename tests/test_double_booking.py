"""Invariant 8: no instructor, and no room unless overlap is allowed, booked twice at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from scheduler import catalog
from scheduler.errors import Conflict
from tests.helpers import future_local, make_course, session_body


async def instructor(client, headers, n: int = 1, public: bool = False) -> dict:
    response = await client.post(
        "/api/instructors",
        json={"name": f"Instructor {n}", "email": f"teacher{n}@example.org", "public": public},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


async def venue(client, headers, room: str = "101") -> dict:
    response = await client.post(
        "/api/venues",
        json={
            "name": "Metro Training Center",
            "address": "1 Main St",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
            "room": room,
        },
        headers=headers,
    )
    assert response.status_code == 201, response.text
    return response.json()


def block(day: int, start: int, end: int, **extra) -> dict:
    begin = future_local(day, start)
    body = session_body(**extra)
    body["starts_at"] = begin.isoformat(timespec="minutes")
    body["ends_at"] = begin.replace(hour=end).isoformat(timespec="minutes")
    return body


async def post(client, headers, body):
    return await client.post("/api/courses/managing-bias/sessions", json=body, headers=headers)


async def test_an_instructor_booked_twice_is_409_naming_the_other_session(client, admin_headers):
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    first = await post(client, admin_headers, block(10, 9, 13, instructors=[teacher["id"]]))
    assert first.status_code == 201, first.text
    assert [i["id"] for i in first.json()["instructors"]] == [teacher["id"]]
    clash = await post(client, admin_headers, block(10, 12, 16, instructors=[teacher["id"]]))
    assert clash.status_code == 409, clash.text
    error = clash.json()["error"]
    assert error["code"] == "conflict"
    meeting_id = first.json()["meetings"][0]["id"]
    assert f"session {first.json()['id']}" in error["fields"]["instructors"]
    assert f"meeting {meeting_id}" in error["fields"]["instructors"]
    # Back to back is fine; a cancelled session books nobody.
    after = await post(client, admin_headers, block(10, 13, 16, instructors=[teacher["id"]]))
    assert after.status_code == 201, after.text
    await client.post(f"/api/sessions/{first.json()['id']}/cancel", headers=admin_headers)
    again = await post(client, admin_headers, block(10, 9, 12, instructors=[teacher["id"]]))
    assert again.status_code == 201, again.text


async def test_patch_that_moves_a_meeting_onto_a_taught_one_is_409(client, admin_headers):
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    one = (await post(client, admin_headers, block(10, 9, 12, instructors=[teacher["id"]]))).json()
    two = (await post(client, admin_headers, block(11, 9, 12, instructors=[teacher["id"]]))).json()
    onto = block(10, 10, 11)
    response = await client.patch(
        f"/api/sessions/{two['id']}",
        json={
            "meetings": [
                {
                    "id": two["meetings"][0]["id"],
                    "starts_at": onto["starts_at"],
                    "ends_at": onto["ends_at"],
                }
            ]
        },
        headers=admin_headers,
    )
    assert response.status_code == 409
    assert f"session {one['id']}" in response.json()["error"]["fields"]["instructors"]
    # Unassigning the instructor frees the time.
    freed = await client.patch(
        f"/api/sessions/{two['id']}",
        json={
            "instructors": [],
            "meetings": [
                {
                    "id": two["meetings"][0]["id"],
                    "starts_at": onto["starts_at"],
                    "ends_at": onto["ends_at"],
                }
            ],
        },
        headers=admin_headers,
    )
    assert freed.status_code == 200, freed.text


async def test_a_room_is_not_shared_unless_overlap_is_allowed(client, admin_headers):
    await make_course(client, admin_headers)
    room = await venue(client, admin_headers)
    other_room = await venue(client, admin_headers, room="102")

    def in_room(venue_id, start, end, **extra):
        body = block(10, start, end, **extra)
        body.pop("venue")
        body["venue_id"] = venue_id
        return body

    first = await post(client, admin_headers, in_room(room["id"], 9, 12))
    assert first.status_code == 201, first.text
    assert first.json()["venue"]["room"] == "101"
    clash = await post(client, admin_headers, in_room(room["id"], 11, 14))
    assert clash.status_code == 409
    assert f"session {first.json()['id']}" in clash.json()["error"]["fields"]["venue_id"]
    elsewhere = await post(client, admin_headers, in_room(other_room["id"], 11, 14))
    assert elsewhere.status_code == 201
    shared = await post(client, admin_headers, in_room(room["id"], 11, 14, allow_overlap=True))
    assert shared.status_code == 201, shared.text
    # A free-typed venue is not the directory's room: it books nothing.
    typed = await post(client, admin_headers, block(10, 9, 12))
    assert typed.status_code == 201


async def test_the_travel_buffer_keeps_meetings_apart(client, admin_headers, db):
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    await post(client, admin_headers, block(10, 9, 12, instructors=[teacher["id"]]))
    later = block(10, 12, 15, instructors=[teacher["id"]])
    with pytest.raises(Conflict) as caught:
        await catalog.create_session(
            db, "managing-bias", later, travel_buffer=timedelta(minutes=30)
        )
    assert "instructors" in caught.value.fields
    made = await catalog.create_session(db, "managing-bias", later, travel_buffer=timedelta(0))
    assert made.instructors[0].id == teacher["id"]


async def test_concurrent_requests_book_an_instructor_once(client, admin_headers):
    """In one process on either database: of eight overlapping sessions, exactly one is made."""
    await make_course(client, admin_headers)
    teacher = await instructor(client, admin_headers)
    answers = await asyncio.gather(
        *(
            post(client, admin_headers, block(10, 9, 12 + n % 3, instructors=[teacher["id"]]))
            for n in range(8)
        )
    )
    assert sorted(a.status_code for a in answers) == [201] + [409] * 7


async def test_public_answers_name_only_instructors_who_allow_it(client, admin_headers):
    await make_course(client, admin_headers)
    shown = await instructor(client, admin_headers, 1, public=True)
    hidden = await instructor(client, admin_headers, 2, public=False)
    made = await post(
        client, admin_headers, block(10, 9, 12, instructors=[shown["id"], hidden["id"]])
    )
    assert {i["name"] for i in made.json()["instructors"]} == {"Instructor 1", "Instructor 2"}
    public = (await client.get(f"/api/sessions/{made.json()['id']}")).json()
    assert [i["name"] for i in public["instructors"]] == ["Instructor 1"]
    assert "teacher" not in str(public)
    page = (await client.get("/courses/managing-bias")).text
    assert "Instructor 1" in page and "Instructor 2" not in page
