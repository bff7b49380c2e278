from django.db import migrations, models


def posted_at_seq(apps, schema_editor):
    Message = apps.get_model("chat", "Message")
    Message.objects.update(posted_seq=models.F("seq"))


class Migration(migrations.Migration):
    dependencies = [("chat", "0002_profile")]

    operations = [
        migrations.AddField(
            model_name="message", name="posted_seq", field=models.PositiveBigIntegerField(default=0), preserve_default=False
        ),
        migrations.RunPython(posted_at_seq, migrations.RunPython.noop),
        migrations.AddField(model_name="message", name="edited", field=models.DateTimeField(blank=True, null=True)),
        migrations.AddField(model_name="message", name="deleted", field=models.DateTimeField(blank=True, null=True)),
    ]
