# The few hidden threads, indexed: search checks "reply not in a hidden thread" against them
# instead of joining every thread (docs/benchmarks.md, search).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0018_invoiceintent_credit"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="thread",
            index=models.Index(
                condition=models.Q(("is_hidden", True)), fields=["id"], name="thread_hidden"
            ),
        ),
    ]
