"""Top-level URL map."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mod/", include("forum.urls_moderation")),
    path("api/", include("forum.urls_api")),
    path("", include("forum.urls")),
]
