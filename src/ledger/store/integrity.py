"""Integrity of the ledger: verifying the hash chain, signed checkpoints,
and exporting the events so that others can verify them.

The chain (``ledger.store.chain``) binds every stored event to all before it.
``verify_chain`` recomputes it from the stored rows and names the first
position where the rows and the chain disagree: an edited row breaks its own
hash, a deleted row leaves a gap in the positions, an inserted or reordered
row breaks the hashes from there on. Someone who rewrites a row *and*
recomputes every hash after it produces a consistent chain, which is what
checkpoints are for: a checkpoint is the chain head (position and hash)
signed with the ledger's Ed25519 key, so a rewritten history no longer
matches the hashes it signed. A checkpoint kept outside the database (its
JSON file, with the public key) also catches a rewrite whose forger deleted
the stored checkpoints, and a ledger cut short.

Beside the events, an append writes tables derived from them: the subjects
each event concerns, the claims it makes, the idempotency keys of the
commands. ``verify_derived_tables`` derives them again from the stored
events, with the application's own rules, and names the first difference.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson
import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent
from sqlalchemy.engine import Connection

from ledger.domain.messages import TranslatedError
from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ledger.store.event_store import (
    Database,
    chain_hash_at,
    claims_table,
    data_keys_table,
    event_subjects_table,
    events_table,
    head_position,
    idempotency_keys_table,
    insert_rows,
    metadata,
    normalise_database_url,
    placeholder,
    read_property,
    select_rows_among,
    sqlite_database_file,
    stream_rows,
    utc_text,
    write_property,
)
from ledger.store.personal_data import (
    ERASURE_TOPIC,
    PERSONAL_FIELDS_BY_TOPIC,
    SEALED_FIELD,
)
from ledger.store.secret_files import read_secret_file, write_secret_file

if TYPE_CHECKING:
    # cryptography is imported where a key is used: a read needs none.
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

checkpoints_table = sa.Table(
    "ledger_checkpoints",
    metadata,
    sa.Column("position", sa.BigInteger, primary_key=True),
    sa.Column("chain_hash", sa.String(64), nullable=False),
    sa.Column("signed_at", sa.String(27), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Column("signature", sa.String(128), nullable=False),
)

# One row per whole verification (``ledger verify``, ``GET /audit/verify``):
# its outcome, the head it checked and when, so that a server can report the
# last one (``/metrics``) without running it.
verifications_table = sa.Table(
    "ledger_verifications",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("verified_at", sa.String(27), nullable=False),
)

CHECKPOINT_DOMAIN = b"wenming-ledger checkpoint v1\n"
VERIFY_PAGE = 50_000


# --- the chain -----------------------------------------------------------


@dataclass(frozen=True)
class ChainVerification:
    """What a walk along the chain found."""

    checked: int
    head_position: int
    head_hash: str
    first_bad_position: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_position is None


def walk_chain(
    rows: Iterable[Sequence[Any]],
    previous_hash: str = GENESIS_HASH,
    expected: int = 1,
) -> ChainVerification:
    """Check stored rows (CHAINED_FIELDS then chain_hash, in position order)
    from position ``expected``, whose predecessor's hash is ``previous_hash``."""
    checked = 0
    width = len(CHAINED_FIELDS)
    for row in rows:
        position = row[0]
        if position != expected:
            problem = (
                f"position {expected} is missing (the next stored is {position})"
                if position > expected
                else f"position {position} comes again after {expected - 1}"
            )
            return ChainVerification(
                checked, expected - 1, previous_hash, expected, problem
            )
        computed = chain_hash(previous_hash, row[:width])
        if computed != row[width]:
            return ChainVerification(
                checked,
                position - 1,
                previous_hash,
                position,
                f"the stored event at position {position} does not match its chain "
                "hash: it, or an event before it, was altered",
            )
        previous_hash, expected, checked = computed, expected + 1, checked + 1
    return ChainVerification(checked, expected - 1, previous_hash)


def stored_chain_rows(
    conn: Connection,
    *,
    after: int = 0,
    upto: int | None = None,
    page_size: int = VERIFY_PAGE,
) -> Iterator[tuple[Any, ...]]:
    """Stored events' chained fields and hash in positions (after, upto], in
    position order."""
    columns = (*CHAINED_FIELDS, "chain_hash")
    for page in stored_event_pages(
        conn, columns, after=after, upto=upto, page_size=page_size
    ):
        yield from page


