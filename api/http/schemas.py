"""Response schemas of the HTTP API (requests are the interchange commands
of ``ledger.application.commands``). They document the JSON of CONTRACT §5 and more."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Cited(BaseModel):
    """The ledger state an answer reflects."""

    position: int = Field(description="The ledger position the answer reflects.")
    chain_hash: str = Field(description="The chain hash at that position.")
    dead_letters: int = Field(
        0, description="Events the projection parked (see the dead-letter policy)."
    )


class CommandAccepted(BaseModel):
    """A recorded command (or, for a retried key, the first answer again)."""

    outcome: Literal["accepted"] = "accepted"
    first_position: int
    last_position: int
    idempotency_key: str | None = None


class VolunteerHours(Cited):
    volunteer_id: str
    verified_minutes: int
    makeup_minutes: int
    total_minutes: int
    sessions: int
    last_service_date: str | None
    by_year: dict[str, int] = Field(
        description='Minutes per year (CST), e.g. {"2022": 600}.'
    )
    by_year_and_kind: dict[str, dict[str, int]]
    by_category: dict[str, int]
    stars: int = Field(
        ge=0, le=5, description="Under the national rule, computed live."
    )


class ActivityFigures(BaseModel):
    activities: int
    sessions: int
    volunteers: int
    verified_minutes: int
    makeup_minutes: int
    volunteer_minutes: int


class VenueRead(Cited):
    """What a venue read was asked, as its answer repeats it."""

    model_config = ConfigDict(populate_by_name=True)

    venue_id: str
    from_month: str | None = Field(None, alias="from")
    to_month: str | None = Field(None, alias="to")
    subtree: bool


class VenueActivity(ActivityFigures, VenueRead):
    venues: int
    by_month: dict[str, ActivityFigures]
    by_category: dict[str, ActivityFigures]


class FulfilmentFigures(BaseModel):
    posted: int
    dispatched: int
    accepted: int
    fulfilled: int
    withdrawn: int
    rejected: int
    expired: int
    open: int
    rate: float | None = Field(
        description="fulfilled ÷ (posted − withdrawn), unrounded."
    )
    median_minutes_to_fulfil: float | None
    ratings: int
    mean_stars: float | None
    satisfaction: float | None = Field(description="Share of order ratings ≥ 4.")


class VenueFulfilment(FulfilmentFigures, VenueRead):
    kind: str | None
    venues: int
    by_month: dict[str, FulfilmentFigures]


class VenueSummary(BaseModel):
    venue_id: str
    name: str
    level: str


class VenueChildren(BaseModel):
    venue_id: str
    children: list[VenueSummary]
    position: int
    chain_hash: str


class Leader(BaseModel):
    volunteer_id: str
    verified_minutes: int
    makeup_minutes: int
    total_minutes: int
    sessions: int
    stars: int


class HoursLeaderboard(Cited):
    leaders: list[Leader]
    volunteers_with_service: int
    volunteers_by_stars: dict[str, int]


class ExplainingEvent(BaseModel):
    """The event that made a contribution, as the chain holds it."""

    position: int
    topic: str
    occurred_at: str
    recorded_at: str
    actor_id: str
    actor_role: str
    chain_hash: str


class Contribution(ExplainingEvent):
    session_id: str
    kind: str
    year: str
    category: str
    service_date: str
    minutes: int
    sessions: int


class HoursExplanation(Cited):
    volunteer_id: str
    figures: dict[str, int]
    contributions: list[Contribution]


class ActivityContribution(ExplainingEvent):
    venue_id: str
    month: str
    category: str
    kind: str = Field(description="verified or makeup; empty for an activity.")
    volunteer_id: str = Field(description="Empty for an activity published.")
    activities: int
    sessions: int
    minutes: int


class ActivityExplanation(VenueRead):
    figures: ActivityFigures
    contributions: list[ActivityContribution] = Field(
        description="Those of this page; all pages, read as_of the first's "
        "position, sum to the figures, and "
        "volunteers are those whose sessions in a month, category and kind "
        "sum above zero."
    )
    next_after: int | None = Field(
        description="Ask again with after=this for the next page; null: none."
    )


class FulfilmentContribution(ExplainingEvent):
    venue_id: str
    month: str
    kind: str
    category: str
    order_id: str
    posted: int
    dispatched: int
    accepted: int
    fulfilled: int
    withdrawn: int
    rejected: int
    expired: int
    ratings: int
    stars: int
    satisfied: int = Field(description="1 for a rating of 4 or 5 stars.")
    fulfil_minutes: int = Field(description="Minutes from posting, when fulfilled.")


class FulfilmentExplanation(VenueRead):
    kind: str | None
    figures: FulfilmentFigures
    contributions: list[FulfilmentContribution] = Field(
        description="Those of this page; all pages, read as_of the first's "
        "position, sum to the counts; rate, "
        "open, mean stars and satisfaction follow from the sums, the median "
        "from each fulfilled order's fulfil_minutes."
    )
    next_after: int | None = Field(
        description="Ask again with after=this for the next page; null: none."
    )


class Actor(BaseModel):
    id: str
    role: str


class AuditEvent(BaseModel):
    position: int
    type: str
    subjects: list[str]
    actor: Actor
    occurred_at: str
    recorded_at: str
    source: str
    correlation_id: str
    idempotency_key: str | None
    payload: dict[str, Any]
    chain_hash: str


class AuditPage(BaseModel):
    events: list[AuditEvent]
    next_after: int | None = Field(description="Pass as `after` for the next page.")
    position: int
    chain_hash: str


class Adjustment(BaseModel):
    from_minutes: int
    to_minutes: int
    by: Actor
    why: str
    at: str
    position: int


class Chapter(BaseModel):
    position: int
    at: str
    recorded_at: str
    what: str
    actor: Actor
    minutes: int | None
    previous_minutes: int | None
    reason: str | None
    fraud: bool | None


class SessionStory(BaseModel):
    session_id: str
    status: str
    original_minutes: int | None
    minutes: int | None
    adjustments: list[Adjustment]
    story: list[Chapter]
    position: int
    chain_hash: str


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
