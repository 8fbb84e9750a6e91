# Relay balances (docs/relay.md): ledger purposes `credit` and `spend`, and the rejection
# reason `insufficient_balance`. Choices only: no schema change.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("forum", "0012_notifications_hot"),
    ]

    operations = [
        migrations.AlterField(
            model_name="ledgerentry",
            name="purpose",
            field=models.CharField(
                choices=[
                    ("message", "forum message"),
                    ("part", "message part"),
                    ("topup", "top-up"),
                    ("tip", "tip"),
                    ("other", "other payment"),
                    ("refund", "refund"),
                    ("tip_forward", "tip forward"),
                    ("credit", "balance credit"),
                    ("spend", "paid from balance"),
                ],
                default="other",
                max_length=12,
            ),
        ),
        migrations.AlterField(
            model_name="rejection",
            name="reason",
            field=models.CharField(
                choices=[
                    ("malformed", "malformed"),
                    ("bad_id", "bad id"),
                    ("bad_signature", "bad signature"),
                    ("unsupported_kind", "unsupported kind"),
                    ("unknown_board", "unknown board"),
                    ("too_large", "too large"),
                    ("underpaid", "underpaid"),
                    ("duplicate", "duplicate"),
                    ("orphan_timeout", "parent never arrived"),
                    ("incomplete_parts", "incomplete parts"),
                    ("banned", "banned"),
                    ("thread_locked", "thread locked"),
                    ("unknown_target", "unknown event for top-up/tip"),
                    ("hold_expired", "held past the hold time"),
                    ("unsupported_version", "unsupported protocol version"),
                    ("bad_created_at", "created_at out of range"),
                    ("target_hidden", "hidden by a moderator"),
                    ("insufficient_balance", "balance too low"),
                ],
                db_index=True,
                max_length=20,
            ),
        ),
    ]
