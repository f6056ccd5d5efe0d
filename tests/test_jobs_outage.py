"""While the database is away the dispatcher says so in one line a tick, without a traceback."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from notifications.transports import MemoryTransport
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import Jobs
from tests.support.ports import free_port


async def test_dispatch_during_an_outage_logs_a_line_not_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on this port: every connection is refused, as while PostgreSQL restarts.
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/nothing"
    settings = Settings(database_url=url, secret_key="x" * 32, mail_dir=tmp_path)
    db = Database.from_url(url)
    jobs = Jobs(db, settings, transport=MemoryTransport())
    caplog.set_level(logging.WARNING, logger="scheduler.jobs")
    await jobs.start()
    try:
        async with asyncio.timeout(10):
            while not any("waits for the database" in r.message for r in caplog.records):  # noqa: ASYNC110 (log records have no event)
                await asyncio.sleep(0.05)
    finally:
        await jobs.stop()
        await db.dispose()
    mine = [r for r in caplog.records if r.name == "scheduler.jobs"]
    assert mine and all(r.exc_info is None for r in mine)
