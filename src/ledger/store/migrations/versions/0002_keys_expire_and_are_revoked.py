"""API keys record when they were last used, when they expire and when
they were revoked (``ledger keys list`` / ``revoke`` / ``create --expires``).
The columns are nullable: keys made before have none of the three.

Revision 0002, after 0001; written 2026-12-07 02:14:43.894875.
Forward only: to go back, restore the backup taken before migrating
(docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_used_at", sa.String(length=27), nullable=True)
        )
        batch_op.add_column(
            sa.Column("expires_at", sa.String(length=27), nullable=True)
        )
        batch_op.add_column(
            sa.Column("revoked_at", sa.String(length=27), nullable=True)
        )
