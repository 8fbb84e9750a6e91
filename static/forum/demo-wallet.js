/* DEMO WALLET (only served when the forum runs in demo mode).
 *
 * A WebLN-compatible provider whose keysend() and sendPayment() (a BOLT11 invoice of the forum)
 * ask the forum's demo endpoints to pay from the simulated network's funded demo user node
 * ("alice") to the forum node, over real gRPC.
 * The sats are simulated: nothing here touches a real wallet. A real WebLN extension, if
 * installed, stays in window.webln; the demo wallet is then at window.forumDemoWallet and the
 * composer offers it explicitly.
 */
(function () {
  "use strict";

  const post = (url, body) => window.ForumHttp.postJSON(url, body);

  const provider = {
    isDemoWallet: true,
    label: "demo wallet",
    enabled: false,
    async enable() { this.enabled = true; },
    async getInfo() {
      const data = await window.ForumHttp.getJSON("/demo/wallet");
      return { node: { alias: data.alias + " (demo wallet)", pubkey: data.pubkey }, balance_sat: data.balance_sat, methods: ["keysend", "sendPayment", "getInfo"] };
    },
    /** WebLN keysend: {destination, amount (sats), customRecords {"type": "plain string"}}. */
    async keysend(args) {
      const data = await post("/demo/keysend", {
        destination: args.destination,
        amount: String(args.amount),
        customRecords: args.customRecords || {},
      });
      return { preimage: data.preimage, paymentHash: data.payment_hash };
    },
    /** WebLN sendPayment: pay a BOLT11 invoice of the forum's node (a hold invoice for a post
     *  returns once the forum settled it, or fails when the forum cancelled it). */
    async sendPayment(paymentRequest) {
      const data = await post("/demo/pay-invoice", { paymentRequest: String(paymentRequest) });
      return { preimage: data.preimage, paymentHash: data.payment_hash };
    },
    async makeInvoice() { throw new Error("the demo wallet only pays"); },
    async signMessage() { throw new Error("the demo wallet only pays"); },
  };

  window.forumDemoWallet = provider;
  if (typeof window.webln === "undefined") window.webln = provider;
})();
