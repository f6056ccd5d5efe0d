"""meetings, instructors, venues

Every existing session becomes one meeting with the session's times; that meeting keeps the
session's old calendar UID (``session-{id}``), so subscribed calendars and invites already sent
update in place instead of showing a second event.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 08:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "venues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("room", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venues")),
    )
    op.create_table(
        "instructors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("credentials", sa.String(length=500), nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("feed_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_instructors")),
        sa.UniqueConstraint("feed_token", name=op.f("uq_instructors_feed_token")),
    )
    op.create_table(
        "meetings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=120), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_meetings_ends_after_start")),
        sa.CheckConstraint("status IN ('scheduled', 'cancelled')", name=op.f("ck_meetings_status")),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_meetings_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meetings")),
    )
    op.create_index("ix_meetings_session_start", "meetings", ["session_id", "starts_at"])
    op.create_index("ix_meetings_start", "meetings", ["starts_at"])
    op.create_table(
        "session_instructors",
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("instructor_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instructor_id"],
            ["instructors.id"],
            name=op.f("fk_session_instructors_instructor_id_instructors"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_session_instructors_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "instructor_id", name=op.f("pk_session_instructors")),
    )
    op.create_index("ix_session_instructors_instructor", "session_instructors", ["instructor_id"])
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("venue_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("venue_room", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("allow_overlap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_training_sessions_venue_id_venues"),
            "venues",
            ["venue_id"],
            ["id"],
            ondelete="SET NULL",
        )
        batch_op.create_index("ix_training_sessions_venue", ["venue_id"], unique=False)
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        # The models give no server default; the column was only filled for existing rows.
        batch_op.alter_column("allow_overlap", server_default=None)
    op.execute(
        "INSERT INTO meetings (session_id, starts_at, ends_at, status, sequence, uid,"
        " created_at, updated_at, cancelled_at)"
        " SELECT id, starts_at, ends_at, 'scheduled', 0, 'session-' || CAST(id AS VARCHAR(20)),"
        " created_at, updated_at, NULL FROM training_sessions"
    )


def downgrade() -> None:
    with op.batch_alter_table("training_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_training_sessions_venue")
        batch_op.drop_constraint(
            batch_op.f("fk_training_sessions_venue_id_venues"), type_="foreignkey"
        )
        batch_op.drop_column("allow_overlap")
        batch_op.drop_column("venue_room")
        batch_op.drop_column("venue_id")
    op.drop_index("ix_session_instructors_instructor", table_name="session_instructors")
    op.drop_table("session_instructors")
    op.drop_index("ix_meetings_start", table_name="meetings")
    op.drop_index("ix_meetings_session_start", table_name="meetings")
    op.drop_table("meetings")
    op.drop_table("instructors")
    op.drop_table("venues")
