"""How courses, sessions and registrations look in JSON and on pages.

Public shapes never carry registrant data or a join URL (invariant 7); the private ones are
chosen explicitly by the callers that may show them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler import urls
from scheduler.catalog import CourseView, SessionView
from scheduler.catalog.directory import Person, Place
from scheduler.config import Settings
from scheduler.models import CANCELLED


def local_iso(instant: datetime | None, zone: ZoneInfo) -> str | None:
    return None if instant is None else instant.astimezone(zone).isoformat()


def feed_urls(settings: Settings, slug: str | None = None) -> dict[str, str]:
    path = f"/courses/{slug}/calendar.ics" if slug else "/calendar.ics"
    https = settings.base_url + path
    webcal = "webcal://" + https.split("://", 1)[1]
    return {"https": https, "webcal": webcal}


def course_json(course: CourseView, settings: Settings) -> dict[str, Any]:
    return {
        "slug": course.slug,
        "title": course.title,
        "description": course.description,
        "audience": course.audience,
        "provider": course.provider,
        "delivery": list(course.delivery),
        "self_paced": course.delivery == ("online",),
        "online_url": course.online_url,
        "completion": {"rule": course.completion_rule, "percent": course.completion_percent},
        "credit_hours": None if course.credit_hours is None else float(course.credit_hours),
        "course_number": course.course_number,
        "attendance_threshold": course.attendance_threshold,
        "url": urls.course(settings, course.slug),
        "sessions_url": urls.course_sessions_api(settings, course.slug),
        "feed_url": feed_urls(settings, course.slug),
    }


def venue_json(session: SessionView) -> dict[str, Any] | None:
    if session.mode == "virtual":
        return None
    return {
        "id": session.venue_id,
        "room": session.venue_room,
        "name": session.venue_name,
        "address": session.venue_address,
        "city": session.venue_city,
        "state": session.venue_state,
        "postal_code": session.venue_postal_code,
    }


def session_json(
    session: SessionView, settings: Settings, now: datetime, *, private: bool = False
) -> dict[str, Any]:
    zone = session.zone
    body: dict[str, Any] = {
        "id": session.id,
        "course": session.course_slug,
        "course_title": session.course_title,
        "starts_at": local_iso(session.starts_at, zone),
        "ends_at": local_iso(session.ends_at, zone),
        "timezone": session.timezone,
        "mode": session.mode,
        "status": session.status,
        "meetings": meetings_json(session),
        "contact_hours": session.contact_hours,
        "venue": venue_json(session),
        "venue_id": session.venue_id,
        "allow_overlap": session.allow_overlap,
        # Public answers name only the instructors who allow it.
        "instructors": [
            {"id": i.id, "name": i.name, "credentials": i.credentials}
            for i in session.instructors
            if private or i.public
        ],
        "platform": session.platform,
        "max_per_agency": session.max_per_agency,
        "registration_closes_at": local_iso(session.registration_closes_at, zone),
        "registration_open": session.is_open(now),
        "seats": {
            pool.attendance: {
                "capacity": pool.capacity,
                "confirmed": pool.confirmed,
                "held": pool.held,
                "waitlisted": pool.waitlisted,
                # A cancelled session offers no seat, whatever its pools still count.
                "available": pool.available if session.status != CANCELLED else 0,
            }
            for pool in session.pools
        },
        "url": urls.session(settings, session.course_slug, session.id),
        "registrations_url": urls.registrations_api(settings, session.id),
        "sequence": session.sequence,
        "updated_at": session.updated_at.isoformat(),
    }
    if private:
        body["join_url"] = session.join_url
    return body


def meetings_json(session: SessionView) -> list[dict[str, Any]]:
    """The meetings that take place, in the session's zone with their offset."""
    zone = session.zone
    return [
        {
            "id": m.id,
            "starts_at": m.starts_at.astimezone(zone).isoformat(),
            "ends_at": m.ends_at.astimezone(zone).isoformat(),
        }
        for m in session.schedule
    ]


def instructor_json(person: Person, settings: Settings) -> dict[str, Any]:
    return {
        "id": person.id,
        "name": person.name,
        "email": person.email,
        "credentials": person.credentials,
        "public": person.public,
        "feed_url": urls.instructor_feed(settings, person.feed_token),
    }


def venue_entry_json(place: Place) -> dict[str, Any]:
    return {
        "id": place.id,
        "name": place.name,
        "address": place.address,
        "city": place.city,
        "state": place.state,
        "postal_code": place.postal_code,
        "room": place.room,
    }


def manage_url(settings: Settings, token: str) -> str:
    return urls.manage(settings, token)
