"""HTTP views, split by audience: health, public pages, API, moderation console."""
