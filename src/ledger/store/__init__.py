"""The event store: tables, the recorder, the hash chain and its checks.

``event_store`` holds the schema and the append path on SQLite and
PostgreSQL; ``chain`` the hash that links every event to the one before;
``integrity`` walks the chain, signs and checks checkpoints and exports;
``schema`` brings a database to this release's schema (the Alembic
revisions in ``migrations/``); ``backup`` copies a running ledger.
"""
