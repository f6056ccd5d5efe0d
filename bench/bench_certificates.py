"""Certificates for a 500-person session, issued and queued, against fpdf2 rendering them alone.

On the embedded SQLite default, a finalized two-day session with ``PEOPLE`` completers:
``sync_session`` gathers the facts, renders every certificate (in a worker thread), stores the
rows with their PDFs and queues one email each, in one transaction. The floor
(``bench/floors/certificate.py``, none of our code) renders the same certificates with fpdf2
and segno directly, with the same font files and fpdf2 tuned the same way; the old floor does
so with the fonts as the package ships them and fpdf2's defaults (a straightforward direct
rendering, measured on a sample of ``OLD_FLOOR_SAMPLE``). Figures are certificates
per second; the target is a ratio of at least 0.5 against the floor.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from bench import sized
from bench.common import row
from bench.floors import certificate as floor
from notifications.models import Message
from scheduler import documents, migrate
from scheduler.certificates import Issuer, printed_facts, sync_session
from scheduler.db import Database
from scheduler.models import (
    Certificate,
    Completion,
    Course,
    Instructor,
    Meeting,
    Registration,
    SeatPool,
    SessionInstructor,
    TrainingSession,
)

NAME = "certificates"
PEOPLE = sized(500, 20)
OLD_FLOOR_SAMPLE = sized(100, 5)  # the shipped fonts are slow: a sample gives the rate
TARGET = 0.5
ISSUER = Issuer(
    base_url="https://training.example.org", provider="National De-escalation Training Network"
)


async def seed(db: Database) -> int:
    now = datetime.now(UTC)
    first = (now - timedelta(days=3)).replace(hour=14, minute=0, second=0, microsecond=0)
    async with db.write() as conn:
        course = (
            await conn.execute(
                insert(Course)
                .values(
                    slug="managing-bias",
                    title="Managing Bias: Policing in Practice",
                    course_number="MB-101",
                    created_at=now,
                    updated_at=now,
                )
                .returning(Course.id)
            )
        ).scalar_one()
        session = (
            await conn.execute(
                insert(TrainingSession)
                .values(
                    course_id=course,
                    starts_at=first,
                    ends_at=first + timedelta(days=1, hours=8),
                    timezone="America/Chicago",
                    mode="in_person",
                    finalized_at=now,
                    finalized_by="bench",
                )
                .returning(TrainingSession.id)
            )
        ).scalar_one()
        for day in range(2):
            start = first + timedelta(days=day)
            await conn.execute(
                insert(Meeting).values(
                    session_id=session, starts_at=start, ends_at=start + timedelta(hours=8)
                )
            )
        teacher = (
            await conn.execute(
                insert(Instructor)
                .values(name="Dana Cruz", email="dana@example.org", feed_token="bench-feed")
                .returning(Instructor.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(SessionInstructor).values(session_id=session, instructor_id=teacher)
        )
        pool = (
            await conn.execute(
                insert(SeatPool)
                .values(
                    session_id=session, attendance="in_person", capacity=PEOPLE, confirmed=PEOPLE
                )
                .returning(SeatPool.id)
            )
        ).scalar_one()
        await conn.execute(
            insert(Registration),
            [
                {
                    "session_id": session,
                    "pool_id": pool,
                    "attendance": "in_person",
                    "name": f"Officer Ñúñez {n}",
                    "email": f"o{n}@pd.example.org",
                    "email_key": f"o{n}@pd.example.org",
                    "agency": f"Agency {n % 17} Police Department",
                    "agency_key": f"agency {n % 17}",
                    "post_id": f"OR-{40000 + n}",
                    "post_state": "OR",
                    "status": "confirmed",
                    "token": f"bench-{n}",
                }
                for n in range(PEOPLE)
            ],
        )
        ids = (await conn.execute(select(Registration.id))).scalars().all()
        await conn.execute(
            insert(Completion),
            [
                {
                    "registration_id": i,
                    "session_id": session,
                    "completed": True,
                    "attended_minutes": 960,
                    "computed_at": now,
                }
                for i in ids
            ],
        )
    return int(session)


def floor_lines(facts: Any) -> list[tuple[str, str, float]]:
    return [
        (facts.provider, "B", 14),
        ("Certificate of Completion", "B", 30),
        ("This certifies that", "", 13),
        (facts.name, "B", 28),
        (f"Certification number {facts.post_id} ({facts.post_state})", "", 12),
        (facts.agency, "", 12),
        ("has completed", "", 13),
        (facts.course_title, "B", 20),
        (f"Course number {facts.course_number}", "", 12),
        (f"Credit hours: {facts.credit_hours}", "B", 14),
        ("Dates: " + "; ".join(facts.meeting_dates), "", 11),
        ("Instructor: " + ", ".join(facts.instructors), "", 11),
        (f"Completed on {facts.completed_on}", "", 11),
        (f"Verification code: {facts.code}", "B", 12),
        (f"Check this certificate at {facts.verify_url}", "", 10),
    ]


def run() -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        asyncio.run(migrate.upgrade(url))

        async def issue() -> tuple[float, list[Any], int]:
            db = Database.from_url(url)
            try:
                session_id = await seed(db)
                # The fonts are prepared on first use: both sides start with them ready.
                documents._lean_fonts()
                started = time.perf_counter()
                async with db.write() as conn:
                    result = await sync_session(
                        conn,
                        session_id,
                        actor="bench",
                        reason=None,
                        now=datetime.now(UTC),
                        issuer=ISSUER,
                    )
                elapsed = time.perf_counter() - started
                async with db.read() as conn:
                    stored = (await conn.execute(select(Certificate.code, Certificate.facts))).all()
                    queued = (
                        await conn.execute(
                            select(func.count()).where(Message.kind == "certificate")
                        )
                    ).scalar_one()
                assert result.issued == PEOPLE == len(stored) == queued, (result, queued)
                facts = [
                    printed_facts(f, code=c, issuer_url=ISSUER.verify_url(c)) for c, f in stored
                ]
                return elapsed, facts, queued
            finally:
                await db.dispose()

        elapsed, facts, queued = asyncio.run(issue())

    lean = documents._lean_fonts()
    started = time.perf_counter()
    for f in facts:
        floor.render(floor_lines(f), f.verify_url, lean)
    floor_elapsed = time.perf_counter() - started
    shipped = {style: documents._font_path(style) for style in ("", "B")}
    started = time.perf_counter()
    for f in facts[:OLD_FLOOR_SAMPLE]:
        floor.render(floor_lines(f), f.verify_url, shipped, tuned=False)
    old_elapsed = time.perf_counter() - started

    ours = PEOPLE / elapsed
    floor_rate = PEOPLE / floor_elapsed
    old_rate = OLD_FLOOR_SAMPLE / old_elapsed
    ratio = ours / floor_rate
    print(
        f"sync_session: {PEOPLE} certificates issued and {queued} emails queued in {elapsed:.1f} s "
        f"({ours:.2f}/s); fpdf2 directly: {floor_elapsed:.1f} s ({floor_rate:.2f}/s); "
        f"with the shipped fonts: {old_rate:.2f}/s; ratio {ratio:.2f}"
    )
    return [
        row(
            NAME,
            f"{PEOPLE} certificates issued and queued, SQLite (certificates/s)",
            round(ours, 2),
            floor=round(floor_rate, 2),
            old_floor=round(old_rate, 2),
            target=f">= {TARGET}",
            ok=ratio >= TARGET,
        )
    ]
