"""The dashboard page (CONTRACT §5, ``GET /``) as the server sends it: no key
needed to load it, Chinese, and every asset it names served by the server
itself, ECharts with its licence; the browser tests (tests/browser) drive it."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import pytest
from fastapi.testclient import TestClient

from ledger.api.http.app import create_app
from ledger.api.http.dashboard import STATIC
from ledger.settings import LedgerSettings

ASSET = re.compile(r'(?:src|href)="([^"]+)"')


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = LedgerSettings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        key_directory=tmp_path / "keys",
    )
    app = create_app(settings)
    with TestClient(app) as opened:
        yield opened
    app.state.ledger.database.dispose()
    app.state.reads.database.dispose()


def test_the_page_loads_without_a_key_and_speaks_chinese(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "志愿服务数据大屏" in response.text


def test_every_asset_the_page_names_is_served_by_the_server_itself(
    client: TestClient,
) -> None:
    page = client.get("/").text
    assets = [a for a in ASSET.findall(page) if not a.startswith("data:")]
    assert "/dashboard/static/vendor/echarts/echarts.min.js" in assets
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not on this server"
        assert client.get(asset).status_code == 200, asset
    # Nor does any of our own files reach elsewhere at run time.
    for own in ("index.html", "dashboard.js", "dashboard.css"):
        assert "://" not in (STATIC / own).read_text(encoding="utf-8"), own


def test_echarts_is_vendored_with_its_licence_and_notices(client: TestClient) -> None:
    script = client.get("/dashboard/static/vendor/echarts/echarts.min.js").text
    assert "Licensed to the Apache Software Foundation" in script[:2000]
    licence = client.get("/dashboard/static/vendor/echarts/LICENSE").text
    assert "Apache License" in licence
    notice = client.get("/dashboard/static/vendor/echarts/NOTICE").text
    assert "Apache ECharts" in notice
    # The bundle embeds ZRender (BSD-3-Clause) and parts of d3 (BSD-3-Clause).
    for embedded in ("LICENSE-zrender", "LICENSE-d3"):
        text = client.get(f"/dashboard/static/vendor/echarts/{embedded}").text
        assert "Redistribution and use in source and binary forms" in text


def test_the_page_is_no_part_of_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths
    assert not any(path.startswith("/dashboard") for path in paths)


def packaged(path: PurePosixPath, pattern: str) -> bool:
    """As setuptools' glob matches a package-data pattern: part by part."""
    parts = PurePosixPath(pattern).parts
    return len(path.parts) == len(parts) and path.match(pattern)


def test_a_wheel_carries_every_file_of_the_page() -> None:
    """Each file under the page's folder matches a ``package-data`` pattern
    of pyproject.toml: an installed server serves the whole page."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    package_data = tomllib.loads(pyproject.read_text())["tool"]["setuptools"][
        "package-data"
    ]
    patterns = package_data["ledger.api.http.dashboard"]
    files = [f for f in STATIC.rglob("*") if f.is_file()]
    assert len(files) >= 8
    for file in files:
        path = PurePosixPath(file.relative_to(STATIC.parent).as_posix())
        assert any(packaged(path, pattern) for pattern in patterns), path
