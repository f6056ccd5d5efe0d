"""agency CSV imports: checked rows and the import's progress

Revision ID: 0010
Revises: 0006
Create Date: 2026-12-02 13:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agency_imports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('preview', 'importing', 'done')", name=op.f("ck_agency_imports_status")
        ),
        sa.CheckConstraint(
            "done >= 0 AND done <= total", name=op.f("ck_agency_imports_done_within")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agency_imports")),
    )


def downgrade() -> None:
    op.drop_table("agency_imports")
