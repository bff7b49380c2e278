"""A snippet as the database marks it (private-use characters around the matched words) split into parts
[(text, is_match), ...] for the template, which escapes every part and wraps the matches in <mark>: no HTML
is ever built from the text."""

MARK_START = "\ue000"
MARK_END = "\ue001"
# PostgreSQL's ts_headline drops anything that looks like an HTML tag: its text goes there with < and > as
# these, and they come back here (chat/search/postgres.py).
LESS_THAN = "\ue002"
GREATER_THAN = "\ue003"
MARKERS = (MARK_START, MARK_END, LESS_THAN, GREATER_THAN)
SNIPPET_WORDS = 24


def snippet_parts(marked: str) -> list[tuple[str, bool]]:
    marked = marked.replace(LESS_THAN, "<").replace(GREATER_THAN, ">")
    parts: list[tuple[str, bool]] = []
    inside = False
    text = ""
    for char in marked:
        if char in (MARK_START, MARK_END):
            if text:
                parts.append((text, inside))
            text, inside = "", char == MARK_START
        else:
            text += char
    if text:
        parts.append((text, inside))
    return parts
