"""Personal data masking (PIPL): resident ID numbers and phone numbers."""

from __future__ import annotations

import copy

import pytest

from ledger.domain.privacy import (
    ERASED,
    mask_id_number,
    mask_personal_data,
    mask_phone,
)
from tests.factories import id_number


def test_an_id_number_keeps_its_region_code_and_last_four_characters() -> None:
    assert mask_id_number("32068219900101123X") == "320682********123X"
    number = id_number(5)
    masked = mask_id_number(number)
    assert masked == number[:6] + "*" * 8 + number[-4:]
    assert len(masked) == len(number)


@pytest.mark.parametrize("number", ["", "1", "1234567890"])
def test_an_id_number_too_short_to_keep_anything_is_masked_whole(number: str) -> None:
    assert mask_id_number(number) == "*" * len(number)


def test_a_fifteen_character_id_number_keeps_its_region_code_and_last_four() -> None:
    assert mask_id_number("320682900101123") == "320682*****1123"


def test_a_phone_number_keeps_its_first_three_and_last_four_digits() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("051257771234") == "051*****1234"


@pytest.mark.parametrize("phone", ["", "110", "1234567"])
def test_a_phone_number_too_short_to_keep_anything_is_masked_whole(phone: str) -> None:
    assert mask_phone(phone) == "*" * len(phone)


def test_masking_a_document_masks_id_and_phone_numbers_at_any_depth() -> None:
    document = {
        "volunteer_id": "V1",
        "name": "张三",
        "id_number": "32068219900101123X",
        "phone": "13812345678",
        "guardian": {
            "phone": "13987654321",
            "contact": {"id_number": "320682199001011234"},
        },
    }
    assert mask_personal_data(document) == {
        "volunteer_id": "V1",
        "name": "张三",
        "id_number": "320682********123X",
        "phone": "138****5678",
        "guardian": {
            "phone": "139****4321",
            "contact": {"id_number": "320682********1234"},
        },
    }


def test_masking_returns_a_copy_and_leaves_the_document_as_it_was() -> None:
    document = {"phone": "13812345678", "nested": {"id_number": "32068219900101123X"}}
    before = copy.deepcopy(document)
    mask_personal_data(document)
    assert document == before


def test_masking_leaves_absent_numbers_and_other_fields_alone() -> None:
    document = {"phone": None, "minutes": 120, "team_ids": ["T1"], "reason": "phone"}
    assert mask_personal_data(document) == document


def test_masking_reaches_numbers_inside_lists() -> None:
    document = {"contacts": [{"name": "李四", "phone": "13812345678"}]}
    assert mask_personal_data(document) == {
        "contacts": [{"name": "李四", "phone": "138****5678"}]
    }


def test_the_erased_marker_is_never_masked() -> None:
    document = {"id_number": ERASED, "phone": ERASED, "name": ERASED}

    assert mask_personal_data(document) == document
