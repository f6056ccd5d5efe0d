"""The background jobs: APScheduler's in-process clock wakes the workers.

Placeholder until the notifications issue lands the dispatcher; the lifespan already starts
and stops this object.
"""

from __future__ import annotations

from scheduler.config import Settings
from scheduler.db import Database


class Jobs:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