def stored_event_pages(
    conn: Connection,
    columns: Sequence[str],
    *,
    after: int = 0,
    upto: int | None = None,
    page_size: int = VERIFY_PAGE,
) -> Iterator[list[tuple[Any, ...]]]:
    """Stored events' ``columns`` (the first: ``position``) in positions
    (after, upto], in position order, read in pages through the driver's
    cursor."""
    mark = placeholder(conn)
    bound = "" if upto is None else f" AND position <= {int(upto)}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        while True:
            cursor.execute(
                f"SELECT {', '.join(columns)} FROM {events_table.name} "
                f"WHERE position > {mark}{bound} "
                f"ORDER BY position LIMIT {int(page_size)}",
                (after,),
            )
            rows = list(cursor.fetchall())
            if rows:
                yield rows
            if len(rows) < page_size:
                return
            after = rows[-1][0]
    finally:
        cursor.close()


# Below this many events, starting worker processes costs more than it saves.
PARALLEL_FROM = 200_000


def verify_chain(
    database: Database, *, workers: int | None = None
) -> ChainVerification:
    """Walk the whole chain. Each link can be checked against the stored hash
    of its predecessor, so stretches of the chain are checked in parallel
    (one worker process per core) and the earliest problem wins."""
    with database.reading() as conn:
        head = head_position(conn)
    workers = workers or os.cpu_count() or 1
    if workers == 1 or head < PARALLEL_FROM:
        return _walk_stretch(database.url, 0, head)
    bounds = [head * part // workers for part in range(workers + 1)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        stretches = list(
            pool.map(_walk_stretch, [database.url] * workers, bounds[:-1], bounds[1:])
        )
    checked = 0
    for stretch in stretches:
        checked += stretch.checked
        if not stretch.ok:
            return replace(stretch, checked=checked)
    return replace(stretches[-1], checked=checked)


def _walk_stretch(url: str, after: int, upto: int) -> ChainVerification:
    """Check positions (after, upto], trusting the stored hash at ``after``
    only as the link the next position must chain to."""
    database = Database(url)
    try:
        with database.reading() as conn:
            previous = chain_hash_at(conn, after)
            return walk_chain(
                stored_chain_rows(conn, after=after, upto=upto), previous, after + 1
            )
    finally:
        database.dispose()


# --- the tables derived from the events ----------------------------------------

DERIVE_PAGE = 10_000
# Streams whose origin is kept from one page to the next: a bounded number,
# so that a ledger of millions of streams is checked in bounded memory.
ORIGINS_KEPT = 200_000


@dataclass(frozen=True)
class RecordedBeside:
    """What an append records beside one event: the subjects the event
    concerns, and the unique values (claims) it takes for its stream."""

    subjects: frozenset[tuple[str, str]]
    claims: tuple[tuple[str, str], ...]


Origin = TypeVar("Origin")


class EventDerivation(Protocol[Origin]):
    """The application's rules for what an append records beside each event,
    for ``verify`` to apply again to the stored events: the very functions
    the append calls, so that no copy of them can drift apart."""

    def stream_origin(self, first_event: StoredEvent) -> Origin:
        """What the rules need to know of a stream, from its first event."""
        ...

    def recorded_beside(self, origin: Origin, event: StoredEvent) -> RecordedBeside:
        """What appending ``event``, of a stream of ``origin``, recorded."""
        ...


@dataclass(frozen=True)
class DerivedTableVerification:
    """A table derived from the events against a fresh derivation: the rows
    the events give, and the first difference."""

    table: str
    rows: int
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_derived_tables(
    database: Database,
    derivation: EventDerivation[Any],
    *,
    page_size: int = DERIVE_PAGE,
) -> list[DerivedTableVerification]:
    """Derive the subjects, claims and idempotency keys again from the stored
    events and compare them with the stored tables, naming each table's
    first difference. Events are read a page at a time by position, and the
    stored subjects and keys in position order alongside them; claims, which
    carry no position, are compared in the database. One read transaction:
    one snapshot of the events and the tables alike."""
    with (
        database.reading() as conn,
        _stored_by_position(conn, _STORED_SUBJECTS) as stored_subjects,
        _stored_by_position(conn, _STORED_KEYS) as stored_keys,
    ):
        subjects = _PositionedComparison(
            event_subjects_table.name, stored_subjects, _subject_names
        )
        keys = _PositionedComparison(
            idempotency_keys_table.name, stored_keys, _key_spans
        )
        claims = _ClaimComparison(conn)
        data_keys = _DataKeyComparison(conn)
        _walk_events(conn, derivation, page_size, subjects, keys, claims, data_keys)
        return [subjects.finish(), claims.finish(), keys.finish(), data_keys.finish()]


