"""Times in the reader's zone: static/localtime.js in Chromium with emulated time zones.

A session at 9:00 AM Chicago time (CST) on Tue 4 Mar 2031 is 12:00 AM on Wed 5 Mar in Tokyo
and 8:00 AM in Phoenix. The page always says the session's own time with its abbreviation;
the script adds the reader's time only when it differs, and without script the page still
reads correctly.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

pytestmark = pytest.mark.browser

OWN = "Tue 4 Mar 2031, 9:00 AM – 1:00 PM CST"


@pytest.fixture
def session_id(admin_api) -> int:
    api = admin_api
    assert api.post("/api/courses", json={"slug": "c", "title": "Managing Bias"}).status_code == 201
    made = api.post(
        "/api/courses/c/sessions",
        json={
            "starts_at": "2031-03-04T09:00",
            "ends_at": "2031-03-04T13:00",
            "timezone": "America/Chicago",
            "mode": "virtual",
            "virtual_capacity": 5,
            "join_url": "https://meet.example.org/x",
        },
    )
    assert made.status_code == 201, made.text
    return int(made.json()["id"])


@pytest.mark.parametrize(
    ("zone", "reader_time"),
    [
        ("Asia/Tokyo", "(your time: Wed, Mar 5, 12:00 – 4:00 AM GMT+9)"),
        ("America/Phoenix", "(your time: Tue, Mar 4, 8:00 AM – 12:00 PM MST)"),
    ],
)
def test_a_reader_elsewhere_also_sees_their_own_time(
    session_id, browser: Browser, live, shots, watch, zone, reader_time
):
    context = browser.new_context(timezone_id=zone)
    page = watch.attach(context.new_page())
    for path in ("/courses/c", "/sessions"):
        page.goto(live.url + path)
        when = page.locator(f"#session-{session_id} .when")
        expect(when).to_have_text(OWN)
        expect(page.locator(f"#session-{session_id} .reader-time")).to_have_text(" " + reader_time)
        shots(page, f"{zone.replace('/', '-')}{path.replace('/', '-')}")
    assert watch.problems == []


def test_a_reader_in_the_sessions_zone_sees_it_once(session_id, browser: Browser, live, watch):
    page = watch.attach(browser.new_context(timezone_id="America/Chicago").new_page())
    page.goto(live.url + "/courses/c")
    expect(page.locator(f"#session-{session_id} .when")).to_have_text(OWN)
    # The script has run (it is deferred, so it ran before the load event) and added nothing.
    page.wait_for_load_state("load")
    expect(page.locator(".reader-time")).to_have_count(0)
    assert watch.problems == []


def test_without_script_the_page_reads_correctly(session_id, browser: Browser, live):
    page = browser.new_context(timezone_id="Asia/Tokyo", java_script_enabled=False).new_page()
    page.goto(live.url + "/sessions")
    expect(page.locator(f"#session-{session_id} .when")).to_have_text(OWN)
    expect(page.locator(".reader-time")).to_have_count(0)
