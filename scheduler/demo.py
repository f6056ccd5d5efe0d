"""The demo catalogue: the network's courses with sessions over the coming weeks.

Sessions are placed relative to today, in several US time zones, in person, virtual and
hybrid, so a fresh ``make run`` shows a realistic schedule. Loading twice adds nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert

from notifications.models import utcnow
from scheduler import agencies, booking, catalog, holds
from scheduler.db import Database
from scheduler.errors import AlreadyExists
from scheduler.models import Account, AccountAgency

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


# The directory: (name, state, type, ORI), each ORI in the NCIC form for its state.
AGENCIES: list[tuple[str, str, str, str | None]] = [
    ("Albany Police Department", "NY", "municipal", "NY0010100"),
    ("Chicago Police Department", "IL", "municipal", "ILCPD0000"),
    ("Denver Police Department", "CO", "municipal", "CODPD0000"),
    ("Alameda County Sheriff's Office", "CA", "sheriff", "CA0010000"),
    ("Maricopa County Sheriff's Office", "AZ", "sheriff", "AZ0070000"),
    ("Arizona State University Police", "AZ", "campus", None),
]
# Coordinators (accounts that sign in by emailed link) and the agency each coordinates.
COORDINATORS = [
    ("Casey Morgan", "casey.morgan@albany-pd.example.org", "Albany Police Department"),
    ("Jordan Reyes", "jordan.reyes@chicago-pd.example.org", "Chicago Police Department"),
]
DEMO_COORDINATOR = COORDINATORS[0][1]
# Officers registered through the directory: (name, agency, rank, state certification number).
OFFICERS = [
    ("Sam Rivera", "Albany Police Department", "Patrol Officer", "NY-448812"),
    ("Alex Chen", "Albany Police Department", "Sergeant", "NY-330157"),
    ("Riley Brooks", "Chicago Police Department", "Officer", "IL-1029384"),
    ("Taylor Nguyen", "Denver Police Department", "Corporal", "CO-77120"),
]


async def load_agencies(db: Database, say: Callable[[str], None]) -> None:
    """The agency directory, its coordinators, a few registered officers and one held block
    of seats (Albany PD's, at the first in-person session)."""
    by_name: dict[str, int] = {}
    for name, state, kind, ori in AGENCIES:
        made = await agencies.create_agency(
            db, {"name": name, "state": state, "type": kind, "ori": ori}
        )
        by_name[name] = made.id
        say(f"agency  {name} ({ori or 'no ORI'})")
    async with db.write() as conn:
        for name, email, agency in COORDINATORS:
            account_id = (
                await conn.execute(
                    insert(Account)
                    .values(email=email, name=name, role="coordinator", status="active")
                    .returning(Account.id)
                )
            ).scalar_one()
            await conn.execute(
                insert(AccountAgency).values(account_id=account_id, agency_id=by_name[agency])
            )
            say(f"coordinator {email} ({agency})")
    async with db.read() as conn:
        upcoming = await catalog.load_sessions(conn, upcoming_after=utcnow())
    in_person = [s for s in upcoming if s.pool("in_person") is not None]
    if not in_person:
        return
    first = in_person[0]
    hold = await holds.create_hold(
        db,
        first.id,
        {"agency_id": by_name["Albany Police Department"], "attendance": "in_person", "seats": 4},
    )
    say(f"hold    {hold.seats} seats of session #{first.id} for Albany Police Department")
    for n, (name, agency, rank, post_id) in enumerate(OFFICERS):
        email = name.lower().replace(" ", ".") + "@officers.example.org"
        person = booking.RegistrationInput(
            name=name,
            email=email,
            agency="",
            attendance="in_person",
            rank=rank,
            agency_id=by_name[agency],
            post_id=post_id,
        )
        async with db.read() as conn:
            person = await agencies.complete(conn, person)
        session = in_person[n % len(in_person)]
        await booking.register(db, session.id, person, reminder_offsets=())
        say(f"officer {name} ({agency}) in session #{session.id}")


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
    if added_courses:
        await load_agencies(db, say)
    return added
