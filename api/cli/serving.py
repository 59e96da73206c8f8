"""``ledger serve``: the HTTP API, run by uvicorn.

One worker (the default) serves from this process, its app built from the
settings the root callback read. Several workers are processes uvicorn
starts, each building the app from an import string, so they cannot be
handed that settings object: this process then becomes uvicorn
(``os.execve``, ``python -m uvicorn``), started with an environment whose
``LEDGER_*`` variables are exactly these settings, ``--db`` included, which
each worker reads once (``app_from_environment``). No process's
``os.environ`` is changed along the way.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, NoReturn

import typer
import uvicorn

from ledger.api.cli.context import components_of, ledger_of
from ledger.bootstrap import LedgerComponents

APP_FACTORY = "ledger.api.http.app:app_from_environment"
LOG_LEVEL = "warning"

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    components = components_of(ctx)
    # Once, before any worker starts: the ledger's key material is checked
    # (a refusal is one line), and a ledger of the first release upgraded.
    ledger_of(ctx)
    if workers > 1:
        _become_uvicorn(components, host, port, workers)
    # Imported here: only this command needs the web framework, and every
    # other command starts faster without it.
    from ledger.api.http.app import served_app

    api = served_app(components.settings)
    uvicorn.run(api, host=host, port=port, log_level=LOG_LEVEL)


def _become_uvicorn(
    components: LedgerComponents, host: str, port: int, workers: int
) -> NoReturn:
    """Replace this process with uvicorn serving ``workers`` workers."""
    # The schema is made here, once: workers starting on a new database
    # would otherwise race to create the same tables.
    components.database.dispose()
    server = [sys.executable, "-m", "uvicorn", APP_FACTORY, "--factory"]
    options = ["--host", host, "--port", str(port), "--workers", str(workers)]
    environment = {**os.environ, **components.settings.as_environment()}
    os.execve(
        sys.executable, [*server, *options, "--log-level", LOG_LEVEL], environment
    )
