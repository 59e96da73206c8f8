"""What a running server tells its operators: Prometheus metrics
(``GET /metrics``) and one JSON line of access log per request.

Counted per request, by route *template* (``/volunteers/{volunteer_id}/hours``,
never the path a caller sent) and status: requests, their latency, each
command's outcome and the events it appended. Read from the database at
each scrape, so every worker reports the same: the head, each projection's
position, lag (events and seconds) and parked events, and the last
verification.

Several workers (``ledger serve --workers N``) pool their counters through
prometheus-client's multiprocess mode: ``ledger serve`` gives them one
directory (``LedgerSettings.metrics_directory``, also
``PROMETHEUS_MULTIPROC_DIR``), so whichever worker answers a scrape reports
the whole server's counts. ``ledger_projection_followers`` sums the live
workers' gauges: 1 in the worker that follows, 0 in the others.

The access log names the route template, method, status and duration; it
never holds a path's values, a query string, a header or a body, so no key,
ID number, phone or name can reach it.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from starlette.types import Message, Receive, Scope, Send

from ledger.api.http.middleware import HttpMiddleware
from ledger.engine import ProjectionEngine
from ledger.settings import LedgerSettings
from ledger.store.integrity import last_verification

ACCESS_LOG = logging.getLogger("ledger.access")
COMMANDS_PREFIX = "/commands/"

REQUESTS = Counter(
    "ledger_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
    registry=None,
)
LATENCY = Histogram(
    "ledger_http_request_duration_seconds",
    "Time to answer an HTTP request, by method, route template and status.",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    registry=None,
)
COMMANDS = Counter(
    "ledger_commands",
    "Commands by name and outcome: appended (new events), replayed (an "
    "idempotent retry, nothing appended), unchanged (nothing left to change, "
    "nothing appended), refused (4xx), failed (5xx).",
    ["command", "outcome"],
    registry=None,
)
APPENDED = Counter(
    "ledger_events_appended",
    "Events appended by commands answered here, by command.",
    ["command"],
    registry=None,
)
FOLLOWERS = Gauge(
    "ledger_projection_followers",
    "Processes of this server following the projections (at most 1 across "
    "every server of one database).",
    multiprocess_mode="livesum",
    registry=None,
)
PER_PROCESS = (REQUESTS, LATENCY, COMMANDS, APPENDED, FOLLOWERS)


def command_outcome(status: int, replayed: bool) -> str:
    if status >= 500:
        return "failed"
    if status >= 400:
        return "refused"
    if status == 200:
        return "unchanged"
    return "replayed" if replayed else "appended"


def count_appended(scope: Scope, body: bytes) -> None:
    """Count the events a command's 201 answer says it appended (its first
    and last positions; one small JSON body)."""
    route = getattr(scope.get("route"), "path", "")
    if route.startswith(COMMANDS_PREFIX) and body:
        answer = orjson.loads(body)
        appended = answer["last_position"] - answer["first_position"] + 1
        APPENDED.labels(route.removeprefix(COMMANDS_PREFIX)).inc(appended)


# Methods named as they are in metrics and the log; any other token a
# client sends is "other", so that no caller can add series or log text.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _known_method(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


class ObserveRequests(HttpMiddleware):
    """Counts, times and logs every HTTP request."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        answer = {"status": 500, "replayed": False}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["replayed"] = any(
                    name.lower() == b"idempotent-replayed"
                    for name, _ in message.get("headers", ())
                )
            elif answer["status"] == 201 and not answer["replayed"]:
                count_appended(scope, message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            # The router notes the route it matched in the scope: its
            # template, not the path, keeps the labels few and the log clean.
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            status, method = int(answer["status"]), _known_method(scope["method"])
            REQUESTS.labels(method, route, str(status)).inc()
            LATENCY.labels(method, route, str(status)).observe(seconds)
            if method == "POST" and route.startswith(COMMANDS_PREFIX):
                outcome = command_outcome(status, bool(answer["replayed"]))
                COMMANDS.labels(route.removeprefix(COMMANDS_PREFIX), outcome).inc()
            if ACCESS_LOG.isEnabledFor(logging.INFO):
                ACCESS_LOG.info(
                    orjson.dumps(
                        {
                            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                            "method": method,
                            "route": route,
                            "status": status,
                            "ms": round(seconds * 1000, 2),
                        }
                    ).decode()
                )


def log_access_to_stderr() -> None:
    """Write the access log, one JSON object a line, to standard error (a
    server process's; apps built for tests log nothing)."""
    if not ACCESS_LOG.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        ACCESS_LOG.addHandler(handler)
        ACCESS_LOG.setLevel(logging.INFO)
        ACCESS_LOG.propagate = False


class LedgerState(Collector):
    """The ledger's state as gauges, read from the database at each scrape."""

    def __init__(self, engine: ProjectionEngine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "ledger_database_up", "1 while the database answers the server."
        )
        try:
            with self.engine.database.reading() as conn:
                lags = self.engine.lags(conn, datetime.now(UTC))
                verified = last_verification(conn)
        except sa.exc.SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        head = lags[0].head if lags else 0
        yield GaugeMetricFamily(
            "ledger_head_position",
            "Position of the latest event: every event ever appended.",
            value=head,
        )
        figures = {
            "position": "Position each projection has processed up to.",
            "lag_events": "Events appended that each projection has not processed.",
            "lag_seconds": "Seconds the oldest event a projection has not "
            "processed has waited (0 when current).",
            "dead_letters": "Events each projection has parked as dead letters.",
        }
        families = {
            name: GaugeMetricFamily(f"ledger_projection_{name}", text, labels=["name"])
            for name, text in figures.items()
        }
        for lag in lags:
            for name, value in (
                ("position", lag.position),
                ("lag_events", lag.events),
                ("lag_seconds", lag.seconds),
                ("dead_letters", lag.dead_letters),
            ):
                families[name].add_metric([lag.name], value)
        yield from families.values()
        if verified is not None:
            yield GaugeMetricFamily(
                "ledger_last_verify_ok",
                "1 if the last verification (`ledger verify`, GET /audit/verify) "
                "found everything in order, 0 if not.",
                value=int(verified.ok),
            )
            yield GaugeMetricFamily(
                "ledger_last_verify_timestamp_seconds",
                "When the last verification ran (Unix time).",
                value=verified.verified_at.timestamp(),
            )
            yield GaugeMetricFamily(
                "ledger_last_verify_position",
                "The head position the last verification checked.",
                value=verified.position,
            )


def scrape_registry(
    settings: LedgerSettings, engine: ProjectionEngine
) -> CollectorRegistry:
    """What one scrape reports: this process's counters (or, with several
    workers, every worker's, pooled) and the ledger's state."""
    registry = CollectorRegistry(auto_describe=False)
    if settings.metrics_directory is not None:
        _forget_dead_workers(settings.metrics_directory)
        MultiProcessCollector(registry, path=str(settings.metrics_directory))  # type: ignore[no-untyped-call]
    else:
        for metric in PER_PROCESS:
            registry.register(metric)
    registry.register(LedgerState(engine))
    return registry


def _forget_dead_workers(directory: Path) -> None:
    """Drop the live gauges of workers that died without a word (killed, or
    crashed; uvicorn starts others in their place): the follower count would
    still count them."""
    for gauge in directory.glob("gauge_live*_*.db"):
        pid = gauge.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            mark_process_dead(int(pid), str(directory))  # type: ignore[no-untyped-call]


def process_alive(pid: int) -> bool:
    """Whether a process ``pid`` runs (perhaps another user's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
