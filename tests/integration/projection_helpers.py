"""Helpers for the projection integration tests.

- A synthetic city is generated and imported **once** per test session (on a
  throw-away SQLite file); each test copies its stored log, slice by slice,
  into its own SQLite or PostgreSQL database. The copied rows keep their
  positions, recording times and chain hashes, so the store stays consistent
  and "events appended between runs" are simply the next slice.
- Replays in memory (``Projection.replay``) of the events up to a position,
  to compare stored figures with.
- An independent oracle of the CONTRACT §2–§3 figures, computed from the raw
  event payloads with none of the projections' code, to compare the reads
  with.
- A child-process job that runs a catch-up or a rebuild and counts its pages,
  so that a test can SIGKILL it at a chosen point.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import multiprocessing.queues
import os
import signal
import statistics
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from ctypes import c_int
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa
from pydantic import BaseModel

from ledger.application.importer import import_file
from ledger.application.ledger import Submission
from ledger.bootstrap import open_database, open_ledger
from ledger.engine import (
    BUILDING,
    DEFAULT_PAGE_SIZE,
    LIVE,
    CatchUpReport,
    Contributions,
    Entry,
    Projection,
    ProjectionEngine,
    RecordedEvent,
    iter_events,
    projection_versions_table,
)
from ledger.projections.registry import ALL_PROJECTIONS, VENUE_TREE
from ledger.projections.volunteer_hours import VolunteerHoursProjection
from ledger.services.synthetic_city import write_city
from ledger.store.chain import CHAINED_FIELDS, GENESIS_HASH, chain_hash
from ledger.store.event_store import (
    Database,
    claims_table,
    event_subjects_table,
    events_table,
    idempotency_keys_table,
    utc_text,
)
from tests.factories import KEY_DIRECTORIES, T0, activity, small_city, submission

CITY_SCALE = 0.001
CITY_SEED = 11
CHINA = ZoneInfo("Asia/Shanghai")
T = TypeVar("T")
# The oracle follows each session from its opening, so it reads the session
# events no projection needs besides those the projections read.
SESSION_LIFECYCLE = frozenset(
    {
        "Volunteer.CheckedIn",
        "Volunteer.CheckedOut",
        "Volunteer.MakeupHoursRecorded",
        "Volunteer.SessionRejected",
    }
)
EVERY_TOPIC = SESSION_LIFECYCLE.union(*(p.topics for p in ALL_PROJECTIONS))
PROJECTIONS: dict[str, Projection] = {p.name: p for p in ALL_PROJECTIONS}


# --- the synthetic city, imported once -------------------------------------


@dataclass(frozen=True)
class CityLog:
    """The stored rows of an imported synthetic city, in position order."""

    events: tuple[dict[str, Any], ...]
    subjects: tuple[dict[str, Any], ...]
    keys: tuple[dict[str, Any], ...]
    claims: tuple[dict[str, Any], ...]

    @property
    def head(self) -> int:
        return int(self.events[-1]["position"])


@functools.cache
def city_log() -> CityLog:
    """Generate and import a small synthetic city once per test session."""
    with tempfile.TemporaryDirectory(prefix="ledger-city-") as directory:
        path = Path(directory) / "city.jsonl"
        lines = write_city(path, scale=CITY_SCALE, seed=CITY_SEED)
        database = open_database(f"sqlite:///{Path(directory) / 'city.db'}")
        ledger = open_ledger(database, Path(directory) / "keys")
        summary = import_file(ledger, path)
        assert (summary.accepted, summary.rejected) == (lines, 0)
        with database.reading() as conn:

            def rows(table: sa.Table, *order: str) -> tuple[dict[str, Any], ...]:
                query = sa.select(table).order_by(*(table.c[c] for c in order))
                return tuple(dict(row._mapping) for row in conn.execute(query))

            log = CityLog(
                events=rows(events_table, "position"),
                subjects=rows(event_subjects_table, "position", "kind", "subject_id"),
                keys=rows(idempotency_keys_table, "first_position"),
                claims=rows(claims_table, "kind", "value"),
            )
        database.dispose()
    return log


def head_of(database: Database) -> int:
    with database.reading() as conn:
        return int(
            conn.execute(sa.select(sa.func.max(events_table.c.position))).scalar() or 0
        )


def append_city(database: Database, upto: int | None = None) -> int:
    """Append the city's stored events after the database's head, up to
    position ``upto`` (default: all of them); returns the new head."""
    log = city_log()
    end = log.head if upto is None else min(upto, log.head)
    start = head_of(database)
    events = [e for e in log.events if start < e["position"] <= end]
    subjects = [s for s in log.subjects if start < s["position"] <= end]
    keys = [k for k in log.keys if start < k["last_position"] <= end]
    with database.appending() as conn:
        bulk_insert(conn, events_table, events)
        bulk_insert(conn, event_subjects_table, subjects)
        bulk_insert(conn, idempotency_keys_table, keys)
        if end == log.head:
            bulk_insert(conn, claims_table, log.claims)
    return end


def venues_of(events: Iterable[RecordedEvent]) -> dict[str, str | None]:
    """Each registered venue with its parent."""
    return {
        e.payload["venue_id"]: e.payload["parent_id"]
        for e in events
        if e.topic == "Venue.Registered"
    }


def centre_of(events: Iterable[RecordedEvent]) -> str:
    """The venue without a parent: the city's centre."""
    return next(v for v, parent in venues_of(events).items() if parent is None)


