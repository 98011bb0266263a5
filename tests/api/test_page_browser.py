"""The page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Nothing leaves the machine: every request to a host other than 127.0.0.1 is answered locally
(thumbnails with generated pictures, the Twitch player with a stub page) or refused, and the
browser's resolver knows no other host. Screenshots go to test-output/api/.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest
from api_support import add_clip, add_streamer, api, start_api, stop_api, utcnow  # noqa: F401 (api: fixture)

from streamscout.common.db import migrate

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "test-output" / "api"
EVIL = "<img src=x onerror=alert(1)>"
STREAMERS = {201: "alpha_streamer", 202: "BetaPlays", 203: EVIL, 204: "gamma_gg", 205: "deltaspeedruns"}
TITLES = ["Unbelievable clutch 1v4", "Chat loses it", "That jump scare", "Boss down first try",
          "Raid incoming!", "The 200 IQ play", "Speedrun world record pace", "Donation goal hit"]

playwright_api = pytest.importorskip("playwright.sync_api")


def thumbnail_svg(seed: int) -> str:
    """A stand-in thumbnail (the real ones are on Twitch's CDN, out of reach here)."""
    hue = seed * 47 % 360
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 480 272">'
        f'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl({hue},60%,35%)"/>'
        f'<stop offset="1" stop-color="hsl({(hue + 60) % 360},50%,12%)"/></linearGradient></defs>'
        '<rect width="480" height="272" fill="url(#g)"/>'
        f'<circle cx="{120 + seed * 37 % 240}" cy="{90 + seed * 13 % 90}" r="{40 + seed % 5 * 12}" fill="hsl({(hue + 180) % 360},70%,60%)" opacity=".35"/>'
        f'<rect x="{seed * 29 % 300}" y="170" width="180" height="60" rx="10" fill="#000" opacity=".25"/></svg>'
    )


@pytest.fixture(scope="module")
def seeded(postgres_dsn):
    for broadcaster_id, login in STREAMERS.items():
        add_streamer(postgres_dsn, broadcaster_id, login)
    now = utcnow()
    ids = list(STREAMERS)
    clips = []
    for n in range(30):  # newest first: 3 min ago, then every 47 minutes further back
        broadcaster_id = ids[n % len(ids)]
        clip_id = add_clip(postgres_dsn, broadcaster_id, now - timedelta(minutes=3 + 47 * n),
                           score=round(3.2 + (n * 7 % 11) * 1.1, 1), title=TITLES[n % len(TITLES)],
                           duration=float(20 + n % 4 * 10))
        clips.append((clip_id, broadcaster_id))
    return clips


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"],
        )
        yield browser
        browser.close()


