"""The coordinator console end to end in Chromium, on a real server sending to a real SMTP sink.

The coordinator asks for a sign-in link, follows the one the sink received, registers a squad
through the rows form (preview, then one submit), holds seats, names an officer into the hold
and substitutes an officer. Each page is screenshotted to ``docs/screenshots/console-*.png``.
``drive_console`` is the story; the accessibility suite runs it again with axe on every page.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from scheduler import accounts
from scheduler.db import Database
from tests.support.smtp import SmtpSink
from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "screenshots"
COORD = "casey@alpha.example"
LINK = re.compile(r"(https?://\S+/agency/login/\S+)")

Check = Callable[[Page, str], None]


def seed_console(api: httpx.Client) -> dict[str, Any]:
    """An agency with its coordinator (invited), a course and a session with four seats."""
    agency = api.post(
        "/api/agencies",
        json={"name": "Alpha Police Department", "state": "IL", "type": "municipal"},
    )
    assert agency.status_code == 201, agency.text
    agency_id = agency.json()["id"]
    invited = api.post(
        f"/api/agencies/{agency_id}/coordinators",
        json={"name": "Casey Coordinator", "email": COORD},
    )
    assert invited.status_code == 201, invited.text
    course = api.post("/api/courses", json={"slug": "managing-bias", "title": "Managing Bias"})
    assert course.status_code == 201, course.text
    session = api.post(
        "/api/courses/managing-bias/sessions",
        json={
            "starts_at": "2031-03-04T09:00",
            "ends_at": "2031-03-04T13:00",
            "timezone": "America/Chicago",
            "mode": "in_person",
            "in_person_capacity": 4,
            "venue": {
                "name": "Metro Training Center",
                "address": "1 Main St",
                "city": "Springfield",
                "state": "IL",
                "postal_code": "62701",
            },
        },
    )
    assert session.status_code == 201, session.text
    return {"agency_id": agency_id, "session_id": session.json()["id"]}


def drive_console(page: Page, url: str, read_link: Callable[[], str], check: Check) -> None:
    """The whole console story; ``check(page, name)`` runs on every page it reaches."""
    page.goto(url + "/agency/login")
    check(page, "console-login")
    page.get_by_label("Email").fill(COORD)
    page.get_by_role("button", name="Email me a sign-in link").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    check(page, "console-login-sent")
    page.goto(read_link())
    check(page, "console-login-confirm")
    page.get_by_role("button", name="Sign in to the agency console").click()
    expect(page.get_by_role("heading", name="Agency console")).to_be_visible()
    check(page, "console-sessions")

    # A squad through the rows form: one row has a bad email.
    page.get_by_role("link", name=re.compile("^Register officers")).click()
    expect(page.get_by_role("heading", name="Register officers")).to_be_visible()
    check(page, "console-batch-form")
    squad = [
        ("Ann Able", "ann@alpha.example"),
        ("Ben Baker", "ben@alpha.example"),
        ("No Mail", "not-an-address"),
    ]
    for n, (name, email) in enumerate(squad):
        page.locator(f"#name_{n}").fill(name)
        page.locator(f"#email_{n}").fill(email)
    page.locator("#post_id_0").fill("IL-1234")
    page.get_by_role("button", name="Check these officers").click()
    expect(page.get_by_role("heading", name="Check 3 officers")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("1 row has a problem")
    check(page, "console-batch-preview")
    page.get_by_role("button", name="Register 2 officers").click()
    expect(page.get_by_role("heading", name="Officers registered")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text(
        "2 confirmed, 0 waitlisted, 1 not registered"
    )
    check(page, "console-batch-result")

    # Hold seats: too many first (a field error, the number kept), then two.
    page.goto(url + "/agency")
    page.get_by_role("link", name=re.compile("^Hold seats")).click()
    check(page, "console-hold-form")
    page.get_by_label("Number of seats").fill("9")
    page.get_by_role("button", name="Hold seats").click()
    expect(page.get_by_text("does not fit")).to_be_visible()
    expect(page.get_by_label("Number of seats")).to_have_value("9")
    check(page, "console-hold-errors")
    page.get_by_label("Number of seats").fill("2")
    page.get_by_role("button", name="Hold seats").click()
    expect(page.get_by_role("heading", name="Held seats")).to_be_visible()
    check(page, "console-holds")

    # Name an officer into the hold.
    page.get_by_role("link", name=re.compile("^Name an officer")).click()
    check(page, "console-hold-name")
    page.get_by_label("Name").fill("Cat Cole")
    page.get_by_label("Email").fill("cat@alpha.example")
    page.get_by_role("button", name="Name into the held seat").click()
    expect(page.get_by_role("status")).to_contain_text("Cat Cole has a confirmed seat")
    check(page, "console-holds-named")
    page.get_by_role("link", name=re.compile("^Release unnamed seats")).click()
    check(page, "console-hold-release")

    # Substitute Ben Baker.
    page.goto(url + "/agency/registrations")
    check(page, "console-registrations")
    page.get_by_role("link", name="Substitute Ben Baker").click()
    check(page, "console-substitute")
    page.get_by_label("Name").fill("Dee Dunn")
    page.get_by_label("Email").fill("dee@alpha.example")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Pass Ben Baker's seat to Dee Dunn?")).to_be_visible()
    check(page, "console-substitute-confirm")
    page.get_by_role("button", name="Yes, substitute").click()
    expect(page.get_by_role("status")).to_contain_text("Dee Dunn now has the seat of Ben Baker")
    check(page, "console-substituted")
    page.get_by_role("link", name="Cancel Ann Able").click()
    check(page, "console-cancel")
    page.goto(url + "/agency/calendar")
    check(page, "console-calendar")


def wait_for(find: Callable[[], str | None], what: str, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.2)
    raise AssertionError(f"no {what} within {timeout} s")


def link_from(messages: list[Any]) -> str | None:
    for message in reversed(messages):
        if message["X-Outbox-Kind"] == "sign_in_link":
            body = message.get_body(preferencelist=("plain",))
            match = LINK.search(str(body.get_content()))
            if match:
                return match.group(1)
    return None


@pytest.fixture
def live(sqlite_url: str, live_server_factory: Any, smtp_server: SmtpSink) -> Any:
    """A real server with an admin, its mail going to the SMTP sink."""

    async def add_admin() -> None:
        db = Database.from_url(sqlite_url)
        try:
            await accounts.create_admin(db, ADMIN_EMAIL, ADMIN_PASSWORD)
        finally:
            await db.dispose()

    asyncio.run(add_admin())
    return live_server_factory(sqlite_url, SCHEDULER_SMTP_URL=smtp_server.url)


def test_the_console_end_to_end(admin_api, live, smtp_server, browser: Browser, shots, watch):
    seeded = seed_console(admin_api)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())
    DOCS.mkdir(parents=True, exist_ok=True)
    kept = {"console-sessions", "console-batch-preview", "console-batch-result", "console-holds"}
    kept |= {"console-hold-name", "console-substitute-confirm", "console-registrations"}

    def check(page: Page, name: str) -> None:
        shots(page, name)
        if name in kept:
            page.screenshot(path=str(DOCS / f"{name}.png"), full_page=True)

    drive_console(
        page,
        live.url,
        lambda: wait_for(lambda: link_from(smtp_server.messages), "sign-in link"),
        check,
    )
    # The refused hold answers 409 on purpose; Chromium logs it.
    assert [p for p in watch.problems if not re.search(r"status of 409", p)] == []

    # What the story did, read back through the API.
    sid = seeded["session_id"]
    roster = admin_api.get(f"/api/sessions/{sid}/registrations").json()["registrations"]
    active = sorted((r["name"], r["status"]) for r in roster if r["status"] != "cancelled")
    assert active == [
        ("Ann Able", "confirmed"),
        ("Cat Cole", "confirmed"),
        ("Dee Dunn", "confirmed"),
    ]
    seats = admin_api.get(f"/api/sessions/{sid}").json()["seats"]["in_person"]
    assert (seats["confirmed"], seats["held"], seats["available"]) == (3, 1, 0)
    # The mail: each officer their own, the coordinator one batch summary.
    wait_for(lambda: "ok" if len(officer_mail(smtp_server)) >= 6 else None, "every email")
    kinds = officer_mail(smtp_server)
    assert kinds == [
        ("ann@alpha.example", "confirmation"),
        ("ben@alpha.example", "confirmation"),
        ("ben@alpha.example", "registration_cancelled"),
        (COORD, "batch_summary"),
        ("cat@alpha.example", "confirmation"),
        ("dee@alpha.example", "confirmation"),
    ]


def officer_mail(smtp: SmtpSink) -> list[tuple[str, str]]:
    """(recipient, kind) of every email but the sign-in ones, sorted."""
    return sorted(
        (m["To"].addresses[0].addr_spec, str(m["X-Outbox-Kind"]))
        for m in smtp.messages
        if m["X-Outbox-Kind"] not in ("sign_in_link", "coordinator_invitation")
    )
