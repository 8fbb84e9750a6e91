/* Page world from the start, as Alby's Manifest V3 build does ("world": "MAIN"): window.webln.
 * The wallet's node lives outside the page; here the test pays from a simnet node through a
 * Playwright binding, testWalletExtension(method, argument). */
window.webln = {
  enabled: false,
  async enable() {
    this.enabled = true;
    return { enabled: true };
  },
  getInfo() {
    return window.testWalletExtension("getInfo", null);
  },
  keysend(args) {
    return window.testWalletExtension("keysend", args);
  },
};
