"""Readable dashboards (rich tables) over the projection reads, for
``ledger demo`` and anyone at a terminal, in the reader's language."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ledger.domain.activities import CATEGORY_NAMES_ZH
from ledger.domain.messages import translate
from ledger.projections.order_fulfilment import FulfilmentFigures
from ledger.reads.answers import HoursLeaderboard, VenueActivity, VenueFulfilment
from ledger.reads.queries import LedgerReads, VenueQuery


def _hours(minutes: int) -> str:
    return f"{minutes / 60:,.1f}"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def _table(title: str, *headings: str) -> Table:
    """A table with its title and headings (in the reader's language): the
    first column, what a row is, to the left, the figures to the right."""
    table = Table(title=title)
    first, *figures = headings
    table.add_column(first)
    for heading in figures:
        table.add_column(heading, justify="right")
    return table


def show_dashboards(
    console: Console, reads: LedgerReads, centre_id: str, year: int
) -> None:
    """The city at a glance: orders, activity, hours and honours."""
    start, end = f"{year}-01", f"{year}-12"
    city = reads.venue_activity(VenueQuery(centre_id, start, end))
    orders = reads.venue_fulfilment(VenueQuery(centre_id, start, end))
    at = translate("position {position}", {"position": city.position})
    console.rule(f"[bold]新时代文明实践 · {year} · {at}")
    chain = translate("chain hash at that position:")
    console.print(f"{chain} [dim]{city.chain_hash}[/dim]")
    summary = {
        "venues": city.venues,
        "activities": f"{city.activities:,}",
        "sessions": f"{city.sessions:,}",
        "volunteers": f"{city.volunteers:,}",
        "hours": _hours(city.volunteer_minutes),
        "verified": _hours(city.verified_minutes),
        "makeup": _hours(city.makeup_minutes),
    }
    told = translate(
        "{venues} venues · {activities} activities · {sessions} sessions by "
        "{volunteers} volunteers · {hours} volunteer-hours ({verified} verified, "
        "{makeup} make-up)",
        summary,
    )
    console.print(escape(told))
    console.print(_fulfilment_by_institute(reads, centre_id, start, end, orders))
    console.print(_activity_by_category(city))
    console.print(_activity_by_month(city))
    board = reads.hours_leaderboard(limit=10)
    console.print(_leaderboard(board))
    console.print(_stars(board))


def _fulfilment_by_institute(
    reads: LedgerReads, centre_id: str, start: str, end: str, city: VenueFulfilment
) -> Table:
    table = _table(
        translate("五单 orders by town (所), by month posted"),
        translate("venue"),
        translate("posted"),
        translate("fulfilled"),
        translate("withdrawn"),
        translate("open"),
        translate("fulfilment rate"),
        translate("satisfaction"),
        translate("median days"),
    )

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
    add(translate("whole city"), city, style="bold")
    return table


def _activity_figures() -> tuple[str, ...]:
    """The headings of an activity table's figures."""
    return (
        translate("activities"),
        translate("sessions"),
        translate("volunteers"),
        translate("hours"),
    )


def _activity_by_category(city: VenueActivity) -> Table:
    table = _table(
        translate("Activity by service platform (5+X)"),
        translate("platform"),
        *_activity_figures(),
    )
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
    table = _table(
        translate("Activity by month (China Standard Time)"),
        translate("month"),
        *_activity_figures(),
    )
    table.add_column("")
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
    table = _table(
        translate("Most hours of service (approved, all years)"),
        translate("volunteer"),
        translate("verified h"),
        translate("make-up h"),
        translate("total h"),
        translate("sessions"),
        translate("stars"),
    )
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
    table = _table(
        translate("Volunteers by star level (national rule: 100/300/600/1000/1500 h)"),
        translate("stars"),
        translate("volunteers"),
    )
    for level, count in board.volunteers_by_stars.items():
        table.add_row("★" * int(level) or translate("none yet"), f"{count:,}")
    return table
