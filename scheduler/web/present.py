"""How courses, sessions and registrations look in JSON and on pages.

Public shapes never carry registrant data or a join URL (invariant 7); the private ones are
chosen explicitly by the callers that may show them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.catalog import CourseView, SessionView
from scheduler.config import Settings


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
        "url": f"{settings.base_url}/courses/{course.slug}",
        "sessions_url": f"{settings.base_url}/api/courses/{course.slug}/sessions",
        "feed_url": feed_urls(settings, course.slug),
    }


def venue_json(session: SessionView) -> dict[str, Any] | None:
    if session.mode == "virtual":
        return None
    return {
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
        "venue": venue_json(session),
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
                "available": pool.available,
            }
            for pool in session.pools
        },
        "url": f"{settings.base_url}/courses/{session.course_slug}#session-{session.id}",
        "registrations_url": f"{settings.base_url}/api/sessions/{session.id}/registrations",
        "sequence": session.sequence,
        "updated_at": session.updated_at.isoformat(),
    }
    if private:
        body["join_url"] = session.join_url
    return body


def manage_url(settings: Settings, token: str) -> str:
    return f"{settings.base_url}/registrations/{token}"
