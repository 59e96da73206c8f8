"""API keys and roles: who may call which route, over which part of the tree.

Keys are random secrets shown once, when created; only their SHA-256 is
stored. Each key has a role, and a venue (``venue_staff``) or a volunteer
(``volunteer``) that scopes it, both recorded in the ledger when the key is
made; it may expire, and it can be revoked (``ledger keys revoke``), which
running servers honour within ``CallerCache``'s second.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import sqlalchemy as sa

from ledger.domain.common import stream_id
from ledger.domain.messages import Message, TranslatedError
from ledger.store.api_keys import api_keys_table
from ledger.store.event_store import (
    Database,
    LedgerBusyError,
    LedgerRecorder,
    utc_text,
)

KEY_PREFIX = "wml_"
# How many of a key's first characters are stored to name it by.
PREFIX_LENGTH = 12
# How many characters of a key's stored SHA-256 name it in its key space.
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


class InvalidKeyRequestError(TranslatedError, ValueError):
    """A key was asked for with a role and scope that do not fit, or an
    expiry in the past."""


class UnknownKeyError(TranslatedError, LookupError):
    """No key is, or starts as, the one to revoke."""


class AmbiguousKeyPrefixError(TranslatedError, ValueError):
    """More than one key starts as the one to revoke."""


@dataclass(frozen=True)
class KeyRefusal:
    """Why a key that was sent is not admitted: an HTTP status and a code."""

    status: int
    code: str
    title: str
    detail: Message  # in the language of the request it answers


@dataclass(frozen=True)
class KeyListing:
    """What ``ledger keys list`` shows of a key: never the key itself."""

    prefix: str
    role: str
    venue_id: str | None
    volunteer_id: str | None
    created_at: str
    last_used_at: str | None
    expires_at: str | None
    revoked_at: str | None


# The columns of a KeyListing, in its order.
LISTED_COLUMNS = tuple(
    api_keys_table.c[name]
    for name in (
        "key_prefix",
        "role",
        "venue_id",
        "volunteer_id",
        "created_at",
        "last_used_at",
        "expires_at",
        "revoked_at",
    )
)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(
    database: Database,
    role: str,
    *,
    venue_id: str | None = None,
    volunteer_id: str | None = None,
    expires_at: datetime | None = None,
) -> str:
    """Create a key and return it; it cannot be shown again. Its venue or
    volunteer must be recorded in the ledger already."""
    try:
        parsed = Role(role)
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise InvalidKeyRequestError(
            "unknown role '{role}': use one of {roles}", role=role, roles=roles
        ) from None
    if (parsed is Role.VENUE_STAFF) != (venue_id is not None):
        raise InvalidKeyRequestError(
            "a venue_staff key needs --venue, and only it does"
        )
    if (parsed is Role.VOLUNTEER) != (volunteer_id is not None):
        raise InvalidKeyRequestError(
            "a volunteer key needs --volunteer, and only it does"
        )
    for kind, scope_id in (("venue", venue_id), ("volunteer", volunteer_id)):
        if scope_id is not None and not _is_recorded(database, kind, scope_id):
            raise InvalidKeyRequestError(
                "no {kind} '{id}' is recorded in the ledger: register it "
                "first, or check the id",
                kind=Message(kind),
                id=scope_id,
            )
    now = datetime.now(UTC)
    if expires_at is not None and expires_at <= now:
        raise InvalidKeyRequestError(
            "the expiry {moment} has passed already", moment=expires_at.isoformat()
        )
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    with database.writing() as conn:
        conn.execute(
            api_keys_table.insert().values(
                key_hash=_hash(key),
                key_prefix=key[:PREFIX_LENGTH],
                role=parsed.value,
                venue_id=venue_id,
                volunteer_id=volunteer_id,
                created_at=utc_text(now),
                expires_at=None if expires_at is None else utc_text(expires_at),
            )
        )
    return key


def _is_recorded(database: Database, kind: str, scope_id: str) -> bool:
    """Whether the ledger holds the ``kind`` aggregate ``scope_id`` (its
    stream, as ``ledger.domain`` names it, has events)."""
    stream = stream_id(kind, scope_id)
    return stream in LedgerRecorder(database).select_existing_streams([stream])


def list_keys(database: Database) -> list[KeyListing]:
    """Every key, oldest first, as ``ledger keys list`` shows them."""
    t = api_keys_table.c
    with database.reading() as conn:
        rows = conn.execute(
            sa.select(*LISTED_COLUMNS).order_by(t.created_at, t.key_prefix)
        ).all()
    return [KeyListing(*row) for row in rows]


def revoke_key(database: Database, key_or_prefix: str) -> KeyListing:
    """Revoke the one key that is ``key_or_prefix`` or whose listed prefix
    starts with it, and return it as listed (revoking again changes
    nothing); a prefix that fits no key, or several, is refused."""
    t = api_keys_table.c
    with database.writing() as conn:
        rows = conn.execute(sa.select(t.key_hash, t.key_prefix)).all()
        if len(key_or_prefix) > PREFIX_LENGTH:
            found = [r.key_hash for r in rows if r.key_hash == _hash(key_or_prefix)]
        else:
            found = [r.key_hash for r in rows if r.key_prefix.startswith(key_or_prefix)]
        if not found:
            raise UnknownKeyError(
                "no key is or starts with '{prefix}'", prefix=key_or_prefix
            )
        if len(found) > 1:
            raise AmbiguousKeyPrefixError(
                "'{prefix}' starts {count} keys: give more of the key, "
                "nothing was revoked",
                prefix=key_or_prefix,
                count=len(found),
            )
        conn.execute(
            api_keys_table.update()
            .where(t.key_hash == found[0], t.revoked_at.is_(None))
            .values(revoked_at=utc_text(datetime.now(UTC)))
        )
        row = conn.execute(
            sa.select(*LISTED_COLUMNS).where(t.key_hash == found[0])
        ).one()
    return KeyListing(*row)


class CallerCache:
    """Recently seen keys, so that a busy dashboard's every request does not
    look its key up again. Kept ``ttl`` seconds: a key revoked, expired or
    changed is refused within that time, also by a running server."""

    def __init__(self, ttl_seconds: float = 0.5, size: int = 10_000) -> None:
        self._seen: dict[str, tuple[float, Caller | KeyRefusal]] = {}
        self._ttl, self._size = ttl_seconds, size

    def recent(self, key: str) -> Caller | KeyRefusal | None:
        """What ``key`` was found to be less than ``ttl`` ago, if it was."""
        seen = self._seen.get(key)
        if seen is not None and time.monotonic() - seen[0] < self._ttl:
            return seen[1]
        return None

    def find(self, database: Database, key: str) -> Caller | KeyRefusal:
        """Look ``key`` up in ``database`` and remember what it is."""
        caller = find_caller(database, key)
        if len(self._seen) >= self._size:
            self._seen.clear()
        self._seen[key] = (time.monotonic(), caller)
        return caller


def _note_use(database: Database, digest: str, now: datetime) -> None:
    """Record that the key was used now; a busy ledger skips it (the next
    lookup notes it): bookkeeping must not refuse a request."""
    with contextlib.suppress(LedgerBusyError), database.writing() as conn:
        conn.execute(
            api_keys_table.update()
            .where(api_keys_table.c.key_hash == digest)
            .values(last_used_at=utc_text(now))
        )


# How stale "last used" may be: written at most this often per key, so that
# reads do not each become a write.
LAST_USED_EVERY = timedelta(minutes=10)

UNKNOWN_KEY = KeyRefusal(
    401, "unknown_key", "Unknown API key", Message("the API key is not known")
)


def find_caller(database: Database, key: str) -> Caller | KeyRefusal:
    """Who ``key`` belongs to, or why it is refused (unknown, revoked,
    expired, or of a role this server does not know)."""
    t = api_keys_table.c
    digest = _hash(key)
    with database.reading() as conn:
        row = conn.execute(
            sa.select(
                t.role,
                t.venue_id,
                t.volunteer_id,
                t.key_prefix,
                t.last_used_at,
                t.expires_at,
                t.revoked_at,
                t.key_hash,
            ).where(t.key_hash == digest)
        ).first()
    if row is None:
        return UNKNOWN_KEY
    now = datetime.now(UTC)
    if row.revoked_at is not None:
        return KeyRefusal(
            401,
            "key_revoked",
            "Revoked API key",
            Message("this key was revoked at {moment}", moment=row.revoked_at),
        )
    if row.expires_at is not None and row.expires_at <= utc_text(now):
        return KeyRefusal(
            401,
            "key_expired",
            "Expired API key",
            Message("this key expired at {moment}", moment=row.expires_at),
        )
    try:
        role = Role(row.role)
    except ValueError:
        return KeyRefusal(
            403,
            "unknown_role",
            "The key's role is not known",
            Message(
                "this key's role '{role}' is none this server knows: ask for a new key",
                role=row.role,
            ),
        )
    if row.last_used_at is None or row.last_used_at < utc_text(now - LAST_USED_EVERY):
        _note_use(database, digest, now)
    return Caller(
        role,
        row.venue_id,
        row.volunteer_id,
        row.key_prefix,
        key_id=row.key_hash[:KEY_ID_LENGTH],
    )
