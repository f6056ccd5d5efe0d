"""The clock wakes the dispatcher from the event loop's own thread, never from another.

``asyncio.Event`` is not thread-safe. A tick that ran as a plain function went to a thread of
the loop's executor (APScheduler's asyncio executor does that), and a ``set()`` from there could
land between the worker's look at the flag and its wait: the flag stayed set, nobody was woken,
and the dispatcher slept for good. A sign-in link then never went out (the instructor browser
test missed its link about once in ten suite runs).
"""

from __future__ import annotations

import asyncio
import threading

from notifications.transports import MemoryTransport
from scheduler.config import Settings
from scheduler.db import Database
from scheduler.jobs import TICK_SECONDS, Jobs


class RecordingEvent(asyncio.Event):
    """An ``asyncio.Event`` that notes the thread of every ``set()``."""

    def __init__(self) -> None:
        super().__init__()
        self.setters: list[int] = []

    def set(self) -> None:
        self.setters.append(threading.get_ident())
        super().set()


async def test_every_tick_wakes_the_dispatcher_on_the_loop_thread(
    db: Database, settings: Settings
) -> None:
    jobs = Jobs(db, settings, transport=MemoryTransport())
    wake = jobs._wake = RecordingEvent()
    await jobs.start()
    try:
        # The start's own nudge, then the clock's: wait for three ticks at most.
        async with asyncio.timeout(10 * TICK_SECONDS):
            while len(wake.setters) < 3:  # noqa: ASYNC110 (counting set() calls, not waiting on one)
                await asyncio.sleep(0.05)
    finally:
        await jobs.stop()
    loop_thread = threading.get_ident()
    assert set(wake.setters) == {loop_thread}
