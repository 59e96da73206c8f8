"""The HTTP API (CONTRACT §5) on a real SQLite file and real PostgreSQL:
writes are one POST per command with idempotency keys, rejections are
problem details that write nothing, and reads answer as of any position,
cite the chain, page, and honour ETags."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.application.commands import COMMAND_TYPES
from tests.e2e.http_helpers import (
    LATER,
    Api,
    beaten_to_activity_a3,
    is_problem,
    open_api,
)
from tests.factories import T0, activity, id_number, submission


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


# --- writes --------------------------------------------------------------


def test_every_command_of_the_interchange_format_has_its_own_post_path(
    api: Api,
) -> None:
    paths = api.client.get("/openapi.json").json()["paths"]
    for command in COMMAND_TYPES:
        operation = paths[f"/commands/{command}"]["post"]
        assert operation["operationId"] == command
        assert "requestBody" in operation
        parameters = {p["name"] for p in operation.get("parameters", [])}
        assert "Idempotency-Key" in {p.title() for p in parameters}


def test_an_accepted_command_answers_201_with_the_positions_it_wrote(
    api: Api,
) -> None:
    head = api.head()
    response = api.post("approve_session", session_id="V1-A1")
    assert response.status_code == 201
    answer = response.json()
    assert answer["outcome"] == "accepted"
    assert answer["first_position"] == answer["last_position"] == head + 1
    assert api.head() == head + 1
    assert "Idempotent-Replayed" not in response.headers


def test_a_retried_request_returns_the_first_answer_and_writes_nothing(
    api: Api,
) -> None:
    first = api.post("approve_session", idempotency_key="k-1", session_id="V1-A1")
    head = api.head()
    retried = api.post("approve_session", idempotency_key="k-1", session_id="V1-A1")
    assert retried.status_code == first.status_code == 201
    assert retried.json() == first.json()
    assert retried.json()["idempotency_key"] == "k-1"
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert api.head() == head


def test_a_key_reused_for_another_command_is_a_422_that_writes_nothing(
    api: Api,
) -> None:
    first = api.post("approve_session", idempotency_key="k-1", session_id="V1-A1")
    head = api.head()
    other = api.post(
        "reject_session", idempotency_key="k-1", session_id="V2-A2", reason="gone"
    )
    assert is_problem(other, 422, "idempotency_key_reused")
    assert "Idempotent-Replayed" not in other.headers
    assert api.head() == head
    # and the first command, sent again, still gets its first answer
    retried = api.post("approve_session", idempotency_key="k-1", session_id="V1-A1")
    assert retried.status_code == 201
    assert retried.json() == first.json()


def test_the_key_in_the_body_serves_when_no_header_is_sent(api: Api) -> None:
    first = api.post("approve_session", session_id="V1-A1", key="body-key")
    head = api.head()
    retried = api.post("approve_session", session_id="V1-A1", key="body-key")
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.json() == first.json()
    assert api.head() == head


def test_a_refused_request_does_not_use_up_its_key(api: Api) -> None:
    refused = api.post(
        "reject_session", idempotency_key="k-2", session_id="V1-A1", reason=" "
    )
    assert is_problem(refused, 422, "missing_reason")
    accepted = api.post("approve_session", idempotency_key="k-2", session_id="V1-A1")
    assert accepted.status_code == 201
    assert "Idempotent-Replayed" not in accepted.headers


def test_each_api_key_and_the_import_have_key_spaces_of_their_own(
    api: Api,
) -> None:
    # Given the import, and a volunteer's key, each used "shared" already
    imported = api.ledger.execute_batch(
        [submission("approve_session", at=LATER, session_id="V1-A1", key="shared")]
    )[0]
    assert imported.outcome == "accepted"
    volunteer = api.post(
        "sign_up",
        "volunteer",
        idempotency_key="shared",
        activity_id="A2",
        volunteer_id="V1",
        at=T0 - timedelta(days=2),
    )
    assert volunteer.status_code == 201
    head = api.head()
    # When the admin key sends its own command under "shared"
    response = api.post(
        "reject_session", idempotency_key="shared", session_id="V2-A2", reason="gone"
    )
    # Then it is recorded: neither of the others' uses squats the key
    assert response.status_code == 201
    assert "Idempotent-Replayed" not in response.headers
    assert response.json()["first_position"] == head + 1


def test_eight_identical_requests_at_once_give_one_acceptance_and_duplicates(
    api: Api,
) -> None:
    api.record([activity("A3", venue_id="S1", starts_at=LATER + timedelta(days=7))])
    head = api.head()
    start = threading.Barrier(8)

    def send(_: int) -> httpx.Response:
        start.wait()
        return api.post(
            "sign_up", idempotency_key="k-8", activity_id="A3", volunteer_id="V1"
        )

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(send, range(8)))

    assert [r.status_code for r in responses] == [201] * 8, [
        r.json() for r in responses
    ]
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert sorted(replayed, key=str) == [None] + ["true"] * 7
    assert {r.json()["first_position"] for r in responses} == {head + 1}
    assert api.head() == head + 1


def waiting_for_the_append_lock(api: Api) -> int:
    """How many PostgreSQL transactions wait for the ledger's append lock."""
    with api.ledger.database.reading() as conn:
        return int(
            conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE NOT granted "
                "AND relation = 'ledger_events'::regclass"
            ).scalar_one()
        )


