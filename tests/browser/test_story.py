"""The whole story in headless Chromium against a real ``scheduler serve``.

An admin signs in (by keyboard), creates a course and a hybrid session through the forms;
registrants fill the in-person pool through the public form until the waitlist starts; the admin
cancels one registration (a confirmation page with a reason) and the flash names the waitlisted
person now confirmed; the roster CSV downloads with the right rows; a registrant cancels from the
manage page (again after a confirmation page); a registrant whose tab stayed open while
registration closed gets the form back with what they typed and why (JavaScript off). Every page is
screenshotted, hostile names must stay text, and no page may trip the CSP or open a dialog.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser

HOSTILE = '"><img src=x onerror=alert(1)>'
PHONE = {"width": 375, "height": 740}


def fits_the_screen(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def sign_in_by_keyboard(page: Page, url: str) -> None:
    page.goto(url + "/admin")
    expect(page).to_have_url(re.compile(r"/admin/login\?next=/admin$"))
    page.get_by_label("Email").focus()
    page.keyboard.type(ADMIN_EMAIL)
    page.keyboard.press("Tab")
    page.keyboard.type(ADMIN_PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Upcoming sessions")).to_be_visible()


def create_course_and_hybrid_session(page: Page, shots) -> None:
    page.get_by_role("link", name="New course").first.click()
    page.get_by_label("Slug").fill("managing-bias")
    page.get_by_label("Title").fill("Managing Bias")
    page.get_by_label("Description").fill("How bias shapes split-second decisions.")
    page.get_by_label("Audience").fill("Officers of all ranks, including recruits")
    shots(page, "admin-new-course")
    page.get_by_role("button", name="Create course").click()
    expect(page.get_by_role("status")).to_contain_text("Course “Managing Bias” created.")

    page.get_by_role("link", name="New session").click()
    page.get_by_label("Starts").fill("2031-03-04T09:00")
    page.get_by_label("Ends").fill("2031-03-04T13:00")
    page.get_by_label("Time zone").select_option("America/Chicago")
    page.get_by_label("Hybrid").check()
    page.get_by_label("In-person seats").fill("2")
    page.get_by_label("Venue").fill("Metro Training Center")
    page.get_by_label("Address").fill("1 Main St")
    page.get_by_label("City").fill("Springfield")
    page.get_by_label("State").fill("IL")
    page.get_by_label("Virtual seats").fill("1")
    page.get_by_label("Join URL").fill("https://meet.example.org/secret-room-123")
    shots(page, "admin-new-session")
    page.get_by_role("button", name="Schedule session").click()
    expect(page.get_by_role("status")).to_contain_text("Session scheduled.")


def register(
    context: BrowserContext, url: str, name: str, email: str, pool: str, shots, label: str
) -> Page:
    page = context.new_page()
    page.goto(url + "/")
    page.get_by_role("link", name="Managing Bias").click()
    expect(page.get_by_text("Tue 4 Mar 2031, 9:00 AM – 1:00 PM CST")).to_be_visible()
    page.get_by_text("Register for this session").click()
    page.get_by_label("Full name").fill(name)
    page.get_by_label("Work email").fill(email)
    page.get_by_label("Agency").fill("Springfield PD")
    page.get_by_label(re.compile("^In person" if pool == "in_person" else "^Live virtual")).check()
    shots(page, f"public-register-{label}")
    page.get_by_role("button", name="Register").click()
    expect(page).to_have_url(re.compile(r"/registrations/[\w-]+/result$"))
    shots(page, f"public-result-{label}")
    return page


def late_registration_in_an_open_tab(
    browser: Browser, admin: Page, url: str, roster_url: str, shots
) -> None:
    """A registrant fills the form in a tab left open while the admin closes registration;
    the refused form comes back with everything typed and says why. No JavaScript needed."""
    context = browser.new_context(java_script_enabled=False)
    late = context.new_page()
    # The refused form is answered 410, which Chromium logs as a failed load of the page
    # itself; anything else on the console (a CSP violation, say) is still a problem.
    problems: list[str] = []
    late.on(
        "console",
        lambda msg: (
            problems.append(msg.text)
            if msg.type == "error" and "status of 410 (Gone)" not in msg.text
            else None
        ),
    )
    late.goto(url + "/courses/managing-bias")
    late.get_by_text("Register for this session").click()
    late.get_by_label("Full name").fill("Lee Late")
    late.get_by_label("Work email").fill("lee@pd.example.org")
    late.get_by_label("Agency").fill("Springfield PD")
    late.get_by_label("Rank or role (optional)").fill("Sergeant")

    admin.goto(roster_url)
    admin.get_by_role("link", name="Edit or reschedule").click()
    admin.get_by_label("Registration closes (optional)").fill("2026-01-01T09:00")
    admin.get_by_role("button", name="Save session").click()
    expect(admin.get_by_role("status")).to_contain_text("Session saved.")

    late.get_by_role("button", name="Register").click()
    alert = late.get_by_role("alert").first
    expect(alert).to_contain_text("Your registration was not taken:")
    expect(alert).to_contain_text("Registration for this session has closed.")
    expect(late.get_by_label("Full name")).to_have_value("Lee Late")
    expect(late.get_by_label("Work email")).to_have_value("lee@pd.example.org")
    expect(late.get_by_label("Agency")).to_have_value("Springfield PD")
    expect(late.get_by_label("Rank or role (optional)")).to_have_value("Sergeant")
    shots(late, "public-late-registration-refused")
    assert problems == []
    context.close()


def test_admin_and_registrants_walk_the_whole_story(browser: Browser, live, shots, watch):
    url = live.url
    admin = browser.new_context(accept_downloads=True)
    page = watch.attach(admin.new_page())
    sign_in_by_keyboard(page, url)
    shots(page, "admin-dashboard-empty")
    create_course_and_hybrid_session(page, shots)
    roster_url = page.url

    people = [
        ("Officer One", "one@pd.example.org", "in_person"),
        (HOSTILE, "two@pd.example.org", "in_person"),
        ("Officer Three", "three@pd.example.org", "in_person"),
        ("Vera Virtual", "vera@pd.example.org", "virtual"),
        ("Walt Waiting", "walt@pd.example.org", "virtual"),
    ]
    results: dict[str, Page] = {}
    for n, (name, email, pool) in enumerate(people, start=1):
        # Each registrant is a different person on their own device; one is on a phone.
        context = browser.new_context(viewport=PHONE) if n == 3 else browser.new_context()
        results[email] = register(context, url, name, email, pool, shots, f"{n}-{pool}")
        watch.attach(results[email])
    expect(results["one@pd.example.org"].get_by_role("heading", level=1)).to_have_text(
        "You're registered"
    )
    expect(results["two@pd.example.org"].get_by_text(HOSTILE, exact=True)).to_be_visible()
    waiting = results["three@pd.example.org"]
    expect(waiting.get_by_role("heading", name="You're on the waitlist")).to_be_visible()
    expect(waiting.locator("p.lead strong")).to_have_text("1")
    assert fits_the_screen(waiting), "the result page scrolls sideways on a phone"
    expect(
        results["vera@pd.example.org"].get_by_role("link", name="Add to Google Calendar")
    ).to_be_visible()
    expect(results["walt@pd.example.org"].get_by_role("heading", level=1)).to_have_text(
        "You're on the waitlist"
    )

    public = results["one@pd.example.org"]
    public.goto(url + "/courses/managing-bias")
    expect(public.get_by_text("full, waitlist open (1 waiting)").first).to_be_visible()
    assert "secret-room-123" not in public.content()
    shots(public, "public-course-page")

    page.goto(url + "/admin")
    expect(page.get_by_text("2/2")).to_be_visible()
    expect(page.get_by_text("1 waitlisted").first).to_be_visible()
    shots(page, "admin-dashboard")

    page.goto(roster_url)
    confirmed = page.locator('table[data-pool="in_person"][data-list="confirmed"]')
    waitlist = page.locator('table[data-pool="in_person"][data-list="waitlisted"]')
    expect(confirmed.locator("td.name")).to_have_text(["Officer One", HOSTILE])
    expect(waitlist.locator("td.name")).to_have_text(["Officer Three"])
    # The pool is full: promoting by hand could not work, so there is no Promote button.
    expect(page.get_by_role("button", name=re.compile("^Promote"))).to_have_count(0)
    shots(page, "admin-roster-full")
    # Cancelling asks first, with room for a reason that goes into the email.
    page.get_by_role("link", name="Cancel… registration of Officer One").click()
    expect(
        page.get_by_role("heading", name="Cancel the registration of Officer One?")
    ).to_be_visible()
    page.get_by_label("Reason (included in the email, optional)").fill("Booked twice by mistake")
    shots(page, "admin-cancel-registration-confirmation")
    page.get_by_role("button", name="Yes, cancel this registration").click()
    status = page.get_by_role("status")
    expect(status).to_contain_text("Cancelled the registration of Officer One")
    expect(status).to_contain_text("Promoted from the waitlist: Officer Three.")
    expect(confirmed.locator("td.name")).to_have_text([HOSTILE, "Officer Three"])
    expect(page.locator('table[data-pool="in_person"][data-list="waitlisted"]')).to_have_count(0)
    shots(page, "admin-roster-after-cancel")
    waiting.reload()
    expect(waiting.get_by_text("Confirmed — in person")).to_be_visible()

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download roster (CSV)").click()
    download = download_info.value
    assert download.suggested_filename.startswith("roster-managing-bias-")
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
    got = sorted((r["email"], r["attendance"], r["status"], r["waitlist_position"]) for r in rows)
    assert got == [
        ("one@pd.example.org", "in_person", "cancelled", ""),
        ("three@pd.example.org", "in_person", "confirmed", ""),
        ("two@pd.example.org", "in_person", "confirmed", ""),
        ("vera@pd.example.org", "virtual", "confirmed", ""),
        ("walt@pd.example.org", "virtual", "waitlisted", "1"),
    ]
    assert {r["name"] for r in rows} >= {HOSTILE, "Officer Three"}

    vera = results["vera@pd.example.org"]
    vera.get_by_role("link", name="Manage your registration").click()
    expect(
        vera.get_by_role("link", name="https://meet.example.org/secret-room-123")
    ).to_be_visible()
    shots(vera, "public-manage")
    vera.get_by_role("link", name="Cancel my registration…").click()
    expect(vera.get_by_role("heading", name="Cancel your registration?")).to_be_visible()
    shots(vera, "public-cancel-confirmation")
    vera.get_by_role("button", name="Yes, cancel my registration").click()
    expect(vera.get_by_role("status")).to_contain_text("Your registration is cancelled")
    expect(vera.get_by_text("secret-room-123")).to_have_count(0)
    shots(vera, "public-manage-cancelled")
    walt = results["walt@pd.example.org"]
    walt.get_by_role("link", name="Manage your registration").click()
    expect(walt.get_by_text("Confirmed — live virtual")).to_be_visible()

    late_registration_in_an_open_tab(browser, page, url, roster_url, shots)

    page.goto(url + "/admin/outbox?status=pending")
    shots(page, "admin-outbox")
    page.goto(url + "/admin/sessions/1/cancel")
    expect(page.get_by_role("heading", name="Cancel this session?")).to_be_visible()
    shots(page, "admin-cancel-confirmation")
    assert watch.problems == []
