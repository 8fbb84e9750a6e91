"""JSON API (quote, status) — owned by the forum core."""

from django.urls import path

from forum.views import api

urlpatterns = [
    path("quote", api.quote, name="api-quote"),
    path("status/<str:key>", api.status, name="api-status"),
    path("balance", api.balance, name="api-balance"),
    path("balance/invoice", api.balance_invoice, name="api-balance-invoice"),
    path("invoice", api.invoice, name="api-invoice"),
    path("invoice/<str:payment_hash>/qr.svg", api.invoice_qr, name="api-invoice-qr"),
]
