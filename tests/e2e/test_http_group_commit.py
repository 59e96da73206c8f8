"""Group commit through the HTTP API, on a real SQLite file and real
PostgreSQL: requests that arrive together are recorded in one append
transaction, and each caller still gets its own answer, positions and
idempotent replay (CONTRACT §1.2).

To make a group for certain, a test holds the ledger's append lock in a
transaction of its own: the first request then leads and waits for the
lock, the next ones queue one by one behind it (in the order sent), and
when the lock is let go they are decided and committed as one group.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledger.application.group_commit import GroupCommit
from ledger.domain.activities import Activity
from ledger.store.event_store import Database, events_table
from tests.e2e.http_helpers import (
    Api,
    InterferingHandlers,
    beaten_to_activity_a3,
    is_problem,
    open_api,
)
from tests.factories import T0

Send = Callable[[], httpx.Response]
LEADERS = itertools.count(1)


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield with_keys_used(opened)


def with_keys_used(api: Api) -> Api:
    """The API once its keys were used: a key's first use notes it, a write
    that would wait for the append lock a test holds."""
    for caller in ("admin", "dispatcher"):
        assert api.get("/venues", caller).status_code in (200, 403)
    return api


def order(order_id: str, venue_id: str = "S1", **more: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "kind": "wish",
        "venue_id": venue_id,
        "category": "health",
        "description": f"order {order_id}",
        **more,
    }


def post_order(api: Api, order_id: str, key: str | None = None, **more: Any) -> Send:
    return lambda: api.post(
        "post_order", idempotency_key=key, **order(order_id, **more)
    )


def wait_until(condition: Callable[[], bool], sent: list[Future[Any]]) -> None:
    """Wait for the group commit to reach a state (no time is asserted);
    a request answered meanwhile would never let it, and fails the test."""
    pause = threading.Event()
    while not condition():
        answered = [future.result() for future in sent if future.done()]
        assert not answered, f"answered before the group formed: {answered}"
        pause.wait(0.002)


@contextmanager
def append_lock_held(api: Api) -> Iterator[None]:
    """The ledger's append lock, held by another transaction meanwhile."""
    other = Database(api.ledger.database.url)
    try:
        with other.appending():
            yield
    finally:
        other.dispose()


def send_as_one_group(api: Api, requests: list[Send]) -> list[httpx.Response]:
    """Send a first order, then ``requests`` in order while it waits for the
    append lock: they queue behind it and are committed as one group. The
    answers to ``requests``, in order."""
    writer = api.app.state.writer
    assert isinstance(writer, GroupCommit)
    with ThreadPoolExecutor(len(requests) + 1) as pool:
        with append_lock_held(api):
            first = pool.submit(post_order(api, f"LEADER-{next(LEADERS)}"))
            sent = [first]
            wait_until(lambda: writer.committing and writer.waiting == 0, sent)
            for queued, request in enumerate(requests, start=1):
                sent.append(pool.submit(request))
                wait_until(lambda queued=queued: writer.waiting == queued, sent)  # type: ignore[misc]
        assert first.result().status_code == 201
        return [answer.result() for answer in sent[1:]]


def recorded_order_at(api: Api, position: int) -> str:
    with api.ledger.database.reading() as conn:
        payload = conn.execute(
            events_table.select().where(events_table.c.position == position)
        ).one()
    return str(payload.payload).split('"order_id":"')[1].split('"')[0]


def test_requests_committed_together_each_get_the_positions_of_their_own_events(
    api: Api,
) -> None:
    head = api.head()
    answers = send_as_one_group(
        api, [post_order(api, f"G{n}", key=f"g-{n}") for n in range(6)]
    )
    assert [a.status_code for a in answers] == [201] * 6
    positions = [a.json()["first_position"] for a in answers]
    # the leader took head + 1; the group the six after it, in the order sent
    assert positions == list(range(head + 2, head + 8))
    assert [recorded_order_at(api, p) for p in positions] == [f"G{n}" for n in range(6)]
    assert api.head() == head + 7


def test_a_refused_command_in_a_group_answers_alone_and_the_others_are_recorded(
    api: Api,
) -> None:
    head = api.head()
    answers = send_as_one_group(
        api,
        [
            post_order(api, "R1"),
            post_order(api, "R2", venue_id="NOWHERE"),
            post_order(api, "R1"),  # the same order id again: a duplicate id
            post_order(api, "R3"),
        ],
    )
    assert answers[0].status_code == 201
    assert is_problem(answers[1], 404, "unknown_reference")
    assert is_problem(answers[2], 409, "duplicate_id")
    assert answers[3].status_code == 201
    assert (
        answers[3].json()["first_position"] == answers[0].json()["first_position"] + 1
    )
    assert api.head() == head + 3  # the leader's order, R1 and R3


