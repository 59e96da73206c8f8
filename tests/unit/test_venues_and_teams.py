"""The venue network (阵地) and the team hierarchy: who may hang under whom."""

from __future__ import annotations

import pytest

from ledger.domain.errors import InvalidCommandError, WrongParentLevelError
from ledger.domain.teams import Team, TeamLevel
from ledger.domain.venues import Venue, VenueLevel
from tests.unit.domain_builders import event_names, team_of_level, venue_of_level

ALL_VENUE_LEVELS = [level.value for level in VenueLevel]
ALL_TEAM_LEVELS = [level.value for level in TeamLevel]

# (level, parent level) pairs that the network allows.
ALLOWED_VENUE_PLACEMENTS = [
    ("institute", "centre"),
    ("station", "institute"),
    ("point", "station"),
    ("point", "institute"),
    ("base", "centre"),
    ("base", "institute"),
    ("base", "station"),
    ("base", "point"),
]
# Everything else is refused: a centre under anything, a base under a base …
REFUSED_VENUE_PLACEMENTS = [
    (level, parent)
    for level in ALL_VENUE_LEVELS
    for parent in ALL_VENUE_LEVELS
    if (level, parent) not in ALLOWED_VENUE_PLACEMENTS
]


# --- venues -----------------------------------------------------------------


def test_a_centre_is_registered_without_a_parent() -> None:
    centre = Venue.register(
        venue_id="C", name="昆山市中心", level="centre", parent=None
    )

    assert event_names(centre) == ["Registered"]
    assert centre.venue_id == "C"
    assert centre.level is VenueLevel.CENTRE
    assert centre.parent_id is None


def test_the_same_venue_id_always_addresses_the_same_stream() -> None:
    first = Venue.register(venue_id="C", name="one", level="centre", parent=None)
    second = Venue.register(venue_id="C", name="two", level="centre", parent=None)
    other = Venue.register(venue_id="D", name="three", level="centre", parent=None)

    assert first.id == second.id == Venue.create_id("C")
    assert other.id != first.id


@pytest.mark.parametrize(("level", "parent_level"), ALLOWED_VENUE_PLACEMENTS)
def test_a_venue_is_registered_under_a_parent_of_an_allowed_level(
    level: str, parent_level: str
) -> None:
    parent = venue_of_level(parent_level)

    venue = Venue.register(venue_id="X", name="x", level=level, parent=parent)

    assert event_names(venue) == ["Registered"]
    assert venue.level == level
    assert venue.parent_id == parent.venue_id


@pytest.mark.parametrize(("level", "parent_level"), REFUSED_VENUE_PLACEMENTS)
def test_a_venue_under_a_parent_of_the_wrong_level_is_refused(
    level: str, parent_level: str
) -> None:
    parent = venue_of_level(parent_level)

    with pytest.raises(WrongParentLevelError):
        Venue.register(venue_id="X", name="x", level=level, parent=parent)


@pytest.mark.parametrize("level", ["institute", "station", "point", "base"])
def test_a_venue_other_than_a_centre_without_a_parent_is_refused(level: str) -> None:
    with pytest.raises(WrongParentLevelError):
        Venue.register(venue_id="X", name="x", level=level, parent=None)


@pytest.mark.parametrize("level", ["village", "Centre", "", "中心"])
def test_a_venue_of_an_unknown_level_is_refused(level: str) -> None:
    with pytest.raises(InvalidCommandError):
        Venue.register(venue_id="X", name="x", level=level, parent=None)


def test_a_point_keeps_its_kind() -> None:
    point = Venue.register(
        venue_id="P1",
        name="万达广场",
        level="point",
        parent=venue_of_level("station"),
        kind="mall",
    )

    assert point.kind == "mall"


# --- teams ------------------------------------------------------------------


def test_a_corps_is_registered_as_a_root_unit() -> None:
    corps = Team.register(team_id="T1", name="总队", level="corps", parent=None)

    assert event_names(corps) == ["Registered"]
    assert corps.level is TeamLevel.CORPS
    assert corps.parent_id is None


@pytest.mark.parametrize(
    ("level", "parent_level"), [("brigade", "corps"), ("team", "brigade")]
)
def test_a_team_is_registered_one_level_below_its_parent(
    level: str, parent_level: str
) -> None:
    parent = team_of_level(parent_level)

    unit = Team.register(team_id="X", name="x", level=level, parent=parent)

    assert event_names(unit) == ["Registered"]
    assert unit.level == level
    assert unit.parent_id == parent.team_id


@pytest.mark.parametrize("level", ["brigade", "team"])
def test_a_brigade_or_team_may_stand_alone(level: str) -> None:
    unit = Team.register(team_id="X", name="企业志愿队", level=level, parent=None)

    assert unit.parent_id is None


@pytest.mark.parametrize("parent_level", ALL_TEAM_LEVELS)
def test_a_corps_under_any_parent_is_refused(parent_level: str) -> None:
    with pytest.raises(WrongParentLevelError):
        Team.register(
            team_id="X", name="x", level="corps", parent=team_of_level(parent_level)
        )


@pytest.mark.parametrize(
    ("level", "parent_level"),
    [
        ("brigade", "brigade"),
        ("brigade", "team"),
        ("team", "corps"),
        ("team", "team"),
    ],
)
def test_a_team_not_exactly_one_level_below_its_parent_is_refused(
    level: str, parent_level: str
) -> None:
    with pytest.raises(WrongParentLevelError):
        Team.register(
            team_id="X", name="x", level=level, parent=team_of_level(parent_level)
        )


@pytest.mark.parametrize("level", ["squad", "Corps", ""])
def test_a_team_of_an_unknown_level_is_refused(level: str) -> None:
    with pytest.raises(InvalidCommandError):
        Team.register(team_id="X", name="x", level=level, parent=None)
