"""The reads dashboards, auditors and jobs make (CONTRACT §4–§5).

Every read runs in one read transaction, takes ``as_of`` (a ledger position,
or a recording time with an offset: what the ledger knew then) and returns
the position it reflects and the chain hash at that position, so a figure
can be tied to the exact ledger state it came from. A read reflects at most
what its projection has processed: when a projection lags the head, the
answer says which position it stands at. Answers are typed and immutable
(``ledger.reads.answers``).
"""

from __future__ import annotations

import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime
from threading import Lock
from typing import Any, ClassVar, Protocol, TypedDict, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.domain.common import volunteer_stream_id
from ledger.domain.messages import Message, TranslatedError
from ledger.engine import ExplainedPage, LiveState, ProjectionEngine, last_change
from ledger.projections.registry import (
    ACTIVITY_CALENDAR,
    ALL_PROJECTIONS,
    ORDER_FULFILMENT,
    VENUE_ACTIVITY,
    VENUE_TREE,
    VOLUNTEER_HOURS,
)
from ledger.projections.venue_selection import VenueSelection
from ledger.projections.venue_tree import VenueTree
from ledger.projections.volunteer_hours import kept_leaderboard, stars_for_minutes
from ledger.reads.answers import (
    ActivityCalendar,
    ActivityContribution,
    ActivityExplanation,
    FulfilmentContribution,
    FulfilmentExplanation,
    HoursContribution,
    HoursExplanation,
    HoursLeaderboard,
    Leader,
    Leaderboard,
    VenueActivity,
    VenueChildren,
    VenueFulfilment,
    VenueSummary,
    VolunteerHours,
)
from ledger.reads.bounds import (
    EXPLAINED_EVENTS,
    LAST_POSITION,
    MOST_EXPLAINED_EVENTS,
    READ_YEARS,
)
from ledger.store.event_store import (
    Database,
    chain_hash_at,
    events_table,
    head_position,
    select_rows_among,
    utc_text,
)
from ledger.store.personal_data import PersonalDataVault

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
FIRST_MONTH, LAST_MONTH = "0000-01", "9999-12"
ORDER_KINDS = ("wish", "service")

AsOf = int | datetime | None
T = TypeVar("T")
F = TypeVar("F")
F_co = TypeVar("F_co", covariant=True)


class NotFoundError(LookupError):
    """The volunteer or venue is unknown at the position read (its message a
    ``Message``, rendered in the reader's language)."""


def _unregistered(kind: str, domain_id: str) -> Message:
    """Why a read of an unknown record is not found, in the reader's language."""
    return Message("{kind} '{id}' is not registered", kind=Message(kind), id=domain_id)


class InvalidReadError(TranslatedError, ValueError):
    """A read's parameters are malformed."""


def parse_as_of(text: str | None, name: str = "as_of") -> AsOf:
    """``as_of`` (or the read parameter ``name``) as given on the command
    line or in a query string: a ledger position or a time with an offset."""
    if text is None or text == "":
        return None
    if text.isascii() and text.isdigit():
        if len(text) > len(str(LAST_POSITION)) or int(text) > LAST_POSITION:
            raise InvalidReadError(
                "{name} {text} is past the last position a ledger can have",
                name=name,
                text=text,
            )
        return int(text)
    return parse_read_time(
        text, name, "{name} '{text}' is neither a ledger position nor an ISO 8601 time"
    )


def parse_read_time(
    text: str, name: str, refusal: str = "{name} '{text}' is not an ISO 8601 time"
) -> datetime:
    """A read's time (``as_of``, ``since`` …): ISO 8601 with a UTC offset, in
    ``READ_YEARS``; ``name`` is the parameter or option as the caller gave
    it, so that a refusal names it; ``refusal`` is the template of the
    refusal of a text that is no time."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidReadError(refusal, name=name, text=text) from None
    if moment.utcoffset() is None:
        raise InvalidReadError(
            "{name} '{text}' needs a UTC offset", name=name, text=text
        )
    _check_year(moment.year, name)
    return moment


def parse_business_day(text: str, name: str) -> date:
    """A business date (a day in China Standard Time) as ``name`` gave it:
    YYYY-MM-DD, in ``READ_YEARS``."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None
    if day is None or len(text) != len("YYYY-MM-DD"):
        raise InvalidReadError(
            "{name} must be a day YYYY-MM-DD, not '{text}'", name=name, text=text
        )
    _check_year(day.year, name)
    return day


