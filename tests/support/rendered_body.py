"""A message body as `templates/chat/_message_body.html` renders it, parsed as a browser would: the
elements it really has (with their attributes), its text, and the text inside each element."""

from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

from django.template.loader import render_to_string


class RenderedBody(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text = ""
        self.inside: dict[str, str] = {}  # tag → the text inside the last one
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self.open.append(tag)
        self.inside[tag] = ""

    def handle_endtag(self, tag):
        if tag in self.open:
            self.open.remove(tag)

    def handle_data(self, data):
        self.text += data
        for tag in self.open:
            self.inside[tag] += data


def rendered(body: str, mentioned: Any = ()) -> RenderedBody:
    html = render_to_string("chat/_message_body.html", {"message": SimpleNamespace(body=body, mentioned=mentioned)})
    page = RenderedBody()
    page.feed(html.removesuffix("\n"))  # the file ends with a newline, after the body
    page.close()
    return page
