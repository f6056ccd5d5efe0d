"""The JSON API end to end through the app: happy paths, then every kind of bad input."""

from __future__ import annotations

import pytest

from tests.helpers import make_course, make_session, person, session_body


async def test_course_and_session_roundtrip(client, admin_headers):
    course = await make_course(client, admin_headers)
    assert course["feed_url"]["webcal"].startswith("webcal://")
    session = await make_session(client, admin_headers, mode="hybrid", in_person=2, virtual=3)
    assert session["seats"]["in_person"] == {
        "capacity": 2,
        "confirmed": 0,
        "held": 0,
        "waitlisted": 0,
        "available": 2,
    }
    assert session["starts_at"].endswith(("-06:00", "-05:00"))
    listed = (await client.get("/api/courses/managing-bias/sessions")).json()["sessions"]
    assert [s["id"] for s in listed] == [session["id"]]
    assert "join_url" not in listed[0]
    public = (await client.get(f"/api/sessions/{session['id']}")).json()
    assert "join_url" not in public and "secret-room" not in str(public)


async def test_register_confirm_then_waitlist_then_promote(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    url = f"/api/sessions/{session['id']}/registrations"
    first = await client.post(url, json=person(1))
    second = await client.post(url, json=person(2))
    third = await client.post(url, json=person(3))
    assert first.status_code == second.status_code == third.status_code == 201
    assert first.json()["status"] == "confirmed" and first.json()["waitlist_position"] is None
    assert (second.json()["status"], second.json()["waitlist_position"]) == ("waitlisted", 1)
    assert (third.json()["status"], third.json()["waitlist_position"]) == ("waitlisted", 2)

    cancelled = await client.delete(f"/api/registrations/{first.json()['token']}")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    promoted = (await client.get(f"/api/registrations/{second.json()['token']}")).json()
    assert promoted["status"] == "confirmed"
    still = (await client.get(f"/api/registrations/{third.json()['token']}")).json()
    assert (still["status"], still["waitlist_position"]) == ("waitlisted", 1)
    seats = (await client.get(f"/api/sessions/{session['id']}")).json()["seats"]["in_person"]
    assert seats == {"capacity": 1, "confirmed": 1, "held": 0, "waitlisted": 1, "available": 0}


async def test_capacity_raise_promotes_in_order_and_lowering_below_confirmed_is_refused(
    client, admin_headers
):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=2)
    url = f"/api/sessions/{session['id']}/registrations"
    tokens = [(await client.post(url, json=person(n))).json()["token"] for n in range(5)]
    too_low = await client.patch(
        f"/api/sessions/{session['id']}", json={"in_person_capacity": 1}, headers=admin_headers
    )
    assert too_low.status_code == 409
    assert "in_person_capacity" in too_low.json()["error"]["fields"]
    raised = await client.patch(
        f"/api/sessions/{session['id']}", json={"in_person_capacity": 4}, headers=admin_headers
    )
    assert raised.status_code == 200, raised.text
    statuses = [(await client.get(f"/api/registrations/{t}")).json()["status"] for t in tokens]
    assert statuses == ["confirmed"] * 4 + ["waitlisted"]


async def test_duplicate_email_any_case_is_409(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    url = f"/api/sessions/{session['id']}/registrations"
    assert (await client.post(url, json=person(1))).status_code == 201
    again = dict(person(1), email="OFFICER1@Example.ORG")
    response = await client.post(url, json=again)
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"email": "taken"}


