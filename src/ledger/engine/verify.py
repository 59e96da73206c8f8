"""Verifying the live projections against a fresh replay of the events.

``ledger verify`` fails while any projection differs from its replay, has
parked events, or has no live version. The stored entries and the replay
are walked side by side in ledger order, a range of positions at a time:
each range's contributions are compared and digested, then dropped, so
memory holds a range whatever the ledger's length.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from ledger.engine.events import EventReader, iter_events, read_events
from ledger.engine.projection import (
    Contributions,
    Entry,
    Projection,
    content_lines,
    contribution_order,
    summed,
)
from ledger.engine.tracking import get_live_version, parked_positions
from ledger.store.event_store import Database

# Positions compared at a time (the events a replay reads at a time, too).
VERIFY_RANGE = 10_000
# Differences named per projection; all of them are counted.
DIFFERENCES_NAMED = 100


@dataclass(frozen=True)
class Difference:
    """What the event at ``position`` contributes to ``key``: live and replayed."""

    position: int
    key: tuple[Any, ...]
    live: tuple[int, ...] | None
    replayed: tuple[int, ...] | None


@dataclass(frozen=True)
class VerificationResult:
    """How one live projection compares with a fresh replay: ``ok`` when
    every contribution agrees and no event is parked or refused. Of
    ``difference_count`` differences, ``differences`` names the first
    (``DIFFERENCES_NAMED``, in ledger order)."""

    name: str
    position: int
    live_fingerprint: str
    replay_fingerprint: str
    differences: tuple[Difference, ...]
    difference_count: int
    dead_letters: int
    # Events the replay's fold refuses that the live version has not parked.
    refused_unparked: tuple[int, ...] = ()
    has_live_version: bool = True

    @classmethod
    def missing(cls, name: str) -> VerificationResult:
        """A projection with no live version cannot be read, so it fails."""
        return cls(name, 0, "", "", (), 0, 0, has_live_version=False)

    @property
    def ok(self) -> bool:
        return (
            self.has_live_version
            and self.live_fingerprint == self.replay_fingerprint
            and not self.dead_letters
            and not self.refused_unparked
        )


def verify(
    database: Database,
    projections: Mapping[str, Projection],
    names: Sequence[str] | None = None,
    *,
    reader: EventReader = read_events,
    range_size: int = VERIFY_RANGE,
) -> list[VerificationResult]:
    """Compare every live projection with a fresh replay: what each event
    contributes to each key (so a figure, an as-of read and an explanation
    all stand checked), and which events were parked; ``range_size``
    positions at a time."""
    results = []
    for name in names or sorted(projections):
        projection = projections[name]
        with database.reading() as conn:
            live = get_live_version(conn, name)
            if live is None:
                results.append(VerificationResult.missing(name))
                continue
            comparison = _Comparison(parked_positions(conn, name, live.version))
            events = iter_events(
                conn,
                upto=live.position,
                topics=projection.topics,
                page_size=range_size,
                reader=reader,
            )
            for stored, replayed in _ranges(
                projection.stored_entries(conn, live.version, live.position),
                projection.replay_entries(events, comparison.refused),
                range_size,
            ):
                comparison.add(stored, replayed)
        results.append(comparison.result(name, live.position))
    return results


def _ranges(
    stored: Iterator[Entry], replayed: Iterator[Entry], size: int
) -> Iterator[tuple[Contributions, Contributions]]:
    """Both sides' contributions, stored and replayed, ``size`` positions at
    a time in ledger order (both streams come in ledger order; a range one
    side has no entries in is empty on that side)."""
    tagged = heapq.merge(
        ((entry, False) for entry in stored),
        ((entry, True) for entry in replayed),
        key=lambda side: side[0].position,
    )
    for _, in_range in groupby(tagged, key=lambda side: (side[0].position - 1) // size):
        sides: tuple[list[Entry], list[Entry]] = ([], [])
        for entry, is_replayed in in_range:
            sides[is_replayed].append(entry)
        yield summed(sides[0]), summed(sides[1])


class _Comparison:
    """A comparison fed range by range: each side's running digest, the
    differences named and counted, and the refused events not parked."""

    def __init__(self, parked: frozenset[int]) -> None:
        self.parked = parked
        self.live = hashlib.sha256()
        self.replay = hashlib.sha256()
        self.differences: list[Difference] = []
        self.difference_count = 0
        self.refused_unparked: list[int] = []

    def refused(self, position: int) -> None:
        if position not in self.parked:
            self.refused_unparked.append(position)

    def add(self, stored: Contributions, replayed: Contributions) -> None:
        if stored == replayed:  # the usual range: its lines made once
            lines = content_lines(stored)
            self.live.update(lines)
            self.replay.update(lines)
            return
        self.live.update(content_lines(stored))
        self.replay.update(content_lines(replayed))
        for at in sorted(stored.keys() | replayed.keys(), key=contribution_order):
            if stored.get(at) != replayed.get(at):
                self.difference_count += 1
                if len(self.differences) < DIFFERENCES_NAMED:
                    self.differences.append(
                        Difference(*at, stored.get(at), replayed.get(at))
                    )

    def result(self, name: str, position: int) -> VerificationResult:
        return VerificationResult(
            name=name,
            position=position,
            live_fingerprint=self.live.hexdigest(),
            replay_fingerprint=self.replay.hexdigest(),
            differences=tuple(self.differences),
            difference_count=self.difference_count,
            dead_letters=len(self.parked),
            refused_unparked=tuple(self.refused_unparked),
        )
