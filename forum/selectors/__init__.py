"""All reads that views and consumers need, by audience (query counts pinned in tests)."""
