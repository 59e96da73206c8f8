"""Secrets kept as files in the ledger's key directory (the ID-number
secret, the master key): 32 random bytes written as hex, for their owner
only."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

SECRET_BYTES = 32


def write_secret_file(path: Path) -> None:
    """A new random secret at ``path`` (0600, its directory made 0700),
    written whole under another name and then linked into place: a process
    reading it at the same moment reads one whole secret or another's. A
    file there already is kept (``FileExistsError``)."""
    directory = path.parent
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        directory.chmod(0o700)  # whatever the umask left of it
    descriptor, written = tempfile.mkstemp(dir=directory, prefix=".secret-")
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(os.urandom(SECRET_BYTES).hex() + "\n")
        os.link(written, path)
    finally:
        os.unlink(written)


def read_secret_file(path: Path) -> bytes | None:
    """The secret in ``path``; None when the file does not hold one."""
    try:
        secret = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (UnicodeDecodeError, ValueError):
        return None
    return secret if len(secret) == SECRET_BYTES else None
