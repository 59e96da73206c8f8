"""API keys and roles: who may call which route, over which part of the tree.

Keys are random secrets shown once, when created; only their SHA-256 is
stored. Each key has a role, and a venue (``venue_staff``) or a volunteer
(``volunteer``) that scopes it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa

from ledger.store.api_keys import api_keys_table
from ledger.store.event_store import Database, utc_text

KEY_PREFIX = "wml_"
KEY_ID_LENGTH = 16


class Role(StrEnum):
    ADMIN = "admin"  # everything, and the only role that sees personal data
    AUDITOR = "auditor"  # every read and audit query, no writes
    DISPATCHER = "dispatcher"  # order commands city-wide, reads
    VENUE_STAFF = "venue_staff"  # writes and reads inside its venue's subtree
    VOLUNTEER = "volunteer"  # its own record, its own sign-ups and sessions
    DASHBOARD = "dashboard"  # aggregate reads only, no personal data


@dataclass(frozen=True)
class Caller:
    """Who is calling, as their key says."""

    role: Role
    venue_id: str | None = None
    volunteer_id: str | None = None
    key_prefix: str = ""
    # A stable name of the key that reveals nothing of it: the start of its
    # stored SHA-256. Its idempotency keys are a space of their own.
    key_id: str = ""

    @property
    def key_space(self) -> str:
        """The caller an API write is recorded as: its idempotency keys are
        its own, apart from every other key's and the importer's."""
        return f"api:{self.key_id}"

    @property
    def sees_personal_data(self) -> bool:
        return self.role is Role.ADMIN


class InvalidKeyRequestError(ValueError):
    """A key was asked for with a role and scope that do not fit."""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    database: Database,
    role: str,
    *,
    venue_id: str | None = None,
    volunteer_id: str | None = None,
) -> str:
    """Create a key and return it; it cannot be shown again."""
    try:
        parsed = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidKeyRequestError(
            f"unknown role '{role}': use one of {roles}"
        ) from None
    if (parsed is Role.VENUE_STAFF) != (venue_id is not None):
        raise InvalidKeyRequestError(
            "a venue_staff key needs --venue, and only it does"
        )
    if (parsed is Role.VOLUNTEER) != (volunteer_id is not None):
        raise InvalidKeyRequestError(
            "a volunteer key needs --volunteer, and only it does"
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with database.writing() as conn:
        conn.execute(
            api_keys_table.insert().values(
                key_hash=_hash(key),
                key_prefix=key[:12],
                role=parsed.value,
                venue_id=venue_id,
                volunteer_id=volunteer_id,
                created_at=utc_text(datetime.now(UTC)),
            )
        )
    return key


class CallerCache:
    """Recently seen keys, so that a busy dashboard's every request does not
    look its key up again; a key's role changes take effect within ``ttl``."""

    def __init__(self, ttl_seconds: float = 60.0, size: int = 10_000) -> None:
        self._seen: dict[str, tuple[float, Caller | None]] = {}
        self._ttl, self._size = ttl_seconds, size

    def find(self, database: Database, key: str) -> Caller | None:
        now = time.monotonic()
        seen = self._seen.get(key)
        if seen is not None and now - seen[0] < self._ttl:
            return seen[1]
        caller = find_caller(database, key)
        if len(self._seen) >= self._size:
            self._seen.clear()
        self._seen[key] = (now, caller)
        return caller


def find_caller(database: Database, key: str) -> Caller | None:
    t = api_keys_table.c
    with database.reading() as conn:
        row = conn.execute(
            sa.select(
                t.role, t.venue_id, t.volunteer_id, t.key_prefix, t.key_hash
            ).where(t.key_hash == _hash(key))
        ).first()
    if row is None:
        return None
    return Caller(
        Role(row.role),
        row.venue_id,
        row.volunteer_id,
        row.key_prefix,
        key_id=row.key_hash[:KEY_ID_LENGTH],
    )
