"""Websocket consumers: they only relay group messages to the browser."""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from forum import realtime


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """One socket per page; the URL says which board, thread or payment status it follows."""

    async def connect(self) -> None:
        realtime.note_consumer_loop()
        kwargs = self.scope["url_route"]["kwargs"]
        scope_name = kwargs["scope"]
        key = kwargs["key"]
        if not await self._may_follow(scope_name, key):
            await self.close(code=4403)  # a private room this session has not unlocked
            return
        if scope_name == "board":
            group = realtime.board_group(key)
        elif scope_name == "thread":
            group = realtime.thread_group(key)
        else:
            group = realtime.payment_group(key)
        self.groups_joined = [group]
        await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "group": group})

    @database_sync_to_async
    def _may_follow(self, scope_name: str, key: str) -> bool:
        from forum.selectors.rooms import live_follow_allowed
        from forum.views.rooms import SESSION_KEY

        session = self.scope.get("session")
        unlocked = session.get(SESSION_KEY, {}) if session is not None else {}
        return live_follow_allowed(scope=scope_name, key=key, unlocked=unlocked)

    async def disconnect(self, code: int) -> None:
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content: dict, **kwargs) -> None:
        # Following more status keys on one socket (a composer may send several messages).
        if content.get("follow") and isinstance(content["follow"], str):
            group = realtime.payment_group(content["follow"])
            if group not in self.groups_joined and len(self.groups_joined) < 50:
                self.groups_joined.append(group)
                await self.channel_layer.group_add(group, self.channel_name)

    async def post_published(self, event: dict) -> None:
        await self.send_json({"type": "post.published", **event["payload"]})

    async def post_hidden(self, event: dict) -> None:
        await self.send_json({"type": "post.hidden", **event["payload"]})

    async def message_status(self, event: dict) -> None:
        await self.send_json({"type": "message.status", **event["payload"]})

    async def thread_updated(self, event: dict) -> None:
        await self.send_json({"type": "thread.updated", **event["payload"]})
