"""The monthly activity calendar (每月活动汇总) for the dashboard page and
the newspapers: the month's published activities by venue and date, with
the places left. No personal data, so any valid key reads it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledger.api.http.deps import CallerDep, ReadsDep
from ledger.api.http.problems import PROBLEM_RESPONSES
from ledger.api.http.routes.reads import AsOfQuery
from ledger.reads.answers import ActivityCalendar
from ledger.reads.queries import MONTH

router = APIRouter(tags=["calendar"], responses=PROBLEM_RESPONSES)


@router.get("/calendar")
def get_activity_calendar(
    reads: ReadsDep,
    caller: CallerDep,
    month: Annotated[
        str,
        Query(pattern=MONTH.pattern, description="YYYY-MM: activities starting then."),
    ],
    venue: Annotated[
        str | None,
        Query(description="A venue: it and the venues under it. Default: the city."),
    ] = None,
    as_of: AsOfQuery = None,
) -> ActivityCalendar:
    """The month's published activities by venue and date, with places left."""
    return reads.activity_calendar(month, venue, as_of)