def test_a_key_sent_twice_in_one_group_is_recorded_once_and_replayed(
    api: Api,
) -> None:
    head = api.head()
    first, again = send_as_one_group(
        api, [post_order(api, "K1", key="k-1"), post_order(api, "K1", key="k-1")]
    )
    assert first.status_code == again.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert api.head() == head + 2  # the leader's order and K1, once

    # and in a later group, the key still answers with its first positions
    [later] = send_as_one_group(api, [post_order(api, "K1", key="k-1")])
    assert later.headers["Idempotent-Replayed"] == "true"
    assert later.json() == first.json()
    assert api.head() == head + 3  # only the second leader's order


def test_a_key_reused_for_other_content_in_the_same_group_refuses_the_second(
    api: Api,
) -> None:
    head = api.head()
    first, second = send_as_one_group(
        api, [post_order(api, "U1", key="k-u"), post_order(api, "U2", key="k-u")]
    )
    assert first.status_code == 201
    assert is_problem(second, 422, "idempotency_key_reused")
    assert api.head() == head + 2  # the leader's order and U1


def test_each_caller_key_space_is_kept_within_a_group(api: Api) -> None:
    # Given the same key sent by two API keys in one group
    answers = send_as_one_group(
        api,
        [
            post_order(api, "S-A", key="shared"),
            lambda: api.post(
                "post_order",
                "dispatcher",
                idempotency_key="shared",
                **order("S-B"),
            ),
        ],
    )
    # Then each is its caller's own: both recorded
    assert [a.status_code for a in answers] == [201, 201]
    assert all("Idempotent-Replayed" not in a.headers for a in answers)


class InterferingWithSignUps(InterferingHandlers):
    """Handlers that let another writer sign up to the same activity once, as
    the first sign-up is decided: after the group's aggregates were loaded."""

    def handle(self, command: Any, unit: Any) -> Any:
        if command.type != "sign_up":
            return self.inner.handle(command, unit)
        return super().handle(command, unit)


def test_a_group_beaten_by_another_writer_records_each_command_on_its_own(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    handlers = beaten_to_activity_a3(api, InterferingWithSignUps)
    monkeypatch.setattr(api.ledger, "handlers", handlers)
    head = api.head()
    # Given a group whose sign-up another writer's sign-up beats to the lock
    sign_up, posted = send_as_one_group(
        api,
        [
            lambda: api.post(
                "sign_up",
                idempotency_key="k-s",
                at=T0,
                activity_id="A3",
                volunteer_id="V1",
            ),
            post_order(api, "C1", key="k-c"),
        ],
    )
    # Then nothing of the group was lost: each was recorded on its own
    assert [sign_up.status_code, posted.status_code] == [201, 201]
    assert api.head() == head + 4  # leader, the other writer, V1, C1
    assert api.ledger.repository.get(Activity.create_id("A3")).signed_up == {
        "V1",
        "V2",
    }


def test_a_group_that_cannot_take_the_lock_answers_every_caller_503(
    database_url: str, tmp_path: Path
) -> None:
    with open_api(database_url, tmp_path, lock_wait_seconds=0.2) as opened:
        api = with_keys_used(opened)
        head = api.head()
        sends = [post_order(api, f"B{n}", key=f"b-{n}") for n in range(5)]
        # Given another writer holding the append lock past the writers' wait
        with append_lock_held(api), ThreadPoolExecutor(5) as pool:
            answers = list(pool.map(lambda send: send(), sends))
        # Then every caller is answered: busy, retry later; nothing written
        for answer in answers:
            assert is_problem(answer, 503, "ledger_busy"), answer.json()
            assert answer.headers["Retry-After"]
        assert api.head() == head
        # and once the lock is free, the same requests are recorded
        retried = [send() for send in sends]
        assert [r.status_code for r in retried] == [201] * 5
        assert api.head() == head + 5


def test_with_group_commit_off_each_request_appends_on_its_own(
    database_url: str, tmp_path: Path
) -> None:
    with open_api(database_url, tmp_path, group_commit=False) as api:
        assert not isinstance(api.app.state.writer, GroupCommit)
        head = api.head()
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda n: post_order(api, f"O-{n}", key=f"o-{n}")(), range(4))
            )
        assert [a.status_code for a in answers] == [201] * 4
        assert sorted(a.json()["first_position"] for a in answers) == list(
            range(head + 1, head + 5)
        )
