"""志愿服务记录证明: `ledger certificate` and `ledger verify-certificate`,
on SQLite and PostgreSQL.

A certificate is written as a PDF and, beside it, an HTML file; both carry
the masked ID number, a certificate number, the ledger position and chain
hash, and the signed figures embedded (base64 JSON). Verification checks the
signature, the chain hash at the position and the figures recomputed there:
it passes for both files, also after later corrections (a position never
changes), and fails for altered figures, another signing key, or an unknown
volunteer.
"""

from __future__ import annotations

import base64
import re
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner, Result

from ledger.api.cli.app import app
from ledger.application.ledger import Ledger
from ledger.domain.privacy import mask_id_number
from ledger.services.certificates import read_certificate
from ledger.store.event_store import Database
from ledger.store.integrity import (
    ID_NUMBER_SECRET_FILE,
    SIGNING_KEY_FILE,
    load_or_create_signing_key,
    public_key_pem,
)
from tests.factories import activity, id_number, record_all, submission

CHINA = timezone(timedelta(hours=8))
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
SATURDAY = datetime(2024, 3, 2, 9, 0, tzinfo=CHINA)
ID_NUMBER = id_number(serial=417, birth="19851203")


# --- a volunteer with verified and make-up hours ------------------------------------


@pytest.fixture
def served(ledger: Ledger) -> Ledger:
    """V1 (ID number ``ID_NUMBER``): 150 verified minutes of culture service at
    A1 and 120 make-up minutes of health service at A2, both approved."""
    registered = datetime(2024, 1, 5, 10, 0, tzinfo=CHINA)
    record_all(
        ledger,
        [
            *[
                submission(
                    "register_venue",
                    registered,
                    venue_id=venue,
                    name=f"venue {venue}",
                    level=level,
                    parent_id=parent,
                )
                for venue, level, parent in [
                    ("C", "centre", None),
                    ("I1", "institute", "C"),
                    ("S1", "station", "I1"),
                ]
            ],
            submission(
                "register_volunteer",
                registered,
                volunteer_id="V1",
                name="王小明",
                id_number=ID_NUMBER,
                phone="13812345678",
            ),
            activity("A1", "S1", SATURDAY, hours=3, category="culture"),
            activity("A2", "S1", SATURDAY + 7 * DAY, hours=3, category="health"),
            submission("sign_up", SATURDAY - DAY, activity_id="A1", volunteer_id="V1"),
            submission(
                "check_in",
                SATURDAY,
                session_id="S1",
                volunteer_id="V1",
                activity_id="A1",
            ),
            submission("check_out", SATURDAY + 150 * MINUTE, session_id="S1"),
            submission("approve_session", SATURDAY + 151 * MINUTE, session_id="S1"),
            submission(
                "record_makeup_hours",
                SATURDAY + 7 * DAY + 4 * 60 * MINUTE,
                session_id="M1",
                volunteer_id="V1",
                activity_id="A2",
                minutes=120,
                reason="补录: paper sign-in sheet",
            ),
            submission("approve_session", SATURDAY + 8 * DAY, session_id="M1"),
        ],
    )
    return ledger


Cli = Callable[..., Result]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / SIGNING_KEY_FILE


@pytest.fixture
def cli(database: Database, key_file: Path) -> Cli:
    """`ledger --db URL ARGUMENTS`, signing with ``key_file`` (or ``key``)."""
    key_file.parent.mkdir(exist_ok=True)

    def run(*arguments: str, key: Path | None = None) -> Result:
        return CliRunner().invoke(
            app,
            ["--db", database.url, *arguments],
            env={"LEDGER_KEY_DIRECTORY": str((key or key_file).parent)},
        )

    return run


def exited_cleanly_with(outcome: Result, code: int) -> bool:
    """The CLI chose its exit code (it did not crash)."""
    crashed = outcome.exception is not None and not isinstance(
        outcome.exception, SystemExit
    )
    return outcome.exit_code == code and not crashed