async def test_cancelled_person_may_register_again(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    url = f"/api/sessions/{session['id']}/registrations"
    token = (await client.post(url, json=person(1))).json()["token"]
    await client.delete(f"/api/registrations/{token}")
    assert (await client.post(url, json=person(1))).status_code == 201


async def test_agency_cap_waitlists_that_agency_only(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=10, max_per_agency=2)
    url = f"/api/sessions/{session['id']}/registrations"
    a = [(await client.post(url, json=person(n, agency="Agency A"))).json() for n in range(3)]
    b = (await client.post(url, json=person(10, agency="Agency B"))).json()
    assert [r["status"] for r in a] == ["confirmed", "confirmed", "waitlisted"]
    assert b["status"] == "confirmed"
    # Agency A frees a seat: its own waitlisted officer moves up.
    await client.delete(f"/api/registrations/{a[0]['token']}")
    assert (await client.get(f"/api/registrations/{a[2]['token']}")).json()["status"] == "confirmed"


async def test_registration_detail_shows_join_url_only_to_confirmed_virtual(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, mode="virtual", virtual=1)
    url = f"/api/sessions/{session['id']}/registrations"
    seat = (await client.post(url, json=person(1, attendance="virtual"))).json()
    wait = (await client.post(url, json=person(2, attendance="virtual"))).json()
    confirmed = (await client.get(f"/api/registrations/{seat['token']}")).json()
    waiting = (await client.get(f"/api/registrations/{wait['token']}")).json()
    assert confirmed["join_url"] == "https://meet.example.org/secret-room-123"
    assert "join_url" not in waiting and "secret-room" not in str(waiting)


async def test_cancel_session_then_registration_is_410(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    response = await client.post(f"/api/sessions/{session['id']}/cancel", headers=admin_headers)
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    late = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    assert late.status_code == 410
    assert late.json()["error"]["code"] == "gone"


async def test_registration_after_close_is_410(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, days=1)
    # Closing registration early on an existing session is allowed; registrants get 410.
    closed = await client.patch(
        f"/api/sessions/{session['id']}",
        json={"registration_closes_at": "2020-01-01T00:00:00+00:00"},
        headers=admin_headers,
    )
    assert closed.status_code == 200, closed.text
    response = await client.post(f"/api/sessions/{session['id']}/registrations", json=person(1))
    assert response.status_code == 410


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "a@example.org", "agency": "PD", "attendance": "in_person"}, "name"),
        (
            {"name": "A", "email": "not-an-email", "agency": "PD", "attendance": "in_person"},
            "email",
        ),
        (
            {"name": "A", "email": "a@example.org", "agency": "PD", "attendance": "zoom"},
            "attendance",
        ),
        (
            {
                "name": "x" * 201,
                "email": "a@example.org",
                "agency": "PD",
                "attendance": "in_person",
            },
            "name",
        ),
        (
            {"name": "A", "email": "a@example.org", "agency": "P" * 201, "attendance": "in_person"},
            "agency",
        ),
        (
            {
                "name": "A\r\nBcc: x@evil.test",
                "email": "a@example.org",
                "agency": "PD",
                "attendance": "in_person",
            },
            "name",
        ),
        (
            {"name": "A", "email": "a@example.org", "agency": "PD", "attendance": "virtual"},
            "attendance",
        ),
        ({"name": 5, "email": "a@example.org", "agency": "PD", "attendance": "in_person"}, "name"),
    ],
)
async def test_bad_registration_is_422_naming_the_field(client, admin_headers, body, field):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    response = await client.post(f"/api/sessions/{session['id']}/registrations", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]
    seats = (await client.get(f"/api/sessions/{session['id']}")).json()["seats"]["in_person"]
    assert seats["confirmed"] == 0 and seats["waitlisted"] == 0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
        ({"ends_at": "2020-01-01T00:00"}, "ends_at"),
        ({"in_person_capacity": -1}, "in_person_capacity"),
        ({"in_person_capacity": None}, "in_person_capacity"),
        ({"in_person_capacity": "ten"}, "in_person_capacity"),
        ({"mode": "carrier-pigeon"}, "mode"),
        ({"starts_at": "next tuesday"}, "starts_at"),
        ({"virtual_capacity": 5}, "virtual_capacity"),
        ({"join_url": "javascript:alert(1)"}, "join_url"),
        ({"venue": {"name": "x" * 300}}, "venue.name"),
    ],
)
async def test_bad_session_is_422_naming_the_field(client, admin_headers, change, field):
    await make_course(client, admin_headers)
    body = session_body("in_person")
    body.update(change)
    response = await client.post(
        "/api/courses/managing-bias/sessions", json=body, headers=admin_headers
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]["fields"]
    listed = (await client.get("/api/courses/managing-bias/sessions")).json()["sessions"]
    assert listed == []


async def test_daylight_saving_gap_is_refused(client, admin_headers):
    await make_course(client, admin_headers)
    body = session_body("in_person", zone="America/Chicago")
    body.update(starts_at="2027-03-14T02:30", ends_at="2027-03-14T05:00")
    response = await client.post(
        "/api/courses/managing-bias/sessions", json=body, headers=admin_headers
    )
    assert response.status_code == 422
    assert "daylight" in response.json()["error"]["fields"]["starts_at"]


