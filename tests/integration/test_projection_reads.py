"""The reads (LedgerReads) on a real SQLite file and real PostgreSQL: figures
as of any position or recording time equal a replay of only the events known
then, every answer cites the position and chain hash it reflects,
explanations sum exactly to the figures, and the CONTRACT §2–§3 definitions
hold on a hand-built scenario."""

from __future__ import annotations

import itertools
import json
import random
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from ledger.application.ledger import Ledger
from ledger.engine import (
    ProjectionEngine,
    RecordedEvent,
    projection_changes_noted_table,
    projection_changes_table,
    projection_versions_table,
)
from ledger.projections.registry import (
    ALL_PROJECTIONS,
    ORDER_FULFILMENT,
    VENUE_ACTIVITY,
)
from ledger.reads.answers import (
    ActivityContribution,
    ActivityExplanation,
    CitedAnswer,
    FulfilmentContribution,
    FulfilmentExplanation,
)
from ledger.reads.queries import (
    InvalidReadError,
    LedgerReads,
    NotFoundError,
    VenueQuery,
)
from ledger.store.event_store import Database
from tests.factories import (
    activity,
    id_number,
    record_all,
    register_venue,
    small_city,
    submission,
)
from tests.integration.projection_helpers import (
    CHINA,
    DAY,
    EVERY_TOPIC,
    HOUR,
    MINUTE,
    ONE_MICROSECOND,
    PROJECTIONS,
    append_city,
    chain_hashes,
    expected_fulfilment,
    expected_venue_activity,
    expected_volunteer_hours,
    live_figures,
    load_events,
    parse_recorded,
    pick,
    recorded_times,
    replay,
    run_cli,
)

SEED = 20_240_601
HOURS_FIELDS = (
    "verified_minutes",
    "makeup_minutes",
    "total_minutes",
    "sessions",
    "by_year",
    "stars",
)
ACTIVITY_FIELDS = (
    "activities",
    "sessions",
    "volunteers",
    "verified_minutes",
    "makeup_minutes",
    "volunteer_minutes",
)
FULFILMENT_FIELDS = ("posted", "withdrawn", "fulfilled", "open", "rate", "satisfaction")
# What the independent oracle computes: the counts and the median wait.
ORACLE_FULFILMENT_FIELDS = (*FULFILMENT_FIELDS, "median_minutes_to_fulfil")


@dataclass
class City:
    database: Database
    engine: ProjectionEngine
    reads: LedgerReads
    events: list[RecordedEvent]
    head: int
    chain: dict[int, str]

    def upto(self, position: int) -> list[RecordedEvent]:
        return [e for e in self.events if e.position <= position]

    def registered_at(self, topic: str, field: str) -> dict[str, int]:
        """Each id registered by ``topic`` events, with its position."""
        return {e.payload[field]: e.position for e in self.events if e.topic == topic}

    def volunteers_who_served(self) -> list[str]:
        return sorted(self.registered_at("Volunteer.CheckedIn", "volunteer_id"))

    def centre(self) -> str:
        return next(
            str(e.payload["venue_id"])
            for e in self.events
            if e.topic == "Venue.Registered" and e.payload["level"] == "centre"
        )


@pytest.fixture
def city(database: Database) -> City:
    """A small synthetic city, stored and projected."""
    head = append_city(database)
    engine = ProjectionEngine(database, ALL_PROJECTIONS)
    engine.catch_up()
    events = load_events(database, topics=EVERY_TOPIC | {"Volunteer.Registered"})
    reads = LedgerReads(database)
    return City(database, engine, reads, events, head, chain_hashes(database))


