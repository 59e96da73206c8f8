"""The HTTP API: ``create_app(settings)`` builds it; ``ledger serve`` runs it."""

from __future__ import annotations

import gc

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from ledger.api.http.access import CallerCache
from ledger.api.http.body_limit import RefuseLargeBodies
from ledger.api.http.dashboard import mount_dashboard
from ledger.api.http.docs import add_documentation
from ledger.api.http.follower import following_projections
from ledger.api.http.language import AnswerInRequestedLanguage
from ledger.api.http.middleware import HttpMiddleware
from ledger.api.http.observability import ObserveRequests, log_access_to_stderr
from ledger.api.http.problems import HANDLERS, problem_response
from ledger.api.http.routes import (
    audit,
    calendar,
    commands,
    health,
    reads,
    verification,
)
from ledger.application.group_commit import GroupCommit
from ledger.bootstrap import LedgerComponents
from ledger.domain.messages import translate
from ledger.settings import LedgerSettings

DESCRIPTION = """\
The ledger of 新时代文明实践 volunteer service. Writes record commands of the
interchange format as immutable events; reads answer from projections as of
any ledger position and cite the chain hash they reflect.

Authenticate with `Authorization: Bearer KEY` (keys from `ledger keys
create`). Errors are RFC 9457 problem details naming the rule broken.
"""


class RefuseNulCharacters(HttpMiddleware):
    """No path or query may carry a NUL character: none is meaningful, and
    PostgreSQL cannot store or compare one."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = scope["query_string"]
        if "\x00" in scope["path"] or b"\x00" in query or b"%00" in query:
            refusal = problem_response(
                400,
                "invalid_read",
                "Invalid read parameters",
                translate("NUL characters are not allowed"),
            )
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


# What a browser page on an allowed origin may send and read (CORS).
CORS_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-None-Match",
)
CORS_EXPOSED_HEADERS = ("ETag", "Idempotent-Replayed")


def create_app(
    settings: LedgerSettings, *, follow_projections: bool = False
) -> FastAPI:
    """The API over the ledger that ``settings`` describe (its database
    opened, and its schema created, now); with ``follow_projections``, it
    keeps the projections current while it serves (``follower``)."""
    app = FastAPI(
        title="文明实践 ledger",
        version="0.1.0",
        description=DESCRIPTION,
        docs_url=None,
        redoc_url=None,
        lifespan=following_projections if follow_projections else None,
    )
    components = LedgerComponents(settings)
    app.state.settings = settings
    app.state.ledger = components.ledger
    app.state.writer = (
        GroupCommit(components.ledger) if settings.group_commit else components.ledger
    )
    app.state.reads = components.reads
    app.state.callers = CallerCache()
    for error, handler in HANDLERS.items():
        app.add_exception_handler(error, handler)
    app.add_middleware(RefuseNulCharacters)
    app.add_middleware(RefuseLargeBodies)
    app.add_middleware(AnswerInRequestedLanguage)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=600,
        )
    # Outermost: it counts and logs every answer, refusals included.
    app.add_middleware(ObserveRequests)
    # Reads first: routes are matched in order, and reads are most requests.
    app.include_router(reads.router)
    app.include_router(audit.router)
    app.include_router(calendar.router)
    app.include_router(commands.router)
    app.include_router(verification.router)
    app.include_router(health.router)
    add_documentation(app)
    mount_dashboard(app)
    return app


def served_app(settings: LedgerSettings) -> FastAPI:
    """The app as a server process keeps it for its lifetime."""
    app = create_app(settings, follow_projections=True)
    log_access_to_stderr()
    # What exists now lives as long as the process: keep it out of the
    # collector's full passes, which would otherwise pause answers.
    gc.collect()
    gc.freeze()
    return app


def app_from_environment() -> FastAPI:
    """The app as configured by the ``LEDGER_*`` variables, read once: the
    factory each uvicorn worker calls when ``ledger serve --workers N``
    starts uvicorn with its settings as those variables."""
    return served_app(LedgerSettings())
