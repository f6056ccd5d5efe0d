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

Sessions that meet on several days. Each meeting is its own event with its own stable UID
(``meetings.uid``; a session's first meeting keeps the one-block UID ``session-N``, so nothing
changes for one-day sessions or for data migrated from before meetings). The mechanism and why:

- *Not one event with RDATEs.* One UID with the days as ``RDATE`` s (plus ``RECURRENCE-ID``
  overrides for a moved day) is the textbook form, but Outlook drops events that carry ``RDATE``
  without an ``RRULE`` (esrg-knights/Squire#214), and training days follow no rule.
- *One UID per iTIP message.* RFC 5546 lets an iTIP message hold several components only as
  instances of one UID (section 1.4 and the per-method restriction tables in section 3), so one
  REQUEST cannot carry three independent days. Each meeting therefore gets its own iTIP message:
  the first rides in the email that explains the change, each further one in a short email of its
  own (``MailContent.follow_ups``), because mail clients act on one ``text/calendar`` part.
- *Only what changed.* Moving day 2 sends day 2's REQUEST with a higher SEQUENCE (session's plus
  meeting's sequence; RFC 5545 3.8.7.4) under the same UID; removing day 3 sends its CANCEL. A
  change to the whole session (place, zone, mode) re-sends every day. The feed keeps a removed day
  as ``STATUS:CANCELLED`` for as long as a cancelled session stays.
- *CANCEL in UTC.* Outlook 2010/2016 reject some CANCELs whose times carry a ``TZID``
  ("not-supported-calendar-message.ics"; nextcloud/server#12921 strips TZID from cancellations);
  CANCELs are written with UTC times and no VTIMEZONE, which every client reads.
- *Everything first arrives as REQUEST.* Google Calendar removes an event on CANCEL only if it
  first arrived as a REQUEST, not as PUBLISH (Wunderbyte-GmbH/moodle-mod_booking#1107, tested
  with multi-session bookings), so every day's entry is sent as its own REQUEST first. The
  downloadable file of a multi-day registration is PUBLISH with the same UIDs: an import, not an
  iTIP message, that later emailed updates still match.

The package: ``timezones`` (Outlook-readable VTIMEZONEs), ``render`` (feed events and invites),
``links`` ("add to calendar" links).
"""

from __future__ import annotations

from scheduler.calendar.links import add_to_calendar_links
from scheduler.calendar.render import (
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
