"""The dashboard in Debian's headless chromium: an alarm appears live, acknowledge works."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.api.auth import Role
from tests.api.conftest import SecuredGateway
from tests.e2e.harness import now_ms, publish_all
from tests.servers import MosquittoServer

playwright_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
DOCS_SHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium", pytrace=False)
    with playwright_api.sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield ctx.new_page()
        finally:
            ctx.close()


def test_incident_appears_live_and_is_acknowledged_from_the_dashboard(
    secured: SecuredGateway, mosquitto: MosquittoServer, page: object, tmp_path: Path
) -> None:
    p: playwright_api.Page = page  # type: ignore[assignment]
    token = secured.tokens[Role.FIRE_TEAM]
    p.goto(f"{secured.url}/#token={token}")
    p.wait_for_selector('#conn[data-state="live"]', timeout=10_000)
    assert "#token" not in p.url  # the token leaves the address bar
    assert p.locator("#incident-rows tr").count() == 0

    alarm = {"ts": now_ms(), "event": "alarm"}
    publish_all(
        mosquitto.port,
        [("community/shazui/b01/callpoint/CP-b01-1/event", json.dumps(alarm).encode())],
    )
    row = p.locator("#incident-rows tr.open").first
    row.wait_for(timeout=10_000)
    assert row.locator("td.state").get_attribute("data-state") == "dispatched"
    assert "b01" in row.inner_text()
    countdown = row.locator("td.countdown").inner_text()
    assert re.fullmatch(r"[45]:[0-5]\d", countdown), countdown  # m:ss to the 5-minute deadline

    row.locator('button[data-action="ack"]').click()
    p.wait_for_selector('td.state[data-state="acknowledged"]', timeout=10_000)
    with secured.client(Role.VIEWER) as c:
        iid = row.get_attribute("data-incident")
        doc = c.get(f"/api/v1/incidents/{iid}").json()
    assert doc["incident"]["acknowledged_by"] == "fire_team-1"

    p.locator("#lang").click()  # English toggle
    p.wait_for_selector('button[data-action="on_scene"]:has-text("On scene")', timeout=5_000)
    p.locator("#lang").click()
    shot = tmp_path / "dashboard.png"
    p.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("UPDATE_DOCS_SCREENSHOT"):
        shutil.copyfile(shot, DOCS_SHOT)
