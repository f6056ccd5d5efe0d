"""rate limit windows

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_windows",
        sa.Column("bucket", sa.String(length=40), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "bucket", "client", "window_start", name=op.f("pk_rate_limit_windows")
        ),
    )
    op.create_index(
        "ix_rate_limit_windows_start", "rate_limit_windows", ["window_start"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_rate_limit_windows_start", table_name="rate_limit_windows")
    op.drop_table("rate_limit_windows")
