"""Message formatting (chat/markup.py and templates/chat/_message_body.html): the Markdown subset, as a
browser parses what is rendered, and that nothing outside it, nor anything hostile, gets through."""

import re

import pytest

from chat.markup import formatted
from tests.support.rendered_body import RenderedBody, rendered


def names(page: RenderedBody) -> list[str]:
    return [tag for tag, _ in page.tags]


def test_a_plain_message_is_one_paragraph_as_before():
    page = rendered("just words, 2 * 3 * 4 and snake_case_names")

    assert page.tags == [("p", {"class": "body"})]
    assert page.text == "just words, 2 * 3 * 4 and snake_case_names"


@pytest.mark.parametrize(
    ("body", "tag", "inside"),
    [
        ("this is *important*", "em", "important"),
        ("this is _important_", "em", "important"),
        ("this is **very** important", "strong", "very"),
        ("run `make test <all>` first", "code", "make test <all>"),
    ],
)
def test_inline_formatting(body, tag, inside):
    page = rendered(body)

    assert names(page) == ["p", tag]
    assert page.inside[tag] == inside
    assert "*" not in page.text and "`" not in page.text


def test_a_code_block_keeps_its_lines_and_shows_markup_as_text():
    page = rendered("look:\n```\nif a < b:\n    print('*not emphasis*')\n```")

    assert names(page) == ["div", "p", "pre", "code"]
    assert page.tags[0] == ("div", {"class": "body blocks"})
    assert page.inside["code"] == "if a < b:\n    print('*not emphasis*')"


def test_quotes_and_lists():
    page = rendered("> someone said\n\n- one\n- two\n\n3. three\n4. four")

    assert names(page) == ["div", "blockquote", "p", "ul", "li", "li", "ol", "li", "li"]
    assert ("ol", {"start": "3"}) in page.tags
    assert page.inside["blockquote"] == "someone said"


def test_lines_are_kept():
    page = rendered("first line\nsecond line")

    assert names(page) == ["p"]
    assert page.text == "first line\nsecond line"  # the paragraph is white-space: pre-wrap


def test_a_link_with_its_own_text_goes_to_http_only():
    page = rendered("see [the docs](https://example.com/a_b?x=1) and [this](javascript:alert(1)) [that](/admin/)")

    assert page.tags[1] == (
        "a",
        {"href": "https://example.com/a_b?x=1", "target": "_blank", "rel": "nofollow noopener ugc"},
    )
    assert len([tag for tag in names(page) if tag == "a"]) == 1
    assert page.text == "see the docs and [this](javascript:alert(1)) [that](/admin/)"  # the others read as typed


def test_bare_urls_and_what_is_glued_to_them_read_as_typed():
    for body in ("https://a.example/?x=`${alert(1)}`", "https://a.example/*x*_y_", "see https://a.example/__init__."):
        page = rendered(body)
        assert page.text == body
        assert names(page) == ["p", "a"]


def test_marks_around_a_url_still_format_it():
    assert names(rendered("**https://example.com**")) == ["p", "strong", "a"]
    code = rendered("`https://example.com/x` is not a link in code")
    assert names(code) == ["p", "code"] and code.inside["code"] == "https://example.com/x"


def test_mentions_are_found_in_formatted_text_but_not_in_code():
    page = rendered("**@ben** see `@ben`", mentioned=[[3, "ben"]])

    mention = [attrs for tag, attrs in page.tags if tag == "a"]
    assert mention == [{"class": "mention", "href": "/dm/ben/"}]
    assert page.inside["code"] == "@ben"


@pytest.mark.parametrize(
    "body",
    [
        "<script>alert(1)</script>",
        "**<img src=x onerror=alert(1)>**",
        '[x](https://example.com/"onmouseover="alert(1))',
        '[<b>x</b>](https://example.com/" onclick="alert(1)")',
        "```\n</code></pre><script>alert(1)</script>\n```",
        "> <iframe src=https://evil.example>",
        "- <style>*{display:none}</style>",
        "&lt;b&gt; &#x3C;script&#x3E;",
        "# not a heading\n***\n![img](https://example.com/x.png)\n| a | b |",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
        "\ue1000\ue101 forged",
    ],
)
def test_hostile_formatting_renders_only_the_subset(body):
    page = rendered(body)

    allowed = {"p", "div", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "a"}
    assert set(names(page)) <= allowed
    for tag, attrs in page.tags:
        if tag == "a":
            assert set(attrs) == {"href", "target", "rel"}
            assert re.match(r"https?://[^\"<> ]+$", attrs["href"] or "")
        elif tag == "ol":
            assert set(attrs) <= {"start"}
        elif tag not in ("p", "div"):
            assert attrs == {}


def test_entities_headings_and_images_are_text_as_typed():
    page = rendered("&lt;b&gt; # no heading ![img](x.png)")

    assert page.text == "&lt;b&gt; # no heading ![img](x.png)"


def test_only_blanks_stay_as_they_are():
    assert formatted("   ", mentioned={}).parts[0].text == "   "
