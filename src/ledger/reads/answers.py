"""What the reads answer (CONTRACT §5): typed, immutable, and served as they
are by the CLI (JSON) and the HTTP API (JSON, and its OpenAPI schemas).

An answer's JSON lists its fields in the order they are declared, those of
its bases first, the last-named base first (pydantic's order). Every answer
ends with the ledger position it reflects and the chain hash there; those
read from a projection add the events it parked.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from ledger.projections.order_fulfilment import FulfilmentFigures
from ledger.projections.venue_activity import ActivityFigures
from ledger.projections.volunteer_hours import HoursFigures, HoursTotals

Position = Annotated[int, Field(description="The ledger position the answer reflects.")]
ChainHash = Annotated[str, Field(description="The chain hash at that position.")]
DeadLetters = Annotated[
    int, Field(description="Events the projection parked (see the dead-letter policy).")
]


class Answer(BaseModel):
    """A read's answer, or a part of one (immutable)."""

    model_config = ConfigDict(frozen=True, serialize_by_alias=True, defer_build=True)


class OfVolunteer(Answer):
    """The volunteer an answer is about."""

    volunteer_id: str


class VolunteerHours(HoursFigures, OfVolunteer):
    """A volunteer's approved minutes, by year, kind and category."""

    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class Leader(HoursTotals, OfVolunteer):
    """A volunteer among those with the most approved minutes."""

    stars: int


class Leaderboard(Answer):
    """The volunteers with the most approved minutes, and how many volunteers
    stand at each star level."""

    leaders: list[Leader]
    volunteers_with_service: int
    volunteers_by_stars: dict[str, int] = Field(
        description='Volunteers per star level, "0" to "5".'
    )


class HoursLeaderboard(Leaderboard):
    """The leaderboard as of a position."""

    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class VenueSummary(Answer):
    """A venue as the venue tree names it."""

    venue_id: str
    name: str
    level: str


class VenueChildren(Answer):
    """The venues directly under a venue (under none: the centres)."""

    venue_id: str | None
    children: list[VenueSummary]
    position: Position
    chain_hash: ChainHash


class VenueRead(Answer):
    """What a venue read was asked, as its answer repeats it."""

    venue_id: str
    from_month: str | None = Field(serialization_alias="from")
    to_month: str | None = Field(serialization_alias="to")
    subtree: bool


class OrdersRead(VenueRead):
    """What a venue read of orders was asked."""

    kind: str | None = Field(description="wish or service; null: both.")


class CoveredVenues(Answer):
    """How many venues a venue read rolled up."""

    venues: int = Field(description="The venues the figures cover.")


class VenueActivity(ActivityFigures, CoveredVenues, VenueRead):
    """Activities, sessions, distinct volunteers and minutes at a venue."""

    by_month: dict[str, ActivityFigures]
    by_category: dict[str, ActivityFigures]
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class VenueFulfilment(FulfilmentFigures, CoveredVenues, OrdersRead):
    """The five orders at a venue: counts, 实现率 and 满意度."""

    by_month: dict[str, FulfilmentFigures]
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class ExplainingEvent(Answer):
    """The event that made a contribution, as the chain holds it."""

    position: int
    topic: str
    occurred_at: str
    recorded_at: str
    actor_id: str
    actor_role: str
    chain_hash: str


class HoursContribution(ExplainingEvent):
    """What one event added to a volunteer's figures (a ``volunteer_hours``
    entry)."""

    volunteer_id: str
    session_id: str
    kind: str
    year: str
    category: str
    service_date: str
    minutes: int
    sessions: int


class HoursExplanation(OfVolunteer):
    """The events behind a volunteer's figures; they sum to the figures."""

    figures: HoursTotals
    contributions: list[HoursContribution]
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class ActivityContribution(ExplainingEvent):
    """What one event added to a venue's activity (a ``venue_activity``
    entry)."""

    venue_id: str
    month: str
    category: str
    kind: str = Field(description="verified or makeup; empty for an activity.")
    volunteer_id: str = Field(description="Empty for an activity published.")
    activities: int
    sessions: int
    minutes: int


NEXT_AFTER = (
    "Ask again with after=this (and as_of the first page's position) for the "
    "next page; null: none."
)


class ActivityExplanation(VenueRead):
    """The events behind a venue's activity figures, a page at a time."""

    figures: ActivityFigures
    contributions: list[ActivityContribution] = Field(
        description="Those of this page; all pages, read as_of the first's "
        "position, sum to the figures, and volunteers are those whose "
        "sessions in a month, category and kind sum above zero."
    )
    next_after: int | None = Field(description=NEXT_AFTER)
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class FulfilmentContribution(ExplainingEvent):
    """What one event added to a venue's orders (an ``order_fulfilment``
    entry)."""

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


