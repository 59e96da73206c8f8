"""A ledger made by an earlier release keeps working: its table of API keys
gains the columns added since (last used, expiry, revocation)."""

from __future__ import annotations

import sqlalchemy as sa

from ledger.api.http.access import (
    Caller,
    Role,
    create_key,
    find_caller,
    list_keys,
    revoke_key,
)
from ledger.bootstrap import open_database
from ledger.store.event_store import Database


def test_an_older_key_table_gains_the_new_columns(database_url: str) -> None:
    # Given a database whose key table has the first release's columns
    older = Database(database_url)
    with older.writing() as conn:
        conn.exec_driver_sql(
            "CREATE TABLE api_keys (key_hash VARCHAR(64) PRIMARY KEY, "
            "key_prefix VARCHAR(12) NOT NULL, role VARCHAR(20) NOT NULL, "
            "venue_id VARCHAR(64), volunteer_id VARCHAR(64), "
            "created_at VARCHAR(27) NOT NULL)"
        )
    older.dispose()
    # When this release opens it
    database = open_database(database_url)
    # Then its keys are created, used, listed and revoked as in a new one
    key = create_key(database, "auditor")
    caller = find_caller(database, key)
    assert isinstance(caller, Caller) and caller.role is Role.AUDITOR
    revoke_key(database, key[:12])
    (listed,) = list_keys(database)
    assert listed.last_used_at is not None and listed.revoked_at is not None
    columns = {c["name"] for c in sa.inspect(database.engine).get_columns("api_keys")}
    assert {"last_used_at", "expires_at", "revoked_at"} <= columns
    database.dispose()
