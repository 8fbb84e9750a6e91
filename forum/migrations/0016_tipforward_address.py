from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0015_nostr_kinds"),
    ]

    operations = [
        migrations.AddField(
            model_name="tipforward",
            name="address",
            field=models.CharField(blank=True, default="", max_length=320),
        ),
        migrations.AddField(
            model_name="tipforward",
            name="payment_request",
            field=models.TextField(blank=True, default=""),
        ),
    ]
