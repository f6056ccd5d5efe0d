"""The background jobs: APScheduler's in-process clock wakes the outbox dispatcher.

The durable truth is the ``messages`` table; APScheduler only says *look now*. A one-second
interval job wakes the dispatcher's loop, and so does any commit that wrote to the outbox in
this process, so a message enqueued now goes out within moments rather than at the next tick.
Every process (and every ``--workers`` worker) runs its own dispatcher; the lease and
``FOR UPDATE SKIP LOCKED`` keep them from sending the same message twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from notifications.dispatcher import Dispatcher
from notifications.messages import Mailer
from notifications.transports import FileTransport, SmtpTransport, Transport
from scheduler import holds, retention
from scheduler.assets import EMAIL_TEMPLATES
from scheduler.config import Settings
from scheduler.db import Database, is_database_outage
from scheduler.mail_content import MailContextProvider

log = logging.getLogger("scheduler.jobs")

TICK_SECONDS = 1.0
# Retention runs hourly: it works in small batches, and every instance may run it (the rows
# it deletes or rewrites are the same whoever gets there first).
RETENTION_SECONDS = 3600
HOLDS_TICK_SECONDS = 30.0
SMTP_CONNECTIONS = 4
# Messages claimed per pass: a pass's fixed cost (claim, load, settle) while the connections
# sit idle is paid once per batch, and a batch still finishes well inside the lease.
OUTBOX_BATCH = 200
STOP_GRACE_SECONDS = 10.0


def make_transport(settings: Settings) -> Transport:
    """SMTP when ``SCHEDULER_SMTP_URL`` is set, else ``.eml`` files in ``SCHEDULER_MAIL_DIR``."""
    if settings.smtp_url:
        # A send never outlives a third of the lease, so a slow server cannot make a second
        # worker take over messages that are still in flight.
        timeout = min(30.0, settings.outbox_lease.total_seconds() / 3)
        return SmtpTransport(settings.smtp_url, max_connections=SMTP_CONNECTIONS, timeout=timeout)
    return FileTransport(settings.mail_dir)


def make_dispatcher(
    db: Database, settings: Settings, transport: Transport | None = None
) -> Dispatcher:
    """The dispatcher the app runs, wired to the scheduler's database and content."""
    return Dispatcher(
        db.write,
        mailer=Mailer(
            transport or make_transport(settings),
            templates=EMAIL_TEMPLATES,
            mail_from=settings.mail_from,
            reply_to=settings.reply_to,
        ),
        provide=MailContextProvider(db, settings),
        lease=settings.outbox_lease,
        batch_size=OUTBOX_BATCH,
        # Twice the connections: one message renders while the others are on the wire.
        parallel=2 * SMTP_CONNECTIONS,
    )


class Jobs:
    """Started and stopped by the app's lifespan; ``nudge()`` asks for a dispatch pass now."""

    def __init__(
        self, db: Database, settings: Settings, *, transport: Transport | None = None
    ) -> None:
        self.db = db
        self.settings = settings
        self.dispatcher = make_dispatcher(db, settings, transport)
        self._wake = asyncio.Event()
        self._stopping = False
        self._clock: AsyncIOScheduler | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # The clock's job runs in flight: its shutdown cancels them without waiting, so stop()
        # waits for them before the database is disposed under their connections.
        self._runs: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        # APScheduler logs every run of every job at INFO: once a second here, pure noise.
        logging.getLogger("apscheduler.executors.default").setLevel(logging.WARNING)
        self._loop = asyncio.get_running_loop()
        self._clock = AsyncIOScheduler(event_loop=self._loop)
        self._clock.add_job(
            self.tick,
            "interval",
            seconds=TICK_SECONDS,
            id="outbox",
            coalesce=True,
            max_instances=1,
        )
        self._clock.add_job(
            self.retention,
            "interval",
            seconds=RETENTION_SECONDS,
            id="retention",
            coalesce=True,
            max_instances=1,
        )
        # Held seats whose release time has come go back to the pool (and its waitlist);
        # coordinators are warned two days before. Every process runs it: the session lock
        # and the conditional updates in scheduler.holds keep the work from being done twice.
        self._clock.add_job(
            self.holds_tick,
            "interval",
            seconds=HOLDS_TICK_SECONDS,
            id="holds",
            coalesce=True,
            max_instances=1,
        )
        self._clock.start()
        # A commit that wrote to the outbox wakes the dispatcher (Database.add_outbox_listener).
        self.db.add_outbox_listener(self.nudge)
        self._worker = asyncio.create_task(self._run(), name="outbox-dispatcher")
        self.nudge()

    def _track_run(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._runs.add(task)
            task.add_done_callback(self._runs.discard)

    async def retention(self) -> None:
        """Delete old sent mail and anonymise old registrants (scheduler/retention.py)."""
        self._track_run()
        try:
            report = await retention.purge(
                self.db, self.settings.outbox_retention, self.settings.personal_data_retention
            )
        except Exception as exc:  # the next hour tries again
            log.warning("retention pass failed: %s", type(exc).__name__)
            return
        if report.messages or report.registrations:
            log.info("retention: %s", "; ".join(report.lines()))

    async def holds_tick(self) -> None:
        """Release due holds and warn about the ones due soon; failures wait for the next tick."""
        self._track_run()
        try:
            await holds.release_due(self.db, reminder_offsets=self.settings.reminder_offsets)
            await holds.warn_due(self.db)
        except Exception as exc:
            if is_database_outage(exc):
                log.warning("hold release waits for the database: %s", type(exc).__name__)
            else:
                log.exception("hold release failed; retrying on the next tick")

    async def tick(self) -> None:
        """The clock's once-a-second look at the outbox.

        A coroutine on purpose: APScheduler's asyncio executor runs a plain function in a
        thread of the loop's executor, and ``asyncio.Event`` is not thread-safe. From a thread,
        ``set()`` could land between the worker's look at the flag and its wait: the flag then
        stays set with nobody woken, every later ``set()`` does nothing, and the dispatcher
        sleeps for good (a sign-in link that never went out, once in about ten suite runs).
        """
        self.nudge()

    def nudge(self) -> None:
        """Ask for a dispatch pass now; only ever called on the event loop's thread."""
        self.dispatcher.again = True
        self._wake.set()

    async def _run(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            try:
                await self.dispatcher.drain()
            except Exception as exc:  # log, wait a tick, go on
                if is_database_outage(exc):
                    # Expected while the database restarts: one line a tick, not a traceback.
                    log.warning("outbox dispatch waits for the database: %s", type(exc).__name__)
                else:
                    log.exception("outbox dispatch failed; retrying on the next tick")

    async def stop(self) -> None:
        if self._clock is None:
            await self.dispatcher.close()
            return
        self._stopping = True
        self._wake.set()
        self._clock.shutdown(wait=False)  # cancels the job runs in flight
        if self._runs:
            await asyncio.gather(*self._runs, return_exceptions=True)
        self.db.remove_outbox_listener(self.nudge)
        if self._worker is not None:
            # Let a pass in flight settle its messages; past the grace period, cancel it and
            # leave its rows to be reclaimed when their lease runs out.
            done, _ = await asyncio.wait({self._worker}, timeout=STOP_GRACE_SECONDS)
            if not done:
                self._worker.cancel()
                await asyncio.gather(self._worker, return_exceptions=True)
        await self.dispatcher.close()
        self._clock = None