async def test_malformed_json_and_wrong_shapes(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    url = f"/api/sessions/{session['id']}/registrations"
    for raw in (b"{not json", b"[1,2]", b"", b"\xff\xfe", b"null"):
        response = await client.post(url, content=raw, headers={"content-type": "application/json"})
        assert response.status_code == 422, (raw, response.text)
        assert "body" in response.json()["error"]["fields"]


async def test_body_over_64k_is_413(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    big = {
        "name": "x" * 70_000,
        "email": "a@example.org",
        "agency": "PD",
        "attendance": "in_person",
    }
    response = await client.post(f"/api/sessions/{session['id']}/registrations", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"

    async def chunks():
        for _ in range(20):
            yield b"x" * 8192

    streamed = await client.post(f"/api/sessions/{session['id']}/registrations", content=chunks())
    assert streamed.status_code == 413


async def test_unknown_ids_are_404(client):
    for path in (
        "/api/courses/nope",
        "/api/courses/nope/sessions",
        "/api/sessions/999999",
        "/api/sessions/abc",
        "/api/registrations/not-a-token",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    response = await client.post("/api/sessions/424242/registrations", json=person(1))
    assert response.status_code == 404


async def test_admin_routes_need_a_valid_token(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers)
    sid = session["id"]
    calls = [
        ("POST", "/api/courses", {"slug": "x", "title": "X"}),
        ("POST", "/api/courses/managing-bias/sessions", session_body()),
        ("PATCH", f"/api/sessions/{sid}", {"in_person_capacity": 50}),
        ("POST", f"/api/sessions/{sid}/cancel", None),
        ("GET", f"/api/sessions/{sid}/registrations", None),
    ]
    for headers in ({}, {"Authorization": "Bearer sch_wrong"}, {"Authorization": "Basic abc"}):
        for method, path, body in calls:
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (method, path, headers)
            assert response.json()["error"]["code"] == "unauthorized"
    still = (await client.get(f"/api/sessions/{sid}")).json()
    assert still["status"] == "scheduled" and still["seats"]["in_person"]["capacity"] == 10


async def test_duplicate_course_slug_is_409(client, admin_headers):
    await make_course(client, admin_headers)
    response = await client.post(
        "/api/courses", json={"slug": "managing-bias", "title": "Again"}, headers=admin_headers
    )
    assert response.status_code == 409
    assert response.json()["error"]["fields"] == {"slug": "taken"}


async def test_self_paced_course_has_a_link_and_no_sessions(client, admin_headers):
    course = await make_course(
        client,
        admin_headers,
        slug="pj-online",
        delivery=["online"],
        online_url="https://learn.example.org/pj",
    )
    assert course["self_paced"] is True and course["online_url"] == "https://learn.example.org/pj"
    missing = await client.post(
        "/api/courses",
        json={"slug": "x-online", "title": "X", "delivery": ["online"]},
        headers=admin_headers,
    )
    assert missing.status_code == 422 and "online_url" in missing.json()["error"]["fields"]


async def test_roster_json_and_csv_neutralise_formulas(client, admin_headers):
    await make_course(client, admin_headers)
    session = await make_session(client, admin_headers, in_person=1)
    url = f"/api/sessions/{session['id']}/registrations"
    await client.post(url, json=dict(person(1), name='=HYPERLINK("http://x")'))
    await client.post(url, json=person(2))
    roster = (await client.get(url, headers=admin_headers)).json()["registrations"]
    assert [r["status"] for r in roster] == ["confirmed", "waitlisted"]
    assert "token" not in roster[0]
    csv_text = (await client.get(url + "?format=csv", headers=admin_headers)).text
    lines = csv_text.strip().splitlines()
    assert lines[0].startswith("id,attendance,status")
    assert "'=HYPERLINK" in lines[1]
    assert len(lines) == 3


async def test_healthz_and_openapi(client):
    assert (await client.get("/healthz")).json()["status"] == "ok"
    spec = (await client.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.")
    assert "/api/sessions/{session_id}/registrations" in spec["paths"]


async def test_reserved_slug_is_refused(client, admin_headers):
    # /admin/courses/new is the create form: a course called "new" could never be edited.
    response = await client.post(
        "/api/courses", json={"slug": "new", "title": "New"}, headers=admin_headers
    )
    assert response.status_code == 422
    assert "reserved" in response.json()["error"]["fields"]["slug"]
