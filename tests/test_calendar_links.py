"""The "add to calendar" links, read back with urllib's own query parser.

The links are quoted in pieces (cached per session, the token afresh): whatever the text, what
a calendar reads back must be exactly the fields, and the join URL only for a confirmed virtual
seat.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.calendar import add_to_calendar_links
from scheduler.calendar.render import VIRTUAL_LOCATION
from scheduler.config import Settings

SETTINGS = Settings(base_url="https://training.example.org", secret_key="k" * 40)
START = datetime(2027, 3, 4, 14, 0, tzinfo=UTC)
texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


def fields(link: str) -> dict[str, str]:
    parsed = parse_qs(urlsplit(link).query, keep_blank_values=True, strict_parsing=True)
    assert all(len(values) == 1 for values in parsed.values()), parsed
    return {name: values[0] for name, values in parsed.items()}


@settings(max_examples=150, deadline=None)
@given(
    title=texts,
    venue=texts,
    join=st.sampled_from(["https://zoom.example/j/1?pwd=a&b=c#x", "https://meet.example/é ü"]),
    mode_and_seat=st.sampled_from(
        [
            ("in_person", "in_person"),
            ("virtual", "virtual"),
            ("hybrid", "in_person"),
            ("hybrid", "virtual"),
        ]
    ),
    status=st.sampled_from(["confirmed", "waitlisted"]),
)
def test_links_carry_exactly_the_fields(
    title: str, venue: str, join: str, mode_and_seat: tuple[str, str], status: str
) -> None:
    mode, attendance = mode_and_seat
    session = SimpleNamespace(
        status="scheduled",
        join_url=join,
        course_title=title,
        mode=mode,
        venue_name=venue,
        venue_address=None,
        venue_city="Springfield",
        venue_state="IL",
        venue_postal_code=None,
        schedule=[SimpleNamespace(starts_at=START, ends_at=START + timedelta(hours=4))],
        timezone="America/Chicago",
    )
    token = secrets.token_urlsafe(24)
    seat = SimpleNamespace(token=token, attendance=attendance, status=status)
    links = add_to_calendar_links(seat, session, SETTINGS)

    manage = f"https://training.example.org/registrations/{token}"
    sees_join = status == "confirmed" and attendance == "virtual"
    lines = [title, f"Join: {join}" if sees_join else "", f"Manage: {manage}"]
    details = "\n".join(line for line in lines if line)
    virtual = attendance == "virtual"
    place = ", ".join(p for p in (venue, "Springfield", "IL") if p)
    where = (join if sees_join else VIRTUAL_LOCATION) if virtual else place

    google = fields(links["google"])
    assert google == {
        "action": "TEMPLATE",
        "text": title,
        "dates": "20270304T140000Z/20270304T180000Z",
        "details": details,
        "location": where,
        "ctz": "America/Chicago",
    }
    outlook = fields(links["outlook"])
    assert outlook == {
        "path": "/calendar/action/compose",
        "rru": "addevent",
        "subject": title,
        "startdt": "2027-03-04T14:00:00Z",
        "enddt": "2027-03-04T18:00:00Z",
        "body": details,
        "location": where,
    }
    assert fields(links["outlook_live"]) == outlook
    assert join not in links["google"]  # the join URL is always quoted, never raw
    assert links["ics"] == f"{manage}/calendar.ics"