def test_a_conflict_over_an_id_number_answers_without_its_digest(api: Api) -> None:
    if api.ledger.database.is_sqlite:
        pytest.skip("who waits for SQLite's write lock cannot be seen")
    # Given two registrations of one ID number, both read before either writes
    number = id_number()
    sent: list[httpx.Response] = []

    def register(volunteer_id: str) -> None:
        sent.append(
            api.post(
                "register_volunteer",
                "venue_staff",
                volunteer_id=volunteer_id,
                name="王五",
                id_number=number,
            )
        )

    threads = [threading.Thread(target=register, args=(v,)) for v in ("V7", "V8")]
    with api.ledger.database.appending():
        for thread in threads:
            thread.start()
        # (writes grouped into one append may wait as one)
        while waiting_for_the_append_lock(api) < 1:
            pass
    for thread in threads:
        thread.join(timeout=120)

    # Then one is recorded and the other refused, its answer holding no
    # trace of the number: not even the digest its claim is kept under
    assert sorted(r.status_code for r in sent) == [201, 409]
    (refused,) = [r for r in sent if r.status_code == 409]
    assert api.ledger.id_number_digest(number) not in refused.text
    assert number not in refused.text


REFUSALS: tuple[tuple[str, dict[str, Any], int, str], ...] = (
    (
        "register_venue",
        {"venue_id": "I1", "name": "again", "level": "institute", "parent_id": "C"},
        409,
        "duplicate_id",
    ),
    (
        "register_venue",
        {"venue_id": "X", "name": "x", "level": "point", "parent_id": "nowhere"},
        404,
        "unknown_reference",
    ),
    (
        "register_venue",
        {"venue_id": "X", "name": "x", "level": "station", "parent_id": "C"},
        422,
        "wrong_parent_level",
    ),
    (
        "register_volunteer",
        {"volunteer_id": "V9", "name": "x", "id_number": "320583199001011234"},
        422,
        "invalid_id_number",
    ),
    ("approve_session", {"session_id": "no-such-session"}, 404, "unknown_reference"),
    ("reject_session", {"session_id": "V1-A1", "reason": "   "}, 422, "missing_reason"),
    ("void_session", {"session_id": "V1-A1", "reason": "x"}, 409, "invalid_transition"),
    (
        "rate",
        {"subject": "order", "subject_id": "O1", "rater_id": "R", "stars": 5},
        409,
        "invalid_transition",
    ),
    (
        "rate",
        {"subject": "activity", "subject_id": "A1", "rater_id": "R", "stars": 9},
        422,
        "stars_out_of_range",
    ),
    ("fulfil_order", {"order_id": "O1"}, 409, "invalid_transition"),
)


