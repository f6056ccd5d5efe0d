"""Outbox dispatch: 5,000 due confirmations to a local aiosmtpd sink.

The floor is aiosmtplib itself sending the same messages, pre-rendered, over the same number of
connections; the ratio is the dispatcher's throughput (claim, load content, render with the
invite, send, mark sent) against it. The dispatcher runs in a child process of its own, so its
peak resident memory is its own and not this benchmark runner's.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import sized

# BENCH_OUTBOX_MESSAGES shrinks the run for a quick check; the number is 5,000.
MESSAGES = int(os.environ.get("BENCH_OUTBOX_MESSAGES", str(sized(5000, 100))))
CONNECTIONS = 4
TARGET_RATIO = 0.5
TARGET_RSS_MB = 200.0


def _settings(db_url: str, smtp_url: str, folder: Path) -> Any:
    from scheduler.config import Settings

    return Settings(
        database_url=db_url,
        base_url="http://bench.invalid",
        secret_key="bench-secret-key-0123456789",
        smtp_url=smtp_url,
        mail_dir=folder / "mail",
        run_jobs=False,
        reminder_offsets=(),
    )


async def _prepare(db_url: str) -> None:
    """A session with MESSAGES confirmed registrations and their confirmations due now."""
    from sqlalchemy import insert, select

    from notifications.outbox import enqueue_many
    from scheduler import catalog, migrate
    from scheduler.db import Database
    from scheduler.models import Registration, SeatPool
    from tests.helpers import session_body

    await migrate.upgrade(db_url)
    db = Database.from_url(db_url)
    await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
    session = await catalog.create_session(
        db, "managing-bias", session_body("hybrid", in_person=MESSAGES, virtual=MESSAGES)
    )
    async with db.write() as conn:
        found = await conn.execute(
            select(SeatPool.attendance, SeatPool.id).where(SeatPool.session_id == session.id)
        )
        pools = {attendance: pool_id for attendance, pool_id in found.all()}
        rows = []
        for n in range(MESSAGES):
            attendance = "virtual" if n % 2 else "in_person"
            rows.append(
                {
                    "session_id": session.id,
                    "pool_id": pools[attendance],
                    "attendance": attendance,
                    "name": f"Officer {n}",
                    "email": f"officer{n}@example.org",
                    "email_key": f"officer{n}@example.org",
                    "agency": "Springfield PD",
                    "agency_key": "springfield pd",
                    "status": "confirmed",
                    "token": secrets.token_urlsafe(24),
                    "sequence": 0,
                }
            )
        await conn.execute(insert(Registration), rows)
        await enqueue_many(
            conn,
            [
                {
                    "kind": "confirmation",
                    "recipient": f"officer{n}@example.org",
                    "registration_id": n + 1,
                    "session_id": session.id,
                }
                for n in range(MESSAGES)
            ],
        )
    await db.dispose()


async def _floor(db_url: str, smtp_url: str, folder: Path) -> float:
    """Seconds for aiosmtplib alone to send the same messages, rendered beforehand."""
    import aiosmtplib
    from sqlalchemy import select

    from notifications.messages import MailContent, Mailer
    from notifications.models import Message
    from notifications.outbox import OutboxMessage
    from notifications.transports import MemoryTransport
    from scheduler.assets import EMAIL_TEMPLATES
    from scheduler.db import Database
    from scheduler.mail_content import MailContextProvider

    settings = _settings(db_url, smtp_url, folder)
    db = Database.from_url(db_url)
    async with db.read() as conn:
        rows = (await conn.execute(select(Message).order_by(Message.id))).all()
    messages = [
        OutboxMessage(
            r.id,
            r.kind,
            r.recipient,
            r.registration_id,
            r.session_id,
            r.payload,
            r.due_at,
            r.attempts,
            r.created_at,
            r.lease_until,
        )
        for r in rows
    ]
    plans = await MailContextProvider(db, settings)(messages)
    await db.dispose()
    mailer = Mailer(MemoryTransport(), EMAIL_TEMPLATES, mail_from=settings.mail_from)
    rendered = []
    for message, plan in zip(messages, plans, strict=True):
        assert isinstance(plan, MailContent)
        rendered.append(mailer.render(message, plan))

    port = int(smtp_url.rsplit(":", 1)[1])
    started = time.perf_counter()

    async def lane(share: list[Any]) -> None:
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await client.connect()
        for email in share:
            await client.send_message(email)
        await client.quit()

    await asyncio.gather(*(lane(rendered[i::CONNECTIONS]) for i in range(CONNECTIONS)))
    return time.perf_counter() - started


async def _dispatch(db_url: str, smtp_url: str, folder: Path) -> dict[str, float]:
    """In the child process: drain the outbox through the dispatcher; time and peak RSS."""
    from notifications.models import MessageStatus
    from notifications.outbox import count_by_status
    from notifications.transports import SmtpTransport
    from scheduler.db import Database
    from scheduler.jobs import make_dispatcher

    settings = _settings(db_url, smtp_url, folder)
    db = Database.from_url(db_url)
    dispatcher = make_dispatcher(
        db, settings, SmtpTransport(smtp_url, max_connections=CONNECTIONS, timeout=30)
    )
    started = time.perf_counter()
    await dispatcher.drain(max_passes=10_000)
    seconds = time.perf_counter() - started
    await dispatcher.close()
    async with db.read() as conn:
        counts = await count_by_status(conn)
    await db.dispose()
    assert counts == {MessageStatus.SENT: MESSAGES}, counts
    return {"seconds": seconds, "rss_mb": _peak_rss_kb() / 1024}


def _peak_rss_kb() -> int:
    """This process's own peak resident memory (VmHWM).

    Not getrusage's ru_maxrss: Linux carries that across exec, so a child started by this
    runner would report the runner's peak (reached while the floor holds every rendered
    message), not its own.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def _child(db_url: str, smtp_url: str, folder: str) -> None:
    print(json.dumps(asyncio.run(_dispatch(db_url, smtp_url, Path(folder)))))


