"""``ledger``: the command line that scheduled jobs and people use (CONTRACT §4)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import BaseModel
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn

from ledger.api.cli.dashboards import show_dashboards
from ledger.api.http.access import InvalidKeyRequestError, create_key
from ledger.application.importer import ImportSummary, default_report_path, import_file
from ledger.application.ledger import Ledger
from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.engine.core import (
    REBUILD_WORKERS,
    CatchUpReport,
    ProjectionEngine,
    list_dead_letters,
)
from ledger.projections.honours_awards import IncompleteAwardsError
from ledger.projections.registry import ALL_PROJECTIONS, VOLUNTEER_HOURS
from ledger.reads.answers import CitedAnswer
from ledger.reads.audit import (
    AuditQuery,
    InvalidAuditQueryError,
    find_events,
    parse_subject,
    session_story,
)
from ledger.reads.queries import (
    EXPLAINED_EVENTS,
    InvalidReadError,
    LedgerReads,
    NotFoundError,
    VenueQuery,
    parse_as_of,
)
from ledger.services.certificates import (
    CertificateError,
    Issuer,
    issue_certificate,
    read_certificate,
    verify_certificate,
    write_certificate,
)
from ledger.services.exports import (
    AUDIT_EVENT_COLUMNS,
    MONTHLY_ACTIVITY_COLUMNS,
    MONTHLY_FULFILMENT_COLUMNS,
    Column,
    MonthlyAnswer,
    audit_event_rows,
    monthly_rows,
    write_export,
)
from ledger.services.honours import (
    UnknownRuleSetError,
    load_rule_set,
    plan_honours,
    record_honours,
)
from ledger.services.synthetic_city import DEFAULT_SCALE, write_city
from ledger.settings import get_settings
from ledger.store.event_store import Database
from ledger.store.integrity import (
    Checkpoint,
    export_events,
    load_or_create_signing_key,
    load_public_key,
    own_public_key,
    public_key_pem,
    sign_checkpoint,
    verify_exported_events,
    verify_ledger,
)

app = typer.Typer(
    help="新时代文明实践 ledger: volunteer service recorded as immutable events.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


class CliState:
    database_url: str = ""


state = CliState()


@app.callback()
def main(
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Database URL (default: $LEDGER_DATABASE_URL, else sqlite:///ledger.db).",
        ),
    ] = None,
) -> None:
    state.database_url = db or get_settings().database_url


def open_ledger() -> Ledger:
    database = Database(state.database_url)
    database.create_schema()
    return Ledger(database)


@app.command()
def demo(
    scale: Annotated[
        float,
        typer.Option(min=0.0001, max=1.0, help="1.0 is a full Kunshan city-year."),
    ] = DEFAULT_SCALE,
    seed: Annotated[int, typer.Option(help="Same seed, same city.")] = 2022,
    year: Annotated[int, typer.Option(help="The year of service.")] = 2024,
) -> None:
    """Build a synthetic Kunshan-shaped city, project it, show the dashboards."""
    ledger = open_ledger()
    with tempfile.TemporaryDirectory() as folder:
        city = Path(folder) / f"city-{scale}-{seed}-{year}.jsonl"
        lines = write_city(city, scale=scale, seed=seed, year=year)
        console.print(
            f"generated {lines:,} interchange lines (scale {scale}, seed {seed})"
        )
        summary = _import_with_progress(
            ledger, city, Path(folder) / "rejected.jsonl", 2000
        )
    console.print(summary.summary_line())
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    report = engine.catch_up()
    console.print(
        f"projected up to position {report.position} in {report.seconds:.1f} s"
    )
    reads = LedgerReads(ledger.database)
    for centre in reads.venue_children(None).children:
        show_dashboards(Console(), reads, centre.venue_id, year)


def _import_with_progress(
    ledger: Ledger, file: Path, report_path: Path, batch_size: int
) -> ImportSummary:
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(f"importing {file.name}", total=file.stat().st_size)
        return import_file(
            ledger,
            file,
            report_path=report_path,
            batch_size=batch_size,
            on_progress=lambda size: progress.advance(task, size),
        )


@app.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    report: Annotated[
        Path | None, typer.Option(help="Where to write the rejection report.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Lines per transaction.")
    ] = 2000,
) -> None:
    """Append an interchange file (JSON Lines) to the ledger."""
    ledger = open_ledger()
    report_path = report or default_report_path(file)
    summary = _import_with_progress(ledger, file, report_path, batch_size)
    if summary.rejected:
        console.print(f"rejected lines are listed in {report_path}")
    typer.echo(summary.summary_line())


def open_engine() -> ProjectionEngine:
    ledger = open_ledger()
    return ProjectionEngine(ledger.database, ALL_PROJECTIONS)


def print_json(document: object) -> None:
    if isinstance(document, BaseModel):
        document = document.model_dump()
    typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())


def _print_catch_up(report: CatchUpReport) -> None:
    for name in sorted(report.events):
        parked = report.dead_letters.get(name, 0)
        typer.echo(
            f"{name}: {report.events[name]} events, {report.entries[name]} entries"
            + (f", {parked} dead letters" if parked else "")
        )
    typer.echo(f"position={report.position} seconds={report.seconds:.2f}")


def _exit_on_dead_letters(engine: ProjectionEngine) -> None:
    with engine.database.reading() as conn:
        letters = list_dead_letters(conn)
    if letters:
        console.print(f"[red]{len(letters)} event(s) parked as dead letters:[/red]")
        for letter in letters[:20]:
            console.print(
                f"  {letter['name']} v{letter['version']} at position "
                f"{letter['position']} ({letter['topic']}): {letter['error']}"
            )
        raise typer.Exit(3)


@app.command()
def project(
    follow: Annotated[
        bool, typer.Option("--follow", help="Keep following new events.")
    ] = False,
    poll: Annotated[
        float, typer.Option(help="Seconds between polls when following.")
    ] = 0.2,
) -> None:
    """Bring every projection up to date with the ledger."""
    engine = open_engine()
    if follow:
        try:
            engine.follow(poll_seconds=poll, on_report=_print_catch_up)
        except KeyboardInterrupt:
            return
    _print_catch_up(engine.catch_up())
    _exit_on_dead_letters(engine)


@app.command()
def rebuild(
    name: Annotated[
        str | None, typer.Argument(help="One projection; all if omitted.")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Processes sharing the projections out (default: one more "
            "than the cores, which evens out shares of unequal work).",
        ),
    ] = REBUILD_WORKERS,
) -> None:
    """Rebuild projections from the first event, beside the live ones."""
    engine = open_engine()
    names = [engine.projection(name).name] if name else None
    report = engine.rebuild(names, workers=workers)
    _print_catch_up(report)
    typer.echo(f"processes={report.processes}")


@app.command()
def verify(
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="PEM public key to check checkpoints with "
            "(default: the ledger's own signing key)."
        ),
    ] = None,
) -> None:
    """Check the chain, every checkpoint, and that every projection equals a
    fresh replay; exit non-zero and name the first problem on any mismatch."""
    engine = open_engine()
    audit = verify_ledger(engine.database, _public_key(public_key))
    chain = audit.chain
    if chain.ok:
        typer.echo(f"chain: ok, {chain.checked} events, head {chain.head_hash}")
    else:
        typer.echo(
            f"chain: BROKEN at position {chain.first_bad_position}: {chain.problem}"
        )
    for checked in audit.checkpoints:
        point = checked.checkpoint
        status = "ok" if checked.ok else f"FAILED: {checked.problem}"
        typer.echo(f"checkpoint at position {point.position}: {status}")
    failed = not audit.ok
    for result in engine.verify():
        if not result.has_live_version:
            typer.echo(f"{result.name}: NO LIVE VERSION (run `ledger rebuild`)")
        else:
            status = "ok" if result.ok else "MISMATCH"
            typer.echo(
                f"{result.name}: {status} at position {result.position} "
                f"fingerprint={result.live_fingerprint[:16]}"
            )
        if result.dead_letters:
            typer.echo(f"  {result.dead_letters} dead letter(s) parked")
        for position in result.refused_unparked[:10]:
            typer.echo(f"  the event at position {position} is refused, not parked")
        for difference in result.differences[:10]:
            typer.echo(
                f"  at position {difference.position} key {list(difference.key)}: "
                f"live {difference.live} != replay {difference.replayed}"
            )
        if len(result.differences) > 10:
            typer.echo(f"  … {len(result.differences) - 10} more differences")
        failed = failed or not result.ok
    if failed:
        raise typer.Exit(1)


def _signing_key_path() -> Path:
    return get_settings().signing_key_file


def _public_key(path: Path | None) -> Ed25519PublicKey | None:
    if path is not None:
        return load_public_key(path.read_bytes())
    return own_public_key(_signing_key_path())


@app.command()
def checkpoint(
    public_key_out: Annotated[
        Path | None,
        typer.Option(help="Also write the public key (PEM) to this file."),
    ] = None,
) -> None:
    """Sign the current chain head (position and hash) with the ledger's key."""
    ledger = open_ledger()
    key = load_or_create_signing_key(_signing_key_path())
    try:
        signed = sign_checkpoint(ledger.database, key)
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(1) from None
    if public_key_out is not None:
        public_key_out.write_bytes(public_key_pem(key))
    print_json(signed.as_dict())


