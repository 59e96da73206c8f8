"""志愿服务记录证明: a volunteer's service record certificate, as HTML and PDF.

It carries the fields of 民政部令第67号 (name, ID type and masked number,
volunteer number, service hours and content, issuing organisation, its
person in charge, handler and contact, certificate number, issue date) and
the ledger position and chain hash it reflects. A machine-readable copy of
the figures, signed with the ledger's Ed25519 key, travels inside both files
(a JSON script in the HTML, the PDF's keywords), so ``verify_certificate``
can check a certificate against the ledger: the signature, the chain hash at
its position, and the figures recomputed as of its date at its position.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from reportlab.lib.pagesizes import A4
from reportlab.lib.utils import simpleSplit
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas
from sqlalchemy.engine import Connection

from ledger.application.ledger import Ledger
from ledger.domain.activities import CATEGORY_NAMES_ZH
from ledger.domain.common import CHINA_STANDARD_TIME
from ledger.domain.privacy import mask_id_number
from ledger.domain.volunteers import Volunteer
from ledger.projections.volunteer_hours import entries_table
from ledger.store.event_store import chain_hash_at
from ledger.store.integrity import key_id

# A CJK font embedded in the PDF, so Chinese renders in every reader. The
# first one found is used; without any, the Adobe CID font STSong-Light is
# named instead (not embedded: readers without Adobe's Asian fonts show boxes).
CJK_FONT_FILES = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),  # Debian fonts-wqy-microhei
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),  # Debian fonts-wqy-zenhei
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),  # fonts-noto-cjk
)
FALLBACK_CJK_FONT = "STSong-Light"


def cjk_font(font_file: Path | None = None) -> str:
    """Register the CJK font to draw with and return its name."""
    candidates = (font_file,) if font_file else CJK_FONT_FILES
    for path in candidates:
        if path is not None and path.exists():
            name = f"CJK-{path.stem}"
            if name not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont(name, str(path), subfontIndex=0))
            return name
    if FALLBACK_CJK_FONT not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_CJK_FONT))
    return FALLBACK_CJK_FONT


@dataclass(frozen=True)
class Issuer:
    """Who issues certificates (settings: LEDGER_CERTIFICATE_*)."""

    organisation: str
    person_in_charge: str
    handler: str
    contact: str


class CertificateError(ValueError):
    """A certificate does not match the ledger."""


def certificate_figures(
    conn: Connection, version: int, volunteer_id: str, as_of: date, position: int
) -> dict[str, Any]:
    """Approved minutes of service dated up to ``as_of``, known at ``position``."""
    t = entries_table.c
    rows = conn.execute(
        sa.select(t.kind, t.category, sa.func.sum(t.minutes), sa.func.sum(t.sessions))
        .where(
            t.version == version,
            t.volunteer_id == volunteer_id,
            t.position <= position,
            t.service_date <= as_of.isoformat(),
        )
        .group_by(t.kind, t.category)
    )
    verified = makeup = sessions = 0
    by_category: dict[str, int] = {}
    for kind, category, minutes, counted in rows:
        minutes, counted = int(minutes or 0), int(counted or 0)
        if kind == "verified":
            verified += minutes
        else:
            makeup += minutes
        sessions += counted
        if minutes:
            by_category[category] = by_category.get(category, 0) + minutes
    return {
        "verified_minutes": verified,
        "makeup_minutes": makeup,
        "total_minutes": verified + makeup,
        "sessions": sessions,
        "by_category": dict(sorted(by_category.items())),
    }


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
    """The signed content of a certificate."""
    volunteer = ledger.load_aggregates([Volunteer.create_id(volunteer_id)]).get(
        Volunteer.create_id(volunteer_id)
    )
    if not isinstance(volunteer, Volunteer):
        raise LookupError(f"volunteer '{volunteer_id}' is not registered")
    content = {
        "volunteer_id": volunteer_id,
        "name": volunteer.name,
        "id_type": "居民身份证",
        "id_number": mask_id_number(volunteer.id_number),
        "as_of": as_of.isoformat(),
        "position": position,
        "chain_hash": chain_hash_at(conn, position),
        "figures": certificate_figures(conn, version, volunteer_id, as_of, position),
        "issuer": issuer.__dict__,
        "issued_on": datetime.now(CHINA_STANDARD_TIME).date().isoformat(),
    }
    digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
    content["certificate_number"] = "WMSJ-" + digest.hexdigest()[:16].upper()
    content["key_id"] = key_id(key.public_key())
    content["signature"] = key.sign(_signed_bytes(content)).hex()
    return content


def _signed_bytes(content: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in content.items() if k != "signature"}
    return orjson.dumps(unsigned, option=orjson.OPT_SORT_KEYS)


def _lines(content: dict[str, Any]) -> list[tuple[str, str]]:
    figures = content["figures"]
    issuer = content["issuer"]
    services = "、".join(
        f"{CATEGORY_NAMES_ZH.get(category, category)} {minutes / 60:.1f} 小时"
        for category, minutes in figures["by_category"].items()
    )
    return [
        ("姓名 Name", content["name"]),
        ("证件类型 ID type", content["id_type"]),
        ("证件号码 ID number", content["id_number"]),
        ("志愿者编号 Volunteer number", content["volunteer_id"]),
        (
            "服务时长 Service hours",
            f"{figures['total_minutes'] / 60:.1f} 小时（签到 "
            f"{figures['verified_minutes'] / 60:.1f}，补录 "
            f"{figures['makeup_minutes'] / 60:.1f}；{figures['sessions']} 次）",
        ),
        ("服务内容 Service", services or "—"),
        ("统计截至 Service up to", content["as_of"]),
        ("出具组织 Issuing organisation", issuer["organisation"]),
        ("负责人 Person in charge", issuer["person_in_charge"]),
        ("经办人 Handler", issuer["handler"]),
        ("联系方式 Contact", issuer["contact"]),
        ("证明编号 Certificate number", content["certificate_number"]),
        ("出具日期 Issue date", content["issued_on"]),
        ("账本位置 Ledger position", str(content["position"])),
        ("链哈希 Chain hash", content["chain_hash"]),
    ]


def write_certificate(
    content: dict[str, Any], pdf_path: Path, font_file: Path | None = None
) -> Path:
    """Write the PDF and, beside it, the HTML; return the PDF's path."""
    font = cjk_font(font_file)
    embedded = base64.b64encode(orjson.dumps(content)).decode("ascii")
    rows = "\n".join(
        f"<tr><th>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
        for label, value in _lines(content)
    )
    pdf_path.with_suffix(".html").write_text(
        '<!doctype html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        "<title>志愿服务记录证明</title>"
        "<style>body{font-family:serif;max-width:40em;margin:3em auto}"
        "th{text-align:left;padding-right:2em;font-weight:normal;color:#555}"
        "td{padding:.3em 0}h1{text-align:center;letter-spacing:.3em}</style>"
        "</head><body><h1>志愿服务记录证明</h1>"
        f"<table>{rows}</table>"
        f'<script type="application/json" id="ledger-certificate">"{embedded}"</script>'
        "</body></html>\n",
        encoding="utf-8",
    )
    page = canvas.Canvas(str(pdf_path), pagesize=A4)
    page.setTitle("志愿服务记录证明")
    page.setKeywords(embedded)
    width, height = A4
    page.setFont(font, 22)
    page.drawCentredString(width / 2, height - 90, "志愿服务记录证明")
    y = height - 150
    for label, value in _lines(content):
        page.setFont(font, 10)
        page.drawString(60, y, label)
        size = 8 if label.startswith("链哈希") else 11
        for line in simpleSplit(value, font, size, width - 230 - 50):
            page.setFont(font, size)
            page.drawString(230, y, line)
            y -= size + 5
        y -= 26 - size - 5
    page.save()
    return pdf_path


