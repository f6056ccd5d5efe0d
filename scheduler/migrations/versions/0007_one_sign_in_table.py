"""one sign-in table for every account

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 14:30:00

Admins signed in through ``login_sessions`` (by ``admin_users`` id), coordinators and
instructors through ``account_sessions``. Now every person who signs in has an ``accounts``
row (admins keep their password in ``admin_users``, linked one to one) and every sign-in is a
``login_sessions`` row of an account, removed with it:

- an admin without an account gets one (unless a coordinator's account already has the
  address: such an admin's old sign-ins end);
- admin sign-ins point at their account; ``user_id`` goes;
- account sessions move over as ``kind = 'link'`` (same SHA-256 of the same token, same start,
  the same 12 hours); ``account_sessions`` goes.
"""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LIFETIME = timedelta(hours=12)


def upgrade() -> None:
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "INSERT INTO accounts (email, name, role, status, admin_user_id, created_at) "
            "SELECT a.email, a.email, 'admin', 'active', a.id, a.created_at FROM admin_users a "
            "WHERE NOT EXISTS (SELECT 1 FROM accounts c WHERE c.admin_user_id = a.id) "
            "AND NOT EXISTS (SELECT 1 FROM accounts c WHERE c.email = a.email)"
        )
    )
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE login_sessions SET account_id = (SELECT c.id FROM accounts c "
            "WHERE c.admin_user_id = login_sessions.user_id) WHERE kind = 'admin'"
        )
    )
    conn.execute(
        sa.text(
            "INSERT INTO login_sessions (id_hash, kind, user_id, account_id, created_at, "
            "last_seen_at, revoked_at) "
            "SELECT token_hash, 'link', account_id, account_id, created_at, created_at, "
            "revoked_at FROM account_sessions"
        )
    )
    conn.execute(sa.text("DELETE FROM login_sessions WHERE account_id IS NULL"))
    op.drop_index("ix_login_sessions_user", table_name="login_sessions")
    with op.batch_alter_table("login_sessions") as batch:
        batch.alter_column("account_id", existing_type=sa.Integer(), nullable=False)
        batch.create_foreign_key(
            op.f("fk_login_sessions_account_id_accounts"),
            "accounts",
            ["account_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.drop_column("user_id")
    op.create_index("ix_login_sessions_account", "login_sessions", ["account_id"], unique=False)
    op.drop_index("ix_account_sessions_account", table_name="account_sessions")
    op.drop_table("account_sessions")


def downgrade() -> None:
    op.create_table(
        "account_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_sessions_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_account_sessions_token_hash")),
    )
    op.create_index("ix_account_sessions_account", "account_sessions", ["account_id"], unique=False)
    conn = op.get_bind()
    sessions = sa.table(
        "login_sessions",
        sa.column("id_hash", sa.String()),
        sa.column("kind", sa.String()),
        sa.column("account_id", sa.Integer()),
        sa.column("created_at", sa.DateTime()),
        sa.column("revoked_at", sa.DateTime()),
    )
    # Typed columns, so SQLite's stored text comes back as datetimes.
    links = conn.execute(
        sa.select(
            sessions.c.id_hash, sessions.c.account_id, sessions.c.created_at, sessions.c.revoked_at
        ).where(sessions.c.kind == "link")
    ).all()
    if links:
        table = sa.table(
            "account_sessions",
            sa.column("account_id", sa.Integer()),
            sa.column("token_hash", sa.String()),
            sa.column("created_at", sa.DateTime()),
            sa.column("expires_at", sa.DateTime()),
            sa.column("revoked_at", sa.DateTime()),
        )
        op.bulk_insert(
            table,
            [
                {
                    "account_id": row.account_id,
                    "token_hash": row.id_hash,
                    "created_at": row.created_at,
                    "expires_at": row.created_at + LIFETIME,
                    "revoked_at": row.revoked_at,
                }
                for row in links
            ],
        )
    conn.execute(sa.text("DELETE FROM login_sessions WHERE kind <> 'admin'"))
    op.drop_index("ix_login_sessions_account", table_name="login_sessions")
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("user_id", sa.Integer(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE login_sessions SET user_id = (SELECT c.admin_user_id FROM accounts c "
            "WHERE c.id = login_sessions.account_id)"
        )
    )
    conn.execute(sa.text("DELETE FROM login_sessions WHERE user_id IS NULL"))
    with op.batch_alter_table("login_sessions") as batch:
        batch.alter_column("user_id", existing_type=sa.Integer(), nullable=False)
        batch.drop_constraint(op.f("fk_login_sessions_account_id_accounts"), type_="foreignkey")
        batch.drop_column("account_id")
    op.create_index("ix_login_sessions_user", "login_sessions", ["kind", "user_id"], unique=False)