def _check_year(year: int, name: str) -> None:
    first, last = READ_YEARS
    if not first <= year <= last:
        raise InvalidReadError(
            "{name} must be in the years {first}-{last}",
            name=name,
            first=first,
            last=last,
        )


def check_month(name: str, value: str | None) -> None:
    if value is not None and not MONTH.match(value):
        raise InvalidReadError(
            "{name} must be a month YYYY-MM, not '{text}'", name=name, text=value
        )


@dataclass(frozen=True)
class VenueQuery:
    """What a venue read asks (CONTRACT §3, §5): a venue, with its subtree
    or alone; the months ``from_month`` to ``to_month`` (inclusive, YYYY-MM;
    default: all); for the orders, their ``kind`` (default: both); as of a
    position or recording time (default: now)."""

    venue_id: str
    from_month: str | None = None
    to_month: str | None = None
    subtree: bool = True
    kind: str | None = None
    as_of: AsOf = None

    def __post_init__(self) -> None:
        check_month("from", self.from_month)
        check_month("to", self.to_month)
        if self.kind is not None and self.kind not in ORDER_KINDS:
            raise InvalidReadError(
                "kind must be wish or service, not '{kind}'", kind=self.kind
            )

    @property
    def months(self) -> tuple[str, str]:
        """The first and last month, open ends made explicit."""
        return self.from_month or FIRST_MONTH, self.to_month or LAST_MONTH


class AskedOfVenue(TypedDict):
    """A venue query as its answer repeats it."""

    venue_id: str
    from_month: str | None
    to_month: str | None
    subtree: bool


def _asked(query: VenueQuery) -> AskedOfVenue:
    return AskedOfVenue(
        venue_id=query.venue_id,
        from_month=query.from_month,
        to_month=query.to_month,
        subtree=query.subtree,
    )


def _without_kind(query: VenueQuery) -> VenueQuery:
    if query.kind is not None:
        raise InvalidReadError("kind selects orders: venue activity has none")
    return query


class CitedFields(TypedDict):
    """The fields that close an answer read from a projection."""

    position: int
    chain_hash: str
    dead_letters: int


@dataclass(frozen=True)
class Cited:
    """The ledger state a read reflects."""

    position: int
    chain_hash: str
    dead_letters: int

    def fields(self) -> CitedFields:
        """As the answer's closing fields."""
        return CitedFields(
            position=self.position,
            chain_hash=self.chain_hash,
            dead_letters=self.dead_letters,
        )


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


def check_page(after: int, limit: int) -> None:
    if not 0 <= after <= LAST_POSITION:
        raise InvalidReadError(
            "after must be a position from 0 to {last}", last=LAST_POSITION
        )
    if not 1 <= limit <= MOST_EXPLAINED_EVENTS:
        raise InvalidReadError(
            "limit must be from 1 to {most}", most=f"{MOST_EXPLAINED_EVENTS:,}"
        )


class VenueFiguresProjection(Protocol[F_co]):
    """A projection that counts per venue and month, rolled up the tree."""

    name: ClassVar[str]

    def get_venue_figures(self, conn: Connection, selection: VenueSelection) -> F_co:
        """The figures of the entries ``selection`` picks."""
        ...

    def explain_venue_figures(
        self,
        conn: Connection,
        selection: VenueSelection,
        *,
        after: int = 0,
        events: int | None = None,
    ) -> ExplainedPage:
        """The entries behind them, ``events`` events after ``after``."""
        ...


@dataclass(frozen=True)
class VenueScope:
    """What a venue read stands on: the live version it reads and the
    ledger state it cites, the entries it sums, and the state of the venue
    tree it rolled up (its version and settled position)."""

    live: LiveState
    cited: Cited
    selection: VenueSelection
    tree: tuple[int, int]


def settled(last_change: int | None, position: int) -> int:
    """The earliest position whose figures equal those at ``position``: the
    last change at or before it, or ``position`` itself when the last change
    known came later (a read of the past) or is not known (not noted)."""
    if last_change is None or last_change > position:
        return position
    return last_change


