"""A lock that at most one process holds for one ledger database: the one
projection follower among a server's workers, several servers and ``ledger
project --follow`` runs on the same database.

On PostgreSQL it is a session advisory lock, held by a connection of its
own for as long as it is held (the server releases it if that connection
dies). On SQLite it is an exclusive ``flock`` on a file beside the database
(``ledger.db.<name>.lock``), which the kernel releases when its holder
exits; a database in memory is seen by one process only, so the lock is
always granted there.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from types import TracebackType

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ledger.store.event_store import Database


class RunnerLock:
    """The lock called ``name`` on ``database``: ``try_acquire`` takes it
    without waiting, ``release`` (or leaving the ``with`` block) lets it go."""

    def __init__(self, database: Database, name: str) -> None:
        self.database, self.name = database, name
        self._connection: Connection | None = None
        self._file: int | None = None
        self.held = False

    @property
    def _advisory_key(self) -> int:
        """The lock's name as PostgreSQL's 64-bit advisory lock key."""
        digest = hashlib.sha256(f"ledger:{self.name}".encode()).digest()
        return int.from_bytes(digest[:8], "big", signed=True)

    def lock_file(self) -> str | None:
        """The lock file of a SQLite database file; None otherwise."""
        path = self.database.sqlite_file
        return None if path is None else f"{path}.{self.name}.lock"

    def try_acquire(self) -> bool:
        """Take the lock if no other process holds it; whether this one now
        holds it."""
        if self.held:
            return True
        if not self.database.is_sqlite:
            self.held = self._try_advisory_lock()
        elif (path := self.lock_file()) is None:
            self.held = True
        else:
            self.held = self._try_flock(path)
        return self.held

    def still_held(self) -> bool:
        """Whether the lock is still held: on PostgreSQL, whether the
        connection holding it still answers (if it was lost, the server let
        the lock go, and so does this object)."""
        if self._connection is not None:
            try:
                self._connection.execute(sa.text("SELECT 1"))
            except sa.exc.DBAPIError:
                self._connection.invalidate()
                self._connection = None
                self.held = False
        return self.held

    def _try_advisory_lock(self) -> bool:
        connection = self.database.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT"
        )
        taken = connection.execute(
            sa.text("SELECT pg_try_advisory_lock(:key)"), {"key": self._advisory_key}
        ).scalar_one()
        if taken:
            self._connection = connection
        else:
            connection.close()
        return bool(taken)

    def _try_flock(self, path: str) -> bool:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            return False
        self._file = descriptor
        return True

    def release(self) -> None:
        """Let the lock go, if held."""
        if self._connection is not None:
            try:
                self._connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"),
                    {"key": self._advisory_key},
                )
            finally:
                self._connection.close()
                self._connection = None
        if self._file is not None:
            # Closing the file releases the flock; the file itself stays, so
            # that every process locks the same inode.
            os.close(self._file)
            self._file = None
        self.held = False

    def __enter__(self) -> RunnerLock:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
