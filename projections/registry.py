"""Every projection the ledger maintains, by name."""

from __future__ import annotations

from ledger.engine import Projection
from ledger.projections.activity_calendar import ActivityCalendarProjection
from ledger.projections.honours_awards import HonoursAwardsProjection
from ledger.projections.order_fulfilment import OrderFulfilmentProjection
from ledger.projections.venue_activity import VenueActivityProjection
from ledger.projections.venue_tree import VenueTreeProjection
from ledger.projections.volunteer_hours import VolunteerHoursProjection

VENUE_TREE = VenueTreeProjection()
VOLUNTEER_HOURS = VolunteerHoursProjection()
VENUE_ACTIVITY = VenueActivityProjection()
ORDER_FULFILMENT = OrderFulfilmentProjection()
HONOURS_AWARDS = HonoursAwardsProjection()
ACTIVITY_CALENDAR = ActivityCalendarProjection()

ALL_PROJECTIONS: tuple[Projection, ...] = (
    VENUE_TREE,
    VOLUNTEER_HOURS,
    VENUE_ACTIVITY,
    ORDER_FULFILMENT,
    HONOURS_AWARDS,
    ACTIVITY_CALENDAR,
)
