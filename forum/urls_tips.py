"""Tips by invoice, LNURL-pay (LUD-06), Lightning Addresses (LUD-16) and NIP-57 zaps."""

from django.urls import path, re_path

from forum.views import lnurl

EVENT_ID = r"(?P<event_id>[0-9a-fA-F]{64})"

urlpatterns = [
    path(".well-known/lnurlp/<str:name>", lnurl.address, name="lnurlp-address"),
    path("lnurlp/<str:name>/callback", lnurl.address_callback, name="lnurlp-address-callback"),
    re_path(rf"^lnurlp/e/{EVENT_ID}$", lnurl.post, name="lnurlp-post"),
    re_path(rf"^lnurlp/e/{EVENT_ID}/callback$", lnurl.post_callback, name="lnurlp-post-callback"),
    path("api/tip", lnurl.tip, name="api-tip"),
]
