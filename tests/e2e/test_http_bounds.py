"""CONTRACT §1.3 over HTTP, on a real SQLite file and real PostgreSQL: a body
over 64 KiB is a 413 before anything parses it (also when it comes chunked,
without a Content-Length), and a command outside a bound is a 422 naming
the rule; neither writes anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.e2e.http_helpers import LATER, Api, body, is_problem, open_api

LIMIT = 64 * 1024


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


def rejection_of_size(size: int) -> bytes:
    """A ``reject_session`` body exactly ``size`` bytes long (its reason pads it)."""
    document = body("reject_session", LATER, session_id="V1-A1", reason="")
    short = len(orjson.dumps(document))
    return orjson.dumps({**document, "reason": "x" * (size - short)})


def test_a_body_over_64_kib_is_a_413_problem_and_writes_nothing(api: Api) -> None:
    head = api.head()

    response = api.client.post(
        "/commands/reject_session",
        content=rejection_of_size(50 * 1024 * 1024),
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )

    assert is_problem(response, 413, "body_too_large")
    assert api.head() == head


def test_a_chunked_body_over_64_kib_is_a_413_problem_and_writes_nothing(
    api: Api,
) -> None:
    head = api.head()
    whole = rejection_of_size(LIMIT + 1)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(whole), 4096):
            yield whole[start : start + 4096]

    response = api.client.post(
        "/commands/reject_session",
        content=chunks(),
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )

    assert "content-length" not in {name.lower() for name in response.request.headers}
    assert is_problem(response, 413, "body_too_large")
    assert api.head() == head


def test_a_body_of_64_kib_is_read_and_judged_by_its_rules(api: Api) -> None:
    response = api.client.post(
        "/commands/reject_session",
        content=rejection_of_size(LIMIT),
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )

    assert is_problem(response, 422, "text_too_long")


@pytest.mark.parametrize(
    ("command_type", "fields", "code"),
    [
        (
            "publish_activity",
            {
                "activity_id": "A9",
                "venue_id": "S1",
                "category": "culture",
                "title": "in the year 9999",
                "starts_at": "9999-12-31T20:00:00-14:00",
                "ends_at": "9999-12-31T21:00:00-14:00",
                "capacity": 5,
            },
            "time_out_of_range",
        ),
        (
            "reject_session",
            {"session_id": "V1-A1", "reason": "理" * 501},
            "text_too_long",
        ),
        (
            "accept_order",
            {"order_id": "O1", "volunteer_ids": [f"V{n}" for n in range(201)]},
            "list_too_long",
        ),
    ],
    ids=["time", "reason", "volunteer_ids"],
)
def test_a_command_outside_a_bound_is_a_422_naming_the_rule(
    api: Api, command_type: str, fields: dict[str, object], code: str
) -> None:
    head = api.head()

    response = api.post(command_type, **fields)

    assert is_problem(response, 422, code)
    assert api.head() == head


def test_a_number_is_not_a_time(api: Api) -> None:
    document = {**body("approve_session", LATER, session_id="V1-A1"), "at": 1.7e9}

    response = api.client.post(
        "/commands/approve_session", json=document, headers=api.headers("admin")
    )

    assert is_problem(response, 422, "invalid_time")


def test_a_reason_of_500_characters_is_recorded(api: Api) -> None:
    response = api.post("reject_session", session_id="V1-A1", reason="理" * 500)

    assert response.status_code == 201


def test_the_openapi_schema_states_the_bounds(api: Api) -> None:
    schemas = api.client.get("/openapi.json").json()["components"]["schemas"]
    activity = schemas["PublishActivity"]["properties"]

    assert activity["title"]["maxLength"] == 100
    assert (activity["capacity"]["minimum"], activity["capacity"]["maximum"]) == (
        1,
        10_000,
    )
    assert "2000–2099" in activity["starts_at"]["description"]
    assert (
        schemas["AcceptOrder"]["properties"]["volunteer_ids"]["anyOf"][0]["maxItems"]
        == 200
    )
