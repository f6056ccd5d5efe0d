"""Certificates of completion: issue, reissue and revoke them from a session's completions.

:func:`sync_session` runs inside the finalize (or amendment) transaction, after the
``completions`` rows are written: every completer holds exactly one valid certificate whose
printed facts are current, and nobody else holds one (invariant 9). A certificate row keeps the
facts it prints and the exact PDF bytes issued; its email (kind ``certificate``, the PDF
attached) is queued in the same transaction, so it goes out once the change commits, and once.

Verification codes are 80 random bits in base32 (``7K3M-Q9XA-2BCD-EF4G``); :func:`find_by_code`
does the same indexed lookup for a malformed code as for a well-formed one, so neither the
answer nor its timing tells the two apart.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.messages import Attachment, MailContent, MailPlan, Skip
from notifications.outbox import OutboxMessage, enqueue_many
from scheduler.config import Settings
from scheduler.documents import CertificateFacts, certificate_pdf
from scheduler.errors import NotFound
from scheduler.models import (
    CANCELLED,
    SCHEDULED,
    Agency,
    Certificate,
    Completion,
    Course,
    Instructor,
    Meeting,
    Registration,
    SessionInstructor,
    TrainingSession,
)

__all__ = [
    "CERTIFICATE",
    "REVOKED",
    "VALID",
    "Issuer",
    "SyncResult",
    "canonical_code",
    "certificate_mail",
    "find_by_code",
    "format_date",
    "hours_text",
    "meeting_days",
    "new_code",
    "printed_facts",
    "sync_session",
]

CERTIFICATE = "certificate"
VALID = "valid"
REVOKED = "revoked"
# The facts a certificate prints; a change to any of them reissues it.
PRINTED = (
    "name",
    "post_id",
    "post_state",
    "agency",
    "course_title",
    "course_number",
    "provider",
    "instructors",
    "meeting_dates",
    "credit_hours",
    "completed_on",
)
_CODE_BYTES = 10  # 80 bits, 16 base32 characters
_CODE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
# Looked up in place of a malformed code: well-formed in shape, but "0" is not a base32 letter,
# so no certificate can ever carry it.
_NEVER_ISSUED = "0000-0000-0000-0000"
# Certificates rendered per trip to the worker thread (keeps the event loop answering).
_RENDER_BATCH = 16


@dataclass(frozen=True)
class Issuer:
    """Who issues, and where certificates are checked: from the settings."""

    base_url: str
    provider: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Issuer:
        return cls(base_url=settings.base_url.rstrip("/"), provider=settings.provider_name)

    def verify_url(self, code: str) -> str:
        return f"{self.base_url}/verify/{code}"


@dataclass(frozen=True)
class SyncResult:
    """What :func:`sync_session` changed: counts, and the certificate ids behind them."""

    issued: int = 0
    revoked: int = 0
    reissued: int = 0
    issued_ids: tuple[int, ...] = ()
    revoked_ids: tuple[int, ...] = ()
    reissued_ids: tuple[int, ...] = field(default=())  # the new certificates


def new_code() -> str:
    """A fresh verification code: 80 bits from ``secrets``, base32 in four groups of four."""
    raw = base64.b32encode(secrets.token_bytes(_CODE_BYTES)).decode("ascii")
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def canonical_code(text: str) -> str | None:
    """``text`` as a stored code (upper case, grouped), or None when it cannot be one.

    Readers type codes from paper: case, spaces and hyphens are forgiven.
    """
    if len(text) > 64:
        return None
    raw = "".join(c for c in text.upper() if c not in "- ")
    if len(raw) != 16 or not set(raw) <= _CODE_CHARS:
        return None
    return "-".join(raw[i : i + 4] for i in range(0, 16, 4))


async def find_by_code(conn: AsyncConnection, text: str) -> Row[Any] | None:
    """The certificate with code ``text`` (any status), with its holder's name; None if unknown.

    A malformed code runs the same query, for a code that is never issued, so a malformed and
    an unknown code cost the same and answer the same.
    """
    code = canonical_code(text) or _NEVER_ISSUED
    return (
        await conn.execute(
            select(
                Certificate.id,
                Certificate.code,
                Certificate.status,
                Certificate.facts,
                Certificate.issued_at,
                Certificate.revoked_at,
            ).where(Certificate.code == code)
        )
    ).first()


def format_date(value: str | date) -> str:
    """``November 4, 2026``: a date as printed on certificates and pages."""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day:%B} {day.day}, {day.year}"


def _short_date(value: str) -> str:
    day = date.fromisoformat(value)
    return f"{day:%b} {day.day}, {day.year}"


def hours_text(value: Decimal) -> str:
    """``16``, ``7.5``, ``1.25``: no trailing zeros, never an exponent."""
    text = format(value.quantize(Decimal("0.01")), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def printed_facts(facts: dict[str, Any], *, code: str, issuer_url: str) -> CertificateFacts:
    """The document's facts from a stored ``facts`` snapshot."""
    return CertificateFacts(
        name=facts["name"],
        post_id=facts["post_id"],
        post_state=facts["post_state"],
        agency=facts["agency"],
        course_title=facts["course_title"],
        course_number=facts["course_number"],
        provider=facts["provider"],
        instructors=list(facts["instructors"]),
        meeting_dates=[_short_date(d) for d in facts["meeting_dates"]],
        credit_hours=facts["credit_hours"],
        completed_on=format_date(facts["completed_on"]),
        code=code,
        verify_url=issuer_url,
    )