@pytest.mark.parametrize(
    ("command", "fields", "status", "code"),
    REFUSALS,
    ids=[f"{command}-{code}" for command, _, _, code in REFUSALS],
)
def test_a_domain_error_is_a_problem_naming_the_rule_and_writes_nothing(
    api: Api, command: str, fields: dict[str, Any], status: int, code: str
) -> None:
    head = api.head()
    response = api.post(command, **fields)
    assert is_problem(response, status, code), response.text
    assert response.json()["detail"]
    assert api.head() == head


def test_a_sign_up_beyond_capacity_is_refused_with_409(api: Api) -> None:
    api.record([activity("A-small", venue_id="S1", capacity=1, starts_at=LATER)])
    assert api.post("sign_up", activity_id="A-small", volunteer_id="V1").is_success
    head = api.head()
    response = api.post("sign_up", activity_id="A-small", volunteer_id="V2")
    assert is_problem(response, 409, "capacity_reached")
    assert api.head() == head


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"at": LATER.isoformat(), "actor": {"id": "a", "role": "admin"}}, None),
        (
            {
                "at": "2024-03-02T09:00:00",
                "actor": {"id": "a", "role": "admin"},
                "session_id": "V1-A1",
            },
            "invalid_time",
        ),
        ({"at": LATER.isoformat(), "session_id": "V1-A1"}, None),
        (
            {
                "at": LATER.isoformat(),
                "actor": {"id": "a", "role": "admin"},
                "session_id": "V1-A1",
                "minutes": "ninety",
                "reason": "x",
            },
            None,
        ),
    ],
    ids=["no-session", "at-without-offset", "no-actor", "minutes-not-an-integer"],
)
def test_a_malformed_request_is_a_422_problem_and_writes_nothing(
    api: Api, document: dict[str, Any], code: str | None
) -> None:
    head = api.head()
    response = api.client.post(
        "/commands/correct_session", json=document, headers=api.headers("admin")
    )
    # A time without an offset is refused by the rule it breaks.
    assert is_problem(response, 422, code or "invalid_command")
    assert response.json()["errors"]
    assert api.head() == head


def test_a_body_that_is_not_json_text_is_a_problem_and_writes_nothing(
    api: Api,
) -> None:
    head = api.head()
    response = api.client.post(
        "/commands/approve_session",
        content=b"\x9c",
        headers={**api.headers("admin"), "Content-Type": "application/json"},
    )
    assert is_problem(response, 400, "bad_request"), response.text
    assert api.head() == head


def test_an_unknown_path_is_a_404_problem(api: Api) -> None:
    for path in ("/no/such/path", "/commands/no_such_command"):
        response = api.client.get(path, headers=api.headers("admin"))
        assert is_problem(response, 404, "no_such_path"), (path, response.text)
    posted = api.client.post(
        "/commands/no_such_command", json={}, headers=api.headers("admin")
    )
    assert is_problem(posted, 404, "no_such_path"), posted.text


WRONG_METHODS = (
    ("GET", "/commands/approve_session", "POST"),
    ("DELETE", "/commands/approve_session", "POST"),
    ("POST", "/volunteers/V1/hours", "GET"),
    ("PUT", "/audit/events", "GET"),
)


def test_a_wrong_method_is_a_405_problem_and_writes_nothing(api: Api) -> None:
    head = api.head()
    for method, path, _ in WRONG_METHODS:
        response = api.client.request(method, path, headers=api.headers("admin"))
        assert is_problem(response, 405, "method_not_allowed"), (method, path)
    assert api.head() == head


def test_a_405_problem_names_the_allowed_methods(api: Api) -> None:
    for method, path, allowed in WRONG_METHODS:
        response = api.client.request(method, path, headers=api.headers("admin"))
        assert allowed in response.headers.get("Allow", ""), (method, path)


