"""The ledger application: the only writer.

Every command, whether it comes from an import file, the HTTP API or the
CLI, goes through ``Ledger.execute`` or ``Ledger.execute_batch``: the command
is checked against the aggregates it touches, and the events of all accepted
commands of a batch are appended in one transaction together with their
envelopes, idempotency keys and claims. A rejected command writes nothing,
and a duplicate (its caller's idempotency key was already accepted for the
same command) writes nothing; the same key with another command is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from functools import partial
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    ApplicationRecorder,
    IntegrityError,
    StoredEvent,
)

from ledger.application.commands import (
    ID_NUMBER,
    BaseCommand,
    Command,
    unkeyed_fingerprint,
)
from ledger.application.handlers import (
    CommandHandlers,
    CommandScope,
    IdNumberDigest,
    claims_of,
    erased_subject_of,
    references,
    scope_of,
)
from ledger.application.unit_of_work import AggregateCache, UnitOfWork
from ledger.domain.common import topic_of
from ledger.domain.errors import DomainError
from ledger.domain.venues import Venue
from ledger.domain.volunteers import Volunteer
from ledger.store.event_store import (
    AcceptedKey,
    Claim,
    Database,
    Envelope,
    EventMetadata,
    KeyUse,
    LedgerRecorder,
    claims_table,
    data_keys_table,
    events_table,
    insert_rows,
    read_property,
    select_rows,
    write_property,
)
from ledger.store.integrity import (
    ID_NUMBER_DIGEST_PROPERTY,
    KEY_DIRECTORY_SETTING,
    KeyMaterialError,
    RecordedBeside,
)
from ledger.store.personal_data import PersonalDataVault, SealingMapper

# Payload fields that name a subject an event concerns, and the subject kind.
SUBJECT_FIELDS = {
    "venue_id": "venue",
    "team_id": "team",
    "volunteer_id": "volunteer",
    "activity_id": "activity",
    "order_id": "order",
    "session_id": "session",
}

MAX_ATTEMPTS = 5
REDERIVE_PAGE = 10_000
REGISTERED_TOPIC = topic_of(Volunteer, "Registered")


class ConcurrencyConflictError(Exception):
    """Another writer kept changing the same aggregates; nothing was written."""


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"
    # Carried out, but there was nothing left to change (a second erasure):
    # nothing was written.
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class CommandResult:
    """What became of one command, and the ledger positions it wrote
    (for a duplicate: the positions its key's first acceptance wrote)."""

    outcome: Outcome
    first_position: int | None = None
    last_position: int | None = None
    error: DomainError | None = None

    @property
    def reason(self) -> str | None:
        return str(self.error) if self.error else None


@dataclass(frozen=True)
class Submission:
    """A command with the envelope it will be recorded under."""

    command: Command
    envelope: Envelope


@dataclass(frozen=True)
class _KeyedSubmission:
    """A submission with its key space — (caller, key) — and the fingerprint
    of its command, when it has a key."""

    submission: Submission
    space: tuple[str, str] | None
    fingerprint: str | None

    @classmethod
    def of(cls, submission: Submission, digest: IdNumberDigest) -> _KeyedSubmission:
        """The submission, its command fingerprinted under ``digest``'s secret."""
        envelope = submission.envelope
        key = envelope.idempotency_key
        if key is None:
            return cls(submission, None, None)
        fingerprint = digest.fingerprint(submission.command)
        return cls(submission, (envelope.caller, key), fingerprint)

    @property
    def envelope(self) -> Envelope:
        """The envelope its events are recorded under: the submission's,
        with the command's fingerprint when it is keyed."""
        envelope = self.submission.envelope
        if self.fingerprint is None:
            return envelope
        return replace(envelope, fingerprint=self.fingerprint)

    def replay(self, accepted: AcceptedKey) -> CommandResult:
        """The answer when this command's key was accepted already: the first
        answer for the same content (or for a key accepted before content
        was recorded), a refusal for other content. A fingerprint recorded
        before fingerprints were keyed is compared as it was made."""
        if accepted.fingerprint in (None, self.fingerprint) or (
            accepted.fingerprint == unkeyed_fingerprint(self.submission.command)
        ):
            return CommandResult(
                Outcome.DUPLICATE, accepted.first_position, accepted.last_position
            )
        return CommandResult(
            Outcome.REJECTED,
            error=IdempotencyKeyReusedError(
                "the idempotency key '{key}' was used already for a different "
                "command; nothing was written: send this command under a key of "
                "its own",
                key=self.envelope.idempotency_key,
            ),
        )


@dataclass(frozen=True)
class DecidedEvents:
    """Events an aggregate's own decision produced without a command being
    handled (an honours run decides a whole register from one read), to be
    recorded under one envelope."""

    envelope: Envelope
    events: Sequence[Aggregate.Event]


class IdempotencyKeyReusedError(DomainError):
    """An idempotency key its caller already used for another command: a key
    is bound to the content it was first accepted with (CONTRACT §1.2)."""

    code = "idempotency_key_reused"
    title = "Idempotency key reused"
    http_status = 422


class Ledger(Application[UUID]):
    """新时代文明实践 volunteer-service ledger: records every fact as events.

    ``id_number_digest`` is the keyed digest, under the ledger's secret, by
    which the duplicate-ID-number rule finds registrations."""

    name = "Ledger"
    recorder: LedgerRecorder
    mapper: SealingMapper

    def __init__(
        self,
        database: Database,
        id_number_digest: IdNumberDigest,
        vault: PersonalDataVault,
    ) -> None:
        self.database = database
        self.id_number_digest = id_number_digest
        self.vault = vault
        self.handlers = CommandHandlers(id_number_digest, self.holds_data_key)
        super().__init__(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})

    def holds_data_key(self, subject_id: str) -> bool:
        """Whether ``subject_id``'s personal data is sealed under a data key
        of their own (a registration of an earlier release is plaintext)."""
        t = data_keys_table.c
        with self.database.reading() as conn:
            found = conn.execute(
                sa.select(t.subject_id).where(t.subject_id == subject_id)
            )
            return found.first() is not None

    def construct_recorder(self) -> ApplicationRecorder:
        return LedgerRecorder(self.database)

    def construct_mapper(self) -> SealingMapper:
        """The library's mapper, sealing personal fields with the vault."""
        return SealingMapper(super().construct_mapper(), self.vault)

    def _append_sealed(self, events: Sequence[Any], **beside: Any) -> list[int]:
        """Append ``events``, personal fields sealed, with what is recorded
        beside them and the data keys made for them, in one transaction;
        their positions."""
        stored, data_keys = self.mapper.to_stored_events(events)
        positions = self.recorder.insert_events(stored, data_keys=data_keys, **beside)
        return list(positions or ())

    def execute(self, submission: Submission) -> CommandResult:
        """Record one command (an API request or a CLI call).

        A concurrent change to the same aggregate is not retried here: it
        raises ``ConcurrencyConflictError`` and the caller decides (an HTTP
        client retries with the same idempotency key) — unless the other
        writer recorded this very command under its key, which then answers
        as a duplicate."""
        return self.execute_batch([submission], retry_conflicts=False)[0]

    def execute_batch(
        self,
        submissions: Sequence[Submission],
        cache: AggregateCache | None = None,
        *,
        retry_conflicts: bool = True,
    ) -> list[CommandResult]:
        """Record many commands in one transaction, each accepted, duplicate or
        rejected on its own. When a concurrent writer changed an aggregate
        first, nothing is written; with ``retry_conflicts`` the whole batch is
        then checked again against the fresh state (so nothing is lost or
        doubled), otherwise — and when the retries are spent — the batch
        answers as duplicates if the other writer recorded every one of its
        commands under their keys, else ``ConcurrencyConflictError`` is
        raised."""
        keyed = [
            _KeyedSubmission.of(submission, self.id_number_digest)
            for submission in submissions
        ]
        attempts = MAX_ATTEMPTS if retry_conflicts else 1
        for attempt in range(1, attempts + 1):
            try:
                return self._try_batch(keyed, cache)
            except IntegrityError as error:
                if cache is not None:
                    cache.clear()
                if attempt == attempts:
                    settled = self._settled_by_others(keyed)
                    if settled is not None:
                        return settled
                    # The database's own words stay in the cause: they name
                    # the values in conflict, an ID number's digest among them.
                    raise ConcurrencyConflictError(
                        "another writer recorded a conflicting change to the same "
                        "aggregate, key or claim first; nothing was written, retry "
                        "the command"
                    ) from error
        raise AssertionError("unreachable")

    def _settled_by_others(
        self, keyed: Sequence[_KeyedSubmission]
    ) -> list[CommandResult] | None:
        """The answers to a batch whose every command another writer has
        recorded under its key (identical requests sent at once), or None."""
        accepted = self.recorder.select_key_uses(
            {k.space for k in keyed if k.space is not None}
        )
        if not keyed or any(k.space not in accepted for k in keyed):
            return None
        return [k.replay(accepted[k.space]) for k in keyed if k.space is not None]

    def _try_batch(
        self, keyed: Sequence[_KeyedSubmission], cache: AggregateCache | None
    ) -> list[CommandResult]:
        unit = UnitOfWork(self, cache)
        accepted_keys = self.recorder.select_key_uses(
            {k.space for k in keyed if k.space is not None}
        )
        streams: set[UUID] = set()
        claims: set[tuple[str, str]] = set()
        existing: set[UUID] = set()
        for k in keyed:
            if k.space in accepted_keys:
                continue  # a duplicate needs nothing loaded
            needed = references(k.submission.command, self.id_number_digest)
            streams.update(needed.streams)
            claims.update(needed.claims)
            existing.update(needed.existing)
        unit.prefetch(streams, claims, existing)
        # Until the append returns positions, results refer to event indexes
        # (negative: -1 is the first event of this append).
        pending: list[CommandResult] = []
        pending_keys: dict[tuple[str, str], AcceptedKey] = {}
        rejected_keyed: list[int] = []  # indexes into pending
        events: list[Any] = []
        metadata: list[EventMetadata] = []
        key_uses: list[KeyUse] = []
        erased: list[str] = []
        # Bound once: each access to a singledispatchmethod builds a wrapper.
        handle = self.handlers.handle
        for k in keyed:
            space = k.space
            if space is not None and space in accepted_keys:
                pending.append(k.replay(accepted_keys[space]))
                continue
            if space is not None and space in pending_keys:
                pending.append(k.replay(pending_keys[space]))
                continue
            try:
                changed = handle(k.submission.command, unit)
            except DomainError as error:
                # Without its traceback: its frames would hold the whole batch
                # in a reference cycle, which bulk work (run without the
                # cyclic collector) would keep until the end.
                error.__traceback__ = error.__context__ = None
                if space is not None:
                    rejected_keyed.append(len(pending))
                pending.append(CommandResult(Outcome.REJECTED, error=error))
                continue
            new_events = changed.collect_events()
            if not new_events:
                pending.append(CommandResult(Outcome.UNCHANGED))
                continue
            for event in new_events:
                for kind, value in claims_of(event, self.id_number_digest):
                    unit.claim(kind, value, event.originator_id)
                subject = erased_subject_of(changed, event)
                if subject is not None:
                    erased.append(subject)
            first_index = len(events)
            events.extend(new_events)
            envelope = k.envelope
            metadata.extend(
                EventMetadata(envelope, subjects_of(changed, event))
                for event in new_events
            )
            last_index = len(events) - 1
            if space is not None:
                caller, key = space
                key_uses.append(
                    KeyUse(caller, key, k.fingerprint, first_index, last_index)
                )
                pending_keys[space] = AcceptedKey(
                    -first_index - 1, -last_index - 1, k.fingerprint
                )
            pending.append(
                CommandResult(Outcome.ACCEPTED, -first_index - 1, -last_index - 1)
            )
        self._recheck_rejected_keys(keyed, pending, rejected_keyed)

        positions: list[int] = []
        if events:
            new_claims = [
                Claim(kind, value, stream)
                for (kind, value), stream in unit.new_claims.items()
            ]
            # The event store's put, not Application.save: these are events,
            # not aggregates, and snapshots and notifications are not used.
            positions = self._append_sealed(
                events,
                metadata=metadata,
                claims=new_claims,
                key_uses=key_uses,
                released_claims=sorted(unit.released_claims),
                erasures=[partial(self.vault.erase, subject_id=s) for s in erased],
            )
        unit.keep_in_cache()

        def positioned(result: CommandResult) -> CommandResult:
            first, last = result.first_position, result.last_position
            if first is None or last is None or first > 0:
                return result
            return CommandResult(
                result.outcome, positions[-first - 1], positions[-last - 1]
            )

        return [positioned(result) for result in pending]

    def _recheck_rejected_keys(
        self,
        keyed: Sequence[_KeyedSubmission],
        pending: list[CommandResult],
        rejected: Sequence[int],
    ) -> None:
        """A keyed command refused by a rule may have been refused for what
        another writer recorded meanwhile under the same key — the same
        command sent twice at once. Its key is looked up again now that the
        other writer's commit is visible (the refusal saw it): if accepted
        meanwhile, the command is a duplicate (or a reused key), not a
        rejection."""
        spaces = {keyed[i].space for i in rejected}
        accepted = self.recorder.select_key_uses(
            {space for space in spaces if space is not None}
        )
        for index in rejected:
            space = keyed[index].space
            if space in accepted:
                pending[index] = keyed[index].replay(accepted[space])

    def append_decided(self, decided: Sequence[DecidedEvents]) -> list[int]:
        """Record already decided events in one transaction; return their
        positions. The events carry the versions that follow the streams as
        their decider read them: if any stream moved on since, nothing is
        written and ``ConcurrencyConflictError`` says so, for the caller to
        decide again on fresh state. No idempotency keys: deciding again on
        what is recorded is what makes a repeat record nothing. Subjects are
        those the payloads name."""
        if any(group.envelope.idempotency_key for group in decided):
            raise ValueError("decided events are recorded without idempotency keys")
        events: list[Aggregate.Event] = []
        metadata: list[EventMetadata] = []
        for group in decided:
            events.extend(group.events)
            metadata.extend(
                EventMetadata(group.envelope, named_subjects(event))
                for event in group.events
            )
        if not events:
            return []
        try:
            return self._append_sealed(events, metadata=metadata)
        except IntegrityError as error:
            raise ConcurrencyConflictError(
                f"a stream changed since its events were decided ({error})"
            ) from error

    def digest_id_numbers_with(self, digest_id: str) -> None:
        """Make the ledger's ID-number claims those of this ledger's digest,
        named ``digest_id``. Claims of a ledger that names no digest (one of
        the first release digested ID numbers with plain SHA-256) are derived
        again from the registrations, under the append lock, and the digest
        is recorded; nothing is lost, claims are derived from events. Claims
        recorded as made with another secret are refused
        (``KeyMaterialError``), never derived again: a writer still using
        that secret would let a registered ID number in again."""
        with self.database.reading() as conn:
            if self._digest_recorded(conn, digest_id):
                return
        t = events_table.c
        registrations = (
            sa.select(t.position, t.stream_id, t.stream_version, t.payload)
            .where(t.topic == REGISTERED_TOPIC)
            .order_by(t.position)
            .limit(REDERIVE_PAGE)
        )
        with self.database.appending() as conn:
            if self._digest_recorded(conn, digest_id):
                return
            conn.execute(
                claims_table.delete().where(claims_table.c.kind == ID_NUMBER.kind)
            )
            after = 0
            while page := select_rows(conn, registrations.where(t.position > after)):
                rows: list[tuple[str, str, str]] = []
                for _, stream_id, version, payload in page:
                    event = self.mapper.to_domain_event(
                        StoredEvent(
                            stream_id, version, REGISTERED_TOPIC, payload.encode()
                        )
                    )
                    rows.extend(
                        (kind, value, stream_id)
                        for kind, value in claims_of(event, self.id_number_digest)
                    )
                if rows:
                    insert_rows(conn, claims_table, rows)
                after = page[-1][0]
            write_property(conn, ID_NUMBER_DIGEST_PROPERTY, digest_id)

    @staticmethod
    def _digest_recorded(conn: sa.Connection, digest_id: str) -> bool:
        """Whether the claims are recorded as made with ``digest_id`` (False:
        no digest is recorded); refused when they were made with another."""
        recorded = read_property(conn, ID_NUMBER_DIGEST_PROPERTY)
        if recorded is not None and recorded != digest_id:
            raise KeyMaterialError(
                f"the ledger's ID numbers were digested with secret id {recorded}, "
                f"its key directory holds secret id {digest_id}: set "
                f"{KEY_DIRECTORY_SETTING} to the directory holding the ledger's "
                "secret; nothing was changed"
            )
        return recorded is not None

    def scope_of(self, command: BaseCommand) -> CommandScope:
        """The venue and volunteer a command concerns (for authorisation)."""
        return scope_of(command, UnitOfWork(self, None))

    def venue_ancestry(self, venue_id: str) -> list[str]:
        """The venue and its ancestors up to its centre, as recorded now
        (empty for an unknown venue): scope checks must not lag the ledger."""
        chain: list[str] = []
        current: str | None = venue_id
        while current is not None and current not in chain:
            venue = self.load_aggregates([Venue.create_id(current)]).get(
                Venue.create_id(current)
            )
            if not isinstance(venue, Venue):
                break
            chain.append(current)
            current = venue.parent_id
        return chain

    def load_aggregates(self, streams: Sequence[UUID]) -> dict[UUID, Aggregate]:
        """Reconstruct many aggregates from one query's worth of events."""
        loaded: dict[UUID, Aggregate] = {}
        read = list(self.recorder.select_streams(streams))
        # The people these streams seal data for, their keys read at once.
        self.mapper.prepare_opening(record for _, stored in read for record in stored)
        for stream, stored in read:
            # The fold of eventsourcing's project_aggregate, without its check
            # of each event against a runtime Protocol: that check cost more
            # than decoding and applying the event.
            aggregate: Aggregate | None = None
            for record in stored:
                event = cast(Aggregate.Event, self.mapper.to_domain_event(record))
                aggregate = event.mutate(aggregate)
            if aggregate is not None:
                loaded[stream] = aggregate
        return loaded

    # --- what an append records beside its events, derived again ----------

    def stream_origin(self, first_event: StoredEvent) -> tuple[str, str] | None:
        """What deriving a stream's events needs to know of the stream: the
        subject its aggregate is, which the stream's first event sets."""
        created = cast(Aggregate.Event, self.mapper.to_domain_event(first_event))
        aggregate = created.mutate(None)
        if aggregate is None:
            raise ValueError("the stream's first event creates no aggregate")
        return own_subject(aggregate)

    def recorded_beside(
        self, origin: tuple[str, str] | None, event: StoredEvent
    ) -> RecordedBeside:
        """The subjects and claims appending ``event`` recorded beside it,
        derived again from the stored event by the append's own rules (for
        ``ledger verify`` to compare with the stored tables)."""
        domain_event = cast(Aggregate.Event, self.mapper.to_domain_event(event))
        return RecordedBeside(
            event_subjects(origin, domain_event),
            tuple(claims_of(domain_event, self.id_number_digest)),
        )

    def find_claims(
        self, claims: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UUID]:
        return self.recorder.select_claims(claims)

    def existing_streams(self, streams: Sequence[UUID]) -> set[UUID]:
        return self.recorder.select_existing_streams(streams)


