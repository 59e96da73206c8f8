"""The ``honours_awards`` fold, in memory: what a volunteer holds under each
award scope follows from the award events alone."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.engine import RecordedEvent
from ledger.projections.honours_awards import (
    BENEFIT_GRANTED,
    POINTS_CREDITED,
    STAR_LEVEL_REACHED,
)
from ledger.projections.registry import HONOURS_AWARDS


def award(position: int, topic: str, **fields: Any) -> RecordedEvent:
    payload = {
        "volunteer_id": "V1",
        "rules": "kunshan@1",
        "cycle": None,
        "as_of": "2024-12-31",
        "position": 10,
        **fields,
    }
    return RecordedEvent(position, topic, "stream", payload)


def test_levels_count_up_to_the_highest_and_points_sum_to_the_latest_total() -> None:
    events = [
        award(11, STAR_LEVEL_REACHED, level=1),
        award(12, STAR_LEVEL_REACHED, level=2),
        award(13, BENEFIT_GRANTED, benefit="免费乘坐公交"),
        award(14, POINTS_CREDITED, points=1_500, total=1_500),
        # a later run: the third level, and the points since
        award(21, STAR_LEVEL_REACHED, level=3),
        award(22, POINTS_CREDITED, points=300, total=1_800),
    ]

    figures = HONOURS_AWARDS.replay(events)

    assert figures == {
        ("V1", "kunshan@1", "", ""): (3, 1_800, 0),
        ("V1", "kunshan@1", "", "免费乘坐公交"): (0, 0, 1),
    }


def test_cyclic_rules_keep_each_cycle_apart() -> None:
    events = [
        award(1, STAR_LEVEL_REACHED, rules="zhangjiagang@1", cycle="2023", level=1),
        award(2, STAR_LEVEL_REACHED, rules="zhangjiagang@1", cycle="2024", level=1),
        award(3, STAR_LEVEL_REACHED, rules="zhangjiagang@1", cycle="2024", level=2),
    ]

    figures = HONOURS_AWARDS.replay(events)

    assert figures == {
        ("V1", "zhangjiagang@1", "2023", ""): (1, 0, 0),
        ("V1", "zhangjiagang@1", "2024", ""): (2, 0, 0),
    }


def test_an_award_event_without_its_volunteer_is_refused() -> None:
    broken = award(1, STAR_LEVEL_REACHED, level=1)
    del broken.payload["volunteer_id"]

    with pytest.raises(KeyError):
        HONOURS_AWARDS.evolve(broken)

    assert HONOURS_AWARDS.fold([broken]).dead_letters
