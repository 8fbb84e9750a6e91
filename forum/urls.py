"""Forum URL map: public pages, live fragments, the composer's helper and the demo wallet."""

from django.urls import path, re_path

from forum.views import (
    compose,
    demo,
    faces,
    feeds,
    health,
    inbox,
    nostr_kinds,
    pages,
    rooms,
    search,
)

EVENT_ID = r"(?P<event_id>[0-9a-fA-F]{64})"

urlpatterns = [
    path("", pages.home, name="home"),
    path("healthz", health.healthz, name="healthz"),
    path("how-to-post/", pages.how_to_post, name="how-to-post"),
    path("search", search.search, name="search"),
    path("hot/", pages.threads_ranked, {"sort": "hot"}, name="hot"),
    path("top/", pages.threads_ranked, {"sort": "top"}, name="top"),
    path("feed.atom", feeds.forum_feed, name="feed"),
    path("b/<slug:slug>/feed.atom", feeds.board_feed, name="board-feed"),
    re_path(rf"^t/{EVENT_ID}/feed\.atom$", feeds.thread_feed, name="thread-feed"),
    path("a/<str:key>/feed.atom", feeds.author_feed, name="author-feed"),
    path("a/<str:key>/inbox/", inbox.inbox_page, name="inbox"),
    path("a/<str:key>/inbox.atom", inbox.inbox_feed, name="inbox-feed"),
    path("a/<str:key>/inbox.json", inbox.inbox_unread, name="inbox-unread"),
    re_path(r"^i/(?P<pubkey>[0-9a-fA-F]{64})\.svg$", faces.identicon, name="identicon"),
    path("node-qr.svg", pages.node_qr, name="node-qr"),
    path("b/<slug:slug>/", pages.board, name="board"),
    re_path(rf"^t/{EVENT_ID}/$", pages.thread, name="thread"),
    re_path(rf"^e/{EVENT_ID}\.json$", pages.event_json, name="event-json"),
    re_path(rf"^e/{EVENT_ID}/fragment$", pages.event_fragment, name="event-fragment"),
    re_path(rf"^e/{EVENT_ID}/history$", nostr_kinds.event_history, name="event-history"),
    path(".well-known/nostr.json", nostr_kinds.nostr_json, name="nip05"),
    re_path(rf"^e/{EVENT_ID}/?$", pages.event_permalink, name="event"),
    path("a/<str:key>/", pages.author, name="author"),
    path("compose/records", compose.compose_records, name="compose-records"),
    path("csrf", pages.csrf_token, name="csrf-token"),
    path("rooms/quote", rooms.room_quote, name="room-quote"),
    path("r/<slug:slug>/", rooms.room, name="room"),
    path("r/<slug:slug>/unlock", rooms.room_unlock, name="room-unlock"),
    path("r/<slug:slug>/lock", rooms.room_lock, name="room-lock"),
    re_path(rf"^r/(?P<slug>[-\w]+)/t/{EVENT_ID}/$", rooms.room_thread, name="room-thread"),
    re_path(
        rf"^r/(?P<slug>[-\w]+)/e/{EVENT_ID}\.json$", rooms.room_event_json, name="room-event-json"
    ),
    re_path(rf"^r/(?P<slug>[-\w]+)/e/{EVENT_ID}/?$", rooms.room_event, name="room-event"),
    path("demo/wallet", demo.wallet, name="demo-wallet"),
    path("demo/keysend", demo.keysend, name="demo-keysend"),
    path("demo/pay-invoice", demo.pay_invoice, name="demo-pay-invoice"),
]
