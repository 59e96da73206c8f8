"""The schema of release bb41d98, the last made without versions.

Its tables are written out here, frozen, rather than imported from the
code that uses them today: this revision must create the same schema
whatever later revisions change. ``ledger.store.schema`` also compares an
unversioned database with ``schema`` before recording it as this revision.

Revision 0001, the first. Forward only (docs/operations.md).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

schema = sa.MetaData()


def _entries(
    name: str,
    keys: list[sa.Column[str]],
    measures: list[str],
    lookup: list[str],
) -> None:
    """A projection's entries table, as the engine defined them then."""
    sa.Table(
        name,
        schema,
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        *keys,
        *(sa.Column(measure, sa.BigInteger, nullable=False) for measure in measures),
        sa.Index(f"{name}_lookup", "version", *lookup, "position"),
    )


def _text(name: str, length: int, *, nullable: bool = False) -> sa.Column[str]:
    return sa.Column(name, sa.String(length), nullable=nullable)


sa.Table(
    "ledger_events",
    schema,
    sa.Column("position", sa.BigInteger, primary_key=True, autoincrement=False),
    _text("stream_id", 36),
    sa.Column("stream_version", sa.Integer, nullable=False),
    _text("topic", 80),
    sa.Column("payload", sa.Text, nullable=False),
    _text("actor_id", 64),
    _text("actor_role", 40),
    _text("occurred_at", 40),
    _text("occurred_utc", 27),
    _text("recorded_at", 27),
    _text("source", 10),
    _text("idempotency_key", 200, nullable=True),
    _text("correlation_id", 64),
    _text("chain_hash", 64),
    sa.UniqueConstraint(
        "stream_id", "stream_version", name="ledger_events_stream_version"
    ),
    sa.Index("ledger_events_topic", "topic", "position"),
    sa.Index("ledger_events_actor", "actor_id", "position"),
    sa.Index("ledger_events_occurred", "occurred_utc"),
    sa.Index("ledger_events_recorded", "recorded_at"),
)
sa.Table(
    "ledger_event_subjects",
    schema,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("subject_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
)
sa.Table(
    "ledger_idempotency_keys",
    schema,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("first_position", sa.BigInteger, nullable=False),
    sa.Column("last_position", sa.BigInteger, nullable=False),
)
sa.Table(
    "ledger_claims",
    schema,
    sa.Column("kind", sa.String(16), primary_key=True),
    sa.Column("value", sa.String(64), primary_key=True),
    _text("stream_id", 36),
)
sa.Table(
    "ledger_checkpoints",
    schema,
    sa.Column("position", sa.BigInteger, primary_key=True),
    _text("chain_hash", 64),
    _text("signed_at", 27),
    _text("key_id", 64),
    _text("signature", 128),
)
sa.Table(
    "projection_versions",
    schema,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    _text("state", 10),
    sa.Column("position", sa.BigInteger, nullable=False),
    _text("updated_at", 27),
    sa.Index(
        "projection_versions_one_live",
        "name",
        unique=True,
        sqlite_where=sa.text("state = 'live'"),
        postgresql_where=sa.text("state = 'live'"),
    ),
)
sa.Table(
    "projection_dead_letters",
    schema,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("position", sa.BigInteger, primary_key=True),
    _text("topic", 80),
    sa.Column("error", sa.Text, nullable=False),
    _text("recorded_at", 27),
)
sa.Table(
    "projection_changes",
    schema,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("scope", sa.String(64), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)
sa.Table(
    "projection_changes_noted",
    schema,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("upto", sa.BigInteger, nullable=False),
)
_entries(
    "proj_venue_tree_entries",
    [
        _text("venue_id", 64),
        _text("parent_id", 64, nullable=True),
        _text("level", 10),
        _text("name", 500),
    ],
    ["venues"],
    lookup=[],
)
_entries(
    "proj_volunteer_hours_entries",
    [
        _text("volunteer_id", 64),
        _text("session_id", 64),
        _text("kind", 10),
        _text("year", 4),
        _text("category", 16),
        _text("service_date", 10),
    ],
    ["minutes", "sessions"],
    lookup=["volunteer_id"],
)
_entries(
    "proj_venue_activity_entries",
    [
        _text("venue_id", 64),
        _text("month", 7),
        _text("category", 16),
        _text("kind", 10),
        _text("volunteer_id", 64),
    ],
    ["activities", "sessions", "minutes"],
    lookup=["venue_id", "month"],
)
_entries(
    "proj_order_fulfilment_entries",
    [
        _text("venue_id", 64),
        _text("month", 7),
        _text("kind", 10),
        _text("category", 16),
        _text("order_id", 64),
    ],
    [
        "posted",
        "dispatched",
        "accepted",
        "fulfilled",
        "withdrawn",
        "rejected",
        "expired",
        "ratings",
        "stars",
        "satisfied",
        "fulfil_minutes",
    ],
    lookup=["venue_id", "month"],
)
_entries(
    "proj_honours_awards_entries",
    [
        _text("volunteer_id", 64),
        _text("rules", 60),
        _text("cycle", 20),
        _text("benefit", 500),
    ],
    ["star_levels", "points", "benefits"],
    lookup=["rules", "cycle", "volunteer_id"],
)
sa.Table(
    "api_keys",
    schema,
    sa.Column("key_hash", sa.String(64), primary_key=True),
    _text("key_prefix", 12),
    _text("role", 20),
    _text("venue_id", 64, nullable=True),
    _text("volunteer_id", 64, nullable=True),
    _text("created_at", 27),
)


def upgrade() -> None:
    schema.create_all(op.get_bind())
