"""The anchor the write benches measure against, in the same run: the
``eventsourcing`` library's own application recorder appending the very
events the ledger stored (same streams, versions, topics, payloads), in
batches of ``ANCHOR_BATCH``, timed alone."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from eventsourcing.persistence import StoredEvent

from ledger.store.event_store import (
    Database,
    events_table,
    normalise_database_url,
    select_rows,
)

ANCHOR_BATCH = 2_000


def fresh_postgres(server_url: str, name: str) -> str:
    """The URL of a new, empty PostgreSQL database ``name`` on the server of
    ``server_url`` (one of that name is dropped first)."""
    url = sa.make_url(normalise_database_url(server_url))
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def library_recorder(url: str) -> Any:
    """The library's application recorder, its table made, on ``url``: a
    SQLite file (any left from an earlier run removed first) or an empty
    PostgreSQL database (``fresh_postgres``)."""
    parts = sa.make_url(normalise_database_url(url))
    if parts.get_backend_name() == "sqlite":
        from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteDatastore

        path = Path(parts.database or "")
        for stale in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            stale.unlink(missing_ok=True)
        recorder: Any = SQLiteApplicationRecorder(SQLiteDatastore(str(path)))
    else:
        from eventsourcing.postgres import (
            PostgresApplicationRecorder,
            PostgresDatastore,
        )

        recorder = PostgresApplicationRecorder(
            PostgresDatastore(
                dbname=parts.database or "",
                host=parts.host or "127.0.0.1",
                port=parts.port or 5432,
                user=parts.username or "",
                password=parts.password or "",
            )
        )
    recorder.create_table()
    return recorder


def append_through_library(
    database: Database, anchor_url: str, after: int = 0, upto: int | None = None
) -> dict[str, Any]:
    """Append the events ``database`` stored at positions ``after`` < p <=
    ``upto`` (all after ``after`` when None) through the library's recorder
    on ``anchor_url``: wall and CPU seconds of the appends alone, events."""
    recorder = library_recorder(anchor_url)
    t = events_table.c
    page = (
        sa.select(t.position, t.stream_id, t.stream_version, t.topic, t.payload)
        .order_by(t.position)
        .limit(ANCHOR_BATCH)
    )
    if upto is not None:
        page = page.where(t.position <= upto)
    seconds = cpu_seconds = 0.0
    events = 0
    while True:
        with database.reading() as conn:
            rows = select_rows(conn, page.where(t.position > after))
        if not rows:
            return {"seconds": seconds, "cpu_seconds": cpu_seconds, "events": events}
        after = rows[-1][0]
        batch = [
            StoredEvent(UUID(stream), version, topic, payload.encode())
            for _, stream, version, topic, payload in rows
        ]
        started, cpu_started = time.perf_counter(), time.process_time()
        recorder.insert_events(batch)
        seconds += time.perf_counter() - started
        cpu_seconds += time.process_time() - cpu_started
        events += len(batch)