_EVENT_COLUMNS = (
    "position",
    "stream_id",
    "stream_version",
    "topic",
    "payload",
    "idempotency_key",
    "source",
    "caller",
    "fingerprint",
)


def _walk_events(
    conn: Connection,
    derivation: EventDerivation[Any],
    page_size: int,
    subjects: _PositionedComparison,
    keys: _PositionedComparison,
    claims: _ClaimComparison,
    data_keys: _DataKeyComparison,
) -> None:
    """Derive every event's subjects and claims, and the commands' key spans
    (a key spans the positions whose envelope carries it, in its caller's
    key space and with its command's fingerprint), and hand them on in
    position order."""
    origins = _Origins(conn, derivation)
    # (caller, key, fingerprint), and the span's first and last position
    span: tuple[tuple[str, str, str | None], int, int] | None = None
    for page in stored_event_pages(conn, _EVENT_COLUMNS, page_size=page_size):
        origins.load({row[1] for row in page})
        for row in page:
            position, stream_id, version, topic, payload = row[:5]
            event = StoredEvent(stream_id, version, topic, payload.encode())
            data_keys.push(stream_id, topic, payload)
            try:
                beside = origins.derive(stream_id, event)
            except UnderivableEventError as error:
                problem = f"the event at position {position} {error}"
                subjects.fail(position, problem)
                claims.fail(position, problem)
            else:
                subjects.push(position, beside.subjects)
                if beside.claims:
                    claims.add(position, stream_id, beside.claims)
            used = _key_used(*row[5:])
            if span and used == span[0] and position == span[2] + 1:
                span = (used, span[1], position)
                continue
            if span:
                keys.push(span[1], frozenset({(*span[0], span[2])}))
            span = (used, position, position) if used is not None else None
        claims.flush()
    if span:
        keys.push(span[1], frozenset({(*span[0], span[2])}))


def _key_used(
    key: str | None, source: str, caller: str | None, fingerprint: str | None
) -> tuple[str, str, str | None] | None:
    """The (caller, key, fingerprint) an event was recorded under, if keyed.
    An event recorded before callers were (before revision 0005) has its
    source for caller, and no fingerprint."""
    return None if key is None else (caller or source, key, fingerprint)


class UnderivableEventError(Exception):
    """A stored event the application's rules cannot be applied to."""


class _Origins:
    """The origins of the streams of a page of events, from their first
    events; the most recently used are kept for later pages."""

    def __init__(self, conn: Connection, derivation: EventDerivation[Any]) -> None:
        self._conn = conn
        self._derivation = derivation
        self._kept: OrderedDict[str, Any] = OrderedDict()

    def load(self, streams: set[str]) -> None:
        unseen = []
        for stream in streams:
            if stream in self._kept:
                self._kept.move_to_end(stream)
            else:
                unseen.append(stream)
        t = events_table.c
        first_events = sa.select(t.stream_id, t.topic, t.payload).where(
            t.stream_version == 1
        )
        for stream, topic, payload in select_rows_among(
            self._conn, first_events, t.stream_id, unseen
        ):
            first = StoredEvent(stream, 1, topic, payload.encode())
            try:
                self._kept[stream] = self._derivation.stream_origin(first)
            except Exception as error:  # whatever decoding the stored event raised
                self._kept[stream] = UnderivableEventError(
                    f"belongs to a stream whose first event does not decode "
                    f"({type(error).__name__}: {error})"
                )
        for stream in unseen:
            if stream not in self._kept:
                self._kept[stream] = UnderivableEventError(
                    "belongs to a stream that has no first event"
                )
        while len(self._kept) > max(ORIGINS_KEPT, len(streams)):
            self._kept.popitem(last=False)

    def derive(self, stream: str, event: StoredEvent) -> RecordedBeside:
        origin = self._kept[stream]
        if isinstance(origin, UnderivableEventError):
            raise origin
        try:
            return self._derivation.recorded_beside(origin, event)
        except Exception as error:  # whatever decoding the stored event raised
            raise UnderivableEventError(
                f"does not decode ({type(error).__name__}: {error})"
            ) from None


Rows = frozenset[tuple[Any, ...]]

_STORED_SUBJECTS = (
    f"SELECT position, kind, subject_id FROM {event_subjects_table.name} "
    "ORDER BY position"
)
_STORED_KEYS = (
    "SELECT first_position, caller, key, fingerprint, last_position "
    f"FROM {idempotency_keys_table.name} ORDER BY first_position"
)


