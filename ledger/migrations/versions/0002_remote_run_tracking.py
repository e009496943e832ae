"""remote run tracking: the full backend handle and the last polled remote status

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backend_handle", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("remote_status", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("remote_state", sa.String(length=16), nullable=True))
        batch_op.add_column(
            sa.Column("remote_checked_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("remote_checked_at")
        batch_op.drop_column("remote_state")
        batch_op.drop_column("remote_status")
        batch_op.drop_column("backend_handle")
