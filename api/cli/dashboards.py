"""Readable dashboards (rich tables) over the projection reads, for
``ledger demo`` and anyone at a terminal."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ledger.domain.activities import CATEGORY_NAMES_ZH
from ledger.projections.order_fulfilment import FulfilmentFigures
from ledger.reads.answers import HoursLeaderboard, VenueActivity, VenueFulfilment
from ledger.reads.queries import LedgerReads, VenueQuery


def _hours(minutes: int) -> str:
    return f"{minutes / 60:,.1f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def show_dashboards(
    console: Console, reads: LedgerReads, centre_id: str, year: int
) -> None:
    """The city at a glance: orders, activity, hours and honours."""
    start, end = f"{year}-01", f"{year}-12"
    city = reads.venue_activity(VenueQuery(centre_id, start, end))
    orders = reads.venue_fulfilment(VenueQuery(centre_id, start, end))
    console.rule(f"[bold]新时代文明实践 · {year} · position {city.position}")
    console.print(
        f"chain hash at that position: [dim]{city.chain_hash}[/dim]\n"
        f"{city.venues} venues · {city.activities:,} activities · "
        f"{city.sessions:,} sessions by {city.volunteers:,} volunteers · "
        f"{_hours(city.volunteer_minutes)} volunteer-hours "
        f"({_hours(city.verified_minutes)} verified, "
        f"{_hours(city.makeup_minutes)} make-up)"
    )
    console.print(_fulfilment_by_institute(reads, centre_id, start, end, orders))
    console.print(_activity_by_category(city))
    console.print(_activity_by_month(city))
    board = reads.hours_leaderboard(limit=10)
    console.print(_leaderboard(board))
    console.print(_stars(board))


def _fulfilment_by_institute(
    reads: LedgerReads, centre_id: str, start: str, end: str, city: VenueFulfilment
) -> Table:
    table = Table(title="五单 orders by town (所), by month posted")
    for heading in ("venue", "posted", "fulfilled", "withdrawn", "open", "实现率 rate",
                    "满意度 satisfaction", "median days"):  # fmt: skip
        table.add_column(heading, justify="left" if heading == "venue" else "right")

    def add(name: str, figures: FulfilmentFigures, style: str = "") -> None:
        median = figures.median_minutes_to_fulfil
        table.add_row(
            name,
            f"{figures.posted:,}",
            f"{figures.fulfilled:,}",
            f"{figures.withdrawn:,}",
            f"{figures.open:,}",
            _share(figures.rate),
            _share(figures.satisfaction),
            "—" if median is None else f"{median / 1440:.1f}",
            style=style,
        )

    for child in reads.venue_children(centre_id).children:
        add(child.name, reads.venue_fulfilment(VenueQuery(child.venue_id, start, end)))
    add("whole city", city, style="bold")
    return table


def _activity_by_category(city: VenueActivity) -> Table:
    table = Table(title="Activity by service platform (5+X)")
    for heading in ("platform", "activities", "sessions", "volunteers", "hours"):
        table.add_column(heading, justify="left" if heading == "platform" else "right")
    for category, figures in city.by_category.items():
        table.add_row(
            f"{CATEGORY_NAMES_ZH.get(category, '')} {category}",
            f"{figures.activities:,}",
            f"{figures.sessions:,}",
            f"{figures.volunteers:,}",
            _hours(figures.volunteer_minutes),
        )
    return table


def _activity_by_month(city: VenueActivity) -> Table:
    table = Table(title="Activity by month (China Standard Time)")
    for heading in ("month", "activities", "sessions", "volunteers", "hours", ""):
        table.add_column(
            heading, justify="left" if heading in ("month", "") else "right"
        )
    busiest = max((f.volunteer_minutes for f in city.by_month.values()), default=1)
    for month, figures in city.by_month.items():
        bar = "█" * round(24 * figures.volunteer_minutes / max(busiest, 1))
        table.add_row(
            month,
            f"{figures.activities:,}",
            f"{figures.sessions:,}",
            f"{figures.volunteers:,}",
            _hours(figures.volunteer_minutes),
            f"[green]{bar}[/green]",
        )
    return table


def _leaderboard(board: HoursLeaderboard) -> Table:
    table = Table(title="Most hours of service (approved, all years)")
    for heading in (
        "volunteer",
        "verified h",
        "make-up h",
        "total h",
        "sessions",
        "stars",
    ):
        table.add_column(heading, justify="left" if heading == "volunteer" else "right")
    for leader in board.leaders:
        table.add_row(
            leader.volunteer_id,
            _hours(leader.verified_minutes),
            _hours(leader.makeup_minutes),
            _hours(leader.total_minutes),
            f"{leader.sessions:,}",
            "★" * leader.stars or "—",
        )
    return table


def _stars(board: HoursLeaderboard) -> Table:
    table = Table(
        title="Volunteers by star level (national rule: 100/300/600/1000/1500 h)"
    )
    table.add_column("stars")
    table.add_column("volunteers", justify="right")
    for level, count in board.volunteers_by_stars.items():
        table.add_row("★" * int(level) or "none yet", f"{count:,}")
    return table
