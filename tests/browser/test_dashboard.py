"""The dashboard page driven in headless Chromium (Debian's ``chromium`` and
``chromium-driver``, through selenium) against ``ledger serve`` on a small
demo city: it loads from the server alone with no console errors, shows the
API's figures, drills down the venue tree, shows what the ledger knew at a
chosen position or time, shows the last verification, and refreshes as
events land. Each view is photographed: into docs/screenshots/ for
docs/dashboard.md when ``LEDGER_WRITE_SCREENSHOTS=1`` (run it so after
changing the page, and look at them), otherwise into a temporary folder, so
that a test run leaves the checkout as it found it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.http_helpers import body
from tests.e2e.test_served import LEDGER, finished, last_line, ledger_cli, serving
from tests.factories import CST

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
DOCUMENTED_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
SCREENSHOTS = (
    DOCUMENTED_SCREENSHOTS
    if os.environ.get("LEDGER_WRITE_SCREENSHOTS") == "1"
    else Path(tempfile.mkdtemp(prefix="ledger-screenshots-"))
)
DEMO_SCALE = "0.002"
WAIT_SECONDS = 30


@dataclass
class Served:
    """A served demo ledger: its URL, database, folder and keys by role."""

    base_url: str
    database_url: str
    folder: Path
    keys: dict[str, str]

    def read(self, path: str, role: str = "dashboard", **params: Any) -> Any:
        response = httpx.get(
            f"{self.base_url}{path}",
            params=params,
            headers={"Authorization": f"Bearer {self.keys[role]}"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``ledger demo`` at a small scale on SQLite, served by ``ledger serve``."""
    if not LEDGER.exists():
        pytest.skip(f"the ledger CLI is not installed at {LEDGER}")
    folder = tmp_path_factory.mktemp("served-demo")
    url = f"sqlite:///{folder / 'ledger.db'}"
    finished(ledger_cli(url, "demo", "--scale", DEMO_SCALE, cwd=folder))
    keys = {
        role: last_line(ledger_cli(url, "keys", "create", "--role", role, cwd=folder))
        for role in ("dashboard", "auditor", "admin")
    }
    with serving(url, folder) as base_url:
        yield Served(base_url, url, folder, keys)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    """Headless Chromium at the size of a big screen, in China Standard Time,
    keeping the console's messages."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip(
            "Chromium is not installed: apt-get install -y chromium chromium-driver"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1920,1080",
        "--lang=zh-CN",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    chinese = {"TZ": "Asia/Shanghai", "LANGUAGE": "zh_CN", "LANG": "zh_CN.UTF-8"}
    service = Service(str(CHROMEDRIVER), env={**os.environ, **chinese})
    driver = webdriver.Chrome(options=options, service=service)
    # The viewport of a big screen (a window's size includes its frame).
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": 1920, "height": 1080, "deviceScaleFactor": 1, "mobile": False},
    )
    try:
        yield driver
    finally:
        driver.quit()


# --- what the page shows, and what it should show ----------------------------


def grouped(value: int | Decimal) -> str:
    return f"{value:,}"


def to_tenths(value: float) -> Decimal:
    """As the browser's ``toLocaleString`` rounds a number to one decimal:
    its shortest decimal form (``repr``), rounded half away from zero."""
    return Decimal(repr(value)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def hours(minutes: int) -> str:
    return grouped(to_tenths(minutes / 60))


def percent(share: float | None) -> str:
    return "—" if share is None else f"{to_tenths(share * 100)}%"


def expected_figures(
    activity: dict[str, Any], orders: dict[str, Any]
) -> dict[str, str]:
    """The figures the page should show for a venue's two reads."""
    counted = orders["posted"] - orders["withdrawn"]
    return {
        "activities": grouped(activity["activities"]),
        "sessions": grouped(activity["sessions"]),
        "volunteers": grouped(activity["volunteers"]),
        "hours": hours(activity["volunteer_minutes"]),
        "rate": percent(orders["rate"]),
        "rate-counts": f"已销单 {grouped(orders['fulfilled'])} / 有效点单 "
        f"{grouped(counted)}",
        "satisfaction": percent(orders["satisfaction"]),
        "ratings": f"{grouped(orders['ratings'])} 条评价",
    }