def test_an_api_write_keeps_nothing_of_the_callers_key_in_its_correlation_id(
    api: Api,
) -> None:
    # Events outlive keys, and their correlation ids are shown to auditors:
    # not even the key's listed prefix goes into them.
    written = api.post("approve_session", "venue_staff", session_id="V1-A1")
    assert written.status_code == 201
    position = written.json()["first_position"]
    page = api.get("/audit/events", "auditor", after=position - 1, limit=1).json()
    event = page["events"][0]
    assert event["position"] == position
    assert event["correlation_id"].startswith("api-")
    assert api.keys["venue_staff"][4:12] not in event["correlation_id"]
    imported = api.get("/audit/events", "auditor", limit=1).json()["events"][0]
    assert not imported["correlation_id"].startswith("api-")


def test_a_concurrent_change_to_the_same_record_is_a_409_that_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = beaten_to_activity_a3(api)
    monkeypatch.setattr(api.ledger, "handlers", handlers)
    head = api.head()

    conflict = api.post(
        "sign_up", idempotency_key="k-3", at=T0, activity_id="A3", volunteer_id="V1"
    )

    assert is_problem(conflict, 409, "concurrency_conflict")
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert api.head() == head + 1  # only the other writer's sign-up
    retried = api.post(
        "sign_up", idempotency_key="k-3", at=T0, activity_id="A3", volunteer_id="V1"
    )
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert api.head() == head + 2


# --- reads ---------------------------------------------------------------


def serve_and_fulfil(api: Api) -> None:
    """V1's session approved (120 min); O1 fulfilled and rated 5; O2 withdrawn."""
    for command, fields in (
        ("approve_session", {"session_id": "V1-A1"}),
        ("dispatch_order", {"order_id": "O1", "venue_id": "P1"}),
        ("accept_order", {"order_id": "O1", "volunteer_ids": ["V1"]}),
        ("fulfil_order", {"order_id": "O1"}),
        ("withdraw_order", {"order_id": "O2", "reason": "solved by a neighbour"}),
    ):
        assert api.post(command, **fields).status_code == 201, command
    rated = api.post(
        "rate",
        at=LATER + timedelta(hours=1),
        subject="order",
        subject_id="O1",
        rater_id="resident-1",
        stars=5,
    )
    assert rated.status_code == 201
    api.project()


def test_volunteer_hours_give_the_figures_and_cite_the_chain(api: Api) -> None:
    serve_and_fulfil(api)
    hours = api.get("/volunteers/V1/hours").json()
    assert hours["volunteer_id"] == "V1"
    assert hours["verified_minutes"] == hours["total_minutes"] == 120
    assert hours["makeup_minutes"] == 0
    assert hours["sessions"] == 1
    assert hours["by_year"] == {"2024": 120}
    assert hours["stars"] == 0
    assert hours["position"] == api.head()
    assert hours["chain_hash"] == api.chain_hash_at(api.head())


def test_volunteer_hours_as_of_a_position_or_a_time_show_what_was_known_then(
    api: Api,
) -> None:
    before = api.head()
    audit = api.get("/audit/events", after=before - 1).json()["events"]
    known_then = audit[0]["recorded_at"]
    serve_and_fulfil(api)
    by_position = api.get("/volunteers/V1/hours", as_of=before).json()
    by_time = api.get("/volunteers/V1/hours", as_of=known_then).json()
    for read in (by_position, by_time):
        assert read["total_minutes"] == 0
        assert read["position"] == before
        assert read["chain_hash"] == api.chain_hash_at(before)


def test_a_time_beyond_the_latest_event_reads_the_latest_state(api: Api) -> None:
    serve_and_fulfil(api)
    read = api.get("/volunteers/V1/hours", as_of="2999-01-01T00:00:00+08:00")
    assert read.json()["total_minutes"] == 120
    assert read.json()["position"] == api.head()


def test_venue_activity_rolls_up_the_subtree_by_month(api: Api) -> None:
    serve_and_fulfil(api)
    institute = api.get("/venues/I1/activity").json()
    assert (institute["venue_id"], institute["venues"]) == ("I1", 3)
    assert institute["activities"] == 1
    assert institute["sessions"] == institute["volunteers"] == 1
    assert institute["volunteer_minutes"] == 120
    assert set(institute["by_month"]) == {"2024-03"}
    assert institute["by_category"]["culture"]["volunteer_minutes"] == 120
    assert institute["position"] == api.head()
    assert institute["chain_hash"] == api.chain_hash_at(api.head())
    alone = api.get("/venues/I1/activity", subtree="false").json()
    assert alone["activities"] == alone["volunteer_minutes"] == 0
    centre = api.get("/venues/C/activity", query={"from": "2024-03", "to": "2024-03"})
    assert centre.json()["activities"] == 2
    later = api.get("/venues/C/activity", query={"from": "2024-04"}).json()
    assert later["activities"] == later["sessions"] == 0


