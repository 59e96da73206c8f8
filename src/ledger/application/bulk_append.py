"""Appending decided events in bulk, without making them objects first.

An honours run decides the awards of a whole register from one read, and
its first run appends an event for every volunteer with service: hundreds
of thousands. Made as the library's event objects and mapped by its mapper
(a frozen dataclass per event, then a stdlib-JSON transcoder walking it),
they cost several times what storing them does. Here an event is described
by its class and field values (``DescribedEvent``), as the domain decided
it, and its stored state is written straight from them with orjson: the
same bytes the library's mapper writes for the same event (field order
from the event class, times as its ``datetime_iso`` values), checked by a
test against the mapper for every class this path is used with. A value
whose stored form the library's transcoder would make otherwise (a UUID, a
date, a nested structure) is refused rather than written differently.

Everything else is the ordinary append (``LedgerRecorder.insert_events``):
one transaction under the append lock, envelopes, chain hashes, subjects
named by the payloads; a stream that moved past the version a decider read
refuses the whole append (``ConcurrencyConflictError``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple
from uuid import UUID

import orjson
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.utils import get_topic

from ledger.application.ledger import (
    SUBJECT_FIELDS,
    ConcurrencyConflictError,
    Ledger,
    subjects_named_in,
)
from ledger.store.event_store import Envelope, EventMetadata
from ledger.store.personal_data import PERSONAL_FIELDS_BY_TOPIC

# Written to their own columns, not into the stored state.
_OUTSIDE_STATE = frozenset({"originator_id", "originator_version"})
# Values both JSON encoders write alike (floats they may not: refused).
_PLAIN = frozenset({str, int, bool, type(None)})


class DescribedEvent(NamedTuple):
    """A decided event before it is an object: the stream and version it
    goes to, its class, and its field values other than the time."""

    originator_id: UUID
    originator_version: int
    event_class: type[Aggregate.Event]
    fields: dict[str, Any]


def append_described(
    ledger: Ledger,
    envelope: Envelope,
    described: Sequence[DescribedEvent],
    timestamp: datetime,
) -> list[int]:
    """Record ``described`` (all at ``timestamp``, under ``envelope``) in one
    transaction; return their positions."""
    if envelope.idempotency_key:
        raise ValueError("decided events are recorded without idempotency keys")
    if not described:
        return []
    moment = {"_type_": "datetime_iso", "_data_": timestamp.isoformat()}
    stored: list[StoredEvent] = []
    metadata: list[EventMetadata] = []
    # The subjects of flat fields are those of the values of the fields
    # that name one: events naming the same share their metadata.
    metadata_by_named: dict[tuple[Any, ...], EventMetadata] = {}
    for event in described:
        topic, names, naming = _stored_form(event.event_class)
        fields = event.fields
        if len(fields) != len(names) - 1:  # all but the time
            raise TypeError(f"{topic} has the fields {names[1:]}, not {sorted(fields)}")
        state: dict[str, Any] = {"timestamp": moment}
        for name in names[1:]:
            value = fields[name]
            if type(value) not in _PLAIN:
                raise TypeError(
                    f"{topic}.{name} is not stored in bulk: {type(value).__name__}"
                )
            state[name] = value
        stored.append(
            StoredEvent(
                originator_id=event.originator_id,
                originator_version=event.originator_version,
                topic=topic,
                state=orjson.dumps(state),
            )
        )
        named = tuple([fields[name] for name in naming])
        meta = metadata_by_named.get(named)
        if meta is None:
            subjects = subjects_named_in(dict(zip(naming, named, strict=True)))
            meta = metadata_by_named[named] = EventMetadata(envelope, subjects)
        metadata.append(meta)
    try:
        positions = ledger.recorder.insert_events(stored, metadata=metadata)
    except IntegrityError as error:
        raise ConcurrencyConflictError(
            f"a stream changed since its events were decided ({error})"
        ) from error
    return list(positions or ())


@cache
def _stored_form(
    event_class: type[Aggregate.Event],
) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """The topic of an event class, the fields of its stored state in the
    order the library's mapper writes them (the time first), and those of
    them that name a subject."""
    if getattr(event_class, "class_version", 1) != 1:
        raise TypeError(f"{event_class.__qualname__} is upcast: not stored in bulk")
    names = tuple(
        f.name for f in dataclasses.fields(event_class) if f.name not in _OUTSIDE_STATE
    )
    if names[0] != "timestamp":
        raise TypeError(f"{event_class.__qualname__} does not start with its time")
    topic = get_topic(event_class)
    if topic in PERSONAL_FIELDS_BY_TOPIC:
        # Personal fields are sealed by the ledger's mapper, which this
        # path does not go through.
        raise TypeError(f"{topic} carries personal data: not stored in bulk")
    naming = tuple(name for name in names if name in SUBJECT_FIELDS)
    return topic, names, naming