@contextmanager
def _stored_by_position(
    conn: Connection, query: str
) -> Iterator[Iterator[tuple[int, Rows]]]:
    """The rows of ``query`` (a position, ordered by, and other columns)
    grouped by position, streamed as they are consumed."""
    with closing(stream_rows(conn, query, batch=DERIVE_PAGE)) as rows:
        yield (
            (position, frozenset(row[1:] for row in group))
            for position, group in groupby(rows, key=itemgetter(0))
        )


class _PositionedComparison:
    """A derived table's rows, position by position as the events are
    walked, against its stored rows read alongside in position order; keeps
    the first difference."""

    def __init__(
        self,
        table: str,
        stored: Iterator[tuple[int, Rows]],
        describe: Callable[[int, Rows], str],
    ) -> None:
        self.table = table
        self._stored = stored
        self._describe = describe
        self._next = next(stored, None)
        self.rows = 0
        self.problem: str | None = None

    def push(self, position: int, derived: Rows) -> None:
        """The rows the event at ``position`` gives (positions ascending)."""
        self.rows += len(derived)
        if self.problem is None:
            stored = self._stored_at(position)
            if self.problem is None and derived != stored:
                self._differ(position, derived, stored)

    def fail(self, position: int, problem: str) -> None:
        """Nothing could be derived from the event at ``position``."""
        if self.problem is None:
            self._stored_at(position)
            self.problem = self.problem or problem

    def finish(self) -> DerivedTableVerification:
        if self.problem is None and self._next is not None:
            self._differ(self._next[0], frozenset(), self._next[1])
        return DerivedTableVerification(self.table, self.rows, self.problem)

    def _stored_at(self, position: int) -> Rows:
        """The stored rows at ``position``; stored rows before it, which no
        event gave, are the difference."""
        if self._next is None or self._next[0] > position:
            return frozenset()
        at, stored = self._next
        self._next = next(self._stored, None)
        if at < position:
            self._differ(at, frozenset(), stored)
            return frozenset()
        return stored

    def _differ(self, position: int, derived: Rows, stored: Rows) -> None:
        missing, extra = derived - stored, stored - derived
        self.problem = f"at position {position}: " + "; ".join(
            [
                *([f"missing {self._describe(position, missing)}"] if missing else []),
                *([f"extra {self._describe(position, extra)}"] if extra else []),
            ]
        )


def _subject_names(_position: int, rows: Rows) -> str:
    return ", ".join(sorted(f"{kind}:{subject_id}" for kind, subject_id in rows))


def _key_spans(first: int, rows: Rows) -> str:
    return ", ".join(
        sorted(
            f"key {key!r} of {caller} (positions {first}–{last}, fingerprint "
            f"{fingerprint[:12] if fingerprint else 'none'})"
            for caller, key, fingerprint, last in rows
        )
    )


