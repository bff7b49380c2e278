"""Rooms, the messages posted in them, and each user's reading preferences."""

import zoneinfo

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models

# What a Channels group name allows, so a room name is also a safe group suffix.
# Not only dots: `/chat/../` is resolved by browsers to `/`, so such a room's links lead elsewhere.
ROOM_NAME_MAX_LENGTH = 64
room_name_validator = RegexValidator(
    r"\A(?!\.+\Z)[A-Za-z0-9._-]{1,64}\Z",
    "A room name is 1 to 64 letters, digits, hyphens, underscores or dots (not only dots).",
)
MESSAGE_BODY_MAX_LENGTH = 2000
MESSAGE_MAX_LINES = 50
DEFAULT_TIME_ZONE = "UTC"


# Direct conversations are rooms named DIRECT_PREFIX + 32 random hex digits: nobody can guess one,
# and no other room may take a name that starts so.
DIRECT_PREFIX = "dm-"


def room_group_name(name: str) -> str:
    """The Channels group of a room's sockets (a valid room name makes a valid group name)."""
    return f"chat.{name}"


class Room(models.Model):
    PUBLIC, PRIVATE, DIRECT = "public", "private", "direct"
    KINDS = [(PUBLIC, "Public"), (PRIVATE, "Private"), (DIRECT, "Direct messages")]

    name = models.CharField(max_length=ROOM_NAME_MAX_LENGTH, unique=True, validators=[room_name_validator])
    # Public: anyone may read it. Private and direct: its members only (Membership).
    kind = models.CharField(max_length=8, choices=KINDS, default=PUBLIC)
    # A direct conversation's two members' ids, lowest first ("3:7"; "3:3" is a user's notes to self).
    direct_key = models.CharField(max_length=41, unique=True, null=True, blank=True)
    created = models.DateTimeField(auto_now_add=True)
    last_activity = models.DateTimeField(auto_now_add=True, db_index=True)
    # The seq of the room's newest message: messages are numbered 1, 2, 3… per room
    # in commit order, so a socket that sees a number skipped knows it missed one.
    last_seq = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-last_activity"]

    def __str__(self) -> str:
        return self.name

    @property
    def group_name(self) -> str:
        return room_group_name(self.name)

    @property
    def is_public(self) -> bool:
        return self.kind == self.PUBLIC


class Membership(models.Model):
    """A member of a private room or a direct conversation; owners add and remove members."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    is_owner = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created", "id"]
        constraints = [models.UniqueConstraint(fields=["room", "user"], name="membership_room_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} in {self.room}{' (owner)' if self.is_owner else ''}"


class Message(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="messages")
    # A user with messages is removed by deactivation (services.user_deactivate), never deleted: deleting
    # would take their messages out of every room's stream behind the pages' backs.
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="messages")
    body = models.TextField(max_length=MESSAGE_BODY_MAX_LENGTH)
    created = models.DateTimeField(auto_now_add=True)
    # The room's changes are numbered 1, 2, 3… in commit order: a post, an edit and a delete each
    # take the next one. `seq` is the message's latest change, `posted_seq` the one it was posted at.
    seq = models.PositiveBigIntegerField()
    posted_seq = models.PositiveBigIntegerField()
    edited = models.DateTimeField(null=True, blank=True)
    # A deleted message stays as a tombstone (its text is erased) so the stream of changes keeps its place.
    deleted = models.DateTimeField(null=True, blank=True)
    # From the sending form's token and the text: a resend of the same form carries the same one.
    token = models.UUIDField()
    # The people the text mentions, as [user id, username] pairs, resolved once when it is saved
    # (chat/mentions.py): the text is rendered from it for everyone, with no query.
    mentioned = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["room", "-id"], name="message_room_latest")]
        constraints = [
            models.UniqueConstraint(fields=["author", "token"], name="message_author_token_unique"),
            models.UniqueConstraint(fields=["room", "seq"], name="message_room_seq_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.author} in {self.room}: {self.body[:40]}"


class Mention(models.Model):
    """A message that mentions a user who may read its room (never its author): their inbox, their notices and
    the lobby's count. Made when the message is saved or edited to mention them, removed when an edit takes the
    mention out, the message is deleted or they leave a private room. `seen`: they dismissed its notice or
    opened the message; a mention after their read mark of the room (ReadMark) and not seen is unread."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="mentions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="mentions")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="mentions")  # the message's, for counts
    created = models.DateTimeField(auto_now_add=True)
    seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "-message"], name="mention_user_latest")]
        constraints = [models.UniqueConstraint(fields=["message", "user"], name="mention_message_user_unique")]

    def __str__(self) -> str:
        return f"{self.user} in message {self.message_id}"


class Profile(models.Model):
    """What a signed-in user chose for reading: the time zone times and dates are shown in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    time_zone = models.CharField(max_length=64, default=DEFAULT_TIME_ZONE)

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone}"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)


class ReadMark(models.Model):
    """How far a signed-in user has read a room: the seq of the newest message they have seen there.

    Set when they open the room and moved on while they have it open (chat/realtime/unread.py); the lobby
    counts the messages after it as new.
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="read_marks")
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="read_marks")
    seq = models.PositiveBigIntegerField(default=0)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "room"], name="readmark_user_room_unique")]

    def __str__(self) -> str:
        return f"{self.user} read {self.room} to {self.seq}"


class Invitation(models.Model):
    """A staff member's single-use link to sign up with, when CHAT_SIGNUP=invite (chat/accounts/invitations.py).

    Only the SHA-256 of its token is kept: the link is shown once, to the staff member who made it, and
    a copy of the database does not hold usable links.
    """

    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="invitations")
    created = models.DateTimeField(auto_now_add=True)
    expires = models.DateTimeField()
    used = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    revoked = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"invitation by {self.created_by} until {self.expires:%Y-%m-%d}"
