"""Attendance per meeting through the API: course completion settings, marks, imported Zoom and
Teams reports, and every kind of bad input leaving nothing written."""

from __future__ import annotations

from datetime import timedelta

import httpx
import time_machine
from sqlalchemy import func, select

from scheduler.models import Attendance
from tests.attendance_support import (
    register,
    teams_report,
    two_day_session,
    upload,
    utc_start,
    zoom_report,
)
from tests.helpers import make_course


async def count_marks(db) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Attendance))).scalar_one())


async def test_course_completion_settings_round_trip_and_refusals(client, admin_headers):
    made = await make_course(
        client,
        admin_headers,
        completion={"rule": "percent_hours", "percent": 75},
        credit_hours="7.5",
        course_number="DPSST-1234",
        attendance_threshold=70,
    )
    assert made["completion"] == {"rule": "percent_hours", "percent": 75}
    assert (made["credit_hours"], made["course_number"]) == (7.5, "DPSST-1234")
    assert made["attendance_threshold"] == 70
    plain = await make_course(client, admin_headers, slug="plain")
    assert plain["completion"] == {"rule": "all_meetings", "percent": None}
    assert plain["credit_hours"] is None and plain["attendance_threshold"] == 80

    bad = await client.post(
        "/api/courses",
        json={
            "slug": "bad",
            "title": "Bad",
            "completion": {"rule": "percent_hours"},
            "credit_hours": "lots",
            "attendance_threshold": 0,
        },
        headers=admin_headers,
    )
    assert bad.status_code == 422
    fields = bad.json()["error"]["fields"]
    assert set(fields) == {"completion.percent", "credit_hours", "attendance_threshold"}
    wrong_rule = await client.patch(
        "/api/courses/plain", json={"completion": {"rule": "most"}}, headers=admin_headers
    )
    assert wrong_rule.status_code == 422
    assert set(wrong_rule.json()["error"]["fields"]) == {"completion.rule"}
    # A rule that is not text was taken as "not given" (schemathesis found it).
    for odd in ({}, [], 0, ""):
        odd_rule = await client.patch(
            "/api/courses/plain", json={"completion": {"rule": odd}}, headers=admin_headers
        )
        assert odd_rule.status_code == 422, odd
        assert set(odd_rule.json()["error"]["fields"]) == {"completion.rule"}
    patched = await client.patch(
        "/api/courses/plain",
        json={"completion": {"rule": "percent_hours", "percent": 90}, "credit_hours": 4},
        headers=admin_headers,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["completion"] == {"rule": "percent_hours", "percent": 90}
    assert patched.json()["credit_hours"] == 4.0
    assert (await client.get("/api/courses/plain")).json()["course_number"] is None


async def test_marks_per_meeting_only_for_confirmed_registrants(client, admin_headers, db):
    session = await two_day_session(client, admin_headers)
    sid = session["id"]
    day1, day2 = (m["id"] for m in session["meetings"])
    ana = await register(client, sid, "Ana Diaz", "ana@pd.example.org", "in_person")
    ben = await register(client, sid, "Ben Ode", "ben@pd.example.org", "virtual")
    gone = await register(client, sid, "Cy Gone", "cy@pd.example.org", "in_person")
    assert (await client.delete(f"/api/registrations/{gone['token']}")).status_code == 200

    url = f"/api/sessions/{sid}/attendance"
    body = {
        "meeting_id": day1,
        "marks": [
            {"registration_id": ana["id"], "present": True},
            {"registration_id": ben["id"], "present": False, "minutes": 20},
        ],
    }
    assert (await client.put(url, json=body)).status_code == 401
    saved = await client.put(url, json=body, headers=admin_headers)
    assert saved.status_code == 200, saved.text
    assert saved.json() == {"meeting_id": day1, "marked": 2, "audited": 0}
    again = {"meeting_id": day2, "marks": [{"registration_id": ana["id"], "present": True}]}
    assert (await client.put(url, json=again, headers=admin_headers)).status_code == 200
    grid = (await client.get(url, headers=admin_headers)).json()["marks"]
    assert sorted((m["registration_id"], m["meeting_id"], m["present"]) for m in grid) == sorted(
        [(ana["id"], day1, True), (ben["id"], day1, False), (ana["id"], day2, True)]
    )
    assert await count_marks(db) == 3

    # A cancelled registrant, a meeting of another session, malformed marks: 422, nothing written.
    other = await client.post(
        "/api/courses/report-writing/sessions",
        json={
            "timezone": "America/Chicago",
            "mode": "virtual",
            "virtual_capacity": 5,
            "join_url": "https://meet.example.org/x",
            "starts_at": session["meetings"][0]["starts_at"][:16].replace("T08", "T13"),
            "ends_at": session["meetings"][0]["starts_at"][:16].replace("T08", "T15"),
        },
        headers=admin_headers,
    )
    assert other.status_code == 201, other.text
    cases = [
        (
            {"meeting_id": day1, "marks": [{"registration_id": gone["id"], "present": True}]},
            {"marks.0.registration_id"},
        ),
        (
            {
                "meeting_id": other.json()["meetings"][0]["id"],
                "marks": [{"registration_id": ana["id"], "present": False}],
            },
            {"meeting_id"},
        ),
        (
            {
                "meeting_id": day1,
                "marks": [
                    {"registration_id": ana["id"], "present": "yes"},
                    {"registration_id": ben["id"], "present": True, "minutes": -3},
                ],
            },
            {"marks.0.present", "marks.1.minutes"},
        ),
        ({"meeting_id": day1, "marks": []}, {"marks"}),
        ({"marks": [{"registration_id": ana["id"], "present": True}]}, {"meeting_id"}),
    ]
    for bad, fields in cases:
        refused = await client.put(url, json=bad, headers=admin_headers)
        assert refused.status_code == 422, (bad, refused.text)
        assert set(refused.json()["error"]["fields"]) == fields, refused.text
    assert await count_marks(db) == 3
    missing = await client.put("/api/sessions/99999/attendance", json=body, headers=admin_headers)
    assert missing.status_code == 404


async def test_zoom_and_teams_reports_sum_rejoins_and_apply_the_threshold(
    client, admin_headers, db
):
    session = await two_day_session(client, admin_headers)
    sid = session["id"]
    day1, day2 = (m["id"] for m in session["meetings"])
    ben = await register(client, sid, "Ben Ode", "ben@pd.example.org", "virtual")
    cara = await register(client, sid, "Cára Núñez", "cara@pd.example.org", "virtual")
    dev = await register(client, sid, "Dev Short", "dev@pd.example.org", "virtual")

    # 240-minute meetings, threshold 80 %: 192 minutes needed.
    zoom = zoom_report(
        utc_start(session, 0),
        [
            ("Ben Ode (Ben's iPad)", "BEN@pd.example.org", 0, 120),
            ("Ben Ode", "ben@pd.example.org", 125, 100),  # the rejoin, summed: 220
            ("Cara Nunez", "", 0, 235),  # no email: matched by name, accents aside
            ("Dev Short", "dev@pd.example.org", 30, 150),  # under the threshold
            ("Stranger Danger", "who@elsewhere.example", 0, 240),
        ],
    )
    answer = await upload(client, admin_headers, sid, day1, "zoom", zoom)
    assert answer.status_code == 200, answer.text
    result = answer.json()
    by_id = {m["registration_id"]: m for m in result["matched"]}
    assert (by_id[ben["id"]]["minutes"], by_id[ben["id"]]["rows"]) == (220, 2)
    assert by_id[ben["id"]]["present"] is True
    assert (by_id[cara["id"]]["matched_by"], by_id[cara["id"]]["present"]) == ("name", True)
    assert (by_id[dev["id"]]["minutes"], by_id[dev["id"]]["present"]) == (150, False)
    assert [u["name"] for u in result["unmatched"]] == ["Stranger Danger"]

    teams = teams_report(
        utc_start(session, 1),
        [
            ("Ben Ode", "ben@pd.example.org", 0, 90),
            ("Ben Ode", "ben@pd.example.org", 95, 145),  # rejoin: 235
            ("Dev Short", "dev@pd.example.org", 0, 200),
        ],
    )
    assert teams.startswith(b"\xff\xfe")
    answer = await upload(client, admin_headers, sid, day2, "teams", teams)
    assert answer.status_code == 200, answer.text
    by_id = {m["registration_id"]: m for m in answer.json()["matched"]}
    assert set(by_id) == {ben["id"], dev["id"]}
    assert by_id[ben["id"]]["minutes"] == 235  # section 2 only, not again from section 3
    assert by_id[dev["id"]]["present"] is True
    grid = (await client.get(f"/api/sessions/{sid}/attendance", headers=admin_headers)).json()
    sources = {(m["registration_id"], m["meeting_id"]): m["source"] for m in grid["marks"]}
    assert sources[(ben["id"], day1)] == "zoom" and sources[(ben["id"], day2)] == "teams"
    assert await count_marks(db) == 5


async def test_bad_reports_are_refused_and_write_nothing(client, admin_headers, db):
    session = await two_day_session(client, admin_headers)
    sid = session["id"]
    day1 = session["meetings"][0]["id"]
    await register(client, sid, "Ben Ode", "ben@pd.example.org", "virtual")
    good = zoom_report(utc_start(session, 0), [("Ben Ode", "ben@pd.example.org", 0, 240)])

    wrong_columns = b"Attendee,Minutes Online\r\nBen Ode,240\r\n"
    refused = await upload(client, admin_headers, sid, day1, "zoom", wrong_columns)
    assert refused.status_code == 422
    assert "Name (Original Name)" in refused.json()["error"]["fields"]["file"]

    binary = b"%PDF-1.7\n\x00\x01\x02\xff\xfe\x00binary" * 20
    refused = await upload(client, admin_headers, sid, day1, "zoom", binary, "report.pdf")
    assert refused.status_code == 422 and "file" in refused.json()["error"]["fields"]

    huge = good + b"x" * (20 * 1024 * 1024)
    refused = await upload(client, admin_headers, sid, day1, "zoom", huge)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "payload_too_large"

    refused = await upload(client, admin_headers, sid, day1, "webex", good)
    assert refused.status_code == 422 and set(refused.json()["error"]["fields"]) == {"platform"}

    other = await two_day_session_other(client, admin_headers)
    refused = await upload(client, admin_headers, sid, other, "zoom", good)
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"meeting_id"}

    no_file = await client.post(
        f"/api/sessions/{sid}/attendance/import",
        data={"meeting_id": str(day1), "platform": "zoom"},
        files={"other": ("x.txt", b"x", "text/plain")},
        headers=admin_headers,
    )
    assert no_file.status_code == 422 and "file" in no_file.json()["error"]["fields"]
    not_multipart = await client.post(
        f"/api/sessions/{sid}/attendance/import", json={"x": 1}, headers=admin_headers
    )
    assert not_multipart.status_code == 422
    assert await count_marks(db) == 0
    assert (await upload(client, admin_headers, sid, day1, "zoom", good)).status_code == 200
    assert await count_marks(db) == 1


