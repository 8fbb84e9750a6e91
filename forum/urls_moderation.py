"""The moderation console under /mod/ — staff only."""

app_name = "mod"
urlpatterns: list = []
