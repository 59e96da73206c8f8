"""Audit queries over the ledger itself, on real SQLite and PostgreSQL: events
by subject, actor, type and period, paged in ledger order, capped by
``as_of``, citing positions and chain hashes, with personal data masked; and
a session's corrections told as a story."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from ledger.application.ledger import Ledger
from ledger.domain.privacy import mask_id_number, mask_phone
from ledger.reads.answers import Actor, Adjustment, AuditEvent, AuditPage
from ledger.reads.audit import (
    AuditQuery,
    InvalidAuditQueryError,
    find_events,
    session_story,
)
from ledger.store.event_store import Database
from tests.factories import T0, id_number, record_all, submission
from tests.integration.projection_helpers import (
    DAY,
    HOUR,
    chain_hash_at,
    parse_recorded,
    recorded_times,
    run_cli,
    served_city,
)

# Who does what in the audited city.
VOLUNTEER_V1 = {"id": "V1", "role": "volunteer"}
ORGANISER = {"id": "org-1", "role": "organiser"}
SUPERVISOR = {"id": "org-2", "role": "supervisor"}
INSPECTOR = {"id": "inspector-1", "role": "inspector"}

V3_ID_NUMBER = id_number(777)
V3_PHONE = "13812345678"

REQUEST_REASON = "I stayed until 11:30 to tidy up"
DECLINE_REASON = "the sign-out sheet says 11:00"
CORRECTION_REASON = "the hall camera shows V1 leaving at 11:15"
VOID_REASON = "checked in on behalf of someone who never came"

# The positions of the audited city's events (asserted when it is recorded).
SET_UP_HEAD = 23  # served_city (1-22) and V3's registration (23)
S_V2_APPROVED, REQUESTED, DECLINED, CORRECTED, VOIDED = 24, 25, 26, 27, 28
HEAD = 28


@dataclass(frozen=True)
class AuditedCity:
    """The audited city as recorded: its head and when each batch was recorded."""

    head: int
    set_up_recorded_at: datetime
    corrections_recorded_at: datetime


def set_up_batch() -> list[Any]:
    """The projection tests' small served city (V1's session S-V1 approved
    at 120 minutes, V2's S-V2 checked out at 150, orders O1 and O2), and a
    volunteer V3 with an ID and a phone number."""
    return [
        *served_city(),
        submission(
            "register_volunteer",
            volunteer_id="V3",
            name="王五",
            id_number=V3_ID_NUMBER,
            phone=V3_PHONE,
        ),
    ]


def corrections_batch() -> list[Any]:
    """Recorded later: S-V2 approved then voided as fraud; S-V1's correction
    requested by V1, declined, then corrected by a supervisor to 135 minutes."""
    return [
        submission("approve_session", T0 + DAY, session_id="S-V2", actor=ORGANISER),
        submission(
            "request_correction",
            T0 + 2 * DAY,
            session_id="S-V1",
            minutes=150,
            reason=REQUEST_REASON,
            actor=VOLUNTEER_V1,
        ),
        submission(
            "decline_correction",
            T0 + 3 * DAY,
            session_id="S-V1",
            reason=DECLINE_REASON,
            actor=ORGANISER,
        ),
        submission(
            "correct_session",
            T0 + 4 * DAY,
            session_id="S-V1",
            minutes=135,
            reason=CORRECTION_REASON,
            actor=SUPERVISOR,
        ),
        submission(
            "void_session",
            T0 + 5 * DAY,
            session_id="S-V2",
            reason=VOID_REASON,
            fraud=True,
            actor=INSPECTOR,
        ),
    ]


def record_audited_city(ledger: Ledger) -> AuditedCity:
    """Record the set-up and the corrections as two appends, so they carry
    two different recording times."""
    record_all(ledger, set_up_batch())
    record_all(ledger, corrections_batch())
    times = recorded_times(ledger.database)
    assert [position for _, position in times] == [SET_UP_HEAD, HEAD]
    return AuditedCity(HEAD, parse_recorded(times[0][0]), parse_recorded(times[1][0]))


@pytest.fixture
def city(ledger: Ledger) -> AuditedCity:
    return record_audited_city(ledger)


def positions_of(page: AuditPage) -> list[int]:
    return [event.position for event in page.events]


def every_event(database: Database, query: AuditQuery) -> list[AuditEvent]:
    """Every event ``query`` selects, following ``next_after`` page by page."""
    events: list[AuditEvent] = []
    after = query.after_position
    while True:
        page = find_events(database, replace(query, after_position=after))
        events.extend(page.events)
        if page.next_after is None:
            return events
        assert page.next_after == page.events[-1].position
        after = page.next_after


# --- by subject, actor, type and period --------------------------------------


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        pytest.param(("volunteer", "V1"), [6, 9, 11, 12, 13, 18, 25, 26, 27], id="V1"),
        pytest.param(("session", "S-V1"), [11, 12, 13, 25, 26, 27], id="S-V1"),
        pytest.param(("session", "S-V2"), [14, 15, 24, 28], id="S-V2"),
        pytest.param(("order", "O1"), [16, 17, 18, 19, 20], id="O1"),
        pytest.param(("order", "O2"), [21, 22], id="O2"),
        pytest.param(("team", "T1"), [5], id="T1"),
    ],
)
def test_a_subject_query_returns_exactly_the_events_that_concern_it(
    database: Database, city: AuditedCity, subject: tuple[str, str], expected: list[int]
) -> None:
    page = find_events(database, AuditQuery(subject=subject))
    assert positions_of(page) == expected
    assert all(f"{subject[0]}:{subject[1]}" in e.subjects for e in page.events)


@pytest.mark.parametrize(
    ("subject", "named"),
    [
        # registered, activity published, check-ins, order O1 posted, dispatched
        pytest.param(("venue", "S1"), {3, 8, 11, 14, 16, 17}, id="S1"),
        pytest.param(("venue", "P1"), {4, 21}, id="P1"),
        # published, two sign-ups, two check-ins
        pytest.param(("activity", "A1"), {8, 9, 10, 11, 14}, id="A1"),
    ],
)
def test_a_venue_or_activity_query_returns_the_events_that_name_it(
    database: Database, city: AuditedCity, subject: tuple[str, str], named: set[int]
) -> None:
    page = find_events(database, AuditQuery(subject=subject))
    assert named <= set(positions_of(page))
    assert positions_of(page) == sorted(positions_of(page))
    assert all(f"{subject[0]}:{subject[1]}" in e.subjects for e in page.events)


def test_a_venue_query_includes_the_sessions_and_orders_settled_there(
    database: Database, city: AuditedCity
) -> None:
    at_s1 = find_events(database, AuditQuery(subject=("venue", "S1")))
    at_p1 = find_events(database, AuditQuery(subject=("venue", "P1")))
    at_a1 = find_events(database, AuditQuery(subject=("activity", "A1")))
    # the fraudulent session voided at S1, and its approval and correction
    assert {13, S_V2_APPROVED, CORRECTED, VOIDED} <= set(positions_of(at_s1))
    assert {13, S_V2_APPROVED, CORRECTED, VOIDED} <= set(positions_of(at_a1))
    # order O1's acceptance, fulfilment and rating at S1; O2's withdrawal at P1
    assert {18, 19, 20} <= set(positions_of(at_s1))
    assert 22 in positions_of(at_p1)


def test_an_actor_query_returns_what_that_actor_did(
    database: Database, city: AuditedCity
) -> None:
    by_organiser = find_events(database, AuditQuery(actor_id="org-1"))
    assert positions_of(by_organiser) == [S_V2_APPROVED, DECLINED]
    assert {e.actor.role for e in by_organiser.events} == {"organiser"}
    by_inspector = find_events(database, AuditQuery(actor_id="inspector-1"))
    assert positions_of(by_inspector) == [VOIDED]


def test_a_type_query_returns_the_events_of_those_types(
    database: Database, city: AuditedCity
) -> None:
    types = ("Volunteer.SessionCorrected", "Volunteer.SessionVoided")
    page = find_events(database, AuditQuery(types=types))
    assert positions_of(page) == [CORRECTED, VOIDED]
    assert [e.type for e in page.events] == list(types)
    approvals = find_events(database, AuditQuery(types=("Volunteer.SessionApproved",)))
    assert positions_of(approvals) == [13, S_V2_APPROVED]


def test_a_business_time_period_includes_its_start_and_excludes_its_end(
    database: Database, city: AuditedCity
) -> None:
    # Between 2024-03-02 09:00 and 2024-03-03 09:00 CST: S-V1 approved, O1
    # fulfilled and S-V2 approved; O1's rating at 03-03 09:00 is the end
    page = find_events(
        database, AuditQuery(occurred_since=T0 + DAY, occurred_until=T0 + 2 * DAY)
    )
    assert positions_of(page) == [13, 19, S_V2_APPROVED]
    # The same instant written in UTC selects the same events
    utc = (T0 + DAY).astimezone(UTC)
    same = find_events(
        database, AuditQuery(occurred_since=utc, occurred_until=T0 + 2 * DAY)
    )
    assert positions_of(same) == positions_of(page)
    # Before the activity starts: only the publication and the sign-ups
    before = find_events(database, AuditQuery(occurred_until=T0 - HOUR))
    assert positions_of(before) == [8, 9, 10]


def test_a_recorded_time_period_selects_by_when_the_ledger_learnt_of_it(
    database: Database, city: AuditedCity
) -> None:
    later = find_events(
        database, AuditQuery(recorded_since=city.corrections_recorded_at)
    )
    assert positions_of(later) == list(range(SET_UP_HEAD + 1, HEAD + 1))
    earlier = find_events(
        database, AuditQuery(recorded_until=city.corrections_recorded_at, limit=1000)
    )
    assert positions_of(earlier) == list(range(1, SET_UP_HEAD + 1))
    first_append = find_events(
        database,
        AuditQuery(
            recorded_since=city.set_up_recorded_at,
            recorded_until=city.corrections_recorded_at,
            limit=1000,
        ),
    )
    assert positions_of(first_append) == positions_of(earlier)


def test_filters_combine(database: Database, city: AuditedCity) -> None:
    page = find_events(
        database,
        AuditQuery(
            subject=("session", "S-V1"),
            actor_id="org-1",
            recorded_since=city.corrections_recorded_at,
        ),
    )
    assert positions_of(page) == [DECLINED]


def test_an_unknown_subject_kind_or_a_bad_limit_is_refused(database: Database) -> None:
    with pytest.raises(InvalidAuditQueryError, match="subject kind"):
        AuditQuery(subject=("citizen", "X"))
    for limit in (0, 1001):
        with pytest.raises(InvalidAuditQueryError, match="limit"):
            AuditQuery(limit=limit)
    outcome = run_cli(database, "audit", "events", "--subject", "citizen:X")
    assert outcome.exit_code == 2
    assert "subject kind" in outcome.output


# --- paging, as_of and citations ---------------------------------------------


def test_paging_with_next_after_returns_every_event_once_in_ledger_order(
    database: Database, city: AuditedCity
) -> None:
    for limit in (1, 5, 7, HEAD, 1000):  # 7 divides the 28 events exactly
        events = every_event(database, AuditQuery(limit=limit))
        assert [e.position for e in events] == list(range(1, HEAD + 1)), limit
    # A filtered query pages the same way
    whole = find_events(database, AuditQuery(subject=("volunteer", "V1")))
    paged = every_event(database, AuditQuery(subject=("volunteer", "V1"), limit=2))
    assert paged == whole.events


def test_a_full_last_page_says_there_is_no_next_page(
    database: Database, city: AuditedCity
) -> None:
    first = find_events(database, AuditQuery(limit=14))
    assert (positions_of(first)[-1], first.next_after) == (14, 14)
    last = find_events(database, AuditQuery(limit=14, after_position=14))
    assert (positions_of(last)[-1], last.next_after) == (HEAD, None)


def test_as_of_caps_the_position_an_answer_reflects(
    database: Database, city: AuditedCity
) -> None:
    page = find_events(database, AuditQuery(as_of=13, limit=1000))
    assert positions_of(page) == list(range(1, 14))
    assert (page.position, page.chain_hash) == (13, chain_hash_at(database, 13))
    session = find_events(database, AuditQuery(subject=("session", "S-V1"), as_of=13))
    assert positions_of(session) == [11, 12, 13]
    beyond = find_events(database, AuditQuery(as_of=HEAD + 100, limit=1000))
    assert beyond.position == HEAD
    assert positions_of(beyond) == list(range(1, HEAD + 1))


def test_paging_as_of_a_position_is_stable_while_the_ledger_grows(
    ledger: Ledger, database: Database, city: AuditedCity
) -> None:
    first = find_events(database, AuditQuery(as_of=HEAD, limit=20))
    record_all(
        ledger,
        [submission("register_team", team_id="T2", name="team 2", level="corps")],
    )
    rest = find_events(
        database, AuditQuery(as_of=HEAD, limit=20, after_position=first.next_after)
    )
    assert positions_of(first) + positions_of(rest) == list(range(1, HEAD + 1))
    assert rest.next_after is None
    assert rest.chain_hash == first.chain_hash == chain_hash_at(database, HEAD)


def test_answers_cite_the_position_and_chain_hash_they_reflect(
    database: Database, city: AuditedCity
) -> None:
    page = find_events(database, AuditQuery(subject=("order", "O1")))
    assert page.position == HEAD
    assert page.chain_hash == chain_hash_at(database, HEAD)
    for event in page.events:
        assert event.chain_hash == chain_hash_at(database, event.position)
    empty = find_events(database, AuditQuery(actor_id="nobody"))
    assert empty.events == []
    assert (empty.position, empty.next_after) == (HEAD, None)
    assert empty.chain_hash == chain_hash_at(database, HEAD)


def test_each_event_states_who_when_how_and_what(
    database: Database, city: AuditedCity
) -> None:
    voids = find_events(database, AuditQuery(types=("Volunteer.SessionVoided",)))
    [voided] = voids.events
    assert voided.actor == Actor(**INSPECTOR)
    assert voided.occurred_at == (T0 + 5 * DAY).isoformat()
    assert parse_recorded(voided.recorded_at) == city.corrections_recorded_at
    assert voided.source == "cli"
    assert voided.subjects == [
        "activity:A1",
        "session:S-V2",
        "venue:S1",
        "volunteer:V2",
    ]
    assert voided.payload["reason"] == VOID_REASON
    assert voided.payload["fraud"] is True
    assert "timestamp" not in voided.payload


# --- personal data -------------------------------------------------------------


def test_id_and_phone_numbers_are_masked_unless_revealed(
    database: Database, city: AuditedCity, ledger: Ledger
) -> None:
    query = AuditQuery(subject=("volunteer", "V3"))
    masked = find_events(database, query, vault=ledger.vault)
    [registered] = masked.events
    assert registered.payload["id_number"] == mask_id_number(V3_ID_NUMBER)
    assert registered.payload["id_number"] == "320583********" + V3_ID_NUMBER[-4:]
    assert registered.payload["phone"] == "138****5678"
    assert registered.payload["phone"] == mask_phone(V3_PHONE)
    text = masked.model_dump_json()
    assert V3_ID_NUMBER not in text and V3_PHONE not in text

    revealed = find_events(
        database, query, reveal_personal_data=True, vault=ledger.vault
    )
    assert revealed.events[0].payload["id_number"] == V3_ID_NUMBER
    assert revealed.events[0].payload["phone"] == V3_PHONE


def test_the_cli_masks_personal_data_unless_asked_to_reveal_it(
    database: Database, city: AuditedCity
) -> None:
    masked = run_cli(database, "audit", "events", "--subject", "volunteer:V3")
    assert masked.exit_code == 0, masked.output
    assert V3_ID_NUMBER not in masked.stdout and V3_PHONE not in masked.stdout
    assert "138****5678" in masked.stdout
    revealed = run_cli(
        database,
        "audit",
        "events",
        "--subject",
        "volunteer:V3",
        "--reveal-personal-data",
    )
    assert revealed.exit_code == 0, revealed.output
    assert V3_ID_NUMBER in revealed.stdout and V3_PHONE in revealed.stdout


def test_the_cli_answers_as_find_events_does(
    database: Database, city: AuditedCity
) -> None:
    outcome = run_cli(
        database,
        "audit",
        "events",
        "--subject",
        "volunteer:V1",
        "--type",
        "Volunteer.CorrectionRequested",
        "--type",
        "Volunteer.SessionCorrected",
        "--recorded-since",
        city.corrections_recorded_at.isoformat(),
        "--limit",
        "1",
    )
    assert outcome.exit_code == 0, outcome.output
    expected = find_events(
        database,
        AuditQuery(
            subject=("volunteer", "V1"),
            types=("Volunteer.CorrectionRequested", "Volunteer.SessionCorrected"),
            recorded_since=city.corrections_recorded_at,
            limit=1,
        ),
    )
    assert orjson.loads(outcome.stdout) == expected.model_dump()
    assert (positions_of(expected), expected.next_after) == ([REQUESTED], REQUESTED)


# --- session stories -------------------------------------------------------------


def test_a_corrected_session_story_tells_the_original_each_adjustment_and_status(
    database: Database, city: AuditedCity
) -> None:
    story = session_story(database, "S-V1")
    assert [chapter.what for chapter in story.story] == [
        "checked in",
        "checked out",
        "approved",
        "correction requested",
        "correction declined",
        "corrected",
    ]
    assert story.original_minutes == 120
    assert story.adjustments == [
        Adjustment(
            from_minutes=120,
            to_minutes=135,
            by=Actor(**SUPERVISOR),
            why=CORRECTION_REASON,
            at=(T0 + 4 * DAY).isoformat(),
            position=CORRECTED,
        )
    ]
    assert (story.status, story.minutes) == ("approved", 135)
    # The request (150 minutes, V1's reason) and the decline (who, why) are told
    request, decline = story.story[3], story.story[4]
    assert (request.actor, request.minutes) == (Actor(**VOLUNTEER_V1), 150)
    assert (request.reason, request.position) == (REQUEST_REASON, REQUESTED)
    assert (decline.actor, decline.reason) == (Actor(**ORGANISER), DECLINE_REASON)
    assert story.story[1].at == (T0 + 2 * HOUR).isoformat()
    # It cites the ledger state it reflects
    assert (story.position, story.chain_hash) == (
        HEAD,
        chain_hash_at(database, HEAD),
    )


def test_a_session_voided_for_fraud_ends_voided_and_says_who_and_why(
    database: Database, city: AuditedCity
) -> None:
    story = session_story(database, "S-V2")
    assert [chapter.what for chapter in story.story] == [
        "checked in",
        "checked out",
        "approved",
        "voided",
    ]
    assert (story.original_minutes, story.adjustments) == (150, [])
    assert story.status == "voided"
    voided = story.story[-1]
    assert (voided.actor, voided.reason) == (Actor(**INSPECTOR), VOID_REASON)
    assert (voided.fraud, voided.position) == (True, VOIDED)


def test_a_story_as_of_an_earlier_position_tells_what_was_known_then(
    database: Database, city: AuditedCity
) -> None:
    before = session_story(database, "S-V1", as_of=DECLINED)
    assert [c.what for c in before.story][-1] == "correction declined"
    assert (before.status, before.minutes, before.adjustments) == (
        "approved",
        120,
        [],
    )
    assert before.chain_hash == chain_hash_at(database, DECLINED)
    pending = session_story(database, "S-V2", as_of=SET_UP_HEAD)
    assert (pending.status, pending.minutes) == ("pending", 150)


def test_the_cli_tells_a_session_story_and_refuses_an_unknown_session(
    database: Database, city: AuditedCity
) -> None:
    outcome = run_cli(database, "audit", "session", "S-V1")
    assert outcome.exit_code == 0, outcome.output
    assert orjson.loads(outcome.stdout) == session_story(database, "S-V1").model_dump()
    with pytest.raises(LookupError, match="not recorded"):
        session_story(database, "S-NONE")
    unknown = run_cli(database, "audit", "session", "S-NONE")
    assert unknown.exit_code == 4
    assert "not recorded" in unknown.output
