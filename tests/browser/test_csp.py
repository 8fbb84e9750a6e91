"""The Content-Security-Policy in a real Chromium: the composer still signs and pays through
browser extensions, and no page triggers a single violation.

A small unpacked extension (tests/browser/signer_extension/) puts `window.nostr` into the page
the way nos2x does (its content script adds `<script src="chrome-extension://<id>/...">`) and
`window.webln` the way Alby's Manifest V3 build does (a content script in the page's own
"MAIN" world). What lies behind them, the key and the Lightning node, lives outside the page in
real extensions (their background); here the test plays that part through Playwright bindings:
it signs with a key only it knows and pays by keysend from simnet's `bob`, not the demo wallet's
`alice`. docs/security.md explains why the policy does not get in the extensions' way.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import need

pytestmark = [pytest.mark.browser, pytest.mark.slow]

EXTENSION = Path(__file__).resolve().parent / "signer_extension"
EXTENSION_SECRET = "5e" * 32

# Recorded from the first moment of every page, in the page's own world: init scripts are
# evaluated by the browser itself, so the policy does not apply to them.
WATCH_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(
    [e.effectiveDirective, e.blockedURI, e.sourceFile, e.lineNumber, e.sample].join(" | ")
  );
});
"""


class ExtensionBackend:
    """The extension's privileged side: the signer's key and the wallet's node."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.calls: list[str] = []
        self.keysends: list[dict] = []
        self._client = None

    def signer(self, source, method: str, argument):
        from forum import nostr

        self.calls.append(method)
        if method == "getPublicKey":
            return nostr.public_key(EXTENSION_SECRET)
        signed = nostr.sign_event(
            EXTENSION_SECRET,
            kind=argument["kind"],
            tags=argument["tags"],
            content=argument["content"],
            created_at=argument["created_at"],
        )
        return signed.to_dict()

    def wallet(self, source, method: str, argument):
        from lightning.client import LightningClient

        self.calls.append(method)
        if self._client is None:
            nodes = json.loads((self.data_dir / "simnet" / "nodes.json").read_text())
            bob = nodes["bob"]
            self._client = LightningClient.from_files(bob["host"], bob["tls_cert"], bob["macaroon"])
        if method == "getInfo":
            info = self._client.get_info()
            return {"node": {"alias": info.alias, "pubkey": info.identity_pubkey}}
        records = {int(k): v.encode() for k, v in argument["customRecords"].items()}
        payment = self._client.keysend(
            argument["destination"], int(argument["amount"]) * 1000, records
        )
        if not payment.succeeded:
            raise RuntimeError(f"keysend failed: {payment.failure_reason}")
        self.keysends.append(argument)
        return {"preimage": payment.preimage, "paymentHash": payment.payment_hash}

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


@pytest.fixture(scope="module")
def extension_context(tmp_path_factory, forum_server):
    """Chromium with the test extension loaded (a persistent profile, as extensions need)."""
    need(os.path.exists(CHROMIUM), f"Debian's Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    backend = ExtensionBackend(forum_server.data_dir)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            viewport={"width": 1100, "height": 900},
            args=[
                *CHROMIUM_ARGS,
                f"--disable-extensions-except={EXTENSION}",
                f"--load-extension={EXTENSION}",
            ],
        )
        context.add_init_script(WATCH_VIOLATIONS)
        context.expose_binding("testSignerExtension", backend.signer)
        context.expose_binding("testWalletExtension", backend.wallet)
        context.backend = backend
        try:
            yield context
        finally:
            context.close()
            backend.close()


@pytest.fixture
def watched_page(extension_context):
    """A page whose console is watched too (Chromium logs every refused inline script)."""
    page = extension_context.new_page()
    page.set_default_timeout(30_000)
    page.console_csp = []
    page.js_errors = []
    page.on(
        "console",
        lambda m: page.console_csp.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.on("pageerror", lambda exc: page.js_errors.append(str(exc)))
    yield page
    page.close()


def _violations(page) -> list[str]:
    return page.evaluate("window.__cspViolations") + page.console_csp


def _open_welcome_thread(page, forum_server):
    response = page.goto(forum_server.url + "/b/general/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.get_by_role("link", name=re.compile("^Welcome")).click()
    page.wait_for_selector("#post-list")


def _compose_and_pay(page, text: str) -> str:
    page.fill("#compose textarea", text)
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    page.click("#compose .compose-pay")
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    return page.inner_text("#compose .status-text")


def test_extensions_inject_their_providers_despite_the_policy(watched_page, forum_server):
    page = watched_page
    page.goto(forum_server.url + "/")
    page.wait_for_function(
        "() => typeof window.nostr === 'object' && typeof window.webln === 'object'"
    )
    # nos2x's way: a script element whose src is the extension's own origin.
    injected = page.evaluate(
        "[...document.scripts].map(s => s.src).filter(src => src.startsWith('chrome-extension://'))"
    )
    assert len(injected) == 1 and injected[0].endswith("/nostr-provider.js")
    assert _violations(page) == []


def test_composer_signs_with_a_nip07_extension_and_pays_with_the_demo_wallet(
    watched_page, forum_server
):
    """The newcomer's path of `make run` (demo wallet) with a signer extension installed."""
    from forum import nostr

    page = watched_page
    _open_welcome_thread(page, forum_server)
    page.wait_for_function(
        "() => document.querySelector('#compose .identity').textContent.includes('Nostr extension')"
    )
    page.wait_for_function("() => document.body.dataset.live === 'on'")  # the websocket is allowed
    text = f"Signed by an extension under the CSP {uuid.uuid4().hex[:6]}"
    assert "Published" in _compose_and_pay(page, text)
    post = page.locator("#post-list .post", has_text=text)
    post.wait_for()
    npub = nostr.npub_encode(nostr.public_key(EXTENSION_SECRET))
    assert post.locator("a.author").get_attribute("title") == npub
    assert page.evaluate("localStorage.getItem('lnforum.secret_key')") is None
    assert _violations(page) == [] and page.js_errors == []


