"""idempotency keys per caller, bound to content; ledger properties

Revision 0005, after 0004. Events gain ``caller`` and ``fingerprint`` (null
on the events recorded before, whose chain hashes do not cover them: the
chain hashes these fields only when they hold a value). Idempotency keys
move into their callers' key spaces: a key accepted before belongs to the
source that sent it (``import``, ``api``, ``cli``), with no fingerprint to
compare a retry's content with. ``ledger_properties`` records the secret
the ID-number claims are digested with; the claims themselves are made again
with it by the ledger when it is opened (``Ledger.digest_id_numbers_with``).
Forward only: to go back, restore the backup taken before migrating
(docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

KEYS = "ledger_idempotency_keys"
RELEASED_KEYS = f"{KEYS}_0004"


def upgrade() -> None:
    with op.batch_alter_table("ledger_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("caller", sa.String(length=40), nullable=True))
        batch_op.add_column(
            sa.Column("fingerprint", sa.String(length=64), nullable=True)
        )
    op.rename_table(KEYS, RELEASED_KEYS)
    if op.get_bind().dialect.name == "postgresql":  # its key's index keeps its name
        op.execute(
            f"ALTER TABLE {RELEASED_KEYS} RENAME CONSTRAINT {KEYS}_pkey "
            f"TO {RELEASED_KEYS}_pkey"
        )
    op.create_table(
        KEYS,
        sa.Column("caller", sa.String(length=40), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=True),
        sa.Column("first_position", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("caller", "key"),
    )
    op.execute(
        f"INSERT INTO {KEYS} (caller, key, fingerprint, first_position, "
        "last_position) SELECT e.source, k.key, NULL, k.first_position, "
        f"k.last_position FROM {RELEASED_KEYS} k "
        "JOIN ledger_events e ON e.position = k.first_position"
    )
    op.drop_table(RELEASED_KEYS)
    op.create_table(
        "ledger_properties",
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
