/* The bell in the header: the inbox of the key this browser keeps (replies, mentions, tips).
 *
 * No accounts: the unread count is "notifications newer than the last one this browser saw",
 * asked of /a/<npub>/inbox.json?after=<id>; the "seen" id lives in localStorage and moves
 * when the inbox page of this key is opened. New notifications arrive over the live socket
 * /ws/inbox/<hex pubkey>/ (a message with no content: the count is asked again).
 */
(function () {
  "use strict";

  const SEEN_KEY = "lnforum.inbox_seen";

  function seenAll() {
    try { return JSON.parse(window.localStorage.getItem(SEEN_KEY) || "{}") || {}; } catch (e) { return {}; }
  }
  const seenFor = (pubkey) => Number(seenAll()[pubkey]) || 0;
  function seenSet(pubkey, id) {
    const all = seenAll();
    all[pubkey] = id;
    try { window.localStorage.setItem(SEEN_KEY, JSON.stringify(all)); } catch (e) { /* private mode */ }
  }

  function start(pubkey) {
    const bell = document.getElementById("inbox-bell");
    const badge = document.getElementById("inbox-count");
    if (!bell || !badge) return;
    const npub = window.ForumKeys.npubEncode(pubkey);
    bell.href = "/a/" + npub + "/inbox/";
    bell.hidden = false;

    const list = document.getElementById("inbox-list");
    if (list && list.dataset.inboxPubkey === pubkey) {
      // This key's inbox is open: what it shows is read now; mark what was new.
      const before = seenFor(pubkey);
      list.querySelectorAll("[data-inbox-id]").forEach((item) => {
        if (Number(item.dataset.inboxId) > before) item.classList.add("is-unread");
      });
      seenSet(pubkey, Math.max(before, Number(list.dataset.inboxLatest) || 0));
    }

    async function refresh() {
      let data;
      try {
        const response = await fetch("/a/" + npub + "/inbox.json?after=" + seenFor(pubkey), {
          headers: { Accept: "application/json" },
        });
        if (!response.ok) return;
        data = await response.json();
      } catch (e) { return; }
      const unread = Number(data.unread) || 0;
      badge.textContent = unread + (data.capped ? "+" : "");
      badge.hidden = unread === 0;
      bell.dataset.unread = String(unread);
      bell.title = unread ? unread + (data.capped ? "+" : "") + " unread in your inbox" : "Your inbox: replies, mentions and tips";
    }

    let delay = 500;
    function listen() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const socket = new WebSocket(scheme + location.host + "/ws/inbox/" + pubkey + "/");
      socket.addEventListener("open", () => { delay = 500; });
      socket.addEventListener("message", (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch (err) { return; }
        const messages = data.type === "batch" ? data.messages : [data];
        if (messages.some((m) => m.type === "inbox.new")) refresh();
      });
      socket.addEventListener("close", () => {
        setTimeout(listen, delay);
        delay = Math.min(delay * 2, 15000);
      });
    }
    refresh();
    listen();
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!window.ForumKeys || !window.ForumKeys.localPubkey) return;
    const pubkey = window.ForumKeys.localPubkey();
    if (pubkey) start(pubkey);
  });
})();
