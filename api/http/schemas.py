"""Response schemas of the HTTP API beyond the reads' answers, which routes
serve as they are (``ledger.reads.answers``, ``ledger.reads.audit``);
requests are the interchange commands of ``ledger.application.commands``."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class CommandAccepted(BaseModel):
    """A recorded command (or, for a retried key, the first answer again);
    ``unchanged`` (200): carried out with nothing left to change, so nothing
    was written (a second ``forget_volunteer``)."""

    outcome: Literal["accepted", "unchanged"] = "accepted"
    first_position: int | None = Field(
        description="The first position written; null when unchanged."
    )
    last_position: int | None = Field(
        description="The last position written; null when unchanged."
    )
    idempotency_key: str | None = None


class ProjectionCheck(BaseModel):
    name: str
    ok: bool
    position: int
    live_fingerprint: str
    replay_fingerprint: str
    differences: int = Field(
        description="Contributions (event, key) in which live and replay differ."
    )
    dead_letters: int
    refused_unparked: list[int] = Field(
        description="Positions of events a replay refuses that were not parked."
    )


class CheckpointCheck(BaseModel):
    position: int
    ok: bool
    problem: str | None


class DerivedTableCheck(BaseModel):
    table: str
    ok: bool
    rows: int = Field(description="The rows the events give.")
    problem: str | None = Field(description="The first difference.")


class Verification(BaseModel):
    ok: bool
    position: int = Field(description="The ledger head that was verified.")
    chain_hash: str
    chain_ok: bool
    events_checked: int
    first_bad_position: int | None
    problem: str | None
    checkpoints: list[CheckpointCheck]
    derived_tables: list[DerivedTableCheck] = Field(
        description="Subjects, claims and idempotency keys, derived again from "
        "the events."
    )
    projections: list[ProjectionCheck]
