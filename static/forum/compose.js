/* The composer: write, quote, sign, pay by keysend, watch the status live.
 *
 *   1. quote   GET  /api/quote?board=&pubkey=&kind=   -> price now + the forum node's pubkey
 *   2. sign    NIP-07 window.nostr, else the browser's own key (keys.js)
 *   3. encode  POST /compose/records                   -> WebLN customRecords per payment
 *              (the server's forum.protocol is the one encoder; it also verifies the event)
 *   4. pay     window.webln.keysend(...) (or the demo wallet), else lncli commands + QR;
 *              or by invoice: POST /api/invoice {event} -> a BOLT11 hold invoice for the post,
 *              shown as a QR code, a lightning: link and text, paid by WebLN sendPayment
 *   5. watch   /ws/status/<event id>/ plus polling /api/status/<event id> as a fallback:
 *              waiting for payment -> paid -> published, or rejected with the reason.
 */
(function () {
  "use strict";

  const KIND_THREAD = 11;
  const KIND_REPLY = 1111;
  // The project's client and payer run with its virtualenv, from the project's directory.
  const PY = ".venv/bin/python";
  const TERMINAL = new Set(["published", "rejected"]);

  // What a person can do about each rejection (the server's message says what happened).
  const ADVICE = {
    underpaid: "Send the difference as a top-up and the post is published; otherwise it stays unpublished.",
    too_large: "Shorten the post and send it again.",
    thread_locked: "This thread is locked: moderators closed it to new replies.",
    banned: "This key is barred from posting here.",
    bad_signature: "The signature did not verify: sign again (or try another signer).",
    bad_id: "The event id did not match its content: sign again (or try another signer).",
    malformed: "The event was not understood: sign again, or tell the forum's operators.",
    duplicate: "This exact event was already paid for; it is published only once.",
    unknown_board: "That board does not exist (any more).",
    orphan_timeout: "The post you replied to never arrived, so the reply could not be placed.",
    incomplete_parts: "Not every part of the long post arrived: send it again.",
    unsupported_kind: "Only threads (kind 11) and replies (kind 1111) can be posted here.",
    unsupported_version: "The payment used a protocol version this forum does not speak: update the client.",
    bad_created_at: "The event's date is too far from now: check the computer's clock and sign again.",
    target_hidden: "A moderator hid what you are answering or tipping.",
    invoice_expired: "Press Get price again for a new invoice.",
  };

  const { getJSON, postJSON } = window.ForumHttp;

  const sats = (msat) => {
    const whole = Math.ceil(msat / 1000);
    return whole.toLocaleString("en-US") + (whole === 1 ? " sat" : " sats");
  };

  /** The quote API's answer, tolerant of field naming (the core owns the exact shape). */
  function readQuote(q) {
    const priceMsat = Number(q.price_msat ?? (q.price && q.price.price_msat) ?? (q.price_sats || 0) * 1000);
    const node = q.node_pubkey || q.destination || (q.node && q.node.pubkey) || "";
    const uri = q.node_uri || (q.node && q.node.uri) || (q.node && q.node.uris && q.node.uris[0]) || "";
    const price = q.price && typeof q.price === "object" ? q.price : q;
    return {
      priceMsat,
      node,
      uri,
      base: Number(price.base_msat || 0),
      factor: Number(price.factor || 1),
      recent: Number(price.recent_posts || 0),
      window: Number(price.window_seconds || 0),
    };
  }

  function wallet() {
    if (window.forumDemoWallet) return window.forumDemoWallet;
    if (window.webln && typeof window.webln.keysend === "function") return window.webln;
    return null;
  }

  /** A wallet that pays BOLT11 invoices (WebLN sendPayment), the demo wallet first. */
  function invoiceWallet() {
    if (window.forumDemoWallet) return window.forumDemoWallet;
    if (window.webln && typeof window.webln.sendPayment === "function") return window.webln;
    return null;
  }

  class Composer {
    constructor(root) {
      this.root = root;
      this.mode = root.dataset.mode;
      this.board = root.dataset.board;
      this.form = root.querySelector(".compose-form");
      this.quoteBox = root.querySelector(".quote-box");
      this.payBox = root.querySelector(".pay-box");
      this.invoiceBox = root.querySelector(".invoice-box");
      this.statusBox = root.querySelector(".status-box");
      this.statusText = root.querySelector(".status-text");
      this.parent = null; // {id, pubkey, number} when replying to a reply
      this.quote = null;
      this.watch = null;
      this.form.hidden = false;
      this.form.addEventListener("submit", (e) => { e.preventDefault(); this.getQuote(); });
      // Live counters instead of maxlength (which cuts pasted text without a word).
      this.counters = Array.from(root.querySelectorAll(".char-count")).map((p) => ({
        p, field: document.getElementById(p.dataset.for),
      })).filter((c) => c.field);
      this.counters.forEach((c) => c.field.addEventListener("input", () => this.count(c)));
      this.counters.forEach((c) => this.count(c));
      root.querySelector(".compose-pay").addEventListener("click", () => this.signAndPay(false));
      root.querySelector(".compose-manual").addEventListener("click", () => this.signAndPay(true));
      root.querySelector(".compose-invoice").addEventListener("click", () => this.signAndInvoice());
      root.querySelector(".invoice-pay").addEventListener("click", () => this.payInvoice());
      root.querySelector(".compose-cancel").addEventListener("click", () => this.edit());
      root.querySelectorAll(".copy-button").forEach((b) => b.addEventListener("click", () => this.copy(b)));
      const clear = root.querySelector(".replying-to-clear");
      if (clear) clear.addEventListener("click", () => this.setParent(null));
      document.addEventListener("forum:key-changed", () => this.showIdentity());
      // Signer extensions add window.nostr from their own content script, which can run after
      // this one (nos2x loads its provider by <script src>, at document_idle). Without one yet,
      // wait for the page to load (so no browser key is made for someone who has a signer) and
      // look once more a moment later.
      if (window.ForumKeys.hasNip07() || document.readyState === "complete") {
        this.showIdentity();
      } else {
        const again = () => { if (window.ForumKeys.hasNip07()) this.showIdentity(); };
        window.addEventListener("load", () => { this.showIdentity(); setTimeout(again, 1000); }, { once: true });
      }
    }

    async showIdentity() {
      const link = this.root.querySelector(".identity-npub");
      const source = this.root.querySelector(".identity-source");
      link.onclick = (e) => { e.preventDefault(); window.ForumKeys.openDialog(); };
      if (window.ForumKeys.hasNip07()) {
        // Asking an extension for the key can prompt the user: wait until they post.
        link.textContent = "your Nostr extension";
        source.textContent = "(NIP-07)";
        return;
      }
      const signer = await window.ForumKeys.signer();
      link.textContent = window.ForumKeys.shortNpub(signer.pubkey);
      source.textContent = "(key kept in this browser)";
    }

    setParent(parent) {
      this.parent = parent && parent.id ? parent : null;
      const line = this.root.querySelector(".replying-to");
      if (!line) return;
      line.hidden = !this.parent;
      if (this.parent) {
        line.querySelector(".replying-to-number").textContent = String(this.parent.number);
        line.querySelector(".replying-to-link").href = "#p" + this.parent.number;
      }
    }

    kind() { return this.mode === "thread" ? KIND_THREAD : KIND_REPLY; }

    /** Show "n / limit characters" under a field (a title's only when it gets near). */
    count(c) {
      const limit = Number(c.field.dataset.maxLength || 0);
      const n = charCount(c.field.value);
      const over = limit > 0 && n > limit;
      c.p.classList.toggle("over", over);
      if (c.field.tagName === "INPUT") c.p.hidden = !(limit && n > limit * 0.8);
      c.p.textContent = n.toLocaleString("en-US") + " / " + limit.toLocaleString("en-US") + " characters" +
        (over ? ": " + (n - limit).toLocaleString("en-US") + " over the limit, shorten it to send" : "");
      c.field.setAttribute("aria-invalid", over ? "true" : "false");
    }

    /** The first field over its limit, as a sentence, or "" when everything fits. */
    tooLong() {
      for (const c of this.counters) {
        const limit = Number(c.field.dataset.maxLength || 0);
        const n = charCount(c.field.value);
        if (limit && n > limit) {
          const what = c.field.tagName === "INPUT" ? "The title" : (this.mode === "thread" ? "The post" : "The reply");
          return what + " is " + n.toLocaleString("en-US") + " characters; this board takes at most " +
            limit.toLocaleString("en-US") + ". Shorten it by " + (n - limit).toLocaleString("en-US") +
            " and press Get price again. Nothing was sent.";
        }
      }
      return "";
    }

    values() {
      const title = this.form.querySelector('[name="title"]');
      return {
        title: title ? title.value.trim() : "",
        content: this.form.querySelector('[name="content"]').value,
      };
    }

    tags(title) {
      if (this.mode === "thread") return [["title", title], ["h", this.board]];
      // NIP-22: uppercase = the thread (root), lowercase = the parent (root or a reply).
      const rootId = this.root.dataset.rootId;
      const rootPk = this.root.dataset.rootPubkey;
      const parent = this.parent || { id: rootId, pubkey: rootPk };
      const parentKind = this.parent ? String(KIND_REPLY) : String(KIND_THREAD);
      return [
        ["E", rootId, "", rootPk],
        ["K", String(KIND_THREAD)],
        ["P", rootPk],
        ["e", parent.id, "", parent.pubkey],
        ["k", parentKind],
        ["p", parent.pubkey],
        ["h", this.board],
      ];
    }

    setBusy(busy) {
      this.root.querySelectorAll("button").forEach((b) => { b.disabled = busy; });
    }

    async getQuote() {
      const { title, content } = this.values();
      if (!content.trim() || (this.mode === "thread" && !title)) {
        this.form.reportValidity();
        return;
      }
      const tooLong = this.tooLong();
      if (tooLong) {
        this.quoteBox.hidden = true;
        this.showStatus(null, tooLong, "bad");
        return;
      }
      this.setBusy(true);
      try {
        this.signer = await window.ForumKeys.signer();
        const params = new URLSearchParams({ board: this.board, pubkey: this.signer.pubkey, kind: String(this.kind()) });
        this.quote = readQuote(await getJSON(this.root.dataset.quoteUrl + "?" + params));
        this.showQuote();
      } catch (err) {
        this.showStatus(null, "Could not get a price: " + err.message, "bad");
      } finally {
        this.setBusy(false);
      }
    }

    showQuote() {
      const q = this.quote;
      this.quoteBox.hidden = false;
      this.quoteBox.querySelector(".amount").textContent = sats(q.priceMsat);
      // "(10 sats × 2²: you posted 2 times here in the last 60 min)", the power as a superscript.
      const detail = this.quoteBox.querySelector(".quote-detail");
      detail.replaceChildren();
      if (q.recent > 0) {
        detail.append("(" + sats(q.base) + " × " + q.factor);
        if (q.recent > 1) detail.append(Object.assign(document.createElement("sup"), { textContent: String(q.recent) }));
        detail.append(": you posted " + (q.recent === 1 ? "once" : q.recent + " times") + " here in the last " +
          Math.round(q.window / 60) + " min)");
      }
      // A new price is a new post: what happened to the previous one is no longer news.
      if (this.finished) this.statusBox.hidden = true;
      const w = wallet();
      const payButton = this.quoteBox.querySelector(".compose-pay");
      const line = this.quoteBox.querySelector(".wallet-line");
      if (w && w.isDemoWallet) {
        payButton.textContent = "Sign and pay " + sats(q.priceMsat) + " with the demo wallet";
        line.replaceChildren();
        const badge = document.createElement("span");
        badge.className = "demo-wallet-label";
        badge.textContent = "demo wallet";
        line.append(badge, " Simulated sats, paid by keysend from the demo user's node on the simulated Lightning network. Nothing real is spent.");
      } else if (w) {
        payButton.textContent = "Sign and pay " + sats(q.priceMsat) + " with your wallet";
        line.textContent = "Your WebLN wallet will ask you to confirm a keysend to the forum's node.";
      } else {
        payButton.hidden = true;
        line.textContent = invoiceWallet()
          ? "Your WebLN wallet pays invoices, not keysends: press Pay by invoice."
          : "No WebLN wallet in this browser: pay by invoice with any wallet (scan the QR code), or from your own node.";
      }
    }

    edit() {
      this.quoteBox.hidden = true;
      this.payBox.hidden = true;
      this.invoiceBox.hidden = true;
      this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = false; });
    }

    async signAndPay(manual) {
      const { title, content } = this.values();
      this.setBusy(true);
      this.finished = false;  // a new event: its status is news again (after a rejection too)
      this.statusKey = null;  // followed by event id (an invoice's by its payment hash)
      try {
        // A new event each time, even within one second: the same text signed twice in one
        // second is the same event id, and a retry after a refusal would then read back the
        // refused attempt's status as its own.
        const createdAt = Math.max(Math.floor(Date.now() / 1000), (this.lastCreatedAt || 0) + 1);
        this.lastCreatedAt = createdAt;
        const unsigned = {
          kind: this.kind(),
          created_at: createdAt,
          tags: this.tags(title),
          content,
        };
        const signed = await this.signer.sign(unsigned);
        const plan = await postJSON(this.root.dataset.recordsUrl, {
          event: signed,
          amount_msat: this.quote.priceMsat,
          destination: this.quote.node,
        });
        this.eventId = plan.event_id;
        // Signed: paying again from the quote box would pay for the same event twice.
        this.quoteBox.hidden = true;
        this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = true; });
        this.startWatching(plan.event_id);
        this.step("signed", "done");
        this.step("waiting", "current");
        if (manual || !wallet()) {
          this.manual = true;
          this.showManual(plan);
          this.showStatus("waiting", "Waiting for your payment to arrive…");
          return;
        }
        await this.payWithWallet(plan);
      } catch (err) {
        // Hold mode cancels a payment the forum would reject, so the wallet reports a failure;
        // the rejection already shown (reason, nothing charged) is the better news.
        if (this.finished) return;
        this.showStatus("waiting", "Not sent: " + err.message + ". Nothing was paid; you can try again.", "bad");
        this.step("waiting", "failed");
        if (!this.paid) {
          this.quoteBox.hidden = false;
          this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = false; });
        }
      } finally {
        this.setBusy(false);
      }
    }

    async payWithWallet(plan) {
      const w = wallet();
      this.showStatus("waiting", "Paying " + plan.payments.length + " keysend" + (plan.payments.length > 1 ? "s" : "") + " with the " + (w.isDemoWallet ? "demo wallet" : "wallet") + "…");
      if (typeof w.enable === "function") await w.enable();
      // All parts at once: in hold mode the forum settles a multipart set only when every part
      // has arrived, so waiting for each payment before sending the next would stall.
      await Promise.all(plan.payments.map((payment) => w.keysend({
        destination: this.quote.node,
        amount: String(payment.amount_sat),
        customRecords: payment.custom_records,
      })));
      // The wallet returned a preimage: the node settled it, so it is paid and in the ledger.
      this.markPaid();
      this.poll();
    }

    /** Sign, ask the forum for a BOLT11 invoice for this event, show it and watch. */
    async signAndInvoice() {
      const { title } = this.values();
      this.setBusy(true);
      this.finished = false;
      try {
        const signed = await this.signer.sign({
          kind: this.kind(),
          created_at: Math.floor(Date.now() / 1000),
          tags: this.tags(title),
          content: this.values().content,
        });
        // The forum checks the event now (the same rules as for a payment) and says why not.
        const invoice = await postJSON(this.root.dataset.invoiceUrl, { event: signed });
        this.eventId = invoice.event_id;
        this.statusKey = invoice.payment_hash;
        this.invoice = invoice;
        this.signed = signed;
        this.quoteBox.hidden = true;
        this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = true; });
        this.manual = true;  // poll the status: nothing else tells this page about the payment
        this.startWatching(invoice.event_id);
        this.showInvoice(invoice);
        this.step("signed", "done");
        this.step("waiting", "current");
        this.showStatus("waiting", "Waiting for the invoice to be paid…");
      } catch (err) {
        this.showStatus(null, "No invoice: " + err.message.replace(/^[a-z-]+:\s*/, "") + " Nothing was paid.", "bad");
      } finally {
        this.setBusy(false);
      }
    }

    showInvoice(invoice) {
      const box = this.invoiceBox;
      box.hidden = false;
      box.querySelector(".invoice-amount").textContent = sats(invoice.amount_msat);
      box.querySelector(".invoice-expiry").textContent = new Date(invoice.expires_at * 1000).toLocaleTimeString();
      box.querySelector(".invoice-qr").src = this.root.dataset.invoiceUrl + "/" + invoice.payment_hash + "/qr.svg";
      box.querySelector(".invoice-link").href = invoice.lightning_uri;
      box.querySelector(".invoice-open").href = invoice.lightning_uri;
      box.querySelector(".invoice-text").textContent = invoice.payment_request;
      const w = invoiceWallet();
      const pay = box.querySelector(".invoice-pay");
      pay.hidden = !w;
      pay.disabled = false;
      if (w) pay.textContent = "Pay " + sats(invoice.amount_msat) + " with " + (w.isDemoWallet ? "the demo wallet" : "my wallet");
    }

    async payInvoice() {
      const w = invoiceWallet();
      if (!w || !this.invoice) return;
      const button = this.invoiceBox.querySelector(".invoice-pay");
      button.disabled = true;
      try {
        this.showStatus("waiting", "Paying the invoice with the " + (w.isDemoWallet ? "demo wallet" : "wallet") + "…");
        if (typeof w.enable === "function") await w.enable();
        await w.sendPayment(this.invoice.payment_request);
        // The wallet has the preimage: the forum settled the invoice, so it is paid.
        this.invoiceBox.hidden = true;
        this.markPaid();
        this.poll();
      } catch (err) {
        // A cancelled hold invoice fails in the wallet; the forum's reason (shown) says more.
        if (this.finished) return;
        button.disabled = false;
        this.showStatus("waiting", "Not paid: " + err.message + ". Nothing was charged; you can try again.", "bad");
        this.poll();
      }
    }

    showManual(plan) {
      this.payBox.hidden = false;
      const img = this.payBox.querySelector(".qr img");
      img.src = this.root.dataset.nodeQrUrl;
      this.payBox.querySelector(".node-uri").textContent = this.quote.uri || this.quote.node;
      // Demo mode: a demo user's simnet node and lightning.pay (lncli's flags) stand in for
      // the reader's own lnd and lncli, so the commands work here as shown.
      const demoFlags = this.root.dataset.nodeFlags || "";
      const lines = plan.payments.map((p) => demoFlags
        ? p.lncli.replace(/^lncli sendpayment /, PY + " -m lightning.pay " + demoFlags + " ")
        : p.lncli);
      this.payBox.querySelector(".lncli-cmd").textContent = lines.join("\n");
      const { title, content } = this.values();
      const args = [PY + " -m forum.client post", "--forum-url", location.origin, "--board", this.board];
      if (this.mode === "thread") args.push("--title", shellQuote(title));
      else args.push("--reply-to", (this.parent && this.parent.id) || this.root.dataset.rootId);
      args.push("--content", shellQuote(content), "--key-file my.key",
        demoFlags || "--rpcserver localhost:10009 --tlscertpath ~/.lnd/tls.cert --macaroonpath ~/.lnd/data/chain/bitcoin/mainnet/admin.macaroon");
      this.payBox.querySelector(".client-cmd").textContent =
        PY + " -m forum.client keygen --key-file my.key\n" + args.join(" ");
    }

    copy(button) {
      const text = this.root.querySelector(button.dataset.copy).textContent;
      navigator.clipboard.writeText(text).then(() => {
        button.textContent = "Copied";
        setTimeout(() => { button.textContent = "Copy"; }, 1500);
      }, () => {});
    }

    // --- status --------------------------------------------------------------------------------
    startWatching(eventId) {
      if (this.watch) this.watch.stop();
      let stopped = false;
      const socket = new WebSocket(window.ForumLive ? window.ForumLive.socketUrl("/ws/status/" + eventId + "/") :
        (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/status/" + eventId + "/");
      socket.addEventListener("message", (e) => {
        const msg = JSON.parse(e.data);
        if (msg.type === "hello" && this.paid) this.poll();
        if (msg.type === "message.status") this.onStatus(msg);
      });
      // Polling covers a socket that drops or connects after the news; before anything is
      // paid the status API has nothing to say (404), so it only runs once there is.
      const timer = setInterval(() => { if (this.paid || this.manual) this.poll(); }, 3000);
      this.watch = { stop: () => { if (!stopped) { stopped = true; clearInterval(timer); socket.close(); } } };
    }

    async poll() {
      if (!this.eventId) return;
      try {
        this.onStatus(await getJSON(this.root.dataset.statusUrl + (this.statusKey || this.eventId)));
      } catch (err) {
        // 404 until the first payment is recorded: keep waiting.
      }
    }

    markPaid() {
      if (this.paid) return;
      this.paid = true;
      this.step("waiting", "done");
      this.step("paid", "done");
      this.step("published", "current");
      this.showStatus("paid", "Paid. Checking the signature and the price…");
    }

    onStatus(st) {
      if (!st || !st.state || st.state === "unknown" || this.finished) return;
      if (st.event_id && this.eventId && st.event_id !== this.eventId) return;
      if (st.state === "paid") {
        this.markPaid();
      } else if (st.state === "waiting") {
        if (st.waiting_for === "payment") return;  // an invoice not paid yet
        this.markPaid();
        if (st.waiting_for === "parts") {
          this.showStatus("paid", "Paid. Received " + (st.parts_received || 0) + " of " + (st.parts_total || "?") + " parts…");
        } else if (st.waiting_for === "parent") {
          this.showStatus("paid", "Paid. Waiting for the post it replies to…");
        } else if (st.waiting_for === "underpaid" || st.reason === "underpaid") {
          this.underpaid(st);
        }
      } else if (st.state === "published") {
        this.finish();
        this.step("published", "done");
        const link = "/e/" + st.event_id;
        this.showStatus("published", "", "ok");
        this.statusText.append("Published! ");
        const a = document.createElement("a");
        a.href = link;
        a.textContent = this.mode === "thread" ? "Open your thread" : "See your reply";
        this.statusText.append(a);
        this.reset();
      } else if (st.state === "rejected") {
        this.finish();
        if (st.charged === false) { this.cancelled(st); return; }
        this.markPaid();
        if (st.reason === "underpaid") { this.underpaid(st); return; }
        this.step("published", "failed");
        this.quoteBox.hidden = true;
        this.showStatus("rejected", "Rejected: " + humanReason(st, "rejected") + " " + (ADVICE[st.reason] || ""), "bad");
        this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = false; });
      }
    }

    // Hold mode: the forum cancelled the payment instead of keeping it. Nothing was paid, so
    // there is nothing to top up; the author edits or takes a new price and sends it again.
    cancelled(st) {
      this.step("waiting", "failed");
      this.quoteBox.hidden = true;
      this.invoiceBox.hidden = true;
      const advice = st.reason === "underpaid" ? "" : (ADVICE[st.reason] || "");
      this.showStatus("rejected", "Rejected, not charged: " + humanReason(st, "rejected") + " " + advice, "bad");
      this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = false; });
    }

    underpaid(st) {
      this.step("published", "failed");
      const missing = Math.max((st.price_msat || 0) - (st.paid_msat || 0), 1000);
      this.quoteBox.hidden = true;
      this.showStatus("rejected", "Rejected: " + humanReason(st, "paid less than the price") + " " + ADVICE.underpaid, "bad");
      if (this.signed && this.invoice) {
        // Paid by invoice: the same signed event asked for again is invoiced for what is missing.
        const byInvoice = document.createElement("button");
        byInvoice.type = "button";
        byInvoice.className = "primary topup-invoice-button";
        byInvoice.textContent = "Top up " + sats(missing) + " by invoice";
        byInvoice.addEventListener("click", () => this.topUpByInvoice(byInvoice));
        this.statusText.append(" ", byInvoice);
        return;
      }
      if (!wallet()) return;
      const button = document.createElement("button");
      button.type = "button";
      button.className = "primary topup-button";
      button.textContent = "Top up " + sats(missing);
      button.addEventListener("click", () => this.topUp(st.event_id || this.eventId, missing, button));
      this.statusText.append(" ", button);
    }

    async topUpByInvoice(button) {
      button.disabled = true;
      try {
        const invoice = await postJSON(this.root.dataset.invoiceUrl, { event: this.signed });
        this.finished = false;
        this.invoice = invoice;
        this.statusKey = invoice.payment_hash;
        this.startWatching(invoice.event_id);
        this.showInvoice(invoice);
        this.step("published", "current");
        this.showStatus("paid", "Pay the top-up invoice for " + sats(invoice.amount_msat) + "…");
      } catch (err) {
        button.disabled = false;
        this.showStatus("rejected", "No top-up invoice: " + err.message, "bad");
      }
    }

    async topUp(eventId, missingMsat, button) {
      button.disabled = true;
      try {
        const plan = await postJSON(this.root.dataset.recordsUrl, {
          topup: eventId,
          amount_msat: missingMsat,
          destination: this.quote.node,
        });
        this.finished = false;
        this.step("published", "current");
        this.showStatus("paid", "Sending the top-up…");
        const w = wallet();
        if (typeof w.enable === "function") await w.enable();
        for (const payment of plan.payments) {
          await w.keysend({ destination: this.quote.node, amount: String(payment.amount_sat), customRecords: payment.custom_records });
        }
        this.startWatching(eventId);
        this.poll();
      } catch (err) {
        button.disabled = false;
        this.showStatus("rejected", "Top-up failed: " + err.message, "bad");
      }
    }

    finish() {
      this.finished = true;
      if (this.watch) this.watch.stop();
    }

    reset() {
      this.form.reset();
      this.counters.forEach((c) => this.count(c));
      this.form.querySelectorAll("input, textarea").forEach((el) => { el.disabled = false; });
      this.quoteBox.hidden = true;
      this.payBox.hidden = true;
      this.invoiceBox.hidden = true;
      this.setParent(null);
      this.paid = false;
      this.manual = false;
      this.eventId = null;
      this.statusKey = null;
      this.invoice = null;
      this.signed = null;
    }

    step(name, state) {
      this.statusBox.hidden = false;
      const li = this.statusBox.querySelector('[data-step="' + name + '"]');
      if (!li) return;
      li.classList.remove("done", "current", "failed");
      li.classList.add(state);
      if (name === "published" && state === "failed") li.textContent = "rejected";
      if (name === "published" && state !== "failed") li.textContent = "published";
    }

    showStatus(stage, text, tone) {
      this.statusBox.hidden = false;
      this.statusBox.dataset.state = stage || "";
      if (stage === null) this.statusBox.querySelector(".steps").hidden = true;
      else this.statusBox.querySelector(".steps").hidden = false;
      this.statusText.className = "status-text" + (tone ? " " + tone : "");
      this.statusText.textContent = text;
    }
  }

  /** The server's sentence without its NIP-01 machine prefix ("rate-limited: ..."), one period. */
  function humanReason(st, fallback) {
    const text = (st.message || st.reason || fallback).replace(/^[a-z-]+:\s*/, "").trim();
    return /[.!?]$/.test(text) ? text : text + ".";
  }

  /** Characters as the forum counts them (Unicode code points, like Python's len), not
   *  UTF-16 units: an emoji is one character. */
  function charCount(text) {
    return Array.from(text).length;
  }

  function shellQuote(text) {
    return "'" + String(text).replace(/'/g, "'\\''") + "'";
  }

  document.addEventListener("DOMContentLoaded", () => {
    const root = document.getElementById("compose");
    if (!root || !window.ForumKeys) return;
    const composer = new Composer(root);
    // Reply buttons on every post (including posts that arrive live).
    document.querySelectorAll(".reply-button").forEach((b) => { b.hidden = false; });
    document.addEventListener("forum:post-added", (e) => {
      const b = e.detail.element.querySelector(".reply-button");
      if (b) b.hidden = false;
    });
    document.addEventListener("click", (e) => {
      const button = e.target.closest(".reply-button");
      if (!button || composer.mode !== "reply") return;
      composer.setParent(button.dataset.replyTo ? {
        id: button.dataset.replyTo,
        pubkey: button.dataset.replyPubkey,
        number: button.dataset.replyNumber,
      } : null);
      root.scrollIntoView({ behavior: "smooth", block: "start" });
      root.querySelector("textarea").focus({ preventScroll: true });
    });
    window.forumComposer = composer;
  });
})();
