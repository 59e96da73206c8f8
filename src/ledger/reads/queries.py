"""The reads dashboards, auditors and jobs make (CONTRACT §4–§5).

Every read runs in one read transaction, takes ``as_of`` (a ledger position,
or a recording time with an offset: what the ledger knew then) and returns
the position it reflects and the chain hash at that position, so a figure
can be tied to the exact ledger state it came from. A read reflects at most
what its projection has processed: when a projection lags the head, the
answer says which position it stands at.
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from threading import Lock
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.volunteers import Volunteer
from ledger.engine import LiveState, ProjectionEngine, last_change
from ledger.projections.registry import (
    ALL_PROJECTIONS,
    ORDER_FULFILMENT,
    VENUE_ACTIVITY,
    VENUE_TREE,
    VOLUNTEER_HOURS,
)
from ledger.projections.venue_tree import VenueTree
from ledger.projections.volunteer_hours import stars_for_minutes
from ledger.store.event_store import (
    Database,
    chain_hash_at,
    events_table,
    head_position,
    select_rows_among,
    utc_text,
)

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FIRST_MONTH, LAST_MONTH = "0000-01", "9999-12"

AsOf = int | datetime | None
T = TypeVar("T")


class NotFoundError(LookupError):
    """The volunteer or venue is unknown at the position read."""


class InvalidReadError(ValueError):
    """A read's parameters are malformed."""


def parse_as_of(text: str | None) -> AsOf:
    """``as_of`` as given on the command line or in a query string."""
    if text is None or text == "":
        return None
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReadError(
            f"as_of '{text}' is neither a ledger position nor an ISO 8601 time"
        ) from None
    if moment.utcoffset() is None:
        raise InvalidReadError(f"as_of '{text}' needs a UTC offset")
    return moment


def check_month(name: str, value: str | None, default: str) -> str:
    if value is None:
        return default
    if not MONTH.match(value):
        raise InvalidReadError(f"{name} must be a month YYYY-MM, not '{value}'")
    return value


@dataclass(frozen=True)
class Cited:
    """The ledger state a read reflects."""

    position: int
    chain_hash: str
    dead_letters: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "chain_hash": self.chain_hash,
            "dead_letters": self.dead_letters,
        }


