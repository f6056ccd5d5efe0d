"""Rendering: public feed events (``METHOD:PUBLISH``) and personal iTIP invites."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from icalendar import Calendar, Event, vCalAddress, vUri

from scheduler.calendar.timezones import add_timezones, zone_of
from scheduler.catalog import CourseView, SessionView
from scheduler.config import Settings

PRODID = "-//National De-escalation Training Network//Training Scheduler//EN"
REFRESH = timedelta(hours=1)
# Bump when the rendered form changes, so ETags made by older code stop matching.
RENDER_VERSION = "1"
MODE_LABELS = {
    "in_person": "In person",
    "virtual": "Live virtual",
    "hybrid": "Hybrid (in person or live virtual)",
}
SEAT_LABELS = {"in_person": "in person", "virtual": "virtual"}
VIRTUAL_LOCATION = "Live virtual session"


# -- text ------------------------------------------------------------------------------------


def location_text(session: SessionView) -> str:
    """Venue and address for in-person seats, or the words for a live virtual session."""
    if session.mode == "virtual":
        return VIRTUAL_LOCATION
    region = " ".join(p for p in (session.venue_state, session.venue_postal_code) if p)
    place = ", ".join(
        p for p in (session.venue_name, session.venue_address, session.venue_city, region) if p
    )
    if session.mode == "hybrid":
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
    zone = zone_of(session)
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
    add_timezones(cal, sessions)
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
    add_timezones(cal, [session])

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
        event.add("location", location_text(session))
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
