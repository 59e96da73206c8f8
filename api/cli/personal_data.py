"""``ledger personal-data``: the keys personal data is sealed with — rotate
the master key (docs/personal-data.md)."""

from __future__ import annotations

import typer

from ledger.api.cli.context import components_of, ledger_of

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
    typer.echo(
        f"master key {rotation.old_key_id} -> {rotation.new_key_id}: "
        f"{rotation.rewrapped} data keys wrapped again; the old key is kept at "
        f"{rotation.retired} for the backups made before it"
    )