def positions_across(head: int, count: int, rng: random.Random) -> list[int]:
    """``count`` distinct positions spread over the log: the first, the last,
    and one at random near each of the evenly spaced points between."""
    step = head // (count - 1)
    inner = [step * k + rng.randint(-step // 3, step // 3) for k in range(1, count - 1)]
    return [1, *inner, head]


# --- as of a position ------------------------------------------------------------


def test_figures_as_of_any_position_equal_a_replay_of_the_events_up_to_it(
    city: City,
) -> None:
    rng = random.Random(SEED)
    positions = positions_across(city.head, 15, rng)
    assert len(positions) == 15
    for position in positions:
        # When every projection is read as of a position
        stored = live_figures(city.engine, position)
        # Then each equals a replay of only the events up to it
        for name, projection in PROJECTIONS.items():
            expected = replay(projection, city.events, position)
            assert stored[name] == expected, (name, position)


def test_reads_as_of_a_position_answer_what_was_known_then(city: City) -> None:
    rng = random.Random(SEED + 1)
    volunteers = city.registered_at("Volunteer.Registered", "volunteer_id")
    venues = city.registered_at("Venue.Registered", "venue_id")
    served = city.volunteers_who_served()
    answered = Counter[str]()
    for position in positions_across(city.head, 5, rng):
        known = city.upto(position)
        chain_hash = city.chain[position]
        # Volunteer hours, of volunteers known then (and some not yet)
        for volunteer in rng.sample(served, 6):
            if volunteers[volunteer] > position:
                with pytest.raises(NotFoundError):
                    city.reads.volunteer_hours(volunteer, as_of=position)
                continue
            answer = city.reads.volunteer_hours(volunteer, as_of=position)
            expected = expected_volunteer_hours(known, volunteer)
            assert pick(answer, HOURS_FIELDS) == expected, (volunteer, position)
            assert (answer.position, answer.chain_hash) == (position, chain_hash)
            answered["hours"] += expected["total_minutes"] > 0
        # Venue activity and fulfilment of the centre and a few venues, whole
        # or over a range of months, with and without their subtree
        for venue in [city.centre(), *rng.sample(sorted(venues), 3)]:
            if venues[venue] > position:
                with pytest.raises(NotFoundError):
                    city.reads.venue_activity(VenueQuery(venue, as_of=position))
                continue
            for months, subtree in itertools.product(
                [(None, None), ("2024-03", "2024-08")], [True, False]
            ):
                where = (venue, months, subtree, position)
                activity = city.reads.venue_activity(
                    VenueQuery(venue, *months, subtree=subtree, as_of=position)
                )
                assert pick(activity, ACTIVITY_FIELDS) == expected_venue_activity(
                    known, venue, *months, subtree=subtree
                ), where
                assert (activity.position, activity.chain_hash) == (
                    position,
                    chain_hash,
                )
                answered["activity"] += activity.sessions > 0
                for kind in (None, "wish", "service"):
                    fulfilment = city.reads.venue_fulfilment(
                        VenueQuery(
                            venue, *months, subtree=subtree, kind=kind, as_of=position
                        )
                    )
                    assert pick(
                        fulfilment, ORACLE_FULFILMENT_FIELDS
                    ) == expected_fulfilment(
                        known, venue, *months, subtree=subtree, kind=kind
                    ), (*where, kind)
                    assert fulfilment.chain_hash == chain_hash
                    answered["fulfilment"] += fulfilment.fulfilled > 0
    # (and the comparisons were not all of empty figures)
    assert min(answered["hours"], answered["activity"], answered["fulfilment"]) >= 5


def test_as_of_a_recording_time_reads_the_last_position_recorded_by_then(
    city: City,
) -> None:
    centre = city.centre()
    batches = recorded_times(city.database)
    assert len(batches) > 2  # the city was imported in several transactions
    previous_last = 0
    for recorded_at, last_position in batches:
        moment = parse_recorded(recorded_at).astimezone(CHINA)
        # When read as of the exact recording time of a batch (in China time)
        at_then = city.reads.venue_fulfilment(VenueQuery(centre, as_of=moment))
        # Then the last position recorded then is read, and cited
        assert at_then.position == last_position
        assert at_then.chain_hash == city.chain[last_position]
        assert at_then == city.reads.venue_fulfilment(
            VenueQuery(centre, as_of=last_position)
        )
        # And a microsecond earlier, the last position of the batch before
        just_before = moment - ONE_MICROSECOND
        if previous_last == 0:
            with pytest.raises(NotFoundError):  # nothing was registered yet
                city.reads.venue_activity(VenueQuery(centre, as_of=just_before))
        else:
            before = city.reads.venue_activity(VenueQuery(centre, as_of=just_before))
            assert before.position == previous_last
            assert before.chain_hash == city.chain[previous_last]
            assert before == city.reads.venue_activity(
                VenueQuery(centre, as_of=previous_last)
            )
        previous_last = last_position

    # And a time (or a position) beyond the latest event reads the latest state
    volunteer = city.volunteers_who_served()[0]
    latest = city.reads.volunteer_hours(volunteer)
    assert latest.position == city.head
    assert latest.chain_hash == city.chain[city.head]
    far_future = datetime(2999, 1, 1, tzinfo=CHINA)
    assert city.reads.volunteer_hours(volunteer, as_of=far_future) == latest
    assert city.reads.volunteer_hours(volunteer, as_of=city.head + 1_000) == latest


# --- explanations -------------------------------------------------------------


EXPLAINING_TOPICS = {
    "Volunteer.SessionApproved": 1,
    "Volunteer.SessionCorrected": 0,
    "Volunteer.SessionVoided": -1,
}


def test_explanations_sum_exactly_to_the_figures_and_name_real_events(
    city: City,
) -> None:
    rng = random.Random(SEED + 2)
    served = city.volunteers_who_served()
    registered = city.registered_at("Volunteer.Registered", "volunteer_id")
    by_position = {e.position: e for e in city.events}
    owner = {
        e.payload["session_id"]: e.payload["volunteer_id"]
        for e in city.events
        if e.topic in ("Volunteer.CheckedIn", "Volunteer.MakeupHoursRecorded")
    }
    middle = city.head // 2
    checked = 0
    for volunteer in rng.sample(served, min(60, len(served))):
        for as_of in (None, middle):
            if as_of is not None and registered[volunteer] > as_of:
                continue
            explained = city.reads.explain_volunteer_hours(volunteer, as_of=as_of)
            hours = city.reads.volunteer_hours(volunteer, as_of=as_of)
            contributions = explained.contributions
            # Then the contributions sum exactly to the figures
            assert explained.figures.model_dump() == pick(
                hours,
                ("verified_minutes", "makeup_minutes", "total_minutes", "sessions"),
            )
            assert explained.position == hours.position
            assert sum(c.minutes for c in contributions) == hours.total_minutes
            assert sum(c.sessions for c in contributions) == hours.sessions
            for kind in ("verified", "makeup"):
                assert sum(
                    c.minutes for c in contributions if c.kind == kind
                ) == getattr(hours, f"{kind}_minutes")
            # And each names a real event, of the volunteer's session, in order
            positions = [c.position for c in contributions]
            assert positions == sorted(positions)
            for contribution in contributions:
                event = by_position[contribution.position]
                assert contribution.topic == event.topic
                assert contribution.session_id == event.payload["session_id"]
                assert owner[event.payload["session_id"]] == volunteer
                assert contribution.sessions == EXPLAINING_TOPICS[event.topic]
                assert contribution.chain_hash == city.chain[event.position]
                assert contribution.position <= explained.position
            checked += bool(contributions)
    assert checked > 20


def activity_of(contributions: list[ActivityContribution]) -> dict[str, int]:
    """The venue activity figures the contributions make, worked out apart."""
    sessions_of: Counter[tuple[str, str, str, str]] = Counter()
    for c in contributions:
        sessions_of[(c.month, c.category, c.kind, c.volunteer_id)] += c.sessions
    minutes = {
        kind: sum(c.minutes for c in contributions if c.kind == kind)
        for kind in ("verified", "makeup")
    }
    return {
        "activities": sum(c.activities for c in contributions),
        "sessions": sum(c.sessions for c in contributions),
        "volunteers": len({key[3] for key, n in sessions_of.items() if key[3] and n}),
        "verified_minutes": minutes["verified"],
        "makeup_minutes": minutes["makeup"],
        "volunteer_minutes": sum(c.minutes for c in contributions),
    }


ORDER_COUNTS = ("posted", "dispatched", "accepted", "fulfilled", "withdrawn")
ORDER_COUNTS += ("rejected", "expired", "ratings")


def fulfilment_of(contributions: list[FulfilmentContribution]) -> dict[str, Any]:
    """The fulfilment figures the contributions make, worked out apart."""
    total = {
        name: sum(getattr(c, name) for c in contributions) for name in ORDER_COUNTS
    }
    stars = sum(c.stars for c in contributions)
    satisfied = sum(c.satisfied for c in contributions)
    fulfilled_after: Counter[str] = Counter()
    fulfilled: Counter[str] = Counter()
    for c in contributions:
        fulfilled_after[c.order_id] += c.fulfil_minutes
        fulfilled[c.order_id] += c.fulfilled
    waits = [fulfilled_after[order] for order in fulfilled if fulfilled[order]]
    closed = ("fulfilled", "withdrawn", "rejected", "expired")
    ratings, counted = total["ratings"], total["posted"] - total["withdrawn"]
    return {
        **total,
        "open": total["posted"] - sum(total[name] for name in closed),
        "rate": total["fulfilled"] / counted if counted else None,
        "median_minutes_to_fulfil": statistics.median(waits) if waits else None,
        "mean_stars": stars / ratings if ratings else None,
        "satisfaction": satisfied / ratings if ratings else None,
    }


Explanation = ActivityExplanation | FulfilmentExplanation


def every_page(
    explain: Callable[..., Explanation],
    venue: str,
    period: tuple[str | None, str | None],
    as_of: int | None,
) -> Explanation:
    """An explanation read a few events at a time, its pages put together."""
    pages = []
    after: int | None = 0
    at = as_of
    while after is not None:
        page = explain(VenueQuery(venue, *period, as_of=at), after=after, limit=37)
        at = page.position  # the next pages as of the first one's position
        events = {c.position for c in page.contributions}
        # Each page holds whole events, at most as many as asked, after the last
        assert len(events) <= 37
        assert all(at > after for at in events)
        assert page.next_after is None or page.next_after == max(events)
        pages.append(page)
        after = page.next_after
    first = pages[0]
    assert all(
        (p.figures, p.position) == (first.figures, first.position) for p in pages
    )
    whole = explain(VenueQuery(venue, *period, as_of=as_of), limit=10_000)
    together = [c for page in pages for c in page.contributions]
    assert together == whole.contributions
    return first.model_copy(update={"contributions": together, "next_after": None})


def test_venue_explanations_sum_to_their_figures_and_name_real_events(
    city: City,
) -> None:
    rng = random.Random(SEED + 3)
    venues = city.registered_at("Venue.Registered", "venue_id")
    by_position = {e.position: e for e in city.events}
    middle = city.head // 2
    checked = Counter[str]()
    for venue in [city.centre(), *rng.sample(sorted(venues), 6)]:
        subtree = city.reads.venue_subtree(venue)
        whole_year = city.reads.explain_venue_activity(VenueQuery(venue)).contributions
        months = sorted({c.month for c in whole_year}) or ["2024-01"]
        for as_of, period in itertools.product(
            (None, middle),
            [(None, None), (months[len(months) // 3], months[2 * len(months) // 3])],
        ):
            if as_of is not None and venues[venue] > as_of:
                continue
            reads = city.reads
            explanations = {
                "activity": (
                    every_page(reads.explain_venue_activity, venue, period, as_of),
                    reads.venue_activity(VenueQuery(venue, *period, as_of=as_of)),
                    activity_of,
                ),
                "fulfilment": (
                    every_page(reads.explain_venue_fulfilment, venue, period, as_of),
                    reads.venue_fulfilment(VenueQuery(venue, *period, as_of=as_of)),
                    fulfilment_of,
                ),
            }
            for what, (explained, read, figures_of) in explanations.items():
                contributions = explained.contributions
                # Then the figures are the read's, and the contributions make
                # them
                assert explained.position == read.position
                figures = explained.figures.model_dump()
                assert figures == pick(read, figures)
                assert figures_of(contributions) == figures, what
                # And each names a real event of the venue's subtree and period
                positions = [c.position for c in contributions]
                assert positions == sorted(positions)
                for contribution in contributions:
                    event = by_position[contribution.position]
                    assert contribution.topic == event.topic
                    assert contribution.chain_hash == city.chain[event.position]
                    assert contribution.position <= explained.position
                    assert contribution.venue_id in subtree
                    first, last = period
                    assert first is None or contribution.month >= first
                    assert last is None or contribution.month <= last
                checked[what] += len(contributions)
    assert min(checked.values()) > 50, checked


# --- the query verbs ----------------------------------------------------------------


def test_every_query_verb_prints_the_json_of_its_read_now_and_as_of(
    city: City,
) -> None:
    volunteer = city.volunteers_who_served()[0]
    centre = city.centre()
    middle = city.head // 2
    reads = city.reads
    for as_of in (None, middle):
        options = () if as_of is None else ("--as-of", str(as_of))
        verbs = {
            ("hours", volunteer): reads.volunteer_hours(volunteer, as_of),
            ("explain-hours", volunteer): reads.explain_volunteer_hours(
                volunteer, as_of
            ),
            ("activity", centre): reads.venue_activity(VenueQuery(centre, as_of=as_of)),
            ("fulfilment", centre): reads.venue_fulfilment(
                VenueQuery(centre, as_of=as_of)
            ),
            ("explain-activity", centre): reads.explain_venue_activity(
                VenueQuery(centre, as_of=as_of)
            ),
            ("explain-fulfilment", centre): reads.explain_venue_fulfilment(
                VenueQuery(centre, as_of=as_of)
            ),
        }
        for arguments, document in verbs.items():
            # When an auditor runs `ledger query VERB ID [--as-of P]`
            outcome = run_cli(city.database, "query", *arguments, *options)
            # Then it prints the read's JSON (as the HTTP API serves it),
            # field for field in the same order
            assert outcome.exit_code == 0, (arguments, outcome.output)
            printed = json.dumps(json.loads(outcome.stdout))
            assert printed == json.dumps(json.loads(document.model_dump_json()))


# --- the CONTRACT figures on a hand-built scenario ---------------------------------

NEW_YEAR_START = datetime(2023, 1, 1, 3, 0, tzinfo=CHINA)  # 2022-12-31T19:00Z
MIDSUMMER = datetime(2022, 6, 10, 9, 0, tzinfo=CHINA)
WEEK_LONG = datetime(2023, 2, 1, 8, 0, tzinfo=CHINA)
# V4's make-up minutes by activity: 5,999 in all, a session holding at most
# 1,440 (CONTRACT §1.3); the session at A3 is the one corrected.
V4_MAKEUP = {"A3": 239, "A4": 1_440, "A5": 1_440, "A6": 1_440, "A7": 1_440}


def scenario() -> list[Any]:
    """Venues C > I1 > {S1 > P1, S2}; volunteers V1–V4.

    - V1: a make-up session of 120 min at A0 (P1, June 2022); a verified
      session at A1 (S1) checked in at 2022-12-31T20:00Z (= 2023-01-01 CST),
      150 min, approved then corrected to 100 min; and 60 min at A2 (P1,
      January 2023).
    - V2: 90 min at A1, approved then voided; a pending session at A2.
    - V3: 45 min at A2, approved.
    - V4: make-up of 5,999 min in all at week-long activities at S2: 239 min
      at A3, and 1,440 (a session's most) at each of A4–A7.
    - Orders at S1/P1 (posted January 2023 CST): O1 wish fulfilled, rated 5
      and 3; O2 service withdrawn; O3 wish fulfilled, rated 4; O4 service
      open; O5 wish rejected. At S2: O6 service withdrawn.
    """
    a1_in = datetime(2022, 12, 31, 20, 0, tzinfo=UTC)
    a2 = NEW_YEAR_START + 8 * DAY
    o1_posted = datetime(2022, 12, 31, 20, 0, tzinfo=UTC)  # 2023-01-01 CST
    posted = datetime(2023, 1, 5, 10, 0, tzinfo=CHINA)

    def check(who: str, session: str, act: str, start: Any, end: Any) -> list[Any]:
        """Sign ``who`` up for ``act``, check in at ``start``, out at ``end``."""
        return [
            submission("sign_up", start - 2 * DAY, activity_id=act, volunteer_id=who),
            submission(
                "check_in", start, session_id=session, volunteer_id=who, activity_id=act
            ),
            submission("check_out", end, session_id=session),
        ]

    def order(order_id: str, kind: str, venue: str, at: Any) -> Any:
        return submission(
            "post_order",
            at,
            order_id=order_id,
            kind=kind,
            venue_id=venue,
            category="health",
            description=f"order {order_id}",
        )

    def fulfil(order_id: str, at: Any) -> list[Any]:
        return [
            submission("dispatch_order", at + HOUR, order_id=order_id, venue_id="S1"),
            submission(
                "accept_order", at + 2 * HOUR, order_id=order_id, volunteer_ids=["V3"]
            ),
            submission("fulfil_order", at + DAY, order_id=order_id),
        ]

    def rate(order_id: str, rater: str, stars: int, at: Any) -> Any:
        return submission(
            "rate",
            at + 2 * DAY,
            subject="order",
            subject_id=order_id,
            rater_id=rater,
            stars=stars,
        )

    return [
        *small_city(),
        register_venue("S2", "station", "I1"),
        submission(
            "register_volunteer", volunteer_id="V3", name="王五", id_number=id_number()
        ),
        submission(
            "register_volunteer", volunteer_id="V4", name="赵六", id_number=id_number()
        ),
        activity("A0", "P1", starts_at=MIDSUMMER, hours=3),
        activity("A1", "S1", starts_at=NEW_YEAR_START, hours=4),
        activity("A2", "P1", starts_at=a2, hours=3, category="health"),
        *(
            activity(activity_id, "S2", starts_at=WEEK_LONG, hours=120)
            for activity_id in V4_MAKEUP
        ),
        # V1: make-up at A0, verified at A1 (corrected), verified at A2
        submission(
            "record_makeup_hours",
            MIDSUMMER + DAY,
            session_id="M-V1-A0",
            volunteer_id="V1",
            activity_id="A0",
            minutes=120,
            reason="forgot to check in",
        ),
        submission("approve_session", MIDSUMMER + 2 * DAY, session_id="M-V1-A0"),
        *check("V1", "S-V1-A1", "A1", a1_in, a1_in + 150 * MINUTE),
        submission("approve_session", NEW_YEAR_START + DAY, session_id="S-V1-A1"),
        submission(
            "correct_session",
            NEW_YEAR_START + 2 * DAY,
            session_id="S-V1-A1",
            minutes=100,
            reason="left early",
        ),
        *check("V1", "S-V1-A2", "A2", a2, a2 + HOUR),
        submission("approve_session", a2 + DAY, session_id="S-V1-A2"),
        # V2: approved then voided at A1; pending at A2
        *check("V2", "S-V2-A1", "A1", a1_in, a1_in + 90 * MINUTE),
        submission("approve_session", NEW_YEAR_START + DAY, session_id="S-V2-A1"),
        submission(
            "void_session",
            NEW_YEAR_START + 3 * DAY,
            session_id="S-V2-A1",
            reason="was not there",
            fraud=True,
        ),
        *check("V2", "S-V2-A2", "A2", a2, a2 + 2 * HOUR),
        # V3: 45 minutes at A2
        *check("V3", "S-V3-A2", "A2", a2 + 15 * MINUTE, a2 + HOUR),
        submission("approve_session", a2 + DAY, session_id="S-V3-A2"),
        # V4: week-long make-up, one minute short of 100 hours
        *(
            submission(
                "record_makeup_hours",
                WEEK_LONG + 6 * DAY,
                session_id=f"M-V4-{activity_id}",
                volunteer_id="V4",
                activity_id=activity_id,
                minutes=minutes,
                reason="camp log",
            )
            for activity_id, minutes in V4_MAKEUP.items()
        ),
        *(
            submission(
                "approve_session", WEEK_LONG + 7 * DAY, session_id=f"M-V4-{activity_id}"
            )
            for activity_id in V4_MAKEUP
        ),
        # Orders
        order("O1", "wish", "S1", o1_posted),
        *fulfil("O1", o1_posted),
        rate("O1", "R1", 5, o1_posted),
        rate("O1", "R2", 3, o1_posted),
        order("O2", "service", "P1", posted),
        submission("withdraw_order", posted + HOUR, order_id="O2", reason="moved"),
        order("O3", "wish", "P1", posted),
        *fulfil("O3", posted),
        rate("O3", "R1", 4, posted),
        order("O4", "service", "S1", posted),
        order("O5", "wish", "P1", posted),
        submission("reject_order", posted + HOUR, order_id="O5", reason="not ours"),
        order("O6", "service", "S2", posted),
        submission("withdraw_order", posted + HOUR, order_id="O6", reason="solved"),
    ]


@pytest.fixture
def town(ledger: Ledger) -> LedgerReads:
    record_all(ledger, scenario())
    ProjectionEngine(ledger.database, ALL_PROJECTIONS).catch_up()
    return LedgerReads(ledger.database)


def test_verified_and_makeup_minutes_are_reported_apart_and_summed_by_china_year(
    town: LedgerReads,
) -> None:
    hours = town.volunteer_hours("V1")
    # A correction replaces the minutes (150 -> 100); make-up is kept apart
    assert pick(hours, HOURS_FIELDS) == {
        "verified_minutes": 100 + 60,
        "makeup_minutes": 120,
        "total_minutes": 280,
        "sessions": 3,
        # the make-up belongs to its activity's start (June 2022); the check-in
        # at 2022-12-31T20:00Z belongs to 2023 in China Standard Time
        "by_year": {"2022": 120, "2023": 160},
        "stars": 0,
    }
    assert hours.volunteer_id == "V1"


def test_a_voided_session_stops_counting_and_a_pending_one_never_started(
    town: LedgerReads,
) -> None:
    hours = town.volunteer_hours("V2")
    assert pick(hours, HOURS_FIELDS) == {
        "verified_minutes": 0,
        "makeup_minutes": 0,
        "total_minutes": 0,
        "sessions": 0,
        "by_year": {},
        "stars": 0,
    }


def test_a_star_is_reached_exactly_at_its_threshold(
    ledger: Ledger, town: LedgerReads
) -> None:
    # Given V4 with 5,999 minutes: one short of 100 hours
    short = town.volunteer_hours("V4")
    assert (short.total_minutes, short.stars) == (5_999, 0)
    # When the session at A3 is corrected to make exactly 6,000 minutes
    record_all(
        ledger,
        [
            submission(
                "correct_session",
                WEEK_LONG + 8 * DAY,
                session_id="M-V4-A3",
                minutes=240,
                reason="recount",
            )
        ],
    )
    ProjectionEngine(ledger.database, ALL_PROJECTIONS).catch_up()
    # Then V4 has one star, and as of before the correction still none
    reached = town.volunteer_hours("V4")
    assert (reached.total_minutes, reached.stars) == (6_000, 1)
    assert reached.makeup_minutes == 6_000
    assert reached.sessions == len(V4_MAKEUP)
    before = town.volunteer_hours("V4", as_of=reached.position - 1)
    assert (before.total_minutes, before.stars) == (5_999, 0)


def test_venue_activity_rolls_up_the_subtree_counting_each_volunteer_once(
    town: LedgerReads,
) -> None:
    january = ("2023-01", "2023-01")
    # The centre's January: A1 and A2; V1 at A1 (100) and A2 (60), V3 at A2 (45);
    # V2's voided and pending sessions do not count
    centre = town.venue_activity(VenueQuery("C", *january))
    assert pick(centre, ACTIVITY_FIELDS) == {
        "activities": 2,
        "sessions": 3,
        "volunteers": 2,
        "verified_minutes": 205,
        "makeup_minutes": 0,
        "volunteer_minutes": 205,
    }
    assert centre.by_month.keys() == {"2023-01"}
    assert centre.by_category["health"].sessions == 2
    # S1 with its subtree (S1, P1) is the same; without it, only S1's own A1
    station = town.venue_activity(VenueQuery("S1", *january))
    assert pick(station, ACTIVITY_FIELDS) == pick(centre, ACTIVITY_FIELDS)
    own = town.venue_activity(VenueQuery("S1", *january, subtree=False))
    assert pick(own, ACTIVITY_FIELDS) == {
        "activities": 1,
        "sessions": 1,
        "volunteers": 1,
        "verified_minutes": 100,
        "makeup_minutes": 0,
        "volunteer_minutes": 100,
    }
    assert (station.venues, own.venues) == (2, 1)
    # Activities count by the month of their start, whether or not anyone served
    whole = town.venue_activity(VenueQuery("C"))
    assert (whole.activities, whole.sessions, whole.volunteers) == (8, 9, 3)
    assert whole.makeup_minutes == 120 + 5_999
    assert whole.by_month["2022-06"].makeup_minutes == 120
    empty = town.venue_activity(VenueQuery("S2", "2023-01", "2023-01"))
    assert (empty.activities, empty.sessions, empty.volunteers) == (0, 0, 0)


def test_fulfilment_rate_is_fulfilled_over_posted_less_withdrawn(
    town: LedgerReads,
) -> None:
    january = ("2023-01", "2023-01")
    # S1's subtree: O1–O5 (O1 posted 2022-12-31T20:00Z, i.e. January in CST)
    both = town.venue_fulfilment(VenueQuery("S1", *january))
    assert pick(both, FULFILMENT_FIELDS) == {
        "posted": 5,
        "withdrawn": 1,
        "fulfilled": 2,
        "open": 1,  # O4; O5 was rejected
        "rate": 2 / 4,
        "satisfaction": 2 / 3,  # ratings 5, 3, 4
    }
    # The kind filter
    wishes = town.venue_fulfilment(VenueQuery("S1", *january, kind="wish"))
    assert pick(wishes, FULFILMENT_FIELDS) == {
        "posted": 3,
        "withdrawn": 0,
        "fulfilled": 2,
        "open": 0,
        "rate": 2 / 3,
        "satisfaction": 2 / 3,
    }
    services = town.venue_fulfilment(VenueQuery("S1", *january, kind="service"))
    assert pick(services, FULFILMENT_FIELDS) == {
        "posted": 2,
        "withdrawn": 1,
        "fulfilled": 0,
        "open": 1,
        "rate": 0.0,
        "satisfaction": None,
    }
    # Without the subtree: only S1's own O1 and O4
    own = town.venue_fulfilment(VenueQuery("S1", *january, subtree=False))
    assert pick(own, ("posted", "fulfilled", "open", "rate")) == {
        "posted": 2,
        "fulfilled": 1,
        "open": 1,
        "rate": 1 / 2,
    }
    # An order belongs to the month it was posted in, in China Standard Time
    december = town.venue_fulfilment(VenueQuery("S1", "2022-12", "2022-12"))
    assert december.posted == 0
    # The rate is null when nothing was posted, or all of it was withdrawn
    s2 = town.venue_fulfilment(VenueQuery("S2"))
    assert pick(s2, ("posted", "withdrawn", "open", "rate", "satisfaction")) == {
        "posted": 1,
        "withdrawn": 1,
        "open": 0,
        "rate": None,
        "satisfaction": None,
    }
    nothing = town.venue_fulfilment(VenueQuery("S1", "2021-01", "2021-12"))
    assert pick(nothing, ("posted", "rate", "satisfaction")) == {
        "posted": 0,
        "rate": None,
        "satisfaction": None,
    }


def test_an_unknown_volunteer_or_venue_is_not_found(town: LedgerReads) -> None:
    with pytest.raises(NotFoundError):
        town.volunteer_hours("V404")
    with pytest.raises(NotFoundError):
        town.explain_volunteer_hours("V404")
    with pytest.raises(NotFoundError):
        town.venue_activity(VenueQuery("X404"))
    with pytest.raises(NotFoundError):
        town.venue_fulfilment(VenueQuery("X404"))
    # Nor is one that was registered only after the position read
    with pytest.raises(NotFoundError):
        town.volunteer_hours("V1", as_of=1)
    with pytest.raises(NotFoundError):
        town.venue_activity(VenueQuery("S2", as_of=1))


def test_a_venue_query_refuses_a_malformed_month_or_kind(town: LedgerReads) -> None:
    for month in ("2023-13", "2023-1", "January"):
        with pytest.raises(InvalidReadError, match="YYYY-MM"):
            VenueQuery("C", from_month=month)
        with pytest.raises(InvalidReadError, match="YYYY-MM"):
            VenueQuery("C", to_month=month)
    with pytest.raises(InvalidReadError, match="wish or service"):
        VenueQuery("C", kind="gift")
    # Activity has no order kind to select
    with pytest.raises(InvalidReadError, match="kind"):
        town.venue_activity(VenueQuery("C", kind="wish"))
    with pytest.raises(InvalidReadError, match="kind"):
        town.explain_venue_activity(VenueQuery("C", kind="wish"))


def test_a_median_of_an_odd_count_of_fulfilments_stays_whole(
    town: LedgerReads,
) -> None:
    # O1 alone at S1 itself, fulfilled a day after posting; O1 and O3 (also
    # a day) among S1's subtree's wishes
    alone = town.venue_fulfilment(VenueQuery("S1", subtree=False))
    pair = town.venue_fulfilment(VenueQuery("S1", kind="wish"))
    assert '"median_minutes_to_fulfil":1440,' in alone.model_dump_json()
    assert '"median_minutes_to_fulfil":1440.0,' in pair.model_dump_json()


def test_the_scenario_reads_agree_with_the_independent_oracle(
    town: LedgerReads, database: Database
) -> None:
    events = load_events(database)
    for volunteer in ("V1", "V2", "V3", "V4"):
        assert pick(
            town.volunteer_hours(volunteer), HOURS_FIELDS
        ) == expected_volunteer_hours(events, volunteer)
    for venue in ("C", "I1", "S1", "P1", "S2"):
        for subtree in (True, False):
            assert pick(
                town.venue_activity(VenueQuery(venue, subtree=subtree)), ACTIVITY_FIELDS
            ) == expected_venue_activity(events, venue, subtree=subtree)
            for kind in (None, "wish", "service"):
                assert pick(
                    town.venue_fulfilment(
                        VenueQuery(venue, subtree=subtree, kind=kind)
                    ),
                    ORACLE_FULFILMENT_FIELDS,
                ) == expected_fulfilment(events, venue, subtree=subtree, kind=kind)


def post_order(ledger: Ledger, order_id: str, venue_id: str) -> None:
    """A wish posted after the scenario (in February 2023, China time)."""
    order = submission(
        "post_order",
        WEEK_LONG + 9 * DAY,
        order_id=order_id,
        kind="wish",
        venue_id=venue_id,
        category="health",
        description=f"order {order_id}",
    )
    record_all(ledger, [order])


def test_reads_keep_their_figures_while_the_ledger_moves_on_elsewhere(
    ledger: Ledger, town: LedgerReads
) -> None:
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)

    def read_all() -> dict[str, CitedAnswer]:
        return {
            "hours V4": town.volunteer_hours("V4"),
            "hours V3": town.volunteer_hours("V3"),
            "activity S2": town.venue_activity(VenueQuery("S2")),
            "activity C": town.venue_activity(VenueQuery("C")),
            "fulfilment S2": town.venue_fulfilment(VenueQuery("S2")),
            "fulfilment C": town.venue_fulfilment(VenueQuery("C")),
            "leaderboard": town.hours_leaderboard(5),
        }

    def figures(answer: CitedAnswer) -> dict[str, Any]:
        return answer.model_dump(exclude={"position", "chain_hash"})

    before = read_all()
    # When an order is posted at P1 (outside S2's subtree) and projected
    post_order(ledger, "O7", "P1")
    engine.catch_up()
    after_order = read_all()
    # Then every read cites the new position, and only the centre's
    # fulfilment, which covers P1, counts the new order
    for name, answer in after_order.items():
        assert answer.position == before[name].position + 1, name
        assert answer.chain_hash != before[name].chain_hash, name
        if name != "fulfilment C":
            assert figures(answer) == figures(before[name]), name
    assert after_order["fulfilment C"].posted == before["fulfilment C"].posted + 1
    # When V4's session at S2 is corrected
    record_all(
        ledger,
        [
            submission(
                "correct_session",
                WEEK_LONG + 10 * DAY,
                session_id="M-V4-A3",
                minutes=340,
                reason="recount",
            )
        ],
    )
    engine.catch_up()
    after_correction = read_all()
    # Then V4's hours, S2's and the centre's activity and the leaderboard
    # change at once, and V3's hours and the fulfilment do not
    changed = {
        name
        for name, answer in after_correction.items()
        if figures(answer) != figures(after_order[name])
    }
    assert changed == {"hours V4", "activity S2", "activity C", "leaderboard"}
    assert after_correction["hours V4"].total_minutes == 6_100
    # And reads as of the earlier positions still answer what was known then
    for name, answer in before.items():
        kind, _, subject = name.partition(" ")
        as_of = answer.position
        if kind == "hours":
            again = town.volunteer_hours(subject, as_of=as_of)
        elif kind == "activity":
            again = town.venue_activity(VenueQuery(subject, as_of=as_of))
        elif kind == "fulfilment":
            again = town.venue_fulfilment(VenueQuery(subject, as_of=as_of))
        else:
            again = town.hours_leaderboard(5, as_of=as_of)
        assert again == answer, name


def test_a_venue_registered_under_a_read_venue_joins_its_next_answer(
    ledger: Ledger, town: LedgerReads
) -> None:
    before = town.venue_activity(VenueQuery("S2"))
    # When a point is registered under S2 and projected
    record_all(ledger, [register_venue("P2", "point", "S2")])
    ProjectionEngine(ledger.database, ALL_PROJECTIONS).catch_up()
    # Then S2's subtree counts it at once, and did not before
    after = town.venue_activity(VenueQuery("S2"))
    assert (before.venues, after.venues) == (1, 2)
    assert town.venue_activity(VenueQuery("S2", as_of=before.position)) == before


def test_a_venue_read_stands_where_the_venue_tree_stands_while_the_tree_lags(
    ledger: Ledger, town: LedgerReads
) -> None:
    tree_at = town.venue_children(None).position
    # Given a new station under I1 with a make-up session and an order
    record_all(
        ledger,
        [
            register_venue("S3", "station", "I1"),
            activity("A9", "S3", starts_at=WEEK_LONG, hours=5),
            submission(
                "record_makeup_hours",
                WEEK_LONG + DAY,
                session_id="M-V3-A9",
                volunteer_id="V3",
                activity_id="A9",
                minutes=200,
                reason="paper sheet",
            ),
            submission("approve_session", WEEK_LONG + 2 * DAY, session_id="M-V3-A9"),
            submission(
                "post_order",
                WEEK_LONG,
                order_id="O9",
                kind="wish",
                venue_id="S3",
                category="health",
                description="order O9",
            ),
        ],
    )
    # When only the venue figures are rebuilt, the venue tree left behind
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    engine.rebuild([VENUE_ACTIVITY.name, ORDER_FULFILMENT.name], workers=1)
    activity_read = town.venue_activity(VenueQuery("C"))
    fulfilment_read = town.venue_fulfilment(VenueQuery("C"))
    # Then both reads stand where the tree stands: figures and tree agree
    assert activity_read.position == fulfilment_read.position == tree_at
    # And once the tree catches up, reads as of that position answer the same
    engine.catch_up()
    assert town.venue_activity(VenueQuery("C", as_of=tree_at)) == activity_read
    assert town.venue_fulfilment(VenueQuery("C", as_of=tree_at)) == fulfilment_read
    # And the reads of now count the new station's activity and order
    assert (
        town.venue_activity(VenueQuery("C")).activities == activity_read.activities + 1
    )
    assert town.venue_fulfilment(VenueQuery("C")).posted == fulfilment_read.posted + 1


def test_reads_stay_exact_when_a_version_moved_on_without_noting_changes(
    ledger: Ledger, town: LedgerReads
) -> None:
    engine = ProjectionEngine(ledger.database, ALL_PROJECTIONS)
    before = town.venue_fulfilment(VenueQuery("C"))
    # Given a version moved on without noting where it changed (as by an
    # older engine still projecting): its notes stay as they were
    with ledger.database.reading() as conn:
        notes_then = conn.execute(sa.select(projection_changes_table)).all()
    post_order(ledger, "O8", "S2")
    engine.catch_up()
    with ledger.database.writing() as conn:
        conn.execute(projection_changes_table.delete())
        conn.execute(
            projection_changes_table.insert(), [n._asdict() for n in notes_then]
        )
        noted = projection_changes_noted_table
        conn.execute(noted.update().values(upto=noted.c.upto - 1))
    # Then the reads do not trust the notes, and see the new order
    assert town.venue_fulfilment(VenueQuery("C")).posted == before.posted + 1
    # And a new engine notes the changes again from the entries
    ProjectionEngine(ledger.database, ALL_PROJECTIONS).catch_up()
    with ledger.database.reading() as conn:
        notes = conn.execute(sa.select(projection_changes_noted_table)).all()
        versions = conn.execute(sa.select(projection_versions_table)).all()
    assert {(n.name, n.version, n.upto) for n in notes} == {
        (v.name, v.version, v.position) for v in versions
    }
    assert town.venue_fulfilment(VenueQuery("C")).posted == before.posted + 1