def live_version(database: Database, projection: Projection) -> int:
    """The version of ``projection`` that reads are answered from."""
    with database.reading() as conn:
        live = ProjectionEngine.live_state(conn, projection.name)
    assert live is not None
    return live.version


def project_city_in_pages(
    database: Database, page_size: int
) -> tuple[ProjectionEngine, list[RecordedEvent]]:
    """The small synthetic city, projected in pages of ``page_size``."""
    append_city(database)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.catch_up(page_size=page_size)
    return engine, load_events(database, topics=EVERY_TOPIC)


def project_city_with_an_unkept_version(
    database: Database, projection: Projection, unkept: sa.Table
) -> tuple[ProjectionEngine, int, int]:
    """The city projected as a ledger projected before ``projection`` kept
    figures, then moving on: its live version listed in ``unkept`` (as the
    schema revision that added them lists them) after the first 3,000
    events. Returns the engine, that version and the position it was
    listed at."""
    half = append_city(database, upto=3_000)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.catch_up([VENUE_TREE.name])
    engine.ensure_live_versions()
    with database.reading() as conn:
        live = ProjectionEngine.live_state(conn, projection.name)
    assert live is not None
    with database.writing() as conn:
        conn.execute(unkept.insert(), [{"version": live.version}])
    engine.catch_up()
    append_city(database)
    engine.catch_up()
    return engine, live.version, half


def bulk_insert(
    conn: sa.Connection, table: sa.Table, rows: Sequence[dict[str, Any]]
) -> None:
    """Insert many rows through the driver (COPY on PostgreSQL)."""
    if not rows:
        return
    columns = list(table.c.keys())
    values = [tuple(row[column] for column in columns) for row in rows]
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        if conn.dialect.name == "sqlite":
            marks = ", ".join("?" * len(columns))
            cursor.executemany(
                f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({marks})",
                values,
            )
        else:
            statement = f"COPY {table.name} ({', '.join(columns)}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for value in values:
                    copy.write_row(value)
    finally:
        cursor.close()


def append_raw_event(
    database: Database,
    topic: str,
    payload: dict[str, Any],
    *,
    at: datetime,
) -> int:
    """Store one event directly (bypassing the domain), chained correctly;
    returns its position."""
    with database.appending() as conn:
        head = conn.execute(
            sa.select(events_table.c.position, events_table.c.chain_hash)
            .order_by(events_table.c.position.desc())
            .limit(1)
        ).first()
        position, previous = (head[0], head[1]) if head else (0, GENESIS_HASH)
        recorded_at = utc_text(datetime.now(UTC))
        row: dict[str, Any] = {
            "position": position + 1,
            "stream_id": str(uuid.uuid4()),
            "stream_version": 1,
            "topic": topic,
            "payload": orjson.dumps(
                {
                    "timestamp": {"_type_": "datetime_iso", "_data_": recorded_at},
                    **payload,
                }
            ).decode(),
            "actor_id": "intruder",
            "actor_role": "admin",
            "occurred_at": at.isoformat(),
            "occurred_utc": utc_text(at),
            "recorded_at": recorded_at,
            "source": "cli",
            "idempotency_key": None,
            "correlation_id": uuid.uuid4().hex,
        }
        row["chain_hash"] = chain_hash(previous, chained_values(row))
        conn.execute(events_table.insert(), [row])
    return position + 1


