"""The dispatcher's invite cache must give byte-for-byte what ``registration_invite`` gives.

The cache renders one invite per session and seat with stand-in values and swaps in each
registrant; these cases (quotes, separators, line breaks, non-Latin text, long names, names
that contain the stand-ins) are where such a swap could go wrong.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scheduler import calendar
from scheduler.catalog import CourseView, SessionView
from scheduler.config import Settings
from scheduler.mail_content import InviteCache

NOW = datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC)


@dataclass
class Person:
    id: int
    name: str
    email: str
    token: str
    status: str
    attendance: str
    sequence: int
    updated_at: datetime | None


def session(**changes: object) -> SessionView:
    values: dict[str, object] = {
        "id": 3,
        "course_id": 1,
        "course_slug": "managing-bias",
        "course_title": "Managing Bias, Advanced: ü",
        "starts_at": NOW + timedelta(days=10),
        "ends_at": NOW + timedelta(days=10, hours=4),
        "timezone": "America/Chicago",
        "mode": "hybrid",
        "status": "scheduled",
        "venue_name": "Metro; Center",
        "venue_address": "1 Main St",
        "venue_city": "Chicago",
        "venue_state": "IL",
        "venue_postal_code": "60607",
        "platform": "Zoom",
        "join_url": "https://meet.example.org/x?a=1,2;b",
        "max_per_agency": None,
        "registration_closes_at": None,
        "sequence": 2,
        "created_at": NOW,
        "updated_at": NOW,
        "pools": (),
    }
    values.update(changes)
    return SessionView(**values)  # type: ignore[arg-type]


SESSIONS = [
    session(),
    session(mode="virtual", venue_name=None),
    session(status="cancelled"),
    session(timezone="UTC"),
    session(timezone="Australia/Lord_Howe"),
]


def names() -> list[str]:
    rng = random.Random(7)
    alphabet = string.ascii_letters + string.digits + " .'-\"^,;:’\\\n\r\téüß漢字😀=?"
    fixed = ["O'Brien", 'Sam "Ace" Rivera', "A;B", "Zoë Ünal", "x" * 200, "漢字" * 40]
    fixed += ["^n caret", "a,b", " lead", "Qzx Standin Name", "7391846205163"]
    return fixed + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 90))) for _ in range(40)
    ]


@pytest.mark.parametrize("view", SESSIONS, ids=lambda s: f"{s.mode}-{s.status}-{s.timezone}")
def test_cached_invites_equal_fresh_ones(tmp_path: Path, view: SessionView) -> None:
    settings = Settings(
        database_url="sqlite+aiosqlite:///unused.db",
        base_url="https://training.example.org",
        secret_key="test-secret-key-not-for-production",
        mail_dir=tmp_path,
    )
    course = CourseView(
        1, "managing-bias", view.course_title, "d", "a", "p", ("in_person",), None, NOW
    )
    cache = InviteCache(settings)
    rng = random.Random(11)
    emails = [
        "officer1@example.org",
        "Mixed.Case+tag@Example.ORG",
        "ü@x.org",
        "x" * 70 + "@example.org",
    ]
    compared = 0
    for name in names():
        for status in ("confirmed", "waitlisted", "cancelled"):
            for attendance in ("in_person", "virtual"):
                person = Person(
                    rng.randint(1, 10**7),
                    name,
                    rng.choice(emails),
                    "tok_-AZ09" + str(rng.randint(0, 99)),
                    status,
                    attendance,
                    rng.randint(0, 3),
                    rng.choice([None, NOW - timedelta(days=1), NOW + timedelta(seconds=2)]),
                )
                for cancel in (False, True):
                    fresh = calendar.registration_invite(
                        person, view, course, settings, cancel=cancel
                    )
                    assert cache(person, view, course, cancel=cancel) == fresh, (name, status)
                    compared += 1
    assert compared == len(names()) * 12
