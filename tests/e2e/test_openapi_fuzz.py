"""The OpenAPI document is public, and requests generated from it by
schemathesis (valid and invalid ones, NUL characters included, with an admin
key, aimed partly at the city's real ids) never meet a server error, and a
refused request is a problem detail that writes nothing."""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.http_helpers import PROBLEM_JSON, Api, is_problem, open_api
from tests.factories import id_number

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

# Examples per operation and mode; some 33 operations, so about 700
# requests per engine in all.
EXAMPLES = {"positive": 16, "negative": 6}

# Ids of the city (tests.e2e.http_helpers.city), so that generated commands
# reach the rules and not only "unknown reference".
KNOWN_IDS: dict[str, list[str]] = {
    "venue_id": ["C", "I1", "S1", "P1", "I2", "S2"],
    "parent_id": ["C", "I1", "S1", "T1"],
    "team_id": ["T1"],
    "volunteer_id": ["V1", "V2"],
    "activity_id": ["A1", "A2"],
    "session_id": ["V1-A1", "V2-A2"],
    "order_id": ["O1", "O2"],
    "subject_id": ["A1", "O1"],
    "rater_id": ["V1", "V2"],
    # Business times at and after the city's facts (facts about one subject
    # are recorded in time order).
    "at": ["2024-03-01T10:00:00+08:00", "2024-03-02T09:00:00+08:00"],
}
IDEMPOTENCY_KEYS = ("idempotency-key", "key")


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


def test_the_openapi_document_and_the_docs_need_no_key(api: Api) -> None:
    document = api.client.get("/openapi.json")
    docs = api.client.get("/docs")
    assert document.status_code == 200
    assert document.json()["openapi"].startswith("3.")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]


def test_the_openapi_document_declares_bearer_keys_and_problem_answers(
    api: Api,
) -> None:
    document = api.client.get("/openapi.json").json()
    schemes = document["components"]["securitySchemes"]
    assert [s["scheme"] for s in schemes.values()] == ["bearer"]
    hours = document["paths"]["/volunteers/{volunteer_id}/hours"]["get"]
    assert hours["security"]
    assert "application/problem+json" in hours["responses"]["404"]["content"]


def aim_at_the_city(case: Any, data: st.DataObject) -> None:
    """Swap some generated ids for real ones of the city, and drop most
    idempotency keys (generated keys repeat, and a repeated key only
    replays the first answer)."""
    if data.draw(st.integers(0, 3)) > 0:
        for fields in (case.headers, case.body):
            if isinstance(fields, MutableMapping):
                for name in [n for n in fields if n.lower() in IDEMPOTENCY_KEYS]:
                    del fields[name]
    for fields in (case.body, case.path_parameters):
        if not isinstance(fields, dict):
            continue
        for name, value in list(fields.items()):
            if name in KNOWN_IDS and isinstance(value, str):
                if data.draw(st.booleans()):
                    fields[name] = data.draw(st.sampled_from(KNOWN_IDS[name]))
            elif name == "volunteer_ids" and data.draw(st.booleans()):
                fields[name] = data.draw(
                    st.lists(st.sampled_from(KNOWN_IDS["volunteer_id"]), min_size=1)
                )