def test_venue_fulfilment_counts_the_five_orders(api: Api) -> None:
    serve_and_fulfil(api)
    centre = api.get("/venues/C/fulfilment").json()
    assert (centre["posted"], centre["withdrawn"], centre["fulfilled"]) == (2, 1, 1)
    assert centre["open"] == 0
    assert centre["rate"] == 1.0
    assert centre["satisfaction"] == 1.0
    assert centre["position"] == api.head()
    assert centre["chain_hash"] == api.chain_hash_at(api.head())
    services = api.get("/venues/C/fulfilment", kind="service").json()
    assert services["posted"] == 0
    assert services["rate"] is None
    assert services["satisfaction"] is None
    second = api.get("/venues/I2/fulfilment").json()
    assert (second["posted"], second["withdrawn"], second["rate"]) == (1, 1, None)


def test_venue_fulfilment_as_of_a_position_shows_the_orders_open(api: Api) -> None:
    before = api.head()
    serve_and_fulfil(api)
    then = api.get("/venues/C/fulfilment", as_of=before).json()
    assert (then["posted"], then["open"], then["fulfilled"]) == (2, 2, 0)
    assert then["rate"] == 0.0
    assert then["position"] == before


def test_venue_children_list_the_venues_directly_under_a_venue(api: Api) -> None:
    document = api.get("/venues/C/children").json()
    assert document["venue_id"] == "C"
    children = document["children"]
    assert [child["venue_id"] for child in children] == ["I1", "I2"]
    assert children[0] == {"venue_id": "I1", "name": "venue I1", "level": "institute"}
    assert document["position"] == api.head()
    assert document["chain_hash"] == api.chain_hash_at(api.head())
    assert api.get("/venues/P1/children").json()["children"] == []


def test_the_venues_path_lists_the_centres_where_a_dashboard_starts(
    api: Api,
) -> None:
    before = api.head()
    added = api.post(
        "register_venue", venue_id="C2", name="second", level="centre", parent_id=None
    )
    assert added.status_code == 201
    api.project()
    now = api.get("/venues", "dashboard").json()
    then = api.get("/venues", "dashboard", as_of=before).json()
    assert now["venue_id"] is None
    assert [c["venue_id"] for c in now["children"]] == ["C", "C2"]
    assert [c["venue_id"] for c in then["children"]] == ["C"]
    assert then["children"][0] == {
        "venue_id": "C",
        "name": "venue C",
        "level": "centre",
    }
    assert (now["position"], then["position"]) == (api.head(), before)
    assert then["chain_hash"] == api.chain_hash_at(before)


def test_venue_children_as_of_a_position_omit_later_venues(api: Api) -> None:
    before = api.head()
    added = api.post(
        "register_venue", venue_id="I3", name="third", level="institute", parent_id="C"
    )
    assert added.status_code == 201
    api.project()
    now = api.get("/venues/C/children").json()
    then = api.get("/venues/C/children", as_of=before).json()
    assert [c["venue_id"] for c in now["children"]] == ["I1", "I2", "I3"]
    assert [c["venue_id"] for c in then["children"]] == ["I1", "I2"]
    assert (now["position"], then["position"]) == (api.head(), before)
    assert then["chain_hash"] == api.chain_hash_at(before)


def test_venue_children_cite_the_projected_position_when_it_lags(api: Api) -> None:
    projected = api.head()
    added = api.post(
        "register_venue", venue_id="I3", name="third", level="institute", parent_id="C"
    )
    assert added.status_code == 201
    lagging = api.get("/venues/C/children").json()
    assert [c["venue_id"] for c in lagging["children"]] == ["I1", "I2"]
    assert lagging["position"] == projected
    assert lagging["chain_hash"] == api.chain_hash_at(projected)


