"""The events as projections see them, read in pages straight from the store."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any, NamedTuple, Protocol

import orjson
from sqlalchemy.engine import Connection

from ledger.store.event_store import placeholder

DEFAULT_PAGE_SIZE = 50_000


class RecordedEvent(NamedTuple):
    """A stored event as projections see it: position, topic and payload."""

    position: int
    topic: str
    stream_id: str
    payload: dict[str, Any]


class EventReader(Protocol):
    """How the engine reads a page of events: those of ``topics`` in
    positions (after, upto], in position order. ``read_events`` is the
    engine's own; another (the library's per-event decoding, say) can be
    handed to ``ProjectionEngine`` to be measured against it."""

    def __call__(
        self, conn: Connection, *, after: int, upto: int, topics: Collection[str]
    ) -> list[RecordedEvent]: ...


def read_events(
    conn: Connection,
    *,
    after: int,
    upto: int,
    topics: Collection[str],
) -> list[RecordedEvent]:
    """The events of ``topics`` in positions (after, upto], decoded straight
    from the stored JSON. Pages are windows of positions read along the
    primary key; other topics are filtered out by the database."""
    # The driver's own cursor: building a SQLAlchemy row per event would cost
    # more than parsing its payload.
    # ``topic || ''`` keeps the planner off the topic index: walking a page's
    # window along the primary key is cheaper than gathering it by topic and
    # sorting it back into position order.
    mark = placeholder(conn)
    wanted = sorted(topics)
    in_topics = ", ".join([mark] * len(wanted))
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            "SELECT position, topic, stream_id, payload FROM ledger_events "
            f"WHERE position > {mark} AND position <= {mark} "
            f"AND (topic || '') IN ({in_topics}) ORDER BY position",
            (after, upto, *wanted),
        )
        rows = cursor.fetchall()
    finally:
        cursor.close()
    loads = orjson.loads
    return [
        RecordedEvent(position, topic, stream_id, loads(payload))
        for position, topic, stream_id, payload in rows
    ]


def iter_events(
    conn: Connection,
    *,
    upto: int,
    topics: Collection[str],
    page_size: int = DEFAULT_PAGE_SIZE,
    reader: EventReader = read_events,
) -> Iterator[RecordedEvent]:
    """Every event of ``topics`` up to position ``upto``, page by page."""
    for after in range(0, upto, page_size):
        yield from reader(
            conn, after=after, upto=min(after + page_size, upto), topics=topics
        )
