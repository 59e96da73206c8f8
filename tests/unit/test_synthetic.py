"""The synthetic city: deterministic, in time order, Kunshan-shaped, scaled."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from ledger.application.commands import parse_command
from ledger.services.synthetic_city import CityShape, generate_city, write_city

TINY = 0.001


@pytest.fixture(scope="module")
def tiny_city() -> list[dict[str, Any]]:
    return list(generate_city(TINY))


def test_the_same_seed_gives_the_same_lines(tiny_city: list[dict[str, Any]]) -> None:
    assert list(generate_city(TINY)) == tiny_city


def test_a_different_seed_gives_a_different_city(
    tiny_city: list[dict[str, Any]],
) -> None:
    other = list(generate_city(TINY, seed=7))
    assert other != tiny_city
    assert {line["type"] for line in other} == {line["type"] for line in tiny_city}


def test_written_files_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    count = write_city(first, TINY)
    write_city(second, TINY)
    assert first.read_bytes() == second.read_bytes()
    assert count == len(first.read_bytes().splitlines())


def test_lines_are_in_business_time_order_with_the_china_offset(
    tiny_city: list[dict[str, Any]],
) -> None:
    moments = [datetime.fromisoformat(line["at"]) for line in tiny_city]
    assert all(m.utcoffset() == timedelta(hours=8) for m in moments)
    assert all(line["at"].endswith("+08:00") for line in tiny_city)
    assert moments == sorted(moments)


def test_every_line_is_a_valid_command_with_its_own_key(
    tiny_city: list[dict[str, Any]],
) -> None:
    for line in tiny_city:
        parse_command(orjson.dumps(line))
    keys = [line["key"] for line in tiny_city]
    assert len(set(keys)) == len(keys)


def test_actors_have_the_role_of_what_they_do(tiny_city: list[dict[str, Any]]) -> None:
    roles: dict[str, set[str]] = {}
    for line in tiny_city:
        roles.setdefault(line["type"], set()).add(line["actor"]["role"])
    assert roles["post_order"] == {"resident"}
    assert roles["withdraw_order"] == {"resident"}
    assert roles["dispatch_order"] == {"dispatcher"}
    assert roles["sign_up"] == roles["check_in"] == {"volunteer"}
    assert roles["accept_order"] == {"volunteer"}
    assert roles["approve_session"] == roles["publish_activity"] == {"venue_staff"}


def test_the_year_holds_every_kind_of_fact(tiny_city: list[dict[str, Any]]) -> None:
    types = Counter(line["type"] for line in tiny_city)
    assert types["approve_session"] > 10 * types["reject_session"] > 0
    for expected in (
        "cancel_sign_up", "record_makeup_hours", "request_correction",
        "correct_session", "void_session", "withdraw_order", "fulfil_order", "rate",
    ):  # fmt: skip
        assert types[expected] > 0, expected
    activities = [line for line in tiny_city if line["type"] == "publish_activity"]
    assert {a["category"] for a in activities} >= {
        "theory", "education", "culture", "science", "health", "other",
    }  # fmt: skip
    assert all(a["starts_at"].startswith("2024-") for a in activities)
    leads = [
        datetime.fromisoformat(a["starts_at"]) - datetime.fromisoformat(a["at"])
        for a in activities
    ]
    assert all(timedelta(days=6) < lead < timedelta(days=29) for lead in leads)


def test_the_shape_follows_kunshan_at_full_scale() -> None:
    full = CityShape.for_scale(1.0)
    assert (full.institutes, full.stations, full.points, full.bases) == (
        15,
        342,
        114,
        93,
    )
    assert full.corps + full.brigades + full.teams == 3_000
    assert full.volunteers == 570_000


def test_counts_scale_with_the_scale() -> None:
    small, large = CityShape.for_scale(0.01), CityShape.for_scale(0.1)
    assert large.volunteers == 10 * small.volunteers
    assert large.activities == 10 * small.activities
    assert large.orders == 10 * small.orders
    assert large.stations > small.stations
    assert CityShape.for_scale(0.0001).institutes >= 3

    def counts(scale: float) -> Counter[str]:
        return Counter(line["type"] for line in generate_city(scale))

    one, two = counts(0.001), counts(0.002)
    for type_, shape_count in (
        ("register_volunteer", "volunteers"),
        ("publish_activity", "activities"),
        ("post_order", "orders"),
    ):
        assert one[type_] == getattr(CityShape.for_scale(0.001), shape_count)
        assert two[type_] == 2 * one[type_]
    assert 1.8 < sum(two.values()) / sum(one.values()) < 2.2


def test_about_96_percent_of_orders_not_withdrawn_are_fulfilled() -> None:
    outcome: dict[str, str] = {}
    for line in generate_city(0.002):
        if line["type"] in (
            "post_order", "fulfil_order", "withdraw_order", "reject_order",
            "expire_order",
        ):  # fmt: skip
            outcome[line["order_id"]] = line["type"]
    tally = Counter(outcome.values())
    not_withdrawn = len(outcome) - tally["withdraw_order"]
    assert tally["post_order"] == 0  # every order is settled
    assert tally["withdraw_order"] > 0
    assert tally["reject_order"] + tally["expire_order"] > 0
    assert tally["fulfil_order"] / not_withdrawn == pytest.approx(0.96, abs=0.01)


def test_most_order_ratings_are_four_or_five_stars(
    tiny_city: list[dict[str, Any]],
) -> None:
    stars = [
        line["stars"]
        for line in tiny_city
        if line["type"] == "rate" and line["subject"] == "order"
    ]
    assert sum(s >= 4 for s in stars) / len(stars) > 0.8
