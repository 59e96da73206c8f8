"""``ledger honours``: the honours run — every volunteer's stars, benefits
and points under a rule set as of a day, the new awards recorded as events,
and (``--roster``) the 表彰名单 of those newly reaching a level."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.audit import command_line_reader
from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.output import ChineseOption, fail, in_existing_folder, say
from ledger.domain.messages import Message, translate

app = typer.Typer()


@app.command()
def honours(
    ctx: typer.Context,
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of",
            help="Business date YYYY-MM-DD: count service dated up to this day (CST).",
        ),
    ],
    rules: Annotated[
        str,
        typer.Option(help="Rule set NAME[@VERSION]: national, kunshan, zhangjiagang."),
    ],
    position: Annotated[
        int | None,
        typer.Option(
            help="Ledger position: read the ledger as it was there (default: latest)."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide, but record nothing.")
    ] = False,
    roster: Annotated[
        Path | None,
        typer.Option(
            help="Write the volunteers newly reaching each level (表彰名单) to "
            "a .xlsx, .csv or .jsonl file.",
            callback=in_existing_folder,
        ),
    ] = None,
    reveal_personal_data: Annotated[
        bool,
        typer.Option(
            help="Show ID and phone numbers unmasked in the roster (for an "
            "admin: whoever runs this holds the database; recorded as a read of "
            "their personal data: ledger audit personal-data-reads)."
        ),
    ] = False,
    chinese_headers: ChineseOption = False,
) -> None:
    """Compute every volunteer's honours and record the new awards as events."""
    from ledger.api.cli.exporting import export_rows
    from ledger.projections.honours_awards import IncompleteAwardsError
    from ledger.projections.registry import VOLUNTEER_HOURS
    from ledger.reads.queries import parse_business_day
    from ledger.services.disclosures import recorded_as_shown, volunteers_in_rows
    from ledger.services.exports import check_export_path
    from ledger.services.honours import (
        UnknownRuleSetError,
        load_rule_set,
        plan_honours,
        record_honours,
    )
    from ledger.services.roster import (
        ROSTER_COLUMNS,
        ROSTER_SHEET,
        roster_rows,
        roster_source,
    )

    try:
        day = parse_business_day(as_of, "--as-of")
        rule_set = load_rule_set(rules, day)
        if roster is not None:
            check_export_path(roster)
    except (ValueError, UnknownRuleSetError) as error:  # InvalidReadError too
        fail(error, 2)
    components = components_of(ctx)
    ledger, engine = ledger_of(ctx), components.projection_engine
    engine.catch_up()
    with ledger.database.reading() as conn:
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        read_at = live.position if position is None else position
        if read_at > live.position:
            fail("the ledger has no position {position} yet", 2, position=read_at)
        try:
            run = plan_honours(conn, live.version, rule_set, day, read_at)
        except IncompleteAwardsError as error:
            fail(error, 3)
        if roster is not None:
            rows = roster_rows(
                conn, run, components.vault, reveal_personal_data=reveal_personal_data
            )
            if reveal_personal_data:
                rows = recorded_as_shown(
                    ledger,
                    command_line_reader(),
                    rows,
                    "honours roster",
                    volunteers_in_rows,
                )
            export_rows(
                roster,
                rows,
                ROSTER_COLUMNS,
                roster_source(conn, run, reveal_personal_data=reveal_personal_data),
                sheet=ROSTER_SHEET,
                chinese_headers=chinese_headers,
                what=Message("volunteers newly reaching a level"),
            )
    say(
        "honours under {rules} as of {day} at position {position}: "
        "{volunteers} volunteers with counted service",
        rules=run.rules,
        day=day.isoformat(),
        position=read_at,
        volunteers=run.volunteers,
    )
    if run.since is not None:
        say(
            "  building on the completed run that read position {position}: "
            "only volunteers with service recorded or dated since, or whose "
            "fraud bar may have changed, decided again",
            position=run.since,
        )
    standings = ", ".join(
        f"{'★' * level or translate('no star')}: {count}"
        for level, count in sorted(run.standings_by_stars.items())
    )
    say("  standings: {standings}", standings=standings or translate("none"))
    say("  {count} volunteers with awards not yet recorded", count=len(run.changes))
    for level in sorted(run.new_stars):
        say(
            "  {stars} newly reached by {count}",
            stars="★" * level,
            count=run.new_stars[level],
        )
    say(
        "  benefits to grant: {benefits}; points to credit: {points}",
        benefits=run.new_benefits,
        points=run.points_credited,
    )
    recorded = 0 if dry_run else record_honours(ledger, run)
    typer.echo(f"recorded={recorded}")