def fuzz(api: Api, operation: Any, mode: Any, failures: list[str]) -> None:
    """Send generated requests for one operation; note server errors and
    refused requests that wrote anything."""
    admin = api.headers("admin")

    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    @settings(
        max_examples=EXAMPLES[mode.value],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def send(case: Any, data: st.DataObject) -> None:
        aim_at_the_city(case, data)
        head = api.head()
        try:
            response = case.call(headers=admin)
            case.validate_response(response, checks=[not_a_server_error])
        except Exception as error:  # the app raised, or answered 5xx
            failures.append(f"{operation.label}: {error!r:.400}")
            return
        if not 400 <= response.status_code < 500:
            return
        if api.head() != head:
            failures.append(
                f"{operation.label}: {response.status_code} but wrote "
                f"{api.head() - head} events: {case.body!r:.300}"
            )
        # schemathesis keeps headers lower-cased, each as a list of values.
        content_type = response.headers.get("content-type", [""])[0]
        if not content_type.startswith(PROBLEM_JSON):
            failures.append(
                f"{operation.label}: {response.status_code} is not a problem "
                f"detail: {response.text:.300}"
            )

    send()


def test_generated_requests_meet_no_server_error_and_refusals_write_nothing(
    api: Api,
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # NUL characters are generated too (they have their own tests below).
    schema.config.generation.update(allow_x00=True)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 32
    # The operators' probes take no input, and /readyz answers 503 by design
    # while the commands sent here wait, unprojected (tests/e2e/test_service.py).
    operations = [op for op in operations if "operations" not in (op.tags or [])]
    failures: list[str] = []
    for mode in (
        schemathesis.GenerationMode.POSITIVE,
        schemathesis.GenerationMode.NEGATIVE,
    ):
        for operation in operations:
            fuzz(api, operation, mode, failures)
    assert failures == []


APPROVE = "/commands/approve_session"
NUL_COMMANDS: tuple[tuple[str, dict[str, Any]], ...] = (
    (APPROVE, {"session_id": "V1-A1", "key": "k\x00"}),
    (APPROVE, {"session_id": "V1\x00"}),
    (APPROVE, {"session_id": "V1-A1", "actor": {"id": "s\x00", "role": "admin"}}),
    (APPROVE, {"session_id": "V1-A1", "note\x00": "a NUL in a key, not a value"}),
    (APPROVE, {"session_id": "V1-A1", "extra": ["x", {"deep": "\x00"}]}),
    ("/commands/register_venue", {"venue_id": "N\x00", "name": "n"}),
    ("/commands/post_order", {"order_id": "O\x00", "venue_id": "S1"}),
    ("/commands/register_volunteer", {"volunteer_id": "V9", "name": "\x00"}),
)
NUL_READS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/audit/events", {"actor": "staff\x00"}),
    ("/audit/events", {"subject": "volunteer:V\x00"}),
    ("/audit/events", {"type": "Order.Posted\x00"}),
    ("/audit/events", {"as_of": "\x00"}),
    ("/audit/sessions/V1%00", {}),
    ("/volunteers/V1%00/hours", {}),
    ("/volunteers/V1/hours", {"as_of": "1\x00"}),
    ("/venues/I1%00/activity", {}),
    ("/venues/I1/fulfilment", {"kind": "wish\x00"}),
    ("/venues/I1/children", {"as_of": "2024-03-01T09:00:00+08:00\x00"}),
    ("/leaderboards/hours", {"year\x00": "2024"}),
)


def test_a_nul_character_in_a_command_is_an_invalid_command_that_writes_nothing(
    api: Api,
) -> None:
    admin = api.headers("admin")
    failures = []
    for path, fields in NUL_COMMANDS:
        head = api.head()
        document = {
            "at": "2024-03-02T09:00:00+08:00",
            "actor": {"id": "staff-1", "role": "venue_staff"},
            "level": "point",
            "parent_id": "S1",
            "kind": "wish",
            "category": "health",
            "description": "d",
            "id_number": id_number(606),
            **fields,
        }
        response = api.client.post(path, json=document, headers=admin)
        if not is_problem(response, 422, "invalid_command") or api.head() != head:
            failures.append(f"POST {path} {fields!r}: {response.status_code}")
    assert failures == []


def test_a_nul_character_in_a_path_or_query_is_an_invalid_read(api: Api) -> None:
    admin = api.headers("admin")
    failures = [
        f"GET {path} {params!r}: {response.status_code} {response.text:.200}"
        for path, params in NUL_READS
        if not is_problem(
            response := api.client.get(path, params=params, headers=admin),
            400,
            "invalid_read",
        )
    ]
    assert failures == []