def figures_on_screen(driver: WebDriver) -> dict[str, str]:
    return {
        str(element.get_attribute("data-figure")): element.text
        for element in driver.find_elements(By.CSS_SELECTOR, "[data-figure]")
    }


def text_of(driver: WebDriver, selector: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, selector).text)


def wait_until(driver: WebDriver, condition: Callable[[WebDriver], Any]) -> Any:
    return WebDriverWait(driver, WAIT_SECONDS, poll_frequency=0.1).until(condition)


def drawn(driver: WebDriver, venue_id: str, position: int) -> None:
    """Wait until every panel shows ``venue_id`` as of ``position``."""

    def shown(d: WebDriver) -> bool:
        page = d.find_element(By.TAG_NAME, "body")
        return bool(
            page.get_attribute("data-venue") == venue_id
            and page.get_attribute("data-position") == str(position)
        )

    wait_until(driver, shown)


def asked_for_a_key(driver: WebDriver, served: Served) -> Any:
    """Open the page afresh, with no key in the session: the key field."""
    driver.get(served.base_url)
    driver.execute_script("sessionStorage.clear()")
    driver.refresh()
    key_input = wait_until(driver, lambda d: d.find_element(By.ID, "key-input"))
    wait_until(driver, lambda d: key_input.is_displayed())
    return key_input


def open_dashboard(driver: WebDriver, served: Served, role: str = "dashboard") -> Any:
    """Open the page afresh, enter the key of ``role``, and wait for the
    city's figures; the centre's live activity read."""
    asked_for_a_key(driver, served).send_keys(served.keys[role], Keys.ENTER)
    centre = served.read("/venues")["children"][0]
    activity = served.read(f"/venues/{centre['venue_id']}/activity")
    drawn(driver, centre["venue_id"], activity["position"])
    return activity


def screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    # No field the test typed into stays highlighted in the picture.
    driver.execute_script("document.activeElement.blur()")
    assert driver.save_screenshot(str(SCREENSHOTS / f"dashboard-{name}.png"))


def assert_venue_shown_as_the_api_says(
    driver: WebDriver, served: Served, venue_id: str, **as_of: Any
) -> dict[str, Any]:
    activity = served.read(f"/venues/{venue_id}/activity", **as_of)
    orders = served.read(f"/venues/{venue_id}/fulfilment", **as_of)
    drawn(driver, venue_id, activity["position"])
    assert figures_on_screen(driver) == expected_figures(activity, orders)
    cited = text_of(driver, '[data-cite="figures"]')
    assert f"#{grouped(activity['position'])}" in cited
    assert activity["chain_hash"][:12] in cited
    children = served.read(f"/venues/{venue_id}/children", **as_of)["children"]
    rows = driver.find_elements(By.CSS_SELECTOR, "#children tbody tr[data-venue]")
    assert [row.get_attribute("data-venue") for row in rows] == [
        child["venue_id"] for child in children
    ]
    for row, child in zip(rows, children, strict=True):
        own = served.read(f"/venues/{child['venue_id']}/activity", **as_of)
        cells = [cell.text for cell in row.find_elements(By.TAG_NAME, "td")]
        assert cells[0] == child["name"]
        assert cells[2:] == [
            grouped(own["activities"]),
            grouped(own["sessions"]),
            hours(own["volunteer_minutes"]),
        ]
    return activity


# --- the tests ----------------------------------------------------------------


