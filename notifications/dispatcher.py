"""Claim → render → send → mark: the worker that empties the outbox.

Each pass claims a batch of due messages under a lease in one short write transaction, asks the
context provider what they say (in one batch), sends them in parallel through the mailer, and
settles them in one more transaction: sent, pending again with a backoff for a transient
failure, failed with the server's answer for a permanent one, or cancelled when the provider
says the message is moot. Nothing is held open while mail is in flight.

A worker that dies mid-batch leaves its rows ``sending``; once the lease runs out any worker
claims them again, so a crash can repeat only the messages that were in flight (invariant 5).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from notifications import outbox
from notifications.messages import ContextProvider, MailContent, Mailer, Skip, sent_copy
from notifications.models import MessageStatus, utcnow
from notifications.outbox import OutboxMessage
from notifications.transports import PermanentError, TransientError

log = logging.getLogger("notifications.dispatcher")

Transaction = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, for at most ``max_attempts`` tries."""

    max_attempts: int = 8
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=2)

    def delay(self, attempts: int, rng: random.Random) -> timedelta:
        """How long to wait after the ``attempts``-th failed try."""
        ceiling = min(self.cap.total_seconds(), self.base.total_seconds() * 2 ** (attempts - 1))
        # Jitter spreads the retries of a burst that failed together, e.g. while SMTP was down;
        # at least half the ceiling keeps the backoff growing.
        return timedelta(seconds=rng.uniform(ceiling / 2, ceiling))


@dataclass
class PassResult:
    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0


