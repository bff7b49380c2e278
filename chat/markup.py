"""Message formatting: a safe subset of Markdown, as a flat list of parts for a template to render.

markdown-it-py (CommonMark) parses the text with only these rules on: *emphasis* and _emphasis_,
**strong**, `code`, ``` fenced code blocks ```, > quotes, - and 1. lists, [links](https://…) and
backslash escapes. Raw HTML is text (`html` off), so are entities (`&amp;` shows as typed), headings,
rules, tables, images and indented code; a line break is a line break (`breaks` on), as people type in a
chat. No HTML is made here: `templates/chat/_message_body.html` turns each part into its element and
autoescapes every text. A link's target must be an http(s) URL with a host (chat/linkify.py `web_href`),
or the link reads as typed; bare URLs and @mentions in the text are found by chat/mentions.py as before, never
inside code or inside a link.

A bare URL, and whatever is glued to its end, reads as typed: it is set aside before parsing (a
placeholder of private-use characters takes its place), so no `*`, `_` or backtick in or after it starts
formatting; only marks that close ones opened right before it (`**https://…**`, `` `https://…` ``) still
format. So "https://a.example/?x=`${alert(1)}`" shows exactly as typed.

Most messages are one paragraph: `Formatted.block` is then False and the template keeps the body a
`<p>`, exactly as it was before formatting existed.
"""

import re
from typing import NamedTuple

from markdown_it import MarkdownIt
from markdown_it.token import Token

from chat import linkify, mentions

PARSER = MarkdownIt("zero", {"breaks": True, "html": False}).enable(
    ["blockquote", "fence", "list", "backticks", "emphasis", "escape", "link", "newline"]
)

# What the enabled rules need to see to do anything: a mark, an escape, a quote, a fence, a list item, or a
# blank line between paragraphs. A body without any is one paragraph of text: it is not parsed.
MAY_BE_FORMATTED = re.compile(r"[*_`\[>\\~]|^ {0,3}(?:[-+]|\d{1,9}[.)])(?:[ \t]|$)|\n[ \t]*\n", re.MULTILINE)
# A URL set aside: its number between two private-use characters (removed from the text first, so a message
# cannot forge one).
SET_ASIDE = "\ue100{}\ue101"
SET_ASIDE_RE = re.compile("\ue100(\\d+)\ue101")
FORMATTING_MARKS = "*_`~"
CLOSING_PUNCTUATION = ".,:;!?)]}'\""

# Block and inline tokens that open or close an element, by the part the template knows them as.
ELEMENTS = {
    "paragraph_open": "<p",
    "paragraph_close": "p>",
    "blockquote_open": "<blockquote",
    "blockquote_close": "blockquote>",
    "bullet_list_open": "<ul",
    "bullet_list_close": "ul>",
    "ordered_list_open": "<ol",
    "ordered_list_close": "ol>",
    "list_item_open": "<li",
    "list_item_close": "li>",
    "em_open": "<em",
    "em_close": "em>",
    "strong_open": "<strong",
    "strong_close": "strong>",
}


class Part(NamedTuple):
    """One piece for the template. `kind`: "text", "link" (a bare URL: `href`), "mention" (`mention`: the
    username), "code" (inline), "pre" (a code block), "br", or an element's opening ("<em", "<a" with
    `href`, "<ol" with `start`) or closing ("em>")."""

    kind: str
    text: str = ""
    href: str = ""
    mention: str = ""
    start: int = 1


class Formatted(NamedTuple):
    block: bool  # more than one paragraph: the body is a <div> of blocks, else a <p> of the parts
    parts: list[Part]


def set_aside(body: str) -> tuple[str, list[str]]:
    """The body with each bare URL (and what is glued to its end) replaced by a SET_ASIDE placeholder, and the
    texts set aside, by number. A link's own target (`](https://…)`) stays for the parser."""
    body = body.replace("\ue100", "").replace("\ue101", "")
    urls, position = [], 0
    for segment in linkify.segments(body):
        if segment.href is not None:
            urls.append((position, position + len(segment.text)))
        position += len(segment.text)
    out: list[str] = []
    kept: list[str] = []
    cursor = 0
    for start, end in urls:
        if start < cursor or body[max(start - 2, 0) : start] == "](":  # glued to the one before; a link's target
            continue
        opened = re.search(f"[{re.escape(FORMATTING_MARKS)}]*$", body[cursor:start]).group()
        glued = re.match(r"\S*", body[end:]).group().rstrip(CLOSING_PUNCTUATION)
        if opened and glued.endswith(opened[::-1]):
            glued = glued.removesuffix(opened[::-1])
        out += [body[cursor:start], SET_ASIDE.format(len(kept))]
        kept.append(body[start : end + len(glued)])
        cursor = end + len(glued)
    out.append(body[cursor:])
    return "".join(out), kept