def test_composer_pays_through_a_webln_extension(extension_context, watched_page, forum_server):
    """A forum outside demo mode serves no demo wallet: the composer then pays with the
    extension's `window.webln`, a keysend from the extension's own node."""
    backend = extension_context.backend
    page = watched_page
    page.route(
        "**/static/forum/demo-wallet.js",
        lambda route: route.fulfill(content_type="text/javascript", body="/* demo mode off */"),
    )
    _open_welcome_thread(page, forum_server)
    assert page.evaluate("typeof window.forumDemoWallet") == "undefined"
    text = f"Paid by a WebLN extension under the CSP {uuid.uuid4().hex[:6]}"
    paid_before = len(backend.keysends)
    page.fill("#compose textarea", text)
    page.click("#compose .compose-quote")
    page.wait_for_selector("#compose .quote-box:not([hidden])")
    assert "Your WebLN wallet" in page.inner_text("#compose .wallet-line")
    page.click("#compose .compose-pay")
    page.wait_for_selector("#compose .status-box[data-state=published]", timeout=60_000)
    page.locator("#post-list .post", has_text=text).wait_for()
    assert len(backend.keysends) == paid_before + 1
    assert "signEvent" in backend.calls
    assert _violations(page) == [] and page.js_errors == []


def test_every_page_renders_without_a_violation(watched_page, forum_server):
    from forum.services.moderation import demo

    page = watched_page
    page.goto(forum_server.url + "/")
    public = ["/", "/how-to-post/", "/b/general/", "/admin/login/"]
    page.goto(forum_server.url + "/b/general/")
    page.get_by_role("link", name=re.compile("^Welcome")).click()
    page.wait_for_selector("#post-list")
    public.append(page.url)
    public.append(page.locator("#post-list .post a.author").first.get_attribute("href"))
    public.append(page.locator("#post-list .post .verify").first.get_attribute("href"))
    for url in public:
        response = page.goto(url if url.startswith("http") else forum_server.url + url)
        assert response.status == 200, url
        page.wait_for_load_state("load")
        assert _violations(page) == [], url
    page.goto(forum_server.url + "/")
    page.click("#key-button")  # the key dialog
    page.wait_for_selector("#key-dialog[open]")
    assert _violations(page) == []

    # The moderation console, signed in as the demo moderator.
    password = (forum_server.data_dir / demo.PASSWORD_FILE).read_text().strip()
    page.goto(forum_server.url + "/mod/login/")
    page.fill("input[name=username]", demo.DEMO_USERNAME)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url(re.compile(r"/mod/$"))
    for path in ["/mod/", "/mod/rejections/", "/mod/revenue/", "/mod/audit/", "/mod/boards/"]:
        assert page.goto(forum_server.url + path).status == 200, path
        assert _violations(page) == [], path
    assert page.js_errors == []


def test_the_policy_blocks_inline_script_and_the_watch_sees_it(watched_page, forum_server):
    """What the policy is for, and proof that the violation watch above is not blind: a
    script that got into the page as markup does not run, and is reported."""
    page = watched_page
    page.goto(forum_server.url + "/how-to-post/")
    page.evaluate(
        """() => {
          const s = document.createElement("script");
          s.textContent = "window.__inlineRan = true";
          document.body.append(s);
          const img = document.createElement("img");
          img.setAttribute("onerror", "window.__handlerRan = true");
          img.src = "/nowhere.png";
          document.body.append(img);
        }"""
    )
    page.wait_for_function("() => window.__cspViolations.length >= 2")
    assert page.evaluate("[window.__inlineRan, window.__handlerRan]") == [None, None]
    assert any("script-src" in v for v in _violations(page))
