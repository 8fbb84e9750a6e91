/* Page world, loaded by src from the extension's origin: a NIP-07 window.nostr.
 * The key lives outside the page (in nos2x, in the extension's background); here the test
 * holds it and answers through a Playwright binding, testSignerExtension(method, argument). */
window.nostr = {
  getPublicKey() {
    return window.testSignerExtension("getPublicKey", null);
  },
  signEvent(event) {
    return window.testSignerExtension("signEvent", event);
  },
};
