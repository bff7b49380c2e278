"""The account forms: sign-up, log-in and the reader's time zone."""

import zoneinfo
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.contrib.auth.validators import ASCIIUsernameValidator

from chat.accounts.lookalikes import lookalike
from chat.forms import FocusFirstErrorMixin


def time_zone_choices() -> list[tuple[str, str]]:
    zones = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})
    return [(zone, zone.replace("_", " ")) for zone in zones]


class TimeZoneForm(FocusFirstErrorMixin, forms.Form):
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=time_zone_choices,
        help_text="Times and dates of messages are shown in this zone.",
        error_messages={"invalid_choice": "Choose a time zone from the list."},
    )


class LoginForm(FocusFirstErrorMixin, AuthenticationForm):
    pass


class DistinctNameMixin:
    """A username nobody can mistake for an existing one (chat/accounts/lookalikes.py): on sign-up, and when
    the admin makes or renames a user."""

    def clean_username(self) -> str:
        parent = getattr(super(), "clean_username", None)  # the creation forms' "taken" check
        username = parent() if parent is not None else self.cleaned_data.get("username")  # type: ignore[attr-defined]
        if not username or self.has_error("username") or "username" not in self.changed_data:  # type: ignore[attr-defined]
            return username
        existing = lookalike(username, exclude_pk=self.instance.pk)  # type: ignore[attr-defined]
        if existing is not None:
            raise forms.ValidationError(
                f"“{username}” looks too much like “{existing}”, who is already here. Choose another name.",
                code="lookalike",
            )
        return username


class SignupForm(FocusFirstErrorMixin, DistinctNameMixin, UserCreationForm):
    """Django's sign-up form, with usernames of ASCII letters, digits and @ . + - _ only: no look-alike
    letters from other scripts ("admin" spelt with a Cyrillic "a"), no invisible or combining characters.
    Like every sign-up form, it says when a name is taken (so it tells which names exist)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        validator = ASCIIUsernameValidator()
        self.fields["username"].validators.append(validator)
        self.fields["username"].help_text = "Up to 150 characters: English letters, digits and @ . + - _ only."
