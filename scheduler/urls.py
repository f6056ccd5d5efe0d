"""Every absolute link the service hands out, built in one place from ``Settings.base_url``.

Emails, feeds, invites, "add to calendar" links and API bodies all link through these, so a
page that moves is changed here once and a link cannot drift (the email's session link once
lacked the ``#session-N`` anchor that the API and the feeds carried).
"""

from __future__ import annotations

from scheduler.config import Settings


def course(settings: Settings, slug: str) -> str:
    return f"{settings.base_url}/courses/{slug}"


def session(settings: Settings, course_slug: str, session_id: int) -> str:
    """A session on its course page: the anchor opens at that session."""
    return f"{course(settings, course_slug)}#session-{session_id}"


def manage(settings: Settings, token: str) -> str:
    """The registrant's own page: status, cancel, calendar links (the token is the key)."""
    return f"{settings.base_url}/registrations/{token}"


def instructor_feed(settings: Settings, feed_token: str) -> str:
    return f"{settings.base_url}/instructors/{feed_token}/calendar.ics"


def course_sessions_api(settings: Settings, slug: str) -> str:
    return f"{settings.base_url}/api/courses/{slug}/sessions"


def registrations_api(settings: Settings, session_id: int) -> str:
    return f"{settings.base_url}/api/sessions/{session_id}/registrations"
