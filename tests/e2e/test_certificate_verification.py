"""``GET /verify?token=``: the page a certificate's QR code leads to, on
SQLite and PostgreSQL. Anyone may open it (no key); it shows the decoded
certificate, no personal data, and the verdict: valid (and whether the
ledger corrected the hours since), tampered, or signed by an unknown key."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from httpx import Response

from ledger.api.http.app import create_app
from ledger.bootstrap import LedgerComponents
from ledger.services.certificates import read_certificate
from ledger.settings import LedgerSettings
from ledger.store.event_store import Database
from tests.certificate_helpers import (
    ID_NUMBER,
    correct_v1,
    forge,
    issue,
    ledger_cli,
    serve_v1,
)
from tests.e2e.http_helpers import PROBLEM_JSON


@dataclass
class Issued:
    """A server over the ledger, and the token of a certificate it issued."""

    client: TestClient
    components: LedgerComponents
    token: str
    tmp_path: Path

    def verify(self, token: str) -> Response:
        return self.client.get("/verify", params={"token": token})


@pytest.fixture
def issued(database: Database, tmp_path: Path) -> Iterator[Issued]:
    settings = LedgerSettings(
        database_url=database.url, key_directory=tmp_path / "keys"
    )
    components = LedgerComponents(settings)
    serve_v1(components.ledger)
    pdf = issue(ledger_cli(database.url, tmp_path / "keys"), tmp_path / "V1.pdf")
    with TestClient(create_app(settings)) as client:
        yield Issued(client, components, read_certificate(pdf)["token"], tmp_path)
    components.close()


def verdict_of(page: Response) -> str:
    found = re.search(r'<meta name="verdict" content="(\w+)">', page.text)
    assert found, page.text
    return found[1]


def test_a_scanned_token_shows_the_certificate_and_that_it_is_valid(
    issued: Issued,
) -> None:
    # When a school opens the QR code's link, with no key
    page = issued.verify(issued.token)
    # Then it sees, in Chinese, that the certificate is valid and what it says
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert verdict_of(page) == "valid"
    for shown in (
        "证明有效",
        "志愿者编号",
        "V1",
        "4.5 小时",
        "2024年12月31日",
        "与账本位置",
        "至今未有更正",
    ):
        assert shown in page.text, shown
    # And no personal data
    assert "王小明" not in page.text
    assert ID_NUMBER[-4:] not in page.text


def test_hours_corrected_since_are_shown_beside_a_valid_verdict(
    issued: Issued,
) -> None:
    correct_v1(issued.components.ledger, 170)
    issued.components.projection_engine.catch_up()
    page = issued.verify(issued.token)
    assert verdict_of(page) == "valid"
    assert "已更正为 4.8 小时" in page.text


def _altered(token: str, **changes: object) -> str:
    """``token`` with its payload changed and its signature kept."""
    payload, signature = token.split(".")
    fields = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    fields.update(changes)
    encoded = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=").decode()
    return f"{encoded}.{signature}"


def test_a_token_with_altered_hours_is_shown_as_tampered(issued: Issued) -> None:
    page = issued.verify(_altered(issued.token, m=6000))
    assert page.status_code == 200
    assert verdict_of(page) == "tampered"
    assert "篡改" in page.text
    assert "100.0 小时" not in page.text  # what it claims is not repeated


def test_a_token_signed_by_another_key_is_shown_as_unknown(
    issued: Issued, database: Database
) -> None:
    # signed by someone holding the ledger's other key material
    other = Ed25519PrivateKey.generate()
    pdf = forge(
        database.url, issued.tmp_path / "keys", other, issued.tmp_path / "f.pdf"
    )
    forged = read_certificate(pdf)["token"]
    page = issued.verify(forged)
    assert verdict_of(page) == "unknown_signature"
    assert "无法确认" in page.text


@pytest.mark.parametrize(
    "token", ["", "not-a-token", "a.b.c", "e30.AAAA", "x" * 1001], ids=repr
)
def test_a_token_that_is_not_one_is_refused(issued: Issued, token: str) -> None:
    # A browser gets a page saying so
    page = issued.client.get(
        "/verify", params={"token": token}, headers={"Accept": "text/html"}
    )
    assert 400 <= page.status_code < 500
    assert page.headers["content-type"].startswith("text/html")
    # A program gets a problem detail, as from every other refusal
    problem = issued.verify(token)
    assert 400 <= problem.status_code < 500
    assert problem.headers["content-type"].startswith(PROBLEM_JSON)
