"""Forum URL map."""

from django.urls import path

from forum.views import health, pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
]
