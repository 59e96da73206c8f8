"""The dashboard page for 文明办 staff (CONTRACT §5, ``GET /``): one Chinese
page and its scripts, styles and vendored ECharts, all served from this
package so that the page works on an intranet with no outside URL.

The page needs no key to load; it reads the public API with a key the user
enters, which the browser keeps for the session only.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
STATIC_PATH = "/dashboard/static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def get_dashboard() -> FileResponse:
    """The dashboard page."""
    return FileResponse(STATIC / "index.html", media_type="text/html")


def mount_dashboard(app: FastAPI) -> None:
    """Serve the page at ``/`` and its assets under ``STATIC_PATH``."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="dashboard")
