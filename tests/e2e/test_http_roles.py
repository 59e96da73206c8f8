"""Roles and scope over HTTP: every route, walked with every role (and with
no key and a bad key), admits exactly the callers meant for it; scoped keys
stay inside their venue's subtree or their own volunteer; only admin sees
ID and phone numbers unmasked.

The expected matrix below is the intent (CONTRACT §5 and the issue), written
independently of ``api/``: a route added without a row here fails
``test_the_matrix_names_every_route``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ledger.application.commands import COMMAND_TYPES
from tests.e2e.http_helpers import (
    CALLERS,
    LATER,
    V1_ID_NUMBER,
    V1_PHONE,
    V2_ID_NUMBER,
    Api,
    is_problem,
    open_api,
)
from tests.factories import T0, id_number


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


# --- the intended matrix -------------------------------------------------

ORDER_COMMANDS = frozenset(
    {
        "post_order",
        "dispatch_order",
        "accept_order",
        "fulfil_order",
        "withdraw_order",
        "reject_order",
        "expire_order",
    }
)
OWN_VOLUNTEER_COMMANDS = frozenset(
    {"sign_up", "cancel_sign_up", "check_in", "check_out", "request_correction", "rate"}
)
EVERY_COMMAND = frozenset(COMMAND_TYPES)

# Awards are recorded by the honours run (`ledger honours`), an admin's job;
# teams belong to no venue; erasing personal data for ever is an admin's.
ADMIN_ONLY_COMMANDS = frozenset({"register_team", "record_honours", "forget_volunteer"})

WRITES: dict[str, frozenset[str]] = {
    "admin": EVERY_COMMAND,
    "auditor": frozenset(),
    "dispatcher": ORDER_COMMANDS | {"rate"},
    "venue_staff": EVERY_COMMAND - ADMIN_ONLY_COMMANDS,
    "volunteer": OWN_VOLUNTEER_COMMANDS,
    "dashboard": frozenset(),
}

HOURS = "GET /volunteers/{volunteer_id}/hours"
ACTIVITY = "GET /venues/{venue_id}/activity"
FULFILMENT = "GET /venues/{venue_id}/fulfilment"
CHILDREN = "GET /venues/{venue_id}/children"
CENTRES = "GET /venues"
LEADERBOARD = "GET /leaderboards/hours"
AUDIT_EVENTS = "GET /audit/events"
EXPLAIN = "GET /audit/explain/volunteer-hours/{volunteer_id}"
EXPLAIN_ACTIVITY = "GET /audit/explain/venue-activity/{venue_id}"
EXPLAIN_FULFILMENT = "GET /audit/explain/venue-fulfilment/{venue_id}"
VENUE_EXPLANATIONS = frozenset({EXPLAIN_ACTIVITY, EXPLAIN_FULFILMENT})
SESSION_STORY = "GET /audit/sessions/{session_id}"
VERIFY = "GET /audit/verify"
PERSONAL_DATA_READS = "GET /audit/personal-data-reads"
# The monthly calendar names no one: every key reads it.
CALENDAR = "GET /calendar"
AGGREGATES = frozenset({ACTIVITY, FULFILMENT, CHILDREN, CENTRES, LEADERBOARD})
EVERY_READ = (
    AGGREGATES
    | VENUE_EXPLANATIONS
    | {HOURS, AUDIT_EVENTS, EXPLAIN, SESSION_STORY, VERIFY, CALENDAR}
    | {PERSONAL_DATA_READS}
)

READS: dict[str, frozenset[str]] = {
    "admin": EVERY_READ,
    "auditor": EVERY_READ,
    "dispatcher": AGGREGATES | {HOURS, CALENDAR},
    # A volunteer's hours span venues, so they are no venue's to read: a
    # venue_staff key reads its subtree's figures only; no audit, no
    # leaderboard, no list of centres. Explanations name residents and
    # raters: auditors only.
    "venue_staff": frozenset({ACTIVITY, FULFILMENT, CHILDREN, CALENDAR}),
    "volunteer": frozenset({HOURS, EXPLAIN, CALENDAR}),
    "dashboard": AGGREGATES | {CALENDAR},
}

# One request per route, inside the scope of the venue_staff key (I1) and
# the volunteer key (V1), so that only the role decides.
READ_PATHS = {
    HOURS: "/volunteers/V1/hours",
    ACTIVITY: "/venues/I1/activity",
    FULFILMENT: "/venues/I1/fulfilment",
    CHILDREN: "/venues/I1/children",
    CENTRES: "/venues",
    LEADERBOARD: "/leaderboards/hours",
    AUDIT_EVENTS: "/audit/events",
    EXPLAIN: "/audit/explain/volunteer-hours/V1",
    EXPLAIN_ACTIVITY: "/audit/explain/venue-activity/I1",
    EXPLAIN_FULFILMENT: "/audit/explain/venue-fulfilment/I1",
    SESSION_STORY: "/audit/sessions/V1-A1",
    VERIFY: "/audit/verify",
    PERSONAL_DATA_READS: "/audit/personal-data-reads",
    CALENDAR: "/calendar?month=2024-03",
}
IN_SCOPE_COMMANDS: dict[str, dict[str, Any]] = {
    "register_venue": {
        "venue_id": "P-new",
        "name": "new point",
        "level": "point",
        "parent_id": "S1",
    },
    "register_team": {
        "team_id": "T-new",
        "name": "new team",
        "level": "corps",
        "parent_id": None,
    },
    "register_volunteer": {
        "volunteer_id": "V-new",
        "name": "王五",
        "id_number": id_number(303),
    },
    "publish_activity": {
        "activity_id": "A-new",
        "venue_id": "S1",
        "category": "culture",
        "title": "new activity",
        "starts_at": LATER.isoformat(),
        "ends_at": LATER.replace(hour=12).isoformat(),
        "capacity": 5,
    },
    "sign_up": {"activity_id": "A1", "volunteer_id": "V1"},
    "cancel_sign_up": {"activity_id": "A1", "volunteer_id": "V1"},
    "check_in": {"session_id": "V1-new", "volunteer_id": "V1", "activity_id": "A1"},
    "check_out": {"session_id": "V1-A1"},
    "record_makeup_hours": {
        "session_id": "V1-makeup",
        "volunteer_id": "V1",
        "activity_id": "A1",
        "minutes": 30,
        "reason": "forgot to check in",
    },
    "approve_session": {"session_id": "V1-A1"},
    "reject_session": {"session_id": "V1-A1", "reason": "not there"},
    "request_correction": {"session_id": "V1-A1", "minutes": 150, "reason": "late"},
    "decline_correction": {"session_id": "V1-A1", "reason": "records agree"},
    "correct_session": {"session_id": "V1-A1", "minutes": 150, "reason": "late"},
    "void_session": {"session_id": "V1-A1", "reason": "duplicate"},
    "post_order": {
        "order_id": "O-new",
        "kind": "service",
        "venue_id": "S1",
        "category": "health",
        "description": "a lift to the clinic",
    },
    "dispatch_order": {"order_id": "O1", "venue_id": "P1"},
    "accept_order": {"order_id": "O1", "volunteer_ids": ["V1"]},
    "fulfil_order": {"order_id": "O1"},
    "withdraw_order": {"order_id": "O1", "reason": "no longer needed"},
    "reject_order": {"order_id": "O1", "reason": "out of area"},
    "expire_order": {"order_id": "O1"},
    "rate": {"subject": "activity", "subject_id": "A1", "rater_id": "V1", "stars": 5},
    "record_honours": {
        "volunteer_id": "V1",
        "rules": "national",
        "stars": 1,
        "as_of": "2024-12-31",
        "position": 1,
    },
    "forget_volunteer": {"volunteer_id": "V1", "reason": "left the corps"},
}
# The operators' paths: documented, and answered without a key.
OPERATOR_PATHS = ("/healthz", "/readyz", "/metrics")
PUBLIC_PATHS = ("/openapi.json", "/docs", "/redoc", *OPERATOR_PATHS)
# Other documented operations that need no key: a certificate's QR code
# opens the verification page (tests/e2e/test_certificate_verification.py).
PUBLIC_OPERATIONS = {"GET /verify"} | {f"GET {path}" for path in OPERATOR_PATHS}


def route_keys(api: Api) -> set[str]:
    """Every operation the app documents, as ``METHOD /path``."""
    paths = api.client.get("/openapi.json").json()["paths"]
    return {
        f"{method.upper()} {path}"
        for path, operations in paths.items()
        for method in operations
    }


def admitted(status: int) -> bool:
    return status not in (401, 403)


def test_the_matrix_names_every_route(api: Api) -> None:
    written = {f"POST /commands/{command}" for command in IN_SCOPE_COMMANDS}
    assert route_keys(api) == written | set(READ_PATHS) | PUBLIC_OPERATIONS
    assert set(IN_SCOPE_COMMANDS) == EVERY_COMMAND


@pytest.mark.parametrize("caller", CALLERS)
def test_every_route_admits_exactly_the_callers_meant_for_it(
    api: Api, caller: str
) -> None:
    writes = WRITES.get(caller, frozenset())
    reads = READS.get(caller, frozenset())
    denied_status = {401} if caller in ("no key", "bad key") else {403}
    wrong = []
    for path in PUBLIC_PATHS:
        response = api.get(path, caller)
        if response.status_code != 200:
            wrong.append(f"{path}: public, got {response.status_code}")
    for command, fields in IN_SCOPE_COMMANDS.items():
        route = f"POST /commands/{command}"
        head = api.head()
        response = api.post(command, caller, **fields)
        allowed = command in writes
        if not fits(response.status_code, allowed, denied_status):
            wrong.append(describe(route, allowed, response))
        elif not allowed and api.head() != head:
            wrong.append(f"{route}: denied, but wrote {api.head() - head} events")
    for route, path in READ_PATHS.items():
        response = api.get(path, caller)
        allowed = route in reads
        if not fits(response.status_code, allowed, denied_status):
            wrong.append(describe(route, allowed, response))
    assert wrong == []


def fits(status: int, allowed: bool, denied_status: set[int]) -> bool:
    if allowed:
        return admitted(status) and status < 500
    return status in denied_status


def describe(route: str, allowed: bool, response: Any) -> str:
    expected = "allowed" if allowed else "denied"
    return f"{route}: expected {expected}, got {response.status_code} {response.text}"


def test_a_missing_or_unknown_key_is_told_how_to_authenticate(api: Api) -> None:
    missing = api.get("/venues/I1/activity", "no key")
    unknown = api.get("/venues/I1/activity", "bad key")
    assert is_problem(missing, 401, "unauthenticated")
    assert is_problem(unknown, 401, "unknown_key")
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert unknown.headers["WWW-Authenticate"] == "Bearer"


# --- venue_staff: only inside its venue's subtree ------------------------

OUTSIDE_I1_READS = (
    "/venues/I2/activity",
    "/venues/I2/fulfilment",
    "/venues/I2/children",
    "/venues/S2/activity",
    "/venues/C/activity",  # an ancestor is outside the subtree too
    "/venues/C/fulfilment",
    "/venues/C/children",
)
OUTSIDE_I1_WRITES: tuple[tuple[str, dict[str, Any]], ...] = (
    (
        "register_venue",
        {"venue_id": "P-out", "name": "point", "level": "point", "parent_id": "S2"},
    ),
    (
        "publish_activity",
        {**IN_SCOPE_COMMANDS["publish_activity"], "venue_id": "S2"},
    ),
    ("sign_up", {"activity_id": "A2", "volunteer_id": "V1"}),
    ("cancel_sign_up", {"activity_id": "A2", "volunteer_id": "V2"}),
    ("check_in", {"session_id": "V2-new", "volunteer_id": "V2", "activity_id": "A2"}),
    ("check_out", {"session_id": "V2-A2"}),
    (
        "record_makeup_hours",
        {**IN_SCOPE_COMMANDS["record_makeup_hours"], "activity_id": "A2"},
    ),
    ("approve_session", {"session_id": "V2-A2"}),
    ("reject_session", {"session_id": "V2-A2", "reason": "not there"}),
    ("request_correction", {"session_id": "V2-A2", "minutes": 150, "reason": "x"}),
    ("decline_correction", {"session_id": "V2-A2", "reason": "records agree"}),
    ("correct_session", {"session_id": "V2-A2", "minutes": 150, "reason": "late"}),
    ("void_session", {"session_id": "V2-A2", "reason": "duplicate"}),
    ("post_order", {**IN_SCOPE_COMMANDS["post_order"], "venue_id": "S2"}),
    ("dispatch_order", {"order_id": "O2", "venue_id": "S2"}),
    # An order of the subtree dispatched to a venue outside it.
    ("dispatch_order", {"order_id": "O1", "venue_id": "S2"}),
    ("dispatch_order", {"order_id": "O1", "venue_id": "C"}),
    ("accept_order", {"order_id": "O2", "volunteer_ids": ["V2"]}),
    ("fulfil_order", {"order_id": "O2"}),
    ("withdraw_order", {"order_id": "O2", "reason": "no longer needed"}),
    ("reject_order", {"order_id": "O2", "reason": "out of area"}),
    ("expire_order", {"order_id": "O2"}),
    ("rate", {"subject": "activity", "subject_id": "A2", "rater_id": "R", "stars": 4}),
)


def refusals_out_of_scope(
    api: Api, caller: str, requests: tuple[tuple[str, dict[str, Any]], ...]
) -> list[str]:
    """Send each command; list those not refused as out of scope, or that
    wrote anything."""
    wrong = []
    for command, fields in requests:
        head = api.head()
        response = api.post(command, caller, **fields)
        if not is_problem(response, 403, "out_of_scope") or api.head() != head:
            wrong.append(f"{command}: {response.status_code} {response.text}")
    return wrong


def test_venue_staff_may_not_read_a_venue_outside_its_subtree(api: Api) -> None:
    wrong = [
        f"{path}: {response.status_code}"
        for path in OUTSIDE_I1_READS
        if not is_problem(response := api.get(path, "venue_staff"), 403, "out_of_scope")
    ]
    assert wrong == []


def test_venue_staff_may_not_write_outside_its_subtree_and_nothing_is_written(
    api: Api,
) -> None:
    assert refusals_out_of_scope(api, "venue_staff", OUTSIDE_I1_WRITES) == []


def test_venue_staff_may_not_register_a_centre_outside_its_subtree(api: Api) -> None:
    head = api.head()
    response = api.post(
        "register_venue",
        "venue_staff",
        venue_id="C-rogue",
        name="rogue centre",
        level="centre",
        parent_id=None,
    )
    assert is_problem(response, 403, "out_of_scope")
    assert api.head() == head


def test_venue_staff_may_work_anywhere_inside_its_subtree(api: Api) -> None:
    deep = api.post(
        "post_order",
        "venue_staff",
        **{**IN_SCOPE_COMMANDS["post_order"], "venue_id": "P1"},
    )
    assert deep.status_code == 201
    assert api.get("/venues/P1/activity", "venue_staff").status_code == 200


def test_venue_staff_may_work_at_a_venue_it_just_registered_in_its_subtree(
    api: Api,
) -> None:
    # No `ledger project` in between: scope is judged on the ledger itself.
    registered = api.post(
        "register_venue",
        "venue_staff",
        venue_id="P2",
        name="new point",
        level="point",
        parent_id="S1",
    )
    assert registered.status_code == 201
    posted = api.post(
        "post_order",
        "venue_staff",
        **{**IN_SCOPE_COMMANDS["post_order"], "venue_id": "P2"},
    )
    assert posted.status_code == 201, posted.text
    dispatched = api.post("dispatch_order", "venue_staff", order_id="O1", venue_id="P2")
    assert dispatched.status_code == 201, dispatched.text


def test_a_venue_just_registered_outside_the_subtree_is_outside_at_once(
    api: Api,
) -> None:
    registered = api.post(
        "register_venue", venue_id="P3", name="far point", level="point", parent_id="S2"
    )
    assert registered.status_code == 201
    outside: tuple[tuple[str, dict[str, Any]], ...] = (
        ("post_order", {**IN_SCOPE_COMMANDS["post_order"], "venue_id": "P3"}),
        ("dispatch_order", {"order_id": "O1", "venue_id": "P3"}),
    )
    assert refusals_out_of_scope(api, "venue_staff", outside) == []


def test_venue_staff_may_register_a_volunteer_who_belongs_to_no_venue(
    api: Api,
) -> None:
    registered = api.post(
        "register_volunteer",
        "venue_staff",
        volunteer_id="V-walk-in",
        name="赵六",
        id_number=id_number(505),
    )
    assert registered.status_code == 201, registered.text


@pytest.mark.parametrize("path", ["/volunteers/V1/hours", "/volunteers/V2/hours"])
def test_venue_staff_may_not_read_a_volunteers_hours(api: Api, path: str) -> None:
    assert is_problem(api.get(path, "venue_staff"), 403, "forbidden")


# --- volunteer: its own record only --------------------------------------

FOR_ANOTHER_VOLUNTEER: tuple[tuple[str, dict[str, Any]], ...] = (
    ("sign_up", {"activity_id": "A1", "volunteer_id": "V2"}),
    ("cancel_sign_up", {"activity_id": "A2", "volunteer_id": "V2"}),
    ("check_in", {"session_id": "V2-new", "volunteer_id": "V2", "activity_id": "A2"}),
    ("check_out", {"session_id": "V2-A2"}),
    ("request_correction", {"session_id": "V2-A2", "minutes": 150, "reason": "x"}),
    ("rate", {"subject": "activity", "subject_id": "A1", "rater_id": "V2", "stars": 5}),
)


@pytest.mark.parametrize(
    "path", ["/volunteers/V2/hours", "/audit/explain/volunteer-hours/V2"]
)
def test_a_volunteer_may_not_read_another_volunteers_record(
    api: Api, path: str
) -> None:
    assert is_problem(api.get(path, "volunteer"), 403, "out_of_scope")


def test_a_volunteer_may_not_act_for_another_volunteer_and_nothing_is_written(
    api: Api,
) -> None:
    assert refusals_out_of_scope(api, "volunteer", FOR_ANOTHER_VOLUNTEER) == []


def test_a_volunteer_signs_up_checks_in_and_out_and_rates_for_itself(
    api: Api,
) -> None:
    nine = LATER
    published = api.post(
        "publish_activity", at=T0, **IN_SCOPE_COMMANDS["publish_activity"]
    )
    assert published.status_code == 201
    steps: tuple[tuple[str, dict[str, Any]], ...] = (
        ("sign_up", {"at": nine, "activity_id": "A-new", "volunteer_id": "V1"}),
        (
            "check_in",
            {
                "at": nine,
                "session_id": "V1-B",
                "volunteer_id": "V1",
                "activity_id": "A-new",
            },
        ),
        ("check_out", {"at": nine.replace(hour=11), "session_id": "V1-B"}),
        (
            "rate",
            {
                "at": nine.replace(hour=12),
                "subject": "activity",
                "subject_id": "A-new",
                "rater_id": "V1",
                "stars": 5,
            },
        ),
    )
    for command, fields in steps:
        assert api.post(command, "volunteer", **fields).status_code == 201, command


# --- personal data -------------------------------------------------------


def volunteer_events(api: Api, caller: str) -> Any:
    response = api.get("/audit/events", caller, subject="volunteer:V1")
    assert response.status_code == 200
    return response


def registration_of_v1(response: Any) -> dict[str, Any]:
    registered = [
        e for e in response.json()["events"] if e["type"] == "Volunteer.Registered"
    ]
    assert len(registered) == 1
    payload: dict[str, Any] = registered[0]["payload"]
    return payload


def test_only_admin_sees_id_and_phone_numbers_in_audit_events(api: Api) -> None:
    payload = registration_of_v1(volunteer_events(api, "admin"))
    assert payload["id_number"] == V1_ID_NUMBER
    assert payload["phone"] == V1_PHONE


def test_an_auditor_sees_id_and_phone_numbers_masked(api: Api) -> None:
    response = volunteer_events(api, "auditor")
    payload = registration_of_v1(response)
    assert payload["id_number"] == V1_ID_NUMBER[:6] + "*" * 8 + V1_ID_NUMBER[-4:]
    assert payload["phone"] == V1_PHONE[:3] + "****" + V1_PHONE[-4:]
    assert V1_ID_NUMBER not in response.text
    assert V1_PHONE not in response.text


@pytest.mark.parametrize(
    "caller", ["auditor", "dispatcher", "venue_staff", "volunteer", "dashboard"]
)
def test_no_read_a_non_admin_may_make_shows_a_full_id_or_phone_number(
    api: Api, caller: str
) -> None:
    readable = [route for route in READ_PATHS if route in READS[caller]]
    for route in readable:
        query = {"limit": 1000} if route == AUDIT_EVENTS else {}
        text = api.get(READ_PATHS[route], caller, query=query).text
        for secret in (V1_ID_NUMBER, V1_PHONE, V2_ID_NUMBER):
            assert secret not in text, (route, secret)


def test_a_duplicate_id_number_is_refused_without_echoing_it(api: Api) -> None:
    response = api.post(
        "register_volunteer",
        "venue_staff",
        volunteer_id="V3",
        name="冒名",
        id_number=V1_ID_NUMBER,
    )
    assert is_problem(response, 409, "duplicate_id_number")
    assert V1_ID_NUMBER not in response.text