async def sync_session(
    conn: AsyncConnection,
    session_id: int,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    issuer: Issuer | None = None,
) -> SyncResult:
    """Make the session's certificates match its ``completions``, on the caller's transaction.

    Issues a certificate (row, PDF, one ``certificate`` email) to each completer without a
    valid one; revokes the valid certificate of anyone no longer completed; reissues (revokes,
    then issues with a new code and a new email) when the facts printed would change.
    ``reason`` is kept as the revocation reason (a default says why when None). ``issuer``
    defaults to the settings from the environment; callers that hold settings pass them.
    Raises ``NotFound`` for an unknown session.
    """
    issuer = issuer or Issuer.from_settings(Settings.from_env())
    current, emails = await _current_facts(conn, session_id, issuer)
    valid = {
        row.registration_id: row
        for row in (
            await conn.execute(
                select(Certificate.id, Certificate.registration_id, Certificate.facts).where(
                    Certificate.session_id == session_id, Certificate.status == VALID
                )
            )
        ).all()
    }
    to_issue: list[tuple[int, dict[str, Any], int | None]] = []  # registration, facts, replaces
    to_revoke: dict[int, str] = {}  # certificate id -> reason
    for registration_id, facts in current.items():
        held = valid.get(registration_id)
        if held is None:
            to_issue.append((registration_id, facts, None))
        elif _printed(held.facts) != _printed(facts):
            to_revoke[held.id] = reason or "replaced: the facts printed on it changed"
            to_issue.append((registration_id, facts, held.id))
    for registration_id, held in valid.items():
        if registration_id not in current:
            to_revoke[held.id] = reason or "the course is no longer completed"

    for certificate_id, why in to_revoke.items():
        await conn.execute(
            update(Certificate)
            .where(Certificate.id == certificate_id, Certificate.status == VALID)
            .values(status=REVOKED, revoked_at=now, revoked_reason=why)
        )
    new_ids = await _issue(conn, session_id, to_issue, emails, issuer, now)
    issued = tuple(i for i, (_, _, old) in zip(new_ids, to_issue, strict=True) if old is None)
    reissued = tuple(i for i, (_, _, old) in zip(new_ids, to_issue, strict=True) if old)
    # A replaced certificate is counted with its replacement, as reissued.
    revoked_only = tuple(held.id for r, held in valid.items() if r not in current)
    return SyncResult(
        issued=len(issued),
        revoked=len(revoked_only),
        reissued=len(reissued),
        issued_ids=issued,
        revoked_ids=revoked_only,
        reissued_ids=reissued,
    )


def _render(batch: list[CertificateFacts]) -> list[bytes]:
    return [certificate_pdf(facts) for facts in batch]


def _printed(facts: dict[str, Any]) -> dict[str, Any]:
    return {key: facts.get(key) for key in PRINTED}


async def _issue(
    conn: AsyncConnection,
    session_id: int,
    people: Sequence[tuple[int, dict[str, Any], int | None]],
    emails: dict[int, str],
    issuer: Issuer,
    now: datetime,
) -> list[int]:
    """Insert one certificate per person and queue its email; returns the new ids, in order."""
    if not people:
        return []
    codes = [new_code() for _ in people]
    documents: list[bytes] = []
    for start in range(0, len(people), _RENDER_BATCH):
        batch = [
            printed_facts(facts, code=code, issuer_url=issuer.verify_url(code))
            for (_, facts, _), code in zip(
                people[start : start + _RENDER_BATCH],
                codes[start : start + _RENDER_BATCH],
                strict=True,
            )
        ]
        # fpdf2 is CPU-bound: in a worker thread the event loop keeps serving other requests.
        documents += await asyncio.to_thread(_render, batch)
    await conn.execute(
        insert(Certificate),
        [
            {
                "registration_id": registration_id,
                "session_id": session_id,
                "code": code,
                "status": VALID,
                "issued_at": now,
                "replaces_id": replaces,
                "facts": {**facts, "code": code},
                "pdf": pdf,
            }
            for (registration_id, facts, replaces), code, pdf in zip(
                people, codes, documents, strict=True
            )
        ],
    )
    ids = {
        row.code: row.id
        for row in (
            await conn.execute(
                select(Certificate.id, Certificate.code).where(Certificate.code.in_(codes))
            )
        ).all()
    }
    new_ids = [ids[code] for code in codes]
    await enqueue_many(
        conn,
        [
            {
                "kind": CERTIFICATE,
                "recipient": emails[registration_id],
                "registration_id": registration_id,
                "session_id": session_id,
                "payload": {"certificate_id": certificate_id},
            }
            for (registration_id, _, _), certificate_id in zip(people, new_ids, strict=True)
        ],
    )
    return new_ids