class FulfilmentExplanation(OrdersRead):
    """The events behind a venue's order figures, a page at a time."""

    figures: FulfilmentFigures
    contributions: list[FulfilmentContribution] = Field(
        description="Those of this page; all pages, read as_of the first's "
        "position, sum to the counts; rate, open, mean stars and satisfaction "
        "follow from the sums, the median from each fulfilled order's "
        "fulfil_minutes."
    )
    next_after: int | None = Field(description=NEXT_AFTER)
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


class Actor(Answer):
    """Who recorded an event, in what role."""

    id: str
    role: str


class AuditEvent(Answer):
    """An event as the ledger holds it, personal data masked unless asked."""

    position: int
    type: str = Field(description="The event's topic, e.g. Order.Posted.")
    subjects: list[str] = Field(description="KIND:ID of each subject.")
    actor: Actor
    occurred_at: str
    recorded_at: str
    source: str
    correlation_id: str
    idempotency_key: str | None
    payload: dict[str, Any]
    chain_hash: str


class AuditPage(Answer):
    """A page of the events an audit query selects, in ledger order."""

    events: list[AuditEvent]
    next_after: int | None = Field(description="Pass as `after` for the next page.")
    position: Position
    chain_hash: ChainHash


class PersonalDataRead(Answer):
    """That someone was shown volunteers' full ID and phone numbers: who,
    when, whose and through which read (a ``Disclosure`` event)."""

    position: int
    reader: Actor
    read_at: str = Field(description="When the ledger recorded the read (UTC).")
    volunteer_ids: list[str] = Field(description="Whose personal data was shown.")
    read: str = Field(description="What showed it, e.g. audit events.")
    chain_hash: str


class PersonalDataReadsPage(Answer):
    """A page of the recorded reads of personal data, in ledger order."""

    reads: list[PersonalDataRead]
    next_after: int | None = Field(description="Pass as `after` for the next page.")
    position: Position
    chain_hash: ChainHash


class Adjustment(Answer):
    """A correction of a session's minutes: by whom, why and when."""

    from_minutes: int
    to_minutes: int
    by: Actor
    why: str
    at: str
    position: int


class Chapter(Answer):
    """One event of a session's story."""

    position: int
    at: str
    recorded_at: str
    what: str = Field(description="e.g. checked in, corrected, approved.")
    actor: Actor
    minutes: int | None
    previous_minutes: int | None
    reason: str | None
    fraud: bool | None


class SessionStory(Answer):
    """A session's history: the original minutes, every adjustment with who
    made it and why, and where it stands."""

    session_id: str
    status: str
    original_minutes: int | None
    minutes: int | None
    adjustments: list[Adjustment]
    story: list[Chapter]
    position: Position
    chain_hash: ChainHash


class CalendarActivity(Answer):
    """A published activity on the monthly calendar: what, when, how many
    places are left."""

    activity_id: str
    title: str
    category: str = Field(
        description="The 5+X platform: theory, education, culture, science, "
        "health or other."
    )
    category_name: str = Field(description="The platform's name, e.g. 文化服务.")
    date: str = Field(description="The day it starts, YYYY-MM-DD (China time).")
    starts_at: str = Field(description="ISO 8601 in China Standard Time (+08:00).")
    ends_at: str = Field(description="ISO 8601 in China Standard Time (+08:00).")
    capacity: int
    signed_up: int = Field(description="Current sign-ups (cancelled ones left out).")
    places_left: int = Field(description="Capacity minus sign-ups.")


class CalendarVenue(Answer):
    """A venue's activities in the month, by date and time."""

    venue_id: str
    name: str
    level: str
    place: str = Field(
        description="Where it is: its venues' names from the town down, "
        "e.g. 玉山镇 / 城北社区 / 城北社区新时代文明实践站."
    )
    activities: list[CalendarActivity]


class ActivityCalendar(Answer):
    """The month's published activities of every venue in a subtree (or the
    whole city), by venue and date (每月活动汇总). No personal data."""

    month: str
    venue_id: str | None = Field(description="The subtree's venue; null: the city.")
    activities: int
    capacity: int = Field(description="Places offered in all.")
    places_left: int
    venues: list[CalendarVenue] = Field(
        description="The venues with activities that month, in the tree's "
        "order (a venue before those under it)."
    )
    position: Position
    chain_hash: ChainHash
    dead_letters: DeadLetters


# Every answer: each cites the position it reflects and the chain hash there.
CitedAnswer = (
    VolunteerHours
    | HoursLeaderboard
    | VenueChildren
    | VenueActivity
    | VenueFulfilment
    | HoursExplanation
    | ActivityExplanation
    | FulfilmentExplanation
    | AuditPage
    | SessionStory
    | ActivityCalendar
)
