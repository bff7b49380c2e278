"""The account forms: sign-up, log-in and the reader's time zone."""

import zoneinfo
from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.contrib.auth.validators import ASCIIUsernameValidator

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


class SignupForm(FocusFirstErrorMixin, UserCreationForm):
    """Django's sign-up form, with usernames of ASCII letters, digits and @ . + - _ only: no look-alike
    letters from other scripts ("admin" spelt with a Cyrillic "a"), no invisible or combining characters.
    Like every sign-up form, it says when a name is taken (so it tells which names exist)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        validator = ASCIIUsernameValidator()
        self.fields["username"].validators.append(validator)
        self.fields["username"].help_text = "Up to 150 characters: English letters, digits and @ . + - _ only."
