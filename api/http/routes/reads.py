"""Projection reads for dashboards (CONTRACT §5): volunteer hours, venue
activity and fulfilment, the venue tree, leaderboards.

Every read takes ``as_of`` and returns the position and chain hash it
reflects, with an ETag: a client that sends it back in ``If-None-Match``
gets 304 while nothing it reads has changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response

from ledger.api.http.access import Caller, Role
from ledger.api.http.deps import (
    ReadsDep,
    allow,
    ensure_own_volunteer,
    ensure_venue_in_scope,
)
from ledger.api.http.problems import PROBLEM_RESPONSES
from ledger.api.http.schemas import (
    HoursLeaderboard,
    VenueActivity,
    VenueChildren,
    VenueFulfilment,
    VolunteerHours,
)
from ledger.reads.queries import parse_as_of

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
    Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM, inclusive"),
]
SubtreeQuery = Annotated[
    bool, Query(description="Include the venue's descendants (default true).")
]


@dataclass(frozen=True)
class VenuePeriod:
    """Which months of which part of the tree a venue read covers."""

    from_month: str | None
    to_month: str | None
    subtree: bool


async def venue_period(
    from_month: Annotated[MonthQuery, Query(alias="from")] = None,
    to_month: Annotated[MonthQuery, Query(alias="to")] = None,
    subtree: SubtreeQuery = True,
) -> VenuePeriod:
    return VenuePeriod(from_month, to_month, subtree)


PeriodDep = Annotated[VenuePeriod, Depends(venue_period)]

VENUE_READERS = (Role.AUDITOR, Role.DISPATCHER, Role.DASHBOARD, Role.VENUE_STAFF)
# A volunteer's hours span venues: no venue_staff key reads them.
HOURS_READERS = (Role.AUDITOR, Role.DISPATCHER, Role.VOLUNTEER)


def etagged(request: Request, document: dict[str, Any]) -> Response:
    """Answer 304 when the client already holds this exact answer; otherwise
    send it as it is. (The reads build their answers to the response models;
    validating every answer again would cost more than the read itself.)"""
    tag = hashlib.sha256(
        f"{request.url.path}?{request.url.query}|{document['position']}|"
        f"{document['chain_hash']}".encode()
    ).hexdigest()[:32]
    etag = f'W/"{tag}"'
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(
        orjson.dumps(document), media_type="application/json", headers={"ETag": etag}
    )


@router.get(
    "/volunteers/{volunteer_id}/hours",
    response_model=VolunteerHours,
    responses={304: {"description": "Not modified"}},
)
async def get_volunteer_hours(
    volunteer_id: str,
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*HOURS_READERS))],
    as_of: AsOfQuery = None,
) -> Any:
    """A volunteer's approved verified and make-up minutes, by year and category."""
    ensure_own_volunteer(caller, volunteer_id)
    return etagged(
        request,
        reads.volunteer_hours(volunteer_id, parse_as_of(as_of)),
    )


@router.get(
    "/venues/{venue_id}/activity",
    response_model=VenueActivity,
    responses={304: {"description": "Not modified"}},
)
async def get_venue_activity(
    venue_id: str,
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    period: PeriodDep,
    as_of: AsOfQuery = None,
) -> Any:
    """Activities, sessions, distinct volunteers and minutes at a venue."""
    ensure_venue_in_scope(caller, reads, venue_id)
    return etagged(
        request,
        reads.venue_activity(
            venue_id,
            period.from_month,
            period.to_month,
            subtree=period.subtree,
            as_of=parse_as_of(as_of),
        ),
    )


@router.get(
    "/venues/{venue_id}/fulfilment",
    response_model=VenueFulfilment,
    responses={304: {"description": "Not modified"}},
)
async def get_venue_fulfilment(
    venue_id: str,
    request: Request,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    period: PeriodDep,
    kind: Annotated[str | None, Query(pattern="^(wish|service)$")] = None,
    as_of: AsOfQuery = None,
) -> Any:
    """The five orders at a venue: counts, 实现率 and 满意度."""
    ensure_venue_in_scope(caller, reads, venue_id)
    return etagged(
        request,
        reads.venue_fulfilment(
            venue_id,
            period.from_month,
            period.to_month,
            subtree=period.subtree,
            kind=kind,
            as_of=parse_as_of(as_of),
        ),
    )


@router.get("/venues/{venue_id}/children", response_model=VenueChildren)
async def list_venue_children(
    venue_id: str,
    reads: ReadsDep,
    caller: Annotated[Caller, Depends(allow(*VENUE_READERS))],
    as_of: AsOfQuery = None,
) -> Any:
    """The venues directly under a venue."""
    ensure_venue_in_scope(caller, reads, venue_id)
    return reads.venue_children(venue_id, parse_as_of(as_of))


@router.get(
    "/leaderboards/hours",
    response_model=HoursLeaderboard,
    responses={304: {"description": "Not modified"}},
)
def get_hours_leaderboard(
    request: Request,
    reads: ReadsDep,
    caller: Annotated[
        Caller, Depends(allow(Role.AUDITOR, Role.DISPATCHER, Role.DASHBOARD))
    ],
    limit: Annotated[int, Query(ge=1, le=100)] = 10,
    as_of: AsOfQuery = None,
) -> Any:
    """The volunteers with the most approved hours, and counts by star level."""
    # Not async: every approval anywhere changes it, and computing it afresh
    # sums every volunteer's entries, which must not hold up the event loop.
    return etagged(request, reads.hours_leaderboard(limit, parse_as_of(as_of)))