def subjects_of(aggregate: Aggregate, event: Any) -> frozenset[tuple[str, str]]:
    """The subjects an event concerns: its own aggregate, and every venue,
    team, volunteer, activity, order or session its payload names, also
    inside the facts it carries (a session's venue, an order's venue)."""
    return event_subjects(own_subject(aggregate), event)


def own_subject(aggregate: Aggregate) -> tuple[str, str] | None:
    """The subject an aggregate is (None for one that is no subject of its
    own: honours are the volunteer's). Its creation sets it for good."""
    kind = type(aggregate).TOPIC.lower()  # type: ignore[attr-defined]
    own_id = getattr(aggregate, f"{kind}_id", None)
    return (kind, own_id) if own_id else None


def event_subjects(
    own: tuple[str, str] | None, event: Any
) -> frozenset[tuple[str, str]]:
    """The subjects of an event of the aggregate that is subject ``own``."""
    named = named_subjects(event)
    return named | {own} if own else named


def named_subjects(event: Any) -> frozenset[tuple[str, str]]:
    """The subjects an event's payload names."""
    return subjects_named_in(vars(event))


def subjects_named_in(fields: dict[str, Any]) -> frozenset[tuple[str, str]]:
    """The subjects the fields of an event name."""
    subjects: set[tuple[str, str]] = set()
    _add_named_subjects(fields, subjects)
    return frozenset(subjects)


def _add_named_subjects(fields: dict[str, Any], subjects: set[tuple[str, str]]) -> None:
    for name, value in fields.items():
        subject_kind = SUBJECT_FIELDS.get(name)
        if subject_kind and isinstance(value, str):
            subjects.add((subject_kind, value))
        elif isinstance(value, dict):
            _add_named_subjects(value, subjects)
    for volunteer_id in fields.get("volunteer_ids") or ():
        subjects.add(("volunteer", volunteer_id))