def chained_values(row: Mapping[str, Any] | sa.RowMapping) -> list[Any]:
    """A stored row's values of the chained columns, in hashing order."""
    return [row.get(name) for name in CHAINED_FIELDS]


def assert_chain_intact(database: Database) -> None:
    """Every stored event's chain hash follows from the one before it."""
    previous = GENESIS_HASH
    with database.reading() as conn:
        rows = conn.execute(sa.select(events_table).order_by(events_table.c.position))
        for expected_position, row in enumerate(rows, start=1):
            assert row.position == expected_position
            previous_hash = chain_hash(previous, chained_values(row._mapping))
            assert row.chain_hash == previous_hash, f"chain broken at {row.position}"
            previous = previous_hash


# --- a small hand-built ledger ----------------------------------------------

DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


def served_city() -> list[Submission]:
    """The factories' small city with one activity at S1 (2024-03-01 09:00
    CST, 3 h): V1 served 120 minutes (approved), V2 150 minutes (checked out,
    still pending); order O1 at S1 fulfilled and rated 5, order O2 at P1
    withdrawn."""
    return [
        *small_city(),
        activity("A1", "S1", starts_at=T0, hours=3),
        submission("sign_up", T0 - DAY, activity_id="A1", volunteer_id="V1"),
        submission("sign_up", T0 - DAY, activity_id="A1", volunteer_id="V2"),
        submission(
            "check_in", T0, session_id="S-V1", volunteer_id="V1", activity_id="A1"
        ),
        submission("check_out", T0 + 2 * HOUR, session_id="S-V1"),
        submission("approve_session", T0 + DAY, session_id="S-V1"),
        submission(
            "check_in",
            T0 + 10 * MINUTE,
            session_id="S-V2",
            volunteer_id="V2",
            activity_id="A1",
        ),
        submission("check_out", T0 + 160 * MINUTE, session_id="S-V2"),
        submission(
            "post_order",
            T0,
            order_id="O1",
            kind="wish",
            venue_id="S1",
            category="health",
            description="a wheelchair ramp",
        ),
        submission("dispatch_order", T0 + HOUR, order_id="O1", venue_id="S1"),
        submission("accept_order", T0 + 2 * HOUR, order_id="O1", volunteer_ids=["V1"]),
        submission("fulfil_order", T0 + DAY, order_id="O1"),
        submission(
            "rate",
            T0 + 2 * DAY,
            subject="order",
            subject_id="O1",
            rater_id="R1",
            stars=5,
        ),
        submission(
            "post_order",
            T0,
            order_id="O2",
            kind="service",
            venue_id="P1",
            category="culture",
            description="a reading club",
        ),
        submission("withdraw_order", T0 + HOUR, order_id="O2", reason="moved away"),
    ]


# --- replays and stored figures ---------------------------------------------

Figures = dict[tuple[Any, ...], tuple[int, ...]]


def load_events(
    database: Database,
    upto: int | None = None,
    topics: Collection[str] = EVERY_TOPIC,
) -> list[RecordedEvent]:
    """The events of ``topics`` (default: every topic a projection reads), up
    to ``upto`` (default: the head)."""
    end = head_of(database) if upto is None else upto
    with database.reading() as conn:
        return list(iter_events(conn, upto=end, topics=topics))


def replay(
    projection: Projection, events: Iterable[RecordedEvent], upto: int
) -> Figures:
    """What a fresh replay of the events up to ``upto`` gives, in memory."""
    return projection.replay(
        e for e in events if e.position <= upto and e.topic in projection.topics
    )


def live_figures(
    engine: ProjectionEngine, position: int | None = None
) -> dict[str, Figures]:
    """Every projection's stored figures (as of ``position``, default: where
    its live version stands)."""
    return _read_live(engine, position, Projection.figures)


def live_contributions(engine: ProjectionEngine) -> dict[str, Contributions]:
    """What each event contributes to each key, in every live version."""
    return _read_live(engine, None, Projection.contributions)


