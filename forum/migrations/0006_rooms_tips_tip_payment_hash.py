# TipForward keyed by the tip's payment hash (so rebuild_from_node can delete and re-create the
# incoming ledger rows without losing or repeating a forward).

import django.db.models.deletion
from django.db import migrations, models


def copy_tip_hashes(apps, schema_editor):
    TipForward = apps.get_model("forum", "TipForward")
    for forward in TipForward.objects.select_related("tip_entry"):
        forward.tip_payment_hash = forward.tip_entry.payment_hash
        forward.tip_amount_msat = forward.tip_entry.amount_msat
        forward.save(update_fields=["tip_payment_hash", "tip_amount_msat"])


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0005_merge_hold_rooms_tips"),
    ]

    operations = [
        migrations.AddField(
            model_name="tipforward",
            name="tip_amount_msat",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="tipforward",
            name="tip_payment_hash",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.RunPython(copy_tip_hashes, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="tipforward",
            name="tip_payment_hash",
            field=models.CharField(max_length=64, unique=True),
        ),
        migrations.AlterField(
            model_name="tipforward",
            name="tip_entry",
            field=models.OneToOneField(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="tip_forward",
                to="forum.ledgerentry",
            ),
        ),
    ]
