"""The agency directory: create, edit, search, merge duplicates; an officer's certification label.

An agency is keyed for the per-agency cap as ``id:<agency id>`` (``agency_key``), so two
spellings of one agency's name count as one once the registration names the directory's agency.
Merging a duplicate moves its registrations, holds and coordinators to the survivor and re-keys
them, in one transaction under the locks of every session it touches.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications.models import utcnow
from scheduler.booking import RegistrationInput
from scheduler.db import Database
from scheduler.errors import AlreadyExists, Conflict, Invalid, NotFound
from scheduler.models import (
    AGENCY_TYPES,
    AccountAgency,
    Agency,
    Course,
    Hold,
    Registration,
    TrainingSession,
)
from scheduler.validation import STATES, Fields, state_code

_ORI = re.compile(r"^[A-Z]{2}[A-Z0-9]{7}$")
# What each state's standards board calls an officer's certification number, where we know it.
POST_ID_LABELS = {
    "CA": "POST ID",
    "TX": "TCOLE PID",
    "FL": "CJSTC officer ID",
    "GA": "Georgia POST ID",
    "NY": "DCJS officer ID",
    "WA": "CJTC certification number",
}
GENERIC_POST_ID_LABEL = "State certification number"


def post_id_label(state: str | None) -> str:
    """The name of an officer's certification number in ``state``, or a generic one."""
    return POST_ID_LABELS.get((state or "").upper(), GENERIC_POST_ID_LABEL)


def name_key(name: str) -> str:
    return " ".join(name.lower().split())


def agency_key(agency_id: int) -> str:
    """The registrations' and holds' counting key of a directory agency."""
    return f"id:{agency_id}"


@dataclass(frozen=True)
class AgencyView:
    id: int
    name: str
    state: str
    type: str
    ori: str | None
    merged_into_id: int | None
    feed_token: str
    created_at: datetime
    updated_at: datetime


def _view(row: Any) -> AgencyView:
    return AgencyView(
        row.id,
        row.name,
        row.state,
        row.type,
        row.ori,
        row.merged_into_id,
        row.feed_token,
        row.created_at,
        row.updated_at,
    )


def check_ori(fields: Fields, ori: str | None, state: str | None) -> str | None:
    """An NCIC ORI: nine letters or digits, the first two the agency's state."""
    if ori is None:
        return None
    ori = ori.upper()
    if not _ORI.match(ori):
        fields.fail(
            "ori", "must be nine letters or digits, the first two the state, e.g. IL0160000"
        )
        return None
    if ori[:2] not in STATES:
        fields.fail("ori", f"must start with a state code; {ori[:2]} is not one")
        return None
    if state is not None and ori[:2] != state:
        fields.fail("ori", f"starts with {ori[:2]}, but the agency is in {state}")
        return None
    return ori


def parse_agency(data: Any, *, current: AgencyView | None = None) -> dict[str, Any]:
    """Validate an agency body (whole, or a PATCH over ``current``); raises ``Invalid``."""
    fields = Fields(data)
    partial = current is not None
    values: dict[str, Any] = {}
    if not partial or "name" in fields.data:
        name = fields.text("name", max_length=200)
        if name is not None:
            values.update(name=name, name_key=name_key(name))
    if not partial or "state" in fields.data:
        values["state"] = state_code(fields, "state")
    if not partial or "type" in fields.data:
        values["type"] = fields.choice("type", AGENCY_TYPES)
    state = values.get("state") or (current.state if current else None)
    if "ori" in fields.data:
        values["ori"] = check_ori(fields, fields.text("ori", max_length=20, required=False), state)
    elif current is not None and current.ori and "state" in values:
        check_ori(fields, current.ori, state)  # a new state must still match the ORI
    fields.done()
    return {k: v for k, v in values.items() if v is not None or k == "ori"}


async def create_agency(db: Database, data: Any) -> AgencyView:
    """Add an agency to the directory. Raises ``Invalid`` and ``AlreadyExists`` (the ORI)."""
    values = parse_agency(data)
    now = utcnow()
    try:
        async with db.write() as conn:
            agency_id = await insert_agency(conn, values, now)
            return await get_agency(conn, agency_id)
    except IntegrityError as exc:
        raise AlreadyExists("an agency with ORI", str(values.get("ori")), "ori") from exc


