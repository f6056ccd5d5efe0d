"""iCalendar feeds of sessions and personal iTIP invites for registrants.

What each client reads, and therefore what we write:

- Every start and end carries ``TZID=<IANA name>`` and the calendar carries a VTIMEZONE for each
  name. Google Calendar, Apple Calendar and Thunderbird recognise IANA names and use their own
  rules; Outlook (desktop and web) trusts only the VTIMEZONE. Outlook ignores ``RDATE`` inside a
  VTIMEZONE and wants yearly ``RRULE`` s with ``BYDAY`` (the form Google and Outlook themselves
  export), so the VTIMEZONEs are built here from the zone's transitions as yearly rules instead of
  with icalendar's ``RDATE`` form. ``UTC`` sessions are written with a ``Z`` and no VTIMEZONE.
- ``DTSTAMP``/``LAST-MODIFIED`` come from the session's own change time, never the clock, so one
  database state renders to the same bytes on every instance (which makes strong ETags possible).
- Feeds are ``METHOD:PUBLISH`` with ``NAME``/``X-WR-CALNAME`` and refresh hints
  (``REFRESH-INTERVAL`` for Apple and Thunderbird, ``X-PUBLISHED-TTL`` for Outlook). They carry no
  registrant data and no join URL (invariant 7).
- Invites are iTIP ``REQUEST``/``CANCEL`` with their own UID, so a coordinator who subscribes to a
  feed and also registers does not see the two clash.

The package: ``timezones`` (Outlook-readable VTIMEZONEs), ``render`` (feed events and invites),
``links`` ("add to calendar" links).
"""

from __future__ import annotations

from scheduler.calendar.links import add_to_calendar_links
from scheduler.calendar.render import (
    MODE_LABELS,
    PRODID,
    RENDER_VERSION,
    SEAT_LABELS,
    VIRTUAL_LOCATION,
    day_label,
    display_name,
    feed_event,
    feed_uid,
    instructor_feed,
    instructor_invite,
    invite_method,
    invite_uid,
    location_text,
    manage_page,
    registration_calendar,
    registration_invite,
    render_feed,
    seats_text,
    session_page,
)
from scheduler.calendar.timezones import vtimezone

__all__ = [
    "MODE_LABELS",
    "PRODID",
    "RENDER_VERSION",
    "SEAT_LABELS",
    "VIRTUAL_LOCATION",
    "add_to_calendar_links",
    "day_label",
    "display_name",
    "feed_event",
    "feed_uid",
    "instructor_feed",
    "instructor_invite",
    "invite_method",
    "invite_uid",
    "location_text",
    "manage_page",
    "registration_calendar",
    "registration_invite",
    "render_feed",
    "seats_text",
    "session_page",
    "vtimezone",
]
