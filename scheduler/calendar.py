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
"""

from __future__ import annotations

import calendar as stdlib_calendar
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from email.utils import parseaddr
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from icalendar import (
    Calendar,
    Event,
    Timezone,
    TimezoneDaylight,
    TimezoneStandard,
    vCalAddress,
    vUri,
)

from scheduler.catalog import CourseView, SessionView
from scheduler.config import Settings

PRODID = "-//National De-escalation Training Network//Training Scheduler//EN"
REFRESH = timedelta(hours=1)
# Bump when the rendered form changes, so ETags made by older code stop matching.
RENDER_VERSION = "1"
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/UCT", "UCT", "Etc/Zulu", "Zulu", "Etc/GMT"})
_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
MODE_LABELS = {
    "in_person": "In person",
    "virtual": "Live virtual",
    "hybrid": "Hybrid (in person or live virtual)",
}
SEAT_LABELS = {"in_person": "in person", "virtual": "virtual"}
VIRTUAL_LOCATION = "Live virtual session"


# -- time zones ------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Transition:
    at: datetime  # the UTC instant
    before: timedelta
    after: timedelta
    dst: bool
    name: str

    @property
    def onset(self) -> datetime:
        """Local wall-clock time of the change, read in the offset before it (RFC 5545)."""
        return (self.at + self.before).replace(tzinfo=None)


def _state(zone: tzinfo, instant: datetime) -> tuple[timedelta, bool, str]:
    local = instant.astimezone(zone)
    return (
        local.utcoffset() or timedelta(0),
        bool(local.dst()),
        local.tzname() or "",
    )


def _transitions(zone: tzinfo, start: datetime, end: datetime) -> list[_Transition]:
    """Every change of offset, DST flag or abbreviation in ``[start, end)``, to the minute."""
    found: list[_Transition] = []
    step = 12 * 60  # minutes; no zone changes twice within half a day

    def at(minute: int) -> datetime:
        return start + timedelta(minutes=minute)

    here, state = 0, _state(zone, start)
    total = int((end - start).total_seconds() // 60)
    while here < total:
        there = here + step
        next_state = _state(zone, at(there))
        if next_state != state:
            low, high = here, there
            while high - low > 1:
                mid = (low + high) // 2
                if _state(zone, at(mid)) == state:
                    low = mid
                else:
                    high = mid
            after = _state(zone, at(high))
            found.append(_Transition(at(high), state[0], after[0], after[1], after[2]))
            next_state = after
        here, state = there, next_state
    return found


def _rule_days(onset: datetime) -> set[str]:
    """The BYDAY forms that name this date: ``2SU`` and, for a last weekday, ``-1SU``."""
    weekday = _WEEKDAYS[onset.weekday()]
    forms = {f"{(onset.day - 1) // 7 + 1}{weekday}"}
    if onset.day + 7 > stdlib_calendar.monthrange(onset.year, onset.month)[1]:
        forms.add(f"-1{weekday}")
    return forms


def _observance(transition: _Transition, onset: datetime) -> TimezoneStandard | TimezoneDaylight:
    part = TimezoneDaylight() if transition.dst else TimezoneStandard()
    part.add("dtstart", onset)
    part.add("tzoffsetfrom", transition.before)
    part.add("tzoffsetto", transition.after)
    if transition.name:
        part.add("tzname", transition.name)
    return part


@lru_cache(maxsize=512)
def vtimezone(tzid: str, first_year: int, last_year: int) -> Timezone:
    """A VTIMEZONE for ``tzid`` that is right for any instant in ``first_year..last_year``.

    Observances are yearly ``RRULE`` s with ``BYDAY`` (what Outlook reads), one per run of years
    in which the zone followed the same rule; a rule that stops inside the range gets ``UNTIL``.
    Pure and cached: the same arguments always give the same component, which callers must not
    change. Raises ``ZoneInfoNotFoundError`` for an unknown zone.
    """
    zone = ZoneInfo(tzid)
    scan_from = datetime(first_year - 1, 1, 1, tzinfo=UTC)
    scan_to = datetime(last_year + 2, 1, 1, tzinfo=UTC)
    changes = _transitions(zone, scan_from, scan_to)
    component = Timezone()
    component.add("tzid", tzid)
    covered_from = datetime(first_year, 1, 1, tzinfo=UTC)
    if not changes or changes[0].at > covered_from:
        offset, dst, name = _state(zone, scan_from)
        start = datetime(1970, 1, 1) if not changes else scan_from.replace(tzinfo=None)
        fixed = _Transition(scan_from, offset, offset, dst, name)
        component.add_component(_observance(fixed, start))

    # Group the changes into runs that one yearly rule describes.
    runs: list[tuple[list[_Transition], set[str]]] = []
    open_run: dict[tuple[Any, ...], int] = {}
    for change in changes:
        onset = change.onset
        key = (change.dst, change.before, change.after, change.name, onset.month, onset.time())
        forms = _rule_days(onset)
        index = open_run.get(key)
        if index is not None:
            run, common = runs[index]
            if run[-1].onset.year == onset.year - 1 and common & forms:
                run.append(change)
                runs[index] = (run, common & forms)
                continue
        open_run[key] = len(runs)
        runs.append(([change], forms))

    last_scanned_year = scan_to.year - 1
    for run, forms in runs:
        first = run[0]
        part = _observance(first, first.onset)
        if len(run) > 1 or run[-1].onset.year == last_scanned_year:
            rule: dict[str, Any] = {
                "freq": "yearly",
                "bymonth": first.onset.month,
                # Prefer "last Sunday" where it fits: it stays right in years with five Sundays.
                "byday": sorted(forms, key=lambda f: (not f.startswith("-"), f))[0],
            }
            if run[-1].onset.year != last_scanned_year:
                rule["until"] = run[-1].at
            if len(run) > 1 or "until" not in rule:
                part.add("rrule", rule)
        component.add_component(part)
    return component


def _zone_of(session: SessionView) -> tzinfo:
    return UTC if session.timezone in _UTC_NAMES else ZoneInfo(session.timezone)


def _add_timezones(cal: Calendar, sessions: Iterable[SessionView]) -> None:
    years: dict[str, tuple[int, int]] = {}
    for session in sessions:
        if session.timezone in _UTC_NAMES:
            continue
        zone = ZoneInfo(session.timezone)
        low = session.starts_at.astimezone(zone).year
        high = session.ends_at.astimezone(zone).year
        seen = years.get(session.timezone)
        years[session.timezone] = (min(seen[0], low), max(seen[1], high)) if seen else (low, high)
    for tzid in sorted(years):
        cal.add_component(vtimezone(tzid, *years[tzid]))


# -- text ------------------------------------------------------------------------------------


def location_text(session: SessionView, seat: str | None = None) -> str:
    """Venue and address for in-person seats, or the words for a live virtual session.

    With ``seat`` (a registrant's attendance) a hybrid session is only the place of that seat.
    """
    if session.mode == "virtual" or seat == "virtual":
        return VIRTUAL_LOCATION
    region = " ".join(p for p in (session.venue_state, session.venue_postal_code) if p)
    place = ", ".join(
        p for p in (session.venue_name, session.venue_address, session.venue_city, region) if p
    )
    if session.mode == "hybrid" and seat is None:
        return f"{place} (or {VIRTUAL_LOCATION.lower()})" if place else VIRTUAL_LOCATION
    return place


def seats_text(session: SessionView) -> str:
    parts = []
    for pool in session.pools:
        label = SEAT_LABELS.get(pool.attendance, pool.attendance)
        if pool.available:
            parts.append(f"{label}: {pool.available} of {pool.capacity} left")
        else:
            parts.append(f"{label}: full, waitlist open")
    return "; ".join(parts) or "none"


def session_page(session: SessionView, settings: Settings) -> str:
    return f"{settings.base_url}/courses/{session.course_slug}#session-{session.id}"


def manage_page(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/registrations/{token}"


def _host(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or "training.invalid"


def display_name(name: str) -> str:
    """A name for a CN parameter that every reader shows as written.

    A double quote cannot appear in a parameter value; RFC 6868 spells it ``^'``, which
    Outlook and vobject show literally, so it becomes an apostrophe instead.
    """
    return name.replace('"', "'")


def feed_uid(session: SessionView, settings: Settings) -> str:
    return f"session-{session.id}@{_host(settings)}"


def invite_uid(registration: Any, session: SessionView, settings: Settings) -> str:
    return f"registration-{registration.id}-session-{session.id}@{_host(settings)}"


def _times(event: Event, session: SessionView) -> None:
    zone = _zone_of(session)
    event.add("dtstart", session.starts_at.astimezone(zone))
    event.add("dtend", session.ends_at.astimezone(zone))


# -- feeds -----------------------------------------------------------------------------------


def feed_event(session: SessionView, course: CourseView, settings: Settings) -> Event:
    """The public event for one session: no registrant data and no join URL."""
    cancelled = session.status == "cancelled"
    event = Event()
    event.add("uid", feed_uid(session, settings))
    event.add("dtstamp", session.updated_at.astimezone(UTC))
    event.add("last-modified", session.updated_at.astimezone(UTC))
    event.add("created", session.created_at.astimezone(UTC))
    event.add("sequence", session.sequence)
    _times(event, session)
    # Clients that ignore STATUS (some web calendars) still show the word.
    prefix = "Cancelled: " if cancelled else ""
    event.add("summary", f"{prefix}{course.title}")
    lines = [
        course.title,
        f"Delivery: {MODE_LABELS.get(session.mode, session.mode)}",
    ]
    if cancelled:
        lines.append("This session was cancelled.")
    else:
        lines.append(f"Seats left: {seats_text(session)}")
        lines.append(f"Register: {session_page(session, settings)}")
    if course.description:
        lines += ["", course.description]
    event.add("description", "\n".join(lines))
    event.add("location", location_text(session))
    event.add("url", session_page(session, settings))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PUBLIC")
    return event


def render_feed(
    sessions: Sequence[SessionView],
    courses: dict[int, CourseView],
    settings: Settings,
    *,
    name: str,
    description: str,
    source: str,
) -> bytes:
    """A subscription calendar of ``sessions`` (in the order given); always a valid calendar.

    ``courses`` maps course ids to their views. Raises ``KeyError`` if a session's course is
    missing from it.
    """
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("description", description)
    cal.add("x-wr-caldesc", description)
    cal.add("source", vUri(source), parameters={"VALUE": "URI"})
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    _add_timezones(cal, sessions)
    for session in sessions:
        cal.add_component(feed_event(session, courses[session.course_id], settings))
    return bytes(cal.to_ical())


# -- invites ---------------------------------------------------------------------------------


def invite_method(registration: Any, session: SessionView, *, cancel: bool | None = None) -> str:
    """``CANCEL`` once the registration or the session is cancelled, else ``REQUEST``."""
    if cancel is None:
        cancel = registration.status == "cancelled" or session.status == "cancelled"
    return "CANCEL" if cancel else "REQUEST"


def registration_invite(
    registration: Any,
    session: SessionView,
    course: CourseView,
    settings: Settings,
    *,
    cancel: bool | None = None,
) -> bytes:
    """iTIP invite for one registrant. registration: a row/obj with .id, .name, .email, .status, .attendance, .sequence, .token.

    METHOD:REQUEST when the registration is confirmed and the session scheduled, METHOD:CANCEL
    when the registration or the session is cancelled (or cancel=True). UID differs from the
    feed's UID for the session; SEQUENCE rises with both session.sequence and
    registration.sequence. Join URL only for a confirmed virtual seat. A waitlisted person gets
    a REQUEST with ``STATUS:TENTATIVE`` and no join URL. ``cancel=True`` on a registration that
    is not yet cancelled adds one to SEQUENCE so the CANCEL outranks the last REQUEST. Raises
    nothing of its own; an unknown time zone name raises ``ZoneInfoNotFoundError``.
    """
    method = invite_method(registration, session, cancel=cancel)
    cancelling = method == "CANCEL"
    confirmed = registration.status == "confirmed" and not cancelling
    waitlisted = registration.status == "waitlisted" and not cancelling
    join_url = (
        session.join_url
        if confirmed and registration.attendance == "virtual" and session.join_url
        else None
    )
    sequence = int(session.sequence) + int(registration.sequence)
    already_cancelled = registration.status == "cancelled" or session.status == "cancelled"
    if cancelling and not already_cancelled:
        sequence += 1

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    _add_timezones(cal, [session])

    event = Event()
    event.add("uid", invite_uid(registration, session, settings))
    stamp = session.updated_at
    changed = getattr(registration, "updated_at", None)
    if isinstance(changed, datetime) and changed > stamp:
        stamp = changed
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("last-modified", stamp.astimezone(UTC))
    event.add("sequence", sequence)
    _times(event, session)
    organizer_name, organizer_email = parseaddr(settings.mail_from)
    organizer = vCalAddress(f"mailto:{organizer_email or 'no-reply@training.invalid'}")
    if organizer_name:
        organizer.params["CN"] = display_name(organizer_name)
    event.add("organizer", organizer)
    attendee = vCalAddress(f"mailto:{registration.email}")
    attendee.params["CN"] = display_name(registration.name)
    attendee.params["CUTYPE"] = "INDIVIDUAL"
    attendee.params["ROLE"] = "REQ-PARTICIPANT"
    attendee.params["PARTSTAT"] = (
        "DECLINED" if cancelling else "TENTATIVE" if waitlisted else "ACCEPTED"
    )
    attendee.params["RSVP"] = "FALSE"
    event.add("attendee", attendee)

    seat = SEAT_LABELS.get(registration.attendance, registration.attendance)
    prefix = "Cancelled: " if cancelling else "Waitlisted: " if waitlisted else ""
    event.add("summary", f"{prefix}{course.title}")
    manage = manage_page(settings, registration.token)
    lines = [course.title, f"Your seat: {seat}"]
    if cancelling:
        lines.append(
            "This session was cancelled."
            if session.status == "cancelled"
            else "Your registration was cancelled."
        )
    elif waitlisted:
        lines.append("You are on the waitlist; you will be told if a seat frees.")
    if join_url:
        lines.append(f"Join: {join_url}")
    lines.append(f"Manage or cancel: {manage}")
    event.add("description", "\n".join(lines))
    if registration.attendance == "virtual" or session.mode == "virtual":
        event.add("location", join_url or VIRTUAL_LOCATION)
    else:
        event.add("location", location_text(session, registration.attendance))
    if join_url:
        event.add("url", join_url)
        event.add(
            "conference",
            vUri(join_url),
            parameters={"VALUE": "URI", "FEATURE": "AUDIO,VIDEO", "LABEL": "Join the session"},
        )
    else:
        event.add("url", manage)
    event.add("status", "CANCELLED" if cancelling else "TENTATIVE" if waitlisted else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PRIVATE")
    cal.add_component(event)
    return bytes(cal.to_ical())


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
    confirmed_virtual = (
        registration.status == "confirmed"
        and registration.attendance == "virtual"
        and session.status != "cancelled"
    )
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


__all__ = [
    "RENDER_VERSION",
    "add_to_calendar_links",
    "feed_event",
    "feed_uid",
    "invite_method",
    "invite_uid",
    "location_text",
    "registration_invite",
    "render_feed",
    "vtimezone",
]
