"""Readers name events by their classes (``topic_of``): the topic is the one
the event is stored under, and an event the aggregate does not trigger is
refused when the reader is imported."""

from __future__ import annotations

import pytest

from ledger.domain.common import topic_of
from ledger.domain.volunteers import Volunteer
from tests.unit.domain_builders import recorded, volunteer_at


def test_the_topic_is_the_one_the_event_is_stored_under() -> None:
    who, at_activity = volunteer_at()
    who.check_in("S1", at_activity, at_activity.starts_at)

    (checked_in,) = recorded(who)

    assert topic_of(Volunteer, "CheckedIn") == checked_in.topic


@pytest.mark.parametrize("name", ["SessionAproved", "approve_session"])
def test_a_name_that_is_no_event_of_the_aggregate_is_refused(name: str) -> None:
    with pytest.raises(LookupError, match=f"Volunteer triggers no event '{name}'"):
        topic_of(Volunteer, name)
