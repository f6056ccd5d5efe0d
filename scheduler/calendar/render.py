"""Rendering: public feed events (``METHOD:PUBLISH``) and personal iTIP invites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vCalAddress, vUri

from scheduler import urls
from scheduler.calendar.timezones import add_timezones, zone_of
from scheduler.catalog import CourseView, SessionView
from scheduler.catalog.views import MeetingView
from scheduler.config import Settings
from scheduler.models import CANCELLED, MODE_LABELS, SCHEDULED, WAITLISTED, sees_join_url

PRODID = "-//National De-escalation Training Network//Training Scheduler//EN"
REFRESH = timedelta(hours=1)
# Bump when the rendered form changes, so ETags made by older code stop matching.
RENDER_VERSION = "2"
SEAT_LABELS = {"in_person": "in person", "virtual": "virtual"}
VIRTUAL_LOCATION = "Live virtual session"


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
    return urls.session(settings, session.course_slug, session.id)


def manage_page(settings: Settings, token: str) -> str:
    return urls.manage(settings, token)


def _host(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or "training.invalid"


def display_name(name: str) -> str:
    """A name for a CN parameter that every reader shows as written.

    A double quote cannot appear in a parameter value; RFC 6868 spells it ``^'``, which
    Outlook and vobject show literally, so it becomes an apostrophe instead.
    """
    return name.replace('"', "'")


def feed_uid(session: SessionView, settings: Settings, meeting: MeetingView | None = None) -> str:
    """The feed's UID of one meeting (the first one when not given): stable while it moves."""
    meeting = meeting or session.schedule[0]
    return f"{meeting.uid}@{_host(settings)}"


def invite_uid(
    registration: Any, session: SessionView, settings: Settings, meeting: MeetingView | None = None
) -> str:
    """A registrant's UID of one meeting; migrated sessions keep the old one-block UID."""
    meeting = meeting or session.schedule[0]
    return f"registration-{registration.id}-{meeting.uid}@{_host(settings)}"


def _times(event: Event, session: SessionView, meeting: MeetingView, *, utc: bool = False) -> None:
    zone = UTC if utc else zone_of(session)
    event.add("dtstart", meeting.starts_at.astimezone(zone))
    event.add("dtend", meeting.ends_at.astimezone(zone))


def day_label(session: SessionView, meeting: MeetingView) -> str:
    """ "Day 2 of 3" for a session with several meetings, "" for one meeting or a removed one."""
    day = session.day_of(meeting)
    if day is None or day[1] < 2:
        return ""
    return f"Day {day[0]} of {day[1]}"


def schedule_lines(session: SessionView) -> list[str]:
    """Every meeting on its own line, in the session's zone."""
    zone = zone_of(session)
    schedule = session.schedule
    if len(schedule) < 2:
        return []
    lines = [f"Meets on {len(schedule)} days ({session.contact_hours:g} hours):"]
    for n, meeting in enumerate(schedule, start=1):
        start = meeting.starts_at.astimezone(zone)
        end = meeting.ends_at.astimezone(zone)
        lines.append(f"  Day {n}: {start:%a %d %b %Y, %H:%M}-{end:%H:%M} {start.tzname()}")
    return lines


def _summary(prefix: str, title: str, label: str) -> str:
    return f"{prefix}{title}" + (f" ({label})" if label else "")


# -- feeds -----------------------------------------------------------------------------------


def feed_event(
    session: SessionView,
    course: CourseView,
    settings: Settings,
    meeting: MeetingView | None = None,
) -> Event:
    """The public event of one meeting: no registrant data and no join URL.

    A removed meeting, or any meeting of a cancelled session, is ``STATUS:CANCELLED``; its
    SEQUENCE is the session's plus the meeting's, so moving one day raises only that day's.
    """
    meeting = meeting or session.schedule[0]
    cancelled = session.status == CANCELLED or not meeting.scheduled
    event = Event()
    event.add("uid", feed_uid(session, settings, meeting))
    event.add("dtstamp", session.updated_at.astimezone(UTC))
    event.add("last-modified", session.updated_at.astimezone(UTC))
    event.add("created", session.created_at.astimezone(UTC))
    event.add("sequence", session.sequence + meeting.sequence)
    _times(event, session, meeting)
    # Clients that ignore STATUS (some web calendars) still show the word.
    prefix = "Cancelled: " if cancelled else ""
    event.add("summary", _summary(prefix, course.title, day_label(session, meeting)))
    lines = [
        course.title,
        f"Delivery: {MODE_LABELS.get(session.mode, session.mode)}",
    ]
    if session.status == CANCELLED:
        lines.append("This session was cancelled.")
    elif cancelled:
        lines.append("This day was removed from the session's schedule.")
    else:
        lines.append(f"Seats left: {seats_text(session)}")
        lines.append(f"Register: {session_page(session, settings)}")
    lines += schedule_lines(session)
    taught = [i.name for i in session.instructors if i.public]
    if taught:
        lines.append(f"Instructors: {', '.join(taught)}")
    if course.description:
        lines += ["", course.description]
    event.add("description", "\n".join(lines))
    event.add("location", location_text(session))
    event.add("url", session_page(session, settings))
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PUBLIC")
    return event


