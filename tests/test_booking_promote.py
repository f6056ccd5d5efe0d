"""booking.promote_by_hand: an admin gives a waitlisted person a free seat, never an oversold one."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from notifications.models import Message
from scheduler import booking, catalog
from scheduler.errors import Conflict, NotFound
from tests.helpers import session_body

OFFSETS = ()


def person(n: int, agency: str) -> booking.RegistrationInput:
    return booking.RegistrationInput(
        name=f"Officer {n}", email=f"o{n}@example.org", agency=agency, attendance="in_person"
    )


async def test_promote_by_hand_goes_past_the_agency_cap_but_not_past_capacity(db):
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    session = await catalog.create_session(
        db, "managing-bias", session_body(in_person=2, max_per_agency=1)
    )
    first = await booking.register(db, session.id, person(1, "Albany PD"), reminder_offsets=OFFSETS)
    held = await booking.register(db, session.id, person(2, "Albany PD"), reminder_offsets=OFFSETS)
    assert (first.status, held.status) == ("confirmed", "waitlisted")

    promoted = await booking.promote_by_hand(db, held.id, reminder_offsets=OFFSETS)
    assert promoted.status == "confirmed"
    async with db.read() as conn:
        pool = (await catalog.get_session(conn, session.id)).pool("in_person")
        kinds = (
            await conn.execute(select(Message.kind).where(Message.registration_id == held.id))
        ).scalars()
        assert "promoted" in list(kinds)
    assert (pool.confirmed, pool.waitlisted) == (2, 0)

    third = await booking.register(db, session.id, person(3, "Troy PD"), reminder_offsets=OFFSETS)
    assert third.status == "waitlisted"
    with pytest.raises(Conflict) as full:
        await booking.promote_by_hand(db, third.id, reminder_offsets=OFFSETS)
    assert "in_person_capacity" in full.value.fields
    with pytest.raises(Conflict):
        await booking.promote_by_hand(db, first.id, reminder_offsets=OFFSETS)
    with pytest.raises(NotFound):
        await booking.promote_by_hand(db, 999_999, reminder_offsets=OFFSETS)
    async with db.read() as conn:
        pool = (await catalog.get_session(conn, session.id)).pool("in_person")
    assert (pool.capacity, pool.confirmed, pool.waitlisted) == (2, 2, 1)
