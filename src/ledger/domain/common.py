"""Identity, time and small rules shared by every aggregate.

Aggregates are addressed by their domain id (``venue_id``, ``order_id`` …):
the stream id is a name-based UUID of the kind and the id, so the same
domain id always finds the same stream and a second registration of an id
collides with the first. Events are stored under their class's topic: the
write side takes it from the class (``topic_of``); projections, which a
quick read loads without the aggregates, name it (tests/unit/
test_event_topics.py holds every name they use to an event's).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import lru_cache
from hashlib import sha1
from uuid import NAMESPACE_URL, UUID, uuid5
from zoneinfo import ZoneInfo

from eventsourcing.domain import Aggregate

from ledger.domain.bounds import BUSINESS_TIME, TEXT
from ledger.domain.errors import (
    MissingReasonError,
    OutOfOrderError,
    StarsOutOfRangeError,
)
from ledger.domain.messages import Message

LEDGER_NAMESPACE = uuid5(NAMESPACE_URL, "urn:wenming-shijian-ledger")
CHINA_STANDARD_TIME = ZoneInfo("Asia/Shanghai")


_NAMESPACE_BYTES = LEDGER_NAMESPACE.bytes
# The bits a name-based (SHA-1) UUID sets: version 5, the RFC 4122 variant.
_CLEARED = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_5 = (5 << 76) | (0x8000 << 48)


@lru_cache(maxsize=100_000)
def stream_id(kind: str, domain_id: str) -> UUID:
    """The stream id of the aggregate of ``kind`` known by ``domain_id``:
    ``uuid5(LEDGER_NAMESPACE, "kind:domain_id")``, made from the digest
    directly (the standard library's ``uuid5`` and the ``UUID`` constructor
    it calls cost several times the hash, and an honours run names
    hundreds of thousands of records)."""
    digest = sha1(_NAMESPACE_BYTES + f"{kind}:{domain_id}".encode()).digest()
    return UUID(int=int.from_bytes(digest[:16]) & _CLEARED | _VERSION_5)


def volunteer_stream_id(volunteer_id: str) -> UUID:
    """The stream of the volunteer known by ``volunteer_id``
    (``Volunteer.create_id``), for readers that do not load the aggregate."""
    return stream_id("volunteer", volunteer_id)


def venue_stream_id(venue_id: str) -> UUID:
    """The stream of the venue known by ``venue_id`` (``Venue.create_id``)."""
    return stream_id("venue", venue_id)


def topic_of(aggregate: type[Aggregate], event_name: str) -> str:
    """The topic ``aggregate``'s event ``event_name`` is stored under, read
    off the event class ``@event`` made (which mypy does not see, hence the
    name): a reader naming an event its aggregate does not trigger, or no
    longer does, fails when imported instead of silently reading nothing."""
    made = vars(aggregate).get(event_name)
    if not (isinstance(made, type) and issubclass(made, Aggregate.Event)):
        raise LookupError(f"{aggregate.__name__} triggers no event '{event_name}'")
    topic: str = made.TOPIC  # type: ignore[attr-defined]
    return topic


def require_reason(reason: str) -> str:
    """Return the reason stripped of surrounding blanks, refusing a blank one
    or one over its bound."""
    stripped = reason.strip()
    if not stripped:
        raise MissingReasonError("a non-blank reason is required for this command")
    return TEXT.check(stripped)


def to_iso(moment: datetime) -> str:
    """Business times travel in events as ISO 8601 text with their offset;
    every one an event records passes here, so none is outside its bound."""
    return BUSINESS_TIME.check(moment).isoformat()


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text)


def whole_minutes(duration: timedelta) -> int:
    """Whole minutes in a duration, rounded down (CONTRACT §1.1)."""
    return int(duration.total_seconds() // 60)


def ensure_in_time_order(
    at: datetime, last_changed_at: datetime | None, what: Message
) -> None:
    """Refuse a command dated before the latest recorded change of ``what``."""
    if last_changed_at is not None and at < last_changed_at:
        raise OutOfOrderError(
            "this command is dated {at} but {what} last changed at {last}; facts "
            "about one subject are recorded in time order",
            at=at.isoformat(),
            what=what,
            last=last_changed_at.isoformat(),
        )


def require_stars(stars: int) -> int:
    """Ratings are whole stars from 1 to 5."""
    if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
        raise StarsOutOfRangeError(
            "stars must be a whole number from 1 to 5, not {stars}", stars=repr(stars)
        )
    return stars