async def _current_facts(
    conn: AsyncConnection, session_id: int, issuer: Issuer
) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """For every completer: registration id → the facts their certificate should print now,
    and registration id → the address it is sent to."""
    session = (
        await conn.execute(
            select(
                TrainingSession.timezone,
                Course.title,
                Course.provider,
                Course.credit_hours,
                Course.course_number,
            )
            .join(Course, Course.id == TrainingSession.course_id)
            .where(TrainingSession.id == session_id)
        )
    ).first()
    if session is None:
        raise NotFound("session", session_id)
    days, minutes = await meeting_days(conn, session_id, session.timezone)
    credit = session.credit_hours if session.credit_hours is not None else Decimal(minutes) / 60
    instructors = list(
        (
            await conn.execute(
                select(Instructor.name)
                .join(SessionInstructor, SessionInstructor.instructor_id == Instructor.id)
                .where(SessionInstructor.session_id == session_id)
                .order_by(SessionInstructor.created_at, Instructor.id)
            )
        ).scalars()
    )
    people = (
        await conn.execute(
            select(
                Registration.id,
                Registration.name,
                Registration.email,
                Registration.agency,
                Registration.post_id,
                Registration.post_state,
                Agency.ori,
            )
            .join(Completion, Completion.registration_id == Registration.id)
            .outerjoin(Agency, Agency.id == Registration.agency_id)
            .where(
                Completion.session_id == session_id,
                Completion.completed.is_(True),
                Registration.status != CANCELLED,
            )
            .order_by(Registration.id)
        )
    ).all()
    shared = {
        "course_title": session.title,
        "course_number": session.course_number or "",
        "provider": session.provider or issuer.provider,
        "instructors": instructors,
        "meeting_dates": days,
        "credit_hours": hours_text(Decimal(credit)),
        "completed_on": days[-1] if days else "",
        "timezone": session.timezone,
    }
    facts = {
        person.id: {
            **shared,
            "name": person.name,
            "agency": person.agency,
            "agency_ori": person.ori or "",
            "post_id": person.post_id or "",
            "post_state": person.post_state or "",
        }
        for person in people
    }
    return facts, {person.id: person.email for person in people}


async def meeting_days(
    conn: AsyncConnection, session_id: int, timezone: str
) -> tuple[list[str], int]:
    """The local dates (ISO, each once, in order) the session meets on, and its minutes."""
    zone = ZoneInfo(timezone)
    meetings = (
        await conn.execute(
            select(Meeting.starts_at, Meeting.ends_at)
            .where(Meeting.session_id == session_id, Meeting.status == SCHEDULED)
            .order_by(Meeting.starts_at)
        )
    ).all()
    days = list(dict.fromkeys(m.starts_at.astimezone(zone).date().isoformat() for m in meetings))
    minutes = sum(int((m.ends_at - m.starts_at).total_seconds()) // 60 for m in meetings)
    return days, minutes


# -- the email -------------------------------------------------------------------------------


async def certificate_mail(
    conn: AsyncConnection, message: OutboxMessage, base_url: str
) -> MailPlan:
    """The ``certificate`` email with the stored PDF attached; skipped once it is revoked."""
    certificate_id = int(message.payload.get("certificate_id") or 0)
    row = (
        await conn.execute(
            select(
                Certificate.code,
                Certificate.status,
                Certificate.facts,
                Certificate.pdf,
                Certificate.replaces_id,
                Registration.name,
                Registration.token,
            )
            .join(Registration, Registration.id == Certificate.registration_id)
            .where(Certificate.id == certificate_id)
        )
    ).first()
    if row is None:
        return Skip("the certificate no longer exists")
    if row.status != VALID:
        return Skip("the certificate was revoked before it was sent")
    replaced = None
    if row.replaces_id is not None:
        replaced = (
            await conn.execute(select(Certificate.code).where(Certificate.id == row.replaces_id))
        ).scalar_one_or_none()
    facts = row.facts
    base = base_url.rstrip("/")
    manage = f"{base}/registrations/{row.token}"
    context = {
        "name": row.name,
        "course_title": facts["course_title"],
        "credit_hours": facts["credit_hours"],
        "completed_on": format_date(facts["completed_on"]) if facts["completed_on"] else "",
        "code": row.code,
        "replaced_code": replaced,
        "verify_url": f"{base}/verify/{row.code}",
        "certificate_url": f"{manage}/certificate.pdf",
        "training_url": f"{manage}/training",
        "manage_url": manage,
        "session_url": f"{base}/sessions",
    }
    attachment = Attachment(
        data=bytes(row.pdf),
        filename=f"certificate-{row.code}.pdf",
        maintype="application",
        subtype="pdf",
    )
    return MailContent(context=context, to_name=row.name, files=(attachment,))