class FiguresCache:
    """Figures already computed, by what they answer and the ledger state
    they stand on: the projection version and the position of the last
    change to what they read. Figures at a position never change, and stay
    the same at every later position until what they read changes again, so
    a dashboard polling the same read is answered from memory while the
    ledger moves on elsewhere."""

    def __init__(self, size: int = 4096) -> None:
        self._figures: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._size = size
        self._lock = Lock()

    def get(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            found = self._figures.get(key)
            if found is not None:
                self._figures.move_to_end(key)
            return found

    def get_or_compute(self, key: tuple[Any, ...], compute: Callable[[], T]) -> T:
        found = self.get(key)
        return found if found is not None else self.keep(key, compute())

    def keep(self, key: tuple[Any, ...], figures: T) -> T:
        with self._lock:
            self._figures[key] = figures
            while len(self._figures) > self._size:
                self._figures.popitem(last=False)
        return figures


# Events a venue explanation lists at most per answer (a city's are millions).
EXPLAINED_EVENTS = 1_000
MOST_EXPLAINED_EVENTS = 10_000


def check_page(after: int, limit: int) -> None:
    if after < 0:
        raise InvalidReadError("after must not be negative")
    if not 1 <= limit <= MOST_EXPLAINED_EVENTS:
        raise InvalidReadError(f"limit must be from 1 to {MOST_EXPLAINED_EVENTS:,}")


def check_kind(kind: str | None) -> None:
    if kind not in (None, "wish", "service"):
        raise InvalidReadError(f"kind must be wish or service, not '{kind}'")


@dataclass(frozen=True)
class VenueScope:
    """What a venue read covers: the live version and the ledger state it
    reads, the venues (one, or a subtree) and the months."""

    live: LiveState
    cited: Cited
    venues: list[str]
    tree: tuple[int, int]
    start: str
    end: str

    def selection(self) -> tuple[int, list[str], str, str, int]:
        """The arguments a projection's venue reads take after ``conn``."""
        position = self.cited.position
        return self.live.version, self.venues, self.start, self.end, position

    def identity(self) -> tuple[Any, ...]:
        """What the figures depend on, besides the venues' last change."""
        return (self.start, self.end, self.live.version, tuple(self.venues), self.tree)


def _totals(figures: dict[str, Any]) -> dict[str, Any]:
    """A venue read's figures for the whole period, without the breakdowns."""
    breakdowns = ("venues", "by_month", "by_category")
    return {name: value for name, value in figures.items() if name not in breakdowns}


def _venue_read(
    venue_id: str, months: tuple[str | None, str | None], subtree: bool
) -> dict[str, Any]:
    """What a venue read was asked, as its answer repeats it."""
    return {
        "venue_id": venue_id,
        "from": months[0],
        "to": months[1],
        "subtree": subtree,
    }


def settled(last_change: int | None, position: int) -> int:
    """The earliest position whose figures equal those at ``position``: the
    last change at or before it, or ``position`` itself when the last change
    known came later (a read of the past) or is not known (not noted)."""
    if last_change is None or last_change > position:
        return position
    return last_change


class LedgerReads:
    """Projection reads, each as of a position, each citing the chain."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.engine = ProjectionEngine(database, ALL_PROJECTIONS)
        self._figures = FiguresCache()

    # --- positions -----------------------------------------------------

    @staticmethod
    def requested_position(
        conn: Connection, as_of: AsOf, head: int | None = None
    ) -> int:
        if head is None:
            head = head_position(conn)
        if as_of is None:
            return head
        if isinstance(as_of, int):
            if as_of < 0:
                raise InvalidReadError("as_of must not be negative")
            return min(as_of, head)
        t = events_table.c
        known = conn.execute(
            sa.select(sa.func.max(t.position)).where(t.recorded_at <= utc_text(as_of))
        ).scalar()
        return int(known or 0)

    def _cite(
        self, conn: Connection, name: str, as_of: AsOf, *, rolled_up: bool = False
    ) -> tuple[LiveState, Cited]:
        """The live version of ``name`` and what a read of it reflects. A
        read ``rolled_up`` the venue tree stands where both projections have
        reached, so its figures and its tree are of the same position."""
        live = self._live(conn, name)
        position = min(self.requested_position(conn, as_of, live.head), live.position)
        if rolled_up:
            position = min(position, self._live(conn, VENUE_TREE.name).position)
        return live, Cited(position, chain_hash_at(conn, position), live.dead_letters)

    def _live(self, conn: Connection, name: str) -> LiveState:
        live = self.engine.live_state(conn, name)
        if live is None:
            raise NotFoundError(
                f"projection '{name}' has not been built: run `ledger project`"
            )
        return live

    def _tree(
        self, conn: Connection, position: int | None = None
    ) -> tuple[VenueTree, tuple[int, int]]:
        """The venue tree as of ``position`` (default: as far as it is
        projected), and what identifies that state."""
        live = self.engine.live_state(conn, VENUE_TREE.name)
        if live is None:
            return VenueTree([]), (0, 0)
        at = live.position if position is None else min(position, live.position)
        state = (live.version, settled(live.last_change, at))
        tree = self._figures.get_or_compute(
            ("tree", *state), lambda: VENUE_TREE.get_tree(conn, live.version, at)
        )
        return tree, state

    @staticmethod
    def _venues_changed(
        conn: Connection, name: str, live: LiveState, venues: list[str], position: int
    ) -> int:
        """The settled position of the figures of ``venues`` at ``position``."""
        noted = live.changes_noted
        last = last_change(conn, name, live.version, venues) if noted else None
        return settled(last, position)

    def _subtree(
        self, conn: Connection, venue_id: str, subtree: bool, position: int
    ) -> tuple[list[str], tuple[int, int]]:
        tree, state = self._tree(conn, position)
        if venue_id not in tree:
            raise NotFoundError(f"venue '{venue_id}' is not registered")
        return (tree.subtree(venue_id) if subtree else [venue_id]), state

    # --- reads -----------------------------------------------------------

    def volunteer_hours(self, volunteer_id: str, as_of: AsOf = None) -> dict[str, Any]:
        with self.database.reading() as conn:
            live, cited = self._cite(conn, VOLUNTEER_HOURS.name, as_of)
            version = live.version
            last = VOLUNTEER_HOURS.last_entry(
                conn, version, volunteer_id, cited.position
            )
            if last is None:
                self._ensure_volunteer(conn, volunteer_id, cited.position)
            key = ("hours", volunteer_id, version, last or 0)

            def compute() -> dict[str, Any]:
                hours = VOLUNTEER_HOURS.get_hours(
                    conn, version, volunteer_id, cited.position
                )
                return {
                    "volunteer_id": volunteer_id,
                    "verified_minutes": hours.verified_minutes,
                    "makeup_minutes": hours.makeup_minutes,
                    "total_minutes": hours.total_minutes,
                    "sessions": hours.sessions,
                    "last_service_date": hours.last_service_date,
                    "by_year": hours.by_year,
                    "by_year_and_kind": hours.by_year_and_kind,
                    "by_category": hours.by_category,
                    "stars": hours.stars,
                }

            figures = self._figures.get_or_compute(key, compute)
        return {**figures, **cited.as_dict()}

    def hours_leaderboard(self, limit: int = 10, as_of: AsOf = None) -> dict[str, Any]:
        """The volunteers with the most approved minutes, and how many
        volunteers stand at each star level."""
        with self.database.reading() as conn:
            live, cited = self._cite(conn, VOLUNTEER_HOURS.name, as_of)
            version = live.version
            key = (
                "leaderboard",
                limit,
                version,
                settled(live.last_change, cited.position),
            )
            figures = self._figures.get_or_compute(
                key,
                lambda: _leaderboard(
                    VOLUNTEER_HOURS.get_totals(conn, version, cited.position), limit
                ),
            )
        return {**figures, **cited.as_dict()}

    def venue_subtree(self, venue_id: str) -> frozenset[str]:
        """The venue and its descendants, as registered now (empty if unknown)."""
        with self.database.reading() as conn:
            tree, _ = self._tree(conn)
        return frozenset(tree.subtree(venue_id)) if venue_id in tree else frozenset()

    def venue_children(
        self, venue_id: str | None, as_of: AsOf = None
    ) -> dict[str, Any]:
        """The venues directly under ``venue_id`` (None: the centres)."""
        with self.database.reading() as conn:
            _, cited = self._cite(conn, VENUE_TREE.name, as_of)
            tree, _ = self._tree(conn, cited.position)
        if venue_id is not None and venue_id not in tree:
            raise NotFoundError(f"venue '{venue_id}' is not registered")
        children = (tree.venues[child] for child in tree.children.get(venue_id, ()))
        return {
            "venue_id": venue_id,
            "children": [
                {"venue_id": v.venue_id, "name": v.name, "level": v.level}
                for v in sorted(children, key=lambda venue: venue.venue_id)
            ],
            "position": cited.position,
            "chain_hash": cited.chain_hash,
        }

    def explain_volunteer_hours(
        self, volunteer_id: str, as_of: AsOf = None
    ) -> dict[str, Any]:
        """The events behind a volunteer's figures; they sum to the figures."""
        with self.database.reading() as conn:
            live, cited = self._cite(conn, VOLUNTEER_HOURS.name, as_of)
            version = live.version
            self._ensure_volunteer(conn, volunteer_id, cited.position)
            contributions = _with_events(
                conn,
                VOLUNTEER_HOURS.explain_hours(
                    conn, version, volunteer_id, cited.position
                ),
            )
            hours = VOLUNTEER_HOURS.get_hours(
                conn, version, volunteer_id, cited.position
            )
        return {
            "volunteer_id": volunteer_id,
            "figures": {
                "verified_minutes": hours.verified_minutes,
                "makeup_minutes": hours.makeup_minutes,
                "total_minutes": hours.total_minutes,
                "sessions": hours.sessions,
            },
            "contributions": contributions,
            **cited.as_dict(),
        }

    def _venue_scope(
        self,
        conn: Connection,
        name: str,
        venue_id: str,
        months: tuple[str | None, str | None],
        subtree: bool,
        as_of: AsOf,
    ) -> VenueScope:
        start = check_month("from", months[0], FIRST_MONTH)
        end = check_month("to", months[1], LAST_MONTH)
        live, cited = self._cite(conn, name, as_of, rolled_up=True)
        venues, tree = self._subtree(conn, venue_id, subtree, cited.position)
        return VenueScope(live, cited, venues, tree, start, end)

    def venue_activity(
        self,
        venue_id: str,
        from_month: str | None = None,
        to_month: str | None = None,
        *,
        subtree: bool = True,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        months = (from_month, to_month)
        with self.database.reading() as conn:
            scope = self._venue_scope(
                conn, VENUE_ACTIVITY.name, venue_id, months, subtree, as_of
            )
            figures = self._activity_figures(conn, scope)
        read = _venue_read(venue_id, months, subtree)
        return {**read, **figures, **scope.cited.as_dict()}

    def _activity_figures(self, conn: Connection, scope: VenueScope) -> dict[str, Any]:
        venues, position = scope.venues, scope.cited.position
        changed = self._venues_changed(
            conn, VENUE_ACTIVITY.name, scope.live, venues, position
        )

        def compute() -> dict[str, Any]:
            found = VENUE_ACTIVITY.get_activity(conn, *scope.selection())
            return {
                "venues": len(venues),
                **found.total.as_dict(),
                "by_month": {m: f.as_dict() for m, f in sorted(found.by_month.items())},
                "by_category": {
                    c: f.as_dict() for c, f in sorted(found.by_category.items())
                },
            }

        key = ("activity", *scope.identity(), changed)
        return self._figures.get_or_compute(key, compute)

    def venue_fulfilment(
        self,
        venue_id: str,
        from_month: str | None = None,
        to_month: str | None = None,
        *,
        subtree: bool = True,
        kind: str | None = None,
        as_of: AsOf = None,
    ) -> dict[str, Any]:
        months = (from_month, to_month)
        check_kind(kind)
        with self.database.reading() as conn:
            scope = self._venue_scope(
                conn, ORDER_FULFILMENT.name, venue_id, months, subtree, as_of
            )
            figures = self._fulfilment_figures(conn, scope, kind)
        read = _venue_read(venue_id, months, subtree)
        return {**read, "kind": kind, **figures, **scope.cited.as_dict()}

    def _fulfilment_figures(
        self, conn: Connection, scope: VenueScope, kind: str | None
    ) -> dict[str, Any]:
        venues, position = scope.venues, scope.cited.position
        changed = self._venues_changed(
            conn, ORDER_FULFILMENT.name, scope.live, venues, position
        )

        def compute() -> dict[str, Any]:
            found = ORDER_FULFILMENT.get_fulfilment(conn, *scope.selection(), kind)
            return {
                "venues": len(venues),
                **found.total.as_dict(),
                "by_month": {
                    month: month_figures.as_dict()
                    for month, month_figures in sorted(found.by_month.items())
                },
            }

        key = ("fulfilment", kind, *scope.identity(), changed)
        return self._figures.get_or_compute(key, compute)

    def explain_venue_activity(
        self,
        venue_id: str,
        from_month: str | None = None,
        to_month: str | None = None,
        *,
        subtree: bool = True,
        as_of: AsOf = None,
        after: int = 0,
        limit: int = EXPLAINED_EVENTS,
    ) -> dict[str, Any]:
        """The events behind a venue's activity figures, ``limit`` events
        after position ``after`` at a time (the next pages read ``as_of`` the
        first one's position). ``activities``, ``sessions`` and the minutes
        are the sums of all pages' contributions; ``volunteers`` counts the
        volunteers whose sessions in some month, category and kind sum above
        zero."""
        months = (from_month, to_month)
        check_page(after, limit)
        with self.database.reading() as conn:
            scope = self._venue_scope(
                conn, VENUE_ACTIVITY.name, venue_id, months, subtree, as_of
            )
            page = VENUE_ACTIVITY.explain_activity(
                conn, *scope.selection(), after=after, events=limit
            )
            figures = self._activity_figures(conn, scope)
            contributions = _with_events(conn, page.entries)
        return {
            **_venue_read(venue_id, months, subtree),
            "figures": _totals(figures),
            "contributions": contributions,
            "next_after": page.next_after,
            **scope.cited.as_dict(),
        }

    def explain_venue_fulfilment(
        self,
        venue_id: str,
        from_month: str | None = None,
        to_month: str | None = None,
        *,
        subtree: bool = True,
        kind: str | None = None,
        as_of: AsOf = None,
        after: int = 0,
        limit: int = EXPLAINED_EVENTS,
    ) -> dict[str, Any]:
        """The events behind a venue's order figures, ``limit`` events after
        position ``after`` at a time (the next pages read ``as_of`` the first
        one's position). The counts are the sums of all pages'
        contributions; ``rate``, ``open``, ``mean_stars`` and
        ``satisfaction`` follow from those sums, and the median from each
        fulfilled order's summed ``fulfil_minutes``."""
        months = (from_month, to_month)
        check_kind(kind)
        check_page(after, limit)
        with self.database.reading() as conn:
            scope = self._venue_scope(
                conn, ORDER_FULFILMENT.name, venue_id, months, subtree, as_of
            )
            page = ORDER_FULFILMENT.explain_fulfilment(
                conn, *scope.selection(), kind, after=after, events=limit
            )
            figures = self._fulfilment_figures(conn, scope, kind)
            contributions = _with_events(conn, page.entries)
        return {
            **_venue_read(venue_id, months, subtree),
            "kind": kind,
            "figures": _totals(figures),
            "contributions": contributions,
            "next_after": page.next_after,
            **scope.cited.as_dict(),
        }

    def _ensure_volunteer(
        self, conn: Connection, volunteer_id: str, position: int
    ) -> None:
        t = events_table.c
        known = conn.execute(
            sa.select(t.position).where(
                t.stream_id == str(Volunteer.create_id(volunteer_id)),
                t.stream_version == 1,
                t.position <= position,
            )
        ).first()
        if known is None:
            raise NotFoundError(f"volunteer '{volunteer_id}' is not registered")


def _leaderboard(totals: list[tuple[str, int, int, int]], limit: int) -> dict[str, Any]:
    stars = Counter(stars_for_minutes(v + m) for _, v, m, _ in totals)
    return {
        "leaders": [
            {
                "volunteer_id": volunteer_id,
                "verified_minutes": verified,
                "makeup_minutes": makeup,
                "total_minutes": verified + makeup,
                "sessions": sessions,
                "stars": stars_for_minutes(verified + makeup),
            }
            for volunteer_id, verified, makeup, sessions in totals[:limit]
        ],
        "volunteers_with_service": len(totals),
        "volunteers_by_stars": {str(level): stars.get(level, 0) for level in range(6)},
    }


def _with_events(
    conn: Connection, entries: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Each entry with the event that made it (topic, times, actor, chain)."""
    events = _events_at(conn, [entry["position"] for entry in entries])
    return [{**events[entry["position"]], **entry} for entry in entries]


def _events_at(conn: Connection, positions: list[int]) -> dict[int, dict[str, Any]]:
    t = events_table.c
    names = (
        "position",
        "topic",
        "occurred_at",
        "recorded_at",
        "actor_id",
        "actor_role",
        "chain_hash",
    )
    query = sa.select(*(t[name] for name in names))
    rows = select_rows_among(conn, query, t.position, positions)
    return {row[0]: dict(zip(names, row, strict=True)) for row in rows}