derived_claims_table = sa.Table(
    "verify_derived_claims",
    sa.MetaData(),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("value", sa.String(64), nullable=False),
    sa.Column("stream_id", sa.String(36), nullable=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Index("verify_derived_claims_value", "kind", "value"),
    prefixes=["TEMPORARY"],
)


class _ClaimComparison:
    """Claims derived from the events, gathered in a temporary table and
    compared with the stored ones by the database: a claim carries no
    position to read it alongside its event by."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._pending: list[tuple[str, str, str, int]] = []
        self._failed: tuple[int, str] | None = None
        self.rows = 0
        derived_claims_table.create(conn)

    def add(
        self, position: int, stream: str, claims: Sequence[tuple[str, str]]
    ) -> None:
        self._pending.extend((kind, value, stream, position) for kind, value in claims)

    def fail(self, position: int, problem: str) -> None:
        self._failed = self._failed or (position, problem)

    def flush(self) -> None:
        if self._pending:
            insert_rows(self._conn, derived_claims_table, self._pending)
            self.rows += len(self._pending)
            self._pending.clear()

    def finish(self) -> DerivedTableVerification:
        self.flush()
        d, c = derived_claims_table.c, claims_table.c
        unmatched = self._conn.execute(
            sa.select(d.position, d.kind, d.stream_id, c.stream_id)
            .outerjoin(claims_table, (c.kind == d.kind) & (c.value == d.value))
            .where(sa.or_(c.stream_id.is_(None), c.stream_id != d.stream_id))
            .order_by(d.position)
            .limit(1)
        ).first()
        unmade = self._conn.execute(
            sa.select(c.kind, c.stream_id)
            .where(
                ~sa.exists().where(
                    d.kind == c.kind, d.value == c.value, d.stream_id == c.stream_id
                )
            )
            .order_by(c.stream_id, c.kind)
            .limit(1)
        ).first()
        derived_claims_table.drop(self._conn)
        return DerivedTableVerification(
            claims_table.name, self.rows, self._problem(unmatched, unmade)
        )

    def _problem(self, unmatched: Any, unmade: Any) -> str | None:
        """The first difference: by the position of the event that makes the
        claim (or that nothing could be derived from), else a stored claim no
        event makes. Claim values are not shown: an ID number's is a digest."""
        if unmatched is not None and (
            self._failed is None or unmatched[0] < self._failed[0]
        ):
            position, kind, stream, holder = unmatched
            whose = "is missing" if holder is None else f"is held by stream {holder}"
            return (
                f"at position {position}: the {kind} claim the event makes for "
                f"stream {stream} {whose}"
            )
        if self._failed is not None:
            return self._failed[1]
        if unmade is not None:
            kind, stream = unmade
            return f"a {kind} claim held by stream {stream} is made by no event"
        return None


class _DataKeyComparison:
    """The data keys the events call for — one for each person whose
    personal data they seal, unless the person's erasure is recorded —
    against those stored: a key deleted with no erasure recorded (personal
    data lost, or erased unrecorded), or kept after one, is named."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._sealed: dict[str, str] = {}  # stream -> whose key seals it
        self._erased: set[str] = set()  # streams with an erasure recorded

    def push(self, stream: str, topic: str, payload: str) -> None:
        if topic == ERASURE_TOPIC:
            self._erased.add(stream)
        elif topic in PERSONAL_FIELDS_BY_TOPIC:
            with suppress(orjson.JSONDecodeError):  # named by the other tables
                sealed = orjson.loads(payload).get(SEALED_FIELD)
                if isinstance(sealed, dict):
                    self._sealed[stream] = str(sealed.get("subject"))

    def finish(self) -> DerivedTableVerification:
        called_for = {
            subject
            for stream, subject in self._sealed.items()
            if stream not in self._erased
        }
        stored = set(
            self._conn.execute(sa.select(data_keys_table.c.subject_id)).scalars()
        )
        missing, kept = sorted(called_for - stored), sorted(stored - called_for)
        problem = None
        if missing:
            problem = (
                f"the data key of '{missing[0]}' is missing, and no erasure of "
                f"theirs is recorded ({len(missing)} such)"
            )
        elif kept:
            problem = (
                f"a data key of '{kept[0]}' is stored, whose personal data no "
                f"event seals or whose erasure is recorded ({len(kept)} such)"
            )
        return DerivedTableVerification(data_keys_table.name, len(called_for), problem)


# --- key material ------------------------------------------------------------

# The setting naming the directory of the ledger's key material: the key
# that signs checkpoints, and the secret ID numbers are digested with.
KEY_DIRECTORY_SETTING = "LEDGER_KEY_DIRECTORY"
SIGNING_KEY_FILE = "signing-key.pem"
ID_NUMBER_SECRET_FILE = "id-number-secret"
# The property naming the secret the ledger's ID-number claims were made
# with (by ``secret_id``); absent on a new ledger and on one of the first
# release, whose claims are plain SHA-256.
ID_NUMBER_DIGEST_PROPERTY = "id_number_digest"
# The property naming the key the ledger signs with (by ``key_id``),
# recorded at its first signature.
SIGNING_KEY_PROPERTY = "signing_key_id"


class KeyMaterialError(TranslatedError):
    """The ledger's key material is not where it belongs, or is not the key
    it signs with; the message says what to do."""


def key_directory(database_url: str, configured: Path | None) -> Path:
    """Where the ledger keeps its key material: the configured directory;
    else beside its SQLite database file (``ledger.db`` keeps its keys in
    ``ledger.keys/``); else, for a server database, in the user's data
    directory under a name of the database (``$XDG_DATA_HOME`` or
    ``~/.local/share``, then ``ledger/<host>-<port>-<database>.keys``). Every
    command finds the same keys whatever its working directory."""
    if configured is not None:
        directory = configured.expanduser()
        if not directory.is_absolute():
            raise KeyMaterialError(
                "{setting} must be an absolute path, not "
                "'{configured}': a relative one changes with the working directory",
                setting=KEY_DIRECTORY_SETTING,
                configured=configured,
            )
        return directory
    url = sa.engine.make_url(normalise_database_url(database_url))
    if url.get_backend_name() != "sqlite":
        return _user_data_directory() / "ledger" / _server_database_name(url)
    database_file = sqlite_database_file(database_url)
    if database_file is None:
        raise KeyMaterialError(
            "{setting} is not set: a ledger in memory has no place "
            "of its own for its keys",
            setting=KEY_DIRECTORY_SETTING,
        )
    return database_file.with_name(f"{database_file.stem}.keys")


def _user_data_directory() -> Path:
    configured = os.environ.get("XDG_DATA_HOME")
    if configured and Path(configured).is_absolute():
        return Path(configured)
    return Path.home() / ".local" / "share"


def _server_database_name(url: sa.engine.URL) -> str:
    """``host-port-database.keys``, in characters safe in a file name."""
    parts = (url.host or "localhost", str(url.port or ""), url.database or "")
    name = "-".join(part for part in parts if part)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name) + ".keys"


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: its SHA-256 (hex, 16 bytes)."""
    from cryptography.hazmat.primitives import serialization

    raw = public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:32]


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The private key in ``path`` (PEM, PKCS#8), created on first use for
    its owner only: the file 0600, a directory made for it 0700."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyMaterialError(
                "{path} does not hold an Ed25519 private key", path=path
            )
        return key
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
        path.parent.chmod(0o700)  # whatever the umask left of it
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    return key