def _read_live(
    engine: ProjectionEngine,
    position: int | None,
    read: Callable[[Projection, sa.Connection, int, int], T],
) -> dict[str, T]:
    found: dict[str, T] = {}
    with engine.database.reading() as conn:
        for name, projection in engine.projections.items():
            live = engine.live_version(conn, name)
            assert live is not None, f"{name} has no live version"
            at = live.position if position is None else position
            found[name] = read(projection, conn, live.version, at)
    return found


def version_rows(database: Database) -> list[tuple[str, int, str, int]]:
    t = projection_versions_table.c
    with database.reading() as conn:
        rows = conn.execute(
            sa.select(t.name, t.version, t.state, t.position).order_by(
                t.name, t.version
            )
        )
        return [(str(n), int(v), str(s), int(p)) for n, v, s, p in rows]


def stored_versions(database: Database, projection: Projection) -> set[int]:
    """The versions that still have rows in a projection's tables."""
    found: set[int] = set()
    with database.reading() as conn:
        for table in (projection.entries, *projection.kept_tables):
            found |= {v for (v,) in conn.execute(sa.select(table.c.version).distinct())}
    return found


def assert_only_version_stored(
    database: Database, projection: Projection, version: int
) -> None:
    """The projection's tables hold rows of ``version`` alone: some, when the
    log has events of its topics, none otherwise."""
    has_events = any(e.topic in projection.topics for e in load_events(database))
    assert stored_versions(database, projection) == ({version} if has_events else set())


def assert_every_projection_equals_a_fresh_replay(
    engine: ProjectionEngine, *, at_head: bool = True
) -> None:
    """``verify`` finds nothing, and (by default) every live version stands at
    the head with the figures of a replay of the whole log."""
    results = engine.verify()
    assert {r.name for r in results} == set(engine.projections)
    for result in results:
        assert result.ok, (result.name, result.differences[:5], result.dead_letters)
    if not at_head:
        return
    head = head_of(engine.database)
    events = load_events(engine.database, head)
    with engine.database.reading() as conn:
        for name, projection in engine.projections.items():
            live = engine.live_version(conn, name)
            assert live is not None and live.position == head, (name, live, head)
            stored = projection.figures(conn, live.version, head)
            assert stored == replay(projection, events, head), name


def assert_every_version_is_a_consistent_prefix(engine: ProjectionEngine) -> None:
    """Whatever state each version (live or building) was left in, its figures
    are exactly those of a replay up to the position it records."""
    events = load_events(engine.database)
    with engine.database.reading() as conn:
        for version in engine.versions(conn):
            if version.state not in (LIVE, "building"):
                continue
            projection = engine.projections[version.name]
            stored = projection.figures(conn, version.version, version.position)
            expected = replay(projection, events, version.position)
            assert stored == expected, (version, len(stored), len(expected))


# --- an independent oracle of the CONTRACT figures ----------------------------


def china_date(moment: str) -> str:
    return datetime.fromisoformat(moment).astimezone(CHINA).date().isoformat()


@dataclass
class SessionFact:
    volunteer_id: str
    kind: str
    venue_id: str
    date: str
    minutes: int
    status: str


def session_facts(events: Iterable[RecordedEvent]) -> dict[str, SessionFact]:
    """Each session's final state after ``events`` (no deltas involved)."""
    facts: dict[str, SessionFact] = {}
    for event in events:
        p = event.payload
        if event.topic == "Volunteer.CheckedIn":
            facts[p["session_id"]] = SessionFact(
                p["volunteer_id"], "verified", p["venue_id"], china_date(p["at"]), 0, ""
            )
        elif event.topic == "Volunteer.MakeupHoursRecorded":
            facts[p["session_id"]] = SessionFact(
                p["volunteer_id"],
                "makeup",
                p["venue_id"],
                china_date(p["activity_starts_at"]),
                p["minutes"],
                "",
            )
        elif event.topic in {"Volunteer.CheckedOut", "Volunteer.SessionCorrected"}:
            facts[p["session_id"]].minutes = p["minutes"]
        elif event.topic in {
            "Volunteer.SessionApproved",
            "Volunteer.SessionRejected",
            "Volunteer.SessionVoided",
        }:
            facts[p["session_id"]].status = event.topic.removeprefix(
                "Volunteer.Session"
            )
    return facts


