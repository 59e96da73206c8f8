"""``ledger certificate`` writes a 志愿服务记录证明 (PDF and HTML);
``ledger verify-certificate`` checks one against the ledger."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.integrity import checking_key, signing_key
from ledger.api.cli.output import console, fail
from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.projections.registry import VOLUNTEER_HOURS
from ledger.services.certificates import (
    CertificateError,
    Issuer,
    issue_certificate,
    read_certificate,
    verify_certificate,
    write_certificate,
)

app = typer.Typer()


@app.command()
def certificate(
    ctx: typer.Context,
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
        fail(f"--as-of must be a day YYYY-MM-DD, not '{as_of}'", 2)
    components = components_of(ctx)
    ledger, engine = ledger_of(ctx), components.projection_engine
    engine.catch_up()
    settings = components.settings
    issuer = Issuer(
        organisation=settings.certificate_organisation,
        person_in_charge=settings.certificate_person_in_charge,
        handler=settings.certificate_handler,
        contact=settings.certificate_contact,
    )
    key = signing_key(components)
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
            fail(error, 4)
    path = write_certificate(content, out or Path(f"certificate-{volunteer_id}.pdf"))
    console.print(f"certificate {content['certificate_number']}, HTML beside it")
    typer.echo(str(path))


@app.command("verify-certificate")
def verify_certificate_command(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    public_key: Annotated[
        Path | None, typer.Option(help="PEM public key (default: the ledger's own).")
    ] = None,
) -> None:
    """Exit 0 when the certificate matches the ledger, non-zero otherwise."""
    components = components_of(ctx)
    database = components.database
    key = checking_key(components.settings, public_key)
    if key is None:
        fail("no public key: pass --public-key", 2)
    engine = components.projection_engine
    engine.catch_up()
    try:
        content = read_certificate(path)
        with database.reading() as conn:
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
