"""志愿服务记录证明: a volunteer's service record certificate, as PDF and HTML.

The page follows 《志愿服务记录与证明出具办法》(民政部令第67号): a 兹证明
statement (name, ID type and masked number, volunteer number, service period,
hours in total and per "5+X" platform, sessions), the issuing organisation
with its person in charge, handler and contact, a certificate number, the
issue date and a seal area; besides, the ledger position and chain hash it
reflects, and a QR code.

Two signed things travel in each certificate, both signed with the ledger's
Ed25519 key: the full content (embedded in the PDF's keywords and in a JSON
script of the HTML) and a compact token that the QR code carries
(certificate number, volunteer number, minutes, as-of day, position, chain
hash). So a certificate can be checked with the public key alone
(``verify_document``), and against the ledger when one is at hand
(``read_ledger_today``): the chain hash at its position, its figures there,
and whether service it counts was corrected since.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import html
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

import orjson
import segno
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pypdf import PdfReader
from pypdf.errors import PyPdfError
from reportlab.lib.colors import Color, HexColor
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from sqlalchemy.engine import Connection

from ledger.application.ledger import Ledger
from ledger.domain.activities import CATEGORY_NAMES_ZH, Category
from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.domain.messages import (
    CHINESE,
    Message,
    TranslatedError,
    translate,
    use_language,
)
from ledger.domain.privacy import ERASED, mask_id_number
from ledger.domain.volunteers import Volunteer
from ledger.projections.volunteer_hours import entries_table, served_through
from ledger.reads.queries import NotFoundError
from ledger.store.event_store import chain_hash_at
from ledger.store.integrity import key_id

TITLE = "志愿服务记录证明"
# The CJK font shipped with the package: a subset of Noto Sans CJK SC (OFL)
# covering GB 2312, converted to TrueType outlines; fonts/README.md says how
# it is rebuilt. Every glyph drawn is embedded in the PDF.
SHIPPED_FONT = Path(__file__).with_name("fonts") / "NotoSansSC-Certificate.ttf"
# Signed messages start with their purpose, so that no signature the ledger
# makes for one thing (a checkpoint, a certificate) verifies as another.
CONTENT_DOMAIN = b"wenming-ledger certificate v2\n"
TOKEN_DOMAIN = b"wenming-ledger certificate token v1\n"
# A token names its key by this many hex digits of the key id.
TOKEN_KEY_ID_LENGTH = 16
# Tokens are about 290 characters (a volunteer id is at most 64).
MAX_TOKEN_LENGTH = 1000


class CertificateError(TranslatedError, ValueError):
    """A certificate is not what its signature says, or not the ledger's
    (told in the reader's language)."""


class IssuerProfileError(TranslatedError, ValueError):
    """The organisation profile that certificates are issued under is
    missing a value, or still holds a placeholder."""


# --- the issuing organisation ---------------------------------------------------

# Setting name (LEDGER_CERTIFICATE_<NAME>) and profile-file key of each field.
ISSUER_FIELDS = {
    "organisation": "出具组织",
    "person_in_charge": "负责人",
    "handler": "经办人",
    "contact": "联系方式",
}
PLACEHOLDERS = frozenset(
    {"中心负责人", "志愿服务记录专员", "负责人", "经办人", "待填写", "待定", "无"}
)
_PLACEHOLDER_MARK = re.compile(
    r"todo|xxx|tbd|example|placeholder|示例|待填|占位|\?\?", re.I
)


def is_placeholder(value: str) -> bool:
    """Blank, a sample value, or a number whose last seven digits are zeros
    (``0512-00000000``): not to be printed."""
    text = value.strip()
    digits = re.sub(r"\D", "", text)
    return (
        not text
        or text in PLACEHOLDERS
        or bool(_PLACEHOLDER_MARK.search(text))
        or (len(digits) >= 7 and set(digits[-7:]) == {"0"})
    )


@dataclass(frozen=True)
class Issuer:
    """Who issues certificates: the organisation profile."""

    organisation: str
    person_in_charge: str
    handler: str
    contact: str
    seal_image: Path | None = None

    def signed(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in ISSUER_FIELDS}


def issuer_profile(
    configured: Mapping[str, str | None], profile_file: Path | None
) -> Issuer:
    """The issuer from settings (``configured``: field name → value), each
    unset field taken from the TOML ``profile_file``; refuses, in one line
    saying where to set it, while a field is unset or a placeholder."""
    from_file: dict[str, Any] = {}
    if profile_file is not None:
        try:
            from_file = tomllib.loads(profile_file.read_text("utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise IssuerProfileError(
                "the certificate profile {path} cannot be read: {reason}",
                path=profile_file,
                reason=error,
            ) from None
    values: dict[str, str] = {}
    for name, label in ISSUER_FIELDS.items():
        value = configured.get(name) or from_file.get(name)
        if not isinstance(value, str) or is_placeholder(value):
            file = profile_file or Message(
                "a profile file named by LEDGER_CERTIFICATE_PROFILE"
            )
            state = (
                Message("is not set")
                if not value
                else Message("still holds the placeholder '{value}'", value=value)
            )
            raise IssuerProfileError(
                "certificate issuer incomplete: {label} ({name}) {state}; "
                "set LEDGER_CERTIFICATE_{setting}, or `{name}` in {file}",
                label=label,
                name=name,
                state=state,
                setting=name.upper(),
                file=file,
            )
        values[name] = value.strip()
    seal = configured.get("seal_image") or from_file.get("seal_image")
    seal_image = Path(seal) if isinstance(seal, str) and seal else None
    if seal_image is not None and not seal_image.is_file():
        raise IssuerProfileError(
            "the seal image {path} does not exist; set "
            "LEDGER_CERTIFICATE_SEAL_IMAGE or `seal_image` to an image file",
            path=seal_image,
        )
    return Issuer(**values, seal_image=seal_image)


# --- figures ----------------------------------------------------------------------


def certificate_figures(
    conn: Connection, version: int, volunteer_id: str, as_of: date, position: int
) -> dict[str, Any]:
    """Approved minutes and sessions of service dated up to ``as_of``, as the
    ledger knew them at ``position``: in total, per platform, and the first
    and last day served."""
    t = entries_table.c
    rows = conn.execute(
        sa.select(
            t.kind,
            t.category,
            t.service_date,
            sa.func.sum(t.minutes),
            sa.func.sum(t.sessions),
        )
        .where(
            t.version == version,
            t.volunteer_id == volunteer_id,
            t.position <= position,
            served_through(as_of),
        )
        .group_by(t.kind, t.category, t.service_date)
    )
    verified = makeup = sessions = 0
    by_category: dict[str, int] = {}
    sessions_by_category: dict[str, int] = {}
    days: list[str] = []
    for kind, category, day, summed, counted in rows:
        minutes, counted = int(summed or 0), int(counted or 0)
        if kind == "verified":
            verified += minutes
        else:
            makeup += minutes
        sessions += counted
        if minutes:
            by_category[category] = by_category.get(category, 0) + minutes
        if counted:
            sessions_by_category[category] = (
                sessions_by_category.get(category, 0) + counted
            )
            days.append(day)
    return {
        "verified_minutes": verified,
        "makeup_minutes": makeup,
        "total_minutes": verified + makeup,
        "sessions": sessions,
        "by_category": dict(sorted(by_category.items())),
        "sessions_by_category": dict(sorted(sessions_by_category.items())),
        "first_day": min(days, default=None),
        "last_day": max(days, default=None),
    }


# --- the compact signed token the QR code carries --------------------------------


class Verdict(StrEnum):
    """What a token's signature says, checked with a public key."""

    VALID = "valid"
    TAMPERED = "tampered"  # signed by that key, but not this content
    UNKNOWN_SIGNATURE = "unknown_signature"  # signed by another key


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class CertificateToken:
    """The certificate in brief, signed: what a QR code carries."""

    certificate_number: str
    volunteer_id: str
    total_minutes: int
    as_of: str
    position: int
    chain_hash: str
    key_id: str
    signature: bytes = b""

    _KEYS: ClassVar[dict[str, str]] = {  # field → its short name in the token
        "certificate_number": "n",
        "volunteer_id": "v",
        "total_minutes": "m",
        "as_of": "d",
        "position": "p",
        "chain_hash": "h",
        "key_id": "k",
    }

    def payload(self) -> bytes:
        """The signed bytes: short names, the chain hash as base64url of its
        32 bytes rather than 64 hex digits, to keep the QR code small."""
        short = {key: getattr(self, name) for name, key in self._KEYS.items()}
        short["h"] = _b64(bytes.fromhex(self.chain_hash))
        return orjson.dumps(short, option=orjson.OPT_SORT_KEYS)

    def encode(self) -> str:
        """``PAYLOAD.SIGNATURE``, both base64url: safe in a URL's query."""
        return f"{_b64(self.payload())}.{_b64(self.signature)}"

    @classmethod
    def decode(cls, text: str) -> CertificateToken:
        if len(text) > MAX_TOKEN_LENGTH:
            raise CertificateError(
                "not a certificate token of this ledger (longer than {length} "
                "characters)",
                length=MAX_TOKEN_LENGTH,
            )
        try:
            payload, signature = text.strip().split(".")
            short = orjson.loads(_unb64(payload))
            values = {name: short[key] for name, key in cls._KEYS.items()}
            values["chain_hash"] = _unb64(values["chain_hash"]).hex()
            token = cls(**values, signature=_unb64(signature))
        except (ValueError, TypeError, KeyError, binascii.Error):
            raise CertificateError(
                "not a certificate token of this ledger (not a token)"
            ) from None
        for name in cls._KEYS:
            kind = int if name in ("total_minutes", "position") else str
            value = getattr(token, name)
            if type(value) is not kind:
                raise CertificateError(
                    "not a certificate token of this ledger (its field {name} is "
                    "malformed)",
                    name=name,
                )
        try:
            date.fromisoformat(token.as_of)
        except ValueError:
            raise CertificateError(
                "not a certificate token of this ledger (its field as_of is not a day)"
            ) from None
        return token

    def signed_with(self, key: Ed25519PrivateKey) -> CertificateToken:
        return CertificateToken(
            **{name: getattr(self, name) for name in self._KEYS},
            signature=key.sign(TOKEN_DOMAIN + self.payload()),
        )

    def verdict(self, public_key: Ed25519PublicKey) -> Verdict:
        """Valid; tampered (the key's, but not what it signed); or signed by
        a key other than ``public_key``."""
        if self.key_id != key_id(public_key)[:TOKEN_KEY_ID_LENGTH]:
            return Verdict.UNKNOWN_SIGNATURE
        try:
            public_key.verify(self.signature, TOKEN_DOMAIN + self.payload())
        except InvalidSignature:
            return Verdict.TAMPERED
        return Verdict.VALID


def token_of(content: Mapping[str, Any]) -> CertificateToken:
    """The token a certificate's content makes (unsigned)."""
    return CertificateToken(
        certificate_number=content["certificate_number"],
        volunteer_id=content["volunteer_id"],
        total_minutes=content["figures"]["total_minutes"],
        as_of=content["as_of"],
        position=content["position"],
        chain_hash=content["chain_hash"],
        key_id=content["key_id"][:TOKEN_KEY_ID_LENGTH],
    )


# --- issuing ------------------------------------------------------------------------


def issue_certificate(
    ledger: Ledger,
    conn: Connection,
    version: int,
    volunteer_id: str,
    as_of: date,
    position: int,
    issuer: Issuer,
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """The signed content of a certificate, with its signed token."""
    stream = Volunteer.create_id(volunteer_id)
    volunteer = ledger.load_aggregates([stream]).get(stream)
    if not isinstance(volunteer, Volunteer):
        raise NotFoundError(
            Message(
                "{kind} '{id}' is not registered",
                kind=Message("volunteer"),
                id=volunteer_id,
            )
        )
    # Once erased, the volunteer is known by their id alone.
    name, id_number = volunteer.name, volunteer.id_number
    content: dict[str, Any] = {
        "volunteer_id": volunteer_id,
        "name": ERASED if name is None else name,
        "id_type": "居民身份证",
        "id_number": ERASED if id_number is None else mask_id_number(id_number),
        "as_of": as_of.isoformat(),
        "position": position,
        "chain_hash": chain_hash_at(conn, position),
        "figures": certificate_figures(conn, version, volunteer_id, as_of, position),
        "issuer": issuer.signed(),
        "issued_on": datetime.now(CHINA_STANDARD_TIME).date().isoformat(),
    }
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
    content["certificate_number"] = "WMSJ-" + digest.hexdigest()[:16].upper()
    content["key_id"] = key_id(key.public_key())
    content["token"] = token_of(content).signed_with(key).encode()
    content["signature"] = key.sign(_signed_bytes(content)).hex()
    return content


def _signed_bytes(content: Mapping[str, Any]) -> bytes:
    unsigned = {k: v for k, v in content.items() if k != "signature"}
    return CONTENT_DOMAIN + orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def qr_text(token: str, public_base_url: str | None) -> str:
    """What the QR code says: the verification page's URL when the ledger
    has a public address, else the bare token."""
    if not public_base_url:
        return token
    return f"{public_base_url.rstrip('/')}/verify?token={token}"


# --- what the page says --------------------------------------------------------------


def chinese_date(day: str | None) -> str:
    """``2024-12-31`` as ``2024年12月31日``."""
    if not day:
        return "—"
    parsed = date.fromisoformat(day)
    return f"{parsed.year}年{parsed.month}月{parsed.day}日"


def hours(minutes: int) -> str:
    return f"{minutes / 60:.1f}"


def fingerprint(chain_hash: str) -> str:
    """The chain hash's first 16 hex digits, in groups of four."""
    return " ".join(chain_hash[i : i + 4] for i in range(0, 16, 4))


def statement(content: Mapping[str, Any]) -> str:
    """The 兹证明 paragraph."""
    figures = content["figures"]
    first, last = figures["first_day"], figures["last_day"]
    period = (
        f"于{chinese_date(first)}至{chinese_date(last)}期间"
        if first
        else f"截至{chinese_date(content['as_of'])}"
    )
    return (
        f"兹证明 {content['name']}（证件类型：{content['id_type']}，"
        f"证件号码：{content['id_number']}；志愿者编号：{content['volunteer_id']}）"
        f"{period}，经{content['issuer']['organisation']}记录，参加志愿服务"
        f"{figures['sessions']}次，累计服务时长{hours(figures['total_minutes'])}小时"
        f"（其中签到记录{hours(figures['verified_minutes'])}小时，"
        f"补录{hours(figures['makeup_minutes'])}小时）。"
        "各服务平台时长如下："
    )


PLATFORM_HEADER = ("服务平台（5+X）", "服务时长（小时）", "服务次数")


def platform_rows(figures: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """One row per "5+X" platform (name, hours, sessions), then the total."""
    return [
        *(
            (
                CATEGORY_NAMES_ZH[category],
                hours(figures["by_category"].get(category, 0)),
                str(figures["sessions_by_category"].get(category, 0)),
            )
            for category in Category
        ),
        ("合计", hours(figures["total_minutes"]), str(figures["sessions"])),
    ]


def issuer_lines(content: Mapping[str, Any]) -> list[str]:
    """The issuer's lines, the organisation first (where the seal goes)."""
    issuer = content["issuer"]
    return [
        f"{issuer['organisation']}（盖章）",
        f"负责人：{issuer['person_in_charge']}",
        f"经办人：{issuer['handler']}",
        f"联系方式：{issuer['contact']}",
        f"出具日期：{chinese_date(content['issued_on'])}",
    ]


def ledger_line(content: Mapping[str, Any]) -> str:
    position, chain_hash = content["position"], content["chain_hash"]
    return f"账本位置 {position} · 链哈希指纹 {fingerprint(chain_hash)}"


NOTE = (
    "本证明依据《志愿服务条例》和《志愿服务记录与证明出具办法》出具，"
    "服务时长统计截至{as_of}，以账本位置{position}的记录为准。"
    "扫描二维码或使用 ledger verify-certificate 可核验真伪；加盖公章后有效。"
)


# --- writing ------------------------------------------------------------------


class _Page:
    """Drawing on one A4 page in the certificate's font."""

    INK = HexColor("#1a1a1a")
    MUTED = HexColor("#666666")
    RED = HexColor("#b22222")

    def __init__(self, path: Path, font_file: Path) -> None:
        self.font = f"Certificate-{font_file.stem}"
        registered = (
            pdfmetrics.getFont(self.font)
            if self.font in pdfmetrics.getRegisteredFontNames()
            else None
        )
        font = registered if isinstance(registered, TTFont) else None
        if font is None:
            font = TTFont(self.font, str(font_file))
            pdfmetrics.registerFont(font)
        self.glyphs: set[int] = set(font.face.charToGlyph)
        self.canvas = canvas.Canvas(
            str(path),
            pagesize=A4,
            pageCompression=1,
            # Not Helvetica: every font the PDF names is then embedded.
            initialFontName=self.font,  # type: ignore[arg-type]  # stubs say float
        )
        self.width, self.height = A4

    def missing(self, text: str) -> str:
        return "".join(
            sorted({c for c in text if not c.isspace() and ord(c) not in self.glyphs})
        )

    def text(
        self,
        x: float,
        y: float,
        text: str,
        size: float,
        colour: Color = INK,
        align: str = "left",
        bold: bool = False,
    ) -> None:
        page = self.canvas
        page.saveState()  # the text render mode outlives BT … ET otherwise
        page.setFillColor(colour)
        page.setStrokeColor(colour)
        page.setFont(self.font, size)
        page.setLineWidth(size / 30)
        width = pdfmetrics.stringWidth(text, self.font, size)
        start = {"left": x, "centre": x - width / 2, "right": x - width}[align]
        drawn = page.beginText(start, y)
        # A single weight ships: headings are drawn filled and stroked.
        drawn.setTextRenderMode(2 if bold else 0)
        drawn.textOut(text)
        page.drawText(drawn)
        page.restoreState()

    def width_of(self, text: str, size: float) -> float:
        return pdfmetrics.stringWidth(text, self.font, size)

    def wrapped(self, text: str, size: float, width: float) -> Iterator[str]:
        """``text`` broken into lines of at most ``width``, by character
        (Chinese has no spaces to break at), never starting a line with
        closing punctuation."""
        line = ""
        for character in text:
            if (
                line
                and pdfmetrics.stringWidth(line + character, self.font, size) > width
                and character not in "，。、；：）》”"
            ):
                yield line
                line = ""
            line += character
        if line:
            yield line


def write_certificate(
    content: Mapping[str, Any],
    pdf_path: Path,
    *,
    qr: str,
    seal_image: Path | None = None,
    font_file: Path = SHIPPED_FONT,
) -> Path:
    """Write the PDF and, beside it, the HTML; return the PDF's path.
    ``qr`` is what the QR code says (see ``qr_text``)."""
    embedded = base64.b64encode(orjson.dumps(content)).decode("ascii")
    page = _Page(pdf_path, font_file)
    shown = "".join(
        (
            statement(content),
            NOTE,
            ledger_line(content),
            content["certificate_number"],
            *issuer_lines(content),
        )
    )
    missing = page.missing(shown)
    if missing:
        raise CertificateError(
            "the certificate font {font} has no glyph for '{missing}': set "
            "LEDGER_CERTIFICATE_FONT to a TrueType font that has it",
            font=font_file.name,
            missing=missing,
        )
    _draw(page, content, qr, seal_image)
    page.canvas.setTitle(f"{TITLE} {content['certificate_number']}")
    page.canvas.setSubject(content["token"])
    page.canvas.setKeywords(embedded)
    page.canvas.setCreator("wenming-ledger")
    page.canvas.save()
    pdf_path.with_suffix(".html").write_text(
        certificate_html(content, qr, embedded), encoding="utf-8"
    )
    return pdf_path


def _draw(
    page: _Page, content: Mapping[str, Any], qr: str, seal_image: Path | None
) -> None:
    c, width, height = page.canvas, page.width, page.height
    left, right = 25 * mm, width - 25 * mm
    # A double frame, as on printed certificates.
    c.setStrokeColor(page.RED)
    c.setLineWidth(2)
    c.rect(12 * mm, 12 * mm, width - 24 * mm, height - 24 * mm)
    c.setLineWidth(0.6)
    c.rect(14.5 * mm, 14.5 * mm, width - 29 * mm, height - 29 * mm)

    top = height - 30 * mm
    page.text(
        right, top, f"证明编号：{content['certificate_number']}", 9, page.MUTED, "right"
    )
    page.text(width / 2, top - 24 * mm, TITLE, 28, align="centre", bold=True)
    page.text(
        width / 2,
        top - 33 * mm,
        "Certificate of Volunteer Service Record",
        10,
        page.MUTED,
        "centre",
    )

    # 兹证明 …, two characters indented, wide line spacing.
    y = top - 50 * mm
    size, leading = 13.5, 13.5 * 1.9
    for line in page.wrapped("\u3000\u3000" + statement(content), size, right - left):
        page.text(left, y, line, size)
        y -= leading

    # The platforms, as a table.
    y -= 1 * mm
    columns = (left + 10 * mm, left + 115 * mm, right - 10 * mm)
    row_height = 7.6 * mm
    figures = content["figures"]
    rows = [PLATFORM_HEADER, *platform_rows(figures)]
    c.setStrokeColor(page.MUTED)
    c.setLineWidth(0.5)
    c.line(left + 5 * mm, y + row_height * 0.65, right - 5 * mm, y + row_height * 0.65)
    for index, (name, value, count) in enumerate(rows):
        bold = index in (0, len(rows) - 1)
        page.text(columns[0], y, name, 11.5, bold=bold)
        page.text(columns[1], y, value, 11.5, align="right", bold=bold)
        page.text(columns[2], y, count, 11.5, align="right", bold=bold)
        c.line(
            left + 5 * mm, y - row_height * 0.35, right - 5 * mm, y - row_height * 0.35
        )
        y -= row_height
    y -= 3 * mm
    page.text(left, y, "\u3000\u3000特此证明。", 13.5)

    # The issuer, right-aligned, with the seal area over the organisation
    # and the date (where the stamp goes).
    lines = issuer_lines(content)
    block_left = right - max(page.width_of(line, 12) for line in lines)
    line_height = 8 * mm
    y_issuer = min(y - 14 * mm, 112 * mm)
    for index, line in enumerate(lines):
        page.text(block_left, y_issuer - index * line_height, line, 12, bold=index == 0)
    radius = 21 * mm
    seal_x = right - 28 * mm
    seal_y = y_issuer - 2 * line_height + 1.5 * mm
    if seal_image is not None:
        c.drawImage(
            str(seal_image),
            seal_x - radius,
            seal_y - radius,
            2 * radius,
            2 * radius,
            mask="auto",
            preserveAspectRatio=True,
        )
    else:
        c.setStrokeColor(page.RED)
        c.setLineWidth(0.6)
        c.setDash(3, 3)
        c.circle(seal_x, seal_y, radius)
        c.setDash()
        page.text(seal_x, seal_y - radius - 4 * mm, "（盖章处）", 8, page.RED, "centre")

    # The QR code, bottom left; the ledger's position beside it.
    code = segno.make(qr, error="m")
    side = 36 * mm
    module = side / code.symbol_size(border=0)[0]
    qr_bottom = 38 * mm
    c.setFillColor(page.INK)
    for row_index, row in enumerate(code.matrix):
        for column_index, dark in enumerate(row):
            if dark:
                c.rect(
                    left + column_index * module,
                    qr_bottom + side - (row_index + 1) * module,
                    module,
                    module,
                    stroke=0,
                    fill=1,
                )
    caption = left + side + 4 * mm
    page.text(caption, qr_bottom + 12 * mm, "扫码核验 Scan to verify", 9, page.MUTED)
    page.text(caption, qr_bottom + 6 * mm, ledger_line(content), 9, page.MUTED)

    # The footnote: what the figures rest on.
    note = NOTE.format(
        as_of=chinese_date(content["as_of"]), position=content["position"]
    )
    y_note = 29 * mm
    for line in page.wrapped(note, 8.5, right - left):
        page.text(left, y_note, line, 8.5, page.MUTED)
        y_note -= 4.5 * mm


def certificate_html(content: Mapping[str, Any], qr: str, embedded: str) -> str:
    """The certificate as a web page, with its QR code as SVG."""
    e = html.escape
    header = "".join(f"<th>{e(name)}</th>" for name in PLATFORM_HEADER)
    rows = "".join(
        f"<tr><td>{e(name)}</td><td>{value}</td><td>{count}</td></tr>"
        for name, value, count in platform_rows(content["figures"])
    )
    issuer = "".join(f"<p>{e(line)}</p>" for line in issuer_lines(content))
    svg = segno.make(qr, error="m").svg_inline(scale=2)
    note = NOTE.format(
        as_of=chinese_date(content["as_of"]), position=content["position"]
    )
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{TITLE} {e(content['certificate_number'])}</title><style>"
        "body{font-family:'Noto Sans CJK SC','Noto Sans SC',sans-serif;"
        "max-width:44em;margin:2em auto;padding:2em;border:3px double #b22222}"
        "h1{text-align:center;letter-spacing:.4em;margin-bottom:0}"
        ".en{text-align:center;color:#666;margin-top:.2em}.no{text-align:right;"
        "color:#666}.statement{text-indent:2em;line-height:2}"
        "table{border-collapse:collapse;margin:0 auto;width:80%}"
        "td,th{border-bottom:1px solid #999;padding:.3em 1em}"
        "tr:last-child td{font-weight:bold}"
        ".issuer{margin-left:55%}.foot{color:#666;font-size:.8em}</style>"
        f'</head><body><p class="no">证明编号：{e(content["certificate_number"])}</p>'
        f'<h1>{TITLE}</h1><p class="en">Certificate of Volunteer Service Record</p>'
        f'<p class="statement">{e(statement(content))}</p>'
        f'<table><tr>{header}</tr>{rows}</table><p class="statement">特此证明。</p>'
        f'<div class="issuer">{issuer}</div>'
        f'<div class="qr">{svg}<p class="foot">扫码核验 Scan to verify</p></div>'
        f'<p class="foot">{e(ledger_line(content))}</p>'
        f'<p class="foot">{e(note)}</p>'
        f'<script type="application/json" id="ledger-certificate">"{embedded}"</script>'
        "</body></html>\n"
    )


# --- reading and checking -----------------------------------------------------------


def read_certificate(path: Path) -> dict[str, Any]:
    """The signed content embedded in a certificate (PDF or HTML)."""
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        try:
            metadata = PdfReader(path).metadata
            keywords = metadata.get("/Keywords") if metadata else None
        except (PyPdfError, ValueError, OSError):
            keywords = None
        found: str | bytes | None = keywords if isinstance(keywords, str) else None
    else:
        matched = re.search(rb'id="ledger-certificate">"([A-Za-z0-9+/=]+)"', data)
        found = matched.group(1) if matched else None
    if not found:
        raise CertificateError("{path} carries no ledger certificate", path=path)
    try:
        content = orjson.loads(base64.b64decode(found, validate=True))
    except (ValueError, binascii.Error):
        raise CertificateError(
            "{path} carries an unreadable certificate", path=path
        ) from None
    if not isinstance(content, dict):
        raise CertificateError("{path} carries an unreadable certificate", path=path)
    return content


def printed_text(path: Path) -> str:
    """What a reader sees on the certificate, without whitespace."""
    data = path.read_bytes()
    if data.startswith(b"%PDF"):
        try:
            text = "".join(page.extract_text() for page in PdfReader(path).pages)
        except (PyPdfError, ValueError, OSError):
            text = ""
    else:
        body = re.sub(rb"<script.*?</script>|<svg.*?</svg>", b"", data, flags=re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", body.decode("utf-8", "replace")))
    return re.sub(r"\s+", "", text)


def verify_document(path: Path, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The certificate in ``path``, checked with the public key alone: its
    content's signature, its token's, that they agree, and that the page
    prints what was signed. Raises ``CertificateError`` saying why not."""
    content = read_certificate(path)
    try:
        signature = bytes.fromhex(content["signature"])
        public_key.verify(signature, _signed_bytes(content))
    except (InvalidSignature, ValueError, KeyError, TypeError):
        signer = content.get("key_id", "?")
        if signer != key_id(public_key):
            raise CertificateError(
                "the certificate's signature is not by this key (signed by key id "
                "{signer}, not {key})",
                signer=str(signer)[:TOKEN_KEY_ID_LENGTH],
                key=key_id(public_key)[:TOKEN_KEY_ID_LENGTH],
            ) from None
        raise CertificateError(
            "the certificate's signature does not verify: its content was altered"
        ) from None
    token = CertificateToken.decode(str(content.get("token", "")))
    if token.verdict(public_key) is not Verdict.VALID:
        raise CertificateError("the QR code's token signature does not verify")
    if token_of(content).payload() != token.payload():
        raise CertificateError("the QR code's token is not this certificate's")
    printed = printed_text(path)
    figures = content["figures"]
    for label, expected in (
        (Message("certificate number"), content["certificate_number"]),
        (Message("volunteer number"), content["volunteer_id"]),
        (Message("total hours"), f"累计服务时长{hours(figures['total_minutes'])}小时"),
        (Message("ledger position"), f"账本位置{content['position']}"),
    ):
        if re.sub(r"\s+", "", str(expected)) not in printed:
            raise CertificateError(
                "the page does not print the signed {label} ({expected}): "
                "the document was altered",
                label=label,
                expected=expected,
            )
    return content


@dataclass(frozen=True)
class LedgerToday:
    """What the ledger says today about a certificate's figures."""

    chain_hash: str  # at the certificate's position
    figures_then: dict[str, Any]  # at the certificate's position
    figures_now: dict[str, Any]  # at the latest position
    position_now: int

    def problem(
        self, chain_hash: str, position: int, figures: Mapping[str, Any]
    ) -> Message | None:
        """Why the ledger does not agree with what was certified, if it does not."""
        if self.chain_hash != chain_hash:
            return Message(
                "the ledger's chain hash at position {position} is not the "
                "certificate's: this ledger was rewritten, or is another one",
                position=position,
            )
        differing = {
            name: (value, self.figures_then.get(name))
            for name, value in figures.items()
            if self.figures_then.get(name) != value
        }
        if differing:
            return Message(
                "the ledger's figures at position {position} differ: {figures}",
                position=position,
                figures=", ".join(
                    translate(
                        "{name} {ledger} (certificate: {certified})",
                        {"name": name, "ledger": ledger, "certified": certified},
                    )
                    for name, (certified, ledger) in differing.items()
                ),
            )
        return None

    def corrected_minutes(self) -> int:
        """How many minutes the total changed by since the certificate."""
        return int(self.figures_now["total_minutes"]) - int(
            self.figures_then["total_minutes"]
        )


def read_ledger_today(
    conn: Connection,
    version: int,
    volunteer_id: str,
    as_of: str,
    position: int,
    live_position: int,
) -> LedgerToday:
    """The ledger's figures for a certificate's volunteer and day, at the
    certificate's position and today."""
    day = date.fromisoformat(as_of)
    return LedgerToday(
        chain_hash=chain_hash_at(conn, position),
        figures_then=certificate_figures(conn, version, volunteer_id, day, position),
        figures_now=certificate_figures(
            conn, version, volunteer_id, day, live_position
        ),
        position_now=live_position,
    )


# --- the verification page a QR code leads to ------------------------------------

VERDICT_BANNERS = {
    Verdict.VALID: ("ok", "✔ 证明有效：核验码经本账本的签名密钥核验通过"),
    Verdict.TAMPERED: ("bad", "✘ 证明无效：核验码的内容与签名不符，已被篡改"),
    Verdict.UNKNOWN_SIGNATURE: (
        "unknown",
        "？ 无法确认：核验码不是由本账本的签名密钥签发的",
    ),
}


def verification_page(
    token: CertificateToken,
    verdict: Verdict,
    today: LedgerToday | None,
) -> str:
    """A Chinese page with the decoded certificate and the verdict, for a
    school or employer who scanned its QR code. It shows no personal data:
    the token carries none. What a token claims is shown only when this
    ledger's key signed it: a forged token's figures are not repeated under
    the ledger's name."""
    e = html.escape
    tone, banner = VERDICT_BANNERS[verdict]
    rows = [
        ("证明编号", token.certificate_number),
        ("志愿者编号", token.volunteer_id),
        ("累计服务时长", f"{hours(token.total_minutes)} 小时"),
        ("统计截至", chinese_date(token.as_of)),
        ("账本位置", str(token.position)),
        ("链哈希指纹", fingerprint(token.chain_hash)),
    ]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    if verdict is not Verdict.VALID:
        table = (
            "<tr><td>核验码所载内容未经本账本签名，不予显示；请勿采信该证明。"
            "The token's content is not signed by this ledger and is not shown."
            "</td></tr>"
        )
    ledger = ""
    if today is not None:
        problem = today.problem(
            token.chain_hash, token.position, {"total_minutes": token.total_minutes}
        )
        if problem is not None:
            tone = "bad"
            with use_language(CHINESE):  # the page is in Chinese
                ledger = f"账本核对：与账本不符（{e(str(problem))}）"
        else:
            ledger = f"账本核对：与账本位置 {token.position} 处的记录一致。"
            corrected = today.corrected_minutes()
            if corrected:
                ledger += (
                    f"此后该志愿者截至{chinese_date(token.as_of)}的服务时长已更正为 "
                    f"{hours(today.figures_now['total_minutes'])} 小时"
                    f"（账本位置 {today.position_now}）。"
                )
            else:
                ledger += "至今未有更正。"
        ledger = f'<p class="ledger">{ledger}</p>'
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="verdict" content="{verdict.value}">'
        f"<title>{TITLE}核验</title><style>"
        "body{font-family:'Noto Sans CJK SC','Noto Sans SC',sans-serif;"
        "max-width:36em;margin:1.5em auto;padding:0 1em;line-height:1.6}"
        ".verdict{padding:.8em 1em;border-radius:.4em;font-weight:bold}"
        ".ok{background:#e6f4ea;color:#1e6b34}.bad{background:#fce8e6;color:#a50e0e}"
        ".unknown{background:#fef7e0;color:#7a5300}"
        "th{text-align:left;font-weight:normal;color:#555;padding-right:1.5em}"
        ".note{color:#666;font-size:.85em}</style></head><body>"
        f"<h1>{TITLE}核验</h1>"
        f'<p class="verdict {tone}">{e(banner)}</p>'
        f"<table>{table}</table>{ledger}"
        '<p class="note">本页不显示姓名和证件号码：请与纸质证明上的证明编号、'
        "志愿者编号和服务时长逐项核对。Verification of a volunteer service "
        "record certificate.</p></body></html>\n"
    )


def unreadable_token_page(reason: str) -> str:
    """The page for a QR code or link that holds no certificate token."""
    return (
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{TITLE}核验</title></head><body><h1>{TITLE}核验</h1>"
        f"<p>无法识别的核验码：{html.escape(reason)}</p></body></html>\n"
    )