def feed_meetings(session: SessionView, now: datetime | None) -> list[MeetingView]:
    """The meetings a feed shows: every scheduled one, and removed ones until they would have
    ended (as long as a cancelled session stays)."""
    if not session.meetings:
        return list(session.schedule)
    return [m for m in session.meetings if m.scheduled or now is None or m.ends_at > now]


def deadline_event(session: SessionView, course: CourseView, settings: Settings) -> Event | None:
    """A "Registration closes" event for a scheduled session with a close time (``?deadlines=1``)."""
    closes = session.registration_closes_at
    if closes is None or session.status != SCHEDULED:
        return None
    event = Event()
    event.add("uid", f"session-{session.id}-registration-closes@{_host(settings)}")
    event.add("dtstamp", session.updated_at.astimezone(UTC))
    event.add("sequence", session.sequence)
    event.add("dtstart", closes.astimezone(zone_of(session)))
    event.add("summary", f"Registration closes: {course.title}")
    event.add("description", f"Register before then: {session_page(session, settings)}")
    event.add("url", session_page(session, settings))
    event.add("transp", "TRANSPARENT")
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
    now: datetime | None = None,
    deadlines: bool = False,
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
    add_timezones(cal, sessions)
    for session in sessions:
        course = courses[session.course_id]
        for meeting in feed_meetings(session, now):
            cal.add_component(feed_event(session, course, settings, meeting))
        if deadlines and (closing := deadline_event(session, course, settings)) is not None:
            cal.add_component(closing)
    return bytes(cal.to_ical())


# -- invites ---------------------------------------------------------------------------------


def invite_method(registration: Any, session: SessionView, *, cancel: bool | None = None) -> str:
    """``CANCEL`` once the registration or the session is cancelled, else ``REQUEST``."""
    if cancel is None:
        cancel = registration.status == CANCELLED or session.status == CANCELLED
    return "CANCEL" if cancel else "REQUEST"