def run() -> list[dict[str, Any]]:
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        folder = Path(tmp)
        sink = subprocess.Popen(
            # The SMTP sink the tests use, in a process of its own (tests/support/smtp.py).
            [sys.executable, "-m", "tests.support.smtp"],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert sink.stdout is not None
            smtp_url = f"smtp://127.0.0.1:{int(sink.stdout.readline())}"
            floor_db = f"sqlite+aiosqlite:///{folder / 'floor.db'}"
            bench_db = f"sqlite+aiosqlite:///{folder / 'bench.db'}"
            asyncio.run(_prepare(floor_db))
            asyncio.run(_prepare(bench_db))
            floor_seconds = asyncio.run(_floor(floor_db, smtp_url, folder))
            child = subprocess.run(
                [sys.executable, "-m", "bench.bench_outbox", bench_db, smtp_url, tmp],
                cwd=root,
                capture_output=True,
                text=True,
                check=True,
                timeout=600,
            )
            measured = json.loads(child.stdout.strip().splitlines()[-1])
        finally:
            if sink.stdin is not None:
                sink.stdin.close()
            sink.wait(timeout=30)
    floor_rate = MESSAGES / floor_seconds
    rate = MESSAGES / measured["seconds"]
    ratio = rate / floor_rate
    return [
        {
            "benchmark": "outbox",
            "metric": f"msgs/s, {MESSAGES} over {CONNECTIONS} conns (vs aiosmtplib)",
            "value": rate,
            "floor": floor_rate,
            "ratio": ratio,
            "target": f">= {TARGET_RATIO}",
            "ok": ratio >= TARGET_RATIO,
        },
        {
            "benchmark": "outbox",
            "metric": "dispatcher peak RSS (MB)",
            "value": measured["rss_mb"],
            "floor": "",
            "ratio": "",
            "target": f"< {TARGET_RSS_MB:.0f}",
            "ok": measured["rss_mb"] < TARGET_RSS_MB,
        },
    ]


if __name__ == "__main__":
    _child(*sys.argv[1:4])
