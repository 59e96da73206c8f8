"""The unit of work of one batch of commands: the aggregates it reads and
changes and the claims it makes, with an optional cache that a long-running
writer (the importer) keeps between batches."""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

TAggregate = TypeVar("TAggregate", bound=Aggregate)


class AggregateSource(Protocol):
    """Where a unit of work loads what it has not seen yet."""

    def load_aggregate(self, stream: UUID) -> Aggregate | None: ...

    def find_claim(self, kind: str, value: str) -> UUID | None: ...


class AggregateCache:
    """Aggregates and claims kept between batches by a long-running writer
    (the importer), bounded by count. Cleared whenever a save fails."""

    def __init__(self, max_aggregates: int = 50_000, max_claims: int = 200_000) -> None:
        self._aggregates: OrderedDict[UUID, Aggregate] = OrderedDict()
        self._claims: OrderedDict[tuple[str, str], UUID] = OrderedDict()
        self._max_aggregates = max_aggregates
        self._max_claims = max_claims

    def aggregate(self, stream: UUID) -> Aggregate | None:
        found = self._aggregates.get(stream)
        if found is not None:
            self._aggregates.move_to_end(stream)
        return found

    def keep_aggregate(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate
        self._aggregates.move_to_end(aggregate.id)
        while len(self._aggregates) > self._max_aggregates:
            self._aggregates.popitem(last=False)

    def claim(self, kind: str, value: str) -> UUID | None:
        return self._claims.get((kind, value))

    def keep_claim(self, kind: str, value: str, stream: UUID) -> None:
        self._claims[(kind, value)] = stream
        while len(self._claims) > self._max_claims:
            self._claims.popitem(last=False)

    def clear(self) -> None:
        self._aggregates.clear()
        self._claims.clear()


class UnitOfWork:
    """The aggregates and claims one batch reads and changes."""

    def __init__(self, store: AggregateSource, cache: AggregateCache | None) -> None:
        self._store = store
        self._cache = cache
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self.new_claims: dict[tuple[str, str], UUID] = {}

    def find(self, cls: type[TAggregate], domain_id: str) -> TAggregate | None:
        stream = cls.create_id(domain_id)
        if stream not in self._aggregates:
            cached = self._cache.aggregate(stream) if self._cache else None
            self._aggregates[stream] = (
                cached if cached is not None else self._load(stream)
            )
        found = self._aggregates[stream]
        if found is not None and not isinstance(found, cls):
            raise TypeError(f"stream {stream} holds a {type(found).__name__}")
        return found

    def _load(self, stream: UUID) -> Aggregate | None:
        return self._store.load_aggregate(stream)

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate

    def owner_of(self, kind: str, value: str) -> UUID | None:
        owner = self.new_claims.get((kind, value))
        if owner is None and self._cache:
            owner = self._cache.claim(kind, value)
        if owner is None:
            owner = self._store.find_claim(kind, value)
            if owner is not None and self._cache:
                self._cache.keep_claim(kind, value, owner)
        return owner

    def claim(self, kind: str, value: str, stream: UUID) -> None:
        self.new_claims[(kind, value)] = stream

    def aggregate_by_stream(self, stream: UUID) -> Aggregate | None:
        if stream not in self._aggregates:
            cached = self._cache.aggregate(stream) if self._cache else None
            self._aggregates[stream] = (
                cached if cached is not None else self._load(stream)
            )
        return self._aggregates[stream]

    def keep_in_cache(self) -> None:
        if self._cache is None:
            return
        for aggregate in self._aggregates.values():
            if aggregate is not None:
                self._cache.keep_aggregate(aggregate)
        for (kind, value), stream in self.new_claims.items():
            self._cache.keep_claim(kind, value, stream)