def counted_sessions(events: Iterable[RecordedEvent]) -> list[SessionFact]:
    return [s for s in session_facts(events).values() if s.status == "Approved"]


def expected_volunteer_hours(
    events: Sequence[RecordedEvent], volunteer_id: str
) -> dict[str, Any]:
    mine = [s for s in counted_sessions(events) if s.volunteer_id == volunteer_id]
    verified = sum(s.minutes for s in mine if s.kind == "verified")
    makeup = sum(s.minutes for s in mine if s.kind == "makeup")
    by_year: dict[str, int] = defaultdict(int)
    for s in mine:
        by_year[s.date[:4]] += s.minutes
    total = verified + makeup
    return {
        "verified_minutes": verified,
        "makeup_minutes": makeup,
        "total_minutes": total,
        "sessions": len(mine),
        "by_year": {year: m for year, m in sorted(by_year.items()) if m},
        "stars": sum(total >= hours * 60 for hours in (100, 300, 600, 1000, 1500)),
    }


def expected_subtree(
    events: Iterable[RecordedEvent], venue_id: str, subtree: bool = True
) -> set[str]:
    children: dict[str | None, list[str]] = defaultdict(list)
    for event in events:
        if event.topic == "Venue.Registered":
            children[event.payload["parent_id"]].append(event.payload["venue_id"])
    found, pending = {venue_id}, list(children[venue_id]) if subtree else []
    while pending:
        venue = pending.pop()
        found.add(venue)
        pending.extend(children[venue])
    return found


def _in_months(month: str, from_month: str | None, to_month: str | None) -> bool:
    return (from_month or "0000-01") <= month <= (to_month or "9999-12")


def expected_venue_activity(
    events: Sequence[RecordedEvent],
    venue_id: str,
    from_month: str | None = None,
    to_month: str | None = None,
    *,
    subtree: bool = True,
) -> dict[str, Any]:
    venues = expected_subtree(events, venue_id, subtree)
    activities = sum(
        1
        for e in events
        if e.topic == "Activity.Published"
        and e.payload["venue_id"] in venues
        and _in_months(china_date(e.payload["starts_at"])[:7], from_month, to_month)
    )
    sessions = [
        s
        for s in counted_sessions(events)
        if s.venue_id in venues and _in_months(s.date[:7], from_month, to_month)
    ]
    return {
        "activities": activities,
        "sessions": len(sessions),
        "volunteers": len({s.volunteer_id for s in sessions}),
        "verified_minutes": sum(s.minutes for s in sessions if s.kind == "verified"),
        "makeup_minutes": sum(s.minutes for s in sessions if s.kind == "makeup"),
        "volunteer_minutes": sum(s.minutes for s in sessions),
    }


def expected_fulfilment(
    events: Sequence[RecordedEvent],
    venue_id: str,
    from_month: str | None = None,
    to_month: str | None = None,
    *,
    subtree: bool = True,
    kind: str | None = None,
) -> dict[str, Any]:
    venues = expected_subtree(events, venue_id, subtree)
    orders: dict[str, dict[str, Any]] = {}
    ratings: dict[str, list[int]] = defaultdict(list)
    for event in events:
        p = event.payload
        if event.topic == "Order.Posted":
            orders[event.stream_id] = {
                "venue_id": p["venue_id"],
                "month": china_date(p["at"])[:7],
                "kind": p["kind"],
                "status": "open",
                "posted_at": datetime.fromisoformat(p["at"]),
            }
        elif event.topic in {
            "Order.Fulfilled",
            "Order.Withdrawn",
            "Order.Rejected",
            "Order.Expired",
        }:
            orders[event.stream_id]["status"] = event.topic.removeprefix("Order.")
            orders[event.stream_id]["closed_at"] = datetime.fromisoformat(p["at"])
        elif event.topic == "Order.Rated":
            ratings[event.stream_id].append(p["stars"])
    chosen = {
        stream: order
        for stream, order in orders.items()
        if order["venue_id"] in venues
        and _in_months(order["month"], from_month, to_month)
        and kind in (None, order["kind"])
    }
    statuses = [order["status"] for order in chosen.values()]
    posted, withdrawn = len(statuses), statuses.count("Withdrawn")
    fulfilled = statuses.count("Fulfilled")
    stars = [s for stream in chosen for s in ratings[stream]]
    waits = [
        (order["closed_at"] - order["posted_at"]) // timedelta(minutes=1)
        for order in chosen.values()
        if order["status"] == "Fulfilled"
    ]
    return {
        "posted": posted,
        "withdrawn": withdrawn,
        "fulfilled": fulfilled,
        "open": statuses.count("open"),
        "rate": (
            float(Fraction(fulfilled, posted - withdrawn))
            if posted - withdrawn
            else None
        ),
        "satisfaction": (
            float(Fraction(sum(s >= 4 for s in stars), len(stars))) if stars else None
        ),
        "median_minutes_to_fulfil": statistics.median(waits) if waits else None,
    }


