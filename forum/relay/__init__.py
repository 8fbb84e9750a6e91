"""The forum as a read-only Nostr relay (NIP-01 websocket and NIP-11 document at ``/relay``).

``filters`` parses and matches subscription filters (pure), ``selectors`` reads what may be
served, ``info`` holds limits, the NIP-11 document and the how-to-publish answer, ``consumer``
is the websocket and ``views`` the HTTP side. See docs/relay.md.
"""
