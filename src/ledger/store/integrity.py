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
matches the hashes it signed.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from sqlalchemy.engine import Connection

from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ledger.store.event_store import (
    Database,
    chain_hash_at,
    head_position,
    metadata,
    placeholder,
    utc_text,
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
    position order, read in pages through the driver's cursor."""
    columns = ", ".join((*CHAINED_FIELDS, "chain_hash"))
    mark = placeholder(conn)
    bound = "" if upto is None else f" AND position <= {int(upto)}"
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        while True:
            cursor.execute(
                f"SELECT {columns} FROM ledger_events WHERE position > {mark}{bound} "
                f"ORDER BY position LIMIT {int(page_size)}",
                (after,),
            )
            rows = cursor.fetchall()
            yield from rows
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


# --- signing keys ----------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: its SHA-256 (hex, 16 bytes)."""
    raw = public_key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return hashlib.sha256(raw).hexdigest()[:32]


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """The ledger's private key (PEM, PKCS#8), created on first use with
    permissions for its owner only."""
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"{path} does not hold an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.touch(mode=0o600)
    path.write_bytes(pem)
    return key


def own_public_key(signing_key_file: Path) -> Ed25519PublicKey | None:
    """The public half of the ledger's signing key, if it has one yet."""
    if not signing_key_file.exists():
        return None
    return load_or_create_signing_key(signing_key_file).public_key()


def public_key_pem(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes) -> Ed25519PublicKey:
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


def sign_checkpoint(database: Database, key: Ed25519PrivateKey) -> Checkpoint:
    """Sign the current chain head, after checking the chain up to it."""
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


@dataclass
class AuditVerification:
    """The whole chain and every checkpoint."""

    chain: ChainVerification
    checkpoints: list[CheckpointVerification] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and all(c.ok for c in self.checkpoints)


def verify_ledger(
    database: Database, public_key: Ed25519PublicKey | None
) -> AuditVerification:
    """Walk the chain, and check every stored checkpoint against it."""
    checkpoints = list_checkpoints(database)
    chain = verify_chain(database)
    with database.reading() as conn:
        hashes = {c.position: chain_hash_at(conn, c.position) for c in checkpoints}
    result = AuditVerification(chain)
    for checkpoint in checkpoints:
        result.checkpoints.append(
            CheckpointVerification(checkpoint, "no public key to check it with")
            if public_key is None
            else check_checkpoint(checkpoint, public_key, hashes, chain)
        )
    return result


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
            row = [document[name] for name in CHAINED_FIELDS] + [document["chain_hash"]]
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