@app.command("public-key")
def public_key_command() -> None:
    """Print the public key (PEM) that checkpoints are verified with."""
    typer.echo(public_key_pem(load_or_create_signing_key(_signing_key_path())).decode())


@app.command("export-events")
def export_events_command(
    out: Annotated[Path, typer.Argument(help="JSON Lines file to write.")],
) -> None:
    """Write every stored event with its chain hash, for outside verification."""
    ledger = open_ledger()
    with out.open("wb") as file:
        count = sum(1 for line in export_events(ledger.database) if file.write(line))
    typer.echo(f"exported {count} events to {out}")


@app.command("verify-export")
def verify_export_command(
    events: Annotated[Path, typer.Argument(help="A file from `ledger export-events`.")],
    checkpoint_file: Annotated[
        Path,
        typer.Option(
            "--checkpoint", help="A checkpoint JSON from `ledger checkpoint`."
        ),
    ],
    public_key: Annotated[Path, typer.Option(help="The ledger's public key (PEM).")],
) -> None:
    """Verify a checkpoint with only the public key and exported events."""
    signed = Checkpoint(**orjson.loads(checkpoint_file.read_bytes()))
    with events.open("rb") as lines:
        checked = verify_exported_events(lines, signed, public_key.read_bytes())
    if not checked.ok:
        typer.echo(
            f"checkpoint at position {signed.position}: FAILED: {checked.problem}"
        )
        raise typer.Exit(1)
    typer.echo(f"checkpoint at position {signed.position}: ok")


