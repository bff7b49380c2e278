"""Links in messages: which text becomes a link, and that nothing hostile gets through the rendering."""

import re

import pytest

from chat.linkify import Segment, segments
from tests.support.in_process import post_message
from tests.support.rendered_body import rendered


def links(body: str) -> list[str]:
    return [part.text for part in segments(body) if part.href]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("see https://example.com", ["https://example.com"]),
        ("HTTP://EXAMPLE.COM/Path?q=1&r=2#frag", ["HTTP://EXAMPLE.COM/Path?q=1&r=2#frag"]),
        ("www.example.com/a", ["www.example.com/a"]),
        ("two: http://a.example and https://b.example/x", ["http://a.example", "https://b.example/x"]),
        # Trailing punctuation belongs to the sentence, not the URL.
        ("Look at https://example.com/a.", ["https://example.com/a"]),
        ("Really? https://example.com/?!", ["https://example.com/"]),
        ("end https://example.com/x..., ok", ["https://example.com/x"]),
        ("'https://example.com/q'", ["https://example.com/q"]),
        ("*https://example.com/bold*", ["https://example.com/bold"]),
        # Brackets: balanced ones stay, the one that closes the sentence's bracket goes.
        ("(see https://example.com/page)", ["https://example.com/page"]),
        ("(https://en.wikipedia.org/wiki/Foo_(bar)).", ["https://en.wikipedia.org/wiki/Foo_(bar)"]),
        ("[https://example.com/a[1]]", ["https://example.com/a[1]"]),
        # Quotes and angle brackets end a URL.
        ('"https://example.com/q"', ["https://example.com/q"]),
        ("<https://example.com/a>", ["https://example.com/a"]),
        # IDN hosts and non-ASCII paths are linked as typed.
        ("https://bücher.example/straße", ["https://bücher.example/straße"]),
        ("https://пример.рф", ["https://пример.рф"]),
    ],
)
def test_urls_are_found_without_the_punctuation_around_them(body, expected):
    assert links(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://example.com/file",
        "mailto:someone@example.com",
        "someone@www.example.com",
        "xhttps://example.com",
        "foo.www.example.com",
        "/www.example.com",
        "https://",
        "https://...",
        "https:///path",
        "https://[::1",
        "www.",
        "plain text, no links at all.",
    ],
)
def test_other_schemes_and_non_urls_stay_text(body):
    assert links(body) == []
    assert segments(body) == ([Segment(body)] if body else [])


def test_a_url_after_a_hostile_scheme_links_only_the_http_part():
    assert [(part.text, part.href) for part in segments("javascript:https://example.com")] == [
        ("javascript:", None),
        ("https://example.com", "https://example.com"),
    ]


def test_www_urls_link_to_https():
    assert segments("go to www.example.com.") == [
        Segment("go to "),
        Segment("www.example.com", "https://www.example.com"),
        Segment("."),
    ]


@pytest.mark.parametrize(
    "body",
    [
        "https://exa\u200bmple.com",  # zero-width space
        "https://example.com\u202egpj.exe",  # right-to-left override
        "https://example.com\x00evil",
        "https://example.com\tx",
    ],
)
def test_invisible_and_control_characters_end_a_url(body):
    assert links(body) == [re.split(r"[\u200b\u202e\x00\t]", body)[0]]


@pytest.mark.parametrize(
    "body",
    [
        "",
        "hello",
        "https://example.com",
        " lead and trail https://a.example/b). ",
        "line one\nhttps://example.com/x\n\nline three",
        'x"https://a.example/"onmouseover="alert(1)"y',
        "((((((((((((((((((((https://a.example" + ")" * 50,
        "https://a.example/" + "." * 3000,
    ],
)
def test_the_segments_give_the_body_back(body):
    assert "".join(part.text for part in segments(body)) == body


def test_a_link_is_rendered_with_rel_and_the_rest_stays_text():
    page = rendered("see https://example.com/a?b=1&c=2 now")

    assert page.tags == [
        ("p", {"class": "body"}),
        ("a", {"href": "https://example.com/a?b=1&c=2", "target": "_blank", "rel": "nofollow noopener ugc"}),
    ]
    assert page.text == "see https://example.com/a?b=1&c=2 now"


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "https://example.com/<script>alert(1)</script>",
        'https://example.com/"onmouseover="alert(1)',
        'https://example.com/"><img src=x onerror=alert(1)>',
        "https://example.com/'onmouseover='alert(1)",
        "https://example.com/&quot;onmouseover=&quot;alert(1)",
        "javascript:alert(1)",
        "<a href=javascript:alert(1)>click</a>",
        "www.example.com/</p><p>fake",
        "https://a.example/?x=`${alert(1)}`",
    ],
)
def test_hostile_text_renders_as_text_and_links_only_to_http(body):
    page = rendered(body)

    # Only the paragraph and, at most, real links: no injected element or attribute.
    assert page.tags[0] == ("p", {"class": "body"})
    for tag, attrs in page.tags[1:]:
        assert tag == "a"
        assert set(attrs) == {"href", "target", "rel"}
        assert attrs["target"] == "_blank"
        assert attrs["rel"] == "nofollow noopener ugc"
        assert re.match(r"https?://", attrs["href"] or "")
        # An apostrophe may stay in a URL: the attribute is double-quoted and escaped.
        assert not re.search(r"[\"<>`]", attrs["href"] or "")
    # The reader sees exactly what was typed.
    assert page.text == body


def test_the_room_page_shows_links_in_messages(client, room, alice):
    post_message(room, alice, "read https://example.com.")

    response = client.get(f"/chat/{room.name}/")

    expected = (
        '<p class="body">read <a href="https://example.com" target="_blank" rel="nofollow noopener ugc">'
        "https://example.com</a>.</p>"
    )
    assert expected in response.text
