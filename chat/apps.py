from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model, user_logged_out
        from django.db.models.signals import post_save

        from . import socket_auth

        # A session that ends closes its sockets (see socket_auth).
        user_logged_out.connect(socket_auth.on_logged_out, dispatch_uid="chat.socket_auth.logged_out")
        post_save.connect(socket_auth.on_user_saved, sender=get_user_model(), dispatch_uid="chat.socket_auth.saved")
