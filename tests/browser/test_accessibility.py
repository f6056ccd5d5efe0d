"""WCAG 2.1 AA in Chromium: axe-core on every page of the story, and reflow at 320 px.

Each public page, every admin page, forms showing their errors, an error page and one
rendered HTML email are checked by axe-core for the rules tagged wcag2a, wcag2aa, wcag21a and
wcag21aa (the rule ids that ran are printed); each page is also screenshotted 320 px wide and
must not scroll sideways there.
"""

from __future__ import annotations

import email
import re
from email.policy import default
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import fits_at_320
from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser

LONG = "Detective Sergeant Maximiliana Featherstonehaugh-Worthington-Smythe"


@pytest.fixture
def seeded(admin_api) -> dict[str, object]:
    """A course with a hybrid and a virtual session, made through the API, with registrations."""
    api = admin_api
    made = api.post(
        "/api/courses",
        json={"slug": "managing-bias", "title": "Managing Bias", "description": "Bias."},
    )
    assert made.status_code == 201, made.text
    venue = {
        "name": "Metro Training Center",
        "address": "1 Main St",
        "city": "Springfield",
        "state": "IL",
        "postal_code": "62701",
    }
    hybrid = api.post(
        "/api/courses/managing-bias/sessions",
        json={
            "starts_at": "2031-03-04T09:00",
            "ends_at": "2031-03-04T13:00",
            "timezone": "America/Chicago",
            "mode": "hybrid",
            "in_person_capacity": 1,
            "virtual_capacity": 5,
            "venue": venue,
            "join_url": "https://meet.example.org/secret-room-123",
        },
    ).json()
    api.post(
        "/api/courses/managing-bias/sessions",
        json={
            "starts_at": "2031-04-01T13:00",
            "ends_at": "2031-04-01T15:00",
            "timezone": "America/Phoenix",
            "mode": "virtual",
            "virtual_capacity": 5,
            "join_url": "https://meet.example.org/other",
        },
    )
    person = api.post(
        "/api/instructors",
        json={
            "name": "Dana Reyes",
            "email": "dana@example.org",
            "credentials": "POST",
            "public": True,
        },
    ).json()
    place = api.post(
        "/api/venues", json={"name": "Academy", "room": "Room 101", "city": "Peoria"}
    ).json()
    two_days = api.post(
        "/api/courses/managing-bias/sessions",
        json={
            "meetings": [
                {"starts_at": "2031-05-05T09:00", "ends_at": "2031-05-05T17:00"},
                {"starts_at": "2031-05-06T09:00", "ends_at": "2031-05-06T17:00"},
            ],
            "timezone": "America/Chicago",
            "mode": "in_person",
            "in_person_capacity": 10,
            "venue_id": place["id"],
            "instructors": [person["id"]],
        },
    )
    assert two_days.status_code == 201, two_days.text
    regs = []
    for n, attendance in [(1, "in_person"), (2, "in_person"), (3, "virtual")]:
        body = {
            "name": LONG if n == 1 else f"Officer {n}",
            "email": f"o{n}@pd.example.org",
            "agency": "Springfield Police Department, Training Division",
            "attendance": attendance,
        }
        reg = api.post(f"/api/sessions/{hybrid['id']}/registrations", json=body)
        assert reg.status_code == 201, reg.text
        regs.append(reg.json())
    return {
        "session_id": hybrid["id"],
        "tokens": [r["token"] for r in regs],
        "two_days": two_days.json()["id"],
        "instructor": person["id"],
        "venue": place["id"],
    }


def visit(page: Page, url: str, name: str, axe, shots) -> None:
    if url:
        page.goto(url)
    axe.check(page, name)
    fits_at_320(page, shots, name, axe)


