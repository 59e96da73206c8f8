"""Audit reads for 文明办 auditors: events, explanations, session stories
and verification of the chain, the checkpoints and the projections."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import LedgerDep, ReadsDep, allow, ensure_own_volunteer
from ledger.api.http.problems import PROBLEM_RESPONSES, ProblemError
from ledger.api.http.routes.reads import OrdersQueryDep, VenueQueryDep
from ledger.api.http.schemas import (
    CheckpointCheck,
    DerivedTableCheck,
    ProjectionCheck,
    Verification,
)
from ledger.reads.answers import (
    ActivityExplanation,
    AuditPage,
    FulfilmentExplanation,
    HoursExplanation,
    SessionStory,
)
from ledger.reads.audit import (
    AuditQuery,
    InvalidAuditQueryError,
    find_events,
    parse_subject,
    session_story,
)
from ledger.reads.queries import (
    EXPLAINED_EVENTS,
    MOST_EXPLAINED_EVENTS,
    LedgerReads,
    parse_as_of,
)
from ledger.store.integrity import own_public_key, verify_ledger

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES)

AuditorDep = Annotated[Caller, Depends(allow(Role.AUDITOR))]
AfterQuery = Annotated[int, Query(ge=0, description="Continue after this position.")]
LimitQuery = Annotated[
    int, Query(ge=1, le=MOST_EXPLAINED_EVENTS, description="Events per answer.")
]


def _moment(name: str, text: str | None) -> datetime | None:
    if text is None:
        return None
    moment = parse_as_of(text)
    if not isinstance(moment, datetime):
        raise ProblemError(
            400,
            "invalid_read",
            "Invalid read parameters",
            f"{name} must be a time with a UTC offset",
        )
    return moment


def _position(reads: LedgerReads, as_of: str | None) -> int | None:
    """``as_of`` as a position: a recording time reads the last position
    recorded by then."""
    wanted = parse_as_of(as_of)
    if wanted is None or isinstance(wanted, int):
        return wanted
    with reads.database.reading() as conn:
        return reads.requested_position(conn, wanted)


@router.get("/events")
def list_audit_events(
    reads: ReadsDep,
    caller: AuditorDep,
    subject: Annotated[
        str | None, Query(description="KIND:ID, e.g. volunteer:V001, session:S1")
    ] = None,
    actor: str | None = None,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    since: Annotated[
        str | None, Query(description="Business time from (inclusive).")
    ] = None,
    until: Annotated[str | None, Query(description="Business time before.")] = None,
    recorded_since: str | None = None,
    recorded_until: str | None = None,
    after: Annotated[int, Query(ge=0, description="Continue after this position.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    as_of: Annotated[
        str | None, Query(description="A ledger position, or a recording time.")
    ] = None,
) -> AuditPage:
    """Events by subject, actor, type and period, in ledger order, paged."""
    position = _position(reads, as_of)
    try:
        query = AuditQuery(
            subject=parse_subject(subject) if subject else None,
            actor_id=actor,
            types=tuple(event_type or ()),
            occurred_since=_moment("since", since),
            occurred_until=_moment("until", until),
            recorded_since=_moment("recorded_since", recorded_since),
            recorded_until=_moment("recorded_until", recorded_until),
            after_position=after,
            limit=limit,
            as_of=position,
        )
    except InvalidAuditQueryError as error:
        raise ProblemError(
            400, "invalid_read", "Invalid read parameters", str(error)
        ) from None
    return find_events(
        reads.database, query, reveal_personal_data=caller.sees_personal_data
    )


@router.get("/explain/volunteer-hours/{volunteer_id}")
def explain_volunteer_hours(
    volunteer_id: str,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(Role.AUDITOR, Role.VOLUNTEER))],
    as_of: str | None = None,
) -> HoursExplanation:
    """The events that make up a volunteer's hours; they sum to the figures."""
    ensure_own_volunteer(caller, volunteer_id)
    return reads.explain_volunteer_hours(volunteer_id, parse_as_of(as_of))


@router.get("/explain/venue-activity/{venue_id}")
def explain_venue_activity(
    reads: ReadsDep,
    caller: AuditorDep,
    query: VenueQueryDep,
    after: AfterQuery = 0,
    limit: LimitQuery = EXPLAINED_EVENTS,
) -> ActivityExplanation:
    """The events behind a venue's activity figures, a page at a time
    (``next_after``); all pages read as of the first one's position sum
    to the figures."""
    return reads.explain_venue_activity(query, after=after, limit=limit)


@router.get("/explain/venue-fulfilment/{venue_id}")
def explain_venue_fulfilment(
    reads: ReadsDep,
    caller: AuditorDep,
    query: OrdersQueryDep,
    after: AfterQuery = 0,
    limit: LimitQuery = EXPLAINED_EVENTS,
) -> FulfilmentExplanation:
    """The events behind a venue's order figures, a page at a time
    (``next_after``); all pages read as of the first one's position sum
    to the counts."""
    return reads.explain_venue_fulfilment(query, after=after, limit=limit)


@router.get("/sessions/{session_id}")
def get_session_story(
    session_id: str,
    reads: ReadsDep,
    caller: AuditorDep,
    as_of: Annotated[
        str | None, Query(description="A ledger position, or a recording time.")
    ] = None,
) -> SessionStory:
    """A session's correction history: original, adjustments, who, why."""
    try:
        return session_story(reads.database, session_id, as_of=_position(reads, as_of))
    except LookupError as error:
        raise ProblemError(404, "not_found", "Not found", str(error)) from None


@router.get("/verify")
def get_verification(
    request: Request, ledger: LedgerDep, reads: ReadsDep, caller: AuditorDep
) -> Verification:
    """Check the chain, every checkpoint, the tables derived from the events,
    and every projection against a replay."""
    settings = request.app.state.settings
    public_key = own_public_key(settings.database_url, settings.key_directory)
    audit = verify_ledger(reads.database, public_key, ledger)
    projections = reads.engine.verify()
    return Verification(
        ok=audit.ok and all(p.ok for p in projections),
        position=audit.chain.head_position,
        chain_hash=audit.chain.head_hash,
        chain_ok=audit.chain.ok,
        events_checked=audit.chain.checked,
        first_bad_position=audit.chain.first_bad_position,
        problem=audit.chain.problem,
        checkpoints=[
            CheckpointCheck(position=c.checkpoint.position, ok=c.ok, problem=c.problem)
            for c in audit.checkpoints
        ],
        derived_tables=[
            DerivedTableCheck(table=d.table, ok=d.ok, rows=d.rows, problem=d.problem)
            for d in audit.derived
        ],
        projections=[
            ProjectionCheck(
                name=p.name,
                ok=p.ok,
                position=p.position,
                live_fingerprint=p.live_fingerprint,
                replay_fingerprint=p.replay_fingerprint,
                differences=len(p.differences),
                dead_letters=p.dead_letters,
                refused_unparked=list(p.refused_unparked),
            )
            for p in projections
        ],
    )
