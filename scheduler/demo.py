"""The demo catalogue: the network's courses with sessions over the coming weeks.

Sessions are placed relative to today, in several US time zones, in person, virtual and
hybrid, so a fresh ``make run`` shows a realistic schedule. Loading twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from notifications.models import utcnow
from scheduler import catalog
from scheduler.db import Database
from scheduler.errors import AlreadyExists

COURSES: list[dict[str, Any]] = [
    {
        "slug": "managing-bias",
        "title": "Managing Bias",
        "description": (
            "How implicit bias shapes split-second decisions, and practical habits that keep "
            "encounters fair and safe. Scenario-based, with time for agency-specific questions."
        ),
        "audience": "Officers of all ranks, including entry-level recruits",
        "provider": "National De-escalation Training Network",
        "delivery": ["in_person", "virtual"],
    },
    {
        "slug": "de-escalation-fundamentals",
        "title": "De-escalation Fundamentals",
        "description": (
            "Communication, time and distance: the core skills for slowing an encounter down "
            "and resolving it without force."
        ),
        "audience": "Patrol officers and recruits",
        "provider": "National De-escalation Training Network",
        "delivery": ["in_person", "virtual"],
    },
    {
        "slug": "crisis-intervention",
        "title": "Responding to People in Crisis",
        "description": (
            "Recognising mental-health crises, working with co-responders, and safe hand-offs "
            "to care."
        ),
        "audience": "Officers, supervisors and dispatchers",
        "provider": "National De-escalation Training Network",
        "delivery": ["in_person", "virtual"],
    },
    {
        "slug": "active-bystandership",
        "title": "Active Bystandership for Law Enforcement",
        "description": "Peer intervention: how to step in before a mistake becomes a tragedy.",
        "audience": "Officers of all ranks",
        "provider": "National De-escalation Training Network",
        "delivery": ["in_person", "virtual"],
    },
    {
        "slug": "procedural-justice-online",
        "title": "Procedural Justice (self-paced)",
        "description": "A self-paced online module on fairness, voice, and trust.",
        "audience": "Officers of all ranks",
        "provider": "National De-escalation Training Network",
        "delivery": ["online"],
        "online_url": "https://learn.example.org/procedural-justice",
    },
]

VENUES = {
    "America/New_York": {
        "name": "Regional Training Academy",
        "address": "400 Academy Way",
        "city": "Albany",
        "state": "NY",
        "postal_code": "12205",
    },
    "America/Chicago": {
        "name": "Metro Police Training Center",
        "address": "1300 W Training Dr",
        "city": "Chicago",
        "state": "IL",
        "postal_code": "60607",
    },
    "America/Denver": {
        "name": "Front Range Public Safety Campus",
        "address": "88 Mesa Blvd",
        "city": "Denver",
        "state": "CO",
        "postal_code": "80204",
    },
    "America/Los_Angeles": {
        "name": "Pacific Coast Law Enforcement Institute",
        "address": "2150 Harbor St",
        "city": "Oakland",
        "state": "CA",
        "postal_code": "94607",
    },
    "America/Phoenix": {
        "name": "Desert Sky Training Facility",
        "address": "5 Sonoran Loop",
        "city": "Phoenix",
        "state": "AZ",
        "postal_code": "85003",
    },
}

# (course, days from today, local start hour, hours long, zone, mode, in-person seats, virtual seats)
PLAN: list[tuple[str, int, int, int, str, str, int, int]] = [
    ("managing-bias", 6, 9, 7, "America/New_York", "in_person", 24, 0),
    ("managing-bias", 9, 13, 3, "America/Chicago", "virtual", 0, 60),
    ("managing-bias", 15, 9, 7, "America/Denver", "hybrid", 20, 40),
    ("managing-bias", 23, 8, 8, "America/Los_Angeles", "in_person", 30, 0),
    ("managing-bias", 31, 10, 3, "America/Phoenix", "virtual", 0, 80),
    ("de-escalation-fundamentals", 8, 8, 8, "America/Chicago", "in_person", 25, 0),
    ("de-escalation-fundamentals", 19, 12, 4, "America/New_York", "hybrid", 15, 35),
    ("crisis-intervention", 12, 9, 6, "America/Los_Angeles", "hybrid", 18, 30),
    ("crisis-intervention", 27, 14, 3, "America/Denver", "virtual", 0, 50),
    ("active-bystandership", 10, 9, 4, "America/Phoenix", "in_person", 20, 0),
    ("active-bystandership", 24, 11, 3, "America/New_York", "virtual", 0, 100),
]


async def load_demo(
    db: Database, *, today: date | None = None, progress: Callable[[str], None] | None = None
) -> int:
    """Load the demo catalogue; returns how many sessions were added (0 if already loaded)."""
    say = progress or (lambda _line: None)
    today = today or utcnow().date()
    added_courses: set[str] = set()
    for course in COURSES:
        try:
            await catalog.create_course(db, course)
            added_courses.add(course["slug"])
            say(f"course  {course['slug']}")
        except AlreadyExists:
            continue
    added = 0
    for slug, days, hour, hours, zone, mode, seats_here, seats_online in PLAN:
        if slug not in added_courses:
            continue
        local = datetime.combine(today + timedelta(days=days), datetime.min.time()).replace(
            hour=hour, tzinfo=ZoneInfo(zone)
        )
        body: dict[str, Any] = {
            "starts_at": local.replace(tzinfo=None).isoformat(timespec="minutes"),
            "ends_at": (local + timedelta(hours=hours))
            .replace(tzinfo=None)
            .isoformat(timespec="minutes"),
            "timezone": zone,
            "mode": mode,
            "max_per_agency": 6 if mode != "virtual" else None,
        }
        if mode in ("in_person", "hybrid"):
            body["in_person_capacity"] = seats_here
            body["venue"] = VENUES[zone]
        if mode in ("virtual", "hybrid"):
            body["virtual_capacity"] = seats_online
            body["join_url"] = f"https://meet.example.org/ndtn/{slug}-{days}"
            body["platform"] = "Zoom"
        session = await catalog.create_session(db, slug, body)
        added += 1
        say(f"session {slug} #{session.id} {body['starts_at']} {zone} {mode}")
    return added
