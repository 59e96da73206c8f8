"""The compact signed token a certificate's QR code carries, and the rules
for the organisation profile it is issued under: in memory, no ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.services.certificates import (
    CertificateError,
    CertificateToken,
    IssuerProfileError,
    Verdict,
    chinese_date,
    is_placeholder,
    issuer_profile,
    qr_text,
    statement,
)
from ledger.store.integrity import key_id

KEY = Ed25519PrivateKey.generate()


def a_token(**changes: object) -> CertificateToken:
    fields: dict[str, object] = {
        "certificate_number": "WMSJ-0123456789ABCDEF",
        "volunteer_id": "V0000972",
        "total_minutes": 15072,
        "as_of": "2024-12-31",
        "position": 24073,
        "chain_hash": "ab" * 32,
        "key_id": key_id(KEY.public_key())[:16],
        **changes,
    }
    return CertificateToken(**fields).signed_with(KEY)  # type: ignore[arg-type]


def test_a_token_survives_encoding_and_verifies_with_its_key() -> None:
    token = a_token()
    encoded = token.encode()
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", encoded)
    assert len(encoded) < 300  # small enough for a QR code read from paper
    assert CertificateToken.decode(encoded) == token
    assert token.verdict(KEY.public_key()) is Verdict.VALID


def test_a_token_whose_content_changed_is_tampered() -> None:
    token = a_token()
    altered = CertificateToken.decode(
        a_token(total_minutes=60_000).encode().split(".")[0]
        + "."
        + token.encode().split(".")[1]
    )
    assert altered.total_minutes == 60_000
    assert altered.verdict(KEY.public_key()) is Verdict.TAMPERED


def test_a_token_signed_by_another_key_is_of_unknown_signature() -> None:
    other = Ed25519PrivateKey.generate()
    assert a_token().verdict(other.public_key()) is Verdict.UNKNOWN_SIGNATURE


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nodot",
        "a.b.c",
        "!!!.???",
        "e30.AAAA",  # {} : no fields
        a_token(position="24073").encode(),  # a string where a number belongs
        a_token(as_of="31/12/2024").encode(),
    ],
)
def test_what_is_not_a_token_is_refused(text: str) -> None:
    with pytest.raises(CertificateError, match="not a certificate token"):
        CertificateToken.decode(text)


def test_the_qr_code_holds_the_verify_url_only_when_there_is_an_address() -> None:
    assert qr_text("T.S", None) == "T.S"
    assert qr_text("T.S", "https://wm.example.cn/") == (
        "https://wm.example.cn/verify?token=T.S"
    )


def test_dates_are_printed_in_year_month_day() -> None:
    assert chinese_date("2024-03-02") == "2024年3月2日"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "  ",
        "中心负责人",
        "志愿服务记录专员",
        "0512-00000000",
        "13800000000",
        "TODO",
        "示例单位",
    ],
)
def test_placeholders_are_not_printed(value: str) -> None:
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value", ["张建国", "0512-57301234", "昆山市新时代文明实践中心"]
)
def test_real_values_are_printed(value: str) -> None:
    assert not is_placeholder(value)


def test_settings_win_over_the_profile_file(tmp_path: Path) -> None:
    profile = tmp_path / "issuer.toml"
    profile.write_text(
        'organisation = "花桥镇新时代文明实践所"\nperson_in_charge = "陈思远"\n'
        'handler = "周敏"\ncontact = "0512-57690000 转 8"\n',
        "utf-8",
    )
    issuer = issuer_profile({"handler": "李晓燕", "contact": None}, profile)
    assert (issuer.organisation, issuer.handler, issuer.contact) == (
        "花桥镇新时代文明实践所",
        "李晓燕",
        "0512-57690000 转 8",
    )


def test_an_unreadable_profile_file_is_named(tmp_path: Path) -> None:
    profile = tmp_path / "issuer.toml"
    profile.write_text("organisation = \n", "utf-8")
    with pytest.raises(IssuerProfileError, match=r"issuer\.toml"):
        issuer_profile({}, profile)


def test_a_volunteer_without_service_is_certified_up_to_the_day() -> None:
    figures = {
        "verified_minutes": 0,
        "makeup_minutes": 0,
        "total_minutes": 0,
        "sessions": 0,
        "first_day": None,
        "last_day": None,
    }
    content = {
        "name": "刘洋",
        "id_type": "居民身份证",
        "id_number": "320583********0012",
        "volunteer_id": "V2",
        "as_of": "2024-12-31",
        "figures": figures,
        "issuer": {"organisation": "花桥镇新时代文明实践所"},
    }
    assert "截至2024年12月31日，经花桥镇新时代文明实践所记录，参加志愿服务0次" in (
        statement(content)
    )


def test_a_seal_image_that_is_not_there_is_refused(tmp_path: Path) -> None:
    complete = {
        "organisation": "昆山市新时代文明实践中心",
        "person_in_charge": "张建国",
        "handler": "李晓燕",
        "contact": "0512-57301234",
    }
    assert issuer_profile(complete, None).seal_image is None
    missing = str(tmp_path / "seal.png")
    with pytest.raises(IssuerProfileError, match="LEDGER_CERTIFICATE_SEAL_IMAGE"):
        issuer_profile({**complete, "seal_image": missing}, None)
