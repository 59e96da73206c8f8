"""Personal data sealed at rest, per volunteer (crypto-shredding).

The personal fields of an event (a registration's name, ID number and phone)
are stored as one ``"personal"`` field: AES-GCM ciphertext under the data key
of the person they are about, bound by its associated data to the event's
stream and topic, so a blob cannot be moved to another event. The chain
hashes the stored payload, ciphertext and all. Data keys live in
``ledger_data_keys``, each wrapped by the ledger's master key (``MasterKey``:
a key file by default, a KMS may stand in). Destroying a person's data key
(``PersonalDataVault.erase``) makes their personal fields unreadable for
good, in every event and every copy of the database, while the events, the
chain and every figure stay whole.

A payload without ``"personal"`` is one written by an earlier release in
plaintext: it is read as it is (docs/personal-data.md).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import stat
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.persistence import Mapper, StoredEvent
from sqlalchemy.engine import Connection

from ledger.domain.messages import TranslatedError
from ledger.store.event_store import (
    MASTER_KEY_PROPERTY,
    Database,
    DataKey,
    MasterKeyError,
    data_keys_table,
    read_property,
    select_rows_among,
    utc_text,
    write_property,
)
from ledger.store.secret_files import read_secret_file, write_secret_file

# The stored field that holds an event's sealed personal fields.
SEALED_FIELD = "personal"
SEALED_VERSION = 1

# Topics whose events carry personal data: the payload field naming the
# person (whose data key seals them) and the personal fields. Free text about
# a person that no figure needs belongs here too.
PERSONAL_FIELDS_BY_TOPIC: Mapping[str, tuple[str, tuple[str, ...]]] = {
    "Volunteer.Registered": ("volunteer_id", ("name", "id_number", "phone")),
}

# The event recording that a person's data key was destroyed (``ledger
# forget``): a sealed person without a key must have one.
ERASURE_TOPIC = "Volunteer.PersonalDataErased"

MASTER_KEY_FILE = "master-key"
# How long an unwrapped data key is kept in memory: a key erased by another
# process stops opening in this one at most this long after.
KEY_CACHE_SECONDS = 30.0
KEY_CACHE_SIZE = 100_000
# How many keys a reader missing one reads at once: it and those after it.
KEY_WINDOW = 256

_WRAP_LABEL = b"wenming-ledger data key"
_NONCE_BYTES = 12


class PersonalDataError(TranslatedError):
    """Sealed personal data that cannot be opened with its key: the key or
    the stored ciphertext was changed (``ledger verify`` finds which)."""


# --- the master key ----------------------------------------------------------


class MasterKey(Protocol):
    """What wraps the data keys: a key file by default, a KMS may stand in.
    ``key_id`` names the key without revealing it."""

    @property
    def key_id(self) -> str: ...

    def wrap(self, data_key: bytes) -> bytes: ...

    def unwrap(self, wrapped: bytes) -> bytes: ...


class KeyFileMasterKey:
    """A 256-bit master key read from a file only its owner may read (0600,
    as hex), on first use; a file open to others is refused."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def _key(self) -> bytes:
        return read_master_key_file(self.path)

    @cached_property
    def _cipher(self) -> AESGCM:
        return AESGCM(self._key)

    @cached_property
    def key_id(self) -> str:
        return master_key_id(self._key)

    def wrap(self, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._cipher.encrypt(nonce, data_key, _WRAP_LABEL)

    def unwrap(self, wrapped: bytes) -> bytes:
        nonce, sealed = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
        try:
            return self._cipher.decrypt(nonce, sealed, _WRAP_LABEL)
        except InvalidTag:
            raise MasterKeyError(
                "{path} (master key id {key_id}) does not open the ledger's data "
                "keys: put the ledger's master key there",
                path=self.path,
                key_id=self.key_id,
            ) from None


def master_key_id(key: bytes) -> str:
    """A name for a master key that does not reveal it."""
    return hashlib.sha256(b"wenming-ledger master key id\n" + key).hexdigest()[:32]


def read_master_key_file(path: Path) -> bytes:
    """The 32-byte key in ``path``; refused when missing, malformed, or
    readable or writable by anyone but its owner."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MasterKeyError(
            "no master key at {path}: the ledger's personal data cannot be opened "
            "without it; restore it from the key backup (docs/personal-data.md)",
            path=path,
        ) from None
    if stat.S_IMODE(mode) & 0o077:
        raise MasterKeyError(
            "{path} may be read by others (mode {mode}): make it 0600 "
            "(chmod 600 {path}); nothing was read",
            path=path,
            mode=f"{stat.S_IMODE(mode):04o}",
        )
    key = read_secret_file(path)
    if key is None:
        raise MasterKeyError("{path} does not hold a 32-byte key as hex", path=path)
    return key


def ledger_master_key(database: Database, directory: Path) -> KeyFileMasterKey:
    """The ledger's master key, from ``master-key`` in its key directory,
    bound to the ledger (its id recorded) on first use. Created on first
    need, but never for a ledger whose data keys were wrapped already: that
    key is missing then, and its personal data cannot be opened without it."""
    path = directory / MASTER_KEY_FILE
    with database.reading() as conn:
        bound = read_property(conn, MASTER_KEY_PROPERTY)
    if not path.exists():
        if bound is not None:
            raise MasterKeyError(
                "no master key at {path}, but the ledger's personal data is sealed "
                "under master key id {key_id}: restore that key there from the key "
                "backup (docs/personal-data.md); nothing was written",
                path=path,
                key_id=bound,
            )
        # Another process making it first is no harm: theirs is the one.
        with contextlib.suppress(FileExistsError):
            write_secret_file(path)
    master = KeyFileMasterKey(path)
    if bound != master.key_id:
        bind_master_key(database, master)
    return master


def bind_master_key(database: Database, master: MasterKey) -> None:
    """Record ``master`` as the key the ledger's data keys are wrapped with;
    refused when they are wrapped with another."""
    with database.appending() as conn:
        bound = read_property(conn, MASTER_KEY_PROPERTY)
        if bound is None:
            write_property(conn, MASTER_KEY_PROPERTY, master.key_id)
        elif bound != master.key_id:
            raise MasterKeyError(
                "the ledger's personal data is sealed under master key id "
                "{bound}, the key given is id {key_id}: put the ledger's master "
                "key in place; nothing was written",
                bound=bound,
                key_id=master.key_id,
            )


# --- data keys -----------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """Personal fields sealed: the stored field, and the data key made for
    them when the person had none (to record in the same transaction)."""

    field: dict[str, Any]
    new_key: DataKey | None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


def sealing_context(stream_id: UUID | str, topic: str) -> bytes:
    """What a sealed field is bound to: the event's stream and topic."""
    return f"{stream_id}\n{topic}".encode()


class PersonalDataVault:
    """Seals and opens personal fields with per-person data keys, and
    destroys a person's key for good. Unwrapped keys are kept in memory a
    short while (``KEY_CACHE_SECONDS``); the master key is used only when a
    key is made or unwrapped."""

    def __init__(self, database: Database, master_key: MasterKey) -> None:
        self.database = database
        self.master_key = master_key
        # subject id -> (AES-GCM under its key, or None: no key; when read)
        self._keys: dict[str, tuple[AESGCM | None, float]] = {}

    # --- sealing ---------------------------------------------------------

    def seal(
        self,
        subject_id: str,
        fields: Mapping[str, Any],
        context: bytes,
        pending: Mapping[str, DataKey] = {},
        *,
        prepared: bool = False,
    ) -> Sealed:
        """``fields`` sealed under ``subject_id``'s data key, bound to
        ``context``. A subject with no key recorded nor ``pending`` (made
        earlier in the same transaction) gets a new one, returned to be
        recorded with the events. ``prepared``: the caller had the key
        looked up already (``prepare_sealing``)."""
        new_key: DataKey | None = None
        if not prepared:
            self.prepare_sealing([subject_id])
        cached = self._keys.get(subject_id)
        cipher = None if cached is None else cached[0]
        if cipher is None:
            key = pending.get(subject_id)
            if key is not None:
                cipher = AESGCM(self.master_key.unwrap(_unb64(key.wrapped_key)))
            else:
                raw = AESGCM.generate_key(bit_length=256)
                new_key = DataKey(
                    subject_id,
                    self.master_key.key_id,
                    _b64(self.master_key.wrap(raw)),
                    utc_text(datetime.now(UTC)),
                )
                cipher = AESGCM(raw)
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = cipher.encrypt(nonce, orjson.dumps(dict(fields)), context)
        field = {
            "v": SEALED_VERSION,
            "subject": subject_id,
            "nonce": _b64(nonce),
            "ciphertext": _b64(ciphertext),
        }
        return Sealed(field, new_key)

    def open(self, sealed: Mapping[str, Any], context: bytes) -> dict[str, Any] | None:
        """The fields ``sealed`` holds, or None when its subject's data key
        is gone (erased): then they are gone for good."""
        cipher = self._cipher(str(sealed["subject"]))
        if cipher is None:
            return None
        try:
            plain = cipher.decrypt(
                _unb64(sealed["nonce"]), _unb64(sealed["ciphertext"]), context
            )
        except (InvalidTag, ValueError):
            raise PersonalDataError(
                "the personal data of '{subject}' does not open with its key: the "
                "stored event or its key was changed; run `ledger verify`",
                subject=sealed["subject"],
            ) from None
        opened: dict[str, Any] = orjson.loads(plain)
        return opened

    def erase(self, conn: Connection, subject_id: str) -> bool:
        """Destroy ``subject_id``'s data key within the caller's transaction
        (False when it was gone already): their sealed fields can never be
        opened again, here or in any copy made from now on."""
        t = data_keys_table.c
        deleted = conn.execute(
            data_keys_table.delete().where(t.subject_id == subject_id)
        ).rowcount
        self._keys.pop(subject_id, None)
        return bool(deleted)

    # --- payloads ----------------------------------------------------------

    def open_payload(
        self,
        topic: str,
        stream_id: UUID | str,
        payload: dict[str, Any],
        erased: Any = None,
    ) -> dict[str, Any]:
        """``payload`` (as stored) with its sealed personal fields opened in
        place: set to ``erased`` when erased. A plaintext (legacy) payload
        is returned as it is."""
        sealed = payload.pop(SEALED_FIELD, None)
        if sealed is None:
            return payload
        opened = self.open(sealed, sealing_context(stream_id, topic))
        _, fields = PERSONAL_FIELDS_BY_TOPIC[topic]
        for name in fields:
            payload[name] = erased if opened is None else opened.get(name)
        return payload

    def seal_payload(
        self,
        topic: str,
        stream_id: UUID | str,
        payload: dict[str, Any],
        pending: Mapping[str, DataKey] = {},
        *,
        prepared: bool = False,
    ) -> DataKey | None:
        """Seal ``payload``'s personal fields in place (a topic with none is
        left alone); the new data key, if one was made."""
        personal = PERSONAL_FIELDS_BY_TOPIC.get(topic)
        if personal is None:
            return None
        subject_field, fields = personal
        plain = {name: payload.pop(name, None) for name in fields}
        sealed = self.seal(
            str(payload[subject_field]),
            plain,
            sealing_context(stream_id, topic),
            pending,
            prepared=prepared,
        )
        payload[SEALED_FIELD] = sealed.field
        return sealed.new_key

    # --- keys in memory ------------------------------------------------------

    def _cipher(self, subject_id: str) -> AESGCM | None:
        cached = self._keys.get(subject_id)
        if cached is not None and time.monotonic() - cached[1] < KEY_CACHE_SECONDS:
            return cached[0]
        self._load_from(subject_id)
        return self._keys[subject_id][0]

    def _load_from(self, subject_id: str) -> None:
        """Read the key of ``subject_id`` and of the next subjects in id
        order, in one query: a reader walking the ledger (``verify``, a
        rebuild of claims) meets people mostly in the order they registered,
        so one query serves the many that follow."""
        t = data_keys_table.c
        with self.database.reading() as conn:
            rows = conn.execute(
                sa.select(t.subject_id, t.wrapped_key)
                .where(t.subject_id >= subject_id)
                .order_by(t.subject_id)
                .limit(KEY_WINDOW)
            ).all()
        if len(self._keys) + len(rows) + 1 > KEY_CACHE_SIZE:
            self._keys.clear()
        now = time.monotonic()
        self._keys[subject_id] = (None, now)
        for subject, wrapped in rows:
            raw = self.master_key.unwrap(_unb64(wrapped))
            self._keys[subject] = (AESGCM(raw), now)

    def load_keys(self, subject_ids: Iterable[str], *, missing: bool = True) -> None:
        """Read and unwrap the data keys of ``subject_ids`` in one query (a
        reader of many people's data asks for them together). Unless
        ``missing``, a subject without a key is not remembered as having
        none: a writer about to make its key asks so."""
        wanted = set(subject_ids)
        t = data_keys_table.c
        with self.database.reading() as conn:
            rows = select_rows_among(
                conn, sa.select(t.subject_id, t.wrapped_key), t.subject_id, wanted
            )
        if len(self._keys) + len(wanted) > KEY_CACHE_SIZE:
            self._keys.clear()
        now = time.monotonic()
        for subject in wanted if missing else ():
            self._keys[subject] = (None, now)
        for subject, wrapped in rows:
            raw = self.master_key.unwrap(_unb64(wrapped))
            self._keys[subject] = (AESGCM(raw), now)

    def prepare_sealing(self, subject_ids: Collection[str]) -> None:
        """Have in memory the recorded keys of ``subject_ids`` (those not
        there already, in one query), never remembering one as missing: a
        writer sealing for many people asks first."""
        stale = self._not_in_memory(subject_ids, missing_too=True)
        if stale:
            for subject in stale:
                self._keys.pop(subject, None)
            self.load_keys(stale, missing=False)

    def prepare_opening(self, subject_ids: Collection[str]) -> None:
        """Have in memory the keys of ``subject_ids`` (those not there
        already, in one query; one without a key remembered as erased): a
        reader of many people's sealed fields at once, out of their order (a
        batch of records read back), asks first rather than reading a window
        of keys for each person it meets."""
        stale = self._not_in_memory(subject_ids, missing_too=False)
        if stale:
            self.load_keys(stale)

    def _not_in_memory(
        self, subject_ids: Collection[str], *, missing_too: bool
    ) -> list[str]:
        """Those of ``subject_ids`` whose key is not in memory or was read
        too long ago; with ``missing_too``, also those remembered as having
        none."""
        now = time.monotonic()
        return [
            subject
            for subject in subject_ids
            if (cached := self._keys.get(subject)) is None
            or (missing_too and cached[0] is None)
            or now - cached[1] >= KEY_CACHE_SECONDS
        ]


# --- the mapper ------------------------------------------------------------------


class SealingMapper(Mapper[UUID]):
    """The library's mapper, sealing personal fields on the way into the
    store and opening them on the way out, so the domain sees plaintext (and
    None for an erased person) and the store holds only ciphertext."""

    def __init__(self, mapper: Mapper[UUID], vault: PersonalDataVault) -> None:
        super().__init__(mapper.transcoder, mapper.compressor, mapper.cipher)
        self.vault = vault

    def to_stored_events(
        self, domain_events: Sequence[Any]
    ) -> tuple[list[StoredEvent], list[DataKey]]:
        """The events as stored, personal fields sealed, and the data keys
        made for them: both to record in one transaction."""
        plain = super().to_stored_event
        stored = [plain(event) for event in domain_events]
        personal = [
            (index, self.transcoder.decode(event.state))
            for index, event in enumerate(stored)
            if event.topic in PERSONAL_FIELDS_BY_TOPIC
        ]
        self.vault.prepare_sealing(
            {
                str(state[PERSONAL_FIELDS_BY_TOPIC[stored[index].topic][0]])
                for index, state in personal
            }
        )
        pending: dict[str, DataKey] = {}
        for index, state in personal:
            event = stored[index]
            new_key = self.vault.seal_payload(
                event.topic, event.originator_id, state, pending, prepared=True
            )
            if new_key is not None:
                pending[new_key.subject_id] = new_key
            stored[index] = StoredEvent(
                event.originator_id,
                event.originator_version,
                event.topic,
                self.transcoder.encode(state),
            )
        return stored, list(pending.values())

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        """Refused for events with personal fields: they are stored only
        with their data keys (``to_stored_events``)."""
        stored = super().to_stored_event(domain_event)
        if stored.topic in PERSONAL_FIELDS_BY_TOPIC:
            raise TypeError(f"{stored.topic} is stored with to_stored_events")
        return stored

    def prepare_opening(self, stored_events: Iterable[StoredEvent]) -> None:
        """Have in memory, read in one query, the data keys of the people
        whose sealed fields ``stored_events`` hold (``to_domain_event`` then
        opens them without a query each)."""
        subjects: set[str] = set()
        for event in stored_events:
            if event.topic in PERSONAL_FIELDS_BY_TOPIC:
                sealed = self.transcoder.decode(event.state).get(SEALED_FIELD)
                if sealed is not None:
                    subjects.add(str(sealed["subject"]))
        if subjects:
            self.vault.prepare_opening(subjects)

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        if stored_event.topic not in PERSONAL_FIELDS_BY_TOPIC:
            return super().to_domain_event(stored_event)
        state = self.transcoder.decode(stored_event.state)
        if SEALED_FIELD not in state:
            return super().to_domain_event(stored_event)
        self.vault.open_payload(stored_event.topic, stored_event.originator_id, state)
        return super().to_domain_event(
            StoredEvent(
                stored_event.originator_id,
                stored_event.originator_version,
                stored_event.topic,
                self.transcoder.encode(state),
            )
        )


# --- master-key rotation --------------------------------------------------------


def rewrap_data_keys(database: Database, old: MasterKey, new: MasterKey) -> int:
    """Wrap every data key again with ``new`` instead of ``old``, in one
    transaction under the append lock, and record ``new`` as the ledger's
    master key; no event is touched. The number of keys wrapped again."""
    t = data_keys_table.c
    with database.appending() as conn:
        bound = read_property(conn, MASTER_KEY_PROPERTY)
        if bound not in (None, old.key_id):
            raise MasterKeyError(
                "the ledger's personal data is sealed under master key id "
                "{bound}, the key given is id {key_id}: put the ledger's master "
                "key in place; nothing was written",
                bound=bound,
                key_id=old.key_id,
            )
        rows = conn.execute(sa.select(t.subject_id, t.wrapped_key)).all()
        rewrapped = [
            {
                "subject": subject,
                "wrapped": _b64(new.wrap(old.unwrap(_unb64(wrapped)))),
            }
            for subject, wrapped in rows
        ]
        if rewrapped:
            conn.execute(
                data_keys_table.update()
                .where(t.subject_id == sa.bindparam("subject"))
                .values(
                    wrapped_key=sa.bindparam("wrapped"),
                    master_key_id=new.key_id,
                ),
                rewrapped,
            )
        write_property(conn, MASTER_KEY_PROPERTY, new.key_id)
    return len(rewrapped)


@dataclass(frozen=True)
class Rotation:
    """What rotating the master key did: the keys' ids, how many data keys
    were wrapped again, and where the old key was kept."""

    old_key_id: str
    new_key_id: str
    rewrapped: int
    retired: Path


def rotate_master_key_file(database: Database, directory: Path) -> Rotation:
    """Replace the master key in ``directory`` with a new one: the data keys
    are wrapped again with it in one transaction (no event is touched), then
    the new file takes the old one's place and the old is kept beside it as
    ``master-key.retired-<id>`` (0600), for the backups made before; delete
    it when they are gone. A rotation stopped half-way is finished by the
    next: the new key waits as ``master-key.new`` until it is in place."""
    path = directory / MASTER_KEY_FILE
    waiting = path.with_name(MASTER_KEY_FILE + ".new")
    old = KeyFileMasterKey(path)
    with database.reading() as conn:
        bound = read_property(conn, MASTER_KEY_PROPERTY)
    if not waiting.exists() or KeyFileMasterKey(waiting).key_id != bound:
        waiting.unlink(missing_ok=True)
        write_secret_file(waiting)
        rewrapped = rewrap_data_keys(database, old, KeyFileMasterKey(waiting))
    else:
        rewrapped = 0  # wrapped again already, by the rotation that stopped
    new_key_id = KeyFileMasterKey(waiting).key_id
    retired = path.with_name(f"{MASTER_KEY_FILE}.retired-{old.key_id}")
    os.replace(path, retired)
    os.replace(waiting, path)
    return Rotation(old.key_id, new_key_id, rewrapped, retired)
