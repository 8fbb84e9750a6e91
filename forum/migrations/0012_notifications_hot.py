# Notifications (the inbox of a pubkey) and the thread's "Hot" rank (docs/community.md).

import django.db.models.deletion
from django.db import migrations, models


def hot_fill(apps, schema_editor):
    """Existing threads get their Hot rank (new ones get it when published)."""
    from forum.ranking import hot_score

    Thread = apps.get_model("forum", "Thread")
    batch = []
    for thread in Thread.objects.only("id", "sats_msat", "reply_count", "settled_at").iterator():
        thread.hot = hot_score(
            sats_msat=thread.sats_msat, replies=thread.reply_count, at=thread.settled_at
        )
        batch.append(thread)
        if len(batch) >= 1000:
            Thread.objects.bulk_update(batch, ["hot"])
            batch = []
    if batch:
        Thread.objects.bulk_update(batch, ["hot"])


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0011_invoice_intent"),
    ]

    operations = [
        migrations.AddField(
            model_name="thread",
            name="hot",
            field=models.FloatField(default=0.0),
        ),
        migrations.AddIndex(
            model_name="thread",
            index=models.Index(fields=["board", "is_hidden", "-hot"], name="thread_board_hot"),
        ),
        migrations.AddIndex(
            model_name="thread",
            index=models.Index(fields=["-hot"], name="thread_hot"),
        ),
        migrations.AddIndex(
            model_name="thread",
            index=models.Index(fields=["settled_at"], name="thread_settled"),
        ),
        migrations.RunPython(hot_fill, migrations.RunPython.noop),
        migrations.CreateModel(
            name="Notification",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("recipient", models.CharField(max_length=64)),
                (
                    "reason",
                    models.CharField(
                        choices=[("reply", "reply"), ("mention", "mention"), ("tip", "tip")],
                        max_length=8,
                    ),
                ),
                ("ref", models.CharField(max_length=64)),
                ("actor", models.CharField(blank=True, default="", max_length=64)),
                ("amount_msat", models.BigIntegerField(default=0)),
                ("created_at", models.DateTimeField()),
                (
                    "post",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="forum.post",
                    ),
                ),
                (
                    "thread",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="forum.thread",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["recipient", "-id"], name="notification_inbox")],
                "constraints": [
                    models.UniqueConstraint(fields=["recipient", "ref"], name="notification_once")
                ],
            },
        ),
    ]
