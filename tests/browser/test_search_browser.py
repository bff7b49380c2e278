"""In Chromium: the search box in the site header, with JavaScript (results as you type: on the search page,
under the box elsewhere) and without (the form submits), a result's link to the message in its place, and no
WCAG violations on the search page."""

import pytest
from playwright.sync_api import expect

from tests.support.axe import violations
from tests.support.live import open_room, seed_messages, unique

pytestmark = pytest.mark.browser


@pytest.fixture
def seeded(shared_daphne) -> dict[str, str]:
    """A public room whose messages hold a word of this test's own, one of them twice."""
    room, name, word = unique("search"), unique("writer"), unique("zebra").replace("-", "")
    shared_daphne.create_users(name)
    seed_messages(shared_daphne, room, name, 30, body="Message {n} about " + word + " and other things")
    return {"room": room, "user": name, "word": word}


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_header_search_box_finds_messages_and_links_to_them(new_page, daphne_server, seeded, javascript):
    page = new_page(java_script_enabled=javascript)
    page.goto("/")
    page.get_by_role("search", name="Search messages").get_by_role("searchbox").fill(seeded["word"])
    page.get_by_role("search", name="Search messages").get_by_role("button", name="Search").click()

    page.wait_for_url(f"**/search/?q={seeded['word']}")
    results = page.locator("#search-results .search-result")
    expect(results).to_have_count(20)  # a page; the next one is linked
    expect(results.first.locator("mark")).to_have_text(seeded["word"])
    expect(results.first.locator(".meta")).to_contain_text(seeded["room"])
    expect(page.locator('#search-results a[rel="next"]')).to_have_text("More results")

    results.first.locator(".meta a").click()
    page.wait_for_url(f"**/chat/{seeded['room']}/?around=*")
    expect(page.locator('#messages li.message[aria-current="true"] .body')).to_contain_text(seeded["word"])


def test_with_javascript_results_follow_the_typing_without_a_page_load(new_page, daphne_server, seeded):
    page = new_page()
    page.goto("/search/")
    page.evaluate("() => { window.notReloaded = true }")
    box = page.locator("#site-search-q")
    box.press_sequentially(seeded["word"], delay=20)

    expect(page.locator("#search-results .search-result")).to_have_count(20)
    expect(page.locator("#search-results .search-result mark").first).to_have_text(seeded["word"])
    assert page.evaluate("() => window.notReloaded") is True
    expect(box).to_be_focused()
    page.wait_for_url(f"**/search/?q={seeded['word']}")  # hx-push-url: the address is the search shown

    box.fill(seeded["word"] + " -message")
    expect(page.locator("#search-results")).to_contain_text("No messages match.")
    box.fill("x")
    expect(page.locator("#search-results")).to_contain_text("Type at least 2 characters")
    assert page.evaluate("() => window.notReloaded") is True


def test_on_any_page_results_open_under_the_box_and_the_page_stays(new_page, daphne_server, seeded):
    page = new_page()
    socket = open_room(page, seeded["room"])
    preview = page.locator("#search-preview")
    expect(preview).to_be_hidden()
    page.locator("#site-search-q").press_sequentially(seeded["word"], delay=20)

    expect(preview.locator(".search-result")).to_have_count(20)
    expect(preview.get_by_role("link", name="All results")).to_be_visible()
    assert page.url.endswith(f"/chat/{seeded['room']}/") and not socket.is_closed()  # still the live room
    expect(page.locator("#site-search-q")).to_be_focused()
    assert violations(page) == []
    page.locator("#site-search-q").fill("")
    expect(preview).to_be_hidden()


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_a_room_page_searches_that_room_only(new_page, daphne_server, seeded, shared_daphne, javascript):
    other = unique("elsewhere")
    seed_messages(shared_daphne, other, seeded["user"], 1, body=f"elsewhere {seeded['word']}")
    page = new_page(java_script_enabled=javascript)
    page.goto(f"/chat/{seeded['room']}/")
    form = page.get_by_role("search", name="Search this room")
    form.get_by_role("searchbox").fill(seeded["word"] + " 7")
    form.get_by_role("button", name="Search").click()

    page.wait_for_url("**/search/?room=*")
    expect(page.locator("h1")).to_have_text(f"Search in {seeded['room']}")
    expect(page.locator("#search-results")).not_to_contain_text("elsewhere")
    expect(page.locator("#search-results .search-result").first).to_contain_text("Message 7 about")


def test_the_search_page_has_no_violations(new_page, daphne_server, seeded):
    page = new_page()
    page.goto(f"/search/?q={seeded['word']}")
    assert violations(page) == []
