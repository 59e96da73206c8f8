"""The kept roll-up of ``order_fulfilment`` (its subtrees' years and
months per order kind, with the orders' waits for the median; see
``projections/fulfilment_rollup.py``) and the kept leaderboard of
``volunteer_hours`` (each volunteer's totals, the volunteers at each star
level). New tables of derived rows. The versions already projected are
listed as unkept: they are read from their entries, as before, until
``ledger rebuild order_fulfilment`` and ``ledger rebuild volunteer_hours``
replace them with versions that keep their figures from the first event.

Revision 0008, after 0007. Forward only: to go back, restore the backup
taken before migrating (docs/operations.md).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"

COUNTS = (
    "posted",
    "dispatched",
    "accepted",
    "fulfilled",
    "withdrawn",
    "rejected",
    "expired",
    "ratings",
    "stars",
    "satisfied",
)
KEY = ["version", "node_id", "period", "kind"]


def _key() -> list[sa.Column[Any]]:
    return [
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("node_id", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
    ]


def _counted(table: str, column: str) -> None:
    """A table of how many orders waited each ``column`` (minute or hour)."""
    op.create_table(
        table,
        *_key(),
        sa.Column(column, sa.BigInteger(), nullable=False),
        sa.Column("orders", sa.BigInteger(), nullable=False),
    )
    op.create_index(f"{table}_key", table, [*KEY, column], unique=True)


def _unkept(projection: str) -> None:
    """The versions of ``projection`` already projected: read from entries."""
    table = f"proj_{projection}_unkept"
    op.create_table(
        table,
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("version"),
    )
    op.execute(
        f"INSERT INTO {table} (version) "
        f"SELECT version FROM projection_versions WHERE name = '{projection}'"
    )


def upgrade() -> None:
    op.create_table(
        "proj_order_fulfilment_totals",
        *_key(),
        sa.Column("position", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in COUNTS),
    )
    op.create_index(
        "proj_order_fulfilment_totals_key",
        "proj_order_fulfilment_totals",
        KEY,
        unique=True,
    )
    _counted("proj_order_fulfilment_waits", "minutes")
    _counted("proj_order_fulfilment_wait_hours", "hour")
    _unkept("order_fulfilment")
    op.create_table(
        "proj_volunteer_hours_totals",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("volunteer_id", sa.String(length=64), nullable=False),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False)
            for name in ("verified_minutes", "makeup_minutes", "total_minutes")
        ),
        sa.Column("sessions", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "proj_volunteer_hours_totals_key",
        "proj_volunteer_hours_totals",
        ["version", "volunteer_id"],
        unique=True,
    )
    op.create_index(
        "proj_volunteer_hours_totals_rank",
        "proj_volunteer_hours_totals",
        ["version", sa.text("total_minutes DESC"), "volunteer_id"],
    )
    op.create_table(
        "proj_volunteer_hours_stars",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("stars", sa.Integer(), nullable=False),
        sa.Column("volunteers", sa.BigInteger(), nullable=False),
    )
    op.create_index(
        "proj_volunteer_hours_stars_key",
        "proj_volunteer_hours_stars",
        ["version", "stars"],
        unique=True,
    )
    _unkept("volunteer_hours")
