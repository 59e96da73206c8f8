"""Verifying the live projections against a fresh replay of the events.

``ledger verify`` fails while any projection differs from its replay, has
parked events, or has no live version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ledger.engine.events import EventReader, iter_events, read_events
from ledger.engine.projection import Projection, contribution_order, fingerprint
from ledger.engine.tracking import get_live_version, parked_positions
from ledger.store.event_store import Database


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
    every contribution agrees and no event is parked or refused."""

    name: str
    position: int
    live_fingerprint: str
    replay_fingerprint: str
    differences: tuple[Difference, ...]
    dead_letters: int
    # Events the replay's fold refuses that the live version has not parked.
    refused_unparked: tuple[int, ...] = ()
    has_live_version: bool = True

    @classmethod
    def missing(cls, name: str) -> VerificationResult:
        """A projection with no live version cannot be read, so it fails."""
        return cls(name, 0, "", "", (), 0, has_live_version=False)

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
) -> list[VerificationResult]:
    """Compare every live projection with a fresh replay in memory: what
    each event contributes to each key (so a figure, an as-of read and an
    explanation all stand checked), and which events were parked."""
    results = []
    for name in names or sorted(projections):
        projection = projections[name]
        with database.reading() as conn:
            live = get_live_version(conn, name)
            if live is None:
                results.append(VerificationResult.missing(name))
                continue
            stored = projection.contributions(conn, live.version, live.position)
            parked = parked_positions(conn, name, live.version)
            replayed = projection.replay_contributions(
                iter_events(
                    conn, upto=live.position, topics=projection.topics, reader=reader
                )
            )
        contributed = replayed.contributions
        live_fingerprint = fingerprint(stored)
        differences: tuple[Difference, ...] = ()
        if contributed != stored:  # else spare the sorting and digesting
            differences = tuple(
                Difference(*at, stored.get(at), contributed.get(at))
                for at in sorted(set(stored) | set(contributed), key=contribution_order)
                if stored.get(at) != contributed.get(at)
            )
        results.append(
            VerificationResult(
                name=name,
                position=live.position,
                live_fingerprint=live_fingerprint,
                replay_fingerprint=(
                    fingerprint(contributed) if differences else live_fingerprint
                ),
                differences=differences,
                dead_letters=len(parked),
                refused_unparked=tuple(
                    at for at in replayed.refused if at not in parked
                ),
            )
        )
    return results
