"""Admin reads of personal data, recorded: whoever is shown volunteers' full
ID or phone numbers (an audit query or a roster with personal data
revealed) leaves a ``Disclosure`` event in the ledger — who, when, whose,
through which read — covered by the chain like every other fact, and
listed for auditors (``ledger audit personal-data-reads``,
``GET /audit/personal-data-reads``). The record is written before the data
is shown: a read that cannot be recorded shows nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from typing import Any, TypeVar, cast

from eventsourcing.domain import Aggregate

from ledger.application.ledger import DecidedEvents, Ledger
from ledger.domain.privacy import ERASED, PERSONAL_FIELDS
from ledger.domain.volunteers import Disclosure
from ledger.reads.answers import AuditEvent
from ledger.reads.bounds import MAX_PAGE
from ledger.store.event_store import Envelope

T = TypeVar("T")


@dataclass(frozen=True)
class Reader:
    """Who is shown the data, as recorded: an actor, and the way in."""

    actor_id: str
    actor_role: str
    source: str  # cli / api
    caller: str  # cli, or an API key's key space


def record_disclosure(
    ledger: Ledger, reader: Reader, volunteer_ids: Iterable[str], read: str
) -> int | None:
    """Record that ``reader`` is shown the full personal data of
    ``volunteer_ids`` through ``read``; its position (None: nobody's)."""
    whose = sorted(set(volunteer_ids))
    if not whose:
        return None
    access_id = uuid.uuid4().hex
    disclosure = Disclosure.record(access_id=access_id, volunteer_ids=whose, read=read)
    envelope = Envelope(
        actor_id=reader.actor_id,
        actor_role=reader.actor_role,
        at=datetime.now(UTC),
        source=reader.source,
        correlation_id=f"{reader.source}-{access_id}",
        caller=reader.caller,
    )
    events = cast(list[Aggregate.Event], disclosure.collect_events())
    (position,) = ledger.append_decided([DecidedEvents(envelope, events)])
    return position


def shows_personal_data(document: Mapping[str, Any]) -> bool:
    """Whether ``document`` holds an ID or phone number, at any depth
    (masked text is no longer one; the erased marker never was)."""
    for name, value in document.items():
        if name in PERSONAL_FIELDS and isinstance(value, str):
            if value != ERASED and "*" not in value:
                return True
        elif isinstance(value, Mapping) and shows_personal_data(value):
            return True
    return False


def volunteers_shown(events: Iterable[AuditEvent]) -> set[str]:
    """The volunteers whose ID or phone numbers these audit events show."""
    return {
        subject.partition(":")[2]
        for event in events
        if shows_personal_data(event.payload)
        for subject in event.subjects
        if subject.startswith("volunteer:")
    }


def volunteers_in_rows(rows: Iterable[Mapping[str, Any]]) -> set[str]:
    """The volunteers whose ID or phone numbers these rows (of a roster,
    one volunteer each) show."""
    return {row["volunteer_id"] for row in rows if shows_personal_data(row)}


def recorded_as_shown(
    ledger: Ledger,
    reader: Reader,
    items: Iterable[T],
    read: str,
    whose: Callable[[list[T]], set[str]],
) -> Iterator[T]:
    """``items`` (audit events, roster rows), a page at a time, the page's
    disclosure (of the volunteers ``whose`` finds in it) recorded before any
    of them is handed on (to an export, say)."""
    remaining = iter(items)
    while page := list(islice(remaining, MAX_PAGE)):
        record_disclosure(ledger, reader, whose(page), read)
        yield from page
