"""The HTTP API: thin FastAPI routes over the ledger and its projections."""
