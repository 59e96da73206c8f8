"""The server as operators see it, through the app: liveness, readiness with
the projections' lag, Prometheus metrics, the access log, CORS, and the
documentation pages served without any other host."""

from __future__ import annotations

import json
import logging
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from ledger.api.http.app import create_app
from ledger.api.http.docs import ASSETS
from ledger.settings import LedgerSettings
from tests.e2e.http_helpers import V1_ID_NUMBER, V1_PHONE, Api, open_api
from tests.e2e.test_dashboard_page import packaged
from tests.factories import id_number as make_id_number
from tests.factories import register_venue

ALLOWED_ORIGIN = "https://dash.wmb.example.gov.cn"
OTHER_ORIGIN = "https://elsewhere.example.com"


@pytest.fixture
def api(database_url: str, tmp_path: Path) -> Iterator[Api]:
    with open_api(database_url, tmp_path) as opened:
        yield opened


@pytest.fixture
def cors_client(database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """An app whose settings allow one browser origin."""
    settings = LedgerSettings(
        database_url=database_url,
        key_directory=tmp_path / "keys",
        cors_origins=[ALLOWED_ORIGIN],
    )
    app = create_app(settings)
    with TestClient(app) as client:
        yield client
    app.state.ledger.database.dispose()
    app.state.reads.database.dispose()


def metrics(api: Api) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``GET /metrics`` (no key sent), by name and labels."""
    response = api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def preflight(client: TestClient, origin: str) -> httpx.Response:
    return client.options(
        "/venues/C/activity",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )


def test_liveness_answers_without_a_key_with_the_head_it_read(api: Api) -> None:
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["position"] == api.head()


def test_readiness_reports_each_projections_lag_and_is_ready_when_current(
    api: Api,
) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200
    readiness = response.json()
    assert readiness["ready"] is True
    assert readiness["reasons"] == []
    assert readiness["position"] == api.head()
    assert {p["name"] for p in readiness["projections"]} >= {
        "volunteer_hours",
        "venue_activity",
    }
    assert all(p["lag_events"] == 0 for p in readiness["projections"])


def test_readiness_is_503_naming_the_projections_behind_beyond_the_bound(
    database_url: str, tmp_path: Path
) -> None:
    # Given a server whose bound is no lag at all, and an event not projected
    settings = LedgerSettings(
        database_url=database_url,
        key_directory=tmp_path / "keys",
        ready_max_lag_seconds=0.0,
    )
    app = create_app(settings)
    with TestClient(app) as client:
        api = Api(app, client)
        api.record([register_venue("C", "centre", None)])
        # When readiness is asked for
        response = client.get("/readyz")
        # Then it is not ready, and says which projections lag and by how much
        assert response.status_code == 503
        readiness = response.json()
        assert readiness["ready"] is False
        venue_tree = next(
            p for p in readiness["projections"] if p["name"] == "venue_tree"
        )
        assert (venue_tree["position"], venue_tree["lag_events"]) == (0, 1)
        assert venue_tree["lag_seconds"] > 0
        assert any("venue_tree is 1 events" in r for r in readiness["reasons"])
        # And once projected, it is ready
        api.project()
        assert client.get("/readyz").status_code == 200
    app.state.ledger.database.dispose()
    app.state.reads.database.dispose()


def test_metrics_count_requests_by_route_template_and_status(api: Api) -> None:
    before = metrics(api)
    for volunteer in ("V1", "V2", "nobody"):
        api.get(f"/volunteers/{volunteer}/hours")
    after = metrics(api)
    route = "/volunteers/{volunteer_id}/hours"

    def counted(status: str) -> float:
        labels = (("method", "GET"), ("route", route), ("status", status))
        name = "ledger_http_requests_total"
        return after.get((name, labels), 0) - before.get((name, labels), 0)

    assert (counted("200"), counted("404")) == (2, 1)
    histogram = (
        "ledger_http_request_duration_seconds_count",
        (("method", "GET"), ("route", route), ("status", "200")),
    )
    assert after[histogram] - before.get(histogram, 0) == 2
    # No path a caller sent becomes a label
    assert not any("V1" in str(labels) for _, labels in after)


def test_a_method_the_api_does_not_know_is_counted_as_other(api: Api) -> None:
    # When a client sends a made-up method (an ID number, say)
    api.client.request("X320583199001011234", "/volunteers/V1/hours")
    # Then the metrics name no such method: it is "other"
    labels = {dict(labels).get("method") for _, labels in metrics(api)}
    assert "X320583199001011234" not in labels and "other" in labels


def test_metrics_count_commands_by_outcome(api: Api) -> None:
    before = metrics(api)
    fields = {"venue_id": "S9", "name": "S9", "level": "station", "parent_id": "I1"}
    assert api.post("register_venue", idempotency_key="k-S9", **fields).status_code
    assert api.post("register_venue", idempotency_key="k-S9", **fields).headers[
        "Idempotent-Replayed"
    ]
    unknown_parent = {**fields, "venue_id": "S10", "parent_id": "nowhere"}
    assert api.post("register_venue", **unknown_parent).status_code >= 400
    after = metrics(api)

    def commands(outcome: str) -> float:
        key = (
            "ledger_commands_total",
            (("command", "register_venue"), ("outcome", outcome)),
        )
        return after.get(key, 0) - before.get(key, 0)

    assert (commands("appended"), commands("replayed"), commands("refused")) == (
        1,
        1,
        1,
    )
    appended = ("ledger_events_appended_total", (("command", "register_venue"),))
    assert after[appended] - before.get(appended, 0) == 1


def test_metrics_report_each_projections_lag_dead_letters_and_the_last_verify(
    api: Api,
) -> None:
    # Given one event not yet projected, and a verification run over HTTP
    assert api.get("/audit/verify").json()["ok"] is True
    api.record([register_venue("S7", "station", "I2")])
    # When the metrics are scraped
    samples = metrics(api)
    # Then they give the head, and each projection's lag in events and seconds
    head = api.head()
    assert samples[("ledger_head_position", ())] == head
    tree = (("name", "venue_tree"),)
    assert samples[("ledger_projection_position", tree)] == head - 1
    assert samples[("ledger_projection_lag_events", tree)] == 1
    assert samples[("ledger_projection_lag_seconds", tree)] > 0
    assert samples[("ledger_projection_dead_letters", tree)] == 0
    # And the last verification: in order, of the head before that event
    assert samples[("ledger_last_verify_ok", ())] == 1
    assert samples[("ledger_last_verify_position", ())] == head - 1
    assert samples[("ledger_last_verify_timestamp_seconds", ())] > 1.7e9
    assert samples[("ledger_database_up", ())] == 1


def test_the_access_log_is_json_lines_without_keys_or_personal_data(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    # Given a volunteer registered with a name, an ID number and a phone
    name, id_number, phone = "王小明", make_id_number(909), "13900001111"
    with caplog.at_level(logging.INFO, logger="ledger.access"):
        # When they are registered, and read with full personal data (admin)
        registered = api.post(
            "register_volunteer",
            volunteer_id="V9",
            name=name,
            id_number=id_number,
            phone=phone,
        )
        assert registered.status_code == 201, registered.text
        api.get("/volunteers/V1/hours", query={"as_of": V1_ID_NUMBER})
        api.get("/audit/events", subject=V1_PHONE)
        api.get("/venues/C/activity", "bad key")
    lines = [r.getMessage() for r in caplog.records if r.name == "ledger.access"]
    # Then each request is one JSON line naming its route template
    assert len(lines) == 4
    entries = [json.loads(line) for line in lines]
    assert [e["route"] for e in entries] == [
        "/commands/register_volunteer",
        "/volunteers/{volunteer_id}/hours",
        "/audit/events",
        "/venues/{venue_id}/activity",
    ]
    assert entries[-1]["status"] == 401
    # And none holds a key, an ID number, a phone number or a name
    logged = "\n".join(lines)
    secrets = [name, id_number, phone, V1_ID_NUMBER, V1_PHONE, "V1", "wml_"]
    assert [s for s in (*secrets, *api.keys.values()) if s in logged] == []


def test_cors_is_off_unless_the_settings_allow_an_origin(api: Api) -> None:
    response = preflight(api.client, ALLOWED_ORIGIN)
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code == 405


def test_a_preflight_from_an_allowed_origin_is_answered(
    cors_client: TestClient,
) -> None:
    response = preflight(cors_client, ALLOWED_ORIGIN)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    read = cors_client.get("/healthz", headers={"Origin": ALLOWED_ORIGIN})
    assert read.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "etag" in read.headers["access-control-expose-headers"].lower()


def test_a_preflight_from_another_origin_is_refused(cors_client: TestClient) -> None:
    response = preflight(cors_client, OTHER_ORIGIN)
    assert response.status_code == 400
    assert "access-control-allow-origin" not in response.headers
    read = cors_client.get("/healthz", headers={"Origin": OTHER_ORIGIN})
    assert "access-control-allow-origin" not in read.headers


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
def test_the_documentation_pages_load_nothing_from_another_host(
    api: Api, page: str
) -> None:
    response = api.client.get(page)
    assert response.status_code == 200
    assert re.findall(r"(?:https?:)?//[\w.-]+", response.text) == []
    for asset in re.findall(r"""(?:src|href)=["']([^"']+)["']""", response.text):
        assert api.client.get(asset).status_code == 200, asset


def test_a_wheel_carries_every_documentation_asset() -> None:
    """Each vendored asset matches a ``package-data`` pattern of
    pyproject.toml: an installed server serves the pages whole."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"][
        "package-data"
    ]
    patterns = package_data["ledger.api.http"]
    files = [f for f in ASSETS.rglob("*") if f.is_file()]
    assert len(files) >= 10
    for file in files:
        path = PurePosixPath(file.relative_to(ASSETS.parent).as_posix())
        assert any(packaged(path, pattern) for pattern in patterns), path
