"""The hash chain that binds every stored event to all the events before it.

Each event's hash covers the previous event's hash and the event's full
stored content (position, stream, topic, payload and envelope), so editing,
deleting, inserting or reordering any stored row breaks every hash after it.
The writer computes it inside the append transaction, which already holds
the ledger's append lock, so no event is ever stored unchained.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import orjson

GENESIS_HASH = "0" * 64

# The stored columns a chain hash covers, in the order they are hashed.
CHAINED_FIELDS = (
    "position",
    "stream_id",
    "stream_version",
    "topic",
    "payload",
    "actor_id",
    "actor_role",
    "occurred_at",
    "occurred_utc",
    "recorded_at",
    "source",
    "idempotency_key",
    "correlation_id",
    # Added by schema revision 0005: hashed only when they hold a value, so
    # that the hashes of the events recorded before them stay as they were.
    "caller",
    "fingerprint",
)
WIDTH_BEFORE_0005 = CHAINED_FIELDS.index("caller")


def chain_hash(previous_hash: str, chained: Sequence[Any]) -> str:
    """The hash of one stored event, given the hash of the event before it;
    ``chained`` holds the event's values of ``CHAINED_FIELDS``, in order
    (trailing nulls among the fields added since revision 0001 are left
    out of the hash)."""
    width = len(chained)
    while width > WIDTH_BEFORE_0005 and chained[width - 1] is None:
        width -= 1
    content = orjson.dumps(tuple(chained[:width]))
    return hashlib.sha256(previous_hash.encode("ascii") + content).hexdigest()
