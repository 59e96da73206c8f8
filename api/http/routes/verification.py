"""``GET /verify?token=`` — the page a certificate's QR code leads to: the
decoded certificate and the verdict, in Chinese, for anyone (no key). A
string that is no token is refused: a page for a browser, else a problem."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ledger.api.http.problems import PROBLEM_RESPONSES, ProblemError
from ledger.domain.messages import CHINESE, use_language
from ledger.engine import ProjectionEngine
from ledger.projections.registry import VOLUNTEER_HOURS
from ledger.services.certificates import (
    CertificateError,
    CertificateToken,
    Verdict,
    read_ledger_today,
    unreadable_token_page,
    verification_page,
)
from ledger.settings import LedgerSettings
from ledger.store.event_store import Database
from ledger.store.integrity import own_public_key

router = APIRouter(tags=["certificates"], responses=PROBLEM_RESPONSES)


@router.get("/verify", response_class=HTMLResponse)
def verify_certificate_token(
    request: Request,
    token: Annotated[
        str, Query(description="The token a certificate's QR code holds.")
    ],
) -> HTMLResponse:
    """志愿服务记录证明核验: the certificate a QR token stands for, and whether
    the ledger's key signed it and the ledger still agrees."""
    try:
        decoded = CertificateToken.decode(token)
    except CertificateError as error:
        # A browser (someone who scanned a code) gets a page; a program, the
        # problem detail every other refusal of the API is.
        if "text/html" in request.headers.get("accept", ""):
            with use_language(CHINESE):  # the page is in Chinese
                page = unreadable_token_page(str(error))
            return HTMLResponse(page, status_code=400)
        raise ProblemError(
            400, "invalid_token", "无法识别的核验码 Not a certificate token", str(error)
        ) from None
    settings: LedgerSettings = request.app.state.settings
    key = own_public_key(settings.database_url, settings.key_directory)
    verdict = decoded.verdict(key) if key is not None else Verdict.UNKNOWN_SIGNATURE
    today = None
    if verdict is Verdict.VALID:
        database: Database = request.app.state.ledger.database
        with database.reading() as conn:
            live = ProjectionEngine.live_state(conn, VOLUNTEER_HOURS.name)
            if live is not None:
                today = read_ledger_today(
                    conn,
                    live.version,
                    decoded.volunteer_id,
                    decoded.as_of,
                    decoded.position,
                    live.position,
                )
    return HTMLResponse(verification_page(decoded, verdict, today))
