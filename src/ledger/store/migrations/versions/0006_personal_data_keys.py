"""personal data keys

Revision 0006, after 0005. ``ledger_data_keys`` holds each person's data
key, wrapped by the ledger's master key: the personal fields of the events
recorded from now on are sealed with it (``ledger.store.personal_data``).
Events recorded before keep their plaintext payloads, which every reader
still takes as they are; docs/personal-data.md says how to move such a
ledger's personal data under keys. Forward only: to go back, restore the
backup taken before migrating (docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table(
        "ledger_data_keys",
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("master_key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.String(length=27), nullable=False),
        sa.PrimaryKeyConstraint("subject_id"),
    )