def test_every_page_meets_wcag_21_aa_and_reflows_at_320px(
    seeded, browser: Browser, live, axe, shots, watch
):
    url = live.url
    sid = seeded["session_id"]
    token, waiting, virtual = seeded["tokens"]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())

    # Public pages.
    for path, name in [
        ("/", "home"),
        ("/sessions", "finder"),
        ("/sessions?mode=in_person&state=IL&available=1", "finder-filtered"),
        ("/courses/managing-bias", "course"),
        (f"/registrations/{token}/result", "result-confirmed"),
        (f"/registrations/{waiting}/result", "result-waitlisted"),
        (f"/registrations/{virtual}", "manage-virtual"),
        ("/registrations/lookup", "lookup"),
        ("/courses/no-such-course", "error-404"),
    ]:
        visit(page, url + path, name, axe, shots)

    # Forms showing their errors.
    visit(page, url + "/sessions?mode=teleport&from=someday&state=ZZ", "finder-errors", axe, shots)
    page.goto(url + f"/courses/managing-bias?register={sid}")
    page.locator(f"#session-{sid}").get_by_role("button", name="Register").click()
    expect(page.get_by_role("alert")).to_be_visible()
    visit(page, "", "register-errors", axe, shots)
    page.goto(url + "/registrations/lookup")
    page.get_by_label("Email you registered with").fill("not an address")
    page.get_by_role("button", name="Email me my links").click()
    expect(page.get_by_role("alert")).to_be_visible()
    visit(page, "", "lookup-errors", axe, shots)
    page.get_by_label("Email you registered with").fill("o1@pd.example.org")
    page.get_by_role("button", name="Email me my links").click()
    expect(page.get_by_role("heading", name="Check your inbox")).to_be_visible()
    visit(page, "", "lookup-sent", axe, shots)
    page.goto(url + f"/registrations/{virtual}")
    page.get_by_role("link", name="Cancel my registration").click()
    expect(page.get_by_role("button", name="Yes, cancel my registration")).to_be_visible()
    visit(page, "", "cancel-confirmation", axe, shots)
    page.get_by_role("button", name="Yes, cancel my registration").click()
    expect(page.get_by_role("status")).to_be_visible()
    visit(page, "", "manage-cancelled", axe, shots)

    # Admin pages.
    visit(page, url + "/admin/login", "admin-login", axe, shots)
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_be_visible()
    visit(page, "", "admin-login-error", axe, shots)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Upcoming sessions")).to_be_visible()
    for path, name in [
        ("/admin", "admin-dashboard"),
        ("/admin/courses", "admin-courses"),
        ("/admin/courses/new", "admin-course-new"),
        ("/admin/courses/managing-bias", "admin-course-edit"),
        ("/admin/courses/managing-bias/sessions/new", "admin-session-new"),
        (f"/admin/sessions/{sid}", "admin-roster"),
        (f"/admin/sessions/{sid}/edit", "admin-session-edit"),
        (f"/admin/sessions/{sid}/cancel", "admin-session-cancel"),
        ("/admin/outbox?status=pending", "admin-outbox-pending"),
        ("/admin/outbox?status=sent", "admin-outbox-sent"),
        ("/admin/outbox?status=failed", "admin-outbox-failed"),
        ("/admin/outbox/1", "admin-outbox-message"),
        ("/admin/tokens", "admin-tokens"),
        ("/admin/password", "admin-password"),
        ("/admin/registrations", "admin-search"),
        ("/admin/registrations?q=springfield", "admin-search-results"),
        ("/admin/registrations?q=x", "admin-search-error"),
        ("/admin/instructors", "admin-instructors"),
        ("/admin/instructors/new", "admin-instructor-new"),
        (f"/admin/instructors/{seeded['instructor']}", "admin-instructor-edit"),
        ("/admin/venues", "admin-venues"),
        ("/admin/venues/new", "admin-venue-new"),
        (f"/admin/venues/{seeded['venue']}", "admin-venue-edit"),
        (f"/admin/sessions/{seeded['two_days']}/edit", "admin-session-two-days"),
    ]:
        visit(page, url + path, name, axe, shots)
    page.goto(url + "/admin/courses/managing-bias/sessions/new")
    page.get_by_role("button", name="Schedule session").click()
    expect(page.get_by_role("alert")).to_be_visible()
    visit(page, "", "admin-session-errors", axe, shots)
    # A two-day session: a day added in place, then a day that ends before it starts.
    page.goto(url + f"/admin/sessions/{seeded['two_days']}/edit")
    page.get_by_role("button", name="Add another day").click()
    page.get_by_label("Day 3 starts").fill("2031-05-07T09:00")
    page.get_by_label("Day 3 ends").fill("2031-05-07T08:00")
    visit(page, "", "admin-session-added-day", axe, shots)
    page.get_by_role("button", name="Save session").click()
    expect(page.locator("#meeting-2-ends_at-error")).to_be_visible()
    visit(page, "", "admin-session-meeting-errors", axe, shots)
    # The same instructor and room at an overlapping time: field errors beside both.
    page.goto(url + "/admin/courses/managing-bias/sessions/new")
    page.get_by_label("Day 1 starts").fill("2031-05-06T10:00")
    page.get_by_label("Day 1 ends").fill("2031-05-06T12:00")
    page.get_by_label("In-person seats").fill("4")
    page.get_by_label("Place from the directory").select_option(str(seeded["venue"]))
    page.get_by_label("Dana Reyes").check()
    page.get_by_role("button", name="Schedule session").click()
    expect(page.locator("#instructors-error")).to_be_visible()
    expect(page.locator("#venue_id-error")).to_be_visible()
    visit(page, "", "admin-session-conflict", axe, shots)
    page.goto(url + "/admin/instructors/new")
    page.get_by_role("button", name="Add instructor").click()
    expect(page.get_by_role("alert")).to_be_visible()
    visit(page, "", "admin-instructor-errors", axe, shots)

    # One rendered HTML email: the confirmation the live server wrote to its mail folder.
    html = confirmation_html(Path(live.workdir) / "mail")
    mail_page = context.new_page()
    mail_page.set_content(html)
    visit(mail_page, "", "email-confirmation", axe, shots)

    # The error page, the refused forms and the wrong password answer 404, 422 and 401 on
    # purpose; Chromium logs each.
    expected = re.compile(r"Failed to load resource: .* status of (401|404|409|422)")
    assert [p for p in watch.problems if not expected.search(p)] == []
    assert len(axe.pages) == 94  # 47 pages, each wide and at 320 px
    assert {
        "color-contrast",
        "label",
        "html-has-lang",
        "document-title",
        "link-name",
    } <= axe.rules_run