def test_the_page_loads_from_the_server_alone_with_no_console_errors(
    browser: WebDriver, served: Served
) -> None:
    browser.get_log("browser")  # what earlier tests left in the console
    asked_for_a_key(browser, served)
    screenshot(browser, "key")
    open_dashboard(browser, served)
    screenshot(browser, "city")
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert loaded, "the page loaded no assets"
    assert all(url.startswith(served.base_url) for url in loaded), loaded
    assert browser.execute_script("return typeof echarts.init") == "function"


def test_an_unknown_key_is_asked_for_again_with_the_reason(
    browser: WebDriver, served: Served
) -> None:
    key_input = asked_for_a_key(browser, served)
    key_input.send_keys("wml_not-a-key-anyone-was-given", Keys.ENTER)
    wait_until(browser, lambda d: text_of(d, "#key-error") == "密钥无效，请重新输入。")
    assert key_input.is_displayed()
    assert text_of(browser, '[data-figure="activities"]') == "—"


def test_the_figures_on_screen_equal_the_api_answers(
    browser: WebDriver, served: Served
) -> None:
    open_dashboard(browser, served)
    centre = served.read("/venues")["children"][0]["venue_id"]
    assert_venue_shown_as_the_api_says(browser, served, centre)
    board = served.read("/leaderboards/hours", limit=10)
    rows = browser.find_elements(By.CSS_SELECTOR, "#leaders tbody tr")
    shown = [
        [cell.text for cell in row.find_elements(By.TAG_NAME, "td")] for row in rows
    ]
    assert shown == [
        [
            str(rank),
            leader["volunteer_id"],
            "★" * leader["stars"] or "—",
            hours(leader["total_minutes"]),
            grouped(leader["sessions"]),
        ]
        for rank, leader in enumerate(board["leaders"], start=1)
    ]
    assert f"有服务记录 {grouped(board['volunteers_with_service'])} 人" in text_of(
        browser, '[data-cite="leaderboard"]'
    )


def test_drilling_down_the_venue_tree_shows_each_venue_as_the_api_says(
    browser: WebDriver, served: Served
) -> None:
    open_dashboard(browser, served)
    venue = served.read("/venues")["children"][0]
    trail = [venue["venue_id"]]
    for view in ("institute", "station", "point"):
        children = served.read(f"/venues/{venue['venue_id']}/children")["children"]
        # The busiest child: the view then has something to show.
        venue = max(
            children,
            key=lambda c: served.read(f"/venues/{c['venue_id']}/activity")["sessions"],
        )
        assert venue["level"] == view
        browser.find_element(
            By.CSS_SELECTOR, f'#children tr[data-venue="{venue["venue_id"]}"] a'
        ).click()
        assert_venue_shown_as_the_api_says(browser, served, venue["venue_id"])
        trail.append(venue["venue_id"])
        links = browser.find_elements(By.CSS_SELECTOR, "#trail a")
        assert [link.get_attribute("data-venue") for link in links] == trail
        screenshot(browser, view)
    # Back up the trail to the centre in one click.
    browser.find_elements(By.CSS_SELECTOR, "#trail a")[0].click()
    assert_venue_shown_as_the_api_says(browser, served, trail[0])


