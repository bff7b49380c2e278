"""Finding `@name` in a message's text (chat/mentions.py) and rendering it (templates/chat/_message_body.html)."""

import pytest
from django.contrib.auth.models import User
from django.template.loader import render_to_string

from chat import mentions
from chat.models import Message

PEOPLE = {"alice", "bob", "bob.smith", "zoë"}


def found(body: str, known: set[str] = PEOPLE) -> list[str]:
    return mentions.names(body, known=known.__contains__)


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ("@alice hi", ["alice"]),
        ("hi @alice", ["alice"]),
        ("hi @alice.", ["alice"]),
        ("hi @alice, @bob!", ["alice", "bob"]),
        ("(@alice)", ["alice"]),
        ("@alice: look", ["alice"]),
        ("@alice's idea", ["alice"]),
        ("“@alice”", ["alice"]),
        ("@alice? @alice!", ["alice"]),  # once each
        ("@bob.smith and @bob", ["bob.smith", "bob"]),  # the longest name that exists
        ("@bob.smith.", ["bob.smith"]),
        ("@bob.jones", []),  # a name is the whole run of name characters: "bob.jones" is nobody
        ("@zoë", ["zoë"]),
        ("@bob-", ["bob"]),
    ],
)
def test_names_next_to_punctuation(body, names):
    assert found(body) == names


@pytest.mark.parametrize("body", ["@ALICE", "@Alice", "@aLiCe"])
def test_names_match_whatever_their_case(body):
    assert found(body) == ["alice"]


@pytest.mark.parametrize(
    "body",
    [
        "mail alice@example.com",  # an e-mail address
        "bob@alice",
        "https://example.com/@alice",  # inside a URL
        "see www.example.com/users/@alice/posts",
        "https://example.com/?who=@alice",
        "a/@alice",
        "x.@alice",
        "@@alice",
        "`@alice`",  # a code span
        "run `git blame @alice` now",
        "@nobody here",  # unknown
        "@ alice",
        "@",
        "@.",
    ],
)
def test_no_mention_in_addresses_urls_code_or_unknown_names(body):
    assert found(body) == []


def test_code_like_text_outside_backticks_still_mentions():
    assert found("ping(@alice) x=@bob; @alice->go") == ["alice", "bob"]


def test_a_mention_right_after_a_url_still_counts():
    assert found("https://example.com @alice") == ["alice"]


def test_spellings_are_every_name_that_could_be_meant_lower_cased():
    assert mentions.spellings("Hi @Bob.Smith. and @ALICE, https://x.com/@carol") == {
        "bob.smith.",
        "bob.smith",
        "alice",
    }


def test_segments_give_the_body_back():
    body = "hi @Alice, see https://example.com/@bob and @bob. or mail bob@example.com"
    parts = mentions.segments(body, mentioned={"alice": "alice", "bob": "bob"})
    assert "".join(part.text for part in parts) == body
    assert [(p.text, p.mention) for p in parts if p.mention] == [("@Alice", "alice"), ("@bob", "bob")]
    assert [p.href for p in parts if p.href] == ["https://example.com/@bob"]


def render(body: str, mentioned: list) -> str:
    message = Message(pk=1, body=body, mentioned=mentioned, author_id=1)
    return render_to_string("chat/_message_body.html", {"message": message})


def test_a_mention_renders_as_a_link_to_a_direct_conversation_keeping_what_was_typed():
    html = render("hey @Alice!", [[7, "alice"]])
    assert html == '<p class="body mentions-7">hey <a class="mention" href="/dm/alice/">@Alice</a>!</p>\n'


def test_a_name_the_message_was_not_saved_with_stays_text():
    assert "<a" not in render("hey @alice and @bob", [])
    assert render("hey @alice and @bob", [[7, "alice"]]).count('class="mention"') == 1


def test_mentions_are_autoescaped():
    html = render("<b>@a+b&c</b>\"'", [[3, "a+b"]])
    assert html == (
        '<p class="body mentions-3">&lt;b&gt;<a class="mention" href="/dm/a+b/">@a+b</a>'
        "&amp;c&lt;/b&gt;&quot;&#x27;</p>\n"
    )


def test_the_message_body_carries_a_class_per_person_mentioned():
    message = Message(pk=5, body="@a @b", mentioned=[[7, "a"], [9, "b"]], seq=1)
    message.author = User(pk=1, username="x")
    html = render_to_string("chat/_message.html", {"message": message, "room_name": "r"})
    assert 'class="message by-1"' in html and '<p class="body mentions-7 mentions-9">' in html
