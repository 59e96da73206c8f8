"""What every command is handed: the ledger's components, composed once by
the root callback from the settings (``ledger.bootstrap``)."""

from __future__ import annotations

import typer

from ledger.api.cli.output import fail
from ledger.application.ledger import Ledger
from ledger.bootstrap import LedgerComponents
from ledger.store.integrity import KeyMaterialError


def components_of(ctx: typer.Context) -> LedgerComponents:
    """The components the root callback composed for this invocation."""
    components = ctx.find_object(LedgerComponents)
    assert components is not None, "the root callback composes them first"
    return components


def ledger_of(ctx: typer.Context) -> Ledger:
    """The ledger, the only writer; exits in one line when its key material
    (the secret ID numbers are digested with) is not where it belongs."""
    try:
        return components_of(ctx).ledger
    except KeyMaterialError as error:
        fail(error, 1)
