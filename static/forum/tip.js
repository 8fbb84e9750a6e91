/* The Tip button on every post of a thread page (and on posts that arrive live).
 *
 * Choose an amount, then pay one of three ways:
 *   - keysend from a WebLN wallet (or the demo wallet): POST /api/tip {method: "keysend"} gives
 *     the forum node and the `tip` record naming the post; the wallet sends it;
 *   - an invoice paid by a WebLN wallet's sendPayment: POST /api/tip gives a BOLT11 invoice;
 *   - an invoice shown as a QR code (any phone wallet), with a lightning: link and a copy button;
 *     the page then polls /api/status/<payment hash> until the payment arrives.
 * Either way the tip reaches the forum's ledger and the thread's sats update live (live.js).
 * No inline script or handler anywhere (the site's CSP forbids them).
 */
(function () {
  "use strict";

  const AMOUNTS = [21, 100, 1000, 5000];
  let dialog = null;
  let current = null; // {eventId, poll}

  function wallet() {
    if (window.forumDemoWallet) return window.forumDemoWallet;
    if (window.webln) return window.webln;
    return null;
  }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key === "text") node.textContent = value;
      else if (key === "hidden") node.hidden = Boolean(value);
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  function build() {
    const amounts = el("div", { class: "tip-amounts", role: "group", "aria-label": "Amount" },
      AMOUNTS.map((sats) => el("button", { type: "button", class: "tip-amount", "data-sats": String(sats), text: sats + " sats" })));
    const input = el("input", { type: "number", name: "amount", min: "1", step: "1", value: "100", class: "tip-input", "aria-label": "Amount in sats" });
    const w = wallet();
    const label = w && w.isDemoWallet ? "the demo wallet" : "your WebLN wallet";
    const methods = el("div", { class: "tip-methods" }, [
      el("button", { type: "button", class: "tip-pay", "data-method": "keysend", text: "Keysend with " + label, hidden: !(w && typeof w.keysend === "function") }),
      el("button", { type: "button", class: "tip-pay", "data-method": "invoice", text: "Pay invoice with " + label, hidden: !(w && typeof w.sendPayment === "function") }),
      el("button", { type: "button", class: "tip-pay", "data-method": "qr", text: "Show invoice (QR)" }),
    ]);
    const invoice = el("div", { class: "tip-invoice", hidden: true }, [
      el("img", { class: "tip-qr", alt: "QR code of the tip invoice", width: "240", height: "240" }),
      el("p", {}, [el("a", { class: "tip-link", href: "#", text: "Open in a wallet" })]),
      el("code", { class: "tip-pr", id: "tip-pr" }),
      el("button", { type: "button", class: "linkish tip-copy", text: "Copy invoice" }),
    ]);
    const box = el("dialog", { class: "tip-dialog", id: "tip-dialog", "aria-labelledby": "tip-title" }, [
      el("h2", { id: "tip-title", text: "Tip this post" }),
      el("p", { class: "muted", text: "Sats go to the post and its thread; the author's share is forwarded to them." }),
      amounts,
      el("label", { class: "tip-custom" }, [document.createTextNode("Sats: "), input]),
      methods,
      invoice,
      el("p", { class: "tip-status", role: "status", "aria-live": "polite" }),
      el("button", { type: "button", class: "tip-close", text: "Close" }),
    ]);
    amounts.addEventListener("click", (event) => {
      const button = event.target.closest(".tip-amount");
      if (button) input.value = button.dataset.sats;
    });
    methods.addEventListener("click", (event) => {
      const button = event.target.closest(".tip-pay");
      if (button) pay(button.dataset.method);
    });
    box.querySelector(".tip-copy").addEventListener("click", async () => {
      const text = box.querySelector(".tip-pr").textContent;
      try { await navigator.clipboard.writeText(text); status("Invoice copied."); } catch (_) { status("Select the invoice text to copy it."); }
    });
    box.querySelector(".tip-close").addEventListener("click", () => box.close());
    box.addEventListener("close", stopPolling);
    document.body.appendChild(box);
    return box;
  }

  function status(text, isError) {
    const line = dialog.querySelector(".tip-status");
    line.textContent = text;
    line.classList.toggle("error", Boolean(isError));
  }

  function stopPolling() {
    if (current && current.poll) clearTimeout(current.poll);
    if (current) current.poll = null;
  }

  function amountSats() {
    const value = Number(dialog.querySelector(".tip-input").value);
    if (!Number.isInteger(value) || value < 1) throw new Error("Choose a whole number of sats (at least 1).");
    return value;
  }

  async function pay(method) {
    if (!current) return;
    stopPolling();
    let sats;
    try { sats = amountSats(); } catch (error) { status(error.message, true); return; }
    const eventId = current.eventId;
    try {
      if (method === "keysend") {
        const w = wallet();
        status("Sending " + sats + " sats by keysend…");
        const plan = (await window.ForumHttp.postJSON("/api/tip", { event_id: eventId, amount_sats: sats, method: "keysend" })).keysend;
        if (w.enable) await w.enable();
        await w.keysend({ destination: plan.destination, amount: String(plan.amount_sat), customRecords: plan.custom_records });
        status("Paid " + sats + " sats. Thank you! The thread's sats update in a moment.");
        return;
      }
      status("Asking for an invoice…");
      const invoice = await window.ForumHttp.postJSON("/api/tip", { event_id: eventId, amount_sats: sats });
      if (method === "invoice") {
        const w = wallet();
        if (w.enable) await w.enable();
        status("Paying the invoice of " + sats + " sats…");
        await w.sendPayment(invoice.payment_request);
        status("Paid " + sats + " sats. Thank you! The thread's sats update in a moment.");
        return;
      }
      const box = dialog.querySelector(".tip-invoice");
      box.querySelector(".tip-qr").src = invoice.qr_url;
      box.querySelector(".tip-link").href = invoice.lightning_uri;
      box.querySelector(".tip-pr").textContent = invoice.payment_request;
      box.hidden = false;
      status("Scan the code with any Lightning wallet (" + sats + " sats). Waiting for the payment…");
      watch(invoice.status_url, sats);
    } catch (error) {
      status("The tip did not go through: " + (error && error.message ? error.message : error), true);
    }
  }

  function watch(url, sats) {
    const tick = async () => {
      if (!current || !dialog.open) return;
      try {
        const answer = await fetch(url, { headers: { Accept: "application/json" } }).then((r) => r.json());
        if (answer.state === "rejected") {
          status("Not taken: " + (answer.message || answer.reason || "refused"), true);
          return;
        }
        if (answer.state && answer.state !== "unknown" && answer.state !== "waiting") {
          status("Paid " + sats + " sats. Thank you!");
          return;
        }
      } catch (_) { /* keep waiting */ }
      current.poll = setTimeout(tick, 2000);
    };
    current.poll = setTimeout(tick, 2000);
  }

  function open(eventId) {
    if (!dialog) dialog = build();
    stopPolling();
    current = { eventId, poll: null };
    dialog.querySelector(".tip-invoice").hidden = true;
    status("");
    dialog.showModal();
  }

  function addButton(article) {
    if (article.querySelector(".tip-button")) return;
    const links = article.querySelector(".post-links");
    if (!links || !article.dataset.eventId) return;
    const button = el("button", { type: "button", class: "linkish tip-button", "data-tip": article.dataset.eventId, text: "tip" });
    links.appendChild(button);
  }

  document.addEventListener("DOMContentLoaded", () => {
    const scan = (root) => root.querySelectorAll("article.post[data-event-id]").forEach(addButton);
    scan(document);
    new MutationObserver((changes) => changes.forEach((change) => change.addedNodes.forEach((node) => {
      if (node.nodeType !== 1) return;
      if (node.matches("article.post[data-event-id]")) addButton(node);
      else scan(node);
    }))).observe(document.body, { childList: true, subtree: true });
    document.addEventListener("click", (event) => {
      const button = event.target.closest(".tip-button");
      if (button) open(button.dataset.tip);
    });
  });
})();
