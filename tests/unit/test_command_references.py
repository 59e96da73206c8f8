"""What each command names and where it acts, as its class declares: the
records a batch loads before handling it (``references``) and the venue and
volunteer a scoped key is held to (``scope_of``), over aggregates in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal
from uuid import UUID

import pytest
from eventsourcing.domain import Aggregate

from ledger.application.commands import BaseCommand, Referent
from ledger.application.handlers import (
    CommandScope,
    IdNumberDigest,
    References,
    references,
    scope_of,
)
from ledger.application.unit_of_work import UnitOfWork
from ledger.domain.activities import Activity
from ledger.domain.honours import Honours
from ledger.domain.orders import Order
from ledger.domain.teams import Team
from ledger.domain.volunteers import SessionStatus, Volunteer
from tests.factories import command
from tests.unit.domain_builders import activity, order, session_in, volunteer_at

DIGEST = IdNumberDigest(b"a test ledger's secret, 32 bytes")


class AggregatesInMemory:
    """The ledger's aggregate source, over aggregates and claims held here."""

    def __init__(
        self, *aggregates: Aggregate, claims: dict[tuple[str, str], UUID] | None = None
    ) -> None:
        self.aggregates = {aggregate.id: aggregate for aggregate in aggregates}
        self.claims = claims or {}

    def load_aggregates(self, streams: Sequence[UUID]) -> dict[UUID, Aggregate]:
        return {s: self.aggregates[s] for s in streams if s in self.aggregates}

    def find_claims(
        self, claims: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], UUID]:
        return {c: self.claims[c] for c in claims if c in self.claims}

    def existing_streams(self, streams: Sequence[UUID]) -> set[UUID]:
        return {s for s in streams if s in self.aggregates}


def scope(type_: str, store: AggregatesInMemory, **fields: Any) -> CommandScope:
    return scope_of(command(type_, **fields), UnitOfWork(store, None))


def recorded_session() -> AggregatesInMemory:
    """Volunteer V1 holding approved session S1 at activity A1 (station-1)."""
    who = session_in(SessionStatus.APPROVED, *volunteer_at())
    return AggregatesInMemory(who, activity(), claims={("session", "S1"): who.id})


# --- the records a command names ---------------------------------------------


def test_a_command_loads_the_record_each_of_its_fields_names() -> None:
    signing_up = command("sign_up", activity_id="A1", volunteer_id="V1")

    assert references(signing_up, DIGEST) == References(
        streams=(Activity.create_id("A1"), Volunteer.create_id("V1"))
    )


def test_a_list_of_ids_names_a_record_each_and_an_absent_id_none() -> None:
    accepting = command("accept_order", order_id="O1", volunteer_ids=["V1", "V2"])

    assert set(references(accepting, DIGEST).streams) == {
        Order.create_id("O1"),
        Volunteer.create_id("V1"),
        Volunteer.create_id("V2"),
    }


@pytest.mark.parametrize(
    ("subject", "kind"), [("order", Order), ("activity", Activity)]
)
def test_a_rating_loads_the_kind_of_record_it_rates(
    subject: str, kind: type[Aggregate]
) -> None:
    rating = command("rate", subject=subject, subject_id="X1", rater_id="R1", stars=5)

    assert references(rating, DIGEST) == References(streams=(kind.create_id("X1"),))


def test_a_session_is_found_through_the_claim_on_its_id() -> None:
    assert references(command("check_out", session_id="S1"), DIGEST) == References(
        claims=(("session", "S1"),)
    )


def test_a_registration_looks_up_the_digest_of_the_normalised_id_number() -> None:
    registering = command(
        "register_volunteer",
        volunteer_id="V1",
        name="张三",
        id_number=" 32058319900101001x ",
        team_ids=["T1"],
    )

    assert references(registering, DIGEST) == References(
        streams=(Volunteer.create_id("V1"), Team.create_id("T1")),
        claims=(("id_number", DIGEST("32058319900101001X")),),
    )


def test_recording_honours_loads_the_record_and_only_checks_the_volunteer() -> None:
    recording = command(
        "record_honours",
        volunteer_id="V1",
        rules="kunshan@1",
        stars=1,
        as_of="2024-12-31",
        position=10,
    )

    assert references(recording, DIGEST) == References(
        streams=(Honours.create_id("V1"),), existing=(Volunteer.create_id("V1"),)
    )


def test_a_declaration_naming_a_field_the_command_lacks_fails_when_defined() -> None:
    with pytest.raises(TypeError, match="ordre_id, not among its fields"):

        class Misspelt(BaseCommand):
            type: Literal["misspelt"] = "misspelt"
            refers_to: ClassVar[Mapping[str, Referent]] = {"ordre_id": Order}

            order_id: str


# --- where a command acts, and for whom ---------------------------------------


def test_a_session_command_acts_at_the_session_venue_for_its_volunteer() -> None:
    assert scope("approve_session", recorded_session(), session_id="S1") == (
        CommandScope("station-1", "V1")
    )


def test_an_unrecorded_session_is_nowhere_and_for_no_one() -> None:
    assert scope("check_out", recorded_session(), session_id="S9") == (
        CommandScope(None, None)
    )


def test_a_sign_up_acts_at_the_activity_venue_for_the_named_volunteer() -> None:
    store = recorded_session()

    assert scope("sign_up", store, activity_id="A1", volunteer_id="V2") == (
        CommandScope("station-1", "V2")
    )
    assert scope("sign_up", store, activity_id="A9", volunteer_id="V2") == (
        CommandScope(None, "V2")
    )


def test_an_order_command_acts_at_the_venue_the_order_was_posted_at() -> None:
    store = AggregatesInMemory(order("dispatched"))

    assert scope("dispatch_order", store, order_id="O1", venue_id="S9") == (
        CommandScope("station-1", None)
    )


def test_a_rating_acts_at_the_rated_record_venue_for_the_rater() -> None:
    store = AggregatesInMemory(order("fulfilled"))
    rating = {"subject": "order", "subject_id": "O1", "stars": 4}

    assert scope("rate", store, rater_id="R1", **rating) == (
        CommandScope("station-1", "R1")
    )


def test_new_records_act_at_the_venue_they_name_whether_recorded_or_not() -> None:
    nothing = AggregatesInMemory()

    assert scope(
        "register_venue",
        nothing,
        venue_id="S2",
        name="新村",
        level="station",
        parent_id="I9",
    ) == CommandScope("I9", None)
    assert scope(
        "post_order",
        nothing,
        order_id="O2",
        kind="wish",
        venue_id="S2",
        category="education",
        description="课后辅导",
    ) == CommandScope("S2", None)


def test_team_registration_acts_nowhere_and_honours_for_their_volunteer() -> None:
    nothing = AggregatesInMemory()

    assert scope(
        "register_team", nothing, team_id="T1", name="总队", level="corps"
    ) == CommandScope(None, None)
    assert scope(
        "record_honours",
        nothing,
        volunteer_id="V1",
        rules="kunshan@1",
        stars=1,
        as_of="2024-12-31",
        position=10,
    ) == CommandScope(None, "V1")