def test_the_hours_leaderboard_ranks_volunteers_by_approved_minutes(
    api: Api,
) -> None:
    serve_and_fulfil(api)
    board = api.get("/leaderboards/hours", limit=5).json()
    assert [leader["volunteer_id"] for leader in board["leaders"]] == ["V1"]
    assert board["leaders"][0]["total_minutes"] == 120
    assert board["volunteers_with_service"] == 1
    assert board["volunteers_by_stars"]["0"] == 1
    assert board["position"] == api.head()
    assert board["chain_hash"] == api.chain_hash_at(api.head())


def test_audit_events_page_through_the_whole_ledger_in_order(api: Api) -> None:
    positions: list[int] = []
    after = 0
    while True:
        page = api.get("/audit/events", "auditor", after=after, limit=4)
        assert page.status_code == 200
        document = page.json()
        assert len(document["events"]) <= 4
        positions += [event["position"] for event in document["events"]]
        if document["next_after"] is None:
            break
        after = document["next_after"]
    assert positions == list(range(1, api.head() + 1))
    assert document["position"] == api.head()
    assert document["chain_hash"] == api.chain_hash_at(api.head())


def test_audit_events_carry_who_when_and_the_chain_hash(api: Api) -> None:
    api.post("approve_session", idempotency_key="k-9", session_id="V1-A1")
    events = api.get("/audit/events", "auditor", subject="session:V1-A1").json()
    approval = events["events"][-1]
    assert approval["type"] == "Volunteer.SessionApproved"
    assert "session:V1-A1" in approval["subjects"]
    assert approval["actor"] == {"id": "staff-1", "role": "venue_staff"}
    assert approval["occurred_at"] == LATER.isoformat()
    assert approval["recorded_at"]
    assert (approval["source"], approval["idempotency_key"]) == ("api", "k-9")
    assert approval["chain_hash"] == api.chain_hash_at(approval["position"])


def test_audit_events_filter_by_type_actor_and_business_time(api: Api) -> None:
    serve_and_fulfil(api)
    orders = api.get("/audit/events", type="Order.Posted").json()["events"]
    assert [event["payload"]["order_id"] for event in orders] == ["O1", "O2"]
    nobody = api.get("/audit/events", actor="nobody").json()["events"]
    assert nobody == []
    later = api.get("/audit/events", since=LATER.isoformat()).json()["events"]
    assert {event["occurred_at"] >= LATER.isoformat() for event in later} == {True}
    assert len(later) == 6


def test_audit_events_as_of_a_position_stop_there(api: Api) -> None:
    page = api.get("/audit/events", as_of=5, limit=100).json()
    assert [event["position"] for event in page["events"]] == [1, 2, 3, 4, 5]
    assert page["position"] == 5


def test_audit_events_as_of_a_recording_time_stop_there(api: Api) -> None:
    before = api.head()
    known_then = api.get("/audit/events", after=before - 1).json()["events"][0][
        "recorded_at"
    ]
    serve_and_fulfil(api)
    page = api.get("/audit/events", as_of=known_then, limit=1000).json()
    assert [event["position"] for event in page["events"]] == list(range(1, before + 1))
    assert page["position"] == before
    assert page["chain_hash"] == api.chain_hash_at(before)
    # (an auditor: an admin's read of the registrations would be recorded
    # after it, moving the head on)
    latest = api.get(
        "/audit/events", "auditor", as_of="2999-01-01T00:00:00+08:00"
    ).json()
    assert latest["position"] == api.head()


@pytest.mark.parametrize("as_of", ["yesterday", "2024-03-01T09:00:00", "-1"])
def test_audit_reads_refuse_a_malformed_as_of(api: Api, as_of: str) -> None:
    for path in ("/audit/events", "/audit/sessions/V1-A1"):
        response = api.get(path, as_of=as_of)
        assert is_problem(response, 422, "invalid_read"), (path, response.text)


