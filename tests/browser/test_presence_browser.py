"""End to end: who is here and who is typing, between real Chromium pages on a live daphne."""

import time

import pytest
from playwright.sync_api import expect

from tests.support.live import message, open_room, send, unique, users_in_room

pytestmark = pytest.mark.browser

LIVE = 3_000  # ms: presence and typing show within a second or two; a margin for a busy machine


def people(page):
    return page.locator("#presence .people li")


def test_three_users_see_each_other_type_and_leave(new_page, daphne_server):
    room = unique("here")
    ada, bea, cy = users_in_room(new_page, room, daphne_server, daphne_server, daphne_server)
    names = [page.locator("header.site strong").inner_text() for page in (ada, bea, cy)]

    for page in (ada, bea, cy):
        expect(people(page)).to_have_text(sorted(names, key=str.casefold), timeout=LIVE)

    ada.locator("#compose-message").press_sequentially("hel", delay=50)
    for page in (bea, cy):
        expect(page.locator("#typing")).to_have_text(f"{names[0]} is typing…", timeout=LIVE)
    expect(ada.locator("#typing")).to_have_text("")
    bea.locator("#compose-message").press_sequentially("hi", delay=50)
    expect(cy.locator("#typing")).to_have_text(
        f"{' and '.join(sorted(names[:2], key=str.casefold))} are typing…", timeout=LIVE
    )

    ada.locator("#compose-message").press_sequentially("lo")
    send(ada, "hello")
    expect(message(cy, "hello")).to_have_count(1, timeout=LIVE)
    expect(cy.locator("#typing")).to_have_text(f"{names[1]} is typing…", timeout=1_000)
    # Typing again after sending: the new input (swapped in by the server) still sends notices.
    ada.locator("#compose-message").press_sequentially("again", delay=50)
    expect(bea.locator("#typing")).to_have_text(f"{names[0]} is typing…", timeout=LIVE)
    # Stopped typing: gone within 6 s.
    expect(bea.locator("#typing")).to_have_text("", timeout=6_500)

    cy.close()
    for page in (ada, bea):
        expect(people(page)).to_have_text(sorted(names[:2], key=str.casefold), timeout=LIVE)


def test_a_second_tab_lists_its_user_once_and_anonymous_readers_are_counted(new_page, daphne_server):
    room = unique("tabs")
    [ada] = users_in_room(new_page, room, daphne_server)
    name = ada.locator("header.site strong").inner_text()
    second_tab = ada.context.new_page()
    open_room(second_tab, room)
    reader = new_page()
    open_room(reader, room)

    expect(people(ada)).to_have_text([name, "1 reader not signed in"], timeout=LIVE)
    expect(people(second_tab)).to_have_text([name, "1 reader not signed in"], timeout=LIVE)
    expect(people(reader)).to_have_text([name, "1 reader not signed in"], timeout=LIVE)
    # The anonymous reader has no typing box to send from.
    expect(reader.locator("#compose-message")).to_have_count(0)


def test_without_javascript_the_page_shows_who_is_here_as_of_loading(new_page, daphne_server):
    room = unique("nojs")
    [ada] = users_in_room(new_page, room, daphne_server)
    name = ada.locator("header.site strong").inner_text()
    plain = new_page(java_script_enabled=False)
    plain.goto(f"/chat/{room}/")
    # The reader of this page (not signed in) is counted at once: never "Nobody is here".
    expect(people(plain).last).to_have_text("1 reader not signed in")

    # Joins are written in batches (twice a second): a page loaded once Ada's join is in shows her.
    deadline = time.monotonic() + LIVE / 1000
    while name not in people(plain).all_inner_texts() and time.monotonic() < deadline:
        plain.wait_for_timeout(200)
        plain.reload()
    expect(people(plain)).to_have_text([name, "1 reader not signed in"])
    expect(plain.locator("#typing")).to_have_text("")
