"""Instructors sign in by emailed link and reach only their own sessions' attendance pages;
admins reach every session's. The forms work without script and need the CSRF token."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from notifications.models import Message
from scheduler.models import Attendance
from tests.attendance_support import register, two_day_session, utc_start, zoom_report
from tests.support.pdf import pdf_qr_codes, pdf_text, png_qr_codes
from tests.web.agency_client import follow_link, last_link
from tests.web.page_client import csrf_from, post_form, sign_in


async def make_instructor(client, headers, name: str, email: str) -> int:
    made = await client.post(
        "/api/instructors", json={"name": name, "email": email}, headers=headers
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


async def taught_session(client, headers, instructor_id: int, **kwargs) -> dict:
    session = await two_day_session(client, headers, **kwargs)
    patched = await client.patch(
        f"/api/sessions/{session['id']}", json={"instructors": [instructor_id]}, headers=headers
    )
    assert patched.status_code == 200, patched.text
    return dict(patched.json())


async def instructor_sign_in(client, db, email: str) -> str:
    page = await client.get("/instructor/login")
    asked = await post_form(client, "/instructor/login", {"email": email}, csrf_from(page.text))
    assert asked.status_code == 200 and "Check your email" in asked.text
    path = await last_link(db, email)
    assert path.startswith("/instructor/login/")
    signed = await follow_link(client, path)
    assert signed.status_code == 303 and signed.headers["location"] == "/instructor"
    home = await client.get("/instructor")
    assert home.status_code == 200, home.text
    return csrf_from(home.text)


async def marks(db) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(Attendance))).scalar_one())


async def test_instructor_sees_and_marks_only_their_own_sessions(client, admin_headers, db):
    dana = await make_instructor(client, admin_headers, "Dana Cruz", "Dana@PD.example.org")
    eli = await make_instructor(client, admin_headers, "Eli Park", "eli@pd.example.org")
    mine = await taught_session(client, admin_headers, dana, days=5)
    await client.post("/api/courses", json={"slug": "x", "title": "X"}, headers=admin_headers)
    theirs = await client.post(
        "/api/courses/x/sessions",
        json={
            "timezone": "America/Chicago",
            "mode": "virtual",
            "virtual_capacity": 5,
            "join_url": "https://meet.example.org/z",
            "meetings": [{"starts_at": "2031-05-05T08:00", "ends_at": "2031-05-05T12:00"}],
            "instructors": [eli],
        },
        headers=admin_headers,
    )
    assert theirs.status_code == 201, theirs.text
    theirs_id = theirs.json()["id"]
    theirs_meeting = theirs.json()["meetings"][0]["id"]
    ana = await register(client, mine["id"], "Ana Diaz", "ana@pd.example.org", "in_person")
    ben = await register(client, mine["id"], "Ben Ode", "ben@pd.example.org", "virtual")
    other = await register(client, theirs_id, "Zed Other", "zed@pd.example.org", "virtual")

    # Not signed in: every instructor page sends to the sign-in page.
    anonymous = await client.get(f"/instructor/sessions/{mine['id']}/attendance")
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/instructor/login"

    csrf = await instructor_sign_in(client, db, "dana@pd.example.org")
    home = (await client.get("/instructor")).text
    assert f"/instructor/sessions/{mine['id']}/attendance" in home
    assert f"/instructor/sessions/{theirs_id}/" not in home

    # Every instructor route of Eli's session is a 404, and writes nothing.
    base = f"/instructor/sessions/{theirs_id}"
    meeting = f"{base}/meetings/{theirs_meeting}"
    for path in (
        f"{base}/attendance",
        meeting,
        f"{meeting}/checkin",
        f"{meeting}/checkin.png",
        f"{meeting}/sheet.pdf",
    ):
        assert (await client.get(path)).status_code == 404, path
    for path, data in (
        (f"{base}/finalize", {}),
        (meeting, {f"mark-{other['id']}": "present"}),
        (f"{meeting}/match", {"registration_id": str(other["id"]), "minutes": "240"}),
    ):
        assert (await post_form(client, path, data, csrf)).status_code == 404, path
    upload = await client.post(
        f"{meeting}/attendance/import",
        data={"csrf_token": csrf, "meeting_id": str(theirs_meeting), "platform": "zoom"},
        files={"file": ("r.csv", zoom_report(utc_start(mine, 0), []), "text/csv")},
    )
    assert upload.status_code == 404
    # A meeting id of another session under my session's path is a 404 too.
    assert (
        await client.get(f"/instructor/sessions/{mine['id']}/meetings/{theirs_meeting}")
    ).status_code == 404
    assert await marks(db) == 0

    # My own session: the grid, a meeting's form, the check-in screen.
    day1 = mine["meetings"][0]["id"]
    grid = await client.get(f"/instructor/sessions/{mine['id']}/attendance")
    assert grid.status_code == 200 and "Ana Diaz" in grid.text and "Zed Other" not in grid.text
    form_page = await client.get(f"/instructor/sessions/{mine['id']}/meetings/{day1}")
    assert form_page.status_code == 200 and f'name="minutes-{ben["id"]}"' in form_page.text
    assert f'name="minutes-{ana["id"]}"' not in form_page.text  # minutes only for virtual seats
    screen = await client.get(f"/instructor/sessions/{mine['id']}/meetings/{day1}/checkin")
    assert screen.status_code == 200
    checkin_url = re.search(r"http://testserver/checkin/[\w-]{20,}", screen.text).group(0)
    qr = await client.get(f"/instructor/sessions/{mine['id']}/meetings/{day1}/checkin.png")
    assert qr.headers["content-type"] == "image/png"
    assert png_qr_codes(qr.content) == [checkin_url]
    sheet = await client.get(f"/instructor/sessions/{mine['id']}/meetings/{day1}/sheet.pdf")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == "application/pdf"
    text = pdf_text(sheet.content)
    assert "Ana Diaz" in text and "Ben Ode" in text and "Springfield PD" in text
    assert "Zed Other" not in text and "Day 1 of 2" in text and "Dana Cruz" in text
    assert pdf_qr_codes(sheet.content) == [checkin_url]

    # No CSRF token: refused, nothing written.
    bare = await client.post(
        f"/instructor/sessions/{mine['id']}/meetings/{day1}", data={f"mark-{ana['id']}": "present"}
    )
    assert bare.status_code == 403 and await marks(db) == 0
    saved = await post_form(
        client,
        f"/instructor/sessions/{mine['id']}/meetings/{day1}",
        {
            f"mark-{ana['id']}": "present",
            f"mark-{ben['id']}": "absent",
            f"minutes-{ben['id']}": "30",
        },
        csrf,
    )
    assert saved.status_code == 303, saved.text
    grid = (await client.get(f"/instructor/sessions/{mine['id']}/attendance")).text
    row = grid.split(f'data-registration="{ben["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Absent (30 min)" in row
    bad = await post_form(
        client,
        f"/instructor/sessions/{mine['id']}/meetings/{day1}",
        {f"mark-{ben['id']}": "present", f"minutes-{ben['id']}": "lots"},
        csrf,
    )
    assert bad.status_code == 422 and 'value="lots"' in bad.text  # kept what was typed

    # The report upload from the page: matched rows listed, the stranger matched by hand.
    report = zoom_report(
        utc_start(mine, 0),
        [("Ben Ode", "ben@pd.example.org", 0, 230), ("B. Ode (phone)", "", 0, 240)],
    )
    imported = await client.post(
        f"/instructor/sessions/{mine['id']}/meetings/{day1}/attendance/import",
        data={"csrf_token": csrf, "meeting_id": str(day1), "platform": "zoom"},
        files={"file": ("participants.csv", report, "text/csv")},
    )
    assert imported.status_code == 200, imported.text
    assert "1 matched and marked" in imported.text and "Rows not matched" in imported.text
    wrong = await client.post(
        f"/instructor/sessions/{mine['id']}/meetings/{day1}/attendance/import",
        data={"csrf_token": csrf, "meeting_id": str(day1), "platform": "teams"},
        files={"file": ("participants.csv", b"foo,bar\r\n1,2\r\n", "text/csv")},
    )
    assert wrong.status_code == 422 and "has no participant table" in wrong.text
    matched = await post_form(
        client,
        f"/instructor/sessions/{mine['id']}/meetings/{day1}/match",
        {"registration_id": str(ana["id"]), "minutes": "240", "platform": "zoom"},
        csrf,
    )
    assert matched.status_code == 303
    grid = (await client.get(f"/instructor/sessions/{mine['id']}/attendance")).text
    row = grid.split(f'data-registration="{ana["id"]}"', 1)[1].split("</tr>", 1)[0]
    assert "Present (240 min)" in row and "zoom" in row

    # An instructor's cookie opens no admin page.
    admin = await client.get(f"/admin/sessions/{mine['id']}/attendance")
    assert admin.status_code == 303 and admin.headers["location"].startswith("/admin/login")


async def test_instructor_link_only_for_directory_addresses(client, admin_headers, db):
    await make_instructor(client, admin_headers, "Dana Cruz", "dana@pd.example.org")
    page = await client.get("/instructor/login")
    csrf = csrf_from(page.text)
    unknown = await post_form(client, "/instructor/login", {"email": "who@x.example"}, csrf)
    known = await post_form(client, "/instructor/login", {"email": "DANA@pd.example.org"}, csrf)
    assert unknown.status_code == known.status_code == 200
    assert "Check your email" in unknown.text and "Check your email" in known.text
    async with db.read() as conn:
        sent = (await conn.execute(select(Message.recipient, Message.kind))).all()
    assert [(r.recipient, r.kind) for r in sent] == [("dana@pd.example.org", "sign_in_link")]
    refused = await post_form(client, "/instructor/login", {"email": "nope"}, csrf)
    assert refused.status_code == 422 and 'value="nope"' in refused.text


async def test_admin_reaches_every_sessions_attendance_pages(client, admin_headers, db):
    session = await two_day_session(client, admin_headers)
    ana = await register(client, session["id"], "Ana Diaz", "ana@pd.example.org", "in_person")
    day2 = session["meetings"][1]["id"]
    assert (await client.get(f"/admin/sessions/{session['id']}/attendance")).status_code == 303
    csrf = await sign_in(client, db)
    grid = await client.get(f"/admin/sessions/{session['id']}/attendance")
    assert grid.status_code == 200 and "Ana Diaz" in grid.text
    saved = await post_form(
        client,
        f"/admin/sessions/{session['id']}/meetings/{day2}",
        {f"mark-{ana['id']}": "present"},
        csrf,
    )
    assert saved.status_code == 303
    assert await marks(db) == 1
    sheet = await client.get(f"/admin/sessions/{session['id']}/meetings/{day2}/sheet.pdf")
    assert sheet.status_code == 200 and "Ana Diaz" in pdf_text(sheet.content)
    assert "Day 2 of 2" in pdf_text(sheet.content)
    assert (await client.get(f"/admin/sessions/{session['id']}/meetings/99999")).status_code == 404
    assert (await client.get("/admin/sessions/99999/attendance")).status_code == 404


async def test_course_form_sets_completion_and_keeps_what_was_typed(client, db):
    csrf = await sign_in(client, db)
    form = {
        "slug": "report-writing",
        "title": "Report Writing",
        "delivery": "in_person",
        "completion_rule": "percent_hours",
        "completion_percent": "",
        "credit_hours": "7.555",
        "course_number": "DPSST-77",
        "attendance_threshold": "75",
    }
    refused = await post_form(client, "/admin/courses/new", form, csrf)
    assert refused.status_code == 422
    assert 'id="completion_percent-error"' in refused.text
    assert 'id="credit_hours-error"' in refused.text and 'value="7.555"' in refused.text
    assert 'value="DPSST-77"' in refused.text
    form.update(completion_percent="90", credit_hours="7.5")
    created = await post_form(client, "/admin/courses/new", form, csrf)
    assert created.status_code == 303, created.text
    course = (await client.get("/api/courses/report-writing")).json()
    assert course["completion"] == {"rule": "percent_hours", "percent": 90}
    assert (course["credit_hours"], course["course_number"]) == (7.5, "DPSST-77")
    assert course["attendance_threshold"] == 75
    edit = (await client.get("/admin/courses/report-writing")).text
    assert 'value="90"' in edit and 'value="7.50"' in edit
