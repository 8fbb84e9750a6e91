"""Fixtures for kinds 0/5/1010: the core's boards, keys and keysend poster."""

from tests.forum.core.conftest import Poster, alice_key, board, bob_key, poster  # noqa: F401
