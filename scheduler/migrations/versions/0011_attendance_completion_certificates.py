"""attendance per meeting, completion rules, finalized rosters, certificates

- courses: the completion rule (all meetings, or a percent of the contact hours), credit hours,
  course number and the virtual-attendance threshold.
- meetings: an unguessable check-in code each (existing meetings get one here).
- training_sessions: when and by whom the roster was finalized.
- attendance (registrant x meeting), completions, roster_audit, certificates.

SQLite cannot add a CHECK constraint without rebuilding the table, and rebuilding ``courses``
or ``meetings`` drops the old table, which under ``PRAGMA foreign_keys=ON`` cascades into every
session and registration. So on SQLite the new columns of those tables are added in place and
their CHECKs (which the course parser enforces anyway) exist only on PostgreSQL; the check-in
code is NOT NULL with a throw-away default for the same reason.

Revision ID: 0011
Revises: 0006
Create Date: 2026-12-02 13:45:00
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COURSE_CHECKS = {
    "ck_courses_completion_rule": "completion_rule IN ('all_meetings', 'percent_hours')",
    "ck_courses_completion_percent": (
        "completion_percent IS NULL OR (completion_percent >= 1 AND completion_percent <= 100)"
    ),
    "ck_courses_completion_percent_given": (
        "completion_rule != 'percent_hours' OR completion_percent IS NOT NULL"
    ),
    "ck_courses_attendance_threshold": "attendance_threshold >= 1 AND attendance_threshold <= 100",
}


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade() -> None:
    op.add_column(
        "courses",
        sa.Column(
            "completion_rule", sa.String(length=16), nullable=False, server_default="all_meetings"
        ),
    )
    op.add_column("courses", sa.Column("completion_percent", sa.Integer(), nullable=True))
    op.add_column(
        "courses", sa.Column("credit_hours", sa.Numeric(precision=6, scale=2), nullable=True)
    )
    op.add_column("courses", sa.Column("course_number", sa.String(length=40), nullable=True))
    op.add_column(
        "courses",
        sa.Column("attendance_threshold", sa.Integer(), nullable=False, server_default="80"),
    )
    if not _is_sqlite():
        for name, condition in COURSE_CHECKS.items():
            op.create_check_constraint(name, "courses", condition)

    op.add_column(
        "meetings",
        sa.Column("checkin_code", sa.String(length=40), nullable=False, server_default=""),
    )
    bind = op.get_bind()
    meetings = sa.table("meetings", sa.column("id", sa.Integer), sa.column("checkin_code"))
    for (meeting_id,) in bind.execute(sa.select(meetings.c.id)).all():
        bind.execute(
            meetings.update()
            .where(meetings.c.id == meeting_id)
            .values(checkin_code=secrets.token_urlsafe(18))
        )
    if not _is_sqlite():
        op.alter_column("meetings", "checkin_code", server_default=None)
    op.create_index("uq_meetings_checkin_code", "meetings", ["checkin_code"], unique=True)

    op.add_column("training_sessions", sa.Column("finalized_at", sa.DateTime(), nullable=True))
    op.add_column(
        "training_sessions", sa.Column("finalized_by", sa.String(length=320), nullable=True)
    )

    op.create_table(
        "attendance",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("present", sa.Boolean(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("marked_at", sa.DateTime(), nullable=False),
        sa.Column("marked_by", sa.String(length=320), nullable=False),
        sa.CheckConstraint("minutes IS NULL OR minutes >= 0", name=op.f("ck_attendance_minutes")),
        sa.CheckConstraint(
            "source IN ('manual', 'checkin', 'zoom', 'teams')", name=op.f("ck_attendance_source")
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meetings.id"],
            name=op.f("fk_attendance_meeting_id_meetings"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_attendance_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_attendance_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registration_id", "meeting_id", name=op.f("pk_attendance")),
    )
    op.create_index("ix_attendance_session", "attendance", ["session_id"])
    op.create_index("ix_attendance_meeting", "attendance", ["meeting_id"])

    op.create_table(
        "completions",
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("completed", sa.Boolean(), nullable=False),
        sa.Column("attended_minutes", sa.Integer(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_completions_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_completions_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("registration_id", name=op.f("pk_completions")),
    )
    op.create_index("ix_completions_session", "completions", ["session_id"])

    op.create_table(
        "roster_audit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=True),
        sa.Column("meeting_id", sa.Integer(), nullable=True),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_roster_audit_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_audit")),
    )
    op.create_index("ix_roster_audit_session", "roster_audit", ["session_id", "at"])

    op.create_table(
        "certificates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registration_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.Column("replaces_id", sa.Integer(), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint("status IN ('valid', 'revoked')", name=op.f("ck_certificates_status")),
        sa.ForeignKeyConstraint(
            ["registration_id"],
            ["registrations.id"],
            name=op.f("fk_certificates_registration_id_registrations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["replaces_id"],
            ["certificates.id"],
            name=op.f("fk_certificates_replaces_id_certificates"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["training_sessions.id"],
            name=op.f("fk_certificates_session_id_training_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_certificates")),
        sa.UniqueConstraint("code", name=op.f("uq_certificates_code")),
    )
    op.create_index("ix_certificates_registration", "certificates", ["registration_id"])
    op.create_index("ix_certificates_session", "certificates", ["session_id"])


def downgrade() -> None:
    op.drop_index("ix_certificates_session", table_name="certificates")
    op.drop_index("ix_certificates_registration", table_name="certificates")
    op.drop_table("certificates")
    op.drop_index("ix_roster_audit_session", table_name="roster_audit")
    op.drop_table("roster_audit")
    op.drop_index("ix_completions_session", table_name="completions")
    op.drop_table("completions")
    op.drop_index("ix_attendance_meeting", table_name="attendance")
    op.drop_index("ix_attendance_session", table_name="attendance")
    op.drop_table("attendance")
    # SQLite drops a column in place (3.35+) when no index or constraint names it.
    op.drop_column("training_sessions", "finalized_by")
    op.drop_column("training_sessions", "finalized_at")
    op.drop_index("uq_meetings_checkin_code", table_name="meetings")
    op.drop_column("meetings", "checkin_code")
    if not _is_sqlite():
        for name in COURSE_CHECKS:
            op.drop_constraint(name, "courses", type_="check")
    for column in (
        "attendance_threshold",
        "course_number",
        "credit_hours",
        "completion_percent",
        "completion_rule",
    ):
        op.drop_column("courses", column)