class Watched:
    """A page whose dialogs, script errors and off-machine requests are recorded."""

    def __init__(self, browser, width: int, height: int, *, mobile: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height}, is_mobile=mobile,
                                           device_scale_factor=2 if mobile else 1, has_touch=mobile)
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("dialog", self._dialog)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))

    def _dialog(self, dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def _route(self, route) -> None:
        url = urlsplit(route.request.url)
        if url.hostname == "127.0.0.1":
            route.continue_()
        elif url.hostname == "clips-media-assets2.twitch.tv" and "-205-" in url.path:
            route.abort()  # this streamer's thumbnails fail to load: the card falls back to a monogram
        elif url.hostname == "clips-media-assets2.twitch.tv":
            seed = sum(map(ord, url.path))
            route.fulfill(status=200, content_type="image/svg+xml", body=thumbnail_svg(seed))
        elif url.hostname == "clips.twitch.tv" and url.path == "/embed":
            route.fulfill(status=200, content_type="text/html", body="<body style='background:#000'></body>")
        else:
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def desktop(browser):
    watched = Watched(browser, 1440, 900)
    yield watched
    watched.close()


@pytest.fixture
def phone(browser):
    watched = Watched(browser, 390, 844, mobile=True)
    yield watched
    watched.close()


def cards(page):
    return page.locator("#grid .card")


def test_grid_lists_the_last_seven_days_newest_first_and_loads_more(api, seeded, desktop):
    page = desktop.page
    page.goto(api.url + "/")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length >= 24")
    first = cards(page).first
    assert first.get_attribute("data-clip-id") == seeded[0][0]
    assert first.locator(".streamer").inner_text() == STREAMERS[seeded[0][1]]
    assert first.locator("time").inner_text() == "3 min ago"
    assert first.locator(".intensity").inner_text().endswith("3.2")
    assert cards(page).nth(1).locator("time").inner_text() == "50 min ago"
    broken = cards(page).nth(4)  # deltaspeedruns, whose thumbnails fail
    page.wait_for_function("() => !document.querySelectorAll('#grid .card')[4].querySelector('img')")
    assert broken.locator(".initial").inner_text() == "D"
    assert cards(page).nth(0).locator("img").count() == 1
    page.screenshot(path=str(SHOTS / "desktop.png"))
    page.mouse.wheel(0, 20000)  # infinite scroll fetches the next page through the cursor
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length === 30")
    order = [cards(page).nth(i).get_attribute("data-clip-id") for i in range(30)]
    assert order == [clip_id for clip_id, _ in seeded]
    assert page.locator("#more").is_hidden()
    page.mouse.wheel(0, -30000)  # back to the top, so the sticky header is drawn where it belongs
    page.wait_for_function("() => window.scrollY === 0")
    page.screenshot(path=str(SHOTS / "desktop-full.png"), full_page=True)
    assert desktop.errors == [] and desktop.dialogs == []


def test_hostile_streamer_name_is_text_and_runs_nothing(api, seeded, desktop):
    page = desktop.page
    page.goto(api.url + "/")
    page.wait_for_selector("#grid .card")
    evil = page.locator("#grid .streamer", has_text=EVIL).first
    assert evil.inner_text() == EVIL
    assert page.locator("#grid img[src='x']").count() == 0
    evil.click()  # filter by that streamer: the page falls back to the numeric id
    page.wait_for_url("**/?broadcaster=203")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length === 6")
    assert set(page.locator("#grid .streamer").all_inner_texts()) == {EVIL}
    cards(page).first.locator(".thumb").click()
    page.wait_for_selector("#grid iframe")
    page.wait_for_timeout(300)
    assert desktop.dialogs == [] and desktop.errors == []


def test_click_plays_inline_with_the_right_parent(api, seeded, desktop):
    page = desktop.page
    page.goto(api.url + "/")
    page.wait_for_selector("#grid .card")
    second = cards(page).nth(1)
    second.locator(".thumb").click()
    frame = second.locator("iframe")
    src = urlsplit(frame.get_attribute("src"))
    assert (src.scheme, src.hostname, src.path) == ("https", "clips.twitch.tv", "/embed")
    assert parse_qs(src.query) == {"clip": [seeded[1][0]], "parent": ["127.0.0.1"], "autoplay": ["true"]}
    assert "autoplay" in frame.get_attribute("allow")
    assert "playing" in second.get_attribute("class")
    page.screenshot(path=str(SHOTS / "desktop-playing.png"))
    page.keyboard.press("Escape")
    assert page.locator("#grid iframe").count() == 0


def test_keyboard_only(api, seeded, desktop):
    page = desktop.page
    page.goto(api.url + "/")
    page.wait_for_selector("#grid .card")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(30):  # tab past the filters to the first clip
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('thumb')"):
            break
    assert page.evaluate("document.activeElement.closest('.card').dataset.clipId") == seeded[0][0]
    page.keyboard.press("Enter")
    assert parse_qs(urlsplit(cards(page).first.locator("iframe").get_attribute("src")).query)["clip"] == [seeded[0][0]]
    assert page.evaluate("document.activeElement.textContent") == "Close player"
    page.keyboard.press("Enter")
    assert page.locator("#grid iframe").count() == 0
    assert page.evaluate("document.activeElement.closest('.card').dataset.clipId") == seeded[0][0]


def test_filters_are_in_the_url_and_shareable(api, seeded, desktop):
    page = desktop.page
    page.goto(api.url + "/")
    page.wait_for_selector("#grid .card")
    page.fill("#f-broadcaster", "Alpha_Streamer")
    page.keyboard.press("Enter")
    page.wait_for_url("**/?broadcaster=Alpha_Streamer")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length === 6")
    assert set(page.locator("#grid .streamer").all_inner_texts()) == {"alpha_streamer"}
    page.select_option("#f-min-score", "8")
    page.wait_for_url("**/?broadcaster=Alpha_Streamer&min_score=8")
    page.wait_for_function("() => [...document.querySelectorAll('#grid .intensity')].every(b => parseFloat(b.textContent) >= 8)")
    expected = [c for c, b in seeded if b == 201 and float(_score(seeded, c)) >= 8]
    assert [cards(page).nth(i).get_attribute("data-clip-id") for i in range(cards(page).count())] == expected

    shared = desktop.context.new_page()  # someone opens the shared link
    shared.goto(page.url)
    shared.wait_for_selector("#grid .card")
    assert shared.input_value("#f-broadcaster") == "Alpha_Streamer"
    assert shared.input_value("#f-min-score") == "8"
    assert shared.locator("#grid .card").count() == len(expected)

    page.go_back()  # history restores the previous filter
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length === 6")
    page.click("#f-clear")
    page.wait_for_url(api.url + "/")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length >= 24")

    page.fill("#f-broadcaster", "nobody_at_all")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.getElementById('status').textContent.includes('no streamer')")
    assert cards(page).count() == 0


def _score(seeded, clip_id):
    n = [c for c, _ in seeded].index(clip_id)
    return round(3.2 + (n * 7 % 11) * 1.1, 1)


def test_phone_layout(api, seeded, phone):
    page = phone.page
    page.goto(api.url + "/")
    page.wait_for_function("() => document.querySelectorAll('#grid .card').length >= 24")
    boxes = [cards(page).nth(i).bounding_box() for i in range(2)]
    assert boxes[0]["width"] > 300 and boxes[1]["y"] > boxes[0]["y"], "one column on a phone"
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "no sideways scrolling"
    page.screenshot(path=str(SHOTS / "phone.png"))
    cards(page).first.locator(".thumb").tap()
    page.wait_for_selector("#grid iframe")
    page.screenshot(path=str(SHOTS / "phone-playing.png"))
    assert phone.errors == [] and phone.dialogs == []


@pytest.fixture
def empty_api(settings):
    name = f"test_api_empty_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    dsn = settings.postgres_dsn.rsplit("/", 1)[0] + "/" + name
    migrate(dsn)
    running, pool = start_api(dsn)
    yield running
    stop_api(running, pool)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_empty_state_explains_the_warm_up(empty_api, desktop):
    page = desktop.page
    page.goto(empty_api.url + "/")
    page.wait_for_selector("#empty:not([hidden])")
    assert page.locator("#empty h2").inner_text() == "No clips yet"
    assert "5-minute warm-up" in page.locator("#empty p").inner_text()
    assert page.locator("#more").is_hidden()
    page.screenshot(path=str(SHOTS / "desktop-empty.png"))