def read_certificate(path: Path) -> dict[str, Any]:
    """The signed content embedded in a certificate (PDF or HTML)."""
    data = path.read_bytes()
    pattern = (
        rb"/Keywords \(([A-Za-z0-9+/=]+)\)"
        if data.startswith(b"%PDF")
        else rb'id="ledger-certificate">"([A-Za-z0-9+/=]+)"'
    )
    found = re.search(pattern, data)
    if found is None:
        raise CertificateError(f"{path} carries no ledger certificate")
    try:
        content = orjson.loads(base64.b64decode(found.group(1)))
    except ValueError:
        raise CertificateError(f"{path} carries an unreadable certificate") from None
    if not isinstance(content, dict):
        raise CertificateError(f"{path} carries an unreadable certificate")
    return content


def verify_certificate(
    content: dict[str, Any],
    conn: Connection,
    version: int,
    public_key: Ed25519PublicKey,
) -> None:
    """Raise ``CertificateError`` unless the certificate matches the ledger."""
    try:
        public_key.verify(bytes.fromhex(content["signature"]), _signed_bytes(content))
    except (InvalidSignature, ValueError, KeyError):
        raise CertificateError("the certificate's signature does not verify") from None
    position = int(content["position"])
    if chain_hash_at(conn, position) != content["chain_hash"]:
        raise CertificateError(
            f"the ledger's chain hash at position {position} is not the certificate's"
        )
    figures = certificate_figures(
        conn,
        version,
        content["volunteer_id"],
        date.fromisoformat(content["as_of"]),
        position,
    )
    if figures != content["figures"]:
        raise CertificateError(
            f"the ledger's figures as of {content['as_of']} at position {position} "
            f"are {figures}, not the certificate's {content['figures']}"
        )
