"""The unit of work of one batch of commands: the aggregates it reads and
changes and the claims it makes, with an optional cache that a long-running
writer (the importer) keeps between batches."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Protocol, TypeVar, cast
from uuid import UUID

from eventsourcing.domain import Aggregate

TAggregate = TypeVar("TAggregate", bound=Aggregate)

# What an aggregate kept in memory costs, as measured (docs/benchmarks.md,
# "Memory flat with file size"): a fixed part, and a part per event applied.
AGGREGATE_BYTES = 2_000
EVENT_BYTES = 350


class AggregateSource(Protocol):
    """Where a unit of work loads what it has not seen yet, many at a time."""

    def load_aggregates(self, streams: Sequence[UUID]) -> dict[UUID, Aggregate]: ...

    def find_claims(
        self, claims: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UUID]: ...

    def existing_streams(self, streams: Sequence[UUID]) -> set[UUID]: ...


class AggregateCache:
    """Aggregates and claims kept between batches by a long-running writer
    (the importer), the least recently used dropped first. Cleared whenever
    a save fails.

    Aggregates are bounded by an estimate of the memory they hold, not by
    their count: an aggregate's state grows with its history (a volunteer
    keeps every session, an activity every sign-up), so under a count bound
    memory grows with the file as histories lengthen. Each event applied
    adds at most a few small objects to an aggregate's state, so its
    ``version`` prices it: ``AGGREGATE_BYTES`` plus ``EVENT_BYTES`` per
    event, as measured (docs/benchmarks.md). The default budget leaves room
    under an import's 1 GiB goal for the rest of its process (claims, data
    keys, the interpreter); what it drops is mostly cold (activities past,
    orders closed), and what is needed again is read back with the batch's
    other loads, in one query. Claims are all alike (a kind, a value of
    bounded length, a stream id), so their count bounds them; a claim not
    kept is one more value in the batch's claims query."""

    def __init__(self, max_bytes: int = 320 * 2**20, max_claims: int = 200_000) -> None:
        self._aggregates: OrderedDict[UUID, tuple[Aggregate, int]] = OrderedDict()
        self._claims: OrderedDict[tuple[str, str], UUID] = OrderedDict()
        self._max_bytes = max_bytes
        self._max_claims = max_claims
        self._bytes = 0

    @property
    def estimated_bytes(self) -> int:
        """What the aggregates kept are estimated to hold in memory."""
        return self._bytes

    def aggregate(self, stream: UUID) -> Aggregate | None:
        found = self._aggregates.get(stream)
        if found is None:
            return None
        self._aggregates.move_to_end(stream)
        return found[0]

    def keep_aggregate(self, aggregate: Aggregate) -> None:
        """Keep ``aggregate`` as it is now (it may have grown since it was
        last kept), dropping the least recently used over the budget; one
        dearer than the whole budget is not kept."""
        weight = AGGREGATE_BYTES + EVENT_BYTES * aggregate.version
        previous = self._aggregates.pop(aggregate.id, None)
        if previous is not None:
            self._bytes -= previous[1]
        if weight > self._max_bytes:
            return
        self._aggregates[aggregate.id] = (aggregate, weight)
        self._bytes += weight
        while self._bytes > self._max_bytes:
            _, (_, dropped) = self._aggregates.popitem(last=False)
            self._bytes -= dropped

    def claim(self, kind: str, value: str) -> UUID | None:
        return self._claims.get((kind, value))

    def forget_claim(self, kind: str, value: str) -> None:
        self._claims.pop((kind, value), None)

    def keep_claim(self, kind: str, value: str, stream: UUID) -> None:
        self._claims[(kind, value)] = stream
        while len(self._claims) > self._max_claims:
            self._claims.popitem(last=False)

    def clear(self) -> None:
        self._aggregates.clear()
        self._claims.clear()
        self._bytes = 0