def put_back(text: str, kept: list[str]) -> str:
    """The text with what was set aside in it put back as it was typed (in code, in a link's own text)."""
    return SET_ASIDE_RE.sub(lambda found: kept[int(found[1])], text) if kept else text


def text_parts(text: str, *, mentioned: dict[str, str], kept: list[str] | None = None) -> list[Part]:
    """Text as plain, URL and mention parts (chat/mentions.py); what was set aside is put back, as typed."""
    parts = []
    for n, piece in enumerate(SET_ASIDE_RE.split(text) if kept else [text]):
        piece = kept[int(piece)] if n % 2 else piece  # split: text, number, text, number, …
        for segment in mentions.segments(piece, mentioned=mentioned):
            if segment.href is not None:
                parts.append(Part("link", segment.text, href=segment.href))
            elif segment.mention is not None:
                parts.append(Part("mention", segment.text, mention=segment.mention))
            elif segment.text:
                parts.append(Part("text", segment.text))
    return parts


def inline_parts(tokens: list[Token], *, mentioned: dict[str, str], kept: list[str]) -> list[Part]:
    parts: list[Part] = []
    links: list[str] = []  # per open link: "" if it became an <a>, else its target (shown as text)
    for token in tokens:
        if token.type == "text":
            if links:  # a link's own text: no link or mention inside it
                parts.append(Part("text", put_back(token.content, kept)))
            else:
                parts += text_parts(token.content, mentioned=mentioned, kept=kept)
        elif token.type in ("softbreak", "hardbreak"):
            parts.append(Part("text", "\n"))
        elif token.type == "code_inline":
            parts.append(Part("code", put_back(token.content, kept)))
        elif token.type == "link_open":
            target = str(token.attrs.get("href", ""))
            href = linkify.web_href(target) if target.lower().startswith(("http://", "https://")) else None
            links.append("" if href is not None else target)
            parts.append(Part("<a", href=href) if href is not None else Part("text", "["))
        elif token.type == "link_close":  # a link to anything but the web reads as it was typed
            target = links.pop()
            parts.append(Part("text", f"]({target})") if target else Part("a>"))
        elif token.type in ELEMENTS:
            parts.append(Part(ELEMENTS[token.type]))
        else:  # no other rule is on; should one appear, its text is shown as text
            parts.append(Part("text", put_back(token.content, kept)))
    return parts


def formatted(body: str, *, mentioned: dict[str, str]) -> Formatted:
    """The body as parts; `mentioned`: lower-cased name → username, the people the message was saved as
    mentioning."""
    if not MAY_BE_FORMATTED.search(body):  # most messages: no mark the parser would act on, no parse
        return Formatted(block=False, parts=text_parts(body, mentioned=mentioned))
    text, kept = set_aside(body)
    parts: list[Part] = []
    for token in PARSER.parse(text):
        if token.type == "inline":
            parts += inline_parts(token.children or [], mentioned=mentioned, kept=kept)
        elif token.type == "fence":
            parts.append(Part("pre", put_back(token.content.removesuffix("\n"), kept)))
        elif token.type == "ordered_list_open":
            parts.append(Part("<ol", start=int(token.attrs.get("start", 1))))
        elif token.type in ELEMENTS and not token.hidden:  # a tight list's items hide their paragraphs
            parts.append(Part(ELEMENTS[token.type]))
    if not parts:
        return Formatted(block=False, parts=[Part("text", body)])  # only blanks: shown as they are
    single = parts[0].kind == "<p" and parts[-1].kind == "p>" and not any(p.kind == "<p" for p in parts[1:])
    return Formatted(block=not single, parts=parts[1:-1] if single else parts)
