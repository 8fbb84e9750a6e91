"""NIP-57 zap requests as a Nostr client builds them (nostr-sdk), checked by `forum.zaps`."""

from __future__ import annotations

import json

import nostr_sdk as ns
import pytest

from forum import nostr, zaps

AUTHOR = "a1" * 32
POST = "b2" * 32


def zap_request(
    *,
    keys: ns.Keys | None = None,
    p: list[str] | None = None,
    e: list[str] | None = None,
    amount: str | None = "21000",
    relays: list[str] | None = None,
    extra: list[list[str]] | None = None,
    kind: int = zaps.KIND_ZAP_REQUEST,
) -> str:
    tags = [["p", value] for value in (p if p is not None else [AUTHOR])]
    tags += [["e", value] for value in (e if e is not None else [POST])]
    if amount is not None:
        tags.append(["amount", amount])
    tags.append(["relays", *(relays if relays is not None else ["wss://relay.example"])])
    tags += extra or []
    builder = ns.EventBuilder(ns.Kind(kind), "great post").tags([ns.Tag.parse(t) for t in tags])
    return builder.finalize(keys or ns.Keys.generate()).as_json()


def refused(text: str, amount_msat: int = 21000) -> zaps.ZapRequestError:
    with pytest.raises(zaps.ZapRequestError) as info:
        zaps.zap_request_parse(text, amount_msat=amount_msat)
    return info.value


def test_a_valid_zap_request_is_read_with_its_recipient_post_relays_and_amount():
    keys = ns.Keys.generate()
    text = zap_request(keys=keys, relays=["wss://a.example", "ws://b.example:7000"])
    request = zaps.zap_request_parse(text, amount_msat=21000)
    assert request.recipient == AUTHOR
    assert request.event_id == POST
    assert request.sender == keys.public_key().to_hex()
    assert request.relays == ("wss://a.example", "ws://b.example:7000")
    assert request.amount_msat == 21000
    assert request.text == text  # kept byte for byte: the description hash commits to it


def test_the_amount_tag_is_optional_and_a_profile_zap_has_no_e_tag():
    request = zaps.zap_request_parse(zap_request(amount=None, e=[]), amount_msat=5000)
    assert request.amount_msat is None and request.event_id == ""


def test_a_bad_signature_is_refused():
    data = json.loads(zap_request())
    data["sig"] = ("00" if data["sig"][:2] != "00" else "11") + data["sig"][2:]
    error = refused(json.dumps(data))
    assert error.code == "bad_signature"
    assert "signature" in error.text


def test_a_changed_content_no_longer_matches_its_id():
    data = json.loads(zap_request())
    data["content"] = "edited"
    assert refused(json.dumps(data)).code == "bad_id"


def test_an_amount_tag_that_differs_from_the_amount_asked_for_is_refused():
    error = refused(zap_request(amount="21000"), amount_msat=1000)
    assert error.code == "wrong_amount"
    assert "21000" in error.text and "1000 msat was asked" in error.text


@pytest.mark.parametrize(
    "p",
    [[], [AUTHOR, "c3" * 32], ["npub1notahexkey"]],
    ids=["none", "two", "not-hex"],
)
def test_anything_but_exactly_one_hex_p_tag_is_refused(p):
    assert refused(zap_request(p=p)).code == "bad_p_tag"


def test_two_e_tags_are_refused():
    assert refused(zap_request(e=[POST, "c3" * 32])).code == "bad_e_tag"


@pytest.mark.parametrize(
    "relays",
    [[], ["https://not-a-relay.example"], ["wss://"], ["wss://r.example"] * 21],
    ids=["empty", "https", "no-host", "too-many"],
)
def test_the_relays_tag_must_list_websocket_urls(relays):
    assert refused(zap_request(relays=relays)).code == "bad_relays"


def test_a_zap_request_without_relays_tag_is_refused():
    text = zap_request()
    data = json.loads(text)
    tags = [t for t in data["tags"] if t[0] != "relays"]
    keys = ns.Keys.generate()
    builder = ns.EventBuilder(ns.Kind(9734), "").tags([ns.Tag.parse(t) for t in tags])
    text = builder.finalize(keys).as_json()
    assert refused(text).code == "bad_relays"


def test_another_kind_is_not_a_zap_request():
    assert refused(zap_request(kind=1)).code == "wrong_kind"


def test_an_a_tag_is_refused_as_unsupported():
    assert refused(zap_request(extra=[["a", f"30023:{AUTHOR}:x"]])).code == "unsupported"


def test_a_huge_zap_request_is_refused_before_parsing():
    assert refused("x" * (zaps.MAX_ZAP_REQUEST_BYTES + 1)).code == "too_large"


def test_garbage_is_malformed():
    assert refused("{not json").code == "malformed"


def test_the_receipt_mirrors_the_request_and_is_signed_by_the_relay_key():
    secret = nostr.generate_secret_key()
    text = zap_request()
    request = zaps.zap_request_parse(text, amount_msat=21000)
    receipt = zaps.zap_receipt_build(
        secret, request, bolt11="lnbcrt1...", preimage_hex="ab" * 32, paid_at=1_700_000_000
    )
    checked = ns.Event.from_json(receipt.to_json())
    assert checked.verify()
    assert receipt.pubkey == nostr.public_key(secret)
    assert receipt.kind == 9735 and receipt.created_at == 1_700_000_000
    tags = {tag[0]: tag[1] for tag in receipt.tags}
    assert tags["p"] == AUTHOR and tags["e"] == POST
    assert tags["P"] == request.sender
    assert tags["description"] == text
    assert tags["bolt11"] == "lnbcrt1..." and tags["preimage"] == "ab" * 32


def test_lnurl_metadata_and_its_hash():
    metadata = zaps.lnurl_metadata(text="Tip a post", identifier="npub1x@forum.example")
    assert json.loads(metadata) == [
        ["text/plain", "Tip a post"],
        ["text/identifier", "npub1x@forum.example"],
    ]
    assert len(zaps.description_hash(metadata)) == 32
    assert zaps.lnurl_encode("https://forum.example/lnurlp/x").startswith("LNURL1")
