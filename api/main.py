"""The HTTP API: ``create_app(settings)`` builds it; ``ledger serve`` runs it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from api.access import CallerCache
from api.problems import HANDLERS, problem_response
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


async def refuse_nul_characters(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """No path or query may carry a NUL character: none is meaningful, and
    PostgreSQL cannot store or compare one."""
    raw = request.url.path + "?" + request.url.query
    if "\x00" in raw or "%00" in raw:
        return problem_response(
            400,
            "invalid_read",
            "Invalid read parameters",
            "NUL characters are not allowed",
        )
    return await call_next(request)


def create_app(settings: LedgerSettings) -> FastAPI:
    app = FastAPI(title="文明实践 ledger", version="0.1.0", description=DESCRIPTION)
    database = Database(settings.database_url)
    database.create_schema()
    app.state.settings = settings
    app.state.ledger = Ledger(database)
    app.state.reads = LedgerReads(database)
    app.state.callers = CallerCache()
    for error, handler in HANDLERS.items():
        app.add_exception_handler(error, handler)
    app.middleware("http")(refuse_nul_characters)
    app.include_router(commands.router)
    app.include_router(reads.router)
    app.include_router(audit.router)
    return app


def app_from_environment() -> FastAPI:
    """The app as configured by ``LEDGER_*`` variables (for uvicorn workers)."""
    return create_app(LedgerSettings())