def secret_id(secret: bytes) -> str:
    """A name for a secret that does not reveal it: its SHA-256 (hex, 16
    bytes), under a label of its own."""
    return hashlib.sha256(b"wenming-ledger secret id\n" + secret).hexdigest()[:32]


def id_number_digest_in_use(database: Database) -> str | None:
    """The id of the secret the ledger's ID-number claims were made with."""
    with database.reading() as conn:
        return read_property(conn, ID_NUMBER_DIGEST_PROPERTY)


def ledger_id_number_secret(database: Database, directory: Path) -> bytes:
    """The secret the ledger digests ID numbers with (HMAC-SHA256), from its
    key directory: 32 random bytes as hex, created on first need for its
    owner only (the file 0600, a directory made for it 0700). Never created
    for a ledger whose claims were made with a secret already: that secret
    is missing then, and a new one would let duplicate ID numbers in."""
    path = directory / ID_NUMBER_SECRET_FILE
    if path.exists():
        secret = read_secret_file(path)
        if secret is None:
            raise KeyMaterialError(
                "{path} does not hold a 32-byte secret as hex", path=path
            )
        return secret
    in_use = id_number_digest_in_use(database)
    if in_use is not None:
        raise KeyMaterialError(
            "no {file} in {directory}, but the ledger's ID "
            "numbers were digested with secret id {secret_id}: put that secret "
            "there, or set {setting} to where it is",
            file=ID_NUMBER_SECRET_FILE,
            directory=directory,
            secret_id=in_use,
            setting=KEY_DIRECTORY_SETTING,
        )
    # Another process making it first is no harm: theirs is the one.
    with suppress(FileExistsError):
        write_secret_file(path)
    return ledger_id_number_secret(database, directory)


def ledger_signing_key(database: Database, directory: Path) -> Ed25519PrivateKey:
    """The ledger's signing key, from its key directory. The key a ledger
    first signs with (a certificate or a checkpoint) is recorded in it, and
    no other is used after: what a second key signed would not verify with
    the ledger's public key. So a key is created only for a ledger that has
    never signed; one missing or another key in its place is refused."""
    path = directory / SIGNING_KEY_FILE
    signed_with = signing_key_ids(database)
    if not path.exists() and signed_with:
        raise KeyMaterialError(
            "no signing key in {directory}, but the ledger signs with key id "
            "{key_ids}: put that key there as {file}, or set {setting} to where it is",
            directory=directory,
            key_ids=", ".join(signed_with),
            file=SIGNING_KEY_FILE,
            setting=KEY_DIRECTORY_SETTING,
        )
    key = load_or_create_signing_key(path)
    own = key_id(key.public_key())
    _refuse_another_key(own, signed_with)
    if not signed_with:
        with database.writing() as conn:
            write_property(conn, SIGNING_KEY_PROPERTY, own)
    return key


def signing_key_ids(database: Database) -> list[str]:
    """The ids of the keys the ledger has signed with: the one recorded at
    its first signature; for a ledger signed before that was recorded, the
    keys its checkpoints name."""
    with database.reading() as conn:
        recorded = read_property(conn, SIGNING_KEY_PROPERTY)
    return [recorded] if recorded else checkpoint_key_ids(database)


def _refuse_another_key(own: str, signed_with: list[str]) -> None:
    if signed_with and own not in signed_with:
        raise KeyMaterialError(
            "refusing to sign with key id {key_id}: the ledger signs with key id "
            "{key_ids}; put that key in the ledger's key directory ({setting})",
            key_id=own,
            key_ids=", ".join(signed_with),
            setting=KEY_DIRECTORY_SETTING,
        )


