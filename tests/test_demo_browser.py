"""The demo, driven by a real browser: the canary-with-approval story and a rollback by button."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.demo import Demo, running_demo

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The README's picture; refreshed with `UPDATE_SCREENSHOT=1 make test` (otherwise written to a temporary file).
README_SCREENSHOT = ROOT / "docs" / "demo.png"

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() and shutil.which("chromium"):
        return
    if os.environ.get("CI") or os.environ.get("DEPLOYBOT_REQUIRE_BROWSER"):
        pytest.fail("Chromium is missing; .ci/run installs it with `apt-get install chromium`")
    pytest.skip("Chromium is not installed here (apt-get install chromium); CI always runs this test")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    _need_chromium()
    with running_demo(page_port=0, speed=40.0, data_dir=tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="module")
def page(demo: Demo) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.set_default_timeout(30_000)
        page.goto(demo.page_url)
        page.wait_for_selector("body[data-ready=true]")
        yield page
        browser.close()


def act_as(page: Page, user: str) -> None:
    page.get_by_test_id("user-switcher").select_option(user)


def slash(page: Page, text: str) -> None:
    box = page.get_by_test_id("composer-input")
    box.fill(text)
    box.press("Enter")


def root(page: Page, heading: str) -> Locator:
    """The newest root message whose text contains `heading`."""
    return page.get_by_test_id("message-list").get_by_test_id("message").filter(has_text=heading).last


def click_and_confirm(page: Page, message: Locator, action_id: str) -> None:
    message.get_by_test_id(f"button-{action_id}").click()
    page.get_by_test_id("confirm-dialog").wait_for()
    page.get_by_test_id("confirm-button").click()


@pytest.fixture(scope="module")
def screenshot_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.environ.get("UPDATE_SCREENSHOT"):
        return README_SCREENSHOT
    return tmp_path_factory.mktemp("shots") / "demo.png"


def test_canary_with_approval_end_to_end(page: Page, screenshot_path: Path) -> None:
    act_as(page, "U0ALICE")
    page.get_by_test_id("channel-link-deploys").click()
    slash(page, "/deploy catalog canary 10%")
    message = root(page, "catalog ·")
    message.get_by_test_id("button-deploy_approve").wait_for(timeout=60_000)
    message.get_by_test_id("thread-link").click()
    page.get_by_test_id("thread-pane").get_by_text("Approval needed").first.wait_for()

    click_and_confirm(page, message, "deploy_approve")  # alice is a deployer, not an approver
    page.get_by_text("not_approver").first.wait_for()

    act_as(page, "U0BOB")
    click_and_confirm(page, message, "deploy_approve")
    thread = page.get_by_test_id("thread-pane")
    thread.get_by_text("Approved by").first.wait_for(timeout=60_000)
    thread.get_by_text("Approval needed before production step 2 of 2").first.wait_for(timeout=90_000)
    message.get_by_test_id("button-deploy_approve").wait_for(timeout=60_000)
    page.screenshot(path=str(screenshot_path))
    assert screenshot_path.stat().st_size > 10_000
    click_and_confirm(page, message, "deploy_approve")
    message.get_by_text("Succeeded").first.wait_for(timeout=90_000)


def test_roll_back_with_the_button(page: Page) -> None:
    act_as(page, "U0ALICE")
    page.get_by_test_id("channel-link-deploys").click()
    # A long bake, so the deployment is still baking (blue still running) when the button is pressed.
    slash(page, "/deploy notifications bluegreen image=:3.5.0 bake=1h")
    message = root(page, "notifications ·")
    message.get_by_text("Bake ends").first.wait_for(timeout=90_000)
    act_as(page, "U0CAROL")
    click_and_confirm(page, message, "deploy_rollback")
    message.get_by_text("Rolled back").first.wait_for(timeout=90_000)
