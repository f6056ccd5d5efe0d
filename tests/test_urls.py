"""scheduler/urls.py builds every absolute link; the surfaces link through it."""

from __future__ import annotations

from pathlib import Path

from scheduler import urls
from scheduler.config import Settings


def test_links_are_built_from_the_base_url(tmp_path: Path) -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite:///:memory:",
        base_url="https://training.example.org",
        secret_key="test-secret-key-not-for-production",
        mail_dir=tmp_path,
    )
    assert urls.session(settings, "managing-bias", 7) == (
        "https://training.example.org/courses/managing-bias#session-7"
    )
    assert urls.manage(settings, "tok") == "https://training.example.org/registrations/tok"
    assert urls.instructor_feed(settings, "f").endswith("/instructors/f/calendar.ics")


def test_no_surface_builds_its_own_registration_or_course_link() -> None:
    root = Path(__file__).resolve().parent.parent / "scheduler"
    for path in root.rglob("*.py"):
        if path.name in ("urls.py", "openapi.py"):
            continue
        text = path.read_text()
        for built in ("base_url}/registrations/", "base_url}/courses/", "{base}/courses/"):
            assert built not in text, f"{path} builds a link by hand: {built}"
