"""Projection reads for dashboards (CONTRACT §5): volunteer hours, venue
activity and fulfilment, the venue tree, leaderboards.

Every read takes ``as_of`` and returns the position and chain hash it
reflects, with an ETag: a client that sends it back in ``If-None-Match``
gets 304 while nothing it reads has changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import (
    ReadsDep,
    allow,
    ensure_own_volunteer,
    ensure_venue_in_scope,
)
from ledger.api.http.problems import PROBLEM_RESPONSES
from ledger.reads.answers import (
    HoursLeaderboard,
    VenueActivity,
    VenueChildren,
    VenueFulfilment,
    VolunteerHours,
)
from ledger.reads.queries import MONTH, VenueQuery, parse_as_of

router = APIRouter(tags=["reads"], responses=PROBLEM_RESPONSES)

AsOfQuery = Annotated[
    str | None,
    Query(
        description="A ledger position, or a recording time with a UTC offset "
        "(what the ledger knew then). Default: the latest state."
    ),
]
MonthQuery = Annotated[
    str | None,
    Query(pattern=MONTH.pattern, description="YYYY-MM, inclusive"),
]
SubtreeQuery = Annotated[
    bool, Query(description="Include the venue's descendants (default true).")
]
KindQuery = Annotated[
    str | None, Query(pattern="^(wish|service)$", description="Default: both.")
]


async def venue_query(
    venue_id: str,
    from_month: Annotated[MonthQuery, Query(alias="from")] = None,
    to_month: Annotated[MonthQuery, Query(alias="to")] = None,
    subtree: SubtreeQuery = True,
    as_of: AsOfQuery = None,
) -> VenueQuery:
    """The venue read a request asks for."""
    return VenueQuery(venue_id, from_month, to_month, subtree, as_of=parse_as_of(as_of))


async def orders_query(
    query: Annotated[VenueQuery, Depends(venue_query)], kind: KindQuery = None
) -> VenueQuery:
    """The venue read of orders a request asks for, of one kind or both."""
    return replace(query, kind=kind)


VenueQueryDep = Annotated[VenueQuery, Depends(venue_query)]
OrdersQueryDep = Annotated[VenueQuery, Depends(orders_query)]

VENUE_READERS = (Role.AUDITOR, Role.DISPATCHER, Role.DASHBOARD, Role.VENUE_STAFF)
# City-wide reads: no venue_staff key, whose scope is one subtree.
CITY_READERS = (Role.AUDITOR, Role.DISPATCHER, Role.DASHBOARD)
# A volunteer's hours span venues: no venue_staff key reads them.
HOURS_READERS = (Role.AUDITOR, Role.DISPATCHER, Role.VOLUNTEER)
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {304: {"description": "Not modified"}}

EtaggedAnswer = VolunteerHours | VenueActivity | VenueFulfilment | HoursLeaderboard


def etagged(request: Request, answer: EtaggedAnswer) -> Response:
    """Answer 304 when the client already holds this exact answer; otherwise
    send it as it is (FastAPI would validate it against its model again
    first, which costs more than a cached read)."""
    tag = hashlib.sha256(
        f"{request.url.path}?{request.url.query}|{answer.position}|"
        f"{answer.chain_hash}".encode()
    ).hexdigest()[:32]
    etag = f'W/"{tag}"'
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        answer.model_dump_json(),
        media_type="application/json",
        headers={"ETag": etag},
    )


@router.get(
    "/volunteers/{volunteer_id}/hours",
    response_model=VolunteerHours,
    responses=NOT_MODIFIED,
)
async def get_volunteer_hours(
    volunteer_id: str,
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*HOURS_READERS))],
    as_of: AsOfQuery = None,
) -> Response:
    """A volunteer's approved verified and make-up minutes, by year and category."""
    ensure_own_volunteer(caller, volunteer_id)
    return etagged(request, reads.volunteer_hours(volunteer_id, parse_as_of(as_of)))


@router.get(
    "/venues/{venue_id}/activity",
    response_model=VenueActivity,
    responses=NOT_MODIFIED,
)
async def get_venue_activity(
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    query: VenueQueryDep,
) -> Response:
    """Activities, sessions, distinct volunteers and minutes at a venue."""
    ensure_venue_in_scope(caller, reads, query.venue_id)
    return etagged(request, reads.venue_activity(query))


@router.get(
    "/venues/{venue_id}/fulfilment",
    response_model=VenueFulfilment,
    responses=NOT_MODIFIED,
)
async def get_venue_fulfilment(
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    query: OrdersQueryDep,
) -> Response:
    """The five orders at a venue: counts, 实现率 and 满意度."""
    ensure_venue_in_scope(caller, reads, query.venue_id)
    return etagged(request, reads.venue_fulfilment(query))


@router.get("/venues")
async def list_centres(
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*CITY_READERS))],
    as_of: AsOfQuery = None,
) -> VenueChildren:
    """The centres: the roots of the venue tree, where a dashboard starts."""
    return reads.venue_children(None, parse_as_of(as_of))


@router.get("/venues/{venue_id}/children")
async def list_venue_children(
    venue_id: str,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    as_of: AsOfQuery = None,
) -> VenueChildren:
    """The venues directly under a venue."""
    ensure_venue_in_scope(caller, reads, venue_id)
    return reads.venue_children(venue_id, parse_as_of(as_of))


@router.get(
    "/leaderboards/hours",
    response_model=HoursLeaderboard,
    responses=NOT_MODIFIED,
)
def get_hours_leaderboard(
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*CITY_READERS))],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    as_of: AsOfQuery = None,
) -> Response:
    """The volunteers with the most approved hours, and counts by star level."""
    # Not async: every approval anywhere changes it, and computing it afresh
    # sums every volunteer's entries, which must not hold up the event loop.
    return etagged(request, reads.hours_leaderboard(limit, parse_as_of(as_of)))
