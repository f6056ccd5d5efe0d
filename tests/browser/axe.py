"""axe-core (from npm, tests/js) run inside Chromium against a page: WCAG 2.1 A and AA.

``Axe.check(page, name)`` puts ``axe.min.js`` into the page through Playwright (a DevTools
evaluation, so the page's strict CSP does not block it and the page itself is unchanged), runs
the rules tagged ``wcag2a``, ``wcag2aa``, ``wcag21a`` and ``wcag21aa``, and fails with each
violation's rule, impact, help and elements. It remembers every rule id it ran, so a test can
print what was checked. Other tests call it on their own pages through the ``axe`` fixture::

    def test_my_page(browser, live, axe):
        page = browser.new_page()
        page.goto(live.url + "/my-page")
        axe.check(page, "my page")
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page

ROOT = Path(__file__).resolve().parents[2]
AXE_JS = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
WCAG_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
_RESULT_KINDS = ("violations", "passes", "incomplete", "inapplicable")


class Axe:
    def __init__(self, source: Path = AXE_JS) -> None:
        if not source.exists():
            raise FileNotFoundError(
                f"{source} is missing: make tests/js/node_modules/.package-lock.json"
            )
        self.source = source.read_text(encoding="utf-8")
        self.rules_run: set[str] = set()
        self.pages: list[str] = []

    def inject(self, page: Page) -> None:
        if not page.evaluate("() => typeof window.axe === 'object'"):
            page.evaluate(f"() => {{ {self.source}\n; return true; }}")
        version = page.evaluate("() => window.axe && window.axe.version")
        assert version, "axe-core did not load into the page"

    def run(self, page: Page) -> dict[str, Any]:
        """The axe results for the page as it is now, for the WCAG 2.1 A/AA tags only."""
        # A click that follows a link returns once the next page has begun to load: running
        # axe before it has loaded met a document being replaced ("Cannot read properties of
        # null (reading 'documentElement')"). Already loaded, this returns at once.
        page.wait_for_load_state("load")
        self.inject(page)
        results: dict[str, Any] = page.evaluate(
            """tags => axe.run(document, {
                   runOnly: {type: 'tag', values: tags},
                   resultTypes: ['violations'],
               })""",
            list(WCAG_TAGS),
        )
        return results

    def check(self, page: Page, name: str) -> list[str]:
        """Fail on any WCAG 2.1 A/AA violation on ``page``; return the rule ids that ran."""
        results = self.run(page)
        ran = sorted({rule["id"] for kind in _RESULT_KINDS for rule in results.get(kind, [])})
        self.rules_run.update(ran)
        self.pages.append(name)
        problems = [
            f"{v['id']} ({v.get('impact')}): {v['help']} -> "
            + "; ".join(" ".join(map(str, node["target"])) for node in v["nodes"][:5])
            for v in results["violations"]
        ]
        assert not problems, (
            f"axe found WCAG 2.1 A/AA violations on {name} ({page.url}):\n" + "\n".join(problems)
        )
        return ran

    def report(self) -> str:
        return (
            f"axe-core checked {len(self.pages)} pages against {', '.join(WCAG_TAGS)}; "
            f"{len(self.rules_run)} rules ran: {', '.join(sorted(self.rules_run))}"
        )
