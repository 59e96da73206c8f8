"""The ledger's integrity: ``ledger verify`` checks the chain, checkpoints
and projections; ``ledger checkpoint`` signs the chain head; exported
events and a checkpoint are verified with the public key alone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.output import fail, in_existing_folder, print_json, say
from ledger.domain.messages import Message

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

    from ledger.bootstrap import LedgerComponents
    from ledger.settings import LedgerSettings
    from ledger.store.integrity import Checkpoint

app = typer.Typer()


def checking_key(
    settings: LedgerSettings, path: Path | None
) -> Ed25519PublicKey | None:
    """The public key in the PEM file at ``path``, else the ledger's own
    (None while the ledger has no signing key)."""
    from ledger.store.integrity import load_public_key, own_public_key

    if path is not None:
        return load_public_key(path.read_bytes())
    return own_public_key(settings.database_url, settings.key_directory)


def signing_key(components: LedgerComponents) -> Ed25519PrivateKey:
    """The ledger's signing key, from its key directory; exits with the
    reason, in one line, when there is none to use."""
    from ledger.store.integrity import (
        KeyMaterialError,
        key_directory,
        ledger_signing_key,
    )

    settings = components.settings
    try:
        directory = key_directory(settings.database_url, settings.key_directory)
        return ledger_signing_key(components.database, directory)
    except KeyMaterialError as error:
        fail(error, 1)


def kept_checkpoint(path: Path) -> Checkpoint:
    """A signed checkpoint read from a file, or a one-line refusal."""
    from ledger.store.integrity import read_checkpoint

    try:
        return read_checkpoint(path)
    except ValueError as error:
        fail(error, 2)


def _status(ok: bool, problem: object) -> Message:
    """How a checkpoint fared: ``ok``, or ``FAILED`` and why."""
    return Message("ok") if ok else Message("FAILED: {problem}", problem=problem)


@app.command()
def verify(
    ctx: typer.Context,
    public_key: Annotated[
        Path | None,
        typer.Option(
            help="PEM public key to check checkpoints with "
            "(default: the ledger's own signing key)."
        ),
    ] = None,
    checkpoint_file: Annotated[
        Path | None,
        typer.Option(
            "--checkpoint",
            help="A checkpoint kept outside the ledger (`ledger checkpoint --out`); "
            "needs --public-key.",
        ),
    ] = None,
) -> None:
    """Check the chain, every checkpoint, the tables derived from the events,
    and that every projection equals a fresh replay; exit non-zero and name
    the first problem on any mismatch."""
    from ledger.store.integrity import record_verification, verify_ledger

    kept_outside: list[Checkpoint] = []
    if checkpoint_file is not None:
        if public_key is None:
            fail("--checkpoint needs --public-key", 2)
        kept_outside.append(kept_checkpoint(checkpoint_file))
    components = components_of(ctx)
    engine = components.projection_engine
    audit = verify_ledger(
        engine.database,
        checking_key(components.settings, public_key),
        ledger_of(ctx),
        kept_outside=kept_outside,
    )
    chain = audit.chain
    if chain.ok:
        say(
            "chain: ok, {count} events, head {head}",
            count=chain.checked,
            head=chain.head_hash,
        )
    else:
        say(
            "chain: BROKEN at position {position}: {problem}",
            position=chain.first_bad_position,
            problem=chain.problem,
        )
    for checked in audit.checkpoints:
        say(
            "checkpoint at position {position}: {status}",
            position=checked.checkpoint.position,
            status=_status(checked.ok, checked.problem),
        )
    for checked in audit.kept_outside:
        say(
            "checkpoint kept outside, at position {position}: {status}",
            position=checked.checkpoint.position,
            status=_status(checked.ok, checked.problem),
        )
    for table in audit.derived:
        say(
            "{table}: {status} ({rows} rows from the events)",
            table=table.table,
            status=Message("ok")
            if table.ok
            else Message("MISMATCH {problem}", problem=table.problem),
            rows=table.rows,
        )
    failed = not audit.ok
    for result in engine.verify():
        if not result.has_live_version:
            say("{name}: NO LIVE VERSION (run `ledger rebuild`)", name=result.name)
        else:
            say(
                "{name}: {status} at position {position} fingerprint={fingerprint}",
                name=result.name,
                status=Message("ok") if result.ok else Message("MISMATCH"),
                position=result.position,
                fingerprint=result.live_fingerprint[:16],
            )
        if result.dead_letters:
            say("  {count} dead letter(s) parked", count=result.dead_letters)
        for position in result.refused_unparked[:10]:
            say(
                "  the event at position {position} is refused, not parked",
                position=position,
            )
        for difference in result.differences[:10]:
            say(
                "  at position {position} key {key}: live {live} != replay {replayed}",
                position=difference.position,
                key=list(difference.key),
                live=difference.live,
                replayed=difference.replayed,
            )
        if result.difference_count > 10:
            say("  … {count} more differences", count=result.difference_count - 10)
        failed = failed or not result.ok
    record_verification(engine.database, chain.head_position, not failed)
    if failed:
        raise typer.Exit(1)


@app.command()
def checkpoint(
    ctx: typer.Context,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the signed checkpoint (JSON) to this file, to be "
            "kept outside the ledger.",
            callback=in_existing_folder,
        ),
    ] = None,
    public_key_out: Annotated[
        Path | None,
        typer.Option(
            help="Also write the public key (PEM) to this file.",
            callback=in_existing_folder,
        ),
    ] = None,
) -> None:
    """Sign the current chain head (position and hash) with the ledger's key."""
    from ledger.store.integrity import (
        KeyMaterialError,
        public_key_pem,
        sign_checkpoint,
        write_checkpoint,
    )

    components = components_of(ctx)
    key = signing_key(components)
    try:
        signed = sign_checkpoint(components.database, key)
    except (KeyMaterialError, ValueError) as error:
        fail(error, 1)
    if out is not None:
        write_checkpoint(signed, out)
    if public_key_out is not None:
        public_key_out.write_bytes(public_key_pem(key))
    print_json(signed.as_dict())


@app.command("public-key")
def public_key_command(ctx: typer.Context) -> None:
    """Print the public key (PEM) that checkpoints are verified with."""
    from ledger.store.integrity import public_key_pem

    typer.echo(public_key_pem(signing_key(components_of(ctx))).decode())


@app.command("export-events")
def export_events_command(
    ctx: typer.Context,
    out: Annotated[
        Path,
        typer.Argument(help="JSON Lines file to write.", callback=in_existing_folder),
    ],
) -> None:
    """Write every stored event with its chain hash, for outside verification."""
    from ledger.store.integrity import export_events

    database = components_of(ctx).database
    with out.open("wb") as file:
        count = sum(1 for line in export_events(database) if file.write(line))
    say(
        "exported {count} {what} to {path}",
        count=count,
        what=Message("events"),
        path=out,
    )


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
    from ledger.store.integrity import verify_exported_events

    signed = kept_checkpoint(checkpoint_file)
    with events.open("rb") as lines:
        checked = verify_exported_events(lines, signed, public_key.read_bytes())
    status = _status(checked.ok, checked.problem)
    say(
        "checkpoint at position {position}: {status}",
        position=signed.position,
        status=status,
    )
    if not checked.ok:
        raise typer.Exit(1)
