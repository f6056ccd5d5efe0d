"""change counter: a change token of this database alone (PostgreSQL)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 06:30:00

``Database.change_token()`` used ``pg_current_snapshot()``, which belongs to the whole server:
a commit in any other database moved it, so on a shared server the feeds' cached fingerprints
were thrown away all the time. This gives the database a counter of its own:

- the sequence ``change_counter``, bumped (``nextval``) by statement-level triggers after every
  INSERT, UPDATE or DELETE that touched at least one row, and every TRUNCATE, of the tables in
  ``TRACKED``. A sequence, not a one-row table: an ``UPDATE`` of one row would take a row lock
  held until commit, serialising every registration of every session on it (and deadlocking
  against the seat pool locks taken in the other order);
- while bumping, a writer holds a *shared* transaction-level advisory lock (shared locks do
  not wait for each other), released only once its commit is visible;
- ``change_counter_token()``: ``NULL`` when it cannot take that lock exclusively (a write is in
  flight), else the counter. Why that is never stale is in ``Database.change_token``.

``TRACKED`` is every table except those that change all the time and that no feed or page
cache reads: the outbox (``messages``), sign-ins (``login_sessions``, ``sign_in_links``), API
tokens (their ``last_used_at``) and rate-limit windows. SQLite keeps ``PRAGMA data_version``
and gets nothing here.
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Frozen here as of this revision: a later migration that adds a table a cache depends on
# adds its triggers itself (tests/test_change_token.py checks every table is one or the other).
TRACKED = (
    "account_agencies",
    "accounts",
    "admin_users",
    "agencies",
    "agency_imports",
    "attendance",
    "certificates",
    "completions",
    "courses",
    "holds",
    "instructors",
    "meetings",
    "registrations",
    "roster_audit",
    "seat_pools",
    "session_instructors",
    "training_sessions",
    "venues",
)
# The advisory lock that says "a write that bumped the counter has not finished yet"; another
# constant than migrate.ADVISORY_LOCK_ID (727_001).
LOCK_ID = 727_013

# One statement each: asyncpg prepares what it runs, and a prepared statement is one command.
FUNCTIONS = [
    "CREATE SEQUENCE change_counter",
    f"""
CREATE FUNCTION change_counter_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK_ID});
    PERFORM nextval('change_counter');
    RETURN NULL;
END $$
""",
    # A statement that touched no row (an expiry sweep finding nothing) changes nothing.
    f"""
CREATE FUNCTION change_counter_bump_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM changed) THEN
        PERFORM pg_advisory_xact_lock_shared({LOCK_ID});
        PERFORM nextval('change_counter');
    END IF;
    RETURN NULL;
END $$
""",
    f"""
CREATE FUNCTION change_counter_token() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    n bigint;
BEGIN
    IF NOT pg_try_advisory_xact_lock({LOCK_ID}) THEN
        RETURN NULL;
    END IF;
    SELECT CASE WHEN is_called THEN last_value ELSE 0 END INTO n FROM change_counter;
    RETURN n;
END $$
""",
]

DROP_FUNCTIONS = [
    "DROP FUNCTION change_counter_token()",
    "DROP FUNCTION change_counter_bump_rows()",
    "DROP FUNCTION change_counter_bump()",
    "DROP SEQUENCE change_counter",
]

EVENTS = (("insert", "NEW"), ("update", "NEW"), ("delete", "OLD"))


def triggers(table: str) -> list[str]:
    statements = [
        f"CREATE TRIGGER change_counter_{event} AFTER {event.upper()} ON {table}"
        f" REFERENCING {side} TABLE AS changed FOR EACH STATEMENT"
        " EXECUTE FUNCTION change_counter_bump_rows()"
        for event, side in EVENTS
    ]
    statements.append(
        f"CREATE TRIGGER change_counter_truncate AFTER TRUNCATE ON {table}"
        " FOR EACH STATEMENT EXECUTE FUNCTION change_counter_bump()"
    )
    return statements


def drop_triggers(table: str) -> list[str]:
    return [
        f"DROP TRIGGER change_counter_{event} ON {table}"
        for event in ("insert", "update", "delete", "truncate")
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for statement in FUNCTIONS:
        op.execute(statement)
    for table in TRACKED:
        for statement in triggers(table):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in TRACKED:
        for statement in drop_triggers(table):
            op.execute(statement)
    for statement in DROP_FUNCTIONS:
        op.execute(statement)
