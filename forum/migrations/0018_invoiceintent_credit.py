# A BOLT11 invoice can fund a relay balance (docs/relay.md): InvoiceIntent purpose `credit`.
# Choices only: no schema change.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0017_search_triggers"),
    ]

    operations = [
        migrations.AlterField(
            model_name="invoiceintent",
            name="purpose",
            field=models.CharField(
                choices=[("post", "post"), ("tip", "tip"), ("credit", "relay balance credit")],
                max_length=8,
            ),
        ),
    ]
