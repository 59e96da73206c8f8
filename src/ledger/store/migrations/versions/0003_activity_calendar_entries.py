"""The entries table of the ``activity_calendar`` projection (the monthly
activity calendar, docs/exports.md). A new table of derived rows: the next
``ledger project`` (or the server's follower) fills it from the events.

Revision 0003, after 0002; written 2026-12-07 02:15:07.161212.
Forward only: to go back, restore the backup taken before migrating
(docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "proj_activity_calendar_entries",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("activity_stream", sa.String(length=36), nullable=False),
        sa.Column("activity_id", sa.String(length=64), nullable=True),
        sa.Column("venue_id", sa.String(length=64), nullable=True),
        sa.Column("month", sa.String(length=7), nullable=True),
        sa.Column("category", sa.String(length=16), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=True),
        sa.Column("starts_at", sa.String(length=40), nullable=True),
        sa.Column("ends_at", sa.String(length=40), nullable=True),
        sa.Column("activities", sa.BigInteger(), nullable=False),
        sa.Column("capacity", sa.BigInteger(), nullable=False),
        sa.Column("signed_up", sa.BigInteger(), nullable=False),
    )
    with op.batch_alter_table(
        "proj_activity_calendar_entries", schema=None
    ) as batch_op:
        batch_op.create_index(
            "proj_activity_calendar_entries_lookup",
            ["version", "month", "venue_id", "position"],
            unique=False,
        )
        batch_op.create_index(
            "proj_activity_calendar_entries_stream",
            ["version", "activity_stream", "position"],
            unique=False,
        )
