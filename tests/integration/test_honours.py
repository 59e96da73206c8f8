"""Honours runs (`ledger honours`) on SQLite and PostgreSQL.

Volunteers serve through the ordinary write path (check-in/check-out or
make-up hours, then approval); the projections catch up; the run decides
every standing under a rule set as of a date (China Standard Time) at a
ledger position, and records the new awards as events. Checked here: the
thresholds at their exact boundaries, each shipped rule set (national,
kunshan, zhangjiagang), counting across the China Standard Time new year,
the fraud bar, idempotent re-runs, ``--dry-run``, and that a run at an
earlier position decides what was decided then, whatever was corrected
since.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from ledger.api.cli.app import app
from ledger.application.bulk_append import DescribedEvent, append_described
from ledger.application.ledger import Ledger, Outcome, Submission
from ledger.bootstrap import open_ledger
from ledger.domain.honours import Honours
from ledger.domain.volunteers import Volunteer
from ledger.engine import Entry, Projection, ProjectionEngine, RecordedEvent
from ledger.projections.honours_awards import AWARD_TOPICS
from ledger.projections.registry import ALL_PROJECTIONS, HONOURS_AWARDS, VOLUNTEER_HOURS
from ledger.services.honours import (
    HonoursRun,
    Standing,
    compute_standings,
    load_rule_set,
    plan_honours,
    record_honours,
)
from ledger.store.event_store import Database, Envelope, events_table, head_position
from tests.factories import activity, id_number, submission

CHINA = timezone(timedelta(hours=8))
DAY = timedelta(days=1)
MINUTE = timedelta(minutes=1)
MAX_SESSION_MINUTES = 24 * 60


# --- building volunteers and their service ------------------------------------


@dataclass
class Town:
    """A ledger with one centre > institute > station, and helpers to record
    volunteers, activities and approved sessions there."""

    ledger: Ledger
    key_directory: Path
    signed_up: set[tuple[str, str]] = field(default_factory=set)
    activities: dict[str, datetime] = field(default_factory=dict)
    sessions: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    session_minutes: dict[str, int] = field(default_factory=dict)
    session_ends: dict[str, datetime] = field(default_factory=dict)
    made_up: set[tuple[str, str]] = field(default_factory=set)
    # The sessions a make-up is spread over, by the first one's id.
    spread: dict[str, list[str]] = field(default_factory=dict)

    def record(self, submissions: list[Submission]) -> int:
        """Record commands that must all be accepted; the head position after."""
        results = self.ledger.execute_batch(submissions)
        for result, sub in zip(results, submissions, strict=True):
            assert result.outcome is Outcome.ACCEPTED, (sub.command, result.reason)
        return self.head()

    def head(self) -> int:
        with self.ledger.database.reading() as conn:
            return head_position(conn)

    def volunteers(self, *volunteer_ids: str) -> None:
        self.record(
            [
                submission(
                    "register_volunteer",
                    datetime(2020, 1, 1, tzinfo=CHINA),
                    volunteer_id=volunteer_id,
                    name=f"志愿者{volunteer_id}",
                    id_number=id_number(),
                )
                for volunteer_id in volunteer_ids
            ]
        )

    def activity(self, activity_id: str, starts_at: datetime, hours: int) -> None:
        self.activities[activity_id] = starts_at
        self.record([activity(activity_id, "S1", starts_at, hours=hours, capacity=100)])

    def with_makeup_hours(self, minutes: dict[str, int]) -> None:
        """Volunteers registered with approved make-up minutes, all at one
        long activity ("LONG", March 2024)."""
        self.volunteers(*minutes)
        self.activity("LONG", MARCH_2024, hours=1_600)
        for volunteer_id, counted in minutes.items():
            self.makeup(volunteer_id, "LONG", counted)

    def makeup(self, volunteer_id: str, activity_id: str, minutes: int) -> str:
        """Approved make-up minutes at an activity (dated at its start), once
        per volunteer and activity. A session holds at most 1,440 minutes
        (CONTRACT §1.3): more are spread over sessions at copies of the
        activity that start with it ("LONG", "LONG+1" …). Returns the id of
        the first session."""
        assert (volunteer_id, activity_id) not in self.made_up, "one per activity"
        self.made_up.add((volunteer_id, activity_id))
        start = self.activities[activity_id]
        session_ids = []
        for part, first in enumerate(range(0, minutes, MAX_SESSION_MINUTES)):
            at_activity = activity_id if part == 0 else f"{activity_id}+{part}"
            if at_activity not in self.activities:
                self.activity(at_activity, start, hours=24)
            session_id = f"M{next(self.sessions)}-{volunteer_id}"
            counted = min(minutes - first, MAX_SESSION_MINUTES)
            self.record(
                [
                    submission(
                        "record_makeup_hours",
                        start,
                        session_id=session_id,
                        volunteer_id=volunteer_id,
                        activity_id=at_activity,
                        minutes=counted,
                        reason="补录: paper sign-in sheet",
                    ),
                    submission(
                        "approve_session", start + MINUTE, session_id=session_id
                    ),
                ]
            )
            self.session_minutes[session_id] = counted
            self.session_ends[session_id] = start + MINUTE
            session_ids.append(session_id)
        self.spread[session_ids[0]] = session_ids
        return session_ids[0]

    def served(
        self, volunteer_id: str, activity_id: str, checked_in: datetime, minutes: int
    ) -> str:
        """An approved verified session: check-in, check-out, approval."""
        assert minutes <= 24 * 60
        session_id = f"V{next(self.sessions)}-{volunteer_id}"
        sign_up = []
        if (volunteer_id, activity_id) not in self.signed_up:
            self.signed_up.add((volunteer_id, activity_id))
            published = self.activities[activity_id] - 7 * DAY
            sign_up = [
                submission(
                    "sign_up",
                    published + MINUTE,
                    activity_id=activity_id,
                    volunteer_id=volunteer_id,
                )
            ]
        checked_out = checked_in + minutes * MINUTE
        self.record(
            [
                *sign_up,
                submission(
                    "check_in",
                    checked_in,
                    session_id=session_id,
                    volunteer_id=volunteer_id,
                    activity_id=activity_id,
                ),
                submission("check_out", checked_out, session_id=session_id),
                submission(
                    "approve_session", checked_out + MINUTE, session_id=session_id
                ),
            ]
        )
        self.session_minutes[session_id] = minutes
        self.session_ends[session_id] = checked_out + MINUTE
        return session_id

    def void(self, session_id: str, at: datetime, *, fraud: bool) -> int:
        """Void a session, or all a make-up is spread over (``makeup``)."""
        return self.record(
            [
                submission(
                    "void_session",
                    at,
                    session_id=spread_id,
                    reason="伪造签到 forged sign-in" if fraud else "entered twice",
                    fraud=fraud,
                )
                for spread_id in self.spread.get(session_id, [session_id])
            ]
        )

    def correct(self, session_id: str, minutes: int, at: datetime) -> int:
        """Correct a session to ``minutes``; make-up spread over sessions
        (``makeup``) to that many in all, each of its sessions as full as
        the first ones can be."""
        sessions = self.spread.get(session_id, [session_id])
        corrections = []
        left = minutes
        for index, spread_id in enumerate(sessions):
            still_to_fill = len(sessions) - index - 1  # a minute at least each
            counted = max(1, min(MAX_SESSION_MINUTES, left - still_to_fill))
            left -= counted
            if counted != self.session_minutes[spread_id]:
                self.session_minutes[spread_id] = counted
                corrections.append(
                    submission(
                        "correct_session",
                        at,
                        session_id=spread_id,
                        minutes=counted,
                        reason="recount",
                    )
                )
        return self.record(corrections)

    # --- running honours -------------------------------------------------------

    def cli(self, *arguments: str) -> Result:
        return CliRunner().invoke(
            app,
            ["--db", self.ledger.database.url, *arguments],
            env={
                "LEDGER_KEY_DIRECTORY": str(self.key_directory),
                "LANG": "en_US.UTF-8",
            },
        )

    def honours(self, *arguments: str) -> list[str]:
        """`ledger honours ARGUMENTS`: the summary's lines (it must succeed)."""
        outcome = self.cli("honours", *arguments)
        assert outcome.exit_code == 0, (outcome.output, outcome.exception)
        lines = outcome.stdout.strip().splitlines()
        assert lines[-1].startswith("recorded=")
        return lines

    def live(self) -> tuple[int, int]:
        """Catch the projections up: the live volunteer_hours version, position."""
        engine = ProjectionEngine(self.ledger.database, ALL_PROJECTIONS)
        engine.catch_up()
        with self.ledger.database.reading() as conn:
            live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        return live.version, live.position

    def standings(
        self, rules: str, as_of: date, position: int | None = None
    ) -> dict[str, Standing]:
        version, head = self.live()
        with self.ledger.database.reading() as conn:
            return compute_standings(
                conn,
                version,
                load_rule_set(rules, as_of),
                as_of,
                head if position is None else position,
            )

    def plan(self, rules: str, as_of: date, position: int | None = None) -> HonoursRun:
        version, head = self.live()
        with self.ledger.database.reading() as conn:
            return plan_honours(
                conn,
                version,
                load_rule_set(rules, as_of),
                as_of,
                head if position is None else position,
            )

    def awards(self) -> list[tuple[str, dict[str, Any]]]:
        """Every award event recorded, in ledger order: (topic, payload)."""
        t = events_table.c
        with self.ledger.database.reading() as conn:
            rows = conn.execute(
                sa.select(t.topic, t.payload)
                .where(t.topic.in_(AWARD_TOPICS))
                .order_by(t.position)
            ).all()
        return [(topic, orjson.loads(payload)) for topic, payload in rows]

    def stars_recorded(self, rules: str) -> dict[str, list[int]]:
        """The star levels recorded per volunteer under ``rules``, in order."""
        levels: dict[str, list[int]] = defaultdict(list)
        for topic, payload in self.awards():
            if topic == "Honours.StarLevelReached" and payload["rules"] == rules:
                levels[payload["volunteer_id"]].append(payload["level"])
        return dict(levels)