class LedgerReads:
    """Projection reads, each as of a position, each citing the chain."""

    def __init__(
        self, database: Database, vault: PersonalDataVault | None = None
    ) -> None:
        self.database = database
        # Opens the personal data that raw payloads carry (ledger.reads.personal).
        self.vault = vault
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
        self, conn: Connection, name: str, as_of: AsOf
    ) -> tuple[LiveState, Cited]:
        """The live version of ``name`` and what a read of it reflects."""
        live = self._built(self.engine.live_states(conn, (name,)), name)
        return live, self._cited(conn, as_of, live, live)

    def _cite_rolled_up(
        self, conn: Connection, name: str, as_of: AsOf
    ) -> tuple[LiveState, Cited, LiveState]:
        """As ``_cite``, for a read rolled up the venue tree: it stands where
        both projections have reached, so its figures and its tree are of
        the same position; the tree's live state comes with it (one query)."""
        states = self.engine.live_states(conn, (name, VENUE_TREE.name))
        live = self._built(states, name)
        tree = self._built(states, VENUE_TREE.name)
        behind = min(live, tree, key=lambda state: state.reached)
        return live, self._cited(conn, as_of, live, behind), tree

    def _cited(
        self, conn: Connection, as_of: AsOf, live: LiveState, behind: LiveState
    ) -> Cited:
        """What a read of ``live`` reflects, standing no further than
        ``behind`` has reached (itself, or the venue tree when behind it): a
        read of the present cites the chain hash its live state brought."""
        if as_of is None:
            position, chain = behind.reached, behind.reached_hash
        else:
            requested = self.requested_position(conn, as_of, live.head)
            position = min(requested, behind.position, live.position)
            chain = chain_hash_at(conn, position)
        return Cited(position, chain, live.dead_letters)

    @staticmethod
    def _built(states: dict[str, LiveState], name: str) -> LiveState:
        """``name``'s live state among ``states``; not found until built."""
        if name not in states:
            raise NotFoundError(
                Message(
                    "projection '{name}' has not been built: run `ledger project`",
                    name=name,
                )
            )
        return states[name]

    def _tree(
        self,
        conn: Connection,
        position: int | None = None,
        live: LiveState | None = None,
    ) -> tuple[VenueTree, tuple[int, int]]:
        """The venue tree as of ``position`` (default: as far as it is
        projected), and what identifies that state; ``live`` is the tree's
        live state when the read has it already."""
        live = live or self.engine.live_state(conn, VENUE_TREE.name)
        if live is None:
            return VenueTree([]), (0, 0)
        at = live.position if position is None else min(position, live.position)
        state = (live.version, settled(live.last_change, at))
        tree = self._figures.get_or_compute(
            ("tree", *state), lambda: VENUE_TREE.get_tree(conn, live.version, at)
        )
        return tree, state

    # --- reads -----------------------------------------------------------

    def volunteer_hours(
        self, volunteer_id: str, as_of: AsOf = None, through: date | None = None
    ) -> VolunteerHours:
        """The volunteer's approved hours as the ledger knew them ``as_of``;
        only service dated up to ``through`` (CST) when it is given."""
        with self.database.reading() as conn:
            live, cited = self._cite(conn, VOLUNTEER_HOURS.name, as_of)
            version = live.version
            last = VOLUNTEER_HOURS.last_entry(
                conn, version, volunteer_id, cited.position
            )
            if last is None:
                self._ensure_volunteer(conn, volunteer_id, cited.position)
            figures = self._figures.get_or_compute(
                ("hours", volunteer_id, version, last or 0, through),
                lambda: VOLUNTEER_HOURS.get_hours(
                    conn, version, volunteer_id, cited.position, through
                ),
            )
        return VolunteerHours(
            volunteer_id=volunteer_id, **vars(figures), **cited.fields()
        )

    def hours_leaderboard(
        self, limit: int = 10, as_of: AsOf = None
    ) -> HoursLeaderboard:
        """The volunteers with the most approved minutes, and how many
        volunteers stand at each star level."""
        with self.database.reading() as conn:
            live, cited = self._cite(conn, VOLUNTEER_HOURS.name, as_of)
            key = (
                "leaderboard",
                limit,
                live.version,
                settled(live.last_change, cited.position),
            )
            board = self._figures.get_or_compute(
                key, lambda: _leaderboard(conn, live, cited.position, limit)
            )
        return HoursLeaderboard(**vars(board), **cited.fields())

    def venue_subtree(self, venue_id: str) -> frozenset[str]:
        """The venue and its descendants, as registered now (empty if unknown)."""
        with self.database.reading() as conn:
            tree, _ = self._tree(conn)
        return frozenset(tree.subtree(venue_id)) if venue_id in tree else frozenset()

    def venue_children(self, venue_id: str | None, as_of: AsOf = None) -> VenueChildren:
        """The venues directly under ``venue_id`` (None: the centres)."""
        with self.database.reading() as conn:
            _, cited = self._cite(conn, VENUE_TREE.name, as_of)
            tree, _ = self._tree(conn, cited.position)
        if venue_id is not None and venue_id not in tree:
            raise NotFoundError(_unregistered("venue", venue_id))
        children = (tree.venues[child] for child in tree.children.get(venue_id, ()))
        return VenueChildren(
            venue_id=venue_id,
            children=[
                VenueSummary(venue_id=v.venue_id, name=v.name, level=v.level)
                for v in sorted(children, key=lambda venue: venue.venue_id)
            ],
            position=cited.position,
            chain_hash=cited.chain_hash,
        )

    def explain_volunteer_hours(
        self, volunteer_id: str, as_of: AsOf = None
    ) -> HoursExplanation:
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
        return HoursExplanation(
            volunteer_id=volunteer_id,
            figures=hours.totals(),
            contributions=[HoursContribution(**c) for c in contributions],
            **cited.fields(),
        )

    def venue_activity(self, query: VenueQuery) -> VenueActivity:
        """Activities, sessions, distinct volunteers and minutes at a venue,
        in total, by month and by category."""
        scope, figures = self._venue_read(VENUE_ACTIVITY, _without_kind(query))
        return VenueActivity(
            **_asked(query),
            venues=len(scope.selection.venue_ids),
            **vars(figures.total),
            by_month=figures.by_month,
            by_category=figures.by_category,
            **scope.cited.fields(),
        )

    def venue_fulfilment(self, query: VenueQuery) -> VenueFulfilment:
        """The orders posted at a venue, in total and by month of posting."""
        scope, figures = self._venue_read(ORDER_FULFILMENT, query)
        return VenueFulfilment(
            **_asked(query),
            kind=query.kind,
            venues=len(scope.selection.venue_ids),
            **vars(figures.total),
            by_month=figures.by_month,
            **scope.cited.fields(),
        )

    def explain_venue_activity(
        self, query: VenueQuery, *, after: int = 0, limit: int = EXPLAINED_EVENTS
    ) -> ActivityExplanation:
        """The events behind a venue's activity figures, ``limit`` events
        after position ``after`` at a time (the next pages read ``as_of`` the
        first one's position). ``activities``, ``sessions`` and the minutes
        are the sums of all pages' contributions; ``volunteers`` counts the
        volunteers whose sessions in some month, category and kind sum above
        zero."""
        scope, figures, page = self._venue_explanation(
            VENUE_ACTIVITY, _without_kind(query), after, limit
        )
        return ActivityExplanation(
            **_asked(query),
            figures=figures.total,
            contributions=[ActivityContribution(**c) for c in page.entries],
            next_after=page.next_after,
            **scope.cited.fields(),
        )

    def explain_venue_fulfilment(
        self, query: VenueQuery, *, after: int = 0, limit: int = EXPLAINED_EVENTS
    ) -> FulfilmentExplanation:
        """The events behind a venue's order figures, ``limit`` events after
        position ``after`` at a time (the next pages read ``as_of`` the first
        one's position). The counts are the sums of all pages'
        contributions; ``rate``, ``open``, ``mean_stars`` and
        ``satisfaction`` follow from those sums, and the median from each
        fulfilled order's summed ``fulfil_minutes``."""
        scope, figures, page = self._venue_explanation(
            ORDER_FULFILMENT, query, after, limit
        )
        return FulfilmentExplanation(
            **_asked(query),
            kind=query.kind,
            figures=figures.total,
            contributions=[FulfilmentContribution(**c) for c in page.entries],
            next_after=page.next_after,
            **scope.cited.fields(),
        )

    def activity_calendar(
        self, month: str, venue_id: str | None = None, as_of: AsOf = None
    ) -> ActivityCalendar:
        """The month's published activities of every venue under
        ``venue_id`` (None: the whole city), by venue and date, with the
        places each has left (每月活动汇总)."""
        # Here, not at the top: its platform names come with the aggregates.
        from ledger.reads.calendar import build_calendar, venues_in_order

        if not MONTH.match(month):
            raise InvalidReadError(
                "{name} must be a month YYYY-MM, not '{text}'", name="month", text=month
            )
        with self.database.reading() as conn:
            live, cited, tree_live = self._cite_rolled_up(
                conn, ACTIVITY_CALENDAR.name, as_of
            )
            tree, _ = self._tree(conn, cited.position, tree_live)
            if venue_id is not None and venue_id not in tree:
                raise NotFoundError(_unregistered("venue", venue_id))
            ordered = venues_in_order(tree, venue_id)
            entries = ACTIVITY_CALENDAR.list_activities(
                conn, live.version, cited.position, month, ordered
            )
        return build_calendar(month, venue_id, tree, ordered, entries, **cited.fields())

    # --- the venue read, whatever it counts ------------------------------

    def _venue_read(
        self, projection: VenueFiguresProjection[F], query: VenueQuery
    ) -> tuple[VenueScope, F]:
        with self.database.reading() as conn:
            scope = self._venue_scope(conn, projection.name, query)
            return scope, self._venue_figures(conn, projection, scope)

    def _venue_explanation(
        self,
        projection: VenueFiguresProjection[F],
        query: VenueQuery,
        after: int,
        limit: int,
    ) -> tuple[VenueScope, F, ExplainedPage]:
        """The scope, the figures, and a page of the entries behind them,
        each with its event."""
        check_page(after, limit)
        with self.database.reading() as conn:
            scope = self._venue_scope(conn, projection.name, query)
            page = projection.explain_venue_figures(
                conn, scope.selection, after=after, events=limit
            )
            figures = self._venue_figures(conn, projection, scope)
            entries = _with_events(conn, page.entries)
        return scope, figures, ExplainedPage(entries, page.next_after)

    def _venue_scope(
        self, conn: Connection, name: str, query: VenueQuery
    ) -> VenueScope:
        """Where the read stands (where both its projection and the venue
        tree have reached) and the entries it sums there."""
        live, cited, tree_live = self._cite_rolled_up(conn, name, query.as_of)
        tree, tree_state = self._tree(conn, cited.position, tree_live)
        if query.venue_id not in tree:
            raise NotFoundError(_unregistered("venue", query.venue_id))
        venues = tree.subtree(query.venue_id) if query.subtree else [query.venue_id]
        whole = query.subtree or not tree.children.get(query.venue_id)
        selection = VenueSelection(
            live.version,
            tuple(venues),
            *query.months,
            cited.position,
            query.kind,
            query.venue_id if whole else None,
        )
        return VenueScope(live, cited, selection, tree_state)

    def _venue_figures(
        self,
        conn: Connection,
        projection: VenueFiguresProjection[F],
        scope: VenueScope,
    ) -> F:
        """The selection's figures, from memory when its venues have not
        changed since they were computed: they are those of the same
        selection as of the venues' last change."""
        selection = scope.selection
        changed = selection.position
        if scope.live.changes_noted:
            venues_changed = last_change(
                conn, projection.name, selection.version, selection.venue_ids
            )
            changed = settled(venues_changed, selection.position)
        key = (projection.name, scope.tree, replace(selection, position=changed))
        return self._figures.get_or_compute(
            key, lambda: projection.get_venue_figures(conn, selection)
        )

    def _ensure_volunteer(
        self, conn: Connection, volunteer_id: str, position: int
    ) -> None:
        t = events_table.c
        known = conn.execute(
            sa.select(t.position).where(
                t.stream_id == str(volunteer_stream_id(volunteer_id)),
                t.stream_version == 1,
                t.position <= position,
            )
        ).first()
        if known is None:
            raise NotFoundError(_unregistered("volunteer", volunteer_id))


def _leaderboard(
    conn: Connection, live: LiveState, position: int, limit: int
) -> Leaderboard:
    """The leaderboard as of ``position``: kept where nothing changed since
    (a read at the head), else summed from every volunteer's entries."""
    kept = None
    if position == live.position or (
        live.changes_noted and (live.last_change or 0) <= position
    ):
        kept = kept_leaderboard(conn, live.version, limit)
    if kept is None:
        totals = VOLUNTEER_HOURS.get_totals(conn, live.version, position)
        leaders = totals[:limit]
        stars: Mapping[int, int] = Counter(
            stars_for_minutes(v + m) for _, v, m, _ in totals
        )
    else:
        leaders, stars = kept
    return Leaderboard(
        leaders=[
            Leader(
                volunteer_id=volunteer_id,
                verified_minutes=verified,
                makeup_minutes=makeup,
                total_minutes=verified + makeup,
                sessions=sessions,
                stars=stars_for_minutes(verified + makeup),
            )
            for volunteer_id, verified, makeup, sessions in leaders
        ],
        volunteers_with_service=sum(stars.values()),
        volunteers_by_stars={str(level): stars.get(level, 0) for level in range(6)},
    )


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
