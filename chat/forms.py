"""Validation shared by both paths: the HTTP views and the WebSocket consumer."""

from django import forms
from django.contrib.auth.forms import UserCreationForm

from .models import MESSAGE_BODY_MAX_LENGTH, ROOM_NAME_MAX_LENGTH, room_name_validator


class RoomForm(forms.Form):
    room = forms.CharField(
        label="Room name",
        max_length=ROOM_NAME_MAX_LENGTH,
        validators=[room_name_validator],
        error_messages={"required": "Type a room name."},
    )


class MessageForm(forms.Form):
    message = forms.CharField(
        label="Message",
        max_length=MESSAGE_BODY_MAX_LENGTH,
        strip=True,
        error_messages={
            "required": "Type a message first.",
            "max_length": "A message is at most %(limit_value)d characters (this one has %(show_value)d).",
        },
    )
    # Idempotency: the form carries a fresh token; a resend of the same form reuses it.
    token = forms.UUIDField(
        widget=forms.HiddenInput, error_messages={"required": "The form is stale: reload the page."}
    )


class SignupForm(UserCreationForm):
    pass
