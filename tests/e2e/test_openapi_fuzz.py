"""The OpenAPI document is public, and requests generated from it by
schemathesis (valid and invalid ones, NUL characters and values past the
bounds included, sent as every role, without a key and with a bad one, aimed
partly at the city's real ids) never meet a server error, a refused request
is a problem detail that writes nothing, and the ledger verifies afterwards
(no accepted fact is refused by a projection)."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.http_helpers import CALLERS, PROBLEM_JSON, Api, is_problem, open_api
from tests.factories import id_number

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

# Generated requests per engine, spread over every operation: about 70 %
# valid by the schema, 30 % not. CI keeps the default; a recorded run sets
# ``LEDGER_FUZZ_CASES`` (docs/robustness.md).
CASES = int(os.environ.get("LEDGER_FUZZ_CASES", "700"))
POSITIVE_SHARE = 0.7
# Where a recorded run writes its tally (JSON), when set.
REPORT_VARIABLE = "LEDGER_FUZZ_REPORT"

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

# Values at and past the edges of CONTRACT §1.3 and of the integers a
# database holds, swapped into generated requests.
EDGE_TIMES: tuple[Any, ...] = (
    "9999-12-31T20:00:00-14:00",
    "0001-01-01T00:00:00+08:00",
    "2000-01-01T00:00:00-12:00",
    "2099-12-31T23:59:59+14:00",
    "2024-03-01T09:00:00",
    "2024-03-01T09:00:00+23:59",
    1709254800,
    -1e308,
)
EDGE_NUMBERS: tuple[Any, ...] = (0, -1, 10_001, 2**31, 2**63 - 1, 2**63, 10**30)
EDGE_QUERY: tuple[str, ...] = (
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999999999",
    "-1",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31",
    "2024-13-45",
    "1e308",
)
TIME_FIELDS = {"at", "starts_at", "ends_at", "as_of", "since", "until"}
NUMBER_FIELDS = {"capacity", "minutes", "stars", "score", "after", "limit", "year"}
# One character past the longest text field, and a body past 64 KiB.
LONG_TEXTS = ("长" * 501, "x" * 70_000)
# The sweep's base request: valid times and numbers, so that each edge value
# alone decides the answer, and a new id for what a command creates.
SWEEP_BASE: dict[str, Any] = {
    "at": "2024-03-02T09:00:00+08:00",
    "starts_at": "2024-03-09T09:00:00+08:00",
    "ends_at": "2024-03-09T11:00:00+08:00",
    "capacity": 10,
    "minutes": 60,
}
CREATED_ID = {
    "register_venue": "venue_id",
    "register_team": "team_id",
    "register_volunteer": "volunteer_id",
    "publish_activity": "activity_id",
    "post_order": "order_id",
    "check_in": "session_id",
}


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


def aim_at_the_edges(case: Any, data: st.DataObject) -> None:
    """Swap some generated values for ones at or past the bounds: times out
    of range or without an offset, numbers for times, integers past 64 bits,
    texts past their length."""
    if data.draw(st.booleans()):
        return
    for fields in (case.body, case.query):
        if not isinstance(fields, dict):
            continue
        for name in list(fields):
            if not data.draw(st.booleans()):
                continue
            if fields is case.query:
                fields[name] = data.draw(st.sampled_from(EDGE_QUERY))
            elif name in TIME_FIELDS:
                fields[name] = data.draw(st.sampled_from(EDGE_TIMES))
            elif name in NUMBER_FIELDS:
                fields[name] = data.draw(st.sampled_from(EDGE_NUMBERS))
            elif isinstance(fields[name], str):
                fields[name] = data.draw(st.sampled_from(LONG_TEXTS))


@dataclass
class Tally:
    """What a fuzzing run sent and met, by engine (for docs/robustness.md)."""

    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)

    def write(self, engine: str) -> None:
        path = os.environ.get(REPORT_VARIABLE)
        if not path:
            return
        with open(path, "ab") as report:
            report.write(
                orjson.dumps(
                    {
                        "engine": engine,
                        "cases": self.cases,
                        "statuses": {
                            str(k): v for k, v in sorted(self.statuses.items())
                        },
                        "failures": self.failures,
                    }
                )
                + b"\n"
            )


def send_and_check(
    api: Api, operation: Any, case: Any, caller: str, tally: Tally
) -> None:
    """Send one case as ``caller``; note a server error, a refusal that
    wrote anything, or a refusal that is not a problem detail."""
    head = api.head()
    tally.cases += 1
    try:
        response = case.call(headers=api.headers(caller))
        tally.statuses[response.status_code] += 1
        case.validate_response(response, checks=[not_a_server_error])
    except Exception as error:  # the app raised, or answered 5xx
        tally.failures.append(f"{operation.label}: {error!r:.400}")
        return
    if not 400 <= response.status_code < 500:
        return
    if api.head() != head:
        tally.failures.append(
            f"{operation.label} as {caller}: {response.status_code} but wrote "
            f"{api.head() - head} events: {case.body!r:.300}"
        )
    # schemathesis keeps headers lower-cased, each as a list of values.
    content_type = response.headers.get("content-type", [""])[0]
    if not content_type.startswith(PROBLEM_JSON):
        tally.failures.append(
            f"{operation.label}: {response.status_code} is not a problem "
            f"detail: {response.text:.300}"
        )


def generated(operation: Any, mode: Any, examples: int) -> Any:
    """Run the decorated function on ``examples`` generated cases."""
    return lambda check: given(
        case=operation.as_strategy(generation_mode=mode), data=st.data()
    )(
        settings(
            max_examples=examples,
            derandomize=True,
            database=None,
            deadline=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )(check)
    )


def fuzz(api: Api, operation: Any, mode: Any, examples: int, tally: Tally) -> None:
    """Send generated requests for one operation, half as admin (who may
    send everything, so they reach the rules), half as every other caller,
    no key and a bad key included."""

    @generated(operation, mode, examples)
    def send(case: Any, data: st.DataObject) -> None:
        aim_at_the_city(case, data)
        aim_at_the_edges(case, data)
        callers = ("admin",) * (len(CALLERS) - 1) + CALLERS
        send_and_check(api, operation, case, data.draw(st.sampled_from(callers)), tally)

    send()


def declared_body_fields(operation: Any) -> list[str]:
    """The property names of the operation's JSON body schema (none for a
    read)."""
    for body in operation.body:
        schema = body.definition["schema"]
        bundled = schema.get("x-bundled", {})
        reference = schema.get("$ref", "")
        resolved = bundled.get(reference.rsplit("/", 1)[-1], schema)
        return list(resolved.get("properties", {}))
    return []


def sweep_the_edges(api: Api, operation: Any, tally: Tally) -> None:
    """Send one valid case of ``operation`` as admin once per edge value in
    each body field and query parameter it declares, the city's ids filled
    in."""
    query_names = [parameter.name for parameter in operation.query]
    body_names = declared_body_fields(operation)

    created = CREATED_ID.get(operation.path.rsplit("/", 1)[-1])
    fresh_ids = (f"EDGE{n}" for n in itertools.count())

    @generated(operation, schemathesis.GenerationMode.POSITIVE, 1)
    def send(case: Any, data: st.DataObject) -> None:
        for fields in (case.body, case.path_parameters):
            if isinstance(fields, dict):
                for name in fields.keys() & KNOWN_IDS.keys():
                    fields[name] = KNOWN_IDS[name][0]
                for name in fields.keys() & SWEEP_BASE.keys():
                    fields[name] = SWEEP_BASE[name]
                fields.pop("key", None)
        if case.query is None:
            case.query = {}
        for fields, names in ((case.body, body_names), (case.query, query_names)):
            if not isinstance(fields, dict):
                continue
            for name in names:
                kept = fields.get(name)
                if fields is case.query:
                    edges: tuple[Any, ...] = EDGE_QUERY
                elif name in TIME_FIELDS:
                    edges = EDGE_TIMES
                elif name in NUMBER_FIELDS:
                    edges = EDGE_NUMBERS
                else:
                    edges = LONG_TEXTS
                for edge in edges:
                    fields[name] = edge
                    if created and isinstance(case.body, dict):
                        case.body[created] = next(fresh_ids)
                    send_and_check(api, operation, case, "admin", tally)
                if kept is None:
                    del fields[name]
                else:
                    fields[name] = kept

    send()


def test_generated_requests_meet_no_server_error_and_refusals_write_nothing(
    api: Api, database_url: str
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    # NUL characters are generated too (they have their own tests below).
    schema.config.generation.update(allow_x00=True)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 32
    # The operators' probes take no input, and /readyz answers 503 by design
    # while the commands sent here wait, unprojected (tests/e2e/test_service.py).
    operations = [op for op in operations if "operations" not in (op.tags or [])]
    positive = max(1, round(CASES * POSITIVE_SHARE / len(operations)))
    negative = max(1, round(CASES * (1 - POSITIVE_SHARE) / len(operations)))
    tally = Tally()
    for mode, examples in (
        (schemathesis.GenerationMode.POSITIVE, positive),
        (schemathesis.GenerationMode.NEGATIVE, negative),
    ):
        for operation in operations:
            fuzz(api, operation, mode, examples, tally)
    for operation in operations:
        sweep_the_edges(api, operation, tally)
    api.project()
    verification = api.get("/audit/verify", "auditor").json()
    if not verification["ok"]:
        tally.failures.append(f"the ledger no longer verifies: {verification}")
    tally.write(database_url.split(":", 1)[0])
    assert tally.failures == []


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