class Dispatcher:
    """Empties the outbox through ``mailer``, reading content from ``provide``.

    ``transaction`` opens a write transaction (the scheduler passes ``Database.write``, which
    on SQLite begins with ``BEGIN IMMEDIATE``). ``lease`` must comfortably exceed the time a
    batch takes; the dispatcher stops starting new sends from a batch well before it runs out.
    ``parallel`` is how many messages are in hand at once, rendered or on the wire: set it above
    the transport's connections, so the next message is rendered while every connection is busy
    and goes out the moment one frees.
    """

    def __init__(
        self,
        transaction: Transaction,
        *,
        mailer: Mailer,
        provide: ContextProvider,
        lease: timedelta = timedelta(seconds=120),
        batch_size: int = 50,
        parallel: int = 4,
        retry: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.transaction = transaction
        self.mailer = mailer
        self.provide = provide
        self.lease = lease
        self.batch_size = batch_size
        self.parallel = parallel
        self.retry = retry or RetryPolicy()
        self.rng = rng or random.Random()
        self.again = False

    async def run_once(self, now: datetime | None = None) -> PassResult:
        """One pass over at most ``batch_size`` due messages. Raises only database errors."""
        now = now or utcnow()
        async with self.transaction() as conn:
            claimed = await outbox.claim_due(conn, now=now, lease=self.lease, limit=self.batch_size)
        result = PassResult(claimed=len(claimed))
        if not claimed:
            return result
        lease_until = claimed[0].lease_until
        assert lease_until is not None
        # Stop starting sends once too little of the lease is left for one to finish: the rest
        # go back to pending instead of risking a second worker sending them too.
        deadline = time.monotonic() + self.lease.total_seconds() * 0.6

        try:
            plans = list(await self.provide(claimed))
        except Exception as exc:
            # A database error is the caller's to report (an outage is one line, not a
            # traceback); anything else is a bug in loading and worth the whole story.
            if not isinstance(exc, SQLAlchemyError | OSError):
                log.exception("loading the content of %d messages failed", len(claimed))
            await self._release(claimed, lease_until, now, "content could not be loaded")
            raise

        outcome: dict[int, tuple[str, str | None]] = {}
        to_send: list[tuple[OutboxMessage, MailContent]] = []
        for message, plan in zip(claimed, plans, strict=True):
            if isinstance(plan, Skip):
                outcome[message.id] = (MessageStatus.CANCELLED, plan.reason)
            else:
                to_send.append((message, plan))

        slots = asyncio.Semaphore(self.parallel)

        async def deliver(message: OutboxMessage, plan: MailContent) -> None:
            async with slots:
                if time.monotonic() > deadline:
                    outcome[message.id] = ("release", None)
                    return
                try:
                    # Rendered here, not all up front: one message renders while the ones
                    # before it are on the wire, so CPU and network overlap.
                    email = self._render(message, plan)
                    copies[message.id] = sent_copy(email)
                    await self.mailer.send(email)
                    # A retry sends them all again: the same UID and SEQUENCE twice is harmless.
                    for follow_up in self.mailer.render_follow_ups(message, plan):
                        await self.mailer.send(follow_up)
                except PermanentError as exc:
                    outcome[message.id] = (MessageStatus.FAILED, exc.detail)
                except TransientError as exc:
                    outcome[message.id] = ("retry", exc.detail)
                else:
                    outcome[message.id] = (MessageStatus.SENT, None)
                    just_sent.append(message.id)
                    progress.set()

        # Sent messages are marked while the rest of the batch is still going out, so a crash
        # can repeat only the few sent since the last mark, not everything the batch sent.
        just_sent: list[int] = []
        # What each rendered message said, kept with its row (the outbox page shows it).
        copies: dict[int, tuple[str, str]] = {}
        progress = asyncio.Event()
        sending = asyncio.ensure_future(asyncio.gather(*(deliver(m, p) for m, p in to_send)))
        try:
            while not sending.done():
                waiter = asyncio.ensure_future(progress.wait())
                pending: set[asyncio.Future[Any]] = {sending, waiter}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                progress.clear()
                # A write per ``parallel`` sends: few enough to cost little, and a crash then
                # repeats at most about that many plus the ones on the wire.
                if len(just_sent) >= self.parallel:
                    result.sent += await self._mark_sent(just_sent, lease_until, now, copies)
            await sending
        finally:
            if not sending.done():
                sending.cancel()
        result.sent += await self._mark_sent(just_sent, lease_until, now, copies)
        await self._settle(claimed, lease_until, outcome, result, now, copies)
        return result

    async def _mark_sent(
        self,
        ids: list[int],
        lease_until: datetime,
        now: datetime,
        copies: dict[int, tuple[str, str]],
    ) -> int:
        """Mark and forget the ids sent so far, with what they said; returns rows changed."""
        if not ids:
            return 0
        batch, ids[:] = list(ids), []
        async with self.transaction() as conn:
            changed = await outbox.finish(
                conn, batch, lease_until, status=MessageStatus.SENT, now=now
            )
            await outbox.record_copies(conn, {i: copies.pop(i) for i in batch if i in copies})
            return changed

    def _render(self, message: OutboxMessage, plan: MailContent) -> EmailMessage:
        try:
            return self.mailer.render(message, plan)
        except PermanentError:
            raise
        except Exception as exc:  # a template bug must not wedge the queue: fail this one
            log.exception("rendering message %d (%s) failed", message.id, message.kind)
            raise PermanentError(f"rendering failed: {type(exc).__name__}: {exc}") from exc

    async def _settle(
        self,
        claimed: Sequence[OutboxMessage],
        lease_until: datetime,
        outcome: dict[int, tuple[str, str | None]],
        result: PassResult,
        now: datetime,
        copies: dict[int, tuple[str, str]],
    ) -> None:
        # One statement per outcome (and per distinct answer): a batch is usually all "sent".
        released: list[int] = []
        settled: dict[tuple[str, str | None], list[int]] = {}
        retrying: list[OutboxMessage] = []
        for message in claimed:
            status, detail = outcome[message.id]
            if status == MessageStatus.SENT:
                continue  # marked as it went out (_mark_sent)
            if status == "release":
                released.append(message.id)
            elif status == "retry":
                retrying.append(message)
            else:
                settled.setdefault((status, detail), []).append(message.id)
        if not (released or settled or retrying):
            return
        async with self.transaction() as conn:
            await outbox.finish(
                conn, released, lease_until, status=MessageStatus.PENDING, unclaimed=True
            )
            for (status, detail), ids in settled.items():
                changed = await outbox.finish(conn, ids, lease_until, status=status, error=detail)
                if status == MessageStatus.FAILED:
                    result.failed += changed
                    # A refused message shows what it would have said, to judge the answer.
                    await outbox.record_copies(conn, {i: copies[i] for i in ids if i in copies})
                else:
                    result.cancelled += changed
            for message in retrying:
                detail = outcome[message.id][1]
                if message.attempts < self.retry.max_attempts:
                    due = now + self.retry.delay(message.attempts, self.rng)
                    result.retrying += await outbox.finish(
                        conn,
                        [message.id],
                        lease_until,
                        status=MessageStatus.PENDING,
                        due_at=due,
                        error=f"attempt {message.attempts}: {detail}",
                    )
                else:
                    result.failed += await outbox.finish(
                        conn,
                        [message.id],
                        lease_until,
                        status=MessageStatus.FAILED,
                        error=f"gave up after {message.attempts} attempts: {detail}",
                    )
        if result.failed or result.retrying:
            log.warning(
                "outbox pass: %d sent, %d to retry, %d failed",
                result.sent,
                result.retrying,
                result.failed,
            )

    async def _release(
        self, claimed: Sequence[OutboxMessage], lease_until: datetime, now: datetime, why: str
    ) -> None:
        async with self.transaction() as conn:
            await outbox.finish(
                conn,
                [m.id for m in claimed],
                lease_until,
                status=MessageStatus.PENDING,
                due_at=now + timedelta(seconds=30),
                error=why,
            )

    async def drain(self, *, max_passes: int = 1000) -> int:
        """Run passes until nothing is due (or ``max_passes``); returns messages handled.

        A nudge that arrives meanwhile (``again``) earns one more pass, so a message committed
        while a pass was in flight is not left for the next tick.
        """
        handled = 0
        for _ in range(max_passes):
            self.again = False
            result = await self.run_once()
            handled += result.claimed
            if result.claimed == 0 and not self.again:
                break
        return handled

    async def close(self) -> None:
        await self.mailer.close()
