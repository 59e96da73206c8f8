"""The projection follower a server runs beside its answers, so that a write
is reflected in reads within a second without ``ledger project``.

Every worker of every server starts one (a thread); ``ProjectionEngine.follow``
lets one process at a time follow (the lock it holds, ``RunnerLock``) and
makes the others wait to take over should it stop. The thread folds events
between answers; a page of events takes milliseconds, and a large catch-up
(a ledger imported while no server ran) slows that worker's answers until it
is done, which ``/readyz`` reports as lag.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ledger.api.http.observability import FOLLOWERS
from ledger.engine import ProjectionEngine

LOG = logging.getLogger("ledger.follower")
# After the database failed the follower (a restart, say), wait this long
# before following again.
RETRY_SECONDS = 5.0


class ServerFollower:
    """Follows the projections on a thread of its own until stopped."""

    def __init__(self, engine: ProjectionEngine) -> None:
        self.engine = engine
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="projection-follower", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop following and let the lock go (another process takes over)."""
        self._stopping.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.engine.follow(
                    should_stop=self._stopping.is_set, on_leading=self._leading
                )
            except Exception:
                # Answers go on from the projections as they stand; the lag
                # grows and /readyz says so until following resumes.
                LOG.exception("the projection follower stopped; retrying")
                self._stopping.wait(RETRY_SECONDS)
            finally:
                self._leading(False)

    @staticmethod
    def _leading(leading: bool) -> None:
        FOLLOWERS.set(int(leading))


@asynccontextmanager
async def following_projections(app: FastAPI) -> AsyncIterator[None]:
    """The lifespan of a served app: its follower runs while it serves."""
    follower = ServerFollower(app.state.reads.engine)
    follower.start()
    try:
        yield
    finally:
        await asyncio.to_thread(follower.stop)