def pick(answer: BaseModel, names: Iterable[str]) -> dict[str, Any]:
    """Some of an answer's fields, as plain values (as its JSON holds them)."""
    fields = answer.model_dump()
    return {name: fields[name] for name in names}


def run_cli(database: Database, *arguments: str) -> Any:
    """Run the ``ledger`` CLI on ``database`` in an English locale (the
    languages: tests/e2e/test_cli_languages.py); returns the click ``Result``."""
    from typer.testing import CliRunner

    from ledger.api.cli.app import app  # imported here: only the CLI tests need it

    keys = KEY_DIRECTORIES.get(database.url)
    environment = {"LANG": "en_US.UTF-8"}
    if keys:
        environment["LEDGER_KEY_DIRECTORY"] = str(keys)
    return CliRunner().invoke(app, ["--db", database.url, *arguments], env=environment)


# --- child processes to kill ---------------------------------------------------


def run_projection_job(url: str, job: str, page_size: int, pages: c_int) -> None:
    """In a child process: run ``catch_up`` or ``rebuild``, counting pages
    (the only writer of ``pages``, which is shared without a lock: a child
    killed while holding one would leave it held)."""
    engine = ProjectionEngine(Database(url), ALL_PROJECTIONS)

    def count_page(_position: int) -> None:
        pages.value += 1

    if job == "catch_up":
        engine.catch_up(page_size=page_size, on_page=count_page)
    else:
        engine.rebuild(page_size=page_size, on_page=count_page)


def run_shared_out_rebuild(url: str, page_size: int, workers: int) -> None:
    """In a child process leading its own process group: a rebuild shared
    out among ``workers`` processes (which join the group)."""
    os.setpgrp()
    engine = ProjectionEngine(Database(url), ALL_PROJECTIONS)
    engine.rebuild(page_size=page_size, workers=workers)


class ProjectionThatDiesInAWorker(VolunteerHoursProjection):
    """volunteer_hours, except that it kills any process but its creator."""

    def __init__(self) -> None:
        self.creator = os.getpid()

    def evolve(self, event: RecordedEvent) -> list[Entry]:
        if os.getpid() != self.creator:
            raise SystemExit(7)
        return super().evolve(event)


def rebuild_in_a_fresh_process(
    database: Database,
    *,
    workers: int,
    page_size: int = DEFAULT_PAGE_SIZE,
    with_a_dying_worker: bool = False,
) -> CatchUpReport | str:
    """A rebuild in a spawned process, as `ledger rebuild` runs (no other
    threads, so it may fork its workers); its report, or its error."""
    context = multiprocessing.get_context("spawn")
    answers = context.SimpleQueue()
    child = context.Process(
        target=_rebuild_and_answer,
        args=(database.url, workers, page_size, with_a_dying_worker, answers),
    )
    child.start()
    assert_finishes(child)
    answer: CatchUpReport | str = answers.get()
    return answer


def assert_finishes(child: BaseProcess, timeout: float = 120.0) -> None:
    """``child`` ends well within ``timeout``; if not, it is killed (with
    its process group, if it leads one) before the test fails."""
    child.join(timeout)
    if child.is_alive() and child.pid is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        child.kill()
        child.join()
    assert child.exitcode == 0, child.exitcode


def _rebuild_and_answer(
    url: str,
    workers: int,
    page_size: int,
    with_a_dying_worker: bool,
    answers: multiprocessing.queues.SimpleQueue[CatchUpReport | str],
) -> None:
    projections = list(ALL_PROJECTIONS)
    if with_a_dying_worker:
        projections = [
            ProjectionThatDiesInAWorker() if p.name == "volunteer_hours" else p
            for p in projections
        ]
    engine = ProjectionEngine(Database(url), projections)
    try:
        answers.put(engine.rebuild(workers=workers, page_size=page_size))
    except RuntimeError as error:
        answers.put(str(error))


