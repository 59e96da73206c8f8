"""Erasure and admin reads of personal data over HTTP: `POST
/commands/forget_volunteer` is an admin's (a second one answers 200
``unchanged`` and writes nothing), and every admin read of full ID and
phone numbers is recorded and listed at `GET /audit/personal-data-reads`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger.domain.privacy import ERASED
from tests.e2e.http_helpers import V1_ID_NUMBER, V1_PHONE, Api, is_problem, open_api


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


REASON = "left the corps; asked to be forgotten"


def test_an_admin_forgets_a_volunteer_once_and_a_second_time_changes_nothing(
    api: Api,
) -> None:
    first = api.post("forget_volunteer", volunteer_id="V1", reason=REASON)
    head = api.head()
    second = api.post("forget_volunteer", volunteer_id="V1", reason=REASON)

    assert first.status_code == 201
    assert first.json()["first_position"] == head
    assert second.status_code == 200
    assert second.json()["outcome"] == "unchanged"
    assert second.json()["first_position"] is None
    assert api.head() == head


@pytest.mark.parametrize("caller", ["venue_staff", "auditor", "volunteer"])
def test_no_other_role_may_forget_a_volunteer(api: Api, caller: str) -> None:
    head = api.head()

    refused = api.post("forget_volunteer", caller, volunteer_id="V1", reason=REASON)

    assert is_problem(refused, 403, "forbidden")
    assert api.head() == head


def test_forgetting_an_unknown_volunteer_is_a_coded_404(api: Api) -> None:
    refused = api.post("forget_volunteer", volunteer_id="V404", reason=REASON)

    assert is_problem(refused, 404, "unknown_reference")


def test_after_forget_an_admin_sees_the_marker_where_the_numbers_were(
    api: Api,
) -> None:
    api.post("forget_volunteer", volunteer_id="V1", reason=REASON)

    response = api.get("/audit/events", "admin", subject="volunteer:V1")

    (registered,) = [
        e for e in response.json()["events"] if e["type"] == "Volunteer.Registered"
    ]
    assert registered["payload"]["id_number"] == ERASED
    assert registered["payload"]["phone"] == ERASED
    assert V1_ID_NUMBER not in response.text and V1_PHONE not in response.text


def test_an_admin_read_of_full_numbers_is_recorded_and_listed(api: Api) -> None:
    api.get("/audit/events", "auditor", subject="volunteer:V1")  # masked
    assert api.get("/audit/personal-data-reads", "auditor").json()["reads"] == []

    shown = api.get("/audit/events", "admin", subject="volunteer:V1")

    assert V1_ID_NUMBER in shown.text
    listed = api.get("/audit/personal-data-reads", "auditor", volunteer="V1")
    (read,) = listed.json()["reads"]
    assert read["volunteer_ids"] == ["V1"]
    assert read["read"] == "audit events"
    assert read["reader"] == {"id": read["reader"]["id"], "role": "admin"}
    assert read["reader"]["id"].startswith("api:")
    assert read["position"] == api.head()
