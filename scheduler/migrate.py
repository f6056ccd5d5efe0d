"""Apply Alembic migrations from code, once, even when several instances start together.

On PostgreSQL the upgrade runs under a session-level advisory lock, so instances that start at
the same moment queue up and the later ones find nothing left to do. SQLite's file lock does
the same job there.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from scheduler.db import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"
# An arbitrary constant that names "schema migration" among this database's advisory locks.
ADVISORY_LOCK_ID = 727_001


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


async def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the database at ``database_url`` up to ``revision``."""
    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                await conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": ADVISORY_LOCK_ID})
                await conn.commit()
            try:
                await conn.run_sync(_upgrade, revision)
                await conn.commit()
            finally:
                if postgres:
                    await conn.execute(
                        text("SELECT pg_advisory_unlock(:id)"), {"id": ADVISORY_LOCK_ID}
                    )
                    await conn.commit()
    finally:
        await engine.dispose()


async def current(database_url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: MigrationContext.configure(sync).get_current_revision()
            )
    finally:
        await engine.dispose()
