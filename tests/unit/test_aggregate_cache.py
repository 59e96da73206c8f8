"""The importer's aggregate cache: bounded by what its aggregates hold, not by
how many they are, however long their histories grow."""

from __future__ import annotations

from datetime import timedelta

from ledger.application.unit_of_work import (
    AGGREGATE_BYTES,
    EVENT_BYTES,
    AggregateCache,
)
from ledger.domain.volunteers import SessionStatus, Volunteer
from tests.factories import T0
from tests.unit.domain_builders import activity, session_in, volunteer


def serve(who: Volunteer, sessions: int) -> Volunteer:
    """Give ``who`` ``sessions`` more approved sessions, a day apart (three
    events each: check-in, check-out, approval)."""
    done = len(who.sessions)
    for day in range(done, done + sessions):
        at_activity = activity(
            f"A{day}",
            starts_at=T0 + timedelta(days=day),
            signed_up=(who.volunteer_id,),
        )
        session_in(SessionStatus.APPROVED, who, at_activity, session_id=f"S{day}")
    return who


def cost(events: int) -> int:
    """The cache's estimate for an aggregate of ``events`` events."""
    return AGGREGATE_BYTES + EVENT_BYTES * events


def test_a_cache_stays_within_its_byte_budget_while_its_aggregates_grow() -> None:
    # Given room for four volunteers of ten sessions (31 events each)
    budget = 4 * cost(31)
    cache = AggregateCache(max_bytes=budget)
    volunteers = [volunteer(f"V{n}") for n in range(4)]
    # When each serves ten sessions, kept after every one, as batches do
    for _ in range(10):
        for who in volunteers:
            cache.keep_aggregate(serve(who, 1))
            assert cache.estimated_bytes <= budget
    # Then all four fit, each priced by what it holds now
    assert cache.estimated_bytes == 4 * cost(31)
    assert all(cache.aggregate(who.id) is who for who in volunteers)
    # When one of them serves ten sessions more
    cache.keep_aggregate(serve(volunteers[0], 10))
    # Then the least recently used are dropped to make room for it
    assert cache.estimated_bytes <= budget
    assert cache.aggregate(volunteers[0].id) is volunteers[0]
    assert cache.aggregate(volunteers[1].id) is None
    assert cache.aggregate(volunteers[3].id) is volunteers[3]


def test_an_aggregate_read_is_kept_longer_than_one_left_alone() -> None:
    budget = 3 * cost(1)
    cache = AggregateCache(max_bytes=budget)
    first, second, third = (volunteer(f"V{n}") for n in range(3))
    for who in (first, second, third):
        cache.keep_aggregate(who)
    cache.aggregate(first.id)  # read: now the most recently used
    cache.keep_aggregate(volunteer("V3"))
    assert cache.aggregate(first.id) is first
    assert cache.aggregate(second.id) is None


def test_an_aggregate_dearer_than_the_budget_is_not_kept_and_drops_nothing() -> None:
    cache = AggregateCache(max_bytes=cost(31) - 1)
    small = volunteer("V0")
    cache.keep_aggregate(small)
    large = serve(volunteer("V1"), 10)
    cache.keep_aggregate(large)
    assert cache.aggregate(large.id) is None
    assert cache.aggregate(small.id) is small
    assert cache.estimated_bytes == cost(1)


def test_a_cleared_cache_holds_nothing() -> None:
    cache = AggregateCache()
    kept = volunteer()
    cache.keep_aggregate(kept)
    cache.keep_claim("session", "S1", kept.id)
    cache.clear()
    assert cache.aggregate(kept.id) is None
    assert cache.claim("session", "S1") is None
    assert cache.estimated_bytes == 0
