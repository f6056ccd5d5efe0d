"""Admin search: registrations across every session by name, email, agency or POST number.

A plain case-insensitive substring match (``LIKE`` on lower-cased columns, the same on SQLite
and PostgreSQL), newest session first. The term's own ``%`` and ``_`` are escaped so they match
themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from scheduler.models import Course, Registration, TrainingSession

MAX_RESULTS = 100
# The columns a search looks in. The officer's certification (POST) number arrives with the
# agencies work (issue #13) as ``registrations.post_id``; it is searched as soon as it exists.
SEARCHED = ("name", "email", "agency", "post_id")


def with_session(*more: Any) -> Select[Any]:
    """Registrations joined to their session and course: the registration's columns with
    ``course_title``, ``course_slug``, ``starts_at``, ``ends_at``, ``timezone``, and ``more``."""
    return (
        select(
            Registration,
            Course.title.label("course_title"),
            Course.slug.label("course_slug"),
            TrainingSession.starts_at.label("starts_at"),
            TrainingSession.ends_at.label("ends_at"),
            TrainingSession.timezone.label("timezone"),
            *more,
        )
        .join(TrainingSession, TrainingSession.id == Registration.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
    )


def searched_columns() -> list[Any]:
    table = Registration.__table__
    return [table.c[name] for name in SEARCHED if name in table.c]


def _pattern(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def search_registrations(
    conn: AsyncConnection, term: str, *, limit: int = MAX_RESULTS
) -> list[Any]:
    """Registrations whose name, email, agency or POST number contains ``term``, any case.

    Rows carry the registration's columns plus ``course_title``, ``course_slug``,
    ``starts_at``, ``ends_at``, ``timezone`` and ``session_status``; at most ``limit``.
    """
    pattern = _pattern(term.strip())
    matches = [func.lower(column).like(pattern, escape="\\") for column in searched_columns()]
    stmt = (
        with_session(TrainingSession.status.label("session_status"))
        .where(or_(*matches))
        .order_by(TrainingSession.starts_at.desc(), Registration.id)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).all())
