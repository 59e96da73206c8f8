"""What a venue read selects from the projections that count per venue and
month (``venue_activity``, ``order_fulfilment``).

Both answer the same two reads of a selection: its figures, and the entries
behind them; the reads resolve a venue query (a venue, its subtree or not,
the months, as of when) into the selection once, whichever they ask.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import sqlalchemy as sa

from ledger.store.event_store import LOOKUP_CHUNK


@dataclass(frozen=True)
class VenueSelection:
    """The entries a venue read sums: those of one projection ``version``,
    of ``venue_ids``, in the months ``from_month`` to ``to_month``
    (inclusive, YYYY-MM), up to ``position``; and, when ``kind`` is given,
    of orders of that kind only (activity has no order kind)."""

    version: int
    venue_ids: tuple[str, ...]
    from_month: str
    to_month: str
    position: int
    kind: str | None = None
    # The venue whose whole subtree ``venue_ids`` are, when they are one
    # (a projection may keep figures per subtree).
    node: str | None = None

    @property
    def year(self) -> str | None:
        """The calendar year the months are, if they are exactly one."""
        year = self.from_month[:4]
        whole = (self.from_month, self.to_month) == (f"{year}-01", f"{year}-12")
        return year if whole else None

    @property
    def subtree_year(self) -> tuple[str, str] | None:
        """The venue and year, when the selection is a whole subtree's
        calendar year: what a projection's kept roll-up may answer."""
        year = self.year
        return None if self.node is None or year is None else (self.node, year)

    def months(self, entries: sa.Table) -> tuple[sa.ColumnElement[bool], ...]:
        """The period as conditions on a venue projection's ``entries``."""
        month = entries.c.month
        return month >= self.from_month, month <= self.to_month

    def venue_chunks(self) -> Iterator[tuple[str, ...]]:
        """The venues, as many at a time as one ``IN`` list holds."""
        for start in range(0, len(self.venue_ids), LOOKUP_CHUNK):
            yield self.venue_ids[start : start + LOOKUP_CHUNK]
