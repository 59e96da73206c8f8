"""志愿服务记录证明: `ledger certificate` and `ledger verify-certificate`,
on SQLite and PostgreSQL.

A certificate is written as a PDF and, beside it, an HTML file, under the
configured organisation profile (refused while it is incomplete). Both carry
the 兹证明 statement with the ID number masked, the hours per platform, the
issuer, a certificate number, the ledger position and chain hash, a QR code
with a signed token, and the signed content embedded. Verification checks
the signatures and the printed page with the public key alone, and, with a
database, the chain hash and figures at the certificate's position and any
correction since; it fails for altered figures, another signing key, a
rewritten ledger, or an unknown volunteer.
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess
import tomllib
from datetime import UTC, datetime
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import orjson
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image, ImageDraw
from pypdf import PdfReader
from typer.testing import Result

from ledger.application.ledger import Ledger
from ledger.bootstrap import open_database
from ledger.domain.privacy import mask_id_number
from ledger.services.certificates import (
    CONTENT_DOMAIN,
    SHIPPED_FONT,
    CertificateToken,
    read_certificate,
    token_of,
)
from ledger.store.event_store import Database
from ledger.store.integrity import (
    ID_NUMBER_SECRET_FILE,
    KEY_DIRECTORY_SETTING,
    SIGNING_KEY_FILE,
    key_id,
    load_or_create_signing_key,
    public_key_pem,
)
from ledger.store.personal_data import MASTER_KEY_FILE
from tests.certificate_helpers import (
    ID_NUMBER,
    SATURDAY,
    Cli,
    correct_v1,
    exited_cleanly_with,
    forge,
    issue,
    ledger_cli,
    serve_v1,
)
from tests.factories import id_number, record_all, submission


@pytest.fixture
def served(ledger: Ledger) -> Ledger:
    serve_v1(ledger)
    return ledger


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "keys" / SIGNING_KEY_FILE


@pytest.fixture
def cli(database: Database, key_file: Path) -> Cli:
    """`ledger --db URL ARGUMENTS`, signing with the key in ``key_file``."""
    return ledger_cli(database.url, key_file.parent)


@pytest.fixture
def public_key(key_file: Path, tmp_path: Path) -> Path:
    """The ledger's public key, as `ledger public-key` hands it out."""
    path = tmp_path / "ledger.pub.pem"
    path.write_bytes(public_key_pem(load_or_create_signing_key(key_file)))
    return path


def verify(cli: Cli, path: Path, *arguments: str, **options: Any) -> Result:
    return cli("verify-certificate", str(path), *arguments, **options)


def html_of(pdf: Path) -> Path:
    return pdf.with_suffix(".html")


def printed(pdf: Path) -> str:
    """The PDF's text as a reader extracts it, without whitespace."""
    text = "".join(page.extract_text() for page in PdfReader(pdf).pages)
    return re.sub(r"\s+", "", text)


# --- issuing ---------------------------------------------------------------------