def confirmation_html(folder: Path) -> str:
    """The HTML part of the first confirmation email the server has written out."""
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=default)
            if message["X-Outbox-Kind"] == "confirmation":
                part = message.get_body(preferencelist=("html",))
                assert part is not None
                return str(part.get_content())
        time.sleep(0.2)
    raise AssertionError(f"no confirmation email in {folder}")


def test_the_axe_check_fails_on_a_violation_and_names_it(browser: Browser, axe):
    page = browser.new_page()
    page.set_content(
        "<!doctype html><html><head><title>t</title></head><body><main>"
        '<input type="text"><p style="color:#bbb;background:#fff">faint</p></main></body></html>'
    )
    with pytest.raises(AssertionError) as failed:
        axe.check(page, "broken page")
    assert "html-has-lang" in str(failed.value)
    assert "label (critical)" in str(failed.value)
    assert "color-contrast (serious)" in str(failed.value)


def test_every_console_page_meets_wcag_21_aa_and_reflows_at_320px(
    admin_api, live, browser: Browser, axe, shots, watch
):
    """The coordinator console's story (tests/browser/test_console.py), axe on each page."""
    from tests.browser.test_console import drive_console, link_from, seed_console, wait_for

    seed_console(admin_api)
    folder = Path(live.workdir) / "mail"

    def read_link() -> str:
        def find() -> str | None:
            messages = [
                email.message_from_bytes(p.read_bytes(), policy=default)
                for p in sorted(folder.glob("*.eml"))
            ]
            return link_from(messages)

        return wait_for(find, "sign-in link")

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = watch.attach(context.new_page())
    drive_console(page, live.url, read_link, lambda p, name: visit(p, "", name, axe, shots))
    assert [p for p in watch.problems if not re.search(r"status of 409", p)] == []
    assert len(axe.pages) == 2 * 19  # 19 console pages, each wide and at 320 px
