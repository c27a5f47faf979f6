"""The demo, driven by a real browser at desktop and phone (390 px) sizes: the README's story (a canary of a new
image, alice refused, bob approving, the outcome mentioning alice), the page at a fresh start, the form, and a
rollback by button."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from bot.demo import HINT, Demo, running_demo

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
# The README's pictures; refreshed with `UPDATE_SCREENSHOT=1 make test` (otherwise written to a temporary folder).
SCREENSHOTS = {
    "desktop": ROOT / "docs" / "demo.png",
    "phone": ROOT / "docs" / "demo-phone.png",  # the thread, where a phone approves
    "phone-channel": ROOT / "docs" / "demo-phone-channel.png",  # the channel with the live root message
}
SIZES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1440, "height": 900}},
    "phone": {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True},
}

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if Path(CHROMIUM).exists() and shutil.which("chromium"):
        return
    if os.environ.get("CI") or os.environ.get("DEPLOYBOT_REQUIRE_BROWSER"):
        pytest.fail("Chromium is missing; .ci/run installs it with `apt-get install chromium`")
    pytest.skip("Chromium is not installed here (apt-get install chromium); CI always runs this test")


@dataclass
class Browser:
    """One size's page on its own, freshly started demo."""

    size: str
    page: Page
    demo: Demo
    state_reads: list[str] = field(default_factory=list)  # the page's /_sandbox/state URLs, in order


@pytest.fixture(params=list(SIZES))
def browser(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    _need_chromium()
    size = str(request.param)
    with (
        running_demo(page_port=0, speed=40.0, data_dir=tmp_path_factory.mktemp(f"demo-{size}")) as demo,
        sync_playwright() as pw,
    ):
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        page = chromium.new_context(**SIZES[size]).new_page()
        page.set_default_timeout(30_000)
        seen = Browser(size, page, demo)
        page.on("request", lambda r: seen.state_reads.append(r.url) if "/_sandbox/state" in r.url else None)
        page.goto(demo.page_url)
        yield seen
        chromium.close()


@pytest.fixture
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if os.environ.get("UPDATE_SCREENSHOT"):
        return SCREENSHOTS
    folder = tmp_path_factory.mktemp("shots")
    return {size: folder / path.name for size, path in SCREENSHOTS.items()}


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
    on_screen(page, message.get_by_test_id(f"button-{action_id}")).click()
    on_screen(page, page.get_by_test_id("confirm-dialog"))
    page.get_by_test_id("confirm-button").click()


def on_screen(page: Page, thing: Locator, timeout: float | None = None) -> Locator:
    """`thing`, once it is visible and wholly inside the viewport's width (usable without scrolling sideways)."""
    thing.wait_for(timeout=timeout)
    box = thing.bounding_box()
    width = (page.viewport_size or {"width": 0})["width"]
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (box, width)
    return thing


def no_sideways_scroll(page: Page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= (page.viewport_size or {"width": 0})["width"]


def a_fresh_page_shows_the_channel_and_the_hint_at_once(browser: Browser) -> None:
    page = browser.page
    page.wait_for_selector("body[data-ready=true]")
    # The first read of the state does not long-poll: a fresh stand-in has no change to wait for.
    assert browser.state_reads and browser.state_reads[0].endswith("wait=0"), browser.state_reads
    assert on_screen(page, page.get_by_test_id("channel-title")).inner_text() == "# deploys"
    assert HINT in on_screen(page, page.get_by_test_id("empty-channel")).inner_text()
    assert HINT in on_screen(page, page.get_by_test_id("composer-hint")).inner_text()
    on_screen(page, page.get_by_test_id("channel-link-incident-42"))
    on_screen(page, page.get_by_test_id("user-switcher"))
    no_sideways_scroll(page)


def the_deploy_form_fits_the_screen(browser: Browser) -> None:
    page = browser.page
    act_as(page, "U0ALICE")
    slash(page, "/deploy")
    on_screen(page, page.get_by_test_id("modal"))
    on_screen(page, page.get_by_test_id("modal-submit"))
    page.get_by_test_id("modal-cancel").click()
    page.get_by_test_id("modal").wait_for(state="detached")


def the_readme_story(browser: Browser, shots: dict[str, Path]) -> None:
    page = browser.page
    act_as(page, "U0ALICE")
    page.get_by_test_id("channel-link-deploys").click()
    page.get_by_test_id("composer-hint").click()  # the hint fills the box: the README's first command
    assert page.get_by_test_id("composer-input").input_value() == HINT
    page.get_by_test_id("composer-input").press("Enter")
    message = root(page, "catalog ·")
    message.get_by_text("1.3.0").first.wait_for(timeout=60_000)  # a new image, not 1.2.1 → 1.2.1
    on_screen(page, message.get_by_test_id("button-deploy_approve"), timeout=60_000)
    if browser.size == "phone":
        page.screenshot(path=str(shots["phone-channel"]))
    on_screen(page, message.get_by_test_id("thread-link")).click()
    thread = page.get_by_test_id("thread-pane")
    on_screen(page, thread)
    thread.get_by_text("Approval needed before production step 1 of 2").first.wait_for(timeout=60_000)
    # In the thread, its root message carries the buttons: a phone approves from there.
    top = thread.get_by_test_id("message").first

    click_and_confirm(page, top, "deploy_approve")  # alice deployed it; she is not an approver
    page.get_by_text("not_approver").first.wait_for()

    act_as(page, "U0BOB")
    click_and_confirm(page, top, "deploy_approve")
    thread.get_by_text("approved production step 1 of 2").first.wait_for(timeout=60_000)
    thread.get_by_text("Approval needed before production step 2 of 2").first.wait_for(timeout=90_000)
    top.get_by_test_id("button-deploy_approve").wait_for(timeout=60_000)
    no_sideways_scroll(page)
    shot = shots[browser.size]
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
    click_and_confirm(page, top, "deploy_approve")
    top.get_by_text("Succeeded").first.wait_for(timeout=90_000)
    # The last reply mentions alice, so her phone buzzes.
    last = thread.get_by_test_id("message").filter(has_text="succeeded in").last
    on_screen(page, last.locator(".mention[data-user=U0ALICE]"))


def roll_back_with_the_button(browser: Browser) -> None:
    page = browser.page
    page.get_by_test_id("thread-close").click()
    act_as(page, "U0ALICE")
    page.get_by_test_id("channel-link-deploys").click()
    # A long bake, so the deployment is still baking (blue still running) when the button is pressed.
    slash(page, "/deploy notifications bluegreen image=:3.5.0 bake=1h")
    message = root(page, "notifications ·")
    message.get_by_text("Bake ends").first.wait_for(timeout=90_000)
    act_as(page, "U0CAROL")
    click_and_confirm(page, message, "deploy_rollback")
    message.get_by_text("Rolled back").first.wait_for(timeout=90_000)


# One test per size, its steps in order on one fresh demo (the first step needs a page nobody has used yet, and
# xdist would spread separate tests over workers).
def test_the_demo(browser: Browser, shots: dict[str, Path]) -> None:
    a_fresh_page_shows_the_channel_and_the_hint_at_once(browser)
    the_deploy_form_fits_the_screen(browser)
    the_readme_story(browser, shots)
    if browser.size == "desktop":  # the phone runs the story and the form; one rollback by button is enough
        roll_back_with_the_button(browser)
