"""For operators and their tools, no key needed: liveness (``/healthz``),
readiness with the projections' lag (``/readyz``) and Prometheus metrics
(``/metrics``)."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from ledger.api.http.observability import scrape_registry
from ledger.engine import ProjectionEngine
from ledger.settings import LedgerSettings
from ledger.store.event_store import head_position

router = APIRouter(tags=["operations"])


class Liveness(BaseModel):
    """Whether the server can read the ledger, and the head it read."""

    status: str = Field(description="ok, or unavailable (answered with 503)")
    position: int | None = None
    reason: str | None = None


class LagReport(BaseModel):
    """How far one projection stands behind the head."""

    name: str
    position: int
    lag_events: int
    lag_seconds: float = Field(
        description="How long the oldest event it has not processed has waited."
    )
    dead_letters: int


class Readiness(BaseModel):
    """Whether the server should be sent traffic: the database answers and
    every projection is within the lag bound (503 otherwise, with reasons)."""

    ready: bool
    position: int | None = None
    max_lag_seconds: float
    projections: list[LagReport] = []
    reasons: list[str] = []


def _engine(request: Request) -> ProjectionEngine:
    engine: ProjectionEngine = request.app.state.reads.engine
    return engine


def _unavailable(error: sa.exc.SQLAlchemyError) -> str:
    return f"the database does not answer ({type(error).__name__})"


@router.get("/healthz", response_model=Liveness, responses={503: {"model": Liveness}})
def get_liveness(request: Request) -> JSONResponse:
    """Liveness: 200 while the server can read the ledger."""
    try:
        with _engine(request).database.reading() as conn:
            head = head_position(conn)
    except sa.exc.SQLAlchemyError as error:
        down = Liveness(status="unavailable", reason=_unavailable(error))
        return JSONResponse(down.model_dump(), status_code=503)
    return JSONResponse(Liveness(status="ok", position=head).model_dump())


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def get_readiness(request: Request) -> JSONResponse:
    """Readiness: the database answers and every projection's lag is within
    the bound the settings give (``ready_max_lag_seconds``)."""
    settings: LedgerSettings = request.app.state.settings
    bound = settings.ready_max_lag_seconds
    engine = _engine(request)
    try:
        with engine.database.reading() as conn:
            lags = engine.lags(conn, datetime.now(UTC))
    except sa.exc.SQLAlchemyError as error:
        down = Readiness(ready=False, max_lag_seconds=bound)
        down.reasons.append(_unavailable(error))
        return JSONResponse(down.model_dump(), status_code=503)
    readiness = Readiness(
        ready=True,
        position=lags[0].head if lags else 0,
        max_lag_seconds=bound,
        projections=[
            LagReport(
                name=lag.name,
                position=lag.position,
                lag_events=lag.events,
                lag_seconds=round(lag.seconds, 3),
                dead_letters=lag.dead_letters,
            )
            for lag in lags
        ],
        reasons=[
            f"projection {lag.name} is {lag.events} events, {lag.seconds:.1f} s "
            f"behind (bound {bound:g} s)"
            for lag in lags
            if lag.seconds > bound
        ],
    )
    readiness.ready = not readiness.reasons
    return JSONResponse(
        readiness.model_dump(), status_code=200 if readiness.ready else 503
    )


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def get_metrics(request: Request) -> Response:
    """Prometheus text: requests and latency by route and status, commands
    by outcome, each projection's lag, dead letters, the last verification."""
    registry = scrape_registry(request.app.state.settings, _engine(request))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
