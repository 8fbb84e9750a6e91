"""Forum models (filled by the forum core)."""
