"""Links that add a registrant's session to a calendar: the invite .ics, Google, Outlook on the web."""

from __future__ import annotations

from datetime import UTC
from typing import Any
from urllib.parse import urlencode

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
        where = location_text(session, registration.attendance)
    # Google and Outlook links add one event: the first meeting; the .ics link has them all.
    first = session.schedule[0]
    start = first.starts_at.astimezone(UTC)
    end = first.ends_at.astimezone(UTC)
    google = urlencode(
        {
            "action": "TEMPLATE",
            "text": session.course_title,
            "dates": f"{start:%Y%m%dT%H%M%SZ}/{end:%Y%m%dT%H%M%SZ}",
            "details": details,
            "location": where,
            "ctz": session.timezone,
        }
    )
    outlook = urlencode(
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
