"""Erasing a volunteer's personal data (PIPL), in memory: the erasure is an
event carrying only its reason and time; afterwards the volunteer holds no
name, ID or phone number, and a second erasure triggers nothing."""

from __future__ import annotations

import pytest

from ledger.domain.errors import MissingReasonError
from ledger.domain.volunteers import Volunteer
from tests.factories import id_number
from tests.unit.domain_builders import LATER, event_names, recorded, settled


def registered() -> Volunteer:
    return settled(
        Volunteer.register(
            volunteer_id="V1",
            name="王小明",
            id_number=id_number(),
            phone="13812345678",
            teams=[],
        )
    )


def test_forgetting_records_the_reason_and_time_and_no_personal_data() -> None:
    volunteer = registered()

    volunteer.forget_personal_data("asked to be forgotten", LATER)

    (erasure,) = recorded(volunteer)
    assert erasure.topic == "Volunteer.PersonalDataErased"
    assert set(erasure.payload) - {"timestamp", "originator_topic"} == {
        "reason",
        "at",
    }
    assert volunteer.personal_data_erased
    assert volunteer.name is volunteer.id_number is volunteer.phone is None


def test_forgetting_again_triggers_nothing() -> None:
    volunteer = registered()
    volunteer.forget_personal_data("asked to be forgotten", LATER)
    volunteer.collect_events()

    volunteer.forget_personal_data("asked again", LATER)

    assert event_names(volunteer) == []


def test_forgetting_needs_a_reason() -> None:
    volunteer = registered()

    with pytest.raises(MissingReasonError):
        volunteer.forget_personal_data("  ", LATER)

    assert event_names(volunteer) == []
    assert not volunteer.personal_data_erased
