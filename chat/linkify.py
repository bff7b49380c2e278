"""Links in message bodies: a body split into plain-text and URL segments, for a template to render.

No HTML is made here. `templates/chat/_message_body.html` renders each segment with
autoescaping, a URL as `<a href="…" target="_blank" rel="nofollow noopener ugc">`. What is a link:
`http://…`, `https://…` (any case) and `www.…` (linked as https), not preceded by a letter,
digit, dot, slash, `@` or hyphen (so `xhttp://`, `foo.www.x` and e-mail addresses stay text).
A URL ends at whitespace, control or invisible formatting characters, and at ``"<>`\\{}|^``;
trailing punctuation and closing brackets that close nothing in the URL are left out of it, so
`(see https://example.com/a_(b)).` links `https://example.com/a_(b)`. Every href starts with
`http://` or `https://`, so no `javascript:` or other scheme can get in, and the link text is the
URL exactly as typed.
"""

import re
from typing import NamedTuple
from urllib.parse import urlsplit

# Characters that end a URL: whitespace, C0/C1 controls, invisible format characters (zero-width
# and bidirectional controls, which could make the text shown differ from the address), and
# characters that RFC 3986 never allows unescaped and that people put around URLs.
_STOP = r"\s\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\"<>`\\{}|^"
_CANDIDATE = re.compile(rf"(?<![\w.@/-])(?:https?://|www\.)[^{_STOP}]+", re.IGNORECASE)
_TRAILING = ".,:;!?'*"
_PAIRS = {")": "(", "]": "["}


class Segment(NamedTuple):
    """A piece of a message body: `href` is set when `text` is a URL."""

    text: str
    href: str | None = None


def _trim(candidate: str) -> str:
    """The candidate without trailing punctuation and unbalanced closing brackets."""
    while candidate:
        last = candidate[-1]
        if last in _TRAILING:
            candidate = candidate[:-1]
        elif last in _PAIRS and candidate.count(last) > candidate.count(_PAIRS[last]):
            candidate = candidate[:-1]
        else:
            break
    return candidate


def web_href(url: str) -> str | None:
    """The link target for `url`, or None when it has no host (then it stays text)."""
    href = url if "://" in url[:8] else f"https://{url}"
    try:
        parts = urlsplit(href)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    # A host needs a letter or digit: "https://..." or "www.-" is not a link.
    if not any(char.isalnum() for char in parts.hostname):
        return None
    return href


def segments(body: str) -> list[Segment]:
    """`body` as consecutive text and URL segments; joined, their texts give `body` back."""
    parts: list[Segment] = []
    position = 0
    for match in _CANDIDATE.finditer(body):
        url = _trim(match.group())
        href = web_href(url) if url else None
        if href is None:
            continue
        start, end = match.start(), match.start() + len(url)
        if start > position:
            parts.append(Segment(body[position:start]))
        parts.append(Segment(url, href))
        position = end
    if position < len(body):
        parts.append(Segment(body[position:]))
    return parts
