"""Where invoices show outside the composer: the how-to-post page and the moderation console."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from forum.models import InvoiceIntent
from forum.permissions import MODERATOR_GROUP

pytestmark = pytest.mark.django_db


def _intent(n: int, **kw) -> InvoiceIntent:
    defaults = {
        "payment_hash": f"{n:064x}",
        "purpose": "post",
        "event_id": f"{n + 100:064x}",
        "pubkey": "ab" * 32,
        "amount_msat": 10_000,
        "payment_request": "lnbcrt100n1xyz",
        "expires_at": timezone.now() + timedelta(minutes=10),
    }
    return InvoiceIntent.objects.create(**{**defaults, **kw})


def test_console_lists_invoices_waiting_paid_refused_and_expired(client):
    user = User.objects.create_user("mod", password="pw")
    user.groups.add(Group.objects.get_or_create(name=MODERATOR_GROUP)[0])
    client.force_login(user)
    _intent(1)
    _intent(2, state="settled")
    _intent(3, state="cancelled", reason="banned")
    _intent(4, expires_at=timezone.now() - timedelta(minutes=1))  # nobody closed it yet
    _intent(5, state="expired")
    page = client.get("/mod/invoices/").content.decode()
    rows = {n: page.split(f'data-invoice="{n:064x}"')[1].split("</tr>")[0] for n in range(1, 6)}
    assert "<code>open</code>" in rows[1] and "expires" in rows[1]
    assert "<code>settled</code>" in rows[2]
    assert "<code>cancelled</code>" in rows[3] and "<code>banned</code>" in rows[3]
    assert "<code>expired</code>" in rows[4] and "<code>expired</code>" in rows[5]
    only = client.get("/mod/invoices/?state=cancelled").content.decode()
    assert f"{3:064x}" in only and f"{1:064x}" not in only
    client.logout()
    assert client.get("/mod/invoices/").status_code == 302  # moderators only


def test_how_to_post_explains_paying_by_invoice(client, settings, simnet):
    from tests.forum.web import factories as f

    f.board("general", thread_price_msat=21_000)
    settings.HOLD_MODE = True
    page = client.get("/how-to-post/").content.decode()
    assert "pay by invoice" in page.lower() and "POST /api/invoice" in page
    assert "-m forum.client post --invoice" in page
    assert "nothing is charged" in page