def test_a_certificate_is_written_as_pdf_and_html_with_the_id_number_masked(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # When a certificate is issued for V1
    out = tmp_path / "certificates" / "V1.pdf"
    out.parent.mkdir()
    printed_path = issue(cli, out)
    # Then the PDF's path is printed last, and the HTML lies beside it
    assert printed_path == out
    assert out.read_bytes().startswith(b"%PDF")
    html = html_of(out).read_text("utf-8")
    assert html.startswith("<!doctype html>")
    # And the ID number is masked in print, and in the embedded copy
    masked = mask_id_number(ID_NUMBER)
    assert masked == ID_NUMBER[:6] + "********" + ID_NUMBER[-4:]
    assert masked in html
    assert masked in printed(out)
    assert ID_NUMBER not in html
    assert ID_NUMBER not in printed(out)
    content = read_certificate(out)
    assert read_certificate(html_of(out)) == content
    assert ID_NUMBER not in orjson.dumps(content).decode()
    assert "13812345678" not in html
    # And the figures: verified and make-up apart, per platform, with the period
    assert re.fullmatch(r"WMSJ-[0-9A-F]{16}", content["certificate_number"])
    assert content["figures"] == {
        "verified_minutes": 150,
        "makeup_minutes": 120,
        "total_minutes": 270,
        "sessions": 2,
        "by_category": {"culture": 150, "health": 120},
        "sessions_by_category": {"culture": 1, "health": 1},
        "first_day": "2024-03-02",
        "last_day": "2024-03-09",
    }


def test_the_page_states_what_the_ministry_format_asks_for(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # When a certificate is issued for V1
    pdf = issue(cli, tmp_path / "V1.pdf")
    content = read_certificate(pdf)
    # Then the PDF and the HTML both print the 兹证明 statement, the platforms,
    # the issuer from the profile, the number, the 年月日 dates and the ledger
    issued_on = datetime.fromisoformat(content["issued_on"])
    expected = [
        "志愿服务记录证明",
        "兹证明王小明",
        "证件类型：居民身份证",
        "志愿者编号：V1",
        "于2024年3月2日至2024年3月9日期间",
        "参加志愿服务2次，累计服务时长4.5小时",
        "其中签到记录2.5小时，补录2.0小时",
        "理论宣讲",
        "教育服务",
        "文化服务",
        "科技科普",
        "健康促进与体育",
        "合计4.52",
        "特此证明。",
        "昆山市新时代文明实践中心（盖章）",
        "负责人：张建国",
        "经办人：李晓燕",
        "联系方式：0512-57301234",
        f"出具日期：{issued_on.year}年{issued_on.month}月{issued_on.day}日",
        f"证明编号：{content['certificate_number']}",
        f"账本位置{content['position']}",
        content["chain_hash"][:4] + content["chain_hash"][4:8],
        "统计截至2024年12月31日",
    ]
    text = printed(pdf)
    html = re.sub(r"<[^>]+>|\s+", "", html_of(pdf).read_text("utf-8"))
    for shown in expected:
        assert shown.replace(" ", "") in text, shown
        assert shown.replace(" ", "") in html, shown
    # And no date is printed in ISO form
    assert not re.search(r"20\d\d-\d\d-\d\d", text)


def test_the_pdf_embeds_the_shipped_font_and_every_font_it_names(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    pdf = issue(cli, tmp_path / "V1.pdf")
    # Every font on the page has its program in the file (FontFile2: TrueType)
    fonts = {}
    for page in PdfReader(pdf).pages:
        for font in page["/Resources"]["/Font"].values():
            font = font.get_object()
            descriptor = font["/FontDescriptor"].get_object()
            fonts[str(font["/BaseFont"])] = sorted(
                key for key in descriptor if key.startswith("/FontFile")
            )
    assert fonts, "the page names no font"
    assert all(files == ["/FontFile2"] for files in fonts.values()), fonts
    # And it is the subset of Noto Sans CJK SC shipped with the package
    assert SHIPPED_FONT.stat().st_size < 4_000_000
    assert all(name.endswith("+NotoSansCJKsc-Regular") for name in fonts), fonts
    # And pdffonts, where it is installed, agrees: every font embedded
    if shutil.which("pdffonts"):
        listed = subprocess.run(
            ["pdffonts", str(pdf)], capture_output=True, text=True, check=True
        ).stdout.splitlines()[2:]
        assert listed
        assert all(row.split()[-5] == "yes" for row in listed), listed


def test_a_wheel_carries_the_font_and_its_licence() -> None:
    """``pip install`` alone prints Chinese: the font and the OFL beside it
    match a ``package-data`` pattern of pyproject.toml."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    setuptools = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]
    patterns = setuptools["package-data"]["ledger.services"]
    for file in (SHIPPED_FONT, SHIPPED_FONT.with_name("OFL.txt")):
        assert file.is_file()
        packaged = file.relative_to(SHIPPED_FONT.parents[1]).as_posix()
        assert any(fnmatch(packaged, pattern) for pattern in patterns), packaged


def test_the_qr_code_holds_the_signed_token_or_the_verify_url(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Without a public base URL, the QR code holds the bare token
    bare = issue(cli, tmp_path / "bare.pdf")
    token = read_certificate(bare)["token"]
    decoded = CertificateToken.decode(token)
    assert decoded.payload() == token_of(read_certificate(bare)).payload()
    assert (decoded.volunteer_id, decoded.total_minutes) == ("V1", 270)
    assert segno.make(token, error="m").svg_inline(scale=2) in (
        html_of(bare).read_text("utf-8")
    )
    # With one, the URL of its verification page
    linked = issue(
        cli,
        tmp_path / "linked.pdf",
        environment={"LEDGER_PUBLIC_BASE_URL": "https://wenming.example.cn/"},
    )
    url = "https://wenming.example.cn/verify?token=" + read_certificate(linked)["token"]
    assert segno.make(url, error="m").svg_inline(scale=2) in (
        html_of(linked).read_text("utf-8")
    )
    # And the PDF carries the token in its metadata too
    assert PdfReader(linked).metadata["/Subject"] == read_certificate(linked)["token"]
    # And its printed QR code reads back as the URL, where poppler and zbar
    # are installed (.ci/run installs them)
    if shutil.which("pdftoppm") and shutil.which("zbarimg"):
        subprocess.run(
            ["pdftoppm", "-png", "-r", "150", str(linked), str(tmp_path / "scan")],
            check=True,
        )
        scanned = subprocess.run(
            [
                "zbarimg",
                # QR codes only: zbar can take a line of small print for
                # a one-dimensional barcode (it once read "861237")
                "-Sdisable",
                "-Sqrcode.enable",
                "--quiet",
                "--raw",
                str(tmp_path / "scan-1.png"),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert scanned.strip() == url


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
    assert (figures["first_day"], figures["last_day"]) == ("2024-03-02",) * 2
    assert exited_cleanly_with(verify(cli, pdf), 0)


def test_a_name_the_font_cannot_print_is_refused_not_printed_blank(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Given a volunteer whose name has a character outside GB 2312 and the
    # shipped font (U+4DAE, CJK extension A), and who has not served yet
    record_all(
        served,
        [
            submission(
                "register_volunteer",
                SATURDAY,
                volunteer_id="V2",
                name="刘䶮",
                id_number=id_number(serial=418),
            )
        ],
    )
    # When a certificate is asked for
    out = tmp_path / "V2.pdf"
    outcome = cli("certificate", "V2", "--as-of", "2024-12-31", "--out", str(out))
    # Then it is refused in one line naming the character and the setting
    assert exited_cleanly_with(outcome, 1), outcome.output
    message = outcome.output.replace("\n", "")
    assert "䶮" in message
    assert "LEDGER_CERTIFICATE_FONT" in message
    assert not out.exists()


# --- the organisation profile ---------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LEDGER_CERTIFICATE_HANDLER", None),
        ("LEDGER_CERTIFICATE_CONTACT", "0512-00000000"),
        ("LEDGER_CERTIFICATE_PERSON_IN_CHARGE", "中心负责人"),
        ("LEDGER_CERTIFICATE_ORGANISATION", "  "),
    ],
)
def test_printing_refuses_while_the_profile_is_incomplete(
    served: Ledger, cli: Cli, tmp_path: Path, variable: str, value: str | None
) -> None:
    # When a value of the profile is unset or still a placeholder
    out = tmp_path / "refused.pdf"
    outcome = cli(
        "certificate",
        "V1",
        "--out",
        str(out),
        environment={variable: value},
    )
    # Then nothing is printed, and one line says where to set it
    assert exited_cleanly_with(outcome, 2), outcome.output
    lines = outcome.output.strip().splitlines()
    assert len(lines) == 1, lines
    assert variable in lines[0]
    assert "LEDGER_CERTIFICATE_PROFILE" in lines[0]
    assert not out.exists()
    assert not html_of(out).exists()


def test_a_profile_file_supplies_what_the_settings_leave_unset(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Given a profile file with every value, and one setting that overrides it
    profile = tmp_path / "issuer.toml"
    profile.write_text(
        'organisation = "花桥镇新时代文明实践所"\n'
        'person_in_charge = "陈思远"\n'
        'handler = "周敏"\n'
        'contact = "0512-57690000 转 8"\n',
        "utf-8",
    )
    environment: dict[str, str | None] = {
        "LEDGER_CERTIFICATE_ORGANISATION": None,
        "LEDGER_CERTIFICATE_PERSON_IN_CHARGE": None,
        "LEDGER_CERTIFICATE_HANDLER": None,
        "LEDGER_CERTIFICATE_CONTACT": "0512-57691111",
        "LEDGER_CERTIFICATE_PROFILE": str(profile),
    }
    pdf = issue(cli, tmp_path / "V1.pdf", environment=environment)
    # Then the certificate is issued by the profile's organisation
    assert read_certificate(pdf)["issuer"] == {
        "organisation": "花桥镇新时代文明实践所",
        "person_in_charge": "陈思远",
        "handler": "周敏",
        "contact": "0512-57691111",
    }
    assert "经办人：周敏" in printed(pdf)
    # And a profile missing a value is named in the refusal
    profile.write_text('organisation = "花桥镇新时代文明实践所"\n', "utf-8")
    environment["LEDGER_CERTIFICATE_CONTACT"] = None
    outcome = cli("certificate", "V1", environment=environment)
    assert exited_cleanly_with(outcome, 2), outcome.output
    assert str(profile) in outcome.output.replace("\n", "")


def test_a_configured_seal_image_is_printed_in_the_seal_area(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Given an image of the organisation's seal
    seal = tmp_path / "seal.png"
    image = Image.new("RGBA", (200, 200), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse((5, 5, 195, 195), outline=(200, 30, 30, 255), width=8)
    image.save(seal)
    # When a certificate is issued with it configured
    pdf = issue(
        cli,
        tmp_path / "sealed.pdf",
        environment={"LEDGER_CERTIFICATE_SEAL_IMAGE": str(seal)},
    )
    # Then the page carries one image, and the blank seal area is gone
    images = [image for page in PdfReader(pdf).pages for image in page.images]
    assert len(images) == 1
    assert "（盖章处）" not in printed(pdf)
    assert "（盖章处）" in printed(issue(cli, tmp_path / "blank.pdf"))
    assert not list(PdfReader(tmp_path / "blank.pdf").pages[0].images)


# --- verifying with the public key alone ------------------------------------------


def test_a_certificate_verifies_with_the_public_key_alone(
    served: Ledger,
    cli: Cli,
    key_file: Path,
    public_key: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a certificate and the ledger's public key, in a folder of their own
    pdf = issue(cli, tmp_path / "V1.pdf")
    away = tmp_path / "school"
    away.mkdir()
    monkeypatch.chdir(away)
    offline = ledger_cli(None, tmp_path / "no-keys-here")
    # When a school checks it without any database
    for path in (pdf, html_of(pdf)):
        outcome = verify(offline, path, "--public-key", str(public_key))
        # Then it is genuine, and no ledger was consulted or created
        assert exited_cleanly_with(outcome, 0), outcome.output
        assert "is genuine" in outcome.stdout
        assert "270" not in outcome.stdout  # hours, not minutes
        assert "4.5 h" in outcome.stdout
        assert "ledger matches" not in outcome.stdout
    assert list(away.iterdir()) == []
    # And without the key it cannot say, and says so in one line
    outcome = verify(offline, pdf)
    assert exited_cleanly_with(outcome, 2), outcome.output
    assert "--public-key" in outcome.output
    assert list(away.iterdir()) == []


def test_the_public_key_is_handed_out_by_checkpoint_and_public_key(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    pdf = issue(cli, tmp_path / "V1.pdf")
    pem = tmp_path / "from-checkpoint.pem"
    assert exited_cleanly_with(cli("checkpoint", "--public-key-out", str(pem)), 0)
    printed_key = cli("public-key").stdout
    assert pem.read_text() == printed_key.strip() + "\n"
    offline = ledger_cli(None, tmp_path / "no-keys-here")
    outcome = verify(offline, pdf, "--public-key", str(pem))
    assert exited_cleanly_with(outcome, 0), outcome.output


# --- verifying with the ledger -------------------------------------------------------


def test_both_files_verify_against_the_ledger(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    pdf = issue(cli, tmp_path / "V1.pdf")
    content = read_certificate(pdf)
    for path in (pdf, html_of(pdf)):
        outcome = verify(cli, path)
        assert exited_cleanly_with(outcome, 0), outcome.output
        assert content["certificate_number"] in outcome.stdout
        assert f"position {content['position']}" in outcome.stdout
        assert "still agrees today" in outcome.stdout


def test_a_correction_since_is_reported_and_the_certificate_stays_valid(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    # Given a certificate issued now
    first = issue(cli, tmp_path / "first.pdf")
    # When V1's verified session is corrected afterwards
    correct_v1(served, 170)
    # Then the certificate still matches the ledger at its position, and the
    # correction since is reported
    for path in (first, html_of(first)):
        outcome = verify(cli, path)
        assert exited_cleanly_with(outcome, 0), outcome.output
        assert "corrected since" in outcome.stdout
        assert "4.8 h" in outcome.stdout
        assert "+20 min" in outcome.stdout
    # And a new certificate shows the corrected figures at a later position
    second = issue(cli, tmp_path / "second.pdf")
    old, new = read_certificate(first), read_certificate(second)
    assert new["figures"]["verified_minutes"] == 170
    assert new["position"] > old["position"]
    assert new["certificate_number"] != old["certificate_number"]
    assert "still agrees today" in verify(cli, second).stdout


# --- what does not verify ------------------------------------------------------------


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
    """``content`` and its token signed again (as whoever holds ``key`` could)."""
    unsigned = {k: v for k, v in content.items() if k != "signature"}
    unsigned["token"] = token_of(unsigned).signed_with(key).encode()
    message = CONTENT_DOMAIN + orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)
    return {**unsigned, "signature": key.sign(message).hex()}


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
    assert "does NOT verify" in outcome.stdout
    assert "signature" in outcome.stdout


def test_altered_printed_hours_do_not_verify(
    served: Ledger, cli: Cli, tmp_path: Path, public_key: Path
) -> None:
    # When the hours printed on the page are changed, the signed content kept
    html = html_of(issue(cli, tmp_path / "cert.pdf"))
    page = html.read_text("utf-8")
    html.write_text(
        page.replace("累计服务时长4.5小时", "累计服务时长45.5小时"), "utf-8"
    )
    # Then the page does not print what was signed
    outcome = verify(cli, html, "--public-key", str(public_key))
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "total hours" in outcome.stdout


def test_content_signed_anew_still_must_match_the_ledger_and_the_page(
    served: Ledger, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given a certificate, and its content re-signed with the ledger's own key
    pdf = issue(cli, tmp_path / "cert.pdf")
    key = load_or_create_signing_key(key_file)
    original = read_certificate(pdf)
    cases = {
        # what was changed: what the verification names
        "figures": (
            {**original["figures"], "makeup_minutes": 180},
            "figures",
        ),
        "chain_hash": ("0" * 64, "chain hash"),
        "position": (original["position"] - 1, "ledger position"),
        "volunteer_id": ("V2", "volunteer number"),
    }
    for field, (value, named) in cases.items():
        embed(html_of(pdf), resigned({**original, field: value}, key))
        # Then the signature verifies, but the page or the ledger disagree
        outcome = verify(cli, html_of(pdf))
        assert exited_cleanly_with(outcome, 1), (field, outcome.output)
        assert named in outcome.stdout, (field, outcome.stdout)
    # And the untouched PDF still verifies
    assert exited_cleanly_with(verify(cli, pdf), 0)


def test_a_certificate_signed_with_another_key_does_not_verify(
    served: Ledger, database: Database, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given the ledger's key, and a certificate signed with some other key
    # (by someone holding the ledger's other key material)
    load_or_create_signing_key(key_file)
    other = Ed25519PrivateKey.generate()
    forged = forge(database.url, key_file.parent, other, tmp_path / "forged.pdf")
    genuine = issue(cli, tmp_path / "genuine.pdf")
    # Then it does not verify against the ledger's key, in either file
    for path in (forged, html_of(forged)):
        outcome = verify(cli, path)
        assert exited_cleanly_with(outcome, 1), outcome.output
        assert "not by this key" in outcome.stdout
    # And a genuine one does not verify against the other key given explicitly
    other_public = tmp_path / "other.pub.pem"
    other_public.write_bytes(public_key_pem(other))
    outcome = verify(cli, genuine, "--public-key", str(other_public))
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert exited_cleanly_with(verify(cli, genuine), 0)


def test_a_certificate_is_signed_with_the_ledgers_key_or_not_at_all(
    served: Ledger, database: Database, cli: Cli, tmp_path: Path, key_file: Path
) -> None:
    # Given a ledger that has signed a certificate with its key
    signed_with = read_certificate(issue(cli, tmp_path / "genuine.pdf"))["key_id"]
    # When a certificate is asked for with the key material looked for
    # elsewhere (the ID-number secret and master key there, but not the
    # signing key)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(key_file.parent / ID_NUMBER_SECRET_FILE, elsewhere)
    shutil.copy(key_file.parent / MASTER_KEY_FILE, elsewhere)
    out = tmp_path / "other.pdf"
    arguments = ("certificate", "V1", "--as-of", "2024-12-31", "--out", str(out))
    chinese = {"LANG": "zh_CN.UTF-8"}
    outcome = ledger_cli(database.url, elsewhere)(*arguments, environment=chinese)
    # Then it is refused in one line (here in Chinese) naming the ledger's
    # key, and neither a new key nor a certificate is made
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert outcome.output.strip() == (
        f"{elsewhere} 中没有签名密钥，但台账用密钥 {signed_with} 签署（证明与"
        f"检查点）：请把该密钥以 {SIGNING_KEY_FILE} 放到那里，或把 "
        f"{KEY_DIRECTORY_SETTING} 设为其所在目录"
    )
    assert not (elsewhere / SIGNING_KEY_FILE).exists()
    # And with another key there, it refuses to sign with that one
    other = load_or_create_signing_key(elsewhere / SIGNING_KEY_FILE)
    outcome = ledger_cli(database.url, elsewhere)(*arguments, environment=chinese)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert outcome.output.strip() == (
        f"拒绝用密钥 {key_id(other.public_key())} 签署：台账用密钥 {signed_with} "
        f"签署（证明与检查点）；请把该密钥放入台账的密钥目录（{KEY_DIRECTORY_SETTING}）"
    )
    assert not out.exists()


def test_an_unknown_volunteer_gets_no_certificate(
    served: Ledger, cli: Cli, tmp_path: Path
) -> None:
    out = tmp_path / "nobody.pdf"
    outcome = cli("certificate", "NOBODY", "--as-of", "2024-12-31", "--out", str(out))
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
    empty = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    open_database(empty).dispose()
    elsewhere = ledger_cli(empty, key_file.parent)
    outcome = verify(elsewhere, pdf)
    assert exited_cleanly_with(outcome, 1), outcome.output
    assert "does NOT match the ledger" in outcome.stdout
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
    assert exited_cleanly_with(outcome, 2), repr(outcome.exception)
