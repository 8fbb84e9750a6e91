"""Business logic: every write the forum makes goes through a function in this package."""
