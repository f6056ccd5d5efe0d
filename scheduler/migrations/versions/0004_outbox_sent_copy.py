"""outbox: the subject and a copy of each message as it was sent

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("subject", sa.String(length=250), nullable=True))
        batch.add_column(sa.Column("sent_copy", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("sent_copy")
        batch.drop_column("subject")