def _calendar(method: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    return cal


def _organizer(settings: Settings) -> vCalAddress:
    organizer_name, organizer_email = parseaddr(settings.mail_from)
    organizer = vCalAddress(f"mailto:{organizer_email or 'no-reply@training.invalid'}")
    if organizer_name:
        organizer.params["CN"] = display_name(organizer_name)
    return organizer


def _registrant_event(
    registration: Any,
    session: SessionView,
    course: CourseView,
    settings: Settings,
    meeting: MeetingView,
    *,
    cancelling: bool,
    utc: bool,
) -> Event:
    waitlisted = registration.status == WAITLISTED and not cancelling
    join_url = (
        session.join_url
        if not cancelling and sees_join_url(registration) and session.join_url
        else None
    )
    sequence = int(session.sequence) + int(registration.sequence) + meeting.sequence
    already_cancelled = (
        registration.status == CANCELLED or session.status == CANCELLED or not meeting.scheduled
    )
    if cancelling and not already_cancelled:
        sequence += 1

    event = Event()
    event.add("uid", invite_uid(registration, session, settings, meeting))
    stamp = session.updated_at
    changed = getattr(registration, "updated_at", None)
    if isinstance(changed, datetime) and changed > stamp:
        stamp = changed
    event.add("dtstamp", stamp.astimezone(UTC))
    event.add("last-modified", stamp.astimezone(UTC))
    event.add("sequence", sequence)
    _times(event, session, meeting, utc=utc)
    event.add("organizer", _organizer(settings))
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
    event.add("summary", _summary(prefix, course.title, day_label(session, meeting)))
    manage = manage_page(settings, registration.token)
    lines = [course.title, f"Your seat: {seat}"]
    if cancelling:
        lines.append(
            "This session was cancelled."
            if session.status == CANCELLED
            else "This day was removed from the session's schedule."
            if not meeting.scheduled
            else "Your registration was cancelled."
        )
    elif waitlisted:
        lines.append("You are on the waitlist; you will be told if a seat frees.")
    if join_url:
        lines.append(f"Join: {join_url}")
    lines += schedule_lines(session)
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
    return event


def registration_invite(
    registration: Any,
    session: SessionView,
    course: CourseView,
    settings: Settings,
    *,
    cancel: bool | None = None,
    meeting: MeetingView | None = None,
) -> bytes:
    """The iTIP message of one meeting (the first when not given) for one registrant.

    registration: a row/obj with .id, .name, .email, .status, .attendance, .sequence, .token.
    METHOD:REQUEST when the registration is confirmed and the session scheduled, METHOD:CANCEL
    when the registration, the session or the meeting is cancelled (or cancel=True). One UID
    per message (RFC 5546); the UID differs from the feed's. SEQUENCE is the session's plus
    the registration's plus the meeting's. Join URL only for a confirmed virtual seat. A
    waitlisted person gets a REQUEST with ``STATUS:TENTATIVE`` and no join URL. ``cancel=True``
    on something not yet cancelled adds one to SEQUENCE so the CANCEL outranks the last
    REQUEST. A CANCEL carries its times in UTC and no VTIMEZONE: Outlook refuses some
    cancellations that carry a TZID (see the package docstring). Raises nothing of its own;
    an unknown time zone name raises ``ZoneInfoNotFoundError``.
    """
    meeting = meeting or session.schedule[0]
    if cancel is None:
        cancel = invite_method(registration, session) == "CANCEL" or not meeting.scheduled
    method = "CANCEL" if cancel else "REQUEST"
    cal = _calendar(method)
    if not cancel:
        add_timezones(cal, [session])
    cal.add_component(
        _registrant_event(
            registration, session, course, settings, meeting, cancelling=cancel, utc=cancel
        )
    )
    return bytes(cal.to_ical())


def registration_calendar(
    registration: Any, session: SessionView, course: CourseView, settings: Settings
) -> tuple[str, bytes]:
    """``(method, bytes)`` of the registrant's own calendar file, to download.

    One meeting: the iTIP invite itself. Several: a ``PUBLISH`` calendar with every meeting
    under the same UIDs as the emailed invites, so importing it and later updates agree.
    """
    if len(session.meetings) < 2:
        method = invite_method(registration, session)
        return method, registration_invite(registration, session, course, settings)
    cancelled = invite_method(registration, session) == "CANCEL"
    cal = _calendar("PUBLISH")
    add_timezones(cal, [session])
    for meeting in session.meetings:
        cal.add_component(
            _registrant_event(
                registration,
                session,
                course,
                settings,
                meeting,
                cancelling=cancelled or not meeting.scheduled,
                utc=False,
            )
        )
    return "PUBLISH", bytes(cal.to_ical())


def instructor_event(
    person: Any,
    session: SessionView,
    course: CourseView,
    settings: Settings,
    meeting: MeetingView,
    *,
    cancelling: bool = False,
    utc: bool = False,
) -> Event:
    """One meeting as its instructor sees it: the venue and, since they teach it, the join URL
    (invariant 7). person: an object with .id, .name, .email."""
    cancelled = cancelling or session.status == CANCELLED or not meeting.scheduled
    event = Event()
    event.add("uid", f"instructor-{person.id}-{meeting.uid}@{_host(settings)}")
    event.add("dtstamp", session.updated_at.astimezone(UTC))
    event.add("last-modified", session.updated_at.astimezone(UTC))
    event.add("sequence", session.sequence + meeting.sequence + (1 if cancelling else 0))
    _times(event, session, meeting, utc=utc)
    event.add("organizer", _organizer(settings))
    attendee = vCalAddress(f"mailto:{person.email}")
    attendee.params["CN"] = display_name(person.name)
    attendee.params["ROLE"] = "CHAIR"
    attendee.params["PARTSTAT"] = "DECLINED" if cancelled else "ACCEPTED"
    attendee.params["RSVP"] = "FALSE"
    event.add("attendee", attendee)
    prefix = "Cancelled: " if cancelled else "Teaching: "
    event.add("summary", _summary(prefix, course.title, day_label(session, meeting)))
    lines = [course.title, f"Delivery: {MODE_LABELS.get(session.mode, session.mode)}"]
    if session.mode != "virtual":
        lines.append(f"Venue: {location_text(session)}")
        if session.venue_room:
            lines.append(f"Room: {session.venue_room}")
    if session.join_url and session.mode != "in_person":
        lines.append(f"Join: {session.join_url}")
    lines += schedule_lines(session)
    event.add("description", "\n".join(lines))
    event.add(
        "location",
        location_text(session)
        if session.mode != "virtual"
        else (session.join_url or VIRTUAL_LOCATION),
    )
    if session.join_url and session.mode != "in_person":
        event.add("url", session.join_url)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    event.add("class", "PRIVATE")
    return event


def instructor_invite(
    person: Any,
    session: SessionView,
    course: CourseView,
    settings: Settings,
    meeting: MeetingView,
    *,
    cancel: bool,
) -> bytes:
    """The iTIP message of one meeting for an instructor (REQUEST, or CANCEL in UTC)."""
    cal = _calendar("CANCEL" if cancel else "REQUEST")
    if not cancel:
        add_timezones(cal, [session])
    cal.add_component(
        instructor_event(person, session, course, settings, meeting, cancelling=cancel, utc=cancel)
    )
    return bytes(cal.to_ical())


def instructor_feed(
    person: Any,
    sessions: Sequence[SessionView],
    courses: dict[int, CourseView],
    settings: Settings,
    *,
    now: datetime | None = None,
) -> bytes:
    """An instructor's private feed: every meeting they teach, with the venue and join URL."""
    cal = _calendar("PUBLISH")
    name = f"Teaching: {person.name}"
    cal.add("name", name)
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval", REFRESH, parameters={"VALUE": "DURATION"})
    cal.add("x-published-ttl", "PT1H")
    add_timezones(cal, sessions)
    for session in sessions:
        for meeting in feed_meetings(session, now):
            cal.add_component(
                instructor_event(person, session, courses[session.course_id], settings, meeting)
            )
    return bytes(cal.to_ical())
