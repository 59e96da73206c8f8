"""The table of API keys: stored beside the events, read by the HTTP API.

Only a key's SHA-256 is kept, with its first characters to name it by,
its role and the venue or volunteer that scopes it (``ledger.api.http.access``
gives these their meaning), when it was created and last used, and when it
expires or was revoked (UTC text, as ``utc_text`` writes it; empty: never).
"""

from __future__ import annotations

import sqlalchemy as sa

from ledger.store.event_store import metadata

api_keys_table = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("key_prefix", sa.String(12), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("venue_id", sa.String(64)),
    sa.Column("volunteer_id", sa.String(64)),
    sa.Column("created_at", sa.String(27), nullable=False),
    # Added by schema revision 0002 (nullable: older keys have none).
    sa.Column("last_used_at", sa.String(27)),
    sa.Column("expires_at", sa.String(27)),
    sa.Column("revoked_at", sa.String(27)),
)