@pytest.fixture
def town(ledger: Ledger, key_directory: Path) -> Town:
    t = Town(ledger, key_directory)
    t.record(
        [
            submission(
                "register_venue",
                datetime(2020, 1, 1, tzinfo=CHINA),
                venue_id=venue,
                name=f"venue {venue}",
                level=level,
                parent_id=parent,
            )
            for venue, level, parent in [
                ("C", "centre", None),
                ("I1", "institute", "C"),
                ("S1", "station", "I1"),
            ]
        ]
    )
    return t


def recorded(lines: list[str]) -> int:
    return int(lines[-1].removeprefix("recorded="))


def standings_line(lines: list[str]) -> str:
    (line,) = [x for x in lines if x.strip().startswith("standings:")]
    return line.strip()


def read_position(lines: list[str]) -> int:
    """The position a run read, from its first line ('... at position N: ...')."""
    return int(lines[0].split(" at position ")[1].split(":")[0])


# The long activities make-up hours are credited at (make-up hours may not
# exceed the scheduled duration; 1,600 h covers 5★).
MARCH_2024 = datetime(2024, 3, 1, 9, 0, tzinfo=CHINA)


# --- thresholds at their exact boundaries ----------------------------------------

BOUNDARY_MINUTES = {
    "N0": 5_999,
    "N1": 6_000,
    "N2": 17_999,
    "N3": 18_000,
    "N4": 89_999,
    "N5": 90_000,
}


def test_national_stars_are_reached_exactly_at_the_thresholds(town: Town) -> None:
    # Given six volunteers one minute either side of 1★, 2★ and 5★
    town.volunteers(*BOUNDARY_MINUTES)
    town.activity("LONG", MARCH_2024, hours=1_600)
    for volunteer_id, minutes in BOUNDARY_MINUTES.items():
        town.makeup(volunteer_id, "LONG", minutes)
    # When the national honours run goes as of the end of 2024
    before = town.head()
    lines = town.honours("--as-of", "2024-12-31", "--rules", "national")
    # Then each level is reached at its threshold, not a minute before
    assert "6 volunteers with counted service" in lines[0]
    assert standings_line(lines) == (
        "standings: no star: 1, ★: 2, ★★: 1, ★★★★: 1, ★★★★★: 1"
    )
    assert town.stars_recorded("national@1") == {
        "N1": [1],
        "N2": [1],
        "N3": [1, 2],
        "N4": [1, 2, 3, 4],
        "N5": [1, 2, 3, 4, 5],
    }
    # And every award names the rule version, the date and the position read
    position = read_position(lines)
    assert position == before
    # 13 levels, 5 Honours records opened, and the run's completion
    assert town.head() == before + 13 + 5 + 1
    for _topic, payload in town.awards():
        assert (payload["rules"], payload["as_of"], payload["position"]) == (
            "national@1",
            "2024-12-31",
            position,
        )
    # National rules credit no points and grant no benefits
    assert {topic for topic, _ in town.awards()} == {"Honours.StarLevelReached"}
    assert recorded(lines) == 13


def test_only_service_dated_up_to_the_as_of_day_counts(town: Town) -> None:
    # Given make-up hours dated at an activity starting 2024-03-01 09:00 CST
    town.with_makeup_hours({"N1": 6_000})
    # Then a run as of the day before counts nothing, as of that day counts them
    before = town.honours("--as-of", "2024-02-29", "--rules", "national", "--dry-run")
    assert "0 volunteers with counted service" in before[0]
    on_the_day = town.honours(
        "--as-of", "2024-03-01", "--rules", "national", "--dry-run"
    )
    assert "1 volunteers with counted service" in on_the_day[0]
    assert standings_line(on_the_day) == "standings: ★: 1"


# --- Kunshan: points and benefits ----------------------------------------------------


