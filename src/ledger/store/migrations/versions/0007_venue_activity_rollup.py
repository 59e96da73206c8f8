"""The kept roll-up of the ``venue_activity`` projection (its subtrees'
years, months and categories, distinct volunteers included; see
``projections/activity_rollup.py``). New tables of derived rows. The
versions already projected are listed as unkept: they are read from their
entries, as before, until ``ledger rebuild venue_activity`` replaces them
with a version that keeps its roll-up from the first event.

Revision 0007, after 0006. Forward only: to go back, restore the backup
taken before migrating (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"

FIGURES = ("activities", "sessions", "verified_minutes", "makeup_minutes", "volunteers")


def _key() -> list[sa.Column[Any]]:
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
    ]


def _totals() -> list[sa.Column[Any]]:
    return [
        sa.Column("since", sa.BigInteger(), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in FIGURES),
    ]


def upgrade() -> None:
    op.create_table(
        "proj_venue_activity_presence",
        *_key(),
        sa.Column("volunteer_id", sa.String(length=64), nullable=False),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "proj_venue_activity_presence_key",
        "proj_venue_activity_presence",
        ["version", "volunteer_id", "period", "node_id", "category"],
        unique=True,
    )
    op.create_table("proj_venue_activity_current", *_key(), *_totals())
    op.create_index(
        "proj_venue_activity_current_key",
        "proj_venue_activity_current",
        ["version", "node_id", "period", "category"],
        unique=True,
    )
    op.create_table("proj_venue_activity_history", *_key(), *_totals())
    op.create_index(
        "proj_venue_activity_history_key",
        "proj_venue_activity_history",
        ["version", "node_id", "period", "category", "position"],
        unique=False,
    )
    op.create_table(
        "proj_venue_activity_unkept",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.execute(
        "INSERT INTO proj_venue_activity_unkept (version) "
        "SELECT version FROM projection_versions WHERE name = 'venue_activity'"
    )