class UnitOfWork:
    """The aggregates and claims one batch reads and changes.

    ``prefetch`` loads what a batch's commands name in a few queries; what
    it could not know in advance (the activity of a session found through
    its claim, say) is loaded on first use."""

    def __init__(self, store: AggregateSource, cache: AggregateCache | None) -> None:
        self._store = store
        self._cache = cache
        self._aggregates: dict[UUID, Aggregate | None] = {}
        self._claims: dict[tuple[str, str], UUID | None] = {}
        self._existing: dict[UUID, bool] = {}
        self.new_claims: dict[tuple[str, str], UUID] = {}
        self.released_claims: set[tuple[str, str]] = set()
        self._added: set[UUID] = set()

    def prefetch(
        self,
        streams: Iterable[UUID],
        claims: Iterable[tuple[str, str]],
        existing: Iterable[UUID] = (),
    ) -> None:
        """Load ``streams`` and the owners of ``claims``; learn only whether
        the ``existing`` streams exist (a volunteer's record can hold
        thousands of events that a command naming them never reads)."""
        unknown = [s for s in set(existing) if self._known_aggregate(s) is _UNSEEN]
        if unknown:
            found = self._store.existing_streams(unknown)
            for stream in unknown:
                self._existing[stream] = stream in found
        unseen_claims = [c for c in set(claims) if self._known_owner(c) is _UNSEEN]
        owners = self._store.find_claims(unseen_claims)
        for claim in unseen_claims:
            self._claims[claim] = owners.get(claim)
        wanted = set(streams) | set(owners.values())
        unseen = [s for s in wanted if self._known_aggregate(s) is _UNSEEN]
        loaded = self._store.load_aggregates(unseen)
        for stream in unseen:
            self._aggregates[stream] = loaded.get(stream)

    def _known_aggregate(self, stream: UUID) -> Aggregate | object | None:
        """The aggregate, None when known to be absent, or _UNSEEN."""
        found = self._aggregates.get(stream, _UNSEEN)
        if found is _UNSEEN and self._cache is not None:
            cached = self._cache.aggregate(stream)
            if cached is not None:
                self._aggregates[stream] = found = cached
        return found

    def _known_owner(self, claim: tuple[str, str]) -> UUID | object | None:
        """The claim's owner, None when known to be unclaimed, or _UNSEEN."""
        if claim in self.new_claims:
            return self.new_claims[claim]
        if claim in self.released_claims:
            return None
        found = self._claims.get(claim, _UNSEEN)
        if found is _UNSEEN and self._cache is not None:
            cached = self._cache.claim(*claim)
            if cached is not None:
                self._claims[claim] = found = cached
        return found

    def find(self, cls: type[TAggregate], domain_id: str) -> TAggregate | None:
        found = self.aggregate_by_stream(cls.create_id(domain_id))
        if found is not None and not isinstance(found, cls):
            raise TypeError(f"{found.id} holds a {type(found).__name__}")
        return found

    def aggregate_by_stream(self, stream: UUID) -> Aggregate | None:
        found = self._known_aggregate(stream)
        if found is _UNSEEN:
            found = self._store.load_aggregates([stream]).get(stream)
            self._aggregates[stream] = found
        return cast(Aggregate | None, found)

    def exists(self, cls: type[Aggregate], domain_id: str) -> bool:
        """Whether ``domain_id`` is recorded, without loading its events."""
        stream = cls.create_id(domain_id)
        known = self._known_aggregate(stream)
        if known is not _UNSEEN:
            return isinstance(known, cls)
        if stream not in self._existing:
            self._existing[stream] = bool(self._store.existing_streams([stream]))
        return self._existing[stream]

    def add(self, aggregate: Aggregate) -> None:
        self._aggregates[aggregate.id] = aggregate
        self._added.add(aggregate.id)

    def is_new(self, aggregate: Aggregate) -> bool:
        """Whether this batch creates ``aggregate`` (it is not stored yet)."""
        return aggregate.id in self._added

    def owner_of(self, kind: str, value: str) -> UUID | None:
        claim = (kind, value)
        found = self._known_owner(claim)
        if found is _UNSEEN:
            found = self._store.find_claims([claim]).get(claim)
            self._claims[claim] = found
        return cast(UUID | None, found)

    def claim(self, kind: str, value: str, stream: UUID) -> None:
        self.new_claims[(kind, value)] = stream

    def release(self, kind: str, value: str) -> None:
        """Give up a claim its holder no longer makes (an erased ID number)."""
        self.new_claims.pop((kind, value), None)
        self.released_claims.add((kind, value))

    def keep_in_cache(self) -> None:
        if self._cache is None:
            return
        for aggregate in self._aggregates.values():
            if aggregate is not None:
                self._cache.keep_aggregate(aggregate)
        for kind, value in self.released_claims:
            self._cache.forget_claim(kind, value)
        for (kind, value), stream in self.new_claims.items():
            self._cache.keep_claim(kind, value, stream)


# What a lookup returns for what this unit of work has not looked up yet.
_UNSEEN = object()
