"""Keyboard only: register, cancel and sign in as admin with Tab, Shift+Tab, Enter and Space.

No click, no ``focus()``, no arrow keys: the test moves by Tab (and back by Shift+Tab), types
into the field that has focus, and acts with Enter or Space, as someone who cannot use a
mouse does. Each step checks where focus landed by what a screen reader would announce.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

pytestmark = pytest.mark.browser


@pytest.fixture
def course(admin_api) -> str:
    assert (
        admin_api.post("/api/courses", json={"slug": "kb", "title": "Managing Bias"}).status_code
        == 201
    )
    made = admin_api.post(
        "/api/courses/kb/sessions",
        json={
            "starts_at": "2031-03-04T09:00",
            "ends_at": "2031-03-04T13:00",
            "timezone": "America/Chicago",
            "mode": "in_person",
            "in_person_capacity": 5,
            "venue": {"name": "Metro Training Center", "city": "Springfield", "state": "IL"},
        },
    )
    assert made.status_code == 201, made.text
    return "kb"


def focused(page: Page) -> str:
    """What has focus, as announced: a link's or button's text, a field's label."""
    return str(
        page.evaluate(
            """() => {
                const e = document.activeElement;
                if (!e || e === document.body) return '';
                if (e.labels && e.labels.length) return e.labels[0].textContent.trim();
                return (e.getAttribute('aria-label') || e.textContent || '').trim();
            }"""
        )
    )


class Keys:
    """The only keys this test may press; remembers which it used."""

    ALLOWED = ("Tab", "Shift+Tab", "Enter", "Space")

    def __init__(self, page: Page) -> None:
        self.page = page
        self.used: set[str] = set()

    def press(self, key: str) -> None:
        assert key in self.ALLOWED, key
        self.used.add(key)
        self.page.keyboard.press(key)

    def tab_to(self, name: str | re.Pattern[str], *, back: bool = False, limit: int = 60) -> None:
        """Press Tab (or Shift+Tab) until focus is on ``name``; fail after ``limit`` presses."""
        for _ in range(limit):
            self.press("Shift+Tab" if back else "Tab")
            now = focused(self.page)
            if name.search(now) if isinstance(name, re.Pattern) else now.startswith(name):
                return
        raise AssertionError(f"Tab never reached {name!r} on {self.page.url}")


def test_register_cancel_and_sign_in_with_the_keyboard_alone(
    course, browser: Browser, live, shots, watch
):
    page = watch.attach(browser.new_context().new_page())
    keys = Keys(page)
    page.goto(live.url + "/")

    keys.tab_to("Managing Bias")
    keys.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Managing Bias")
    keys.tab_to("Register for this session")
    keys.press("Enter")  # opens the form
    keys.tab_to("Full name")
    page.keyboard.type("Kay Board")
    keys.tab_to("Work email")
    page.keyboard.type("kay@pd.example.org")
    keys.tab_to("Agency")
    page.keyboard.type("Springfeld PD")
    keys.tab_to("Rank or role")
    keys.tab_to("Agency", back=True)  # back to fix the typo: Tab selects the field's text
    page.keyboard.type("Springfield PD")
    keys.tab_to(re.compile("^In person"))
    keys.press("Space")  # the one pool is already chosen; Space keeps it
    keys.tab_to("Register")
    shots(page, "keyboard-register-form")
    keys.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("You're registered")

    keys.tab_to("Manage your registration")
    keys.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your registration")
    expect(page.get_by_text("Springfield PD", exact=True)).to_be_visible()
    keys.tab_to("Cancel my registration")  # a link to the confirmation page
    keys.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cancel your registration?")
    keys.tab_to("Yes, cancel my registration")
    keys.press("Space")
    expect(page.get_by_role("status")).to_contain_text("Your registration is cancelled")
    shots(page, "keyboard-cancelled")

    page.goto(live.url + "/admin/login")
    keys.tab_to("Email")
    page.keyboard.type(ADMIN_EMAIL)
    keys.tab_to("Password")
    page.keyboard.type(ADMIN_PASSWORD)
    keys.tab_to("Sign in")
    keys.press("Space")
    expect(page.get_by_role("heading", name="Upcoming sessions")).to_be_visible()
    shots(page, "keyboard-admin-dashboard")
    assert keys.used == set(Keys.ALLOWED)
    assert watch.problems == []
