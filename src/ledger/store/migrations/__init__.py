"""The ledger schema's migrations: Alembic's script directory, shipped in
the package so that an installed release upgrades a ledger without an
``alembic.ini``. ``ledger.store.schema`` runs them; ``versions/`` holds one
file per revision, the first being the schema of release bb41d98
(docs/migrations.md says how to add one)."""
