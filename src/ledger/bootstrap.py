"""The composition root: the ledger's database, with its whole schema.

The schema is assembled here: every table the ledger uses, listed, so that
creating a database never depends on which modules happened to be imported.
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.api.http.access import api_keys_table
from ledger.engine.core import (
    dead_letters_table,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.projections.registry import ALL_PROJECTIONS
from ledger.store.event_store import STORE_TABLES, Database
from ledger.store.integrity import checkpoints_table

# Every table of a ledger database: the events and what is stored beside
# them, the checkpoints, the projection engine's bookkeeping, each
# projection's entries, and the HTTP API's keys.
LEDGER_SCHEMA: tuple[sa.Table, ...] = (
    *STORE_TABLES,
    checkpoints_table,
    projection_versions_table,
    dead_letters_table,
    projection_changes_table,
    projection_changes_noted_table,
    *(projection.entries for projection in ALL_PROJECTIONS),
    api_keys_table,
)


def open_database(url: str) -> Database:
    """The database at ``url``, with every table of the schema in place."""
    database = Database(url)
    database.create_schema(LEDGER_SCHEMA)
    return database
