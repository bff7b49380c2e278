"""A lobby page's lists as htmx keeps them: each lobby frame applied as the ws extension swaps it.

The lobby socket sends a list whole (`<ul id="rooms" hx-swap-oob="true">`) or only what changed
(chat/realtime/lobby_changes.py): items deleted by id, items put at a list's top
(`<ul hx-swap-oob="afterbegin:#rooms">`), items replaced by id. Like htmx, each top-level element of a
frame is swapped in order; unlike htmx, a swap whose target is missing fails the test (htmx would only
log it, and the page would show a wrong list).
"""

import re

TOP_LEVEL = re.compile(r"<(ul|li|div)\b([^>]*)>(.*?)</\1>", re.S)
ITEM = re.compile(r"<li\b([^>]*)>.*?</li>", re.S)


def attribute(attributes: str, name: str) -> str | None:
    found = re.search(rf'\b{name}="([^"]*)"', attributes)
    return found.group(1) if found else None


def item_id(item: str) -> str | None:
    return attribute(ITEM.match(item).group(1), "id")


class LobbyPage:
    def __init__(self) -> None:
        self.lists: dict[str, list[str] | None] = {"rooms": None, "direct": None}  # each item's HTML
        self.title: str | None = None

    def apply(self, frame: str) -> bool:
        """Swap the frame in; whether it was a lobby frame (one that changed a list or the title)."""
        touched = False
        for found in TOP_LEVEL.finditer(frame):
            tag, attributes, inner = found.groups()
            swap, element_id = attribute(attributes, "hx-swap-oob"), attribute(attributes, "id")
            if tag == "ul" and element_id in self.lists and swap == "true":
                self.lists[element_id] = [item.group(0) for item in ITEM.finditer(inner)]
            elif tag == "ul" and swap and swap.startswith("afterbegin:#"):
                name = swap.removeprefix("afterbegin:#")
                assert self.lists.get(name) is not None, f"no #{name} to put items in"
                self.lists[name][:0] = [item.group(0) for item in ITEM.finditer(inner)]
            elif tag == "li" and (element_id or "").startswith("lobby-") and swap == "delete":
                self.replace(element_id, None)
            elif tag == "li" and (element_id or "").startswith("lobby-") and swap in (None, "true"):
                self.replace(element_id, found.group(0))
            elif tag == "div" and swap == "innerHTML:#page-title":
                self.title = inner
            else:
                continue
            touched = True
        return touched

    def replace(self, element_id: str, item: str | None) -> None:
        """The item of that id replaced by `item`, or deleted (None)."""
        for items in self.lists.values():
            for index, shown in enumerate(items or ()):
                if item_id(shown) == element_id:
                    items[index : index + 1] = [] if item is None else [item]
                    return
        raise AssertionError(f"no #{element_id} on the page")

    def ids(self, name: str = "rooms") -> list[str]:
        return [item_id(item) for item in self.lists[name] or ()]
