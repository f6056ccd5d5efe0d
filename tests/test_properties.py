"""Random sequences of seat changes against the domain, invariants 1-3 and 6 after every step.

A hypothesis state machine registers, cancels, changes capacities, reschedules and cancels a
hybrid session through ``scheduler.booking`` and ``scheduler.catalog`` (the code every door
calls), on SQLite and PostgreSQL. After each step it reads the tables back and checks:

1. confirmed registrations never exceed a pool's capacity, and the pool's counter is exact;
2. one active registration per person (email in any case) per session;
3. no seat is free while someone eligible waits in that pool, and waitlists are served
   first come, first served;
6. pending reminders follow the session: one per offset per confirmed registration, due at the
   current start minus its offset; none for waitlisted or cancelled people or cancelled sessions.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from notifications.models import Message
from scheduler import booking, catalog, models
from scheduler.db import Database
from scheduler.errors import CapacityBelowConfirmed, Conflict, DuplicateRegistration, Gone
from scheduler.models import Registration, SeatPool, TrainingSession
from tests.helpers import future_local, session_body

OFFSETS = (timedelta(days=7), timedelta(days=1), timedelta(hours=1))
PEOPLE = [f"person{n}@example.org" for n in range(12)]
AGENCIES = ["Albany PD", "Troy PD", "State Police"]
ATTENDANCE = st.sampled_from(["in_person", "virtual"])


def case_variant(email: str, variant: int) -> str:
    """The same address in another case: invariant 2 must see through it."""
    return [email, email.upper(), email.capitalize()][variant]


def machine_for(runner: asyncio.Runner, db: Database) -> type[RuleBasedStateMachine]:
    slugs = itertools.count()

    class SeatMachine(RuleBasedStateMachine):
        def run(self, coro: Any) -> Any:
            return runner.run(coro)

        @initialize(
            in_person=st.integers(0, 2),
            virtual=st.integers(0, 2),
            agency_cap=st.sampled_from([None, None, 2]),
        )
        def open_session(self, in_person: int, virtual: int, agency_cap: int | None) -> None:
            slug = f"prop-{next(slugs)}"
            self.run(catalog.create_course(db, {"slug": slug, "title": "Property"}))
            body = session_body("hybrid", in_person=in_person, virtual=virtual, days=12)
            if agency_cap is not None:
                body["max_per_agency"] = agency_cap
            self.session_id = self.run(catalog.create_session(db, slug, body)).id
            self.agency_cap = agency_cap
            self.tokens: list[str] = []
            self.cancelled = False

        @rule(
            who=st.integers(0, len(PEOPLE) - 1),
            variant=st.integers(0, 2),
            attendance=ATTENDANCE,
            agency=st.sampled_from(AGENCIES),
        )
        def register(self, who: int, variant: int, attendance: str, agency: str) -> None:
            person = booking.RegistrationInput(
                name=f"Person {who}",
                email=case_variant(PEOPLE[who], variant),
                agency=agency,
                attendance=attendance,
            )
            try:
                outcome = self.run(
                    booking.register(db, self.session_id, person, reminder_offsets=OFFSETS)
                )
            except Gone:
                assert self.cancelled
            except DuplicateRegistration:
                assert not self.cancelled
            else:
                assert not self.cancelled
                self.tokens.append(outcome.token)

        # Registering is the common event; a second rule doubles its share of the steps, so
        # waitlists form often enough for promotions to be exercised.
        @rule(
            who=st.integers(0, len(PEOPLE) - 1),
            variant=st.integers(0, 2),
            attendance=ATTENDANCE,
            agency=st.sampled_from(AGENCIES),
        )
        def register_again(self, who: int, variant: int, attendance: str, agency: str) -> None:
            self.register(who, variant, attendance, agency)

        @rule(pick=st.integers(0, 1000))
        def cancel(self, pick: int) -> None:
            if not self.tokens:
                return
            token = self.tokens[pick % len(self.tokens)]
            outcome = self.run(booking.cancel(db, token, reminder_offsets=OFFSETS))
            assert outcome.status == models.CANCELLED

        @rule(attendance=ATTENDANCE, capacity=st.integers(0, 4), act=st.integers(0, 2))
        def change_capacity(self, attendance: str, capacity: int, act: int) -> None:
            if act:
                return  # acted on one time in three, so seats stay scarce and waitlists form
            try:
                self.run(
                    catalog.update_session(
                        db,
                        self.session_id,
                        {f"{attendance}_capacity": capacity},
                        reminder_offsets=OFFSETS,
                    )
                )
            except CapacityBelowConfirmed:
                pass  # refused whole: nobody is bumped
            except Conflict:
                assert self.cancelled

        @rule(days=st.integers(8, 40), hour=st.integers(6, 18))
        def reschedule(self, days: int, hour: int) -> None:
            start = future_local(days, hour)
            body = {
                "starts_at": start.isoformat(timespec="minutes"),
                "ends_at": (start + timedelta(hours=3)).isoformat(timespec="minutes"),
            }
            try:
                self.run(
                    catalog.update_session(db, self.session_id, body, reminder_offsets=OFFSETS)
                )
            except Conflict:
                assert self.cancelled

        # Drawn often but acted on one time in eight: a cancelled session ends the story.
        @rule(act=st.integers(0, 7))
        def cancel_session(self, act: int) -> None:
            if act:
                return
            self.run(catalog.cancel_session(db, self.session_id))
            self.cancelled = True

        @invariant()
        def invariants_hold(self) -> None:
            if not hasattr(self, "session_id"):
                return
            self.run(check_invariants(db, self.session_id, self.agency_cap))

    return SeatMachine


async def check_invariants(db: Database, session_id: int, agency_cap: int | None) -> None:
    async with db.read() as conn:
        session = (
            await conn.execute(select(TrainingSession).where(TrainingSession.id == session_id))
        ).one()
        pools = (
            await conn.execute(select(SeatPool).where(SeatPool.session_id == session_id))
        ).all()
        people = (
            await conn.execute(select(Registration).where(Registration.session_id == session_id))
        ).all()
        reminders = (
            await conn.execute(
                select(Message).where(
                    Message.session_id == session_id,
                    Message.kind == "reminder",
                    Message.status == "pending",
                )
            )
        ).all()

    # 1. Never oversold, and the counter the seat UPDATE relies on is exact.
    for pool in pools:
        confirmed = [p for p in people if p.pool_id == pool.id and p.status == "confirmed"]
        assert pool.confirmed == len(confirmed) <= pool.capacity

    # 2. One active registration per person, whatever the case of the address.
    active = Counter(p.email.lower() for p in people if p.status != "cancelled")
    assert all(n == 1 for n in active.values()), active

    # 3. No free seat while someone eligible waits; first come, first served.
    if session.status == "scheduled":
        by_agency = Counter(p.agency_key for p in people if p.status == "confirmed")
        for pool in pools:
            waiting = [p for p in people if p.pool_id == pool.id and p.status == "waitlisted"]
            if pool.confirmed < pool.capacity:
                eligible = [
                    p for p in waiting if agency_cap is None or by_agency[p.agency_key] < agency_cap
                ]
                assert not eligible, f"seat free in pool {pool.attendance} but {eligible} wait"
            if agency_cap is None and waiting:
                promoted = [
                    p.waitlist_seq
                    for p in people
                    if p.pool_id == pool.id and p.status == "confirmed" and p.waitlist_seq
                ]
                assert all(seq < min(w.waitlist_seq for w in waiting) for seq in promoted)

    # 6. Reminders follow their session.
    by_registration: dict[int, list[Any]] = {}
    for reminder in reminders:
        by_registration.setdefault(reminder.registration_id, []).append(reminder)
    if session.status == "cancelled":
        assert not reminders
        return
    status_of = {p.id: p.status for p in people}
    for registration_id in by_registration:
        assert status_of[registration_id] == "confirmed", "a reminder for someone without a seat"
    for person in people:
        if person.status != "confirmed":
            continue
        pending = by_registration.get(person.id, [])
        due = sorted(r.due_at for r in pending)
        assert due == sorted(session.starts_at - offset for offset in OFFSETS), (
            f"registration {person.id}: reminders {due} for a start at {session.starts_at}"
        )


def test_seat_invariants_hold_under_random_sequences(database_url: str) -> None:
    with asyncio.Runner() as runner:
        db = Database.from_url(database_url)
        try:
            run_state_machine_as_test(
                machine_for(runner, db),
                settings=settings(
                    max_examples=20,
                    stateful_step_count=30,
                    deadline=None,
                    database=None,
                    suppress_health_check=[HealthCheck.too_slow],
                ),
            )
        finally:
            runner.run(db.dispose())
