"""``ledger audit``: queries over the ledger itself — events by subject,
actor, type and period, and a session's correction history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import typer

from ledger.api.cli.context import components_of
from ledger.api.cli.output import (
    ChineseOption,
    ExportOption,
    fail,
    print_json,
    print_or_export,
)
from ledger.reads.audit import (
    AuditQuery,
    InvalidAuditQueryError,
    find_events,
    parse_subject,
    session_story,
)
from ledger.reads.queries import LAST_POSITION, InvalidReadError, parse_as_of
from ledger.services.exports import AUDIT_EVENT_COLUMNS, audit_event_rows

PositionOption = Annotated[
    int | None, typer.Option("--as-of", min=0, max=LAST_POSITION)
]

app = typer.Typer(help="Audit queries over the ledger itself.", no_args_is_help=True)


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    as_of = parse_as_of(text)
    if not isinstance(as_of, datetime):
        raise InvalidReadError(f"'{text}' is not a time with a UTC offset")
    return as_of


@app.command("events")
def audit_events(
    ctx: typer.Context,
    subject: Annotated[
        str | None, typer.Option(help="KIND:ID, e.g. volunteer:V001 or session:S1.")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="Actor id.")] = None,
    event_type: Annotated[
        list[str] | None, typer.Option("--type", help="Event type, repeatable.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Business time from.")] = None,
    until: Annotated[str | None, typer.Option(help="Business time before.")] = None,
    recorded_since: Annotated[str | None, typer.Option()] = None,
    recorded_until: Annotated[str | None, typer.Option()] = None,
    after: Annotated[
        int,
        typer.Option(min=0, max=LAST_POSITION, help="Page on after this position."),
    ] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_of: PositionOption = None,
    reveal_personal_data: Annotated[
        bool, typer.Option(help="Show ID and phone numbers unmasked.")
    ] = False,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
) -> None:
    """Events by subject, actor, type and period, in ledger order, paged."""
    try:
        query = AuditQuery(
            subject=parse_subject(subject) if subject else None,
            actor_id=actor,
            types=tuple(event_type or ()),
            occurred_since=_moment(since),
            occurred_until=_moment(until),
            recorded_since=_moment(recorded_since),
            recorded_until=_moment(recorded_until),
            after_position=after,
            limit=limit,
            as_of=as_of,
        )
    except (InvalidAuditQueryError, InvalidReadError) as error:
        fail(error, 2)
    page = find_events(
        components_of(ctx).database, query, reveal_personal_data=reveal_personal_data
    )
    print_or_export(
        page,
        audit_event_rows(page) if export else [],
        AUDIT_EVENT_COLUMNS,
        export,
        chinese_headers,
        "events",
    )


@app.command("session")
def audit_session(
    ctx: typer.Context,
    session_id: str,
    as_of: PositionOption = None,
) -> None:
    """A session's correction history as a story: original, adjustments, who, why."""
    database = components_of(ctx).database
    try:
        print_json(session_story(database, session_id, as_of=as_of))
    except LookupError as error:
        fail(error, 4)
