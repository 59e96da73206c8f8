"""A ledger written before personal data was sealed, copied into a new
ledger where it is: the way out of plaintext for an existing ledger.

Its events are copied one for one — same positions, streams, topics,
envelopes and recording times — each personal field sealed on the way (an
event sealed already is copied as it is), and chained again: only the
payloads of registrations and so the chain hashes differ. What is recorded
beside the events (subjects, claims, idempotency keys, API keys, ledger
properties) is copied as it is, and the key directory's ID-number secret and
signing key with it; the new ledger gets a master key of its own. The copy
is one transaction: complete, or nothing. A statement signed with the
ledger's key maps the old chain head to the new one, for whoever holds
checkpoints of the old chain (docs/personal-data.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.store.api_keys import api_keys_table
from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ledger.store.event_store import (
    MASTER_KEY_PROPERTY,
    Database,
    DataKey,
    claims_table,
    data_keys_table,
    event_subjects_table,
    events_table,
    head_position,
    idempotency_keys_table,
    insert_rows,
    properties_table,
    select_rows,
    utc_text,
)
from ledger.store.integrity import (
    ID_NUMBER_SECRET_FILE,
    SIGNING_KEY_FILE,
    KeyMaterialError,
    key_id,
    load_or_create_signing_key,
    verify_chain,
)
from ledger.store.personal_data import (
    MASTER_KEY_FILE,
    PERSONAL_FIELDS_BY_TOPIC,
    SEALED_FIELD,
    KeyFileMasterKey,
    PersonalDataVault,
    ledger_master_key,
    sealing_context,
)

PAGE = 10_000
MAPPING_DOMAIN = b"wenming-ledger sealed copy\n"
# Copied as they are: what an append records beside its events, and the
# HTTP API's keys (the ledger's master key property is the new ledger's own).
BESIDE_EVENTS = (
    event_subjects_table,
    idempotency_keys_table,
    claims_table,
    properties_table,
    api_keys_table,
)


class SealedCopyError(KeyMaterialError):
    """The copy cannot be made as asked; nothing was written."""


@dataclass(frozen=True)
class ChainMapping:
    """A signed statement: "the old ledger's chain at ``position`` is
    ``old_chain_hash``; its sealed copy's there is ``new_chain_hash``"."""

    position: int
    old_chain_hash: str
    new_chain_hash: str
    sealed_events: int
    signed_at: str
    key_id: str
    signature: str

    def message(self) -> bytes:
        return mapping_message(
            self.position, self.old_chain_hash, self.new_chain_hash, self.signed_at
        )

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def mapping_message(position: int, old: str, new: str, signed_at: str) -> bytes:
    """Exactly what a chain mapping signs."""
    return MAPPING_DOMAIN + f"{position}\n{old}\n{new}\n{signed_at}\n".encode("ascii")


def copy_sealed(
    source: Database, source_keys: Path, target: Database, target_keys: Path
) -> ChainMapping:
    """Copy the ledger in ``source`` (its key material in ``source_keys``)
    into the empty ledger ``target``, personal data sealed under a master
    key made in ``target_keys``; the signed mapping of the chain heads."""
    verification = verify_chain(source)
    if not verification.ok:
        raise SealedCopyError(
            "the ledger's chain is broken, nothing was copied: {problem}",
            problem=verification.problem,
        )
    with target.reading() as conn:
        if head_position(conn):
            raise SealedCopyError(
                "the target already holds a ledger; copy into an empty database"
            )
    if target_keys.exists() and any(target_keys.iterdir()):
        raise SealedCopyError(
            "{directory} already holds key material; give the copy a key "
            "directory of its own",
            directory=target_keys,
        )
    signing_key = load_or_create_signing_key(source_keys / SIGNING_KEY_FILE)
    target_keys.mkdir(mode=0o700, parents=True, exist_ok=True)
    target_keys.chmod(0o700)
    for name in (ID_NUMBER_SECRET_FILE, SIGNING_KEY_FILE):
        shutil.copy2(source_keys / name, target_keys / name)
        (target_keys / name).chmod(0o600)
    opener = PersonalDataVault(source, KeyFileMasterKey(source_keys / MASTER_KEY_FILE))
    sealer = PersonalDataVault(target, ledger_master_key(target, target_keys))
    with source.reading() as old, target.appending() as new:
        new_head, sealed = _copy_events(old, new, opener, sealer)
        for table in BESIDE_EVENTS:
            rows = select_rows(old, sa.select(table))
            if table is properties_table:
                rows = [row for row in rows if row[0] != MASTER_KEY_PROPERTY]
            if rows:
                insert_rows(new, table, rows)
    signed_at = utc_text(datetime.now(UTC))
    position, old_head = verification.head_position, verification.head_hash
    return ChainMapping(
        position=position,
        old_chain_hash=old_head,
        new_chain_hash=new_head,
        sealed_events=sealed,
        signed_at=signed_at,
        key_id=key_id(signing_key.public_key()),
        signature=signing_key.sign(
            mapping_message(position, old_head, new_head, signed_at)
        ).hex(),
    )


def _copy_events(
    old: Connection,
    new: Connection,
    opener: PersonalDataVault,
    sealer: PersonalDataVault,
) -> tuple[str, int]:
    """Copy every event, its personal fields sealed under the new ledger's
    keys (those sealed already opened with the old ledger's first; those
    of a person erased copied as they are, unreadable as before), chained
    again; the new head hash and how many events were sealed."""
    previous, sealed = GENESIS_HASH, 0
    made: dict[str, DataKey] = {}
    for page in _event_pages(old):
        rows: list[tuple[Any, ...]] = []
        page_keys: list[DataKey] = []
        for row in page:
            values = dict(zip(CHAINED_FIELDS, row, strict=True))
            topic, stream = values["topic"], values["stream_id"]
            if topic in PERSONAL_FIELDS_BY_TOPIC:
                payload = orjson.loads(values["payload"])
                sealed_before = payload.get(SEALED_FIELD)
                if sealed_before is None or opener.open(
                    sealed_before, sealing_context(stream, topic)
                ):
                    opener.open_payload(topic, stream, payload)
                    new_key = sealer.seal_payload(
                        topic, stream, payload, made, prepared=True
                    )
                    if new_key is not None:
                        made[new_key.subject_id] = new_key
                        page_keys.append(new_key)
                    values["payload"] = orjson.dumps(payload).decode()
                    sealed += 1
            chained = tuple(values[name] for name in CHAINED_FIELDS)
            previous = chain_hash(previous, chained)
            rows.append((*chained, previous))
        insert_rows(new, events_table, rows, (*CHAINED_FIELDS, "chain_hash"))
        if page_keys:
            insert_rows(new, data_keys_table, [key.row() for key in page_keys])
    return previous, sealed


def _event_pages(conn: Connection) -> Iterator[list[tuple[Any, ...]]]:
    t = events_table.c
    columns = [t[name] for name in CHAINED_FIELDS]
    after = 0
    while page := select_rows(
        conn,
        sa.select(*columns).where(t.position > after).order_by(t.position).limit(PAGE),
    ):
        yield page
        after = page[-1][0]
