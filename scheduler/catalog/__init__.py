"""Courses and training sessions: ``views`` (reads), ``parsing`` (bodies into values) and
``commands`` (create, reschedule, change capacity, cancel)."""

from __future__ import annotations

from scheduler.catalog.commands import (
    cancel_session,
    create_course,
    create_session,
    update_course,
    update_session,
)
from scheduler.catalog.parsing import (
    POOLS_OF_MODE,
    VENUE_FIELDS,
    VENUE_LIMITS,
    parse_course,
    parse_session,
)
from scheduler.catalog.views import (
    CourseView,
    PoolView,
    SessionView,
    get_course,
    get_session,
    list_courses,
    load_sessions,
    roster,
    session_view,
    upcoming_counts,
)

__all__ = [
    "POOLS_OF_MODE",
    "VENUE_FIELDS",
    "VENUE_LIMITS",
    "CourseView",
    "PoolView",
    "SessionView",
    "cancel_session",
    "create_course",
    "create_session",
    "get_course",
    "get_session",
    "list_courses",
    "load_sessions",
    "parse_course",
    "parse_session",
    "roster",
    "session_view",
    "upcoming_counts",
    "update_course",
    "update_session",
]
