from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0013_relay_balance"),
    ]

    operations = [
        migrations.CreateModel(
            name="ZapReceipt",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("payment_hash", models.CharField(max_length=64, unique=True)),
                ("receipt_id", models.CharField(max_length=64, unique=True)),
                ("pubkey", models.CharField(max_length=64)),
                ("recipient", models.CharField(db_index=True, max_length=64)),
                (
                    "zapped_event_id",
                    models.CharField(blank=True, db_index=True, default="", max_length=64),
                ),
                ("sender", models.CharField(db_index=True, max_length=64)),
                ("amount_msat", models.BigIntegerField()),
                ("created_at", models.BigIntegerField(db_index=True)),
                ("raw_json", models.TextField()),
            ],
        ),
    ]
