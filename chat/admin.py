"""The admin's user pages, through the services: a user is removed by deactivation, never deleted, and a name that
looks like another user's is refused as on sign-up (chat/accounts/lookalikes.py).

Deleting a user would delete their messages behind every page's back (no seq, no broadcast, a reconnecting
page keeps showing them). So the admin offers no delete; its action removes the selected users as the room
pages' "Remove user" does (services.user_deactivate): their sockets close, and with the second action their
messages become tombstones, each a change in its room's stream. Unticking "active" does the first part too.
"""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest

from chat import services
from chat.accounts.forms import DistinctNameMixin

User = get_user_model()


class AddUserForm(DistinctNameMixin, AdminUserCreationForm):
    pass


class ChangeUserForm(DistinctNameMixin, UserChangeForm):
    pass


class ChatUserAdmin(UserAdmin):
    add_form = AddUserForm
    form = ChangeUserForm
    actions = ["remove_users", "remove_users_and_messages"]

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.action(description="Remove the selected users (they can no longer log in; their pages close)")
    def remove_users(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.remove(request, queryset, delete_messages=False)

    @admin.action(description="Remove the selected users and delete all their messages")
    def remove_users_and_messages(self, request: HttpRequest, queryset: QuerySet) -> None:
        self.remove(request, queryset, delete_messages=True)

    def remove(self, request: HttpRequest, queryset: QuerySet, *, delete_messages: bool) -> None:
        for user in queryset:
            try:
                changes = services.user_deactivate(user=user, by=request.user, delete_messages=delete_messages)
            except PermissionDenied as denied:
                self.message_user(request, f"{user.get_username()}: {denied}", messages.ERROR)
                continue
            services.changes_broadcast_on_commit(changes=changes)
            deleted = f", {len(changes)} message{'' if len(changes) == 1 else 's'} deleted" if delete_messages else ""
            self.message_user(request, f"{user.get_username()} was removed{deleted}.")


admin.site.unregister(User)
admin.site.register(User, ChatUserAdmin)
