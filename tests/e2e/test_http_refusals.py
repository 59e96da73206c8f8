"""What a caller sends never answers a 500: wrong roles, revoked, expired
and malformed keys, extreme read parameters, a busy ledger and a database
that cannot be reached each answer a problem naming what happened
(CONTRACT §5, docs/http-api.md)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from ledger.api.http.access import create_key, revoke_key
from ledger.store.api_keys import api_keys_table
from ledger.store.event_store import Database, WaitLimits
from tests.e2e.http_helpers import Api, is_problem, open_api

LOCK_WAIT = 0.5


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path, lock_wait_seconds=LOCK_WAIT) as opened:
        yield opened


def test_a_write_of_a_role_that_may_not_send_it_is_forbidden(api: Api) -> None:
    head = api.head()
    response = api.post(
        "register_venue",
        "auditor",
        venue_id="P9",
        name="point",
        level="point",
        parent_id="S1",
    )
    assert is_problem(response, 403, "forbidden"), response.text
    assert api.head() == head


def test_a_write_of_the_right_role_outside_its_scope_is_out_of_scope(api: Api) -> None:
    response = api.post("approve_session", "venue_staff", session_id="V2-A2")
    assert is_problem(response, 403, "out_of_scope"), response.text


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/audit/events", "after", str(2**63)),
        ("/audit/events", "after", "-1"),
        ("/audit/explain/venue-activity/I1", "after", str(2**63)),
        ("/audit/events", "as_of", str(2**63)),
        ("/audit/events", "as_of", "9" * 5000),
        ("/audit/events", "as_of", "9999-12-31T23:59:59-14:00"),
        ("/audit/events", "since", "0001-01-01T00:00:00+08:00"),
        ("/audit/events", "until", "9999-12-31T23:59:59-14:00"),
        ("/audit/events", "recorded_since", "0001-01-01T00:00:00+14:00"),
        ("/audit/events", "recorded_until", "9999-12-31T00:00:00+00:00"),
        ("/audit/sessions/V1-A1", "as_of", "0001-01-01T00:00:00+08:00"),
        ("/audit/explain/volunteer-hours/V1", "as_of", "0001-01-01T00:00:00+08:00"),
        ("/volunteers/V1/hours", "as_of", "9999-12-31T23:59:59-14:00"),
        ("/volunteers/V1/hours", "as_of", str(10**30)),
        ("/venues/I1/activity", "as_of", "0001-01-01T00:00:00+08:00"),
        ("/venues/I1/fulfilment", "as_of", str(2**63)),
        ("/venues/I1/children", "as_of", "0001-01-01T00:00:00+08:00"),
        ("/venues", "as_of", str(2**63)),
        ("/leaderboards/hours", "as_of", str(2**64)),
    ],
)
def test_an_extreme_read_parameter_is_a_422_naming_it(
    api: Api, path: str, parameter: str, value: str
) -> None:
    response = api.get(path, query={parameter: value})
    assert is_problem(response, 422, "invalid_read"), response.text
    assert [e["loc"] for e in response.json()["errors"]] == [["query", parameter]]


def test_the_last_position_there_can_be_is_a_fine_page_start(api: Api) -> None:
    response = api.get("/audit/events", after=2**63 - 1)
    assert response.status_code == 200
    assert response.json()["events"] == []


def test_a_key_row_of_a_role_the_server_does_not_know_is_refused(api: Api) -> None:
    # Given a key whose stored role was edited to one no release has
    key = api.key("auditor")
    with api.ledger.database.writing() as conn:
        conn.execute(
            api_keys_table.update()
            .where(api_keys_table.c.key_prefix == key[:12])
            .values(role="superuser")
        )
    # Then it is refused as a problem, not a server error
    response = api.client.get(
        "/audit/events", headers={"Authorization": f"Bearer {key}"}
    )
    assert is_problem(response, 403, "unknown_role"), response.text


def test_a_revoked_key_is_refused_within_a_second_by_a_running_server(
    api: Api,
) -> None:
    # Given a key the server has just admitted (and so remembers)
    key = api.key("auditor")
    headers = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/audit/events", headers=headers).status_code == 200
    # When it is revoked through the store, as `ledger keys revoke` does
    revoke_key(Database(api.ledger.database.url), key[:12])
    revoked_at = time.monotonic()
    # Then the same server refuses it within a second
    while True:
        response = api.client.get("/audit/events", headers=headers)
        if response.status_code != 200 or time.monotonic() - revoked_at > 1.0:
            break
    assert is_problem(response, 401, "key_revoked"), response.text
    assert time.monotonic() - revoked_at <= 1.0


def test_a_key_deleted_by_hand_is_refused_within_a_second(api: Api) -> None:
    key = api.key("auditor")
    headers = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/audit/events", headers=headers).status_code == 200
    with api.ledger.database.writing() as conn:
        conn.execute(
            api_keys_table.delete().where(api_keys_table.c.key_prefix == key[:12])
        )
    deleted_at = time.monotonic()
    while True:
        response = api.client.get("/audit/events", headers=headers)
        if response.status_code != 200 or time.monotonic() - deleted_at > 1.0:
            break
    assert is_problem(response, 401, "unknown_key"), response.text
    assert time.monotonic() - deleted_at <= 1.0


def test_a_key_past_its_expiry_is_refused(api: Api) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    key = create_key(api.ledger.database, "auditor", expires_at=expires_at)
    headers = {"Authorization": f"Bearer {key}"}
    assert api.client.get("/audit/events", headers=headers).status_code == 200
    time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.6)
    response = api.client.get("/audit/events", headers=headers)
    assert is_problem(response, 401, "key_expired"), response.text


def test_a_write_while_another_writer_holds_the_append_lock_is_503_busy(
    api: Api,
) -> None:
    head = api.head()
    other_writer = Database(api.ledger.database.url, WaitLimits(lock_seconds=30))
    # Given another writer holding the ledger's append lock
    with other_writer.appending():
        # When a write arrives, it waits the lock wait and gives up
        started = time.monotonic()
        busy = api.post("approve_session", session_id="V1-A1", idempotency_key="k-b")
        waited = time.monotonic() - started
    other_writer.dispose()
    # Then it is told to retry, and nothing was written
    assert is_problem(busy, 503, "ledger_busy"), busy.text
    assert int(busy.headers["Retry-After"]) > 0
    assert LOCK_WAIT <= waited < 10
    assert api.head() == head
    # And the retry, once the lock is free, is recorded
    retried = api.post("approve_session", session_id="V1-A1", idempotency_key="k-b")
    assert retried.status_code == 201, retried.text


@pytest.fixture
def own_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """A ledger database of this test's own, which it may cut off: a SQLite
    file in a folder of its own, or a PostgreSQL database of its own."""
    if database_url.startswith("sqlite"):
        folder = tmp_path / "own"
        folder.mkdir()
        yield f"sqlite:///{folder / 'ledger.db'}"
        return
    url = sa.make_url(database_url)
    own = url.set(database=f"{url.database}_own")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{own.database}"')
    try:
        yield own.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(
                f'DROP DATABASE IF EXISTS "{own.database}" WITH (FORCE)'
            )
        admin.dispose()


def cut_off(url: str) -> None:
    """Make the database at ``url`` unreachable: its folder moved away, or
    the PostgreSQL database dropped (its connections ended)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        folder = Path(str(parsed.database)).parent
        folder.rename(folder.with_name("moved-away"))
        return
    admin = sa.create_engine(
        parsed.set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE "{parsed.database}" WITH (FORCE)')
    admin.dispose()


def test_an_unreachable_database_answers_503_database_unavailable(
    own_database_url: str, tmp_path: Path
) -> None:
    with open_api(own_database_url, tmp_path) as api:
        cut_off(api.ledger.database.url)
        api.ledger.database.dispose()
        read = api.get("/volunteers/V1/hours", "auditor")
        write = api.post("approve_session", session_id="V1-A1")
    for response in (read, write):
        assert is_problem(response, 503, "database_unavailable"), response.text
        assert int(response.headers["Retry-After"]) > 0