async def insert_agency(conn: AsyncConnection, values: dict[str, Any], now: datetime) -> int:
    result = await conn.execute(
        insert(Agency)
        .values(
            **values,
            feed_token=secrets.token_urlsafe(24),
            created_at=now,
            updated_at=now,
        )
        .returning(Agency.id)
    )
    return int(result.scalar_one())


async def update_agency(db: Database, agency_id: int, data: Any) -> AgencyView:
    """Change an agency's name, state, type or ORI; raises ``NotFound``, ``Invalid``,
    ``AlreadyExists``."""
    try:
        async with db.write() as conn:
            current = await get_agency(conn, agency_id)
            values = parse_agency(data, current=current)
            if values:
                await conn.execute(
                    update(Agency)
                    .where(Agency.id == agency_id)
                    .values(**values, updated_at=utcnow())
                )
                if "name" in values:
                    await conn.execute(
                        update(Registration)
                        .where(Registration.agency_id == agency_id)
                        .values(agency=values["name"])
                    )
            return await get_agency(conn, agency_id)
    except IntegrityError as exc:
        raise AlreadyExists("an agency with that ORI", "", "ori") from exc


async def get_agency(conn: AsyncConnection, agency_id: int) -> AgencyView:
    row = (await conn.execute(select(Agency).where(Agency.id == agency_id))).first()
    if row is None:
        raise NotFound("agency", agency_id)
    return _view(row)


async def resolve(conn: AsyncConnection, agency_id: int) -> AgencyView:
    """The agency a registration should name: a merged duplicate's survivor.

    Raises ``Invalid`` naming ``agency_id`` for an agency the directory does not know.
    """
    for _ in range(10):  # a merge chain is short; a cycle cannot be made, but stay bounded
        row = (await conn.execute(select(Agency).where(Agency.id == agency_id))).first()
        if row is None:
            raise Invalid({"agency_id": f"unknown agency {agency_id}"}, "unknown agency")
        if row.merged_into_id is None:
            return _view(row)
        agency_id = row.merged_into_id
    raise Invalid({"agency_id": "merged too many times"})


async def complete(conn: AsyncConnection, person: RegistrationInput) -> RegistrationInput:
    """``person`` with the directory's agency filled in: its survivor's id and name, and the
    agency's state as the certification number's state when none was given. Raises
    ``Invalid`` for an unknown ``agency_id``."""
    if person.agency_id is None:
        return person
    agency = await resolve(conn, person.agency_id)
    post_state = person.post_state or (agency.state if person.post_id else None)
    return replace(person, agency_id=agency.id, agency=agency.name, post_state=post_state)


async def search(
    conn: AsyncConnection, q: str | None, *, limit: int = 50, offset: int = 0
) -> list[AgencyView]:
    """Directory agencies (not merged away) whose name contains ``q`` or whose ORI starts
    with it, by name; ``offset`` skips that many (the admin list's pages)."""
    stmt = select(Agency).where(Agency.merged_into_id.is_(None))
    if q:
        words = name_key(q)[:100]
        escaped = words.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(
            or_(
                Agency.name_key.like(f"%{escaped}%", escape="\\"),
                Agency.ori.like(f"{escaped.upper()}%", escape="\\"),
            )
        )
    stmt = stmt.order_by(Agency.name_key, Agency.id).limit(limit).offset(offset)
    rows = (await conn.execute(stmt)).all()
    return [_view(r) for r in rows]


async def what_moves(conn: AsyncConnection, agency_id: int) -> dict[str, int]:
    """What a merge of ``agency_id`` into another would move: registrations (active ones
    among them), active holds and coordinators."""
    from scheduler.models import CANCELLED, HOLD_ACTIVE

    def counted(stmt: Any) -> Any:
        return conn.execute(select(func.count()).select_from(stmt.subquery()))

    registrations = (
        await counted(select(Registration.id).where(Registration.agency_id == agency_id))
    ).scalar_one()
    active = (
        await counted(
            select(Registration.id).where(
                Registration.agency_id == agency_id, Registration.status != CANCELLED
            )
        )
    ).scalar_one()
    holds = (
        await counted(
            select(Hold.id).where(Hold.agency_id == agency_id, Hold.status == HOLD_ACTIVE)
        )
    ).scalar_one()
    coordinators = (
        await counted(select(AccountAgency.account_id).where(AccountAgency.agency_id == agency_id))
    ).scalar_one()
    return {
        "registrations": int(registrations),
        "active_registrations": int(active),
        "holds": int(holds),
        "coordinators": int(coordinators),
    }