def test_the_as_of_control_shows_what_the_ledger_knew_at_a_position(
    browser: WebDriver, served: Served
) -> None:
    live = open_dashboard(browser, served)
    centre = live["venue_id"]
    then = live["position"] * 2 // 3
    field = browser.find_element(By.ID, "as-of-position")
    field.clear()
    field.send_keys(str(then), Keys.TAB)
    past = assert_venue_shown_as_the_api_says(browser, served, centre, as_of=then)
    assert past["position"] == then
    assert past["activities"] < live["activities"]
    assert text_of(browser, "#mode") == f"历史 · 位置 #{grouped(then)}"
    screenshot(browser, "as-of")
    # Drilling down keeps the chosen position.
    institute = served.read("/venues", as_of=then)["children"][0]["venue_id"]
    first = served.read(f"/venues/{institute}/children", as_of=then)["children"][0]
    browser.find_element(
        By.CSS_SELECTOR, f'#children tr[data-venue="{first["venue_id"]}"] a'
    ).click()
    assert_venue_shown_as_the_api_says(browser, served, first["venue_id"], as_of=then)
    # The slider moves it too; 回到实时 returns to the latest state.
    browser.find_elements(By.CSS_SELECTOR, "#trail a")[0].click()
    browser.execute_script(
        "const r = document.getElementById('as-of-range');"
        "r.value = arguments[0]; r.dispatchEvent(new Event('change'));",
        then // 2,
    )
    assert_venue_shown_as_the_api_says(browser, served, centre, as_of=then // 2)
    browser.find_element(By.ID, "as-of-live").click()
    assert_venue_shown_as_the_api_says(browser, served, centre)
    assert text_of(browser, "#mode") == "实时"


def test_the_as_of_control_shows_what_the_ledger_knew_at_a_time(
    browser: WebDriver, served: Served
) -> None:
    live = open_dashboard(browser, served)
    middle = live["position"] // 2
    event = served.read("/audit/events", "auditor", after=middle - 1, limit=1)
    recorded = datetime.fromisoformat(event["events"][0]["recorded_at"])
    moment = recorded.astimezone(CST).replace(microsecond=0)
    browser.execute_script(
        "document.getElementById('as-of-time').value = arguments[0]",
        moment.strftime("%Y-%m-%dT%H:%M:%S"),
    )
    browser.find_element(By.ID, "as-of-apply-time").click()
    assert_venue_shown_as_the_api_says(
        browser, served, live["venue_id"], as_of=moment.isoformat()
    )


def test_the_last_verification_shows_its_result_position_and_chain_hash(
    browser: WebDriver, served: Served
) -> None:
    open_dashboard(browser, served, role="auditor")
    browser.find_element(By.ID, "verify-run").click()
    result = browser.find_element(By.ID, "verify-result")
    wait_until(browser, lambda d: result.get_attribute("data-verify") == "ok")
    verified = served.read("/audit/verify", "auditor")
    assert verified["ok"]
    assert f"位置 #{grouped(verified['position'])}" in result.text
    assert verified["chain_hash"][:12] in result.text
    assert result.text.startswith("通过")
    screenshot(browser, "verified")
    # The result stays for the browser session.
    browser.refresh()
    stays = browser.find_element(By.ID, "verify-result")
    wait_until(browser, lambda d: stays.get_attribute("data-verify") == "ok")


def test_a_dashboard_key_is_told_that_verifying_needs_an_auditor(
    browser: WebDriver, served: Served
) -> None:
    open_dashboard(browser, served)
    browser.find_element(By.ID, "verify-run").click()
    result = browser.find_element(By.ID, "verify-result")
    wait_until(browser, lambda d: result.get_attribute("data-verify") == "refused")
    assert result.text == "校验需审计员（auditor）密钥"


def test_the_figures_refresh_as_events_land(browser: WebDriver, served: Served) -> None:
    before = open_dashboard(browser, served)
    centre = before["venue_id"]
    # Given an activity published over HTTP and projected,
    now = datetime.now(CST).replace(microsecond=0)
    starts = now + timedelta(days=1)
    published = httpx.post(
        f"{served.base_url}/commands/publish_activity",
        json=body(
            "publish_activity",
            now,
            activity_id="A-LIVE",
            venue_id=centre,
            category="theory",
            title="新时代理论宣讲",
            starts_at=starts.isoformat(),
            ends_at=(starts + timedelta(hours=2)).isoformat(),
            capacity=30,
        ),
        headers={"Authorization": f"Bearer {served.keys['admin']}"},
    )
    assert published.status_code == 201, published.text
    finished(ledger_cli(served.database_url, "project", cwd=served.folder))
    # then the page shows it without being asked.
    after = assert_venue_shown_as_the_api_says(browser, served, centre)
    assert after["activities"] == before["activities"] + 1
    assert after["position"] == published.json()["last_position"]
