"""drop register_person (one copy of the booking rules); registrations by session and change

Revision ID: 0012
Revises: 0006
Create Date: 2026-12-02 14:00:00

The PL/pgSQL ``register_person`` (migration 0008) repeated ``booking._register`` step by step
and no longer runs: PostgreSQL's registration writes the decision Python made under the
session's lock in one data-modifying statement (scheduler/registration_sql.py), so the rules
live in one place. Downgrading puts the function back as 0008 wrote it.

``ix_registrations_session_updated``: the feed fingerprint's latest registration change per
session, one index descent each instead of reading every registration of half a year of
sessions (bench/bench_history.py).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _migration_0008() -> ModuleType:
    path = Path(__file__).with_name("0008_history_and_hot_path.py")
    spec = importlib.util.spec_from_file_location("migration_0008", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_migration_0008().DROP_REGISTER_FUNCTION)
    op.create_index(
        "ix_registrations_session_updated", "registrations", ["session_id", "updated_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_registrations_session_updated", table_name="registrations")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_migration_0008().REGISTER_FUNCTION)
