"""Links that add a registrant's session to a calendar: the invite .ics, Google, Outlook on the web."""

from __future__ import annotations

from datetime import UTC
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

from scheduler.calendar.render import VIRTUAL_LOCATION, location_text, manage_page
from scheduler.catalog import SessionView
from scheduler.config import Settings
from scheduler.models import CANCELLED, sees_join_url


def add_to_calendar_links(
    registration: Any, session: SessionView, settings: Settings
) -> dict[str, str]:
    """ "Add to calendar" links for a registrant: the invite .ics, Google and Outlook on the web.

    The join URL goes into the event text only for a confirmed virtual seat, as in the invite.
    """
    confirmed_virtual = sees_join_url(registration) and session.status != CANCELLED
    join_url = session.join_url if confirmed_virtual else None
    manage = manage_page(settings, registration.token)
    opening = "\n".join(
        line for line in (session.course_title, f"Join: {join_url}" if join_url else "") if line
    )
    # Percent-encoding goes character by character, so the text can be quoted in pieces: the
    # parts every registrant of a session shares come from a cache, and only the token is
    # quoted afresh (this runs on every registration, bench/bench_registration.py).
    base, token = manage[: -len(registration.token)], registration.token
    details = _quoted(f"{opening}\nManage: {base}" if opening else f"Manage: {base}")
    details += quote_plus(token, safe="")
    if registration.attendance == "virtual" or session.mode == "virtual":
        where = join_url or VIRTUAL_LOCATION
    else:
        where = location_text(session, registration.attendance)
    # Google and Outlook links add one event: the first meeting; the .ics link has them all.
    first = session.schedule[0]
    start = first.starts_at.astimezone(UTC)
    end = first.ends_at.astimezone(UTC)
    title, place = _quoted(session.course_title), _quoted(where)
    google = _query(
        ("action", "TEMPLATE"),
        ("text", title),
        ("dates", _quoted(f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}")),
        ("details", details),
        ("location", place),
        ("ctz", _quoted(session.timezone)),
    )
    outlook = _query(
        ("path", _quoted("/calendar/action/compose")),
        ("rru", "addevent"),
        ("subject", title),
        ("startdt", _quoted(start.strftime("%Y-%m-%dT%H:%M:%SZ"))),
        ("enddt", _quoted(end.strftime("%Y-%m-%dT%H:%M:%SZ"))),
        ("body", details),
        ("location", place),
    )
    return {
        "ics": f"{manage}/calendar.ics",
        "google": f"https://calendar.google.com/calendar/render?{google}",
        "outlook": f"https://outlook.office.com/calendar/0/deeplink/compose?{outlook}",
        "outlook_live": f"https://outlook.live.com/calendar/0/deeplink/compose?{outlook}",
    }


@lru_cache(maxsize=4096)
def _quoted(text: str) -> str:
    """``text`` as ``urlencode`` spells a value; titles, places and times recur."""
    return quote_plus(text, safe="")


def _query(*fields: tuple[str, str]) -> str:
    """A query string of already quoted values (the names need no quoting)."""
    return "&".join(f"{name}={value}" for name, value in fields)
