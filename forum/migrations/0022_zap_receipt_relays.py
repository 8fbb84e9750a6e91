from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0021_search_gin_pending_limit"),
    ]

    operations = [
        migrations.AddField(
            model_name="zapreceipt",
            name="relays_sent_at",
            field=models.DateTimeField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="zapreceipt",
            name="relays_result",
            field=models.JSONField(blank=True, default=dict),
        ),
    ]
