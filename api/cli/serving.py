"""``ledger serve``: the HTTP API, run by uvicorn.

One worker (the default) serves from this process, its app built from the
settings the root callback read. Several workers are processes uvicorn
starts, each building the app from an import string, so they cannot be
handed that settings object: this process then becomes uvicorn
(``os.execve``, ``python -m uvicorn``), started with an environment whose
``LEDGER_*`` variables are exactly these settings, ``--db`` included, which
each worker reads once (``app_from_environment``), and a new directory where
they pool their metrics (``ledger.api.http.observability``). No process's
``os.environ`` is changed along the way.

Before serving, one line on standard error says what is served: address,
database (its password masked), version, head and projection positions.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from ledger.api.cli.context import components_of, ledger_of

if TYPE_CHECKING:
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
    """Run the HTTP API, keeping the projections current (one follower per
    database across workers and servers); see docs/http-api.md."""
    components = components_of(ctx).may_create()  # it serves writers
    # Once, before any worker starts: the ledger's key material is checked
    # (a refusal is one line), and an older ledger's claims made anew.
    ledger_of(ctx)
    typer.echo(startup_line(components, host, port, workers), err=True)
    if workers > 1:
        _become_uvicorn(components, host, port, workers)
    # Imported here: only this command needs the web framework, and every
    # other command starts faster without it.
    import uvicorn

    from ledger.api.http.app import served_app

    api = served_app(components.settings)
    uvicorn.run(api, host=host, port=port, log_level=LOG_LEVEL, access_log=False)


def startup_line(
    components: LedgerComponents, host: str, port: int, workers: int
) -> str:
    """What is about to be served, in one line for the operator's log."""
    from importlib.metadata import version

    import sqlalchemy as sa

    engine = components.projection_engine
    with engine.database.reading() as conn:
        lags = engine.lags(conn, datetime.now(UTC))
    database = sa.make_url(components.settings.database_url)
    positions = ", ".join(f"{lag.name} {lag.position}" for lag in lags)
    # The operator's log line: one language whatever the locale, for the
    # tools that read logs.
    return (
        f"ledger serve: wenming-ledger {version('wenming-ledger')} at "
        f"http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}); "
        f"database {database.render_as_string(hide_password=True)}; "
        f"head {lags[0].head if lags else 0}; projections: {positions}"
    )


def _become_uvicorn(
    components: LedgerComponents, host: str, port: int, workers: int
) -> NoReturn:
    """Replace this process with uvicorn serving ``workers`` workers."""
    # The schema is made here, once: workers starting on a new database
    # would otherwise race to create the same tables.
    components.database.dispose()
    server = [sys.executable, "-m", "uvicorn", APP_FACTORY, "--factory"]
    options = ["--host", host, "--port", str(port), "--workers", str(workers)]
    # The workers' pooled metrics (prometheus-client reads the directory
    # from its own variable).
    metrics = _metrics_directory()
    settings = components.settings.model_copy(
        update={"metrics_directory": Path(metrics)}
    )
    environment = {
        **os.environ,
        **settings.as_environment(),
        "PROMETHEUS_MULTIPROC_DIR": metrics,
    }
    logging = ["--log-level", LOG_LEVEL, "--no-access-log"]
    os.execve(sys.executable, [*server, *options, *logging], environment)


METRICS_PREFIX = "ledger-metrics-"


def _metrics_directory() -> str:
    """A new temporary directory for this server's pooled metrics, named
    after its process (the one uvicorn runs in after ``execve``). A stopped
    server cannot remove its own, so those of servers no longer running are
    removed here first."""
    from ledger.api.http.observability import process_alive

    for directory in Path(tempfile.gettempdir()).glob(f"{METRICS_PREFIX}*-*"):
        pid = directory.name.removeprefix(METRICS_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{METRICS_PREFIX}{os.getpid()}-")
