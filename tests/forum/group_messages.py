"""Listening to a realtime group in a test: what a page or composer subscribed to it hears."""

from __future__ import annotations

import asyncio

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer


def listen(group: str) -> tuple[object, str]:
    """A new channel in `group`: (the layer, the channel name)."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return layer, channel


def received(layer, channel: str, *, quiet: float = 0.5) -> list[dict]:
    """Every message `channel` got, until none came for `quiet` seconds."""

    async def drain() -> list[dict]:
        out = []
        while True:
            try:
                out.append(await asyncio.wait_for(layer.receive(channel), timeout=quiet))
            except TimeoutError:
                return out

    return async_to_sync(drain)()
