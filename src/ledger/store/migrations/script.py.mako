"""${message}

Revision ${up_revision}, after ${down_revision | comma,n}; written ${create_date}.
Forward only: to go back, restore the backup taken before migrating
(docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
${imports if imports else ""}
revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}
