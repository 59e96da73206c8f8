"""What the kept roll-ups of projections share: the list of versions that
keep none.

A projection may keep running figures beside its entries (``kept_tables``),
written with each page, so that a read of a whole subtree or of everyone is
a few rows however long the ledger. Versions projected before a roll-up
existed have none: the schema revision that adds it lists them as
*unkept*, and they are read from their entries until rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.store.event_store import metadata


def unkept_versions_table(projection: str) -> sa.Table:
    """The versions of ``projection`` that keep no roll-up."""
    return sa.Table(
        f"proj_{projection}_unkept",
        metadata,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    )


def is_unkept(conn: Connection, table: sa.Table, version: int) -> bool:
    """Whether ``version`` is listed in ``table`` (an ``unkept_versions_table``)."""
    found = conn.execute(
        sa.select(table.c.version).where(table.c.version == version)
    ).first()
    return found is not None