def test_a_session_story_as_of_a_recording_time_tells_what_was_known_then(
    api: Api,
) -> None:
    approved = api.post("approve_session", session_id="V1-A1")
    assert approved.status_code == 201
    position = approved.json()["last_position"]
    known_then = api.get("/audit/events", after=position - 1).json()["events"][0][
        "recorded_at"
    ]
    corrected = api.post(
        "correct_session", session_id="V1-A1", minutes=150, reason="late out"
    )
    assert corrected.status_code == 201
    by_time = api.get("/audit/sessions/V1-A1", as_of=known_then).json()
    by_position = api.get("/audit/sessions/V1-A1", as_of=position).json()
    now = api.get("/audit/sessions/V1-A1").json()
    assert by_time == by_position
    assert (by_time["minutes"], by_time["adjustments"]) == (120, [])
    assert now["minutes"] == 150


def test_an_explanation_lists_the_events_that_sum_to_the_figures(api: Api) -> None:
    serve_and_fulfil(api)
    explanation = api.get("/audit/explain/volunteer-hours/V1", "auditor").json()
    contributions = explanation["contributions"]
    assert explanation["figures"]["total_minutes"] == 120
    assert sum(c["minutes"] for c in contributions) == 120
    assert [c["session_id"] for c in contributions] == ["V1-A1"]
    assert contributions[0]["chain_hash"] == api.chain_hash_at(
        contributions[0]["position"]
    )
    assert explanation["position"] == api.head()
    assert explanation["chain_hash"] == api.chain_hash_at(api.head())


def test_venue_explanations_list_the_events_that_sum_to_the_figures(
    api: Api,
) -> None:
    serve_and_fulfil(api)
    activity = api.get("/audit/explain/venue-activity/I1", "auditor").json()
    figures = api.get("/venues/I1/activity", "auditor").json()
    assert activity["figures"]["volunteer_minutes"] == figures["volunteer_minutes"]
    assert (
        sum(c["minutes"] for c in activity["contributions"])
        == figures["volunteer_minutes"]
    )
    assert sum(c["activities"] for c in activity["contributions"]) == 1
    fulfilment = api.get("/audit/explain/venue-fulfilment/I1", "auditor").json()
    contributions = fulfilment["contributions"]
    assert fulfilment["figures"]["fulfilled"] == 1
    assert sum(c["fulfilled"] for c in contributions) == 1
    assert {c["topic"] for c in contributions} >= {"Order.Posted", "Order.Fulfilled"}
    for contribution in (*activity["contributions"], *contributions):
        assert contribution["chain_hash"] == api.chain_hash_at(contribution["position"])
    # And a page at a time, the pages make the same list
    assert fulfilment["next_after"] is None
    paged, after = [], 0
    while after is not None:
        page = api.get(
            "/audit/explain/venue-fulfilment/I1",
            "auditor",
            after=after,
            limit=1,
            as_of=fulfilment["position"],
        ).json()
        assert len({c["position"] for c in page["contributions"]}) == 1
        paged += page["contributions"]
        after = page["next_after"]
    assert paged == contributions


def test_a_session_story_tells_each_correction(api: Api) -> None:
    api.post("approve_session", session_id="V1-A1")
    api.post("correct_session", session_id="V1-A1", minutes=150, reason="late out")
    story = api.get("/audit/sessions/V1-A1", "auditor").json()
    assert (story["original_minutes"], story["minutes"]) == (120, 150)
    assert story["adjustments"][0]["why"] == "late out"


def test_verification_finds_the_chain_and_projections_sound(api: Api) -> None:
    serve_and_fulfil(api)
    verification = api.get("/audit/verify", "auditor").json()
    assert verification["ok"] is True
    assert verification["chain_ok"] is True
    assert verification["events_checked"] == api.head()
    assert verification["position"] == api.head()
    assert verification["chain_hash"] == api.chain_hash_at(api.head())
    assert {p["name"] for p in verification["projections"]} >= {
        "volunteer_hours",
        "venue_activity",
        "order_fulfilment",
    }


