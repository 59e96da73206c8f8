"""Rule sets for honours are data: validated, versioned, chosen by date.

Every shipped file validates; a malformed rule set is refused whole;
``load_rule_set`` picks ``NAME@VERSION`` exactly, or for ``NAME`` the latest
version in effect on the as-of date, and raises ``UnknownRuleSetError``
otherwise; a star level is reached at, not just above, its threshold.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from ledger.services.honours import (
    RULES_DIRECTORY,
    RuleSet,
    UnknownRuleSetError,
    available_rule_sets,
    load_rule_set,
)

SHIPPED = sorted(RULES_DIRECTORY.glob("*.json"))


def national() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (RULES_DIRECTORY / "national@1.json").read_text("utf-8")
    )
    return document


# --- the shipped rule sets ------------------------------------------------------


def test_the_three_example_rule_sets_are_shipped() -> None:
    assert [r.label for r in available_rule_sets()] == [
        "kunshan@1",
        "national@1",
        "zhangjiagang@1",
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_shipped_rule_set_validates_and_is_named_by_its_file(
    path: Path,
) -> None:
    rules = RuleSet.model_validate(json.loads(path.read_text("utf-8")))
    assert path.stem == rules.label
    assert rules.description


def test_the_shipped_rule_sets_say_what_the_cities_do() -> None:
    # Given the shipped rule sets, loaded by name as of a recent date
    day = date(2024, 6, 1)
    national_rules = load_rule_set("national", day)
    kunshan = load_rule_set("kunshan", day)
    zhangjiagang = load_rule_set("zhangjiagang", day)
    # Then national: 100/300/600/1,000/1,500 h cumulative, make-up included
    assert national_rules.star_hours == [100, 300, 600, 1000, 1500]
    assert national_rules.counting == "cumulative"
    assert national_rules.makeup_counts is True
    assert (national_rules.points_per_hour, national_rules.fraud_ban_years) == (0, 0)
    # And Kunshan: the same thresholds, 1 h = 10 points, benefits by stars
    assert kunshan.star_hours == national_rules.star_hours
    assert kunshan.points_per_hour == 10
    assert kunshan.fraud_ban_years == 2
    assert [b.stars for b in kunshan.benefits] == [3, 4, 5]
    # And Zhangjiagang: 30/60/100/200/300 h in the calendar year, verified only,
    # three consecutive months
    assert zhangjiagang.star_hours == [30, 60, 100, 200, 300]
    assert zhangjiagang.counting == "calendar_year"
    assert zhangjiagang.makeup_counts is False
    assert zhangjiagang.minimum_continuous_months == 3
    assert zhangjiagang.fraud_ban_years == 1


# --- invalid rule sets are refused ------------------------------------------------


def changed(**fields: Any) -> dict[str, Any]:
    document = national()
    document.update(fields)
    return document


INVALID: dict[str, dict[str, Any]] = {
    "equal thresholds": changed(star_hours=[100, 300, 300, 1000, 1500]),
    "decreasing thresholds": changed(star_hours=[100, 300, 600, 500, 1500]),
    "reversed thresholds": changed(star_hours=[1500, 1000, 600, 300, 100]),
    "four thresholds": changed(star_hours=[100, 300, 600, 1000]),
    "six thresholds": changed(star_hours=[100, 300, 600, 1000, 1500, 2000]),
    "no thresholds": changed(star_hours=[]),
    "a zero threshold": changed(star_hours=[0, 300, 600, 1000, 1500]),
    "a negative threshold": changed(star_hours=[-100, 300, 600, 1000, 1500]),
    "unknown counting basis": changed(counting="rolling_12_months"),
    "counting basis in capitals": changed(counting="CUMULATIVE"),
    "negative continuous months": changed(minimum_continuous_months=-1),
    "negative fraud ban": changed(fraud_ban_years=-1),
    "negative points per hour": changed(points_per_hour=-10),
    "version zero": changed(version=0),
    "not a date": changed(effective_from="sometime in 2024"),
    "makeup_counts not a boolean": changed(makeup_counts="perhaps"),
    "a name with capitals": changed(name="Kunshan"),
    "an extra field": changed(minimum_community_hours=20),
    "a benefit at six stars": changed(benefits=[{"stars": 6, "benefit": "x"}]),
    "a benefit at no star": changed(benefits=[{"stars": 0, "benefit": "x"}]),
    "a benefit with no text": changed(benefits=[{"stars": 3, "benefit": ""}]),
    "a benefit with an extra field": changed(
        benefits=[{"stars": 3, "benefit": "x", "points": 100}]
    ),
}


@pytest.mark.parametrize("document", INVALID.values(), ids=INVALID.keys())
def test_an_invalid_rule_set_is_refused(document: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RuleSet.model_validate(document)


@pytest.mark.parametrize(
    "missing", ["star_hours", "counting", "effective_from", "fraud_ban_years"]
)
def test_a_rule_set_missing_a_field_is_refused(missing: str) -> None:
    document = national()
    del document[missing]
    with pytest.raises(ValidationError):
        RuleSet.model_validate(document)


def test_a_rule_set_is_frozen() -> None:
    rules = RuleSet.model_validate(national())
    with pytest.raises(ValidationError):
        rules.points_per_hour = 10


# --- choosing a rule set ----------------------------------------------------------


@pytest.fixture
def two_versions(tmp_path: Path) -> Path:
    """``demo@1`` in effect from 2022, ``demo@2`` from 2024, and ``other@1``."""
    for name, version, effective, hours in [
        ("demo", 1, "2022-01-01", [10, 20, 30, 40, 50]),
        ("demo", 2, "2024-01-01", [15, 25, 35, 45, 55]),
        ("other", 1, "2020-01-01", [1, 2, 3, 4, 5]),
    ]:
        document = changed(
            name=name, version=version, effective_from=effective, star_hours=hours
        )
        path = tmp_path / f"{name}@{version}.json"
        path.write_text(json.dumps(document), "utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("spec", "day", "expected"),
    [
        ("demo", date(2022, 1, 1), "demo@1"),
        ("demo", date(2023, 12, 31), "demo@1"),
        ("demo", date(2024, 1, 1), "demo@2"),
        ("demo", date(2030, 6, 1), "demo@2"),
        ("demo@1", date(2030, 6, 1), "demo@1"),
        ("demo@2", date(2024, 1, 1), "demo@2"),
        ("other", date(2024, 1, 1), "other@1"),
    ],
)
def test_load_picks_the_exact_version_or_the_latest_in_effect(
    two_versions: Path, spec: str, day: date, expected: str
) -> None:
    rules = load_rule_set(spec, day, two_versions)
    assert rules.label == expected
    assert rules.effective_from <= day


def test_an_exact_version_is_chosen_even_before_it_took_effect(
    two_versions: Path,
) -> None:
    # NAME@VERSION "picks one exactly" (docs/honours.md): a run can re-apply a
    # version to any date, e.g. to compare it with the one then in effect.
    assert load_rule_set("demo@2", date(2023, 6, 1), two_versions).label == "demo@2"


@pytest.mark.parametrize(
    ("spec", "day"),
    [
        ("demo", date(2021, 12, 31)),  # before any version took effect
        ("demo@3", date(2024, 6, 1)),  # no such version
        ("demo@one", date(2024, 6, 1)),
        ("nosuch", date(2024, 6, 1)),
        ("national", date(2024, 6, 1)),  # shipped, but not in this directory
        ("", date(2024, 6, 1)),
    ],
)
def test_anything_else_is_an_unknown_rule_set(
    two_versions: Path, spec: str, day: date
) -> None:
    with pytest.raises(UnknownRuleSetError) as raised:
        load_rule_set(spec, day, two_versions)
    # The message names the rule sets that are known
    assert "demo@1" in str(raised.value)
    assert "other@1" in str(raised.value)


def test_the_shipped_rule_sets_are_unknown_before_they_take_effect() -> None:
    with pytest.raises(UnknownRuleSetError):
        load_rule_set("national", date(2019, 12, 31))
    assert load_rule_set("national", date(2020, 1, 1)).label == "national@1"


# --- a star level is reached at or above its threshold --------------------------


@pytest.mark.parametrize(
    ("name", "minutes", "stars"),
    [
        ("national", 0, 0),
        ("national", 5_999, 0),
        ("national", 6_000, 1),
        ("national", 17_999, 1),
        ("national", 18_000, 2),
        ("national", 35_999, 2),
        ("national", 36_000, 3),
        ("national", 59_999, 3),
        ("national", 60_000, 4),
        ("national", 89_999, 4),
        ("national", 90_000, 5),
        ("national", 10_000_000, 5),
        ("kunshan", 5_999, 0),
        ("kunshan", 6_000, 1),
        ("zhangjiagang", 1_799, 0),
        ("zhangjiagang", 1_800, 1),
        ("zhangjiagang", 3_599, 1),
        ("zhangjiagang", 3_600, 2),
        ("zhangjiagang", 5_999, 2),
        ("zhangjiagang", 6_000, 3),
        ("zhangjiagang", 11_999, 3),
        ("zhangjiagang", 12_000, 4),
        ("zhangjiagang", 17_999, 4),
        ("zhangjiagang", 18_000, 5),
    ],
)
def test_stars_at_the_exact_boundaries(name: str, minutes: int, stars: int) -> None:
    rules = load_rule_set(name, date(2024, 6, 1))
    assert rules.stars_for(minutes) == stars
