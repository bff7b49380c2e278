"""Validation shared by both paths: the HTTP views and the WebSocket consumer."""

import unicodedata

from django import forms
from django.core.exceptions import ValidationError

from chat.models import MESSAGE_BODY_MAX_LENGTH, MESSAGE_MAX_LINES, ROOM_NAME_MAX_LENGTH, room_name_validator

EMPTY_MESSAGE = "Type a message first."

# Characters that draw nothing: format characters (zero-width space and joiners, the BOM, bidi
# marks), controls, unassigned and private-use code points, and a few letters that render blank.
INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp", "Zs", "Mn", "Me"}
BLANK_LETTERS = {"\u115f", "\u1160", "\u3164", "\uffa0", "\u2800", "\u180e"}


def is_invisible(text: str) -> bool:
    """True if `text` would show nothing at all (a blank message in disguise)."""
    return all(ch.isspace() or ch in BLANK_LETTERS or unicodedata.category(ch) in INVISIBLE_CATEGORIES for ch in text)


class RoomForm(forms.Form):
    room = forms.CharField(
        label="Room name",
        max_length=ROOM_NAME_MAX_LENGTH,
        validators=[room_name_validator],
        error_messages={"required": "Type a room name."},
    )


class NewRoomForm(forms.Form):
    name = forms.CharField(
        label="Room name",
        max_length=ROOM_NAME_MAX_LENGTH,
        validators=[room_name_validator],
        error_messages={"required": "Type a room name."},
    )
    private = forms.BooleanField(label="Private: only the members you add can see it", required=False)


class MemberForm(forms.Form):
    username = forms.CharField(label="Username", max_length=150, error_messages={"required": "Type a username."})


class MessageBodyForm(forms.Form):
    """The text of a message: the same limits for a new one and an edit, on both paths."""

    message = forms.CharField(
        label="Message",
        max_length=MESSAGE_BODY_MAX_LENGTH,
        strip=True,
        error_messages={
            "required": EMPTY_MESSAGE,
            "max_length": "A message is at most %(limit_value)d characters (this one has %(show_value)d).",
        },
    )

    def clean_message(self) -> str:
        body = self.cleaned_data["message"].replace("\r\n", "\n").replace("\r", "\n")
        if is_invisible(body):
            raise ValidationError(EMPTY_MESSAGE, code="required")
        lines = body.count("\n") + 1
        if lines > MESSAGE_MAX_LINES:
            raise ValidationError(
                f"A message is at most {MESSAGE_MAX_LINES} lines (this one has {lines}).", code="max_lines"
            )
        return body


class MessageForm(MessageBodyForm):
    # Idempotency: the form carries a fresh token; a resend of the same form reuses it.
    token = forms.UUIDField(
        widget=forms.HiddenInput, error_messages={"required": "The form is stale: reload the page."}
    )


class DeactivateForm(forms.Form):
    delete_messages = forms.BooleanField(label="Also delete all their messages, in every room", required=False)


# The id of the box that lists errors about the whole form (templates/_form_fields.html).
FORM_ERRORS_ID = "form-errors"


class FocusFirstErrorMixin:
    """After validation, the first field with an error gets `autofocus` (no script needed to land there).

    With errors about the whole form only (a failed log-in), the first field gets the focus and is
    marked invalid and described by them. Django itself marks each field with errors `aria-invalid`
    and points its `aria-describedby` at them; templates/_form_fields.html renders them with those ids.
    """

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        if not self.errors:
            return
        fields = {name: field for name, field in self.fields.items() if not field.widget.is_hidden}
        for field in fields.values():
            field.widget.attrs.pop("autofocus", None)
        invalid = [name for name in fields if name in self.errors]
        target = fields[invalid[0] if invalid else next(iter(fields))]
        target.widget.attrs["autofocus"] = True
        if not invalid:
            target.widget.attrs.update({"aria-invalid": "true", "aria-describedby": FORM_ERRORS_ID})
