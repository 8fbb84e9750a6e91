"""Tests of the Nostr relay interface (forum.relay)."""