def own_public_key(
    database_url: str, configured_directory: Path | None
) -> Ed25519PublicKey | None:
    """The public half of the ledger's signing key, if it has one yet."""
    try:
        path = key_directory(database_url, configured_directory) / SIGNING_KEY_FILE
    except KeyMaterialError:
        return None
    if not path.exists():
        return None
    return load_or_create_signing_key(path).public_key()


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


# --- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: "the ledger's chain at ``position`` is ``chain_hash``"."""

    position: int
    chain_hash: str
    signed_at: str
    key_id: str
    signature: str

    def message(self) -> bytes:
        return checkpoint_message(self.position, self.chain_hash, self.signed_at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "chain_hash": self.chain_hash,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
            "signature": self.signature,
        }


def checkpoint_message(position: int, head_hash: str, signed_at: str) -> bytes:
    """Exactly what a checkpoint signs."""
    return CHECKPOINT_DOMAIN + f"{position}\n{head_hash}\n{signed_at}\n".encode("ascii")


def write_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """The checkpoint as a JSON file, to be kept outside the ledger."""
    path.write_bytes(orjson.dumps(checkpoint.as_dict(), option=orjson.OPT_INDENT_2))


_CHECKPOINT_FIELDS = {
    "position": int,
    "chain_hash": str,
    "signed_at": str,
    "key_id": str,
    "signature": str,
}


def read_checkpoint(path: Path) -> Checkpoint:
    """A checkpoint from its JSON file (``ledger checkpoint`` prints it and
    writes it with ``--out``); ``ValueError`` says what is wrong with it."""
    try:
        document = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as error:
        raise ValueError(f"cannot read a checkpoint from {path}: {error}") from None
    if not (
        isinstance(document, dict)
        and set(document) == set(_CHECKPOINT_FIELDS)
        and all(isinstance(document[f], t) for f, t in _CHECKPOINT_FIELDS.items())
    ):
        raise ValueError(
            f"{path} is not a checkpoint: it must hold exactly "
            f"{', '.join(_CHECKPOINT_FIELDS)}"
        )
    return Checkpoint(**document)


def checkpoint_key_ids(database: Database) -> list[str]:
    """The ids of the keys the stored checkpoints were signed with."""
    with database.reading() as conn:
        return list(
            conn.execute(
                sa.select(checkpoints_table.c.key_id)
                .distinct()
                .order_by(checkpoints_table.c.key_id)
            ).scalars()
        )


