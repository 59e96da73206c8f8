"""The projection engine as callers use it: one object that catches up,
follows, rebuilds and verifies a set of projections over one database."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy.engine import Connection

from ledger.engine.catch_up import CatchUp, CatchUpReport
from ledger.engine.events import DEFAULT_PAGE_SIZE, EventReader, read_events
from ledger.engine.projection import Projection, get_projection
from ledger.engine.rebuild import Rebuild, SwitchOverHook
from ledger.engine.tracking import (
    LIVE,
    LiveState,
    ProjectionLag,
    VersionInfo,
    ensure_live_versions,
    get_live_state,
    get_live_states,
    get_live_version,
    list_projection_lags,
    list_versions,
)
from ledger.engine.verify import VERIFY_RANGE, VerificationResult, verify
from ledger.store.event_store import Database
from ledger.store.runner_lock import RunnerLock

# The lock the one follower of a database holds (``ProjectionEngine.follow``).
FOLLOWER_LOCK = "projection-follower"
# How often a waiting follower tries to take over from the one following.
TAKE_OVER_SECONDS = 1.0


class ProjectionEngine:
    """Runs projections over the ledger: catch up, follow, rebuild, verify.

    ``read_events`` reads the pages of events the folds are given (by default
    straight from the stored JSON; see ``EventReader``). ``before_switch_over``
    runs inside every rebuild's switch-over, in its transaction, just before
    the new versions are made live (see ``SwitchOverHook``).
    """

    def __init__(
        self,
        database: Database,
        projections: Sequence[Projection],
        *,
        read_events: EventReader = read_events,
        before_switch_over: SwitchOverHook | None = None,
    ) -> None:
        self.database = database
        self.projections = {projection.name: projection for projection in projections}
        self._read_events = read_events
        self._catching_up = CatchUp(database, self.projections, read_events)
        self._rebuilding = Rebuild(
            database,
            self.projections,
            self._catching_up,
            before_switch_over=before_switch_over,
        )

    def projection(self, name: str) -> Projection:
        return get_projection(self.projections, name)

    # --- versions ------------------------------------------------------

    def versions(self, conn: Connection) -> list[VersionInfo]:
        return list_versions(conn)

    def live_version(self, conn: Connection, name: str) -> VersionInfo | None:
        return get_live_version(conn, name)

    @staticmethod
    def live_state(conn: Connection, name: str) -> LiveState | None:
        """One query, as every read starts with it."""
        return get_live_state(conn, name)

    @staticmethod
    def live_states(conn: Connection, names: Sequence[str]) -> dict[str, LiveState]:
        """Those of several projections, in one query."""
        return get_live_states(conn, names)

    def lags(self, conn: Connection, now: datetime) -> list[ProjectionLag]:
        """How far each projection stands behind the head at ``now``."""
        return list_projection_lags(conn, self.projections.keys(), now)

    def ensure_live_versions(self) -> None:
        """Give every projection a live version (empty, at position 0)."""
        ensure_live_versions(self.database, self.projections.keys())

    def note_earlier_changes(self) -> None:
        """Note where versions whose change notes fall short of their
        position last changed; once per engine."""
        self._catching_up.note_earlier_changes()

    # --- catching up, rebuilding, verifying -------------------------------

    def catch_up(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        state: str = LIVE,
        on_page: Callable[[int], None] | None = None,
    ) -> CatchUpReport:
        """Bring the named projections' ``state`` versions up to the head."""
        return self._catching_up.run(
            names, page_size=page_size, state=state, on_page=on_page
        )

    def follow(
        self,
        *,
        poll_seconds: float = 0.2,
        should_stop: Callable[[], bool] = lambda: False,
        on_report: Callable[[CatchUpReport], None] | None = None,
        on_leading: Callable[[bool], None] | None = None,
    ) -> None:
        """Keep the live projections current until ``should_stop`` says so,
        as the one follower of this database: while another process holds
        the follower's lock (``RunnerLock``), wait, trying every
        ``TAKE_OVER_SECONDS`` to take over; should this one lose the lock
        (its connection lost), stop following and try again. ``on_leading``
        hears True when this one starts following, False when it stops."""
        with RunnerLock(self.database, FOLLOWER_LOCK) as lock:
            leading: bool | None = None
            while not should_stop():
                if lock.try_acquire() != leading:
                    leading = lock.held
                    if on_leading:
                        on_leading(leading)
                if leading:
                    self._catching_up.follow(
                        poll_seconds=poll_seconds,
                        should_stop=lambda: should_stop() or not lock.still_held(),
                        on_report=on_report,
                    )
                else:
                    _pause(TAKE_OVER_SECONDS, poll_seconds, should_stop)

    def rebuild(
        self,
        names: Sequence[str] | None = None,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        on_page: Callable[[int], None] | None = None,
        workers: int = 1,
    ) -> CatchUpReport:
        """Replay from the first event into new versions, then switch over;
        with ``workers`` above 1, shared out among forked processes
        (``Rebuild.run`` says when)."""
        return self._rebuilding.run(
            names, page_size=page_size, on_page=on_page, workers=workers
        )

    def verify(
        self, names: Sequence[str] | None = None, *, range_size: int = VERIFY_RANGE
    ) -> list[VerificationResult]:
        """Compare every live projection with a fresh replay, ``range_size``
        positions at a time."""
        return verify(
            self.database,
            self.projections,
            names,
            reader=self._read_events,
            range_size=range_size,
        )


def _pause(seconds: float, step: float, should_stop: Callable[[], bool]) -> None:
    """Sleep ``seconds`` in steps, ending early once ``should_stop`` says so."""
    deadline = time.monotonic() + seconds
    while not should_stop() and time.monotonic() < deadline:
        time.sleep(step)
