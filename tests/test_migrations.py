"""Migrations on both backends: from nothing to the models, again and again, and back down."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import scheduler.models  # noqa: F401  (every table on the shared metadata)
from notifications.models import metadata
from scheduler import migrate
from scheduler.db import make_engine

HEAD = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()


async def on_sync(url: str, fn: Any) -> Any:
    engine = make_engine(url, pool_size=1)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(fn)
    finally:
        await engine.dispose()


def schema_diff(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, metadata))


def table_names(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_upgrade_from_empty_gives_the_models(empty_database_url):
    assert await on_sync(empty_database_url, table_names) == set()
    await migrate.upgrade(empty_database_url)
    assert await migrate.current(empty_database_url) == HEAD
    assert await on_sync(empty_database_url, table_names) == {*metadata.tables, "alembic_version"}
    # Nothing autogenerate could still write: the migrations and the models agree.
    assert await on_sync(empty_database_url, schema_diff) == []


async def test_upgrade_again_changes_nothing(empty_database_url):
    await migrate.upgrade(empty_database_url)
    await migrate.upgrade(empty_database_url)
    assert await migrate.current(empty_database_url) == HEAD
    assert await on_sync(empty_database_url, schema_diff) == []


async def test_downgrade_to_nothing_and_up_again(empty_database_url):
    await migrate.upgrade(empty_database_url)
    await on_sync(empty_database_url, lambda c: _downgrade(c, "base"))
    assert await on_sync(empty_database_url, table_names) <= {"alembic_version"}
    await migrate.upgrade(empty_database_url)
    assert await on_sync(empty_database_url, schema_diff) == []


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    config = migrate.alembic_config()
    config.attributes["connection"] = connection
    command.downgrade(config, revision)
    connection.commit()


async def test_instances_starting_together_migrate_once(postgres_factory):
    """Four instances start at once: the advisory lock queues them and all come up."""
    url = await asyncio.to_thread(postgres_factory.new, empty=True)
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(migrate.upgrade(url) for _ in range(4)))
        assert await migrate.current(url) == HEAD
        assert await on_sync(url, schema_diff) == []
    finally:
        await asyncio.to_thread(postgres_factory.drop, url)


async def test_existing_sessions_become_one_meeting_each(empty_database_url):
    """0005: a session scheduled before meetings existed keeps its times and its calendar UID."""
    from sqlalchemy import text

    await migrate.upgrade(empty_database_url, "0002")
    engine = make_engine(empty_database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO courses (id, slug, title, description, audience, provider,"
                    " delivery, created_at, updated_at) VALUES (1, 'c', 'C', '', '', '',"
                    " 'in_person', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                )
            )
            for sid, day, status in ((7, 12, "scheduled"), (8, 13, "cancelled")):
                await conn.execute(
                    text(
                        "INSERT INTO training_sessions (id, course_id, starts_at, ends_at,"
                        " timezone, mode, status, sequence, created_at, updated_at) VALUES"
                        f" ({sid}, 1, '2027-01-{day} 15:00:00', '2027-01-{day} 23:00:00',"
                        f" 'America/Chicago', 'in_person', '{status}', 3,"
                        " '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    )
                )
        await migrate.upgrade(empty_database_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT session_id, starts_at, ends_at, status, sequence, uid"
                        " FROM meetings ORDER BY session_id"
                    )
                )
            ).all()
            flags = (await conn.execute(text("SELECT allow_overlap FROM training_sessions"))).all()
    finally:
        await engine.dispose()
    assert [(r.session_id, str(r.starts_at)[:16], str(r.ends_at)[:16]) for r in rows] == [
        (7, "2027-01-12 15:00", "2027-01-12 23:00"),
        (8, "2027-01-13 15:00", "2027-01-13 23:00"),
    ]
    assert [(r.status, r.sequence, r.uid) for r in rows] == [
        ("scheduled", 0, "session-7"),
        ("scheduled", 0, "session-8"),
    ]
    assert [bool(f[0]) for f in flags] == [False, False]


async def test_sign_ins_move_into_one_table_and_back(empty_database_url):
    """0007: admins get accounts; admin and link sign-ins end up in login_sessions, and back."""
    from sqlalchemy import text

    await migrate.upgrade(empty_database_url, "0006")
    engine = make_engine(empty_database_url, pool_size=1)
    at = "'2026-06-01 10:00:00'"
    try:
        async with engine.begin() as conn:
            for sql in (
                "INSERT INTO admin_users (id, email, password_hash, created_at) VALUES"
                f" (4, 'boss@example.org', 'x', {at}), (5, 'old@example.org', 'y', {at})",
                # boss already has an account; old (made before accounts) does not.
                "INSERT INTO accounts (id, email, name, role, status, admin_user_id, created_at)"
                f" VALUES (10, 'boss@example.org', 'Boss', 'admin', 'active', 4, {at}),"
                f" (11, 'casey@pd.example.org', 'Casey', 'coordinator', 'active', NULL, {at})",
                "INSERT INTO login_sessions (id_hash, kind, user_id, created_at, last_seen_at,"
                f" revoked_at) VALUES ('{'a' * 64}', 'admin', 4, {at}, {at}, NULL),"
                f" ('{'b' * 64}', 'admin', 5, {at}, {at}, {at}),"
                f" ('{'c' * 64}', 'admin', 99, {at}, {at}, NULL)",
                "INSERT INTO account_sessions (id, account_id, token_hash, created_at, expires_at,"
                f" revoked_at) VALUES (1, 11, '{'d' * 64}', {at}, '2026-06-01 22:00:00', NULL)",
            ):
                await conn.execute(text(sql))
        await migrate.upgrade(empty_database_url)
        async with engine.connect() as conn:
            accounts = (
                await conn.execute(
                    text("SELECT email, role, admin_user_id FROM accounts ORDER BY email")
                )
            ).all()
            rows = (
                await conn.execute(
                    text(
                        "SELECT s.id_hash, s.kind, a.email, s.revoked_at FROM login_sessions s"
                        " JOIN accounts a ON a.id = s.account_id ORDER BY s.id_hash"
                    )
                )
            ).all()
        assert [tuple(a) for a in accounts] == [
            ("boss@example.org", "admin", 4),
            ("casey@pd.example.org", "coordinator", None),
            ("old@example.org", "admin", 5),
        ]
        # The sign-in of an admin id that no longer exists had nothing to belong to.
        assert [(r.id_hash[0], r.kind, r.email, r.revoked_at is None) for r in rows] == [
            ("a", "admin", "boss@example.org", True),
            ("b", "admin", "old@example.org", False),
            ("d", "link", "casey@pd.example.org", True),
        ]

        async with engine.connect() as conn:
            await conn.run_sync(lambda c: _downgrade(c, "0006"))
        async with engine.connect() as conn:
            admin_rows = (
                await conn.execute(text("SELECT id_hash, user_id FROM login_sessions"))
            ).all()
            link_rows = (
                await conn.execute(
                    text("SELECT account_id, token_hash, expires_at FROM account_sessions")
                )
            ).all()
        assert sorted((r.id_hash[0], r.user_id) for r in admin_rows) == [("a", 4), ("b", 5)]
        assert [(r.account_id, r.token_hash[0], str(r.expires_at)[:16]) for r in link_rows] == [
            (11, "d", "2026-06-01 22:00")
        ]
    finally:
        await engine.dispose()
