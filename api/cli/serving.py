"""``ledger serve``: the HTTP API, run by uvicorn."""

from __future__ import annotations

import os
from typing import Annotated

import typer
import uvicorn

from ledger.api.cli.context import components_of

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Run the HTTP API."""
    # Every worker (one or several) builds the app from the environment.
    os.environ["LEDGER_DATABASE_URL"] = components_of(ctx).settings.database_url
    uvicorn.run(
        "ledger.api.http.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
    )
