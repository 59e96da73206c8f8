"""The HTTP API: ``create_app(settings)`` builds it; ``ledger serve`` runs it."""

from __future__ import annotations

from fastapi import FastAPI

from api.problems import HANDLERS
from api.routes import audit, commands, reads
from ledger.application import Ledger
from ledger.settings import LedgerSettings
from ledger.store import Database
from projections.reads import LedgerReads

DESCRIPTION = """\
The ledger of 新时代文明实践 volunteer service. Writes record commands of the
interchange format as immutable events; reads answer from projections as of
any ledger position and cite the chain hash they reflect.

Authenticate with `Authorization: Bearer KEY` (keys from `ledger keys
create`). Errors are RFC 9457 problem details naming the rule broken.
"""


def create_app(settings: LedgerSettings) -> FastAPI:
    app = FastAPI(title="文明实践 ledger", version="0.1.0", description=DESCRIPTION)
    database = Database(settings.database_url)
    database.create_schema()
    app.state.settings = settings
    app.state.ledger = Ledger(database)
    app.state.reads = LedgerReads(database)
    for error, handler in HANDLERS.items():
        app.add_exception_handler(error, handler)
    app.include_router(commands.router)
    app.include_router(reads.router)
    app.include_router(audit.router)
    return app


def app_from_environment() -> FastAPI:
    """The app as configured by ``LEDGER_*`` variables (for uvicorn workers)."""
    return create_app(LedgerSettings())