query_app = typer.Typer(
    help="Read projections as JSON (CONTRACT §5).", no_args_is_help=True
)
app.add_typer(query_app, name="query")

ExportOption = Annotated[
    Path | None,
    typer.Option("--export", help="Write a .csv or .xlsx file instead of JSON."),
]
ChineseOption = Annotated[
    bool, typer.Option("--chinese-headers", help="Chinese column headers in exports.")
]


AsOfOption = Annotated[
    str | None,
    typer.Option("--as-of", help="A ledger position, or a recording time with offset."),
]
MonthOption = Annotated[str | None, typer.Option(help="Month YYYY-MM (inclusive).")]
AfterOption = Annotated[
    int,
    typer.Option(
        help="Continue after this position (next_after); pass --as-of the "
        "first page's position too."
    ),
]
LimitOption = Annotated[int, typer.Option(help="Events per answer.")]
FromOption = Annotated[str | None, typer.Option("--from", help="First month YYYY-MM.")]
SubtreeOption = Annotated[
    bool,
    typer.Option("--subtree/--no-subtree", help="With the venue's descendants."),
]


def _run_read(
    read: Callable[[LedgerReads], CitedAnswer],
    export: Path | None = None,
    columns: Sequence[Column] = (),
    chinese_headers: bool = False,
) -> None:
    """Print a read as JSON, or export its months as CSV or xlsx."""
    reads = LedgerReads(open_ledger().database)
    try:
        document = read(reads)
        # only venue reads have months; no other read is exported
        rows = (
            monthly_rows(document)
            if export is not None and isinstance(document, MonthlyAnswer)
            else []
        )
        _print_or_export(document, rows, columns, export, chinese_headers, "months")
    except NotFoundError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(4) from None
    except InvalidReadError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None


@query_app.command("hours")
def query_hours(volunteer_id: str, as_of: AsOfOption = None) -> None:
    """A volunteer's approved hours."""
    _run_read(lambda reads: reads.volunteer_hours(volunteer_id, parse_as_of(as_of)))


@query_app.command("activity")
def query_activity(
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
) -> None:
    """A venue's activities, sessions, volunteers and minutes."""
    _run_read(
        lambda reads: reads.venue_activity(
            VenueQuery(venue_id, from_, to, subtree, as_of=parse_as_of(as_of))
        ),
        export,
        MONTHLY_ACTIVITY_COLUMNS,
        chinese_headers,
    )


@query_app.command("fulfilment")
def query_fulfilment(
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: Annotated[str | None, typer.Option(help="wish or service")] = None,
    as_of: AsOfOption = None,
    export: ExportOption = None,
    chinese_headers: ChineseOption = False,
) -> None:
    """A venue's orders: counts, fulfilment rate and satisfaction."""
    _run_read(
        lambda reads: reads.venue_fulfilment(
            VenueQuery(venue_id, from_, to, subtree, kind, parse_as_of(as_of))
        ),
        export,
        MONTHLY_FULFILMENT_COLUMNS,
        chinese_headers,
    )


