"""Every piece of HTML the server pushes over a socket, rendered from templates.

The socket protocol (what the browser sends, what it gets back) is documented
in docs/protocol.md; each function here renders one of the frames it lists.
"""

from uuid import uuid4

from django.template.loader import render_to_string

from .models import Message


def message_appended(*, message: Message) -> str:
    """A new message, for every member of the room: appended to the list, cursor moved."""
    return render_to_string("chat/oob/_message_appended.html", {"message": message})


def history_replaced(*, messages: list[Message]) -> str:
    """The authoritative recent history, replacing the list after a reconnect."""
    return render_to_string("chat/oob/_history_replaced.html", {"history": messages})


def compose_reset() -> str:
    """For the sender after a successful send: an empty input, a fresh token, no errors."""
    return render_to_string("chat/oob/_compose_reset.html", {"token": uuid4()})


def compose_errors(*, errors: list[str]) -> str:
    """For the sender only: why the message was not sent. The typed text stays."""
    return render_to_string("chat/oob/_compose_errors.html", {"errors": errors})
