"""Feeds and invites read back by three independent parsers, and VTIMEZONEs checked as Outlook reads them.

The instants every parser computes must equal the database's, for sessions in several zones,
some on a daylight-saving transition day; awkward text must come back exactly.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from scheduler import catalog
from scheduler.calendar import vtimezone
from tests.calendar_parsers import (
    with_icalendar,
    with_icalendar_vtimezones,
    with_icaljs,
    with_vobject,
)
from tests.helpers import person

AWKWARD_TITLE = 'Managing Bias: "De-escalation", part 1; Café ☕ 🎉'
AWKWARD_DESCRIPTION = 'First line, with a comma; and a semicolon.\nSecond line: naïve "quotes" 🚓\n\nLast line \\ backslash'
AWKWARD_VENUE = 'Salle "Zéro", Hôtel de Police; 2ᵉ étage 🏢'
AWKWARD_NAME = 'Zoë "Z" O\'Brien-Núñez, Jr.; 🚔'


def next_transition_day(zone_name: str, after_days: int = 3) -> date:
    """The next local date on which ``zone_name`` changes its UTC offset."""
    zone = ZoneInfo(zone_name)
    day = datetime.now(zone).date() + timedelta(days=after_days)
    for _ in range(400):
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        following = datetime.combine(day + timedelta(days=1), datetime.min.time(), zone)
        if midnight.utcoffset() != following.utcoffset():
            return day
        day += timedelta(days=1)
    raise AssertionError(f"{zone_name} has no transition within a year")


def ordinary_day(days: int) -> date:
    return datetime.now(UTC).date() + timedelta(days=days)


def session_on(day: date, start: str, end: str, zone: str, mode: str, **extra: object) -> dict:
    body: dict[str, object] = {
        "starts_at": f"{day.isoformat()}T{start}",
        "ends_at": f"{day.isoformat()}T{end}",
        "timezone": zone,
        "mode": mode,
    }
    if mode in ("in_person", "hybrid"):
        body["in_person_capacity"] = 5
        body["venue"] = {
            "name": AWKWARD_VENUE,
            "address": "12, rue de l'Église; bâtiment B",
            "city": "Springfield",
            "state": "IL",
            "postal_code": "62701",
        }
    if mode in ("virtual", "hybrid"):
        body["virtual_capacity"] = 5
        body["join_url"] = "https://meet.example.org/secret-room-123"
    body.update(extra)
    return body


# -- VTIMEZONEs --------------------------------------------------------------------------------

ZONES = [
    ("America/Chicago", 2026, 2028),
    ("Europe/Berlin", 2026, 2027),
    ("Australia/Sydney", 2026, 2027),
    ("Asia/Tokyo", 2026, 2026),
    ("America/Phoenix", 2026, 2027),
    ("America/Sao_Paulo", 2018, 2020),  # abolished DST in 2019: a rule that stops
    ("Asia/Tehran", 2021, 2023),  # fixed-date rules that no BYDAY describes
]


@pytest.mark.parametrize(("tzid", "first", "last"), ZONES, ids=[z[0] for z in ZONES])
def test_vtimezone_gives_zoneinfo_offsets_even_read_without_rdate(tzid, first, last):
    text = vtimezone(tzid, first, last).to_ical().decode()
    # Outlook ignores RDATE in VTIMEZONEs: read the component the way it does.
    outlook_view = "\r\n".join(line for line in text.splitlines() if not line.startswith("RDATE"))
    component = icalendar.Timezone.from_ical(outlook_view)
    for rule in re.findall(r"^RRULE:(.*)$", text, flags=re.MULTILINE):
        assert "BYDAY=" in rule and "BYMONTH=" in rule, rule
    component["TZID"] = f"Outlook/{tzid}/{first}"
    outlook_tz = component.to_tz()
    zone = ZoneInfo(tzid)
    instant = datetime(first, 1, 1, tzinfo=UTC)
    checked = 0
    while instant < datetime(last + 1, 1, 1, tzinfo=UTC):
        wall = instant.astimezone(zone).replace(tzinfo=None)
        # Skip the repeated hour: a wall time there names two instants in any reader.
        if wall.replace(tzinfo=zone).astimezone(UTC) == instant:
            assert wall.replace(tzinfo=outlook_tz).astimezone(UTC) == instant, (tzid, wall)
            checked += 1
        instant += timedelta(minutes=30)
    assert checked > 17_000 * (last - first + 1)


def test_vtimezone_is_deterministic_and_rrule_shaped_for_us_rules():
    text = vtimezone("America/New_York", 2026, 2027).to_ical().decode()
    assert text == vtimezone("America/New_York", 2026, 2027).to_ical().decode()
    assert "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3" in text
    assert "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11" in text
    assert "DTSTART:20251102T020000" in text  # onset in the offset before the change
    assert "RDATE" not in text and "UNTIL" not in text


# -- the whole catalogue through three parsers -------------------------------------------------


async def build_catalogue(client, headers) -> dict[str, object]:
    response = await client.post(
        "/api/courses",
        json={"slug": "awkward", "title": AWKWARD_TITLE, "description": AWKWARD_DESCRIPTION},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    bodies = [
        # Chicago and Sydney on their next DST transition days, spanning the change.
        session_on(
            next_transition_day("America/Chicago"), "00:30", "04:00", "America/Chicago", "hybrid"
        ),
        session_on(
            next_transition_day("Australia/Sydney"), "01:00", "04:00", "Australia/Sydney", "virtual"
        ),
        session_on(ordinary_day(20), "09:00", "13:00", "Europe/Berlin", "in_person"),
        session_on(ordinary_day(25), "18:00", "21:30", "Asia/Tokyo", "in_person"),
    ]
    sessions = []
    for body in bodies:
        made = await client.post("/api/courses/awkward/sessions", json=body, headers=headers)
        assert made.status_code == 201, made.text
        sessions.append(made.json())
    hybrid = sessions[0]["id"]
    url = f"/api/sessions/{hybrid}/registrations"
    virtual = await client.post(
        url,
        json=dict(person(1, attendance="virtual"), name=AWKWARD_NAME, email="zoe@pd.example.org"),
    )
    in_person = await client.post(url, json=person(2))
    assert virtual.status_code == in_person.status_code == 201
    return {
        "sessions": sessions,
        "tokens": {"virtual": virtual.json()["token"], "in_person": in_person.json()["token"]},
    }


async def test_feeds_and_invites_agree_with_the_database_in_every_parser(
    client, admin_headers, db, tmp_path: Path
):
    made = await build_catalogue(client, admin_headers)
    async with db.read() as conn:
        stored = {s.id: s for s in await catalog.load_sessions(conn)}
    assert len(stored) == 4

    files: dict[str, bytes] = {}
    for name, path in (
        ("course", "/courses/awkward/calendar.ics"),
        ("all", "/calendar.ics"),
        ("invite_virtual", f"/registrations/{made['tokens']['virtual']}/calendar.ics"),
        ("invite_in_person", f"/registrations/{made['tokens']['in_person']}/calendar.ics"),
    ):
        response = await client.get(path)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/calendar; charset=utf-8")
        files[name] = response.content
        (tmp_path / f"{name}.ics").write_bytes(response.content)

    js = dict(zip(files, with_icaljs([tmp_path / f"{n}.ics" for n in files]), strict=True))

    for name, data in files.items():
        parsed = {
            "icalendar": with_icalendar(data),
            "vobject": with_vobject(data),
            "ical.js": js[name]["events"],
        }
        vtz_instants = with_icalendar_vtimezones(data)
        expected_count = 4 if name in ("course", "all") else 1
        for parser, events in parsed.items():
            assert len(events) == expected_count, (name, parser)
            for uid, event in events.items():
                session_id = int(re.search(r"session-(\d+)(?:-meeting-\d+)?@", uid).group(1))
                truth = stored[session_id]
                assert (event["start"], event["end"]) == (truth.starts_at, truth.ends_at), (
                    name,
                    parser,
                    truth.timezone,
                )
                assert event["summary"] == AWKWARD_TITLE, (name, parser)
                if truth.mode != "virtual" and name != "invite_virtual":
                    assert AWKWARD_VENUE in event["location"], (name, parser)
                if name in ("course", "all"):
                    assert AWKWARD_DESCRIPTION in event["description"], (name, parser)
                    assert event["sequence"] == truth.sequence
        for uid, (start, end) in vtz_instants.items():
            session_id = int(re.search(r"session-(\d+)(?:-meeting-\d+)?@", uid).group(1))
            assert (start, end) == (stored[session_id].starts_at, stored[session_id].ends_at)
        assert set(js[name]["timezones"]) <= {s.timezone for s in stored.values()}

    # The DST-day sessions really start and end at different UTC offsets.
    chicago = next(s for s in stored.values() if s.timezone == "America/Chicago")
    zone = ZoneInfo("America/Chicago")
    assert (
        chicago.starts_at.astimezone(zone).utcoffset()
        != chicago.ends_at.astimezone(zone).utcoffset()
    )

    # The invite names its attendee exactly, for every parser.
    invite = files["invite_virtual"]
    for parser, events in (
        ("icalendar", with_icalendar(invite)),
        ("vobject", with_vobject(invite)),
        ("ical.js", js["invite_virtual"]["events"]),
    ):
        (event,) = events.values()
        assert [(a.lower(), cn) for a, cn in event["attendees"]] == [
            ("mailto:zoe@pd.example.org", AWKWARD_NAME.replace('"', "'"))
        ], parser
        assert event["url"] == "https://meet.example.org/secret-room-123", parser
    assert js["invite_virtual"]["method"] == "REQUEST"
    assert js["course"]["name"] == js["course"]["x_wr_calname"] == AWKWARD_TITLE
