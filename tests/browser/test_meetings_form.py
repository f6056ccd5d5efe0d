"""Chromium edits a session's meetings in the admin form, with JavaScript on and off.

With the script, "Add another day" adds the row in place (no request: the page is the same
document); without it, the button is a submit that brings the form back with one more row.
Either way the saved schedule keeps each meeting's id, so a moved day keeps its calendar UID.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def directory(admin_api) -> dict[str, int]:
    """A course, an instructor and a venue, made through the API."""
    api = admin_api
    made = api.post("/api/courses", json={"slug": "managing-bias", "title": "Managing Bias"})
    assert made.status_code == 201, made.text
    person = api.post(
        "/api/instructors", json={"name": "Dana Reyes", "email": "dana@example.org", "public": True}
    ).json()
    place = api.post(
        "/api/venues", json={"name": "Academy", "room": "Room 101", "city": "Peoria"}
    ).json()
    return {"instructor": person["id"], "venue": place["id"]}


def sign_in(page: Page, url: str) -> None:
    page.goto(url + "/admin/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Upcoming sessions")).to_be_visible()


def fill_day(page: Page, day: int, starts: str, ends: str) -> None:
    page.get_by_label(f"Day {day} starts").fill(starts)
    page.get_by_label(f"Day {day} ends").fill(ends)


def add_day(page: Page, *, scripted: bool) -> None:
    """Click "Add another day"; with the script no request is made (the marker survives)."""
    page.evaluate("window.__sameDocument = true")
    rows = page.locator("[data-meeting-row]").count()
    page.get_by_role("button", name="Add another day").click()
    expect(page.locator("[data-meeting-row]")).to_have_count(rows + 1)
    same = page.evaluate("window.__sameDocument === true")
    assert same is scripted
    expect(page.get_by_label(f"Day {rows + 1} starts")).to_have_value("")


def meetings_of(admin_api, session_id: int) -> list[dict]:
    return admin_api.get(f"/api/sessions/{session_id}").json()["meetings"]


def schedule_and_edit(page: Page, url: str, admin_api, directory, shots, *, scripted: bool):
    sign_in(page, url)
    page.goto(url + "/admin/courses/managing-bias/sessions/new")
    fill_day(page, 1, "2031-03-04T09:00", "2031-03-04T17:00")
    page.locator("#mode-in_person").check()
    page.get_by_label("In-person seats").fill("12")
    page.get_by_label("Place from the directory").select_option(str(directory["venue"]))
    page.get_by_label("Dana Reyes").check()
    add_day(page, scripted=scripted)
    # What was typed before the new row is still there.
    expect(page.get_by_label("Day 1 starts")).to_have_value("2031-03-04T09:00")
    expect(page.get_by_label("Dana Reyes")).to_be_checked()
    fill_day(page, 2, "2031-03-05T09:00", "2031-03-05T17:00")
    shots(page, "two-days")
    page.get_by_role("button", name="Schedule session").click()
    expect(page.get_by_role("status").filter(has_text="Session scheduled")).to_be_visible()
    session_id = int(re.search(r"/admin/sessions/(\d+)$", page.url).group(1))  # type: ignore[union-attr]
    session = admin_api.get(f"/api/sessions/{session_id}").json()
    assert [i["id"] for i in session["instructors"]] == [directory["instructor"]]
    assert session["venue_id"] == directory["venue"] and session["contact_hours"] == 16
    day1, day2 = meetings_of(admin_api, session_id)

    # Move day 2, add day 3, save: day 2 keeps its id.
    page.goto(url + f"/admin/sessions/{session_id}/edit")
    expect(page.get_by_label("Day 2 starts")).to_have_value("2031-03-05T09:00")
    fill_day(page, 2, "2031-03-06T08:00", "2031-03-06T12:00")
    add_day(page, scripted=scripted)
    expect(page.get_by_label("Day 2 starts")).to_have_value("2031-03-06T08:00")
    fill_day(page, 3, "2031-03-07T08:00", "2031-03-07T12:00")
    page.get_by_role("button", name="Save session").click()
    expect(page.get_by_role("status").filter(has_text="Session saved")).to_be_visible()
    after = meetings_of(admin_api, session_id)
    assert [m["id"] for m in after[:2]] == [day1["id"], day2["id"]]
    assert after[1]["starts_at"] == "2031-03-06T08:00:00-06:00"
    assert len(after) == 3

    # Remove day 1.
    page.goto(url + f"/admin/sessions/{session_id}/edit")
    page.get_by_label("Remove day 1 when saving").check()
    page.get_by_role("button", name="Save session").click()
    expect(page.get_by_role("status").filter(has_text="Session saved")).to_be_visible()
    assert [m["id"] for m in meetings_of(admin_api, session_id)] == [
        day2["id"],
        after[2]["id"],
    ]

    # The same instructor on an overlapping day of a new session: refused beside the field.
    page.goto(url + "/admin/courses/managing-bias/sessions/new")
    fill_day(page, 1, "2031-03-07T10:00", "2031-03-07T11:00")
    page.locator("#mode-virtual").check()
    page.get_by_label("Virtual seats").fill("5")
    page.get_by_label("Join URL").fill("https://meet.example.org/room")
    page.get_by_label("Dana Reyes").check()
    page.get_by_role("button", name="Schedule session").click()
    error = page.locator("#instructors-error")
    expect(error).to_contain_text(f"session {session_id} (Managing Bias)")
    expect(page.get_by_label("Join URL")).to_have_value("https://meet.example.org/room")
    shots(page, "conflict")
    return session_id


def test_meetings_are_edited_with_javascript(
    admin_api, directory, browser: Browser, live, shots, watch
):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())
    schedule_and_edit(page, live.url, admin_api, directory, shots, scripted=True)
    expected = re.compile(r"Failed to load resource: .* status of 409")
    assert [p for p in watch.problems if not expected.search(p)] == []


def test_meetings_are_edited_without_javascript(
    admin_api, directory, browser: Browser, live, shots, watch
):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    page = watch.attach(context.new_page())
    schedule_and_edit(page, live.url, admin_api, directory, shots, scripted=False)
