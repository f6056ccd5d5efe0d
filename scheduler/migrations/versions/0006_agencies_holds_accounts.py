"""agencies, held seats, accounts and emailed sign-in links

Revision ID: 0006
Revises: 0008
Create Date: 2026-12-02 08:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0008"
branch_labels = None
depends_on = None

HELD_WITHIN = "held >= 0 AND confirmed + held <= capacity"


def _seat_pools_before() -> sa.Table:
    """seat_pools as 0001 made it: SQLite rebuilds the table to add a CHECK constraint, and a
    rebuild from reflection would lose the unnamed-on-SQLite checks."""
    return sa.Table(
        "seat_pools",
        sa.MetaData(),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("attendance", sa.String(length=16), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("confirmed", sa.Integer(), nullable=False),
        sa.Column("waitlist_seq", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "attendance IN ('in_person', 'virtual')", name="ck_seat_pools_attendance"
        ),
        sa.CheckConstraint("capacity >= 0", name="ck_seat_pools_capacity_nonnegative"),
        sa.CheckConstraint(
            "confirmed >= 0 AND confirmed <= capacity", name="ck_seat_pools_confirmed_within"
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name="fk_seat_pools_session_id_training_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_seat_pools"),
        sa.UniqueConstraint("session_id", "attendance", name="uq_seat_pools_session_attendance"),
    )


def _active_email_index() -> None:
    op.create_index(
        "uq_registrations_active_email",
        "registrations",
        ["session_id", "email_key"],
        unique=True,
        sqlite_where=sa.text("status != 'cancelled'"),
        postgresql_where=sa.text("status != 'cancelled'"),
    )


def upgrade() -> None:
    op.create_table(
        "agencies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("state", sa.String(length=2), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("ori", sa.String(length=9), nullable=True),
        sa.Column("merged_into_id", sa.Integer(), nullable=True),
        sa.Column("feed_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "type IN ('municipal', 'sheriff', 'state', 'tribal', 'campus', 'federal', 'other')",
            name=op.f("ck_agencies_type"),
        ),
        sa.ForeignKeyConstraint(
            ["merged_into_id"],
            ["agencies.id"],
            name=op.f("fk_agencies_merged_into_id_agencies"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agencies")),
        sa.UniqueConstraint("ori", name=op.f("uq_agencies_ori")),
        sa.UniqueConstraint("feed_token", name=op.f("uq_agencies_feed_token")),
    )
    op.create_index("ix_agencies_name_key", "agencies", ["name_key"], unique=False)

    op.create_table(
        "holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("pool_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.Column("agency_key", sa.String(length=200), nullable=False),
        sa.Column("attendance", sa.String(length=16), nullable=False),
        sa.Column("seats", sa.Integer(), nullable=False),
        sa.Column("remaining", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("release_at", sa.DateTime(), nullable=False),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.Column("released_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "seats > 0 AND remaining >= 0 AND remaining <= seats", name=op.f("ck_holds_seats")
        ),
        sa.CheckConstraint("status IN ('active', 'released')", name=op.f("ck_holds_status")),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_holds_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["pool_id"],
            ["seat_pools.id"],
            name=op.f("fk_holds_pool_id_seat_pools"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_holds_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index("ix_holds_session", "holds", ["session_id", "status"], unique=False)
    op.create_index("ix_holds_due", "holds", ["status", "release_at"], unique=False)
    op.create_index("ix_holds_agency", "holds", ["agency_id"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("admin_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_sign_in_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'coordinator', 'instructor')", name=op.f("ck_accounts_role")
        ),
        sa.CheckConstraint(
            "status IN ('active', 'pending', 'disabled')", name=op.f("ck_accounts_status")
        ),
        sa.ForeignKeyConstraint(
            ["admin_user_id"],
            ["admin_users.id"],
            name=op.f("fk_accounts_admin_user_id_admin_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("email", name=op.f("uq_accounts_email")),
        sa.UniqueConstraint("admin_user_id", name=op.f("uq_accounts_admin_user_id")),
    )
    op.create_table(
        "account_agencies",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("agency_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_agencies_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agency_id"],
            ["agencies.id"],
            name=op.f("fk_account_agencies_agency_id_agencies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "agency_id", name=op.f("pk_account_agencies")),
    )
    op.create_index("ix_account_agencies_agency", "account_agencies", ["agency_id"], unique=False)
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_sign_in_links_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_links")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_sign_in_links_token_hash")),
    )
    op.create_index(
        "ix_sign_in_links_account", "sign_in_links", ["account_id", "created_at"], unique=False
    )
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
    # Every admin of today is an account of the one model (their password stays where it is).
    op.execute(
        "INSERT INTO accounts (email, name, role, status, admin_user_id, created_at) "
        "SELECT email, email, 'admin', 'active', id, created_at FROM admin_users"
    )

    with op.batch_alter_table("seat_pools", copy_from=_seat_pools_before()) as batch:
        batch.add_column(sa.Column("held", sa.Integer(), server_default="0", nullable=False))
        batch.create_check_constraint(op.f("ck_seat_pools_held_within"), HELD_WITHIN)

    # SQLite rebuilds registrations to add columns that reference other tables; its partial
    # unique index is made again by hand after the rebuild.
    op.drop_index("uq_registrations_active_email", table_name="registrations")
    with op.batch_alter_table("registrations") as batch:
        batch.add_column(sa.Column("agency_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("post_id", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("post_state", sa.String(length=2), nullable=True))
        batch.add_column(sa.Column("hold_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_registrations_agency_id_agencies"),
            "agencies",
            ["agency_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch.create_foreign_key(
            op.f("fk_registrations_hold_id_holds"),
            "holds",
            ["hold_id"],
            ["id"],
            ondelete="SET NULL",
        )
    _active_email_index()
    op.create_index("ix_registrations_email_key", "registrations", ["email_key"], unique=False)
    op.create_index(
        "ix_registrations_agency", "registrations", ["agency_id", "status"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_registrations_agency", table_name="registrations")
    op.drop_index("ix_registrations_email_key", table_name="registrations")
    # SQLite rebuilds registrations to drop columns that reference other tables; its partial
    # unique index is made again by hand after the rebuild.
    op.drop_index("uq_registrations_active_email", table_name="registrations")
    with op.batch_alter_table("registrations") as batch:
        batch.drop_constraint(op.f("fk_registrations_hold_id_holds"), type_="foreignkey")
        batch.drop_constraint(op.f("fk_registrations_agency_id_agencies"), type_="foreignkey")
        batch.drop_column("hold_id")
        batch.drop_column("post_state")
        batch.drop_column("post_id")
        batch.drop_column("agency_id")
    _active_email_index()
    before = _seat_pools_before()
    before.append_column(sa.Column("held", sa.Integer(), server_default="0", nullable=False))
    before.append_constraint(sa.CheckConstraint(HELD_WITHIN, name="ck_seat_pools_held_within"))
    with op.batch_alter_table("seat_pools", copy_from=before) as batch:
        batch.drop_constraint(op.f("ck_seat_pools_held_within"), type_="check")
        batch.drop_column("held")
    op.drop_index("ix_account_sessions_account", table_name="account_sessions")
    op.drop_table("account_sessions")
    op.drop_index("ix_sign_in_links_account", table_name="sign_in_links")
    op.drop_table("sign_in_links")
    op.drop_index("ix_account_agencies_agency", table_name="account_agencies")
    op.drop_table("account_agencies")
    op.drop_table("accounts")
    op.drop_index("ix_holds_agency", table_name="holds")
    op.drop_index("ix_holds_due", table_name="holds")
    op.drop_index("ix_holds_session", table_name="holds")
    op.drop_table("holds")
    op.drop_index("ix_agencies_name_key", table_name="agencies")
    op.drop_table("agencies")