@query_app.command("explain-hours")
def query_explain_hours(volunteer_id: str, as_of: AsOfOption = None) -> None:
    """The events behind a volunteer's hours, with their contributions."""
    _run_read(
        lambda reads: reads.explain_volunteer_hours(volunteer_id, parse_as_of(as_of))
    )


@query_app.command("explain-activity")
def query_explain_activity(
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    as_of: AsOfOption = None,
    after: AfterOption = 0,
    limit: LimitOption = EXPLAINED_EVENTS,
) -> None:
    """The events behind a venue's activity figures, a page at a time."""
    _run_read(
        lambda reads: reads.explain_venue_activity(
            VenueQuery(venue_id, from_, to, subtree, as_of=parse_as_of(as_of)),
            after=after,
            limit=limit,
        )
    )


@query_app.command("explain-fulfilment")
def query_explain_fulfilment(
    venue_id: str,
    from_: FromOption = None,
    to: MonthOption = None,
    subtree: SubtreeOption = True,
    kind: Annotated[str | None, typer.Option(help="wish or service")] = None,
    as_of: AsOfOption = None,
    after: AfterOption = 0,
    limit: LimitOption = EXPLAINED_EVENTS,
) -> None:
    """The events behind a venue's order figures, a page at a time."""
    _run_read(
        lambda reads: reads.explain_venue_fulfilment(
            VenueQuery(venue_id, from_, to, subtree, kind, parse_as_of(as_of)),
            after=after,
            limit=limit,
        )
    )


audit_app = typer.Typer(
    help="Audit queries over the ledger itself.", no_args_is_help=True
)
app.add_typer(audit_app, name="audit")


def _print_or_export(
    document: CitedAnswer,
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    export: Path | None,
    chinese_headers: bool,
    what: str,
) -> None:
    """Print an answer as JSON, or export its rows citing its ledger state."""
    if export is None:
        print_json(document)
        return
    try:
        write_export(
            export,
            rows,
            columns,
            position=document.position,
            chain_hash=document.chain_hash,
            chinese_headers=chinese_headers,
        )
    except ValueError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    typer.echo(f"exported {len(rows)} {what} to {export}")


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    as_of = parse_as_of(text)
    if not isinstance(as_of, datetime):
        raise InvalidReadError(f"'{text}' is not a time with a UTC offset")
    return as_of


