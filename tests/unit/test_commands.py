"""Parsing interchange lines (CONTRACT §1) into commands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from ledger.application.commands import (
    COMMAND_TYPES,
    AcceptOrder,
    CheckOut,
    Command,
    DispatchOrder,
    PublishActivity,
    Rate,
    RegisterVenue,
    VoidSession,
    parse_command,
)
from tests.factories import CST, T0

AT = T0.isoformat()
ACTOR = {"id": "staff-1", "role": "venue_staff"}

# The fields of one valid line of every command type.
VALID_FIELDS: dict[str, dict[str, Any]] = {
    "register_venue": {
        "venue_id": "C",
        "name": "昆山市中心",
        "level": "centre",
        "parent_id": None,
    },
    "register_team": {"team_id": "T1", "name": "总队", "level": "corps"},
    "register_volunteer": {
        "volunteer_id": "V1",
        "name": "张三",
        "id_number": "32058319900101001X",
    },
    "publish_activity": {
        "activity_id": "A1",
        "venue_id": "S1",
        "category": "culture",
        "title": "书法课",
        "starts_at": AT,
        "ends_at": (T0 + timedelta(hours=2)).isoformat(),
        "capacity": 20,
    },
    "sign_up": {"activity_id": "A1", "volunteer_id": "V1"},
    "cancel_sign_up": {"activity_id": "A1", "volunteer_id": "V1"},
    "check_in": {"session_id": "S1", "volunteer_id": "V1", "activity_id": "A1"},
    "check_out": {"session_id": "S1"},
    "record_makeup_hours": {
        "session_id": "M1",
        "volunteer_id": "V1",
        "activity_id": "A1",
        "minutes": 60,
        "reason": "忘记签到",
    },
    "approve_session": {"session_id": "S1"},
    "reject_session": {"session_id": "S1", "reason": "不在名单上"},
    "request_correction": {"session_id": "S1", "minutes": 90, "reason": "晚签退"},
    "decline_correction": {"session_id": "S1", "reason": "记录无误"},
    "correct_session": {"session_id": "S1", "minutes": 90, "reason": "核实"},
    "void_session": {"session_id": "S1", "reason": "代签"},
    "post_order": {
        "order_id": "O1",
        "kind": "wish",
        "venue_id": "S1",
        "category": "education",
        "description": "课后辅导",
    },
    "dispatch_order": {"order_id": "O1", "venue_id": "S1"},
    "accept_order": {"order_id": "O1", "volunteer_ids": ["V1"]},
    "fulfil_order": {"order_id": "O1"},
    "withdraw_order": {"order_id": "O1", "reason": "已解决"},
    "reject_order": {"order_id": "O1", "reason": "超出范围"},
    "expire_order": {"order_id": "O1"},
    "rate": {"subject": "order", "subject_id": "O1", "rater_id": "R1", "stars": 5},
    "record_honours": {
        "volunteer_id": "V1",
        "rules": "kunshan@1",
        "stars": 2,
        "benefits": [],
        "points": 3000,
        "as_of": "2024-12-31",
        "position": 120,
    },
    "forget_volunteer": {"volunteer_id": "V1", "reason": "本人申请注销"},
}


def parse(type_: str, *, omit: tuple[str, ...] = (), **fields: Any) -> Command:
    """Parse one line of ``type_``: its valid fields, overridden by ``fields``,
    without the fields named in ``omit``."""
    body: dict[str, Any] = {"type": type_, "at": AT, "actor": ACTOR}
    body.update(VALID_FIELDS.get(type_, {}))
    body.update(fields)
    return parse_command(orjson.dumps({k: v for k, v in body.items() if k not in omit}))


# --- every command type -------------------------------------------------------


def test_every_command_type_has_a_valid_example_here() -> None:
    assert set(VALID_FIELDS) == set(COMMAND_TYPES)


@pytest.mark.parametrize("type_", sorted(VALID_FIELDS))
def test_a_valid_line_parses_into_its_command(type_: str) -> None:
    parsed = parse(type_)

    assert type(parsed) is COMMAND_TYPES[type_]
    assert parsed.type == type_
    assert parsed.at == T0
    assert (parsed.actor.id, parsed.actor.role) == ("staff-1", "venue_staff")


def test_a_line_is_parsed_from_text_as_well_as_bytes() -> None:
    text = orjson.dumps(
        {"type": "check_out", "at": AT, "actor": ACTOR, "session_id": "S1"}
    ).decode()

    assert parse_command(text).type == "check_out"


@pytest.mark.parametrize("type_", ["unknown", "register", "Sign_Up", ""])
def test_a_line_of_an_unknown_type_is_refused(type_: str) -> None:
    with pytest.raises(ValidationError):
        parse(type_)


def test_a_line_without_a_type_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_command(orjson.dumps({"at": AT, "actor": ACTOR, "session_id": "S1"}))


def test_a_line_that_is_not_json_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_command(b"type=check_out session_id=S1")


@pytest.mark.parametrize(
    "fields",
    [
        {"reason": "fraud\x00"},
        {"actor": {"id": "staff-1\x00", "role": "venue_staff"}},
        {"ignored extra field": ["a", "b\x00"]},
        {"ignored key\x00": 1},
    ],
)
def test_a_nul_character_anywhere_in_a_line_is_refused(fields: dict[str, Any]) -> None:
    # orjson writes NUL as the escape \u0000, the one way JSON text holds it
    line = orjson.dumps(
        {"type": "void_session", "at": AT, "actor": ACTOR}
        | {"session_id": "S1", "reason": "fraud", **fields}
    )

    with pytest.raises(ValidationError, match="NUL"):
        parse_command(line)


def test_a_backslash_before_u0000_is_text_not_a_nul_character() -> None:
    parsed = parse("void_session", reason="see \\u0000 in the log")

    assert isinstance(parsed, VoidSession)
    assert parsed.reason == "see \\u0000 in the log"


@pytest.mark.parametrize("type_", sorted(VALID_FIELDS))
def test_extra_fields_are_ignored(type_: str) -> None:
    parsed = parse(type_, platform="志愿江苏", legacy_id=4711)

    assert type(parsed) is COMMAND_TYPES[type_]
    assert not hasattr(parsed, "platform")
    assert "legacy_id" not in parsed.model_dump()


def test_a_missing_required_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("check_in", omit=("activity_id",))


@pytest.mark.parametrize("blank", ["", "   "])
def test_a_blank_id_is_refused(blank: str) -> None:
    with pytest.raises(ValidationError):
        parse("check_out", session_id=blank)


def test_an_honours_cycle_is_a_year_or_nothing_never_empty() -> None:
    # An empty cycle would read as the cumulative scope of the rule set
    with pytest.raises(ValidationError):
        parse("record_honours", cycle="")
    assert parse("record_honours", cycle="2024").cycle == "2024"  # type: ignore[attr-defined]


def test_ids_are_stripped_of_surrounding_blanks() -> None:
    parsed = parse("sign_up", activity_id=" A1 ", volunteer_id="V1\t")

    assert (parsed.activity_id, parsed.volunteer_id) == ("A1", "V1")  # type: ignore[union-attr]


# --- time, actor and key --------------------------------------------------------


@pytest.mark.parametrize(
    "at", ["2024-03-01T09:00:00", "2024-03-01 09:00", "2024-03-01"]
)
def test_a_timestamp_without_an_offset_is_refused(at: str) -> None:
    with pytest.raises(ValidationError):
        parse("check_out", at=at)


def test_a_line_without_a_timestamp_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse_command(
            orjson.dumps({"type": "check_out", "actor": ACTOR, "session_id": "S1"})
        )


@pytest.mark.parametrize(
    ("at", "moment"),
    [
        ("2024-03-01T01:00:00Z", datetime(2024, 3, 1, 9, 0, tzinfo=CST)),
        ("2024-03-01T09:00:00+08:00", datetime(2024, 3, 1, 9, 0, tzinfo=CST)),
        ("2024-03-01T09:00:00.5+08:00", T0 + timedelta(milliseconds=500)),
    ],
)
def test_a_timestamp_with_an_offset_is_kept_as_that_moment(
    at: str, moment: datetime
) -> None:
    parsed = parse("check_out", at=at)

    assert parsed.at == moment
    assert parsed.at.utcoffset() is not None


@pytest.mark.parametrize("field", ["starts_at", "ends_at"])
def test_an_activity_window_without_an_offset_is_refused(field: str) -> None:
    naive: dict[str, Any] = {field: "2024-03-01T09:00:00"}

    with pytest.raises(ValidationError):
        parse("publish_activity", **naive)


def test_an_activity_window_keeps_its_offsets() -> None:
    parsed = parse("publish_activity", ends_at="2024-03-01T03:00:00Z")

    assert isinstance(parsed, PublishActivity)
    assert parsed.ends_at == datetime(2024, 3, 1, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "actor",
    [None, {"id": "staff-1"}, {"role": "venue_staff"}, {"id": " ", "role": "x"}],
    ids=["missing", "no role", "no id", "blank id"],
)
def test_a_line_without_a_whole_actor_is_refused(actor: Any) -> None:
    body = {"type": "check_out", "at": AT, "session_id": "S1"}
    if actor is not None:
        body["actor"] = actor

    with pytest.raises(ValidationError):
        parse_command(orjson.dumps(body))


def test_the_actor_role_is_free_text() -> None:
    parsed = parse("withdraw_order", actor={"id": "居民-42", "role": "resident"})

    assert parsed.actor.role == "resident"


def test_the_idempotency_key_is_optional_and_kept_when_given() -> None:
    assert parse("check_out").key is None
    assert parse("check_out", key="import-2024-03:17").key == "import-2024-03:17"


def test_an_empty_idempotency_key_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("check_out", key="")


# --- dispatch_order and accept_order ----------------------------------------------


@pytest.mark.parametrize(
    "target", [{"venue_id": "S1"}, {"team_id": "T1"}], ids=["venue", "team"]
)
def test_an_order_is_dispatched_to_exactly_one_target(target: dict[str, str]) -> None:
    body = {"type": "dispatch_order", "at": AT, "actor": ACTOR, "order_id": "O1"}

    parsed = parse_command(orjson.dumps({**body, **target}))

    assert isinstance(parsed, DispatchOrder)
    assert (parsed.venue_id, parsed.team_id) == (
        target.get("venue_id"),
        target.get("team_id"),
    )


def test_a_dispatch_without_a_target_is_refused() -> None:
    with pytest.raises(ValidationError, match="exactly one of venue_id or team_id"):
        parse("dispatch_order", omit=("venue_id",))


def test_a_dispatch_to_both_a_venue_and_a_team_is_refused() -> None:
    with pytest.raises(ValidationError, match="exactly one of venue_id or team_id"):
        parse("dispatch_order", venue_id="S1", team_id="T1")


def test_an_order_is_accepted_by_volunteers() -> None:
    parsed = parse("accept_order", volunteer_ids=["V1", "V2"])

    assert isinstance(parsed, AcceptOrder)
    assert (parsed.volunteer_ids, parsed.team_id) == (["V1", "V2"], None)


def test_an_order_is_accepted_by_a_team() -> None:
    parsed = parse("accept_order", omit=("volunteer_ids",), team_id="T1")

    assert isinstance(parsed, AcceptOrder)
    assert (parsed.volunteer_ids, parsed.team_id) == (None, "T1")


def test_an_acceptance_by_both_volunteers_and_a_team_is_refused() -> None:
    with pytest.raises(ValidationError, match="volunteer_ids or a team_id"):
        parse("accept_order", volunteer_ids=["V1"], team_id="T1")


@pytest.mark.parametrize(
    "volunteer_ids", [None, []], ids=["no volunteer_ids", "empty volunteer_ids"]
)
def test_an_acceptance_by_nobody_is_refused(volunteer_ids: list[str] | None) -> None:
    body = {"type": "accept_order", "at": AT, "actor": ACTOR, "order_id": "O1"}
    if volunteer_ids is not None:
        body["volunteer_ids"] = volunteer_ids

    with pytest.raises(ValidationError, match="volunteer_ids or a team_id"):
        parse_command(orjson.dumps(body))


# --- other field rules ------------------------------------------------------------


def test_a_venue_without_a_parent_id_is_a_root() -> None:
    parsed = parse("register_venue", omit=("parent_id",))

    assert isinstance(parsed, RegisterVenue)
    assert parsed.parent_id is None


def test_a_venue_keeps_its_parent_id_when_given() -> None:
    parsed = parse("register_venue", venue_id="I1", level="institute", parent_id="C")

    assert isinstance(parsed, RegisterVenue)
    assert parsed.parent_id == "C"


def test_an_activity_of_an_unknown_category_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("publish_activity", category="sports")


def test_an_order_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("post_order", kind="gift")


def test_a_rating_of_an_unknown_subject_is_refused() -> None:
    with pytest.raises(ValidationError):
        parse("rate", subject="volunteer")


@pytest.mark.parametrize("stars", [4.5, "many", None])
def test_a_rating_that_is_not_a_whole_number_of_stars_is_refused(stars: Any) -> None:
    body = {"type": "rate", "at": AT, "actor": ACTOR, **VALID_FIELDS["rate"]}
    body["stars"] = stars

    with pytest.raises(ValidationError):
        parse_command(orjson.dumps(body))


# Whole-number fields take only JSON integers: true is not one star (nor
# false zero minutes), "5" is text and 4.0 is a float.
WHOLE_NUMBER_FIELDS = [
    ("publish_activity", "capacity"),
    ("record_makeup_hours", "minutes"),
    ("request_correction", "minutes"),
    ("correct_session", "minutes"),
    ("rate", "stars"),
]


@pytest.mark.parametrize(("type_", "field"), WHOLE_NUMBER_FIELDS)
@pytest.mark.parametrize("value", [True, False, "5", 4.0, 4.5], ids=repr)
def test_a_whole_number_field_refuses_other_json_types(
    type_: str, field: str, value: Any
) -> None:
    with pytest.raises(ValidationError):
        parse(type_, **{field: value})


@pytest.mark.parametrize(("type_", "field"), WHOLE_NUMBER_FIELDS)
def test_a_whole_number_field_takes_a_json_integer(type_: str, field: str) -> None:
    four: dict[str, Any] = {field: 4}
    parsed = parse(type_, **four)

    assert getattr(parsed, field) == 4
    assert type(getattr(parsed, field)) is int


@pytest.mark.parametrize("fraud", ["true", "false", 1, 0, None], ids=repr)
def test_a_fraud_flag_that_is_not_a_json_boolean_is_refused(fraud: Any) -> None:
    with pytest.raises(ValidationError):
        parse("void_session", fraud=fraud)


def test_a_void_is_not_for_fraud_unless_it_says_so() -> None:
    plain = parse("void_session")
    fraud = parse("void_session", fraud=True)

    assert isinstance(plain, VoidSession)
    assert isinstance(fraud, VoidSession)
    assert (plain.fraud, fraud.fraud) == (False, True)


def test_a_rating_comment_is_optional() -> None:
    parsed = parse("rate", comment="很满意")

    assert isinstance(parsed, Rate)
    assert parsed.comment == "很满意"
    assert isinstance(parse("rate"), Rate)


def test_a_parsed_command_cannot_be_changed() -> None:
    parsed = parse("check_out")
    assert isinstance(parsed, CheckOut)

    with pytest.raises(ValidationError):
        parsed.session_id = "S2"
