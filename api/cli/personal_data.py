"""``ledger personal-data``: the keys personal data is sealed with — rotate
the master key — and the copy of a plaintext ledger into a sealed one
(docs/personal-data.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ledger.api.cli.context import components_of, ledger_of
from ledger.api.cli.output import ExitCode, fail, in_existing_folder, print_json, say

app = typer.Typer(
    help="The keys the ledger's personal data is sealed with.", no_args_is_help=True
)


@app.command("rotate-master-key")
def rotate_master_key(ctx: typer.Context) -> None:
    """Replace the master key: every data key is wrapped again with a new
    one, in one transaction; no event changes. The old key is kept beside it
    (master-key.retired-ID) for the backups made before: back up the new key
    directory now, and delete the old key once those backups are gone."""
    from ledger.store.integrity import key_directory
    from ledger.store.personal_data import rotate_master_key_file

    components = components_of(ctx)
    ledger = ledger_of(ctx)  # the ledger's key material, checked first
    settings = components.settings
    keys = key_directory(settings.database_url, settings.key_directory)
    rotation = rotate_master_key_file(ledger.database, keys)
    say(
        "master key {old} -> {new}: {count} data keys wrapped again; the old key "
        "is kept at {retired} for the backups made before it",
        old=rotation.old_key_id,
        new=rotation.new_key_id,
        count=rotation.rewrapped,
        retired=rotation.retired,
    )


@app.command("copy-sealed")
def copy_sealed_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="URL of an empty database.")],
    keys: Annotated[
        Path | None,
        typer.Option(help="The copy's key directory (default: as for its URL)."),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            help="Also write the signed chain mapping to this file.",
            callback=in_existing_folder,
        ),
    ] = None,
) -> None:
    """Copy this ledger into an empty database with every personal field
    sealed (the way out of a ledger written in plaintext by an earlier
    release): events one for one, chained again, then projected. Prints the
    mapping of the old chain head to the new one, signed with the ledger's
    key, to keep with the old checkpoints."""
    import orjson

    from ledger.bootstrap import open_database
    from ledger.engine import ProjectionEngine
    from ledger.projections.registry import ALL_PROJECTIONS
    from ledger.store.integrity import key_directory
    from ledger.store.sealed_copy import SealedCopyError, copy_sealed

    components = components_of(ctx)
    ledger = ledger_of(ctx)  # the ledger's key material, checked first
    settings = components.settings
    source_keys = key_directory(settings.database_url, settings.key_directory)
    target_keys = key_directory(target, keys)
    database = open_database(target)
    try:
        copied = copy_sealed(ledger.database, source_keys, database, target_keys)
        ProjectionEngine(database, ALL_PROJECTIONS).catch_up()
    except SealedCopyError as error:
        fail(error, ExitCode.BAD_INPUT)
    finally:
        database.dispose()
    if mapping is not None:
        mapping.write_bytes(orjson.dumps(copied.as_dict(), option=orjson.OPT_INDENT_2))
    print_json(copied.as_dict())
