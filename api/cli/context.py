"""What every command is handed: the ledger's components, composed once by
the root callback from the settings (``ledger.bootstrap``)."""

from __future__ import annotations

import typer

from ledger.bootstrap import LedgerComponents


def components_of(ctx: typer.Context) -> LedgerComponents:
    """The components the root callback composed for this invocation."""
    components = ctx.find_object(LedgerComponents)
    assert components is not None, "the root callback composes them first"
    return components
