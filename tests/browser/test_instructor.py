"""An instructor in Chromium: signs in with the link a real SMTP server received, marks a
meeting, uploads a Zoom report, finalizes; axe-core checks every instructor page and the public
check-in page (wide and at 320 px), and no page logs a CSP violation or a script error."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from notifications.models import Message
from scheduler import tokens
from scheduler.db import Database
from tests.attendance_support import zoom_report
from tests.browser.conftest import fits_at_320

pytestmark = pytest.mark.browser

ZONE = ZoneInfo("America/Chicago")
LINK = re.compile(r"https?://[\w.:]+/instructor/login/[\w-]+")


@pytest.fixture
def mail_live(sqlite_url: str, live_server_factory: Any, smtp_server: Any) -> Any:
    """A real ``scheduler serve`` that sends its mail to the SMTP sink."""
    return live_server_factory(sqlite_url, SCHEDULER_SMTP_URL=smtp_server.url)


@pytest.fixture
def story(mail_live: Any) -> dict[str, Any]:
    """Dana teaches a two-day hybrid session that took place yesterday and today; Ana sat in
    the room, Ben joined on Zoom. Built through the admin API before the browser starts."""
    database_url = mail_live.env["SCHEDULER_DATABASE_URL"]

    async def make_token() -> str:
        db = Database.from_url(database_url)
        try:
            return await tokens.create_token(db, "browser")
        finally:
            await db.dispose()

    headers = {"Authorization": f"Bearer {asyncio.run(make_token())}"}
    with httpx.Client(base_url=mail_live.url, headers=headers, timeout=10) as api:
        dana = api.post(
            "/api/instructors", json={"name": "Dana Cruz", "email": "dana@pd.example.org"}
        )
        assert dana.status_code == 201, dana.text
        course = api.post(
            "/api/courses", json={"slug": "report-writing", "title": "Report Writing"}
        )
        assert course.status_code == 201, course.text
        first = datetime.now(ZONE).replace(hour=8, minute=0, second=0, microsecond=0)
        first += timedelta(days=3)
        meetings = [
            {
                "starts_at": (first + timedelta(days=n)).strftime("%Y-%m-%dT%H:%M"),
                "ends_at": (first + timedelta(days=n, hours=4)).strftime("%Y-%m-%dT%H:%M"),
            }
            for n in range(2)
        ]
        made = api.post(
            "/api/courses/report-writing/sessions",
            json={
                "timezone": "America/Chicago",
                "mode": "hybrid",
                "in_person_capacity": 5,
                "virtual_capacity": 5,
                "venue": {
                    "name": "Metro Training Center",
                    "address": "1 Main St",
                    "city": "Springfield",
                    "state": "IL",
                    "postal_code": "62701",
                },
                "join_url": "https://meet.example.org/rw",
                "meetings": meetings,
                "instructors": [dana.json()["id"]],
            },
        )
        assert made.status_code == 201, made.text
        session = made.json()
        people = {}
        for name, email, seat in (
            ("Ana Diaz", "ana@pd.example.org", "in_person"),
            ("Ben Ode", "ben@pd.example.org", "virtual"),
        ):
            reg = api.post(
                f"/api/sessions/{session['id']}/registrations",
                json={"name": name, "email": email, "agency": "Springfield PD", "attendance": seat},
            )
            assert reg.status_code == 201, reg.text
            people[name] = reg.json()["id"]
        # The session took place: its meetings move to yesterday and to earlier today.
        now = datetime.now(UTC)
        held = [now - timedelta(days=1, hours=5), now - timedelta(hours=5)]
        moved = api.patch(
            f"/api/sessions/{session['id']}",
            json={
                "record_past": True,
                "meetings": [
                    {
                        "id": m["id"],
                        "starts_at": start.astimezone(ZONE).strftime("%Y-%m-%dT%H:%M"),
                        "ends_at": (start + timedelta(hours=4))
                        .astimezone(ZONE)
                        .strftime("%Y-%m-%dT%H:%M"),
                    }
                    for m, start in zip(session["meetings"], held, strict=True)
                ],
            },
        )
        assert moved.status_code == 200, moved.text
    return {"session": moved.json(), "people": people, "url": mail_live.url, "held": held}


def wait_for_link(smtp: Any, recipient: str, server: Any) -> str:
    """The sign-in link in the mail the sink received for ``recipient``; if none comes, the
    failure lists what did arrive and ends with the server's log, so a miss can be explained."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for message in smtp.messages:
            if message["To"].addresses[0].addr_spec.lower() == recipient:
                body = message.get_body(preferencelist=("plain",))
                found = LINK.search(str(body.get_content()) if body else "")
                if found:
                    return found.group(0)
        time.sleep(0.2)
    arrived = [f"{m['To']}: {m['Subject']}" for m in smtp.messages]
    log = server.log.read_text(errors="replace")[-6000:]
    raise AssertionError(
        f"no sign-in link reached {recipient}; the sink got {arrived}\n"
        f"outbox (id, kind, status, attempts, due, lease, error, sent):\n"
        f"{outbox_rows(server.env['SCHEDULER_DATABASE_URL'])}\nserver log:\n{log}"
    )