async def two_day_session_other(client, admin_headers) -> int:
    """A meeting id of another session (of a second course)."""
    await make_course(client, admin_headers, slug="other-course")
    body = {
        "timezone": "America/Chicago",
        "mode": "virtual",
        "virtual_capacity": 5,
        "join_url": "https://meet.example.org/y",
        "meetings": [{"starts_at": "2031-05-05T08:00", "ends_at": "2031-05-05T12:00"}],
    }
    made = await client.post("/api/courses/other-course/sessions", json=body, headers=admin_headers)
    assert made.status_code == 201, made.text
    return int(made.json()["meetings"][0]["id"])


async def test_check_in_window_unknown_email_and_other_meetings_code(client, admin_headers, db):
    session = await two_day_session(client, admin_headers)
    sid = session["id"]
    day1, day2 = session["meetings"]
    ana = await register(client, sid, "Ana Diaz", "ana@pd.example.org", "in_person")
    # Someone who cancelled is no longer confirmed: check-in refuses them like a stranger.
    gone = await register(client, sid, "Wes Gone", "w@pd.example.org", "in_person")
    assert (await client.delete(f"/api/registrations/{gone['token']}")).status_code == 200
    async with db.read() as conn:
        from scheduler.models import Meeting

        codes = dict(
            (
                await conn.execute(
                    select(Meeting.id, Meeting.checkin_code).where(Meeting.session_id == sid)
                )
            ).all()
        )
    start = utc_start(session, 0)

    async def check(code: str, email: str) -> str:
        page = await client.get(f"/checkin/{code}")
        assert page.status_code == 200
        csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = await client.post(f"/checkin/{code}", data={"email": email, "csrf_token": csrf})
        return answer.text

    with time_machine.travel(start - timedelta(minutes=45), tick=False):
        assert "not open yet" in await check(codes[day1["id"]], "ana@pd.example.org")
    assert await count_marks(db) == 0
    with time_machine.travel(start + timedelta(minutes=10), tick=False):
        assert "not registered" in await check(codes[day1["id"]], "nobody@pd.example.org")
        assert "not registered" in await check(codes[day1["id"]], "w@pd.example.org")
        # Day 2's code on day 1: its window is tomorrow; day 1 stays unmarked.
        assert "not open yet" in await check(codes[day2["id"]], "ana@pd.example.org")
        assert await count_marks(db) == 0
        page = await check(codes[day1["id"]], "ANA@pd.example.org")
        assert "You are checked in" in page and "Ana Diaz" in page
        assert "already checked in" in await check(codes[day1["id"]], "ana@pd.example.org")
    with time_machine.travel(start + timedelta(minutes=31), tick=False):
        assert "closed" in await check(codes[day1["id"]], "ana@pd.example.org")
    grid = (await client.get(f"/api/sessions/{sid}/attendance", headers=admin_headers)).json()
    assert [(m["registration_id"], m["meeting_id"], m["source"]) for m in grid["marks"]] == [
        (ana["id"], day1["id"], "checkin")
    ]
    assert (await client.get("/checkin/not-a-real-code")).status_code == 404