@audit_app.command("events")
def audit_events(
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
    after: Annotated[int, typer.Option(help="Page on after this position.")] = 0,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 100,
    as_of: Annotated[int | None, typer.Option("--as-of")] = None,
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
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    page = find_events(
        open_ledger().database, query, reveal_personal_data=reveal_personal_data
    )
    _print_or_export(
        page,
        audit_event_rows(page) if export else [],
        AUDIT_EVENT_COLUMNS,
        export,
        chinese_headers,
        "events",
    )


@audit_app.command("session")
def audit_session(
    session_id: str, as_of: Annotated[int | None, typer.Option("--as-of")] = None
) -> None:
    """A session's correction history as a story: original, adjustments, who, why."""
    try:
        print_json(session_story(open_ledger().database, session_id, as_of=as_of))
    except LookupError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(4) from None


keys_app = typer.Typer(help="API keys for the HTTP API.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def create_key_command(
    role: Annotated[
        str,
        typer.Option(
            help="admin, auditor, dispatcher, venue_staff, volunteer or dashboard"
        ),
    ],
    venue: Annotated[
        str | None, typer.Option(help="The venue a venue_staff key is scoped to.")
    ] = None,
    volunteer: Annotated[
        str | None, typer.Option(help="The volunteer a volunteer key is for.")
    ] = None,
) -> None:
    """Create an API key; it is printed once, alone on the last line."""
    ledger = open_ledger()
    try:
        key = create_key(ledger.database, role, venue_id=venue, volunteer_id=volunteer)
    except InvalidKeyRequestError as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created a {role} key; store it now, it cannot be shown again")
    typer.echo(key)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    # Every worker (one or several) builds the app from the environment.
    os.environ["LEDGER_DATABASE_URL"] = state.database_url
    uvicorn.run(
        "ledger.api.http.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )


@app.command()
def honours(
    as_of: Annotated[
        str,
        typer.Option(
            "--as-of", help="Count service dated up to this day (YYYY-MM-DD, CST)."
        ),
    ],
    rules: Annotated[
        str,
        typer.Option(help="Rule set NAME[@VERSION]: national, kunshan, zhangjiagang."),
    ],
    position: Annotated[
        int | None,
        typer.Option(help="Read the ledger at this position (default: latest)."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Decide, but record nothing.")
    ] = False,
) -> None:
    """Compute every volunteer's honours and record the new awards as events."""
    try:
        day = date.fromisoformat(as_of)
        rule_set = load_rule_set(rules, day)
    except (ValueError, UnknownRuleSetError) as error:
        console.print(f"[red]{error}[/red]")
        raise typer.Exit(2) from None
    ledger = open_ledger()
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    engine.catch_up()
    with ledger.database.reading() as conn:
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        read_at = live.position if position is None else position
        if read_at > live.position:
            console.print(f"[red]the ledger has no position {read_at} yet[/red]")
            raise typer.Exit(2)
        try:
            run = plan_honours(conn, live.version, rule_set, day, read_at)
        except IncompleteAwardsError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(3) from None
    typer.echo(
        f"honours under {run.rules} as of {day.isoformat()} at position {read_at}: "
        f"{run.volunteers} volunteers with counted service"
    )
    if run.since is not None:
        typer.echo(
            f"  building on the completed run that read position {run.since}: "
            "only volunteers with service recorded or dated since, or whose "
            "fraud bar may have changed, decided again"
        )
    standings = ", ".join(
        f"{'★' * level or 'no star'}: {count}"
        for level, count in sorted(run.standings_by_stars.items())
    )
    typer.echo(f"  standings: {standings or 'none'}")
    typer.echo(f"  {len(run.changes)} volunteers with awards not yet recorded")
    for level in sorted(run.new_stars):
        typer.echo(f"  {'★' * level} newly reached by {run.new_stars[level]}")
    typer.echo(
        f"  benefits to grant: {run.new_benefits}; "
        f"points to credit: {run.points_credited}"
    )
    recorded = 0 if dry_run else record_honours(ledger, run)
    typer.echo(f"recorded={recorded}")


@app.command()
def certificate(
    volunteer_id: str,
    as_of: Annotated[
        str | None,
        typer.Option("--as-of", help="Service up to this day (default: today)."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="PDF path (HTML is written beside it).")
    ] = None,
) -> None:
    """Write a 志愿服务记录证明 (PDF and HTML); print the PDF's path last."""
    try:
        day = (
            date.fromisoformat(as_of)
            if as_of
            else datetime.now(CHINA_STANDARD_TIME).date()
        )
    except ValueError:
        console.print(f"[red]--as-of must be a day YYYY-MM-DD, not '{as_of}'[/red]")
        raise typer.Exit(2) from None
    ledger = open_ledger()
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    engine.catch_up()
    settings = get_settings()
    issuer = Issuer(
        organisation=settings.certificate_organisation,
        person_in_charge=settings.certificate_person_in_charge,
        handler=settings.certificate_handler,
        contact=settings.certificate_contact,
    )
    key = load_or_create_signing_key(_signing_key_path())
    with ledger.database.reading() as conn:
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        try:
            content = issue_certificate(
                ledger,
                conn,
                live.version,
                volunteer_id,
                day,
                live.position,
                issuer,
                key,
            )
        except LookupError as error:
            console.print(f"[red]{error}[/red]")
            raise typer.Exit(4) from None
    path = write_certificate(content, out or Path(f"certificate-{volunteer_id}.pdf"))
    console.print(f"certificate {content['certificate_number']}, HTML beside it")
    typer.echo(str(path))


@app.command("verify-certificate")
def verify_certificate_command(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key (default: the ledger's own).")
    ] = None,
) -> None:
    """Exit 0 when the certificate matches the ledger, non-zero otherwise."""
    ledger = open_ledger()
    key = _public_key(public_key)
    if key is None:
        console.print("[red]no public key: pass --public-key[/red]")
        raise typer.Exit(2)
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    engine.catch_up()
    try:
        content = read_certificate(path)
        with ledger.database.reading() as conn:
            live = engine.live_version(conn, VOLUNTEER_HOURS.name)
            assert live is not None
            verify_certificate(content, conn, live.version, key)
    except CertificateError as error:
        typer.echo(f"certificate does NOT match the ledger: {error}")
        raise typer.Exit(1) from None
    typer.echo(
        f"certificate {content['certificate_number']} matches the ledger at "
        f"position {content['position']}"
    )


if __name__ == "__main__":
    app()