async def merge(db: Database, duplicate_id: int, survivor_id: int) -> AgencyView:
    """Fold ``duplicate_id`` into ``survivor_id``: its registrations, holds and coordinators
    move over and are counted as the survivor's from now on.

    Raises ``NotFound`` and ``Conflict`` (merging an agency into itself or into one already
    merged away).
    """
    if duplicate_id == survivor_id:
        raise Conflict("an agency cannot be merged into itself", {"into": "choose another"})
    async with db.write() as conn:
        duplicate = await get_agency(conn, duplicate_id)
        survivor = await get_agency(conn, survivor_id)
        if survivor.merged_into_id is not None or duplicate.merged_into_id is not None:
            raise Conflict("that agency was already merged", {"into": "already merged"})
        # Lock every session the move touches, in id order, as seat work does: the cap's
        # counts must not move under a registration running at the same time.
        session_ids = sorted(
            {
                *(
                    await conn.scalars(
                        select(Registration.session_id).where(
                            Registration.agency_id == duplicate_id
                        )
                    )
                ).all(),
                *(
                    await conn.scalars(
                        select(Hold.session_id).where(Hold.agency_id == duplicate_id)
                    )
                ).all(),
            }
        )
        for session_id in session_ids:
            await conn.execute(
                select(TrainingSession.id).where(TrainingSession.id == session_id).with_for_update()
            )
        key = agency_key(survivor_id)
        await conn.execute(
            update(Registration)
            .where(Registration.agency_id == duplicate_id)
            .values(agency_id=survivor_id, agency_key=key, agency=survivor.name)
        )
        await conn.execute(
            update(Hold)
            .where(Hold.agency_id == duplicate_id)
            .values(agency_id=survivor_id, agency_key=key)
        )
        already = set(
            (
                await conn.scalars(
                    select(AccountAgency.account_id).where(AccountAgency.agency_id == survivor_id)
                )
            ).all()
        )
        moving = (
            await conn.scalars(
                select(AccountAgency.account_id).where(AccountAgency.agency_id == duplicate_id)
            )
        ).all()
        await conn.execute(delete(AccountAgency).where(AccountAgency.agency_id == duplicate_id))
        new = [a for a in moving if a not in already]
        if new:
            await conn.execute(
                insert(AccountAgency), [{"account_id": a, "agency_id": survivor_id} for a in new]
            )
        await conn.execute(
            update(Agency)
            .where(Agency.id == duplicate_id)
            .values(merged_into_id=survivor_id, ori=None, updated_at=utcnow())
        )
        # An ORI the duplicate carried and the survivor lacks is kept on the survivor.
        if survivor.ori is None and duplicate.ori is not None:
            await conn.execute(
                update(Agency).where(Agency.id == survivor_id).values(ori=duplicate.ori)
            )
        return await get_agency(conn, survivor_id)


async def history(conn: AsyncConnection, email: str) -> list[dict[str, Any]]:
    """One person's registrations across every session (email, any case), oldest session
    first: one indexed query."""
    rows = await conn.execute(
        select(
            Registration.id,
            Registration.session_id,
            Registration.attendance,
            Registration.name,
            Registration.email,
            Registration.agency,
            Registration.agency_id,
            Registration.rank,
            Registration.post_id,
            Registration.post_state,
            Registration.status,
            Registration.outcome,
            TrainingSession.starts_at,
            TrainingSession.timezone,
            TrainingSession.status.label("session_status"),
            Course.slug.label("course"),
            Course.title.label("course_title"),
        )
        .join(TrainingSession, TrainingSession.id == Registration.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(Registration.email_key == email.strip().lower())
        .order_by(TrainingSession.starts_at, Registration.id)
    )
    return [dict(r._mapping) for r in rows.all()]


async def count_agencies(conn: AsyncConnection) -> int:
    return int((await conn.execute(select(func.count()).select_from(Agency))).scalar_one())


def agency_json(agency: AgencyView) -> dict[str, Any]:
    return {
        "id": agency.id,
        "name": agency.name,
        "state": agency.state,
        "type": agency.type,
        "ori": agency.ori,
        "merged_into_id": agency.merged_into_id,
        "post_id_label": post_id_label(agency.state),
    }
