"""新时代文明实践 ledger: every volunteer-service fact as an immutable event."""
