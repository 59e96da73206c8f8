"""Audit reads for 文明办 auditors: events, explanations, session stories
and verification of the chain, the checkpoints and the projections."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import LedgerDep, ReadsDep, allow, ensure_own_volunteer
from ledger.api.http.problems import PROBLEM_RESPONSES, ProblemError
from ledger.api.http.routes.reads import (
    AsOfQuery,
    OrdersQueryDep,
    VenueQueryDep,
    read_parameter,
)
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
    PersonalDataReadsPage,
    SessionStory,
)
from ledger.reads.audit import (
    AuditQuery,
    InvalidAuditQueryError,
    find_events,
    find_personal_data_reads,
    parse_subject,
    session_story,
)
from ledger.reads.bounds import EXPLAINED_EVENTS, LAST_POSITION, MOST_EXPLAINED_EVENTS
from ledger.reads.queries import (
    AsOf,
    LedgerReads,
    parse_read_time,
)
from ledger.services.disclosures import Reader, record_disclosure, volunteers_shown
from ledger.store.integrity import (
    own_public_key,
    record_verification,
    verify_ledger,
)

router = APIRouter(prefix="/audit", tags=["audit"], responses=PROBLEM_RESPONSES)

AuditorDep = Annotated[Caller, Depends(allow(Role.AUDITOR))]
AfterQuery = Annotated[
    int, Query(ge=0, le=LAST_POSITION, description="Continue after this position.")
]
LimitQuery = Annotated[
    int, Query(ge=1, le=MOST_EXPLAINED_EVENTS, description="Events per answer.")
]


SinceQuery = Annotated[
    datetime | None,
    read_parameter("since", parse_read_time),
    Query(description="Business time from (inclusive)."),
]
UntilQuery = Annotated[
    datetime | None,
    read_parameter("until", parse_read_time),
    Query(description="Business time before."),
]
RecordedSinceQuery = Annotated[
    datetime | None,
    read_parameter("recorded_since", parse_read_time),
    Query(description="Recording time from."),
]
RecordedUntilQuery = Annotated[
    datetime | None,
    read_parameter("recorded_until", parse_read_time),
    Query(description="Recording time before."),
]


def _position(reads: LedgerReads, wanted: AsOf) -> int | None:
    """``as_of`` as a position: a recording time reads the last position
    recorded by then."""
    if wanted is None or isinstance(wanted, int):
        return wanted
    with reads.database.reading() as conn:
        return reads.requested_position(conn, wanted)


@router.get("/events")
def list_audit_events(
    reads: ReadsDep,
    ledger: LedgerDep,
    caller: AuditorDep,
    subject: Annotated[
        str | None, Query(description="KIND:ID, e.g. volunteer:V001, session:S1")
    ] = None,
    actor: str | None = None,
    event_type: Annotated[list[str] | None, Query(alias="type")] = None,
    since: SinceQuery = None,
    until: UntilQuery = None,
    recorded_since: RecordedSinceQuery = None,
    recorded_until: RecordedUntilQuery = None,
    after: AfterQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    as_of: AsOfQuery = None,
) -> AuditPage:
    """Events by subject, actor, type and period, in ledger order, paged (an
    admin's read of full ID and phone numbers is recorded first)."""
    position = _position(reads, as_of)
    try:
        query = AuditQuery(
            subject=parse_subject(subject) if subject else None,
            actor_id=actor,
            types=tuple(event_type or ()),
            occurred_since=since,
            occurred_until=until,
            recorded_since=recorded_since,
            recorded_until=recorded_until,
            after_position=after,
            limit=limit,
            as_of=position,
        )
    except InvalidAuditQueryError as error:
        raise ProblemError(
            400, "invalid_read", "Invalid read parameters", error.message
        ) from None
    page = find_events(
        reads.database,
        query,
        reveal_personal_data=caller.sees_personal_data,
        vault=reads.vault,
    )
    if caller.sees_personal_data:
        reader = Reader(
            caller.key_space, caller.role.value, source="api", caller=caller.key_space
        )
        record_disclosure(ledger, reader, volunteers_shown(page.events), "audit events")
    return page


@router.get("/personal-data-reads")
def list_personal_data_reads(
    reads: ReadsDep,
    caller: AuditorDep,
    volunteer: Annotated[
        str | None, Query(description="Only reads of this volunteer's data.")
    ] = None,
    reader: Annotated[
        str | None, Query(description="Only reads by this actor.")
    ] = None,
    after: AfterQuery = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    as_of: AsOfQuery = None,
) -> PersonalDataReadsPage:
    """Who was shown whose full ID and phone numbers, and when, paged."""
    return find_personal_data_reads(
        reads.database,
        volunteer_id=volunteer,
        reader_id=reader,
        after_position=after,
        limit=limit,
        as_of=_position(reads, as_of),
    )


@router.get("/explain/volunteer-hours/{volunteer_id}")
def explain_volunteer_hours(
    volunteer_id: str,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(Role.AUDITOR, Role.VOLUNTEER))],
    as_of: AsOfQuery = None,
) -> HoursExplanation:
    """The events that make up a volunteer's hours; they sum to the figures."""
    ensure_own_volunteer(caller, volunteer_id)
    return reads.explain_volunteer_hours(volunteer_id, as_of)


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
    as_of: AsOfQuery = None,
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
    ok = audit.ok and all(p.ok for p in projections)
    record_verification(reads.database, audit.chain.head_position, ok)
    return Verification(
        ok=ok,
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
                differences=p.difference_count,
                dead_letters=p.dead_letters,
                refused_unparked=list(p.refused_unparked),
            )
            for p in projections
        ],
    )