CITED_READS = (
    "/volunteers/V1/hours",
    "/venues/I1/activity",
    "/venues/I1/fulfilment",
    "/leaderboards/hours",
    "/audit/events",
    "/audit/explain/volunteer-hours/V1",
    "/audit/explain/venue-activity/I1",
    "/audit/explain/venue-fulfilment/I1",
    "/audit/sessions/V1-A1",
    "/venues/I1/children",
    "/calendar?month=2024-03",
    "/audit/verify",
)


@pytest.mark.parametrize("path", CITED_READS)
def test_every_read_cites_the_position_and_chain_hash_it_reflects(
    api: Api, path: str
) -> None:
    serve_and_fulfil(api)
    # the head when read: an admin's read of personal data is recorded after
    head = api.head()
    document = api.get(path).json()
    assert isinstance(document, dict)
    assert document["position"] == head
    assert document["chain_hash"] == api.chain_hash_at(head)


ETAGGED_READS = (
    "/volunteers/V1/hours",
    "/venues/I1/activity",
    "/venues/I1/fulfilment",
    "/leaderboards/hours",
)


@pytest.mark.parametrize("path", ETAGGED_READS)
def test_an_unchanged_read_answers_304_to_its_etag(api: Api, path: str) -> None:
    first = api.get(path)
    etag = first.headers["ETag"]
    again = api.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["ETag"] == etag


@pytest.mark.parametrize("path", ETAGGED_READS)
def test_a_read_changed_by_a_new_event_answers_200_with_a_new_etag(
    api: Api, path: str
) -> None:
    etag = api.get(path).headers["ETag"]
    assert api.post("approve_session", session_id="V1-A1").status_code == 201
    api.project()
    changed = api.get(path, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag
    assert changed.json()["position"] == api.head()


def test_an_etag_belongs_to_its_query(api: Api) -> None:
    etag = api.get("/venues/C/activity").headers["ETag"]
    other = api.get(
        "/venues/C/activity", subtree="false", headers={"If-None-Match": etag}
    )
    assert other.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/volunteers/V404/hours",
        "/audit/explain/volunteer-hours/V404",
        "/venues/X404/activity",
        "/venues/X404/fulfilment",
        "/venues/X404/children",
        "/audit/sessions/S404",
    ],
)
def test_an_unknown_volunteer_venue_or_session_is_a_404_problem(
    api: Api, path: str
) -> None:
    assert is_problem(api.get(path), 404, "not_found")


def test_a_volunteer_registered_later_is_unknown_as_of_earlier(api: Api) -> None:
    before = api.head()
    registered = api.post(
        "register_volunteer", volunteer_id="V3", name="王五", id_number=id_number(404)
    )
    assert registered.status_code == 201
    api.project()
    assert api.get("/volunteers/V3/hours").status_code == 200
    assert is_problem(api.get("/volunteers/V3/hours", as_of=before), 404, "not_found")


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/volunteers/V1/hours", {"as_of": "yesterday"}),
        ("/volunteers/V1/hours", {"as_of": "2024-03-01T09:00:00"}),
        ("/venues/I1/activity", {"as_of": "soon"}),
        ("/audit/events", {"since": "2024-03-01T09:00:00"}),
    ],
)
def test_malformed_read_parameters_are_a_422_problem_naming_them(
    api: Api, path: str, params: dict[str, str]
) -> None:
    response = api.get(path, query=params)
    assert is_problem(response, 422, "invalid_read")
    assert [error["loc"] for error in response.json()["errors"]] == [["query", *params]]


def test_an_unknown_subject_kind_is_a_400_problem(api: Api) -> None:
    response = api.get("/audit/events", subject="planet:Mars")
    assert is_problem(response, 400, "invalid_read")


@pytest.mark.parametrize("month", ["2024-13", "2024-3", "March"])
def test_a_month_that_is_not_yyyy_mm_is_refused_as_a_read(api: Api, month: str) -> None:
    for path in ("/venues/I1/activity", "/venues/I1/fulfilment"):
        response = api.get(path, query={"from": month})
        assert is_problem(response, 422, "invalid_read"), (path, response.text)