def issue(cli: Cli, out: Path, *arguments: str, **options: Any) -> Path:
    """`ledger certificate V1 --as-of 2024-12-31 --out OUT`: the PDF path printed."""
    outcome = cli(
        "certificate",
        "V1",
        "--as-of",
        "2024-12-31",
        "--out",
        str(out),
        *arguments,
        **options,
    )
    assert exited_cleanly_with(outcome, 0), (outcome.output, outcome.exception)
    printed = Path(outcome.stdout.strip().splitlines()[-1])
    return printed


def verify(cli: Cli, path: Path, *arguments: str, **options: Any) -> Result:
    return cli("verify-certificate", str(path), *arguments, **options)


def html_of(pdf: Path) -> Path:
    return pdf.with_suffix(".html")


# --- issuing ---------------------------------------------------------------------


def test_a_certificate_is_written_as_pdf_and_html_with_the_id_number_masked(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # When a certificate is issued for V1
    out = tmp_path / "certificates" / "V1.pdf"
    out.parent.mkdir()
    printed = issue(cli, out)
    # Then the PDF's path is printed last, and the HTML lies beside it
    assert printed == out
    assert out.read_bytes().startswith(b"%PDF")
    html = html_of(out).read_text("utf-8")
    assert html.startswith("<!doctype html>")
    # And the ID number is masked in print, and in the embedded copy
    masked = mask_id_number(ID_NUMBER)
    assert masked == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
    assert masked in html
    assert ID_NUMBER not in html
    assert ID_NUMBER.encode() not in out.read_bytes()
    content = read_certificate(out)
    assert read_certificate(html_of(out)) == content
    assert ID_NUMBER not in orjson.dumps(content).decode()
    assert "13812345678" not in html
    # And it shows the certificate number, the position and the chain hash
    assert re.fullmatch(r"WMSJ-[0-9A-F]{16}", content["certificate_number"])
    for shown in (
        content["certificate_number"],
        content["chain_hash"],
        f"<td>{content['position']}</td>",
        "王小明",
        "V1",
        "2024-12-31",
        "居民身份证",
    ):
        assert shown in html
    # And the figures: verified and make-up apart, beside their total
    assert content["figures"] == {
        "verified_minutes": 150,
        "makeup_minutes": 120,
        "total_minutes": 270,
        "sessions": 2,
        "by_category": {"culture": 150, "health": 120},
    }
    assert "4.5 小时（签到 2.5，补录 2.0；2 次）" in html
    # And both files verify against the ledger
    for path in (out, html_of(out)):
        outcome = verify(cli, path)
        assert exited_cleanly_with(outcome, 0), outcome.output
        assert content["certificate_number"] in outcome.stdout
        assert f"position {content['position']}" in outcome.stdout


def test_the_default_path_is_named_after_the_volunteer(
    served: Ledger, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    outcome = cli("certificate", "V1", "--as-of", "2024-12-31")
    assert exited_cleanly_with(outcome, 0), outcome.output
    assert outcome.stdout.strip().splitlines()[-1] == "certificate-V1.pdf"
    assert (tmp_path / "certificate-V1.pdf").exists()
    assert (tmp_path / "certificate-V1.html").exists()


def test_service_after_the_as_of_day_is_left_out(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # As of the day before A2 (and its make-up hours), only A1 counts
    pdf = issue(cli, tmp_path / "early.pdf", "--as-of", "2024-03-08")
    figures = read_certificate(pdf)["figures"]
    assert (figures["verified_minutes"], figures["makeup_minutes"]) == (150, 0)
    assert exited_cleanly_with(verify(cli, pdf), 0)


def test_later_corrections_leave_an_issued_certificate_valid(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Given a certificate issued now
    first = issue(cli, tmp_path / "first.pdf")
    # When V1's verified session is corrected afterwards
    record_all(
        served,
        [
            submission(
                "correct_session",
                SATURDAY + 30 * DAY,
                session_id="S1",
                minutes=170,
                reason="left later than the sheet says",
            )
        ],
    )
    # Then the certificate still matches the ledger at its position
    for path in (first, html_of(first)):
        assert exited_cleanly_with(verify(cli, path), 0)
    # And a new certificate shows the corrected figures at a later position
    second = issue(cli, tmp_path / "second.pdf")
    old, new = read_certificate(first), read_certificate(second)
    assert new["figures"]["verified_minutes"] == 170
    assert new["position"] > old["position"]
    assert new["certificate_number"] != old["certificate_number"]
    assert exited_cleanly_with(verify(cli, second), 0)


# --- what does not verify ----------------------------------------------------------


def embed(path: Path, content: dict[str, Any]) -> None:
    """Replace the certificate embedded in ``path`` (PDF or HTML) by ``content``."""
    data = path.read_bytes()
    encoded = base64.b64encode(orjson.dumps(content))
    pattern = (
        rb"(/Keywords \()[A-Za-z0-9+/=]+(\))"
        if data.startswith(b"%PDF")
        else rb'(id="ledger-certificate">")[A-Za-z0-9+/=]+(")'
    )
    changed, count = re.subn(pattern, lambda m: m[1] + encoded + m[2], data)
    assert count == 1
    path.write_bytes(changed)


def resigned(content: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """``content`` signed again (as whoever holds ``key`` could)."""
    unsigned = {k: v for k, v in content.items() if k != "signature"}
    signature = key.sign(orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS))
    return {**unsigned, "signature": signature.hex()}


@pytest.mark.parametrize("kind", ["pdf", "html"])
def test_altered_figures_do_not_verify(
    served: Ledger, cli: Cli, tmp_path: Path, kind: str
) -> None:
    pdf = issue(cli, tmp_path / "cert.pdf")
    path = pdf if kind == "pdf" else html_of(pdf)
    content = read_certificate(path)
    # When someone re-encodes the embedded figures with more minutes
    content["figures"]["verified_minutes"] += 600
    content["figures"]["total_minutes"] += 600
    embed(path, content)
    assert read_certificate(path)["figures"]["total_minutes"] == 870
    # Then the certificate does not verify: the signature no longer matches
    outcome = verify(cli, path)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "does NOT match" in outcome.stdout
    assert "signature" in outcome.stdout


def test_figures_signed_anew_still_must_match_the_ledger(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given a certificate, and its content re-signed with the ledger's own key
    pdf = issue(cli, tmp_path / "cert.pdf")
    key = load_or_create_signing_key(key_file)
    original = read_certificate(pdf)
    cases = {
        "figures": {
            **original,
            "figures": {**original["figures"], "makeup_minutes": 180},
        },
        "chain hash": {**original, "chain_hash": "0" * 64},
        "chain hash at": {**original, "position": original["position"] - 1},
        "figures of another volunteer": {**original, "volunteer_id": "V2"},
    }
    for problem, content in cases.items():
        embed(html_of(pdf), resigned(content, key))
        # Then the signature verifies, but the ledger's figures or chain hash at
        # the certificate's position are not the certificate's
        outcome = verify(cli, html_of(pdf))
        assert exited_cleanly_with(outcome, 1), (problem, outcome.output)
        assert problem.split()[0] in outcome.stdout, (problem, outcome.stdout)
    # And the untouched PDF still verifies
    assert exited_cleanly_with(verify(cli, pdf), 0)


def test_a_certificate_signed_with_another_key_does_not_verify(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given the ledger's key, and a certificate signed with some other key
    # (by someone holding the ledger's other key material)
    load_or_create_signing_key(key_file)
    other = tmp_path / "other-keys" / SIGNING_KEY_FILE
    other.parent.mkdir()
    shutil.copy(key_file.parent / ID_NUMBER_SECRET_FILE, other.parent)
    forged = issue(cli, tmp_path / "forged.pdf", key=other)
    genuine = issue(cli, tmp_path / "genuine.pdf")
    # Then it does not verify against the ledger's key, in either file
    for path in (forged, html_of(forged)):
        outcome = verify(cli, path)
        assert exited_cleanly_with(outcome, 1), outcome.output
        assert "signature" in outcome.stdout
    # And a genuine one does not verify against the other key given explicitly
    other_public = tmp_path / "other.pub.pem"
    other_public.write_bytes(public_key_pem(load_or_create_signing_key(other)))
    outcome = verify(cli, genuine, "--public-key", str(other_public))
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert exited_cleanly_with(verify(cli, genuine), 0)


def test_an_unknown_volunteer_gets_no_certificate(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "nobody.pdf"
    outcome = cli("certificate", "NOBODY", "--as-of", "2024-12-31", "--out", str(out))
    assert outcome.exit_code != 0
    assert exited_cleanly_with(outcome, 4), outcome.output
    assert "NOBODY" in outcome.output
    assert not out.exists()
    assert not html_of(out).exists()


def test_a_file_without_a_certificate_does_not_verify(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    load_or_create_signing_key(key_file)
    plain = tmp_path / "plain.html"
    plain.write_text("<!doctype html><p>志愿服务记录证明</p>", "utf-8")
    outcome = verify(cli, plain)
    assert exited_cleanly_with(outcome, 1), outcome.output
    missing = verify(cli, tmp_path / "missing.pdf")
    assert missing.exit_code != 0


def test_a_certificate_from_another_ledger_does_not_verify(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given a certificate of this ledger, checked against an empty ledger
    # signed by the same key
    pdf = issue(cli, tmp_path / "cert.pdf")
    elsewhere = f"sqlite:///{tmp_path / 'elsewhere.db'}"

    outcome = CliRunner().invoke(
        app,
        ["--db", elsewhere, "verify-certificate", str(pdf)],
        env={"LEDGER_KEY_DIRECTORY": str(key_file.parent)},
    )
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "chain hash" in outcome.stdout


@pytest.mark.parametrize("embedded", [b"bm90IGpzb24=", b"WzFd"], ids=["text", "list"])
def test_a_malformed_embedded_certificate_is_refused_cleanly(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path, embedded: bytes
) -> None:
    load_or_create_signing_key(key_file)
    path = tmp_path / "malformed.html"
    path.write_bytes(
        b'<script type="application/json" id="ledger-certificate">"'
        + embedded
        + b'"</script>'
    )
    outcome = verify(cli, path)
    assert outcome.exit_code != 0  # it does fail, but by crashing:
    assert exited_cleanly_with(outcome, 1), repr(outcome.exception)


class EarlyMorningInChina(datetime):
    """``now`` is 2024-06-01T20:30Z, which is 2024-06-02 04:30 in China."""

    @classmethod
    def now(cls, tz: Any = None) -> EarlyMorningInChina:
        moment = datetime(2024, 6, 1, 20, 30, tzinfo=UTC)
        shown = moment.astimezone(tz) if tz is not None else moment
        return cls.fromtimestamp(shown.timestamp(), shown.tzinfo)


def test_today_is_the_china_standard_time_day(
    served: Ledger, cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.api.cli.certificates.datetime", EarlyMorningInChina)
    monkeypatch.setattr("ledger.services.certificates.datetime", EarlyMorningInChina)
    out = tmp_path / "today.pdf"
    outcome = cli("certificate", "V1", "--out", str(out))
    assert exited_cleanly_with(outcome, 0), outcome.output
    content = read_certificate(out)
    assert (content["as_of"], content["issued_on"]) == ("2024-06-02", "2024-06-02")


def test_a_malformed_as_of_day_is_refused_cleanly(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    outcome = cli(
        "certificate", "V1", "--as-of", "31/12/2024", "--out", str(tmp_path / "x.pdf")
    )
    assert outcome.exit_code != 0
    assert exited_cleanly_with(outcome, 2), repr(outcome.exception)
