"""Fixtures for kinds 0/5/1010: the core's boards, keys and keysend poster."""

from tests.forum.core.conftest import (  # noqa: F401
    Poster,
    alice_key,
    board,
    bob_key,
    fresh_forum_node,
    poster,
)