def outbox_rows(database_url: str) -> str:
    """Every outbox row, a line each: whether a message was queued, is in flight (leased),
    waits for a retry, or went out without reaching the sink."""

    async def read() -> list[Any]:
        db = Database.from_url(database_url)
        try:
            async with db.read() as conn:
                return list(
                    await conn.execute(
                        select(
                            Message.id,
                            Message.kind,
                            Message.status,
                            Message.attempts,
                            Message.due_at,
                            Message.lease_until,
                            Message.last_error,
                            Message.sent_at,
                        ).order_by(Message.id)
                    )
                )
        finally:
            await db.dispose()

    return "\n".join(str(tuple(row)) for row in asyncio.run(read()))


def check(page: Page, name: str, axe: Any, shots: Any) -> None:
    axe.check(page, name)
    fits_at_320(page, shots, name, axe)


def test_instructor_signs_in_marks_imports_and_finalizes(
    story, smtp_server, mail_live, browser: Browser, axe, shots, watch
):
    url = story["url"]
    session = story["session"]
    day1 = session["meetings"][0]["id"]
    page = watch.attach(browser.new_context(viewport={"width": 1280, "height": 900}).new_page())

    page.goto(url + "/instructor/login")
    check(page, "instructor-login", axe, shots)
    page.get_by_label("Email").fill("dana@pd.example.org")
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check(page, "instructor-login-sent", axe, shots)

    page.goto(wait_for_link(smtp_server, "dana@pd.example.org", mail_live))
    check(page, "instructor-login-confirm", axe, shots)
    page.get_by_role("button", name="Sign in to my sessions").click()
    expect(page.get_by_role("heading", name="My sessions")).to_be_visible()
    check(page, "instructor-home", axe, shots)

    page.get_by_role("link", name=re.compile("^Attendance")).click()
    expect(page.get_by_role("heading", name=re.compile("attendance$"))).to_be_visible()
    check(page, "instructor-grid", axe, shots)

    page.get_by_role("link", name=re.compile("^Mark attendance for Day 1")).click()
    check(page, "instructor-meeting", axe, shots)
    page.locator(f'fieldset[data-registration="{story["people"]["Ana Diaz"]}"]').get_by_label(
        "Present"
    ).check()
    page.get_by_role("button", name="Save attendance").click()
    expect(page.get_by_role("status").filter(has_text="Attendance saved")).to_be_visible()

    report = zoom_report(
        story["held"][0],
        [("Ben Ode", "ben@pd.example.org", 0, 120), ("Ben Ode", "ben@pd.example.org", 125, 110)],
    )
    page.get_by_label("Report file (CSV)").set_input_files(
        {"name": "participants.csv", "mimeType": "text/csv", "buffer": report}
    )
    page.get_by_role("button", name="Import report").click()
    expect(page.get_by_role("heading", name="Report imported")).to_be_visible()
    expect(page.locator("#matched-rows")).to_contain_text("230")
    check(page, "instructor-import-result", axe, shots)

    page.goto(f"{url}/instructor/sessions/{session['id']}/meetings/{day1}/checkin")
    check(page, "instructor-checkin-screen", axe, shots)
    checkin_url = page.locator(".checkin-url a").inner_text()
    qr = page.locator("img.qr")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")

    # Day 2 for both, by hand, then finalize.
    page.goto(f"{url}/instructor/sessions/{session['id']}/meetings/{session['meetings'][1]['id']}")
    for registration in story["people"].values():
        page.locator(f'fieldset[data-registration="{registration}"]').get_by_label(
            "Present"
        ).check()
    page.get_by_role("button", name="Save attendance").click()
    page.goto(f"{url}/instructor/sessions/{session['id']}/attendance")
    page.get_by_role("button", name="Finalize the roster").click()
    expect(page.get_by_role("status").filter(has_text="Finalized: 2 of 2")).to_be_visible()
    check(page, "instructor-grid-finalized", axe, shots)

    # The public check-in page (its window has closed: it says so).
    page.goto(checkin_url)
    check(page, "checkin", axe, shots)
    page.get_by_label("Email you registered with").fill("ana@pd.example.org")
    page.get_by_role("button", name="Check me in").click()
    expect(page.get_by_role("heading", name="Check-in is closed")).to_be_visible()
    check(page, "checkin-refused", axe, shots)

    # An instructor session of someone else's is a 404 page; the refused check-in a 409.
    page.goto(f"{url}/instructor/sessions/999/attendance")
    expected = re.compile(r"Failed to load resource: .* status of (404|409)")
    assert [p for p in watch.problems if not expected.search(p)] == []
