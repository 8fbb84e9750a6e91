"""Top-level URL map."""

from django.contrib import admin
from django.urls import include, path

from config.views import favicon
from forum.relay import views as relay_views

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("mod/", include("forum.urls_moderation")),
    path("", include("forum.urls_tips")),  # before api/: POST /api/tip lives there
    path("api/", include("forum.urls_api")),
    path("relay", relay_views.relay_info, name="relay"),
    path("", include("forum.urls")),
]