def test_kunshan_credits_ten_points_an_hour_and_benefits_by_stars(
    town: Town,
) -> None:
    # Given volunteers at 1★ (and a half hour more), 3★, 4★ and 5★
    minutes = {"K1": 6_030, "K3": 36_000, "K4": 60_000, "K5": 90_000}
    town.volunteers(*minutes, "K0")
    town.activity("LONG", MARCH_2024, hours=1_600)
    for volunteer_id, counted in minutes.items():
        town.makeup(volunteer_id, "LONG", counted)
    # And K0 with 59 minutes: no star, 9 points (59 × 10 // 60)
    town.activity("SHORT", datetime(2024, 4, 6, 9, 0, tzinfo=CHINA), hours=2)
    town.served("K0", "SHORT", datetime(2024, 4, 6, 9, 0, tzinfo=CHINA), 59)
    # When the Kunshan run goes
    lines = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # Then points are hours × 10 (whole points, rounded down)
    points = {
        p["volunteer_id"]: (p["points"], p["total"])
        for topic, p in town.awards()
        if topic == "Honours.PointsCredited"
    }
    assert points == {
        "K0": (9, 9),
        "K1": (1_005, 1_005),
        "K3": (6_000, 6_000),
        "K4": (10_000, 10_000),
        "K5": (15_000, 15_000),
    }
    # And the benefits follow the star levels: 3★ one, 4★ two, 5★ all three
    rules = load_rule_set("kunshan", date(2024, 12, 31))
    tiers = {b.stars: b.benefit for b in rules.benefits}
    benefits: dict[str, set[str]] = defaultdict(set)
    for topic, p in town.awards():
        if topic == "Honours.BenefitGranted":
            benefits[p["volunteer_id"]].add(p["benefit"])
    assert benefits == {
        "K3": {tiers[3]},
        "K4": {tiers[3], tiers[4]},
        "K5": {tiers[3], tiers[4], tiers[5]},
    }
    assert town.stars_recorded("kunshan@1") == {
        "K1": [1],
        "K3": [1, 2, 3],
        "K4": [1, 2, 3, 4],
        "K5": [1, 2, 3, 4, 5],
    }
    assert "  benefits to grant: 6; points to credit: 32014" in lines
    # 13 star levels, 6 benefits, 5 point credits
    assert recorded(lines) == 13 + 6 + 5
    # When K1 serves ten more hours and the run goes again
    town.activity("MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), hours=12)
    town.served("K1", "MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), 600)
    again = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # Then only the difference is credited, beside the new total
    assert recorded(again) == 1
    topic, payload = town.awards()[-1]
    assert topic == "Honours.PointsCredited"
    assert (payload["volunteer_id"], payload["points"], payload["total"]) == (
        "K1",
        100,
        1_105,
    )


# --- Zhangjiagang: the calendar year, verified hours, three months ---------------

YEAR_2023 = datetime(2023, 1, 1, 0, 0, tzinfo=CHINA)
YEAR_2024 = datetime(2024, 1, 1, 0, 0, tzinfo=CHINA)


def month_day(year: int, month: int, day: int = 10) -> datetime:
    return datetime(year, month, day, 8, 0, tzinfo=CHINA)


def test_zhangjiagang_counts_verified_hours_of_the_year_with_three_months(
    town: Town,
) -> None:
    town.volunteers("Z1", "Z2", "Z3", "Z4")
    town.activity("Y2023", YEAR_2023, hours=365 * 24 - 1)
    town.activity("Y2024", YEAR_2024, hours=366 * 24 - 1)
    town.activity("MAKEUP", month_day(2024, 3, 20), hours=200)
    # Z1: 30 h in January–March 2024 (and 24 h in December 2023)
    town.served("Z1", "Y2023", month_day(2023, 12), 1_440)
    for month in (1, 2, 3):
        town.served("Z1", "Y2024", month_day(2024, month), 600)
    # Z2: a minute short of 30 h in January–March 2024
    for month, minutes in ((1, 600), (2, 600), (3, 599)):
        town.served("Z2", "Y2024", month_day(2024, month), minutes)
    # Z3: 30 h, but in January, February and April (no three-month run)
    for month in (1, 2, 4):
        town.served("Z3", "Y2024", month_day(2024, month), 600)
    # Z4: 20 h verified in January–March, and 100 h of make-up
    for month in (1, 2, 3):
        town.served("Z4", "Y2024", month_day(2024, month), 400)
    town.makeup("Z4", "MAKEUP", 6_000)

    # When standings are computed as of the end of 2024
    end_2024 = town.standings("zhangjiagang", date(2024, 12, 31))
    # Then only 2024's verified minutes count, and three consecutive months
    # with service are needed
    assert {
        v: (s.counted_minutes, s.longest_streak_months, s.stars)
        for v, s in end_2024.items()
    } == {
        "Z1": (1_800, 3, 1),
        "Z2": (1_799, 3, 0),
        "Z3": (1_800, 2, 0),
        "Z4": (1_200, 3, 0),
    }
    # And as of the end of 2023 only 2023's service counts (one month of it)
    end_2023 = town.standings("zhangjiagang", date(2023, 12, 31))
    assert {
        v: (s.counted_minutes, s.longest_streak_months, s.stars)
        for v, s in end_2023.items()
    } == {"Z1": (1_440, 1, 0)}
    # And the run records Z1's star only
    lines = town.honours("--as-of", "2024-12-31", "--rules", "zhangjiagang")
    assert standings_line(lines) == "standings: no star: 3, ★: 1"
    assert town.stars_recorded("zhangjiagang@1") == {"Z1": [1]}
    assert recorded(lines) == 1
    # Whereas the national rules count every year, and make-up hours too
    cumulative = town.standings("national", date(2024, 12, 31))
    assert cumulative["Z1"].counted_minutes == 1_440 + 1_800
    assert cumulative["Z4"].counted_minutes == 1_200 + 6_000
    assert cumulative["Z4"].stars == 1


def test_the_year_is_the_china_standard_time_year(town: Town) -> None:
    # Given an activity spanning the 2024 new year
    town.volunteers("Y1", "Y2")
    town.activity("NEWYEAR", datetime(2023, 12, 31, 0, 0, tzinfo=CHINA), hours=2_000)
    # Y1 checks in at 2023-12-31T20:00Z = 2024-01-01 04:00 CST, for 20 h
    town.served("Y1", "NEWYEAR", datetime(2023, 12, 31, 20, 0, tzinfo=UTC), 1_200)
    # Y2 checks in at 2023-12-31T15:59Z = 2023-12-31 23:59 CST, for 20 h
    town.served("Y2", "NEWYEAR", datetime(2023, 12, 31, 15, 59, tzinfo=UTC), 1_200)
    # Both serve 5 h in February and in March 2024
    for volunteer_id in ("Y1", "Y2"):
        for month in (2, 3):
            town.served(volunteer_id, "NEWYEAR", month_day(2024, month), 300)

    # Then as of the end of 2024, Y1's new-year session counts in 2024: 30 h in
    # three months, 1★; Y2's counts in 2023
    end_2024 = town.standings("zhangjiagang", date(2024, 12, 31))
    assert (end_2024["Y1"].counted_minutes, end_2024["Y1"].stars) == (1_800, 1)
    assert end_2024["Y1"].longest_streak_months == 3
    assert (end_2024["Y2"].counted_minutes, end_2024["Y2"].stars) == (600, 0)
    # And as of 2023-12-31 (CST) Y1 has not served yet; Y2 has, in 2023
    end_2023 = town.standings("zhangjiagang", date(2023, 12, 31))
    assert set(end_2023) == {"Y2"}
    assert end_2023["Y2"].counted_minutes == 1_200
    # And as of 2024-01-01 Y1's session is there
    new_year = town.standings("zhangjiagang", date(2024, 1, 1))
    assert new_year["Y1"].counted_minutes == 1_200
    assert "Y2" not in new_year  # nothing of Y2's is dated in 2024 by then
    # And the run records Y1's star
    lines = town.honours("--as-of", "2024-12-31", "--rules", "zhangjiagang")
    assert town.stars_recorded("zhangjiagang@1") == {"Y1": [1]}
    assert recorded(lines) == 1


def test_a_cyclic_star_is_awarded_again_in_the_next_year(town: Town) -> None:
    # Given Z5 with 30 h in October–December 2023, awarded 1★ for 2023
    town.volunteers("Z5")
    town.activity("Y2023", YEAR_2023, hours=365 * 24 - 1)
    town.activity("Y2024", YEAR_2024, hours=366 * 24 - 1)
    for month in (10, 11, 12):
        town.served("Z5", "Y2023", month_day(2023, month), 600)
    first = town.honours("--as-of", "2023-12-31", "--rules", "zhangjiagang")
    assert recorded(first) == 1
    # When Z5 serves 30 h in January–March 2024 and the 2024 run goes
    for month in (1, 2, 3):
        town.served("Z5", "Y2024", month_day(2024, month), 600)
    second = town.honours("--as-of", "2024-12-31", "--rules", "zhangjiagang")
    # Then 2024's 1★ is a new award, recorded as of 2024-12-31
    assert standings_line(second) == "standings: ★: 1"
    assert recorded(second) == 1
    assert [
        p["as_of"] for topic, p in town.awards() if topic == "Honours.StarLevelReached"
    ] == ["2023-12-31", "2024-12-31"]


# --- the fraud bar ------------------------------------------------------------------


def test_a_fraud_void_bars_stars_for_the_rule_sets_years(town: Town) -> None:
    # Given F1 and F2 with 100 h of make-up hours and a 2 h verified session
    town.volunteers("F1", "F2")
    town.activity("LONG", MARCH_2024, hours=1_600)
    town.activity("APRIL", datetime(2024, 4, 13, 9, 0, tzinfo=CHINA), hours=3)
    forged = {}
    for volunteer_id in ("F1", "F2"):
        town.makeup(volunteer_id, "LONG", 6_000)
        forged[volunteer_id] = town.served(
            volunteer_id, "APRIL", datetime(2024, 4, 13, 9, 0, tzinfo=CHINA), 120
        )
    # When F1's session is voided for fraud on 2024-06-10 (CST) and F2's not
    voided_on = datetime(2024, 6, 10, 10, 0, tzinfo=CHINA)
    town.void(forged["F1"], voided_on, fraud=True)
    town.void(forged["F2"], voided_on, fraud=False)

    # Then under Kunshan (two-year bar) F1 has no star until 2026-06-10
    def kunshan(day: date) -> dict[str, tuple[int, int, int, date | None]]:
        return {
            v: (s.counted_minutes, s.stars, s.points, s.barred_until)
            for v, s in town.standings("kunshan", day).items()
        }

    barred_until = date(2026, 6, 10)
    assert kunshan(date(2024, 12, 31)) == {
        "F1": (6_000, 0, 1_000, barred_until),
        "F2": (6_000, 1, 1_000, None),
    }
    assert kunshan(date(2026, 6, 9))["F1"] == (6_000, 0, 1_000, barred_until)
    assert kunshan(date(2026, 6, 10))["F1"] == (6_000, 1, 1_000, None)
    # And a void dated after the as-of day does not bar yet
    assert kunshan(date(2024, 6, 9))["F1"] == (6_000, 1, 1_000, None)
    # And Zhangjiagang bars for one year, the national rules not at all
    zhangjiagang = town.standings("zhangjiagang", date(2024, 12, 31))
    assert "F1" not in zhangjiagang  # no verified minutes left in 2024
    assert town.standings("national", date(2024, 12, 31))["F1"].stars == 1

    # When the Kunshan run goes at the end of 2024
    lines = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # Then F1 is credited points but no star (the bar is on star ratings only:
    # DOMAIN.md "Hours voided for fraud can bar star ratings"), F2 both
    assert standings_line(lines) == "standings: no star: 1, ★: 1"
    assert town.stars_recorded("kunshan@1") == {"F2": [1]}
    credited = {
        p["volunteer_id"]: p["total"]
        for topic, p in town.awards()
        if topic == "Honours.PointsCredited"
    }
    assert credited == {"F1": 1_000, "F2": 1_000}
    assert recorded(lines) == 3
    # And once the bar has run out, F1's star is recorded
    later = town.honours("--as-of", "2026-06-10", "--rules", "kunshan")
    assert recorded(later) == 1
    assert town.stars_recorded("kunshan@1") == {"F1": [1], "F2": [1]}


def test_the_fraud_bar_runs_from_the_china_date_of_the_void(town: Town) -> None:
    # Given F3 with 100 h, and a session voided for fraud at 2024-06-09T17:00Z,
    # which is 2024-06-10 01:00 in China Standard Time
    town.with_makeup_hours({"F3": 6_000})
    town.activity("JUNE", datetime(2024, 6, 1, 9, 0, tzinfo=CHINA), hours=3)
    forged = town.makeup("F3", "JUNE", 180)
    town.void(forged, datetime(2024, 6, 9, 17, 0, tzinfo=UTC), fraud=True)
    # Then under Kunshan (two years) the bar runs from 2024-06-10 to 2026-06-10
    assert town.standings("kunshan", date(2024, 6, 9))["F3"].barred_until is None
    assert town.standings("kunshan", date(2024, 6, 10))["F3"].barred_until == date(
        2026, 6, 10
    )
    assert town.standings("kunshan", date(2026, 6, 10))["F3"].barred_until is None
    # And the national rules (no bar years) bar nothing
    assert town.standings("national", date(2024, 12, 31))["F3"].barred_until is None


def test_a_fraud_void_on_29_february_bars_without_crashing(town: Town) -> None:
    # Given a session voided for fraud on 2024-02-29 (CST), under Kunshan (2 y)
    town.volunteers("F4")
    town.activity("FEB", datetime(2024, 2, 1, 9, 0, tzinfo=CHINA), hours=1_600)
    town.makeup("F4", "FEB", 6_000)
    town.activity("FEB2", datetime(2024, 2, 3, 9, 0, tzinfo=CHINA), hours=3)
    forged = town.makeup("F4", "FEB2", 120)
    town.void(forged, datetime(2024, 2, 29, 10, 0, tzinfo=CHINA), fraud=True)
    # Then the bar ends on 2026-02-28 or 2026-03-01, and the run decides
    standing = town.standings("kunshan", date(2024, 12, 31))["F4"]
    assert standing.barred_until in (date(2026, 2, 28), date(2026, 3, 1))
    assert town.standings("kunshan", date(2026, 2, 27))["F4"].stars == 0
    assert town.standings("kunshan", date(2026, 3, 1))["F4"].stars == 1


# --- re-running, dry runs, reproduction ----------------------------------------------


def test_running_again_with_the_same_inputs_records_nothing_new(town: Town) -> None:
    town.with_makeup_hours({"R1": 6_000, "R3": 36_000})
    # When the run goes once
    first = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert recorded(first) == 1 + 1 + 3 + 1 + 1  # R1: ★, points; R3: ★★★, 1, pts
    events = town.head()
    awards = town.awards()
    # Then running again at the latest position, or at the position the first
    # run read, records nothing, and decides the same standings
    again = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    at_first = town.honours(
        "--as-of",
        "2024-12-31",
        "--rules",
        "kunshan",
        "--position",
        str(read_position(first)),
    )
    for rerun in (again, at_first):
        assert recorded(rerun) == 0
        assert standings_line(rerun) == standings_line(first)
        assert "  0 volunteers with awards not yet recorded" in rerun
    assert town.awards() == awards
    assert town.head() == events
    # And so does planning it directly
    assert town.plan("kunshan", date(2024, 12, 31)).changes == []
    # While another rule set keeps its own awards: national records its stars
    national = town.honours("--as-of", "2024-12-31", "--rules", "national")
    assert recorded(national) == 1 + 3
    assert town.stars_recorded("national@1") == {"R1": [1], "R3": [1, 2, 3]}
    assert town.stars_recorded("kunshan@1") == {"R1": [1], "R3": [1, 2, 3]}


def test_a_run_knows_the_awards_recorded_since_they_were_last_projected(
    town: Town,
) -> None:
    town.volunteers("P1", "P3")
    town.activity("LONG", MARCH_2024, hours=1_600)
    town.activity("LATER", MARCH_2024 + 200 * DAY, hours=1_600)
    town.makeup("P1", "LONG", 6_000)
    town.makeup("P3", "LONG", 36_000)
    # Given a mid-year run, projected; then more service, and a year-end run
    # whose awards the projections have not caught up with
    town.honours("--as-of", "2024-06-30", "--rules", "kunshan")
    town.live()
    town.makeup("P1", "LATER", 12_000)
    year_end = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert recorded(year_end) > 0
    as_of, rules = date(2024, 12, 31), load_rule_set("kunshan", date(2024, 12, 31))
    # When the next run plans before they catch up, and once they have
    with town.ledger.database.reading() as conn:
        lagging = ProjectionEngine.live_state(conn, HONOURS_AWARDS.name)
        assert lagging is not None and lagging.position < head_position(conn)
        hours = ProjectionEngine.live_state(conn, VOLUNTEER_HOURS.name)
        assert hours is not None
        before = plan_honours(conn, hours.version, rules, as_of, hours.position)
        read_lagging = HONOURS_AWARDS.recorded_awards(conn, "kunshan@1", None)
    after = town.plan("kunshan", as_of)
    with town.ledger.database.reading() as conn:
        caught_up = ProjectionEngine.live_state(conn, HONOURS_AWARDS.name)
        assert caught_up is not None and caught_up.position == head_position(conn)
        read_caught_up = HONOURS_AWARDS.recorded_awards(conn, "kunshan@1", None)

    # Then both find nothing left to record
    assert before.changes == after.changes == []
    # And both read what the award events say is held: P1's first star from
    # the projected run and the second from the unprojected one
    held: dict[str, tuple[int, set[str], int]] = {}
    for topic, payload in town.awards():
        stars, benefits, points = held.get(payload["volunteer_id"], (0, set(), 0))
        if topic == "Honours.StarLevelReached":
            stars = max(stars, payload["level"])
        elif topic == "Honours.BenefitGranted":
            benefits = benefits | {payload["benefit"]}
        else:
            points = payload["total"]
        held[payload["volunteer_id"]] = (stars, benefits, points)
    assert read_lagging == read_caught_up == held
    assert held["P1"][0] == 2 and held["P1"][2] == 3_000
    assert held["P3"][0] == 3 and held["P3"][2] == 6_000


def test_two_runs_planned_at_once_record_each_award_once(town: Town) -> None:
    town.with_makeup_hours({"W1": 6_000, "W3": 36_000})
    as_of = date(2024, 12, 31)
    # Given two runs that both planned before either recorded
    first, second = town.plan("kunshan", as_of), town.plan("kunshan", as_of)
    assert len(first.changes) == len(second.changes) == 2
    # And, between planning and recording, W1's star recorded by a command
    town.record(
        [
            submission(
                "record_honours",
                datetime(2025, 1, 1, tzinfo=CHINA),
                volunteer_id="W1",
                rules="kunshan@1",
                stars=1,
                benefits=[],
                points=0,
                as_of="2024-12-31",
                position=first.position,
            )
        ]
    )
    # When both record
    recorded_first = record_honours(town.ledger, first)
    awards = town.awards()
    recorded_second = record_honours(town.ledger, second)
    # Then the first, finding W1's record moved on, decides W1 again and
    # credits only the points; the second finds everything recorded
    assert recorded_first == 1 + (3 + 1 + 1)  # W1: points; W3: ★★★, 1, points
    assert recorded_second == 0
    assert town.awards() == awards
    assert town.stars_recorded("kunshan@1") == {"W1": [1], "W3": [1, 2, 3]}
    credited = [
        (p["volunteer_id"], p["points"], p["total"])
        for topic, p in awards
        if topic == "Honours.PointsCredited"
    ]
    assert sorted(credited) == [("W1", 1_000, 1_000), ("W3", 6_000, 6_000)]


def test_a_run_records_what_the_honours_record_itself_would(town: Town) -> None:
    town.with_makeup_hours({"A1": 6_000, "A5": 90_000})
    # Given a run recorded, then A1 serving ten hours more and a second run
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    town.activity("MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), hours=12)
    town.served("A1", "MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), 600)
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # When the volunteers' honours records are loaded from their events
    records = town.ledger.load_aggregates(
        [Honours.create_id("A1"), Honours.create_id("A5")]
    )
    a1, a5 = (records[Honours.create_id(v)] for v in ("A1", "A5"))
    assert isinstance(a1, Honours) and isinstance(a5, Honours)
    # Then they hold what the runs decided, at versions that count their events
    tiers = [b.benefit for b in load_rule_set("kunshan", date(2024, 12, 31)).benefits]
    assert a1.held("kunshan@1", None) == (1, frozenset(), 1_100)
    assert a5.held("kunshan@1", None) == (5, frozenset(tiers), 15_000)
    assert (a1.version, a5.version) == (1 + 1 + 2, 1 + 5 + 3 + 1)
    # And a command asking for the same is refused: there is nothing to change
    (result,) = town.ledger.execute_batch(
        [
            submission(
                "record_honours",
                datetime(2025, 1, 1, tzinfo=CHINA),
                volunteer_id="A5",
                rules="kunshan@1",
                stars=5,
                benefits=tiers,
                points=15_000,
                as_of="2024-12-31",
                position=town.head(),
            )
        ]
    )
    assert result.outcome is Outcome.REJECTED
    assert "already holds these honours" in str(result.reason)


def test_a_run_stores_its_awards_as_the_librarys_own_mapper_would(
    town: Town,
) -> None:
    # Given a volunteer with verified service in each of three months of
    # 2024 and 1,500 h of make-up: 5★ under Kunshan's cumulative rules, with
    # every benefit, and 1★ in Zhangjiagang's 2024 cycle
    town.volunteers("M1")
    town.activity("Y2024", YEAR_2024, hours=366 * 24 - 1)
    for month in (1, 2, 3):
        town.served("M1", "Y2024", month_day(2024, month), 600)
    town.activity("LONG", MARCH_2024, hours=1_600)
    town.makeup("M1", "LONG", 90_000)
    # When both runs record the awards, appended in bulk
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    town.honours("--as-of", "2024-12-31", "--rules", "zhangjiagang")
    # Then every event of the volunteer's record, read back through the
    # library's mapper, is stored as the mapper itself stores that event
    ledger = town.ledger
    stored = ledger.recorder.select_events(Honours.create_id("M1"))
    assert [event.topic for event in stored] == [
        "Honours.Opened",
        *["Honours.StarLevelReached"] * 5,
        *["Honours.BenefitGranted"] * 3,
        "Honours.PointsCredited",
        "Honours.StarLevelReached",  # Zhangjiagang credits no points
    ]
    assert [
        ledger.mapper.to_stored_event(ledger.mapper.to_domain_event(event))
        for event in stored
    ] == stored


def test_events_with_personal_data_are_never_appended_in_bulk(town: Town) -> None:
    # Given a registration described as the bulk path takes decided events
    registration = DescribedEvent(
        Volunteer.create_id("P1"),
        1,
        Volunteer.Registered,
        {
            "volunteer_id": "P1",
            "name": "王小明",
            "id_number": id_number(serial=1),
            "phone": None,
            "team_ids": [],
        },
    )
    envelope = Envelope(
        actor_id="honours",
        actor_role="system",
        at=datetime.now(UTC),
        source="cli",
        correlation_id="bulk",
        caller="cli",
    )
    head = town.head()
    # Then it is refused, its personal fields being sealed only by the
    # ledger's mapper, and nothing is written
    with pytest.raises(TypeError, match="carries personal data"):
        append_described(town.ledger, envelope, [registration], datetime.now(UTC))
    assert town.head() == head


def record_a_run_a_volunteer_at_a_time(url: str, key_directory: str) -> None:
    """In a child process: the Kunshan run as of the end of 2024, as
    `ledger honours` goes, recording one volunteer per transaction."""
    database = Database(url)
    ledger = open_ledger(database, Path(key_directory))
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.catch_up()
    as_of = date(2024, 12, 31)
    with database.reading() as conn:
        live = engine.live_version(conn, VOLUNTEER_HOURS.name)
        assert live is not None
        rules = load_rule_set("kunshan", as_of)
        run = plan_honours(conn, live.version, rules, as_of, live.position)
    record_honours(ledger, run, batch=1)


def test_a_run_killed_while_recording_and_run_again_awards_each_once(
    town: Town,
) -> None:
    # Given 24 volunteers with 1–24 h of service and one with 100 h (1★):
    # 25 records to open, 26 award events (points for all, K99's star)
    minutes = {f"K{n:02d}": 60 * n for n in range(1, 25)} | {"K99": 6_000}
    town.with_makeup_hours(minutes)
    before = town.head()
    # When a run recording a volunteer per transaction is killed (SIGKILL)
    # once it has recorded two
    child = multiprocessing.get_context("spawn").Process(
        target=record_a_run_a_volunteer_at_a_time,
        args=(town.ledger.database.url, str(town.key_directory)),
    )
    child.start()
    while child.is_alive() and town.head() < before + 4:
        time.sleep(0.001)
    child.kill()
    child.join()
    killed_at = town.head()
    assert before < killed_at < before + 25 + 26, "the kill came mid-run"
    awarded = len(town.awards())
    # And the run goes again
    lines = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # Then it records what the killed run had not, and each volunteer holds
    # each award once: what one clean run records
    assert recorded(lines) == 26 - awarded
    credited = sorted(
        (p["volunteer_id"], p["points"], p["total"])
        for topic, p in town.awards()
        if topic == "Honours.PointsCredited"
    )
    assert credited == sorted(
        (volunteer_id, counted // 6, counted // 6)
        for volunteer_id, counted in minutes.items()
    )
    assert town.stars_recorded("kunshan@1") == {"K99": [1]}
    records = town.ledger.load_aggregates(
        [Honours.create_id(volunteer_id) for volunteer_id in minutes]
    )
    assert sorted(record.version for record in records.values()) == [2] * 24 + [3]
    # And a run from scratch finds nothing left to record
    version, head = town.live()
    with town.ledger.database.reading() as conn:
        again = plan_honours(
            conn,
            version,
            load_rule_set("kunshan", date(2024, 12, 31)),
            date(2024, 12, 31),
            head,
            from_scratch=True,
        )
    assert again.changes == []


def decided(run: HonoursRun) -> dict[str, Any]:
    """All a plan decides: the summary and each change, version and due."""
    return {
        "volunteers": run.volunteers,
        "standings": {s: n for s, n in run.standings_by_stars.items() if n},
        "new_stars": dict(run.new_stars),
        "new_benefits": run.new_benefits,
        "points_credited": run.points_credited,
        "changes": [
            (c.standing.volunteer_id, c.standing.stars, c.version, c.due)
            for c in run.changes
        ],
    }


def assert_builds_on_the_last_run(
    town: Town, rules: str, as_of: date, position: int | None = None
) -> HonoursRun:
    """A plan that builds on an earlier run decides what one from scratch
    does; return it."""
    version, head = town.live()
    at = head if position is None else position
    rule_set = load_rule_set(rules, as_of)
    with town.ledger.database.reading() as conn:
        built_on = plan_honours(conn, version, rule_set, as_of, at)
        scratch = plan_honours(conn, version, rule_set, as_of, at, from_scratch=True)
    assert built_on.since is not None
    assert scratch.since is None
    assert decided(built_on) == decided(scratch)
    return built_on


def test_a_run_builds_on_the_last_and_decides_as_from_scratch(town: Town) -> None:
    # Given six volunteers, a run under Kunshan's rules as of the end of 2024,
    # and one volunteer's service already dated in January 2025
    town.volunteers("B1", "B2", "B3", "B4", "B5", "B6")
    town.activity("LONG", MARCH_2024, hours=1_600)
    town.activity("JAN", datetime(2025, 1, 10, 9, 0, tzinfo=CHINA), hours=1_600)
    town.activity("MAY", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), hours=12)
    for volunteer_id, minutes in [("B1", 5_990), ("B2", 6_000), ("B3", 17_000)]:
        town.makeup(volunteer_id, "LONG", minutes)
    corrected = town.served("B4", "MAY", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), 600)
    forged = town.served("B5", "MAY", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), 600)
    town.makeup("B5", "LONG", 6_000)
    town.makeup("B6", "JAN", 6_000)
    first = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert recorded(first) > 0
    after_first = town.head()
    # When, since, B1 serves ten minutes more, B4's session is corrected down,
    # B5's is voided for fraud, and nothing happens to B2, B3 and B6
    town.activity("JUNE", datetime(2024, 6, 1, 8, 0, tzinfo=CHINA), hours=12)
    town.served("B1", "JUNE", datetime(2024, 6, 1, 8, 0, tzinfo=CHINA), 10)
    town.correct(corrected, 300, datetime(2025, 1, 2, 9, 0, tzinfo=CHINA))
    town.void(forged, datetime(2025, 1, 3, 9, 0, tzinfo=CHINA), fraud=True)
    # Then the next run, as of the same day, decides B1, B4 and B5 again
    # and all the others as the first run did, as one from scratch would
    again = assert_builds_on_the_last_run(town, "kunshan", date(2024, 12, 31))
    assert [c.standing.volunteer_id for c in again.changes] == ["B1"]
    # And a run as of a later day also counts B6's January service, recorded
    # before the first run but dated after its as-of day
    later = assert_builds_on_the_last_run(town, "kunshan", date(2025, 1, 31))
    assert [c.standing.volunteer_id for c in later.changes] == ["B1", "B6"]
    # And at a position between the two, it builds on the first run too
    assert_builds_on_the_last_run(
        town, "kunshan", date(2025, 1, 31), position=after_first + 3
    )
    # And once the later run is recorded, the next builds on it
    town.honours("--as-of", "2025-01-31", "--rules", "kunshan")
    town.activity("JULY", datetime(2024, 7, 6, 8, 0, tzinfo=CHINA), hours=12)
    town.makeup("B2", "JULY", 60)
    last = assert_builds_on_the_last_run(town, "kunshan", date(2025, 1, 31))
    assert last.since is not None and last.since > after_first
    assert [c.standing.volunteer_id for c in last.changes] == ["B2"]


def test_a_fraud_void_dated_after_the_last_runs_day_bars_the_next(town: Town) -> None:
    town.volunteers("D1", "D2")
    town.activity("LONG", MARCH_2024, hours=1_600)
    may = datetime(2024, 5, 4, 8, 0, tzinfo=CHINA)
    town.activity("MAY", may, hours=12)
    town.makeup("D1", "LONG", 6_000)
    town.makeup("D2", "LONG", 6_000)
    forged = town.served("D1", "MAY", may, 60)
    # Given a void for fraud dated 3 January 2025, recorded before a run as of
    # the end of 2024 (which it does not bar yet)
    town.void(forged, datetime(2025, 1, 3, 9, 0, tzinfo=CHINA), fraud=True)
    first = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert standings_line(first) == "standings: ★: 2"
    # When the next run goes as of the end of January, then D1 is barred,
    # though nothing about D1 was recorded since the first run
    later = assert_builds_on_the_last_run(town, "kunshan", date(2025, 1, 31))
    assert dict(later.standings_by_stars) == {0: 1, 1: 1}


def test_a_run_decides_from_scratch_with_nothing_to_build_on(town: Town) -> None:
    town.with_makeup_hours({"S1": 6_000})
    # A first run, a dry run, and a run at a position before the last run's
    assert town.plan("kunshan", date(2024, 12, 31)).since is None
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan", "--dry-run")
    assert town.plan("kunshan", date(2024, 12, 31)).since is None
    before = town.head()
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert town.plan("kunshan", date(2024, 12, 31)).since == before
    assert town.plan("kunshan", date(2024, 12, 31), position=before - 1).since is None
    # An earlier as-of day, another rule set or another cycle
    assert town.plan("kunshan", date(2024, 12, 30)).since is None
    assert town.plan("national", date(2024, 12, 31)).since is None
    town.honours("--as-of", "2024-12-31", "--rules", "zhangjiagang")
    assert town.plan("zhangjiagang", date(2025, 3, 31)).since is None


RANDOM_RULES = ("kunshan", "zhangjiagang", "national")
RANDOM_AS_OFS = tuple(
    date.fromisoformat(day)
    for day in (
        "2024-03-31",
        "2024-06-30",
        "2024-12-31",
        "2025-02-28",
        "2025-06-30",
        "2026-06-30",
    )
)


def random_history_step(town: Town, rng: random.Random, sessions: list[str]) -> None:
    """One thing that happens to the ledger: service, a correction, a void
    (mostly for fraud), an award recorded by hand, or an honours run (at an
    earlier position or dry, now and then)."""
    volunteer = rng.choice(("R1", "R2", "R3", "R4", "R5", "R6"))
    draw = rng.random()
    if draw < 0.35:
        activity_id = rng.choice(sorted(town.activities))
        starts = town.activities[activity_id]
        if (volunteer, activity_id) not in town.signed_up and activity_id[0] == "M":
            minutes = rng.choice((300, 900, 1_400))
            sessions.append(town.served(volunteer, activity_id, starts, minutes))
    elif draw < 0.45:
        with contextlib.suppress(AssertionError):  # one make-up per activity
            activity_id = rng.choice(("LONG", "LATE"))
            minutes = rng.choice((3_000, 6_000, 20_000))
            sessions.append(town.makeup(volunteer, activity_id, minutes))
    elif draw < 0.65 and sessions:
        session_id = rng.choice(sessions)
        at = town.session_ends[session_id] + rng.randint(1, 200) * DAY
        if draw < 0.55:
            change = submission(
                "correct_session",
                at,
                session_id=session_id,
                minutes=rng.choice((60, 200, 700)),
                reason="recount",
            )
        else:
            change = submission(
                "void_session",
                at,
                session_id=session_id,
                reason="伪造签到 forged sign-in",
                fraud=rng.random() < 0.7,
            )
        town.ledger.execute_batch([change])  # refused when already voided
    elif draw < 0.7:
        as_of = rng.choice(RANDOM_AS_OFS)
        rules = rng.choice(RANDOM_RULES)
        town.ledger.execute_batch(
            [
                submission(
                    "record_honours",
                    datetime(2026, 7, 1, tzinfo=CHINA),
                    volunteer_id=volunteer,
                    rules=load_rule_set(rules, as_of).label,
                    cycle=str(as_of.year) if rules == "zhangjiagang" else None,
                    stars=rng.randint(0, 2),
                    benefits=[],
                    points=rng.choice((0, 500)),
                    as_of=as_of.isoformat(),
                    position=town.head(),
                )
            ]
        )
    else:
        arguments = ["--as-of", rng.choice(RANDOM_AS_OFS).isoformat()]
        arguments += ["--rules", rng.choice(RANDOM_RULES)]
        if rng.random() < 0.3:
            arguments += ["--position", str(rng.randint(1, town.head()))]
        if rng.random() < 0.15:
            arguments.append("--dry-run")
        town.honours(*arguments)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_over_a_random_history_built_on_plans_decide_as_from_scratch(
    town: Town, seed: int
) -> None:
    # Given six volunteers and a monthly activity from November 2023 to June
    # 2025, and long activities for make-up hours early 2024 and early 2025
    town.volunteers("R1", "R2", "R3", "R4", "R5", "R6")
    for month in range(20):
        year, month_index = divmod(2023 * 12 + 10 + month, 12)
        starts = datetime(year, month_index + 1, 5, 8, 0, tzinfo=CHINA)
        town.activity(f"M{month:02d}", starts, hours=24)
    town.activity("LONG", datetime(2024, 2, 1, 9, 0, tzinfo=CHINA), hours=1_600)
    town.activity("LATE", datetime(2025, 1, 20, 9, 0, tzinfo=CHINA), hours=1_600)
    # And each of them serving March to May 2024: three months, 15 or 30 h
    # (Zhangjiagang's first star), so that every rule set has stars to award
    sessions = [
        town.served(volunteer, month, town.activities[month], minutes)
        for volunteer, minutes in zip(
            ("R1", "R2", "R3", "R4", "R5", "R6"), (600, 300) * 3, strict=True
        )
        for month in ("M04", "M05", "M06")
    ]
    rng = random.Random(seed)
    built_on = 0
    # When things happen at random, with honours runs among them
    for step in range(32):
        random_history_step(town, rng, sessions)
        if step % 4 != 3:
            continue
        # Then at every moment, for every rule set and as-of date, a plan that
        # builds on an earlier run decides what one from scratch does
        version, head = town.live()
        for rules in RANDOM_RULES:
            for as_of in RANDOM_AS_OFS:
                rule_set = load_rule_set(rules, as_of)
                for at in {head, rng.randint(1, head)}:
                    with town.ledger.database.reading() as conn:
                        plan = plan_honours(conn, version, rule_set, as_of, at)
                        scratch = plan_honours(
                            conn, version, rule_set, as_of, at, from_scratch=True
                        )
                    assert decided(plan) == decided(scratch), (rules, as_of, at)
                    built_on += plan.since is not None
    assert built_on > 0, "no plan built on an earlier run: the test proves nothing"


def rebuild_refusing(
    engine: ProjectionEngine,
    projection: Projection,
    refused: Callable[[RecordedEvent], bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rebuild ``projection`` with a fold that cannot process the events
    ``refused`` picks (a stand-in for any fold failure): they are parked."""
    kind = type(projection)
    fold = kind.evolve

    def failing(self: Projection, event: RecordedEvent) -> list[Entry]:
        if refused(event):
            raise KeyError("a field the fold expects")
        return fold(self, event)

    with monkeypatch.context() as patched:
        patched.setattr(kind, "evolve", failing)
        engine.rebuild([projection.name])


def test_a_run_refuses_while_awards_are_parked_unread(
    town: Town, monkeypatch: pytest.MonkeyPatch
) -> None:
    town.with_makeup_hours({"X1": 6_000})
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    # Given honours_awards rebuilt by a fold that cannot read a level reached
    # (a stand-in for any fold failure): the event is parked
    engine = ProjectionEngine(town.ledger.database, ALL_PROJECTIONS)
    rebuild_refusing(
        engine,
        HONOURS_AWARDS,
        lambda event: event.topic == "Honours.StarLevelReached",
        monkeypatch,
    )
    town.activity("MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), hours=12)
    town.served("X1", "MORE", datetime(2024, 5, 4, 8, 0, tzinfo=CHINA), 60)
    head = town.head()
    # When a run goes, then it refuses, naming the projection, and records
    # nothing (it would not know X1 holds 1★, and award it again)
    outcome = town.cli("honours", "--as-of", "2024-12-31", "--rules", "kunshan")
    assert outcome.exit_code == 3, outcome.output
    assert "honours_awards has 1 award event(s) it could not process" in (
        outcome.output
    )
    assert town.head() == head
    # And once the projection is rebuilt by a fold that reads it, the run
    # credits X1's new hour alone
    engine.rebuild([HONOURS_AWARDS.name])
    lines = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert recorded(lines) == 1
    assert town.stars_recorded("kunshan@1") == {"X1": [1]}


def test_a_run_repeated_after_hours_were_rebuilt_records_what_they_show(
    town: Town, monkeypatch: pytest.MonkeyPatch
) -> None:
    town.volunteers("K1", "K2")
    town.activity("LONG", MARCH_2024, hours=1_600)
    town.activity("OTHER", MARCH_2024 + DAY, hours=1_600)
    town.makeup("K1", "LONG", 6_000)
    town.makeup("K2", "LONG", 6_000)
    parked = town.makeup("K1", "OTHER", 12_000)
    # Given volunteer_hours rebuilt by a fold that parks K1's second approval,
    # and a run on what it shows
    engine = ProjectionEngine(town.ledger.database, ALL_PROJECTIONS)
    rebuild_refusing(
        engine,
        VOLUNTEER_HOURS,
        lambda event: event.payload.get("session_id") in town.spread[parked],
        monkeypatch,
    )
    first = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert town.stars_recorded("kunshan@1") == {"K1": [1], "K2": [1]}
    # When the fold is mended, volunteer_hours rebuilt, and the run repeated
    # at the position it read
    engine.rebuild([VOLUNTEER_HOURS.name])
    again = town.honours(
        "--as-of",
        "2024-12-31",
        "--rules",
        "kunshan",
        "--position",
        str(read_position(first)),
    )
    # Then it records what K1 is owed by the hours now shown: 2★ and the
    # 2,000 points of the parked 200 h, nothing twice
    assert recorded(again) == 2
    assert town.stars_recorded("kunshan@1") == {"K1": [1, 2], "K2": [1]}


def test_the_awards_of_one_run_share_its_correlation_id(town: Town) -> None:
    town.with_makeup_hours({"C1": 6_000, "C3": 36_000})
    # When two runs record awards, under two rule sets
    town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    town.honours("--as-of", "2024-12-31", "--rules", "national")

    # Then each run's award events share one correlation id, its own
    t = events_table.c
    with town.ledger.database.reading() as conn:
        rows = conn.execute(
            sa.select(t.correlation_id, t.payload).where(t.topic.in_(AWARD_TOPICS))
        ).all()
    by_run: dict[str, set[str]] = defaultdict(set)
    for correlation_id, payload in rows:
        by_run[orjson.loads(payload)["rules"]].add(correlation_id)
    assert {rules: len(ids) for rules, ids in by_run.items()} == {
        "kunshan@1": 1,
        "national@1": 1,
    }
    assert by_run["kunshan@1"] != by_run["national@1"]


def test_a_dry_run_decides_but_records_nothing(town: Town) -> None:
    town.with_makeup_hours({"D1": 6_000, "D5": 90_000})
    events = town.head()
    # When a dry run goes (twice)
    dry = town.honours("--as-of", "2024-12-31", "--rules", "kunshan", "--dry-run")
    assert (
        town.honours("--as-of", "2024-12-31", "--rules", "kunshan", "--dry-run") == dry
    )
    # Then nothing is recorded, yet the summary says what a real run would do
    assert recorded(dry) == 0
    assert town.head() == events
    assert town.awards() == []
    real = town.honours("--as-of", "2024-12-31", "--rules", "kunshan")
    assert real[:-1] == dry[:-1]
    assert recorded(real) == (1 + 1) + (5 + 3 + 1)


def test_a_run_at_an_earlier_position_decides_what_was_decided_then(
    town: Town,
) -> None:
    # Given P1 and P3 at exactly 100 h, P2 a minute short
    town.volunteers("P1", "P2", "P3")
    town.activity("LONG", MARCH_2024, hours=1_600)
    sessions = {v: town.makeup(v, "LONG", 6_000) for v in ("P1", "P3")}
    sessions["P2"] = town.makeup("P2", "LONG", 5_999)
    town.activity("JULY", datetime(2024, 7, 6, 9, 0, tzinfo=CHINA), hours=3)
    extra = town.served("P3", "JULY", datetime(2024, 7, 6, 9, 0, tzinfo=CHINA), 60)
    # And what a run at this position decides
    then = town.head()
    as_of = ("--as-of", "2024-12-31", "--rules", "kunshan")
    decided = town.honours(*as_of, "--dry-run")
    assert read_position(decided) == then
    standings_then = town.standings("kunshan", date(2024, 12, 31))
    # When later the sessions are corrected and voided (P3's for fraud)
    later = datetime(2024, 9, 2, 10, 0, tzinfo=CHINA)
    town.correct(sessions["P1"], 5_999, later)
    town.correct(sessions["P2"], 6_000, later)
    town.void(extra, later, fraud=True)
    town.void(sessions["P3"], later + MINUTE, fraud=False)
    # Then a run at the earlier position decides exactly what it did then:
    # the same summary, the same standings volunteer by volunteer
    assert town.honours(*as_of, "--dry-run", "--position", str(then)) == decided
    assert town.standings("kunshan", date(2024, 12, 31), then) == standings_then
    first = town.honours(*as_of, "--position", str(then))
    assert first[:-1] == decided[:-1]
    assert recorded(first) == 5  # P1, P3: ★ + points; P2: points
    # And running it again there records nothing, deciding the same standings
    again = town.honours(*as_of, "--position", str(then))
    assert standings_line(again) == standings_line(decided)
    assert recorded(again) == 0
    # While at the latest position the corrections count: P2 reaches 1★ now,
    # P3 has nothing left, P1 keeps the star recorded (never taken back)
    now = town.standings("kunshan", date(2024, 12, 31))
    assert {v: (s.counted_minutes, s.stars) for v, s in now.items()} == {
        "P1": (5_999, 0),
        "P2": (6_000, 1),
    }
    latest = town.honours(*as_of)
    assert recorded(latest) == 2  # P2 ★ + points
    assert town.stars_recorded("kunshan@1") == {"P1": [1], "P2": [1], "P3": [1]}
    # And the earlier position still decides as it did
    assert standings_line(
        town.honours(*as_of, "--dry-run", "--position", str(then))
    ) == standings_line(decided)


def test_a_first_run_at_an_earlier_position_records_what_was_due_then(
    town: Town,
) -> None:
    # Given Q1 at 100 h, later corrected down to 90 h, before any run
    town.volunteers("Q1")
    town.activity("LONG", MARCH_2024, hours=1_600)
    session_id = town.makeup("Q1", "LONG", 6_000)
    then = town.head()
    town.correct(session_id, 5_400, datetime(2024, 9, 2, 10, 0, tzinfo=CHINA))
    # Then the latest position gives no star; the earlier one gives 1★, and a
    # run there records it as of that position
    as_of = ("--as-of", "2024-12-31", "--rules", "national")
    assert standings_line(town.honours(*as_of, "--dry-run")) == "standings: no star: 1"
    lines = town.honours(*as_of, "--position", str(then))
    assert standings_line(lines) == "standings: ★: 1"
    assert recorded(lines) == 1
    ((_, payload),) = town.awards()
    assert (payload["volunteer_id"], payload["level"], payload["position"]) == (
        "Q1",
        1,
        then,
    )


def test_an_honours_run_refuses_bad_arguments(town: Town) -> None:
    town.volunteers("E1")
    head = town.head()
    for arguments, message in [
        (("--as-of", "2024-12-31", "--rules", "atlantis"), "no rule set"),
        (("--as-of", "2024-12-31", "--rules", "national@9"), "no rule set"),
        (("--as-of", "2019-06-01", "--rules", "national"), "no rule set"),
        (("--as-of", "31/12/2024", "--rules", "national"), ""),
        (
            ("--as-of", "2024-12-31", "--rules", "national", "--position", "99999"),
            "no position",
        ),
    ]:
        outcome = town.cli("honours", *arguments)
        assert outcome.exit_code == 2, (arguments, outcome.output)
        assert isinstance(outcome.exception, SystemExit)
        assert message in outcome.output
    assert town.head() == head


def test_honours_for_an_unregistered_volunteer_are_refused_and_write_nothing(
    town: Town,
) -> None:
    town.volunteers("H1")
    events = town.head()
    honours = {
        "rules": "kunshan@1",
        "stars": 1,
        "benefits": [],
        "points": 1_000,
        "as_of": "2024-12-31",
        "position": events,
    }
    at = datetime(2025, 1, 1, tzinfo=CHINA)
    # When one batch records honours for H1 and for nobody's H9
    results = town.ledger.execute_batch(
        [
            submission("record_honours", at, volunteer_id="H9", **honours),
            submission("record_honours", at, volunteer_id="H1", **honours),
        ]
    )
    # Then H9's are refused, naming the volunteer, and only H1's are written
    refused, accepted = results
    assert refused.outcome is Outcome.REJECTED
    assert "volunteer 'H9' is not registered" in str(refused.reason)
    assert accepted.outcome is Outcome.ACCEPTED
    assert town.head() == events + 1 + 1 + 1  # H1's record opened, ★, points


def test_the_longest_honours_a_command_accepts_are_projected(town: Town) -> None:
    town.volunteers("L1")
    at = datetime(2025, 1, 1, tzinfo=CHINA)
    # Given an award with the longest rule set, cycle and benefit accepted
    longest = {
        "rules": "r" * 60,
        "cycle": "c" * 20,
        "stars": 1,
        "benefits": ["益" * 500],
        "points": 10,
        "as_of": "2024-12-31",
        "position": town.head(),
    }
    (result,) = town.ledger.execute_batch(
        [submission("record_honours", at, volunteer_id="L1", **longest)]
    )
    assert result.outcome is Outcome.ACCEPTED

    # When the projections catch up, then it is projected, on either engine
    engine = ProjectionEngine(town.ledger.database, ALL_PROJECTIONS)
    engine.catch_up()
    assert all(check.ok for check in engine.verify())
    with town.ledger.database.reading() as conn:
        awards = HONOURS_AWARDS.recorded_awards(conn, "r" * 60, "c" * 20)
    assert awards == {"L1": (1, {"益" * 500}, 10)}


def test_honours_for_a_volunteer_registered_in_the_same_batch_are_recorded(
    town: Town,
) -> None:
    events = town.head()
    at = datetime(2025, 1, 1, tzinfo=CHINA)
    results = town.ledger.execute_batch(
        [
            submission(
                "register_volunteer",
                at,
                volunteer_id="H2",
                name="志愿者H2",
                id_number=id_number(),
            ),
            submission(
                "record_honours",
                at,
                volunteer_id="H2",
                rules="national@1",
                stars=1,
                benefits=[],
                points=0,
                as_of="2024-12-31",
                position=events,
            ),
        ]
    )
    assert [r.outcome for r in results] == [Outcome.ACCEPTED, Outcome.ACCEPTED]
    assert town.head() == events + 1 + 1 + 1  # registered, record opened, ★
