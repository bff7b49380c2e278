from django.apps import AppConfig


class ChatConfig(AppConfig):
    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model, user_logged_out
        from django.db.models.signals import post_save

        from chat.realtime import process, session_notices

        # The process's registry of sockets and its scheduler, with the concerns that follow them.
        process.install()

        # A session that ends closes its sockets (see chat/realtime/session_notices.py).
        user_logged_out.connect(session_notices.on_logged_out, dispatch_uid="chat.session_notices.logged_out")
        post_save.connect(
            session_notices.on_user_saved, sender=get_user_model(), dispatch_uid="chat.session_notices.saved"
        )
