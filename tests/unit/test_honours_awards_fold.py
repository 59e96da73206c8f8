"""The ``honours_awards`` fold, in memory: what a volunteer holds under each
award scope follows from the award events their honours record triggers."""

from __future__ import annotations

import pytest

from ledger.domain.honours import Honours
from ledger.engine import RecordedEvent
from ledger.projections.registry import HONOURS_AWARDS
from tests.unit.domain_builders import recorded

BUS_PASS = "免费乘坐公交"


def awarded(
    record: Honours,
    stars: int,
    *,
    rules: str = "kunshan@1",
    cycle: str | None = None,
    benefits: tuple[str, ...] = (),
    points: int = 0,
) -> None:
    """Record on ``record`` what an honours run under ``rules`` decided."""
    record.award(
        rules=rules,
        cycle=cycle,
        stars=stars,
        benefits=list(benefits),
        points=points,
        as_of="2024-12-31",
        position=10,
    )


def award_events(record: Honours) -> list[RecordedEvent]:
    return recorded(record, topics=HONOURS_AWARDS.topics)


def test_levels_count_up_to_the_highest_and_points_sum_to_the_latest_total() -> None:
    record = Honours(volunteer_id="V1")
    awarded(record, 2, benefits=(BUS_PASS,), points=1_500)
    # a later run: the third level, and the points since
    awarded(record, 3, benefits=(BUS_PASS,), points=1_800)

    figures = HONOURS_AWARDS.replay(award_events(record))

    assert figures == {
        ("V1", "kunshan@1", "", ""): (3, 1_800, 0),
        ("V1", "kunshan@1", "", BUS_PASS): (0, 0, 1),
    }


def test_cyclic_rules_keep_each_cycle_apart() -> None:
    record = Honours(volunteer_id="V1")
    awarded(record, 1, rules="zhangjiagang@1", cycle="2023")
    awarded(record, 2, rules="zhangjiagang@1", cycle="2024")

    figures = HONOURS_AWARDS.replay(award_events(record))

    assert figures == {
        ("V1", "zhangjiagang@1", "2023", ""): (1, 0, 0),
        ("V1", "zhangjiagang@1", "2024", ""): (2, 0, 0),
    }


def test_opening_a_record_is_not_read_as_an_award() -> None:
    (opened,) = recorded(Honours(volunteer_id="V1"))

    assert opened.topic not in HONOURS_AWARDS.topics


def test_an_award_event_without_its_volunteer_is_refused() -> None:
    record = Honours(volunteer_id="V1")
    awarded(record, 1)
    (broken,) = award_events(record)
    del broken.payload["volunteer_id"]

    with pytest.raises(KeyError):
        HONOURS_AWARDS.evolve(broken)

    assert HONOURS_AWARDS.fold([broken]).dead_letters
