"""Links that add a registrant's session to a calendar: the invite .ics, Google, Outlook on the web."""

from __future__ import annotations

import re
from datetime import UTC
from typing import Any

from scheduler.calendar.render import VIRTUAL_LOCATION, location_text, manage_page
from scheduler.catalog import SessionView
from scheduler.config import Settings

# What quote_plus leaves as it is: letters, digits and "_.-~"; a space becomes "+".
_FORM_SAFE = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~"
_FORM_ASCII = {c: "+" if c == 32 else f"%{c:02X}" for c in range(128) if chr(c) not in _FORM_SAFE}
_FORM_UNSAFE = re.compile(r"[^A-Za-z0-9_.\-~ ]")


def _quote_plus(text: str) -> str:
    # urllib's quote_plus walks every byte in Python, a good part of a registration's CPU;
    # str.translate does ASCII text in C, and other text escapes only what needs it.
    if text.isascii():
        return text.translate(_FORM_ASCII)
    escaped = _FORM_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), text)
    return escaped.replace(" ", "+")


def form_encode(fields: dict[str, str]) -> str:
    """``urllib.parse.urlencode(fields)``, for string values, without its per-byte loop."""
    return "&".join(f"{_quote_plus(key)}={_quote_plus(value)}" for key, value in fields.items())


def add_to_calendar_links(
    registration: Any, session: SessionView, settings: Settings
) -> dict[str, str]:
    """ "Add to calendar" links for a registrant: the invite .ics, Google and Outlook on the web.

    The join URL goes into the event text only for a confirmed virtual seat, as in the invite.
    """
    confirmed_virtual = registration.status == "confirmed" and registration.attendance == "virtual"
    join_url = session.join_url if confirmed_virtual else None
    manage = manage_page(settings, registration.token)
    details = "\n".join(
        line
        for line in (
            session.course_title,
            f"Join: {join_url}" if join_url else "",
            f"Manage: {manage}",
        )
        if line
    )
    if registration.attendance == "virtual" or session.mode == "virtual":
        where = join_url or VIRTUAL_LOCATION
    else:
        where = location_text(session)
    start = session.starts_at.astimezone(UTC)
    end = session.ends_at.astimezone(UTC)
    google = form_encode(
        {
            "action": "TEMPLATE",
            "text": session.course_title,
            "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
            "details": details,
            "location": where,
            "ctz": session.timezone,
        }
    )
    outlook = form_encode(
        {
            "path": "/calendar/action/compose",
            "rru": "addevent",
            "subject": session.course_title,
            "startdt": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "enddt": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "body": details,
            "location": where,
        }
    )
    return {
        "ics": f"{manage}/calendar.ics",
        "google": f"https://calendar.google.com/calendar/render?{google}",
        "outlook": f"https://outlook.office.com/calendar/0/deeplink/compose?{outlook}",
        "outlook_live": f"https://outlook.live.com/calendar/0/deeplink/compose?{outlook}",
    }
