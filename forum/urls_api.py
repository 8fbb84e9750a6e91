"""JSON API (quote, status) — owned by the forum core."""

urlpatterns: list = []
