"""Headless Chromium (Debian's /usr/bin/chromium, never a downloaded build) against a real server.

Screenshots go to ``test-artifacts/screenshots/<test>/``; the folder is printed and never
cleaned up, so a failing run leaves the pictures of every page it reached.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from scheduler import accounts, tokens
from scheduler.db import Database
from tests.browser.axe import Axe
from tests.web.page_client import ADMIN_EMAIL, ADMIN_PASSWORD

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def browser(live: Any) -> Iterator[Browser]:
    """Chromium for one test. Playwright's sync API keeps an event loop running while it is up,
    so it starts after the server and database (set up with ``asyncio.run``) and stops first."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (never a downloaded build)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Shots:
    """Numbered full-page screenshots of one test, kept whatever the outcome."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("*.png"):
            old.unlink()

    def __call__(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    folder = ROOT / "test-artifacts" / "screenshots" / name
    print(f"\nscreenshots: {folder}")
    return Shots(folder)


@pytest.fixture
def live(sqlite_url: str, live_server_factory: Any) -> Any:
    """A real ``scheduler serve`` with an admin user, on SQLite (the embedded default).

    One backend keeps the browser suite short; the page and security tests run on both.
    """
    database_url = sqlite_url

    async def add_admin() -> None:
        db = Database.from_url(database_url)
        try:
            await accounts.create_admin(db, ADMIN_EMAIL, ADMIN_PASSWORD)
        finally:
            await db.dispose()

    asyncio.run(add_admin())
    return live_server_factory(database_url)


@pytest.fixture
def admin_api(live: Any) -> Iterator[httpx.Client]:
    """An httpx client on the live server with a fresh admin API token, to build a story's data.

    Take it before ``browser`` in a test's arguments: the token is made with ``asyncio.run``,
    which cannot run once Playwright's loop is up.
    """
    database_url = live.env["SCHEDULER_DATABASE_URL"]

    async def make_token() -> str:
        db = Database.from_url(database_url)
        try:
            return await tokens.create_token(db, "browser tests")
        finally:
            await db.dispose()

    headers = {"Authorization": f"Bearer {asyncio.run(make_token())}"}
    with httpx.Client(base_url=live.url, headers=headers, timeout=10) as client:
        yield client


class PageWatch:
    """Collects what must never happen on a page: CSP violations, script errors, dialogs."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def attach(self, page: Page) -> Page:
        page.on(
            "console",
            lambda msg: (
                self.problems.append(f"console {msg.type}: {msg.text}")
                if msg.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))

        def on_dialog(dialog: Any) -> None:
            self.problems.append(f"dialog opened: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", on_dialog)
        return page


@pytest.fixture
def watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
def axe() -> Iterator[Axe]:
    """The WCAG 2.1 A/AA check (tests/browser/axe.py); prints the rule ids it ran."""
    checker = Axe()
    yield checker
    if checker.pages:
        print("\n" + checker.report())


def fits_at_320(page: Page, shots: Shots, name: str, axe: Axe | None = None) -> None:
    """Reflow (WCAG 1.4.10): at 320 CSS px wide the page never scrolls sideways.

    Screenshots the narrow page (and runs ``axe`` on it too, when given: a table that scrolls
    in its box must be reachable by keyboard), then restores the viewport it found.
    """
    before = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    try:
        shots(page, f"{name}-320px")
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        assert widths[0] <= widths[1], f"{name} scrolls sideways at 320 px: {widths}"
        if axe is not None:
            axe.check(page, f"{name} at 320 px")
    finally:
        if before is not None:
            page.set_viewport_size(before)