async def test_check_in_attempts_are_rate_limited_per_client(settings, client, admin_headers, db):
    from asgi_lifespan import LifespanManager

    from scheduler.app import create_app
    from scheduler.models import Meeting

    session = await two_day_session(client, admin_headers)
    await register(client, session["id"], "Ana Diaz", "ana@pd.example.org", "in_person")
    async with db.read() as conn:
        code = (
            await conn.execute(
                select(Meeting.checkin_code).where(Meeting.id == session["meetings"][0]["id"])
            )
        ).scalar_one()
    limited = create_app(settings.with_(rate_limit=3))
    start = utc_start(session, 0)
    async with LifespanManager(limited) as manager:
        transport = httpx.ASGITransport(app=manager.app, client=("203.0.113.9", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            with time_machine.travel(start.replace(second=5) + timedelta(minutes=1), tick=False):
                page = await c.get(f"/checkin/{code}")
                csrf = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
                answers = [
                    (
                        await c.post(
                            f"/checkin/{code}",
                            data={"email": f"guess{n}@pd.example.org", "csrf_token": csrf},
                        )
                    ).status_code
                    for n in range(4)
                ]
                refused = await c.post(
                    f"/checkin/{code}", data={"email": "ana@pd.example.org", "csrf_token": csrf}
                )
    assert answers == [409, 409, 409, 429]
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert await count_marks(db) == 0
