"""Rebuilding projections without downtime, in parallel processes.

A rebuild replays from the first event into a new version beside the live
one and switches over in one transaction once it has caught up, so reads
never see an empty or half-built projection. The building versions are
shared out among forked processes; the switch-over and the clearing of the
retired versions are done by the rebuild itself.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.queues
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.engine.catch_up import CatchUp, CatchUpReport, EventPage, ProcessedPage
from ledger.engine.events import DEFAULT_PAGE_SIZE
from ledger.engine.projection import Projection, get_projection
from ledger.engine.tracking import (
    BUILDING,
    LIVE,
    RETIRED,
    changing_versions,
    dead_letters_table,
    ensure_live_versions,
    insert_version,
    list_versions,
    lock_versions,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.store.event_store import Database, events_table, utc_text

# Rebuild processes worth running: one more than the cores, as projections
# are few and unequal (measured in docs/benchmarks.md).
REBUILD_WORKERS = (os.cpu_count() or 1) + 1


class SwitchOverHook(Protocol):
    """Work done inside a rebuild's switch-over, in its transaction: the
    tracking rows of the projections it switches are locked and their new
    versions caught up to the head, and are made live right after the hook
    returns. What the hook writes commits with the switch-over (a record of
    it, say); if the hook raises, the switch-over is rolled back and the
    rebuild fails, to resume from where it stood when run again."""

    def __call__(self, conn: Connection, /) -> None: ...


class Rebuild:
    """Rebuilds projections into new versions beside the live ones, then
    switches over to them atomically and clears the retired versions."""

    def __init__(
        self,
        database: Database,
        projections: Mapping[str, Projection],
        catch_up: CatchUp,
        *,
        before_switch_over: SwitchOverHook | None = None,
    ) -> None:
        self.database = database
        self.projections = projections
        self.catch_up = catch_up
        self.before_switch_over = before_switch_over

    def run(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        on_page: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> CatchUpReport:
        """Replay from the first event into new versions, then switch over.

        With ``workers`` above 1 the projections are shared out among that
        many forked processes, each catching its share up on its own (a page
        is folded outside the write lock, so they overlap), unless this
        process runs other threads; ``on_page`` is then not available. A
        rebuild that was interrupted is resumed from where it stopped.
        """
        selected = list(names or self.projections)
        ensure_live_versions(self.database, self.projections.keys())
        with changing_versions(self.database) as conn:
            building = {v.name for v in list_versions(conn) if v.state == BUILDING}
            for name in selected:
                if name not in building:
                    insert_version(conn, name, BUILDING)
        if on_page is not None and workers > 1:
            raise ValueError("on_page needs a rebuild in one process")
        shares = self._share_out(selected, workers) if workers > 1 else [selected]
        if len(shares) > 1:
            report = self._catch_up_in_processes(shares, page_size)
        else:
            report = self.catch_up.run(
                selected, page_size=page_size, state=BUILDING, on_page=on_page
            )
        self._switch_over(selected, page_size)
        self._drop_retired(selected)
        return report

    def _share_out(self, names: Sequence[str], workers: int) -> list[list[str]]:
        """The projections in at most ``workers`` shares of about equal work
        (the events each reads), the heaviest placed first."""
        if (
            "fork" not in multiprocessing.get_all_start_methods()
            or threading.active_count() > 1
        ):
            # No cheap way to share the engine out; and a fork of a process
            # running other threads could copy a lock one of them holds (the
            # HTTP server, say), so such a caller rebuilds in its own process.
            return [list(names)]
        e = events_table.c
        with self.database.reading() as conn:
            counted = conn.execute(
                sa.select(e.topic, sa.func.count()).group_by(e.topic)
            )
            by_topic = {topic: int(count) for topic, count in counted}
        work = {
            name: sum(
                by_topic.get(topic, 0)
                for topic in get_projection(self.projections, name).topics
            )
            for name in names
        }
        shares: list[list[str]] = [[] for _ in range(min(workers, len(names)))]
        loads = [0] * len(shares)
        for name in sorted(names, key=lambda n: (-work[n], n)):
            lightest = loads.index(min(loads))
            shares[lightest].append(name)
            loads[lightest] += work[name]
        return [share for share in shares if share]

    def _catch_up_in_processes(
        self, shares: Sequence[Sequence[str]], page_size: int
    ) -> CatchUpReport:
        """Catch each share's building versions up in its own process."""
        started = time.perf_counter()
        context = multiprocessing.get_context("fork")
        reports = context.SimpleQueue()
        processes = [
            context.Process(
                target=self._catch_up_share,
                args=(share, page_size, reports, os.getpid()),
                name=f"rebuild {', '.join(share)}",
            )
            for share in shares
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
        failed = [p.name for p in processes if p.exitcode != 0]
        if failed:
            raise RuntimeError(
                f"rebuild worker failed ({'; '.join(failed)}); "
                "run the rebuild again to resume it"
            )
        report = CatchUpReport(processes=len(processes))
        while not reports.empty():
            share_report = reports.get()
            for mine, theirs in (
                (report.events, share_report.events),
                (report.entries, share_report.entries),
                (report.dead_letters, share_report.dead_letters),
            ):
                mine.update(theirs)
            report.position = max(report.position, share_report.position)
        report.seconds = time.perf_counter() - started
        return report

    def _catch_up_share(
        self,
        share: Sequence[str],
        page_size: int,
        reports: multiprocessing.queues.SimpleQueue[CatchUpReport],
        parent: int,
    ) -> None:
        # A forked child must not use the parent's pooled connections.
        self.database.engine.dispose(close=False)

        def stop_if_orphaned(_position: int) -> None:
            # The rebuild that started this share died: stop after the page
            # (what is committed stays; running the rebuild again resumes).
            if os.getppid() != parent:
                raise SystemExit(1)

        reports.put(
            self.catch_up.run(
                share, page_size=page_size, state=BUILDING, on_page=stop_if_orphaned
            )
        )

    def _switch_over(self, names: Sequence[str], page_size: int) -> None:
        """Catch the new versions up to the head and make them live, atomically."""
        while True:
            with self.database.writing(durable=False) as conn:
                # The live versions too, before the head is read: a follower
                # moving one past that head meanwhile would see it retired for
                # a version standing behind it, and reads go back in time.
                locked = lock_versions(conn, names, (LIVE, BUILDING))
                page = self.catch_up.read_page(
                    conn, names, BUILDING, page_size, lock=True
                )
                if isinstance(page, EventPage):
                    folded = self.catch_up.fold_page(page)
                    self.catch_up.commit_page(conn, page, folded, CatchUpReport())
                    page = ProcessedPage(page.end, page.end >= page.head)
                if page.done:
                    if self.before_switch_over is not None:
                        self.before_switch_over(conn)
                    self._make_live(conn, locked, page.end)
            if page.done:
                return

    def _make_live(
        self, conn: Connection, locked: Sequence[tuple[str, int]], reached: int
    ) -> None:
        """Make live each building version this switch-over locked that has
        reached the head it read, retiring its projection's live version. A
        building version another rebuild inserted since the locks were taken
        is left alone: it has yet to be caught up. (A rebuild that finds its
        version switched over already, by an overlapping one, changes
        nothing.)"""
        t = projection_versions_table.c
        mine = sa.tuple_(t.name, t.version).in_(locked)
        caught_up = conn.execute(
            sa.select(t.name, t.version)
            .where(mine, t.state == BUILDING, t.position >= reached)
            .order_by(t.name, t.version)
        )
        # One a projection, the latest (a rebuild makes none while one builds).
        latest: dict[str, int] = {name: version for name, version in caught_up}
        built = list(latest.items())
        if not built:
            return
        conn.execute(
            projection_versions_table.update()
            .where(mine, t.name.in_([name for name, _ in built]), t.state == LIVE)
            .values(state=RETIRED)
        )
        conn.execute(
            projection_versions_table.update()
            .where(sa.tuple_(t.name, t.version).in_(built))
            .values(state=LIVE, updated_at=utc_text(datetime.now(UTC)))
        )

    def _drop_retired(self, names: Sequence[str]) -> None:
        t = projection_versions_table.c
        with self.database.writing(durable=False) as conn:
            # Locked first: a runner that read a page before the switch-over
            # may still be waiting on these rows.
            for name, version in lock_versions(conn, names, (RETIRED,)):
                self.projections[name].drop_version(conn, version)
                for table in (
                    dead_letters_table,
                    projection_changes_table,
                    projection_changes_noted_table,
                ):
                    conn.execute(
                        table.delete().where(
                            table.c.name == name, table.c.version == version
                        )
                    )
                conn.execute(
                    projection_versions_table.delete().where(
                        t.name == name, t.version == version
                    )
                )
