"""The write side names events by their classes (``topic_of``): the topic is
the one the event is stored under, and an event the aggregate does not
trigger is refused when the writer is imported. Projections, which a quick
read loads without the aggregates, name topics as text: every one they name
is an event some aggregate triggers."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest
from eventsourcing.domain import Aggregate

import ledger.domain
import ledger.projections
from ledger.domain.common import topic_of
from ledger.domain.volunteers import Volunteer
from ledger.projections.registry import ALL_PROJECTIONS
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


def triggered_topics() -> set[str]:
    """The topic of every event an aggregate of the domain triggers."""
    topics = set()
    for module in pkgutil.iter_modules(ledger.domain.__path__, "ledger.domain."):
        for aggregate in vars(importlib.import_module(module.name)).values():
            if isinstance(aggregate, type) and issubclass(aggregate, Aggregate):
                topics |= {
                    getattr(made, "TOPIC", "")
                    for made in vars(aggregate).values()
                    if isinstance(made, type) and issubclass(made, Aggregate.Event)
                }
    return topics


def named_topics() -> set[str]:
    """Every text in the projections that looks like a topic ("Kind.Event"),
    whether a constant or one of what a projection folds."""
    looks_like_a_topic = re.compile(r"[A-Z][A-Za-z]+\.[A-Z][A-Za-z]+")
    named = {topic for projection in ALL_PROJECTIONS for topic in projection.topics}
    for module in pkgutil.iter_modules(
        ledger.projections.__path__, "ledger.projections."
    ):
        for value in vars(importlib.import_module(module.name)).values():
            texts = value if isinstance(value, frozenset | set | dict) else [value]
            named |= {
                text
                for text in texts
                if isinstance(text, str) and looks_like_a_topic.fullmatch(text)
            }
    return named


def test_every_topic_a_projection_names_is_an_event_an_aggregate_triggers() -> None:
    named = named_topics()

    assert {"Order.Posted", "Volunteer.SessionApproved", "Venue.Registered"} <= named
    assert named - triggered_topics() == set()
