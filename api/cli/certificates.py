"""``ledger certificate`` writes a 志愿服务记录证明 (PDF and HTML);
``ledger verify-certificate`` checks one: with the public key alone, and
against the ledger when a database is named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.integrity import checking_key, signing_key
from ledger.api.cli.output import fail, in_existing_folder, note, say

if TYPE_CHECKING:
    from ledger.settings import LedgerSettings

app = typer.Typer()


def configured_issuer(settings: LedgerSettings) -> dict[str, str | None]:
    """The issuer's fields as the settings give them (unset: None)."""
    seal = settings.certificate_seal_image
    return {
        "organisation": settings.certificate_organisation,
        "person_in_charge": settings.certificate_person_in_charge,
        "handler": settings.certificate_handler,
        "contact": settings.certificate_contact,
        "seal_image": str(seal) if seal else None,
    }


@app.command()
def certificate(
    ctx: typer.Context,
    volunteer_id: Annotated[
        str, typer.Argument(help="The volunteer number (volunteer_id).")
    ],
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Business date YYYY-MM-DD: service dated up to this day (CST) "
            "counts (default: today).",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="PDF path (HTML is written beside it).", callback=in_existing_folder
        ),
    ] = None,
) -> None:
    """Write a 志愿服务记录证明 (PDF and HTML); print the PDF's path last.
    Refuses (exit 2) while the organisation profile (LEDGER_CERTIFICATE_*)
    is incomplete."""
    from ledger.domain.common import CHINA_STANDARD_TIME
    from ledger.projections.registry import VOLUNTEER_HOURS
    from ledger.reads.queries import InvalidReadError, parse_business_day
    from ledger.services.certificates import (
        SHIPPED_FONT,
        CertificateError,
        IssuerProfileError,
        issue_certificate,
        issuer_profile,
        qr_text,
        write_certificate,
    )

    try:
        day = (
            parse_business_day(as_of, "--as-of")
            if as_of
            else datetime.now(CHINA_STANDARD_TIME).date()
        )
    except InvalidReadError as error:
        fail(error, 2)
    components = components_of(ctx)
    settings = components.settings
    try:
        issuer = issuer_profile(
            configured_issuer(settings), settings.certificate_profile
        )
    except IssuerProfileError as error:
        fail(error, 2)
    ledger, engine = ledger_of(ctx), components.projection_engine
    engine.catch_up()
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
    path = out or Path(f"certificate-{volunteer_id}.pdf")
    try:
        write_certificate(
            content,
            path,
            qr=qr_text(content["token"], settings.public_base_url),
            seal_image=issuer.seal_image,
            font_file=settings.certificate_font or SHIPPED_FONT,
        )
    except (CertificateError, OSError) as error:
        fail(error, 1)
    note("certificate {number}, HTML beside it", number=content["certificate_number"])
    typer.echo(str(path))


@app.command("verify-certificate")
def verify_certificate_command(
    ctx: typer.Context,
    path: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="The certificate: its PDF or HTML file."
        ),
    ],
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="The ledger's public key (PEM, from `ledger public-key` or "
            "`ledger checkpoint --public-key-out`): checks the certificate "
            "without a database unless --db or LEDGER_DATABASE_URL names one. "
            "Default: the ledger's own key, and the ledger is consulted."
        ),
    ] = None,
) -> None:
    """Check a certificate's signatures and printed figures (exit 0 when
    genuine, 1 with the reason when not); with a database, also that the
    ledger agrees at its position and whether its hours were corrected since."""
    from ledger.projections.registry import VOLUNTEER_HOURS
    from ledger.services.certificates import (
        CertificateError,
        hours,
        read_ledger_today,
        verify_document,
    )
    from ledger.store.integrity import load_public_key

    components = components_of(ctx)
    settings = components.settings
    if public_key is not None:
        try:
            key = load_public_key(public_key.read_bytes())
        except (OSError, ValueError) as error:
            fail("--public-key {path}: {reason}", 2, path=public_key, reason=error)
    else:
        own = checking_key(settings, None)
        if own is None:
            fail(
                "no public key: pass --public-key PEM "
                "(`ledger public-key` prints the ledger's)",
                2,
            )
        key = own
    try:
        content = verify_document(path, key)
    except CertificateError as error:
        say("certificate does NOT verify: {problem}", problem=error)
        raise typer.Exit(1) from None
    number, position = content["certificate_number"], content["position"]
    total = hours(content["figures"]["total_minutes"])
    say(
        "certificate {number} is genuine: {volunteer}, {hours} h of service up to "
        "{as_of}, ledger position {position}",
        number=number,
        volunteer=content["volunteer_id"],
        hours=total,
        as_of=content["as_of"],
        position=position,
    )
    if public_key is not None and "database_url" not in settings.model_fields_set:
        return
    engine = components.projection_engine
    engine.catch_up()
    with components.database.reading() as conn:
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        today = read_ledger_today(
            conn,
            live.version,
            content["volunteer_id"],
            content["as_of"],
            position,
            live.position,
        )
    problem = today.problem(content["chain_hash"], position, content["figures"])
    if problem is not None:
        say("certificate does NOT match the ledger: {problem}", problem=problem)
        raise typer.Exit(1)
    corrected = today.corrected_minutes()
    if corrected:
        say(
            "the ledger matches at position {position}; corrected since: today it "
            "counts {hours} h for service up to {as_of} ({change} min, at position "
            "{position_now})",
            position=position,
            hours=hours(today.figures_now["total_minutes"]),
            as_of=content["as_of"],
            change=f"{corrected:+d}",
            position_now=today.position_now,
        )
    else:
        say(
            "the ledger matches at position {position} and still agrees today "
            "(position {position_now})",
            position=position,
            position_now=today.position_now,
        )