def building_progress(database: Database) -> int:
    """The positions the building versions have processed, between them."""
    return sum(p for _, _, state, p in version_rows(database) if state == BUILDING)


def kill_group_during(
    context: SpawnContext,
    database: Database,
    *,
    page_size: int,
    workers: int,
    after_progress: int,
    jitter: float,
    timeout: float = 60.0,
) -> KilledRun:
    """Start a shared-out rebuild and SIGKILL its whole process group (the
    rebuild and its workers, as a crash of the machine would) once the
    building versions have processed ``after_progress`` positions between
    them, plus ``jitter`` seconds."""
    child = context.Process(
        target=run_shared_out_rebuild, args=(database.url, page_size, workers)
    )
    finished = _kill_once(
        child,
        reached=lambda: building_progress(database) >= after_progress,
        jitter=jitter,
        timeout=timeout,
        kill=lambda pid: os.killpg(pid, signal.SIGKILL),
    )
    return KilledRun(building_progress(database), finished)


def _kill_once(
    child: BaseProcess,
    *,
    reached: Callable[[], bool],
    jitter: float,
    timeout: float,
    kill: Callable[[int], None],
) -> bool:
    """Start ``child``; once ``reached()``, wait ``jitter`` seconds more and
    ``kill`` it (unless it has finished: whether it had is returned)."""
    child.start()
    deadline = time.monotonic() + timeout
    while child.is_alive() and not reached():
        assert time.monotonic() < deadline, f"{child.name} made no progress"
        time.sleep(0.0005)
    time.sleep(jitter)
    if child.pid is not None and child.is_alive():
        kill(child.pid)
    child.join(timeout)
    assert child.exitcode in (0, -signal.SIGKILL), child.exitcode
    return child.exitcode == 0


@dataclass(frozen=True)
class KilledRun:
    pages: int  # pages the child had committed when it was told to die
    finished: bool  # it completed before the signal arrived


def kill_during(
    context: SpawnContext,
    url: str,
    job: str,
    *,
    page_size: int,
    after_pages: int,
    jitter: float,
    timeout: float = 60.0,
) -> KilledRun:
    """Start ``job`` in a child process and SIGKILL it once it has reported
    ``after_pages`` pages, plus ``jitter`` seconds (so the signal lands at an
    arbitrary instant inside the next page's transaction, or between)."""
    pages = context.RawValue(c_int, 0)
    child = context.Process(
        target=run_projection_job, args=(url, job, page_size, pages)
    )
    finished = _kill_once(
        child,
        reached=lambda: pages.value >= after_pages,
        jitter=jitter,
        timeout=timeout,
        kill=lambda pid: os.kill(pid, signal.SIGKILL),
    )
    return KilledRun(pages.value, finished)


def recorded_times(database: Database) -> list[tuple[str, int]]:
    """Each distinct recording time, with the last position recorded then."""
    t = events_table.c
    with database.reading() as conn:
        rows = conn.execute(
            sa.select(t.recorded_at, sa.func.max(t.position))
            .group_by(t.recorded_at)
            .order_by(t.recorded_at)
        )
        return [(str(r[0]), int(r[1])) for r in rows]


def parse_recorded(text: str) -> datetime:
    """A stored recording time (``...Z``) as an aware datetime."""
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def chain_hashes(database: Database) -> dict[int, str]:
    """Every stored event's chain hash, by position (and the genesis at 0)."""
    t = events_table.c
    with database.reading() as conn:
        rows = conn.execute(sa.select(t.position, t.chain_hash))
        return {0: GENESIS_HASH, **{int(p): str(h) for p, h in rows}}


def chain_hash_at(database: Database, position: int) -> str:
    if position == 0:
        return GENESIS_HASH
    with database.reading() as conn:
        return str(
            conn.execute(
                sa.select(events_table.c.chain_hash).where(
                    events_table.c.position == position
                )
            ).scalar_one()
        )


ONE_MICROSECOND = timedelta(microseconds=1)
