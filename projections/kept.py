"""What the kept roll-ups of projections share: the list of versions that
keep none, and the nodes a venue's figures roll up to.

A projection may keep running figures beside its entries (``kept_tables``),
written with each page, so that a read of a whole subtree or of everyone is
a few rows however long the ledger. Versions projected before a roll-up
existed have none: the schema revision that adds it lists them as
*unkept*, and they are read from their entries until rebuilt.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.common import venue_stream_id
from ledger.projections.venue_tree import REGISTERED
from ledger.store.event_store import events_table, metadata, select_rows_among


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


def venue_nodes(
    conn: Connection, venue_ids: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """Each venue with its ancestors (itself first), from the events that
    registered them: the nodes whose subtrees it is in."""
    parents: dict[str, str | None] = {}
    wanted = set(venue_ids)
    t = events_table.c
    query = sa.select(t.payload).where(t.topic == REGISTERED, t.stream_version == 1)
    while wanted:
        streams = {str(venue_stream_id(venue_id)) for venue_id in wanted}
        for (payload,) in select_rows_among(conn, query, t.stream_id, streams):
            found = orjson.loads(payload)
            parents[found["venue_id"]] = found["parent_id"]
        unknown = wanted - parents.keys()
        parents.update(dict.fromkeys(unknown))  # no registration: a node alone
        wanted = {p for p in parents.values() if p is not None} - parents.keys()
    chains = {}
    for venue_id in venue_ids:
        chain, at = [venue_id], parents.get(venue_id)
        while at is not None and at not in chain:
            chain.append(at)
            at = parents.get(at)
        chains[venue_id] = tuple(chain)
    return chains
