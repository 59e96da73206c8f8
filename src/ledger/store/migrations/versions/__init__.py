"""The revisions of the ledger schema, oldest first by number."""