def sign_checkpoint(database: Database, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the current chain head, after checking the chain up to it, with
    the key the ledger signs with (any other is refused: checkpoints under
    two keys cannot all be checked with the public key)."""
    _refuse_another_key(key_id(key.public_key()), signing_key_ids(database))
    verification = verify_chain(database)
    if not verification.ok:
        raise ValueError(f"the chain is broken, nothing signed: {verification.problem}")
    signed_at = utc_text(datetime.now(UTC))
    message = checkpoint_message(
        verification.head_position, verification.head_hash, signed_at
    )
    checkpoint = Checkpoint(
        position=verification.head_position,
        chain_hash=verification.head_hash,
        signed_at=signed_at,
        key_id=key_id(key.public_key()),
        signature=key.sign(message).hex(),
    )
    with database.writing() as conn:
        conn.execute(
            checkpoints_table.delete().where(
                checkpoints_table.c.position == checkpoint.position
            )
        )
        conn.execute(checkpoints_table.insert().values(**checkpoint.as_dict()))
    return checkpoint


def list_checkpoints(database: Database) -> list[Checkpoint]:
    with database.reading() as conn:
        rows = conn.execute(
            sa.select(checkpoints_table).order_by(checkpoints_table.c.position)
        )
        return [Checkpoint(**row._asdict()) for row in rows]


@dataclass(frozen=True)
class VerificationRecord:
    """A whole verification's outcome, the head it checked, and when."""

    position: int
    ok: bool
    verified_at: datetime


def record_verification(database: Database, position: int, ok: bool) -> None:
    """Note a whole verification's outcome (chain, checkpoints, derived
    tables and projections) at the head ``position`` it checked."""
    with database.writing() as conn:
        conn.execute(
            verifications_table.insert().values(
                position=position, ok=ok, verified_at=utc_text(datetime.now(UTC))
            )
        )


def last_verification(conn: Connection) -> VerificationRecord | None:
    """The latest noted verification, if any."""
    t = verifications_table.c
    row = conn.execute(
        sa.select(t.position, t.ok, t.verified_at).order_by(t.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    return VerificationRecord(
        row.position, bool(row.ok), datetime.fromisoformat(row.verified_at)
    )


@dataclass(frozen=True)
class CheckpointVerification:
    checkpoint: Checkpoint
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def check_checkpoint(
    checkpoint: Checkpoint,
    public_key: Ed25519PublicKey,
    hashes_by_position: dict[int, str],
    chain: ChainVerification,
) -> CheckpointVerification:
    """Is the signature good, and does the chain still hold the signed hash?"""
    from cryptography.exceptions import InvalidSignature

    if checkpoint.key_id != key_id(public_key):
        return CheckpointVerification(
            checkpoint,
            f"it names key id {checkpoint.key_id}, not the public key's "
            f"{key_id(public_key)}",
        )
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint.message())
    except (InvalidSignature, ValueError):
        return CheckpointVerification(checkpoint, "its signature does not verify")
    broken_at = chain.first_bad_position
    if broken_at is not None and broken_at <= checkpoint.position:
        return CheckpointVerification(
            checkpoint,
            f"the chain breaks at position {broken_at}, at or before the position "
            f"{checkpoint.position} it signs: {chain.problem}",
        )
    if checkpoint.position > chain.head_position:
        return CheckpointVerification(
            checkpoint,
            f"it signs position {checkpoint.position} but the chain ends at "
            f"{chain.head_position}: events were removed",
        )
    recorded = hashes_by_position.get(checkpoint.position, GENESIS_HASH)
    if recorded != checkpoint.chain_hash:
        return CheckpointVerification(
            checkpoint,
            f"the chain hash at position {checkpoint.position} is no longer the one "
            "signed: history before it was rewritten",
        )
    return CheckpointVerification(checkpoint)


NO_PUBLIC_KEY = (
    "no public key to check it with (pass one, or keep the ledger's signing key "
    f"in its key directory, {KEY_DIRECTORY_SETTING})"
)


@dataclass
class AuditVerification:
    """The whole chain, every checkpoint (stored, and kept outside the
    ledger), and every table derived from the events."""

    chain: ChainVerification
    checkpoints: list[CheckpointVerification] = field(default_factory=list)
    kept_outside: list[CheckpointVerification] = field(default_factory=list)
    derived: list[DerivedTableVerification] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.chain.ok
            and all(c.ok for c in self.checkpoints)
            and all(c.ok for c in self.kept_outside)
            and all(d.ok for d in self.derived)
        )


def verify_ledger(
    database: Database,
    public_key: Ed25519PublicKey | None,
    derivation: EventDerivation[Any],
    *,
    kept_outside: Sequence[Checkpoint] = (),
) -> AuditVerification:
    """Walk the chain; check every stored checkpoint, and those kept outside
    the ledger (which also catch a rewrite whose forger deleted the stored
    ones, and a ledger cut short), against it; and compare the tables
    derived from the events with a fresh derivation."""
    checkpoints = list_checkpoints(database)
    chain = verify_chain(database)
    with database.reading() as conn:
        hashes = {
            c.position: chain_hash_at(conn, c.position)
            for c in (*checkpoints, *kept_outside)
        }

    def check(checkpoint: Checkpoint) -> CheckpointVerification:
        if public_key is None:
            return CheckpointVerification(checkpoint, NO_PUBLIC_KEY)
        return check_checkpoint(checkpoint, public_key, hashes, chain)

    return AuditVerification(
        chain,
        [check(c) for c in checkpoints],
        [check(c) for c in kept_outside],
        verify_derived_tables(database, derivation),
    )


def verify_exported_events(
    lines: Iterable[bytes], checkpoint: Checkpoint, public_key_pem_bytes: bytes
) -> CheckpointVerification:
    """Verify a checkpoint with nothing but the public key and the events
    (as written by ``export_events``): recompute the chain from the exported
    rows and check the signed hash against it."""
    hashes: dict[int, str] = {}

    def rows() -> Iterator[list[Any]]:
        for line in lines:
            document = orjson.loads(line)
            # .get: exports made before revision 0005 lack the fields added since
            row = [document.get(name) for name in CHAINED_FIELDS]
            row.append(document["chain_hash"])
            if row[0] == checkpoint.position:
                hashes[row[0]] = row[-1]
            yield row

    chain = walk_chain(rows())
    return check_checkpoint(
        checkpoint, load_public_key(public_key_pem_bytes), hashes, chain
    )


def export_events(database: Database) -> Iterator[bytes]:
    """Every stored event, one JSON object per line, with its chain hash."""
    names = (*CHAINED_FIELDS, "chain_hash")
    with database.reading() as conn:
        for row in stored_chain_rows(conn):
            yield orjson.dumps(dict(zip(names, row, strict=True))) + b"\n"
