"""Alembic's environment: runs the revisions on the connection that
``ledger.store.schema`` hands in, inside its transaction and under its
migration lock, so that two processes never migrate one ledger at once.
There is no offline (SQL script) mode and no ``alembic.ini``."""

from __future__ import annotations

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes.get("target_metadata"),
    # Batch operations: SQLite cannot ALTER most things in place, so a
    # generated revision copies the table instead, on SQLite only.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
