"""The app's background jobs deliver by themselves; ``scheduler outbox`` lists and retries."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import insert, select

from notifications.dispatcher import Dispatcher
from notifications.models import Message
from notifications.outbox import enqueue
from scheduler import catalog, cli, jobs
from scheduler.app import create_app
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import Jobs
from tests.helpers import make_course, make_session, person, session_body
from tests.support.smtp import SmtpSink


async def wait_until(condition: object, what: str, seconds: float = 15.0) -> None:
    """Poll a real background process; a bound, not a timing assertion."""
    for _ in range(int(seconds / 0.05)):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


async def test_app_jobs_send_a_new_registration_by_smtp(
    settings: Settings, admin_headers: dict[str, str], smtp_server: SmtpSink
) -> None:
    app = create_app(settings.with_(run_jobs=True, smtp_url=smtp_server.url))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await make_course(client, admin_headers)
            session = await make_session(client, admin_headers)
            response = await client.post(
                f"/api/sessions/{session['id']}/registrations", json=person(1)
            )
            assert response.status_code == 201
            await wait_until(lambda: smtp_server.count() == 1, "the confirmation")
    [mail] = smtp_server.messages
    assert mail["X-Outbox-Kind"] == "confirmation"


async def test_embedded_default_writes_eml_files(
    settings: Settings, admin_headers: dict[str, str], db: Database
) -> None:
    app = create_app(settings.with_(run_jobs=True))
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await make_course(client, admin_headers)
            session = await make_session(client, admin_headers)
            for n in range(3):
                response = await client.post(
                    f"/api/sessions/{session['id']}/registrations", json=person(n)
                )
                assert response.status_code == 201

            def three_files() -> bool:
                return len(list(settings.mail_dir.glob("*.eml"))) == 3

            await wait_until(three_files, "three .eml files")
    mails = [
        message_from_bytes(path.read_bytes(), policy=default)
        for path in sorted(settings.mail_dir.glob("*.eml"))
    ]
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == [
        f"officer{n}@example.org" for n in range(3)
    ]
    assert not list(settings.mail_dir.glob(".*.tmp"))
    async with db.read() as conn:
        statuses = (
            await conn.execute(select(Message.status).where(Message.kind == "confirmation"))
        ).scalars()
        assert list(statuses) == ["sent"] * 3


def test_outbox_command_lists_and_retries(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def prepare() -> None:
        db = Database.from_url(database_url)
        async with db.write() as conn:
            await enqueue(conn, "confirmation", "waiting@example.org")
            await conn.execute(
                insert(Message).values(
                    kind="reminder",
                    recipient="bounced@example.org",
                    due_at=datetime.now(UTC),
                    status="failed",
                    attempts=8,
                    last_error="550 5.1.1 no such user",
                    payload={},
                )
            )
        await db.dispose()

    asyncio.run(prepare())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCHEDULER_DATABASE_URL", database_url)
    monkeypatch.setenv("SCHEDULER_SECRET_KEY", "cli-test-secret-key-0123456789")

    def run(*args: str) -> tuple[int, str, str]:
        code = cli.main(["outbox", *args])
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run()
    assert code == 0
    assert "failed: 1, pending: 1" in out
    assert "bounced@example.org" in out and "550 5.1.1 no such user" in out
    assert "waiting@example.org" in out

    code, _, err = run("--retry", "999")
    assert code == 1 and "not a failed message" in err
    code, out, _ = run("--retry-all")
    assert code == 0 and "1 message(s) queued" in out
    code, out, _ = run()
    assert "pending: 2" in out and "failed" not in out.splitlines()[0]


@pytest.fixture
def pg_settings(postgres_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=postgres_url,
        base_url="http://testserver",
        secret_key="test-secret-key-not-for-production",
        mail_dir=tmp_path / "mail",
        run_jobs=True,
        rate_limit=0,
    )


@pytest.mark.postgres
async def test_a_registration_on_the_asyncpg_path_wakes_the_dispatcher(
    pg_settings: Settings, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL registers straight on asyncpg (``Database.driver_write``), which SQLAlchemy's
    commit events never see; its commit must still wake the dispatcher.

    The periodic tick is a minute here and the wait a quarter of that, so the confirmation can
    only arrive through the wake-up. A duplicate (refused, rolled back) wakes nothing.
    """
    monkeypatch.setattr(jobs, "TICK_SECONDS", 60.0)
    nudges: list[None] = []
    drains: list[int] = []
    nudge, drain = Jobs.nudge, Dispatcher.drain

    def counting_nudge(self: Jobs) -> None:
        nudges.append(None)
        nudge(self)

    async def counting_drain(self: Dispatcher, **kwargs: int) -> int:
        handled = await drain(self, **kwargs)
        drains.append(handled)
        return handled

    monkeypatch.setattr(Jobs, "nudge", counting_nudge)
    monkeypatch.setattr(Dispatcher, "drain", counting_drain)
    db = Database.from_url(pg_settings.database_url)
    try:
        await catalog.create_course(db, {"slug": "managing-bias", "title": "Managing Bias"})
        session_id = (await catalog.create_session(db, "managing-bias", session_body())).id
    finally:
        await db.dispose()

    app = create_app(pg_settings.with_(smtp_url=smtp_server.url))
    async with LifespanManager(app) as manager:
        # The start's own pass must be over, so that it cannot be what finds the confirmation.
        await wait_until(lambda: drains, "the dispatcher's first pass")
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            before = len(nudges)
            response = await client.post(
                f"/api/sessions/{session_id}/registrations", json=person(1)
            )
            assert response.status_code == 201
            # The listener runs as the commit returns, before the response is written.
            assert len(nudges) == before + 1
            await wait_until(lambda: smtp_server.count() == 1, "the confirmation", seconds=15)

            response = await client.post(
                f"/api/sessions/{session_id}/registrations", json=person(1)
            )
            assert response.status_code == 409
            assert len(nudges) == before + 1
    [mail] = smtp_server.messages
    assert mail["X-Outbox-Kind"] == "confirmation"
    assert mail["To"].addresses[0].addr_spec == "officer1@example.org"
