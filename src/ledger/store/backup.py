"""Backups of a ledger: its database, consistent while writers go on
appending, and its key material beside it (docs/operations.md).

A SQLite ledger is copied with SQLite's online backup API in one step: the
copy is the snapshot one read transaction sees, so it ends at a committed
position whatever is being appended meanwhile. A PostgreSQL ledger is
dumped with ``pg_dump`` (one snapshot too), when it is installed. The key
directory (the signing key of checkpoints and certificates) is copied to
``NAME.keys/`` beside a backup ``NAME.EXT``: the place a SQLite ledger
restored as ``NAME.EXT`` looks for it.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from ledger.domain.messages import Message, TranslatedError
from ledger.store.event_store import normalise_database_url, sqlite_database_file

OPERATIONS_DOC = "docs/operations.md"


class BackupError(TranslatedError):
    """A backup could not be made; the message says why, in one line."""


class NothingToBackUpError(BackupError):
    """There is no ledger where the settings point (a mistyped path)."""


@dataclass(frozen=True)
class BackupReport:
    """What a backup holds: where it is, and where its key material went."""

    path: Path
    method: Message  # SQLite's online backup, or pg_dump
    head_position: int | None  # known for a SQLite copy
    keys: Path | None  # the copied key directory, if there was one
    keys_note: Message  # what happened to the key material, for people


def keys_beside(backup: Path) -> Path:
    """Where the key material of ``backup`` (NAME.EXT) goes: NAME.keys/."""
    return backup.with_name(f"{backup.stem}.keys")


def back_up(database_url: str, destination: Path, keys: Path | None) -> BackupReport:
    """Back up the ledger at ``database_url`` to ``destination`` (which must
    not exist yet), and copy the key directory ``keys`` beside it (None: the
    ledger has none: it lives in memory)."""
    destination = destination.expanduser().absolute()
    keys_copy = keys_beside(destination)
    for path in (destination, keys_copy):
        if path.exists():
            raise BackupError(
                "{path} exists already: choose a new backup name", path=path
            )
    url = sa.engine.make_url(normalise_database_url(database_url))
    if url.get_backend_name() == "sqlite":
        head = _back_up_sqlite(database_url, destination)
        method = Message("sqlite online backup")
    else:
        _dump_postgres(url, destination)
        head, method = None, Message("pg_dump")
    copied, note = _copy_keys(keys, keys_copy)
    return BackupReport(destination, method, head, copied, note)


def _back_up_sqlite(database_url: str, destination: Path) -> int:
    """Copy the SQLite ledger in one backup step (one consistent snapshot),
    to a file renamed into place once complete; returns its head position."""
    source_file = sqlite_database_file(database_url)
    if source_file is None:
        raise BackupError("only a SQLite ledger kept in a file can be backed up")
    if not source_file.is_file():
        raise NothingToBackUpError("no ledger at {where}", where=source_file)
    partial = destination.with_name(f".{destination.name}.partial")
    source = sqlite3.connect(source_file, timeout=60)
    try:
        target = sqlite3.connect(partial)
        try:
            source.backup(target)  # pages=-1: every page in one step
            found = target.execute("SELECT max(position) FROM ledger_events")
            head = int(found.fetchone()[0] or 0)
        finally:
            target.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    partial.replace(destination)
    return head


def _dump_postgres(url: sa.URL, destination: Path) -> None:
    """``pg_dump`` the ledger in its custom format (for ``pg_restore``)."""
    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        raise BackupError(
            "pg_dump is not installed here: back up a PostgreSQL ledger as "
            "{document} says",
            document=OPERATIONS_DOC,
        )
    libpq_url = url.set(drivername="postgresql").render_as_string(hide_password=False)
    done = subprocess.run(
        [pg_dump, "--format=custom", "--no-owner", f"--file={destination}", libpq_url],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        destination.unlink(missing_ok=True)
        problem = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise BackupError("pg_dump failed: {reason}", reason=problem[0])


def _copy_keys(keys: Path | None, copy: Path) -> tuple[Path | None, Message]:
    if keys is None:
        return None, Message(
            "no key directory configured (LEDGER_KEY_DIRECTORY): keep the "
            "ledger's key material with this backup yourself"
        )
    if not keys.is_dir():
        return None, Message(
            "no key material yet in {keys}: nothing signed, nothing to copy",
            keys=keys,
        )
    shutil.copytree(keys, copy)  # file modes kept: the private key stays 0600
    copy.chmod(0o700)
    return copy, Message(
        "key material copied from {keys} to {copy}", keys=keys, copy=copy
    )
