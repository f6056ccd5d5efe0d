"""Retention on both backends: old sent mail goes, failed mail stays, old registrants are
anonymised with their counts and outcomes kept, and a registration meanwhile is untouched."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from notifications.models import Message, MessageStatus, utcnow
from scheduler import booking, catalog, retention
from scheduler.db import Database
from scheduler.models import Registration, SeatPool, TrainingSession
from tests.helpers import session_body

DAY = timedelta(days=1)


async def old_history(db: Database, sessions: int = 5, people: int = 8) -> list[int]:
    """Sessions that ended 200 days ago, each with registrations and 200-day-old mail."""
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    session_ids = []
    for _ in range(sessions):
        created = await catalog.create_session(db, "managing-bias", session_body(in_person=20))
        session_ids.append(created.id)
    now = utcnow()
    long_ago = now - 200 * DAY
    async with db.write() as conn:
        await conn.execute(
            update(TrainingSession)
            .where(TrainingSession.id.in_(session_ids))
            .values(starts_at=long_ago, ends_at=long_ago + timedelta(hours=4))
        )
        for sid in session_ids:
            pool = (
                await conn.execute(select(SeatPool.id).where(SeatPool.session_id == sid))
            ).scalar_one()
            await conn.execute(update(SeatPool).where(SeatPool.id == pool).values(confirmed=people))
            for n in range(people):
                rid = (
                    await conn.execute(
                        insert(Registration)
                        .values(
                            session_id=sid,
                            pool_id=pool,
                            attendance="in_person",
                            name=f"Officer {sid}-{n}",
                            email=f"o{sid}.{n}@pd.example.org",
                            email_key=f"o{sid}.{n}@pd.example.org",
                            agency="Albany PD",
                            agency_key="albany pd",
                            rank="Sergeant",
                            status="confirmed",
                            outcome="attended" if n % 2 else "no_show",
                            token=f"tok-{sid}-{n}",
                            created_at=long_ago,
                            updated_at=long_ago,
                            confirmed_at=long_ago,
                        )
                        .returning(Registration.id)
                    )
                ).scalar_one()
                await conn.execute(
                    insert(Message),
                    [
                        {
                            "kind": kind,
                            "recipient": f"o{sid}.{n}@pd.example.org",
                            "registration_id": rid,
                            "session_id": sid,
                            "payload": {},
                            "due_at": long_ago,
                            "status": status,
                            "attempts": 1,
                            "created_at": long_ago,
                            "sent_at": long_ago if status == MessageStatus.SENT else None,
                        }
                        for kind, status in (
                            ("confirmation", MessageStatus.SENT),
                            ("reminder", MessageStatus.SENT),
                            ("reminder", MessageStatus.CANCELLED),
                        )
                    ],
                )
        # One failure nobody resolved, and mail sent yesterday: both stay.
        await conn.execute(
            insert(Message),
            [
                {
                    "kind": "confirmation",
                    "recipient": "failed@pd.example.org",
                    "due_at": long_ago,
                    "status": MessageStatus.FAILED,
                    "attempts": 5,
                    "last_error": "550 no such user",
                    "created_at": long_ago,
                    "sent_at": None,
                    "payload": {},
                },
                {
                    "kind": "confirmation",
                    "recipient": "recent@pd.example.org",
                    "due_at": now - DAY,
                    "status": MessageStatus.SENT,
                    "attempts": 1,
                    "created_at": now - DAY,
                    "sent_at": now - DAY,
                    "last_error": None,
                    "payload": {},
                },
            ],
        )
    return session_ids


async def test_retention_removes_what_is_old_and_keeps_what_counts(db: Database) -> None:
    old = await old_history(db)
    upcoming = await catalog.create_session(db, "managing-bias", session_body(in_person=5))

    planned = await retention.plan(db, 90 * DAY, 180 * DAY)
    assert (planned.messages, planned.sessions, planned.registrations) == (5 * 8 * 3, 5, 40)

    newcomer = booking.RegistrationInput(
        name="Sam Rivera", email="Sam@PD.example.org", agency="Albany PD", attendance="in_person"
    )
    # A registration arrives while both jobs run in small batches.
    outcome, messages, (sessions, anonymised) = await asyncio.gather(
        booking.register(db, upcoming.id, newcomer, reminder_offsets=(DAY,)),
        retention.purge_outbox(db, 90 * DAY, batch=7),
        retention.anonymise_registrants(db, 180 * DAY, batch=2),
    )
    assert outcome.status == "confirmed"
    assert messages == 5 * 8 * 3
    assert (sessions, anonymised) == (5, 40)

    async with db.read() as conn:
        left = (await conn.execute(select(Message.recipient, Message.status))).all()
        registrations = (
            await conn.execute(select(Registration).where(Registration.session_id.in_(old)))
        ).all()
        mine = (await conn.execute(select(Registration).where(Registration.id == outcome.id))).one()
        confirmed = (
            await conn.execute(select(SeatPool.confirmed).where(SeatPool.session_id.in_(old)))
        ).scalars()
        marked = (
            await conn.execute(
                select(TrainingSession.id).where(
                    TrainingSession.personal_data_removed_at.is_not(None)
                )
            )
        ).scalars()
        old_views = await catalog.load_sessions(conn, session_ids=old)
        mine_messages = (
            await conn.execute(select(Message.kind).where(Message.registration_id == outcome.id))
        ).scalars()

        assert sorted(confirmed) == [8] * 5  # counts stay
        assert [p.confirmed for v in old_views for p in v.pools] == [8] * 5
        assert sorted(marked) == sorted(old)  # the upcoming session is not touched
        assert {(r, s) for r, s in left if s != MessageStatus.PENDING} == {
            ("failed@pd.example.org", MessageStatus.FAILED),
            ("recent@pd.example.org", MessageStatus.SENT),
        }
        assert sorted(mine_messages) == ["confirmation", "reminder"]
    assert len(registrations) == 40
    for r in registrations:
        assert r.name == retention.REMOVED_NAME
        assert r.email.endswith("@anonymised.invalid") and "pd.example.org" not in r.email
        assert r.rank is None
        assert r.status == "confirmed" and r.outcome in ("attended", "no_show")
        assert r.token.startswith("tok-")  # certificate and record links keep working
    assert sum(r.outcome == "attended" for r in registrations) == 20
    assert (mine.name, mine.email, mine.status) == ("Sam Rivera", "Sam@PD.example.org", "confirmed")

    # A second pass finds nothing left to do.
    again = await retention.purge(db, 90 * DAY, 180 * DAY)
    assert (again.messages, again.sessions, again.registrations) == (0, 0, 0)


async def test_personal_data_is_kept_when_no_retention_is_set(db: Database) -> None:
    old = await old_history(db, sessions=1, people=2)
    report = await retention.purge(db, 90 * DAY, None)
    assert (report.messages, report.registrations) == (6, 0)
    async with db.read() as conn:
        names = (
            await conn.execute(select(Registration.name).where(Registration.session_id == old[0]))
        ).scalars()
        assert sorted(names) == [f"Officer {old[0]}-0", f"Officer {old[0]}-1"]


async def test_purge_dry_run_says_what_would_go_and_changes_nothing(
    db: Database, database_url: str, tmp_path: Path
) -> None:
    await old_history(db, sessions=2, people=3)

    def purge(*args: str) -> str:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SCHEDULER_")}
        environ.update(
            SCHEDULER_DATABASE_URL=database_url, SCHEDULER_PERSONAL_DATA_RETENTION="180d"
        )
        done = subprocess.run(
            [sys.executable, "-m", "scheduler", "purge", *args],
            cwd=tmp_path,
            env=environ,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert purge("--dry-run") == (
        "outbox: would delete 18 sent or cancelled messages\n"
        "personal data: would anonymise 6 registrations of 2 sessions\n"
    )
    async with db.read() as conn:
        assert len((await conn.execute(select(Message.id))).all()) == 20
    assert "deleted 18" in purge()
    async with db.read() as conn:
        assert len((await conn.execute(select(Message.id))).all()) == 2
