"""Two instances on one PostgreSQL, as production runs them, and migrations started together.

Two ``scheduler serve`` processes on their own ports share one database and one real SMTP
server. Registrations, cancellations, a capacity change and a reschedule go through both at
once; afterwards invariants 1-6 hold and every email the outbox holds arrived exactly once.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import select

from notifications.models import Message, utcnow
from scheduler import migrate
from scheduler.db import Database
from scheduler.models import Registration
from scheduler.tokens import create_token
from tests.dbs import PG_HOST, PG_PORT, PG_USER, pg_url, require_postgres
from tests.helpers import future_local, session_body
from tests.support.smtp import SmtpSink
from tests.system.test_processes import received_ids, wait_for
from tests.test_properties import check_invariants

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def person(n: int) -> dict[str, str]:
    return {
        "name": f"Officer {n}",
        # Mixed case on purpose: invariant 2 compares addresses case-insensitively.
        "email": f"Officer{n}@Example.org" if n % 3 == 0 else f"officer{n}@example.org",
        "agency": f"Agency {n % 4}",
        "attendance": "in_person" if n % 2 else "virtual",
    }


async def test_two_instances_keep_every_invariant_and_send_each_email_once(
    postgres_url: str, live_server_factory: Any, smtp_server: SmtpSink
) -> None:
    db = Database.from_url(postgres_url)
    env = {"SCHEDULER_SMTP_URL": smtp_server.url}
    one, two = (live_server_factory(postgres_url, **env) for _ in range(2))
    headers = {"Authorization": f"Bearer {await create_token(db, 'e2e')}"}
    try:
        async with (
            httpx.AsyncClient(base_url=one.url, headers=headers, timeout=30) as a,
            httpx.AsyncClient(base_url=two.url, headers=headers, timeout=30) as b,
        ):
            course = {"slug": "managing-bias", "title": "Managing Bias"}
            assert (await a.post("/api/courses", json=course)).status_code == 201
            made = await b.post(
                "/api/courses/managing-bias/sessions",
                json=session_body("hybrid", in_person=4, virtual=3),
            )
            assert made.status_code == 201, made.text
            sid = made.json()["id"]
            url = f"/api/sessions/{sid}/registrations"

            # 24 people register through both instances at once; a few try twice.
            attempts = [(a if n % 2 else b).post(url, json=person(n)) for n in range(24)]
            attempts += [(b if n % 2 else a).post(url, json=person(n)) for n in (0, 5, 9)]
            answers = await asyncio.gather(*attempts)
            created = [r.json() for r in answers if r.status_code == 201]
            assert len(created) == 24
            assert sorted(r.status_code for r in answers).count(409) == 3
            statuses = Counter(r["status"] for r in created)
            assert statuses == {"confirmed": 7, "waitlisted": 17}

            # Then, all at once: cancellations of seats and waitlist places, a capacity raise,
            # and a reschedule, spread over both instances.
            confirmed = [r for r in created if r["status"] == "confirmed"]
            waiting = [r for r in created if r["status"] == "waitlisted"]
            start = future_local(20, 10)
            changes = [
                *(
                    (a if i % 2 else b).delete(f"/api/registrations/{r['token']}")
                    for i, r in enumerate(confirmed[:3] + waiting[:2])
                ),
                a.patch(f"/api/sessions/{sid}", json={"in_person_capacity": 6}),
                b.patch(
                    f"/api/sessions/{sid}",
                    json={
                        "starts_at": start.isoformat(timespec="minutes"),
                        "ends_at": (start + timedelta(hours=3)).isoformat(timespec="minutes"),
                    },
                ),
            ]
            results = await asyncio.gather(*changes)
            assert all(r.status_code == 200 for r in results), [r.text for r in results]
            # A second cancellation of the same seat through the other instance is harmless.
            again = await b.delete(f"/api/registrations/{confirmed[0]['token']}")
            assert again.status_code == 200 and again.json()["status"] == "cancelled"

        async def outbox_drained() -> bool:
            async with db.read() as conn:
                left = await conn.execute(
                    select(Message.id).where(
                        Message.status.in_(["pending", "sending"]), Message.due_at <= utcnow()
                    )
                )
                return left.first() is None

        await wait_for(outbox_drained, "every due email to be sent", seconds=90)
    finally:
        one.stop()
        two.stop()

    try:
        # Invariants 1, 2, 3 and 6, as the property test checks them.
        await check_invariants(db, sid, None)
        async with db.read() as conn:
            people = (
                await conn.execute(select(Registration).where(Registration.session_id == sid))
            ).all()
            messages = (await conn.execute(select(Message))).all()
    finally:
        await db.dispose()

    # Invariant 4: every change wrote its email. Each registration was told its first outcome,
    # each promotion, each cancellation, and each person holding a place of the move.
    kinds: dict[int | None, Counter[str]] = {}
    for message in messages:
        kinds.setdefault(message.registration_id, Counter())[message.kind] += 1
    for row in people:
        told = kinds.get(row.id, Counter())
        first = "confirmation" if row.confirmed_at == row.created_at else "waitlisted"
        assert told[first] == 1, (row.id, told)
        if row.waitlist_seq is not None and row.status == "confirmed":
            assert told["promoted"] == 1, (row.id, told)
        if row.status == "cancelled":
            assert told["registration_cancelled"] == 1, (row.id, told)
        # Everyone still holding a place held it when the session moved, and hears of it once;
        # someone cancelling at the same moment may or may not have been told, but never twice.
        if row.status != "cancelled":
            assert told["session_changed"] == 1, (row.id, told)
        assert told["session_changed"] <= 1, (row.id, told)

    # Invariant 5: each message that went out arrived exactly once, to its recipient; nothing
    # immediate was left behind and nothing failed.
    assert not [m for m in messages if m.status == "failed"]
    sent = {m.id: m for m in messages if m.status == "sent"}
    assert not [m for m in messages if m.kind != "reminder" and m.status == "pending"]
    ids = received_ids(smtp_server)
    assert set(ids) == set(sent)
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1]
    by_id = {
        int(str(msg["Message-ID"]).split("-", 1)[1].split(".", 1)[0]): msg
        for msg in smtp_server.messages
    }
    for message_id, row in sent.items():
        assert parseaddr(str(by_id[message_id]["To"]))[1].lower() == row.recipient.lower()


def test_concurrent_migrate_processes_on_a_fresh_database_all_succeed(tmp_path: Path) -> None:
    """Instances that start together each run ``scheduler migrate``; the advisory lock lets one
    build the schema and the others find it done."""
    name = f"sched_mig_{tmp_path.name[-8:].replace('-', '_').lower()}"

    async def create() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    require_postgres()
    asyncio.run(create())
    try:
        env = {
            "PATH": "/usr/bin:/bin",
            "SCHEDULER_DATABASE_URL": pg_url(name),
            "SCHEDULER_SECRET_KEY": "migrate-test-secret-key-0123",
        }
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", "scheduler", "migrate"],
                env=env,
                cwd=tmp_path,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            for _ in range(4)
        ]
        outputs = [p.communicate(timeout=120)[0].decode() for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
        assert all("database is up to date" in out for out in outputs)
        assert asyncio.run(migrate.current(pg_url(name))) is not None
    finally:
        asyncio.run(drop())
