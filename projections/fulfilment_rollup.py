"""The kept roll-up of ``order_fulfilment``: each venue's subtree's order
counts and waits for each calendar year and month, per order kind and for
both, kept as the entries are written, so that a venue's year — the city's
included — is read from a few hundred rows however many orders it holds.

Per projection version, *node* (a venue, standing for its subtree), *period*
(``YYYY`` or ``YYYY-MM``, of the orders' posting) and *kind* (``wish``,
``service`` or ``*`` for both), it keeps:

- ``totals``: the running counts, and the position of the last entry that
  changed them;
- ``waits``: how many fulfilled orders waited each whole number of minutes
  from posting to fulfilment, and ``wait_hours`` the same per hour, so that
  the median is found by walking the hours to the middle order(s) and then
  reading only the minutes of the hour(s) it falls in.

The roll-up is kept as it stands at the version's position, not as of every
past position: it answers a read when no entry it sums came after the
position read (a dashboard at the head, or where nothing changed since);
a read of the past sums the entries, as before. A venue's nodes are itself
and its ancestors (``venue_nodes``). Versions projected before the roll-up
existed are listed as unkept (``ledger.projections.kept``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine import Entry
from ledger.projections.kept import is_unkept, unkept_versions_table, venue_nodes
from ledger.store.event_store import add_to_rows, metadata, placeholder, select_rows

BOTH_KINDS = "*"
COUNTS = (
    "posted",
    "dispatched",
    "accepted",
    "fulfilled",
    "withdrawn",
    "rejected",
    "expired",
    "ratings",
    "stars",
    "satisfied",
)
# The entries' measures: the counts, then the fulfilled order's wait.
WAIT_MEASURE = "fulfil_minutes"
FULFILLED = COUNTS.index("fulfilled")
MINUTES_PER_HOUR = 60
KEYS = ("version", "node_id", "period", "kind")


def _key_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("node_id", sa.String(64), nullable=False),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
    ]


totals_table = sa.Table(
    "proj_order_fulfilment_totals",
    metadata,
    *_key_columns(),
    sa.Column("position", sa.BigInteger, nullable=False),
    *(sa.Column(name, sa.BigInteger, nullable=False) for name in COUNTS),
    sa.Index("proj_order_fulfilment_totals_key", *KEYS, unique=True),
)


def _waits_table(name: str, unit: str) -> sa.Table:
    """How many fulfilled orders waited each whole ``unit`` (minutes, hour)."""
    return sa.Table(
        name,
        metadata,
        *_key_columns(),
        sa.Column(unit, sa.BigInteger, nullable=False),
        sa.Column("orders", sa.BigInteger, nullable=False),
        sa.Index(f"{name}_key", *KEYS, unit, unique=True),
    )


waits_table = _waits_table("proj_order_fulfilment_waits", "minutes")
wait_hours_table = _waits_table("proj_order_fulfilment_wait_hours", "hour")
unkept_table = unkept_versions_table("order_fulfilment")
FULFILMENT_ROLLUP_TABLES = (totals_table, waits_table, wait_hours_table, unkept_table)


def _rollup_keys(node: str, month: str, kind: str) -> Iterable[tuple[str, str, str]]:
    """The kept figures one entry at ``node`` changes."""
    for period in (month, month[:4]):
        yield node, period, kind
        yield node, period, BOTH_KINDS


def keep_fulfilment_rollup(
    conn: Connection, version: int, entries: Sequence[Entry]
) -> None:
    """Fold a page's ``order_fulfilment`` entries (in ledger order) into the
    version's kept roll-up."""
    if not entries or is_unkept(conn, unkept_table, version):
        return
    # First by venue, month and kind: far fewer groups than entries.
    groups: dict[tuple[str, str, str], list[int]] = {}
    waits: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for position, key, measures in entries:
        venue_id, month, kind, _category, _order = key
        group = groups.setdefault((venue_id, month, kind), [0] * (len(COUNTS) + 1))
        for index, value in enumerate(measures[: len(COUNTS)]):
            group[index] += value
        group[-1] = max(group[-1], position)
        fulfilled = measures[FULFILLED]
        if fulfilled:
            waits[(venue_id, month, kind, measures[len(COUNTS)])] += fulfilled
    nodes = venue_nodes(conn, {venue_id for venue_id, _, _ in groups})
    totals: dict[tuple[str, str, str], list[int]] = {}
    for (venue_id, month, kind), group in groups.items():
        for node in nodes[venue_id]:
            for rollup in _rollup_keys(node, month, kind):
                sums = totals.setdefault(rollup, [0] * (len(COUNTS) + 1))
                for index in range(len(COUNTS)):
                    sums[index] += group[index]
                sums[-1] = max(sums[-1], group[-1])
    by_minute: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for (venue_id, month, kind, minutes), orders in waits.items():
        for node in nodes[venue_id]:
            for rollup in _rollup_keys(node, month, kind):
                by_minute[(*rollup, minutes)] += orders
    by_hour: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for (node, period, kind, minutes), orders in by_minute.items():
        by_hour[(node, period, kind, minutes // MINUTES_PER_HOUR)] += orders
    add_to_rows(
        conn,
        totals_table,
        [(version, *key, sums[-1], *sums[:-1]) for key, sums in totals.items()],
        keys=KEYS,
        highest=("position",),
        added=COUNTS,
    )
    for table, column, counted in (
        (waits_table, "minutes", by_minute),
        (wait_hours_table, "hour", by_hour),
    ):
        add_to_rows(
            conn,
            table,
            [(version, *key, orders) for key, orders in counted.items()],
            keys=(*KEYS, column),
            added=("orders",),
        )


@dataclass(frozen=True)
class KeptPeriod:
    """One period's kept counts (by name) and the median wait of its
    fulfilled orders (None when none is)."""

    counts: dict[str, int]
    median_minutes: int | float | None


def kept_year(
    conn: Connection,
    version: int,
    node: str,
    year: str,
    kind: str | None,
    position: int,
) -> dict[str, KeptPeriod] | None:
    """The kept figures of ``node``'s subtree in ``year`` as of
    ``position``, orders of ``kind`` (None: both), by period — the year
    and each month with orders; None when they are not kept exactly there
    (the version is unkept, or an entry they sum came after ``position``):
    sum the entries instead."""
    if is_unkept(conn, unkept_table, version):
        return None
    kind = kind or BOTH_KINDS
    periods = [year, *(f"{year}-{month:02}" for month in range(1, 13))]
    t = totals_table.c
    query = sa.select(t.period, t.position, *(t[name] for name in COUNTS)).where(
        t.version == version, t.node_id == node, t.kind == kind, t.period.in_(periods)
    )
    counts: dict[str, dict[str, int]] = {}
    for period, last, *values in select_rows(conn, query):
        if int(last) > position:
            return None
        counts[period] = dict(zip(COUNTS, map(int, values), strict=True))
    fulfilled = {p: found["fulfilled"] for p, found in counts.items()}
    medians = _median_waits(conn, (version, node, kind), fulfilled)
    return {
        period: KeptPeriod(found, medians.get(period))
        for period, found in counts.items()
    }


def _median_waits(
    conn: Connection, scope: tuple[int, str, str], fulfilled: dict[str, int]
) -> dict[str, int | float]:
    """Each period's median wait among its fulfilled orders: the database
    walks the hourly counts and returns only the hour(s) holding the middle
    order(s); then the minutes of those hours alone are read."""
    wanted = sorted(period for period, orders in fulfilled.items() if orders)
    if not wanted:
        return {}
    mark = placeholder(conn)
    # The 0-based ranks of the middle orders of n are (n - 1) / 2 and n / 2:
    # an hour holds one when its orders start at or before the higher and
    # end after the lower.
    middle_hours = conn.exec_driver_sql(
        "SELECT period, hour, reached - orders FROM ("
        "SELECT period, hour, orders, "
        "CAST(SUM(orders) OVER (PARTITION BY period ORDER BY hour) AS BIGINT) "
        "AS reached, "
        "CAST(SUM(orders) OVER (PARTITION BY period) AS BIGINT) AS total "
        f"FROM {wait_hours_table.name} WHERE version = {mark} AND node_id = {mark} "
        f"AND kind = {mark} AND orders > 0 "
        f"AND period IN ({', '.join([mark] * len(wanted))})) AS walked "
        "WHERE reached - orders <= total / 2 AND reached > (total - 1) / 2 "
        "ORDER BY period, hour",
        (*scope, *wanted),
    ).all()
    waits_in_hour = (
        f"SELECT minutes, orders FROM {waits_table.name} WHERE version = {mark} "
        f"AND node_id = {mark} AND kind = {mark} AND period = {mark} "
        f"AND minutes >= {mark} AND minutes < {mark} AND orders > 0 ORDER BY minutes"
    )
    values: dict[str, list[int]] = defaultdict(list)
    for period, hour, before in middle_hours:
        start = int(hour) * MINUTES_PER_HOUR
        waits = conn.exec_driver_sql(
            waits_in_hour, (*scope, period, start, start + MINUTES_PER_HOUR)
        ).all()
        total = fulfilled[period]
        for rank in sorted({(total - 1) // 2, total // 2}):
            if int(before) <= rank < int(before) + sum(int(o) for _, o in waits):
                values[period].append(_nth(waits, rank - int(before)))
    return {
        period: found[0] if len(found) == 1 else sum(found) / 2
        for period, found in values.items()
    }


def _nth(waits: Sequence[Any], rank: int) -> int:
    """The wait of the order at 0-based ``rank`` among ``waits`` (minutes
    with their orders, in order of minutes)."""
    for minutes, orders in waits:
        if rank < orders:
            return int(minutes)
        rank -= int(orders)
    raise LookupError(f"rank {rank} past the waits kept")
