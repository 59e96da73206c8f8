"""``ledger audit``: queries over the ledger itself — events by subject,
actor, type and period, and a session's correction history."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from itertools import chain, islice
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.output import ChineseOption, ExportOption, fail, print_json, say
from ledger.domain.messages import Message
from ledger.reads.bounds import LAST_POSITION, MAX_PAGE

PositionOption = Annotated[
    int | None,
    typer.Option(
        "--as-of",
        min=0,
        max=LAST_POSITION,
        help="Ledger position: read the ledger as it was there (default: now).",
    ),
]
PageAfterOption = Annotated[
    int,
    typer.Option(
        min=0, max=LAST_POSITION, help="Ledger position: page on after this one."
    ),
]

if TYPE_CHECKING:
    from ledger.reads.answers import AuditEvent
    from ledger.services.disclosures import Reader

app = typer.Typer(help="Audit queries over the ledger itself.", no_args_is_help=True)

DEFAULT_PAGE = 100
# What a read of personal data through ``ledger audit events`` is recorded as.
READ = "audit events"


def command_line_reader() -> Reader:
    """Who runs the command line, as a read of personal data records them:
    the operating-system user, an admin (they hold the database)."""
    import getpass

    from ledger.services.disclosures import Reader

    return Reader(getpass.getuser(), "admin", source="cli", caller="cli")


def _moment(text: str | None, option: str) -> datetime | None:
    """The time ``option`` gave, if it gave one."""
    from ledger.reads.queries import parse_read_time

    return None if text is None else parse_read_time(text, option)


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
    since: Annotated[
        str | None,
        typer.Option(
            help="Business time (when it happened), ISO 8601 with offset: from "
            "this time on."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Business time, ISO 8601 with offset: before this time."),
    ] = None,
    recorded_since: Annotated[
        str | None,
        typer.Option(
            help="Recording time (when the ledger wrote it), ISO 8601 with "
            "offset: from this time on."
        ),
    ] = None,
    recorded_until: Annotated[
        str | None,
        typer.Option(help="Recording time, ISO 8601 with offset: before this time."),
    ] = None,
    after: PageAfterOption = 0,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_PAGE,
            help=f"Events per JSON page (default {DEFAULT_PAGE}); with --export, "
            "at most this many (default: every matching event).",
        ),
    ] = None,
    as_of: PositionOption = None,
    reveal_personal_data: Annotated[
        bool,
        typer.Option(
            help="Show ID and phone numbers unmasked (recorded as a read of "
            "their personal data: ledger audit personal-data-reads)."
        ),
    ] = False,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
) -> None:
    """Events by subject, actor, type and period, in ledger order, paged; or
    every one of them exported."""
    from ledger.api.cli.exporting import export_rows
    from ledger.reads.audit import (
        AuditQuery,
        InvalidAuditQueryError,
        count_events,
        event_pages,
        find_events,
        parse_subject,
        subject_names,
    )
    from ledger.reads.queries import InvalidReadError
    from ledger.services.exports import (
        AUDIT_EVENT_COLUMNS,
        AUDIT_EVENTS,
        ExportSource,
        audit_event_rows,
        check_export_path,
    )

    try:
        query = AuditQuery(
            subject=parse_subject(subject) if subject else None,
            actor_id=actor,
            types=tuple(event_type or ()),
            occurred_since=_moment(since, "--since"),
            occurred_until=_moment(until, "--until"),
            recorded_since=_moment(recorded_since, "--recorded-since"),
            recorded_until=_moment(recorded_until, "--recorded-until"),
            after_position=after,
            limit=limit or DEFAULT_PAGE,
            as_of=as_of,
        )
        if export is not None:
            check_export_path(export)
    except (InvalidAuditQueryError, InvalidReadError, ValueError) as error:
        fail(error, 2)
    from ledger.services.disclosures import (
        record_disclosure,
        recorded_as_shown,
        volunteers_shown,
    )

    components = components_of(ctx)
    database, vault = components.database, components.vault
    if export is None:
        page = find_events(
            database, query, reveal_personal_data=reveal_personal_data, vault=vault
        )
        if reveal_personal_data:
            record_disclosure(
                ledger_of(ctx),
                command_line_reader(),
                volunteers_shown(page.events),
                READ,
            )
        print_json(page)
        return
    pages = event_pages(
        database, query, reveal_personal_data=reveal_personal_data, vault=vault
    )
    first = next(pages)
    # Counted at the position the pages are read at, so the count is theirs.
    matching = count_events(database, replace(query, as_of=first.position))
    wanted = matching if limit is None else min(limit, matching)
    events: Iterable[AuditEvent] = islice(
        chain.from_iterable(page.events for page in chain([first], pages)), wanted
    )
    if reveal_personal_data:
        events = recorded_as_shown(
            ledger_of(ctx), command_line_reader(), events, READ, volunteers_shown
        )
    asked = {
        "subject": subject,
        "actor": actor,
        "type": ", ".join(event_type or ()) or None,
        "since": since,
        "until": until,
        "recorded since": recorded_since,
        "recorded until": recorded_until,
        "after": str(after) if after else None,
        "as of": None if as_of is None else str(as_of),
        "limit": None if limit is None else str(limit),
    }
    source = ExportSource(
        [
            *((label, value) for label, value in asked.items() if value is not None),
            ("personal data", "revealed" if reveal_personal_data else "masked"),
        ],
        first.position,
        first.chain_hash,
    )
    export_rows(
        export,
        audit_event_rows(events, subject_names(database, first.position)),
        AUDIT_EVENT_COLUMNS,
        source,
        sheet=AUDIT_EVENTS,
        chinese_headers=chinese_headers,
        what=Message("events"),
        total=wanted,
    )
    if wanted < matching:
        say(
            "  {wanted} of {matching} matching events, as --limit asked",
            wanted=f"{wanted:,}",
            matching=f"{matching:,}",
        )


@app.command("session")
def audit_session(
    ctx: typer.Context,
    session_id: Annotated[str, typer.Argument(help="The session's id.")],
    as_of: PositionOption = None,
) -> None:
    """A session's correction history as a story: original, adjustments, who, why."""
    from ledger.reads.audit import session_story

    database = components_of(ctx).database
    try:
        print_json(session_story(database, session_id, as_of=as_of))
    except LookupError as error:
        fail(error, 4)


@app.command("personal-data-reads")
def audit_personal_data_reads(
    ctx: typer.Context,
    volunteer: Annotated[
        str | None, typer.Option(help="Only reads of this volunteer's data.")
    ] = None,
    reader: Annotated[
        str | None, typer.Option(help="Only reads by this actor.")
    ] = None,
    after: PageAfterOption = 0,
    limit: Annotated[
        int, typer.Option(min=1, max=MAX_PAGE, help="Reads per page.")
    ] = DEFAULT_PAGE,
    as_of: PositionOption = None,
) -> None:
    """Who was shown whose full ID and phone numbers, and when, paged."""
    from ledger.reads.audit import find_personal_data_reads

    print_json(
        find_personal_data_reads(
            components_of(ctx).database,
            volunteer_id=volunteer,
            reader_id=reader,
            after_position=after,
            limit=limit,
            as_of=as_of,
        )
    )
