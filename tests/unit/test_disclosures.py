"""Which reads show personal data, and so are recorded as disclosures: a
full ID or phone number does; a masked one, or the erased marker, does not."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.domain.privacy import ERASED, mask_personal_data
from ledger.services.disclosures import shows_personal_data, volunteers_in_rows
from tests.factories import id_number

REGISTRATION = {
    "volunteer_id": "V1",
    "name": "王小明",
    "id_number": id_number(),
    "phone": "13812345678",
}


def test_a_full_id_or_phone_number_is_shown() -> None:
    assert shows_personal_data(REGISTRATION)
    assert shows_personal_data({"id_number": None, "phone": "13812345678"})
    assert shows_personal_data({"session": {"id_number": id_number()}})


@pytest.mark.parametrize(
    "document",
    [
        mask_personal_data(REGISTRATION),
        {**REGISTRATION, "id_number": ERASED, "phone": ERASED},
        {"volunteer_id": "V1", "minutes": 120},
        {"id_number": None, "phone": None},
    ],
)
def test_masked_erased_or_absent_numbers_are_not_shown(
    document: dict[str, Any],
) -> None:
    assert not shows_personal_data(document)


def test_the_volunteers_of_a_roster_are_those_whose_numbers_it_shows() -> None:
    rows = [
        {**REGISTRATION, "volunteer_id": "V1"},
        {**mask_personal_data(REGISTRATION), "volunteer_id": "V2"},
        {"volunteer_id": "V3", "name": ERASED, "id_number": ERASED, "phone": ERASED},
    ]

    assert volunteers_in_rows(rows) == {"V1"}
