/* Live board and thread pages: new posts appear without reloading.
 *
 * The page follows /ws/board/<slug>/ or /ws/thread/<event id>/. A `post.published` message
 * only says *which* event went live; the HTML comes from GET /e/<id>/fragment, rendered by
 * the same template, escaping and Markdown sanitiser as a full page load, so no user content
 * is ever turned into HTML by this script.
 */
(function () {
  "use strict";

  function socketUrl(path) {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  }

  /** A websocket that reconnects with backoff; `onMessage(obj)` for each JSON message. */
  function follow(path, onMessage) {
    let delay = 500;
    let socket;
    function open() {
      socket = new WebSocket(socketUrl(path));
      socket.addEventListener("open", () => { delay = 500; document.body.dataset.live = "on"; });
      socket.addEventListener("message", (e) => {
        let data;
        try { data = JSON.parse(e.data); } catch (err) { console.error(err); return; }
        // Under load the server sends several messages in one frame, in order.
        for (const msg of data.type === "batch" ? data.messages : [data]) {
          try { onMessage(msg); } catch (err) { console.error(err); }
        }
      });
      socket.addEventListener("close", () => {
        document.body.dataset.live = "off";
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      });
    }
    open();
    return { send: (obj) => socket && socket.readyState === 1 && socket.send(JSON.stringify(obj)) };
  }

  function element(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  /** The server-rendered HTML a message carries (rendered once per message for all sockets),
   * else fetched: either way the same markup as a page load. */
  async function fragment(eventId, html) {
    if (typeof html === "string" && html) return element(html);
    const response = await fetch("/e/" + eventId + "/fragment", { credentials: "same-origin" });
    if (!response.ok) return null;
    return element(await response.text());
  }

  /** The server's `sats` filter: "1,234 sats", fractions kept ("0.5 sats"). */
  function satsText(msat) {
    const text = msat % 1000 === 0 ? (msat / 1000).toLocaleString("en-US")
      : (msat / 1000).toLocaleString("en-US", { maximumFractionDigits: 3 });
    return text + (msat === 1000 ? " sat" : " sats");
  }

  const byEvent = (root, id) => root.querySelector('[data-event-id="' + CSS.escape(id) + '"]');

  function flash(el) {
    el.classList.add("is-new");
    setTimeout(() => el.classList.remove("is-new"), 3000);
  }

  // --- thread page ---------------------------------------------------------------------------
  function threadPage(list) {
    const threadId = list.dataset.liveThread;
    const canAppend = list.dataset.liveAppend === "yes";
    follow("/ws/thread/" + threadId + "/", async (msg) => {
      if (msg.type === "post.published" && msg.kind === 1111 && msg.thread_event_id === threadId) {
        if (byEvent(list, msg.event_id)) return;
        if (!canAppend) {
          showNotice(list, "New replies are on the last page.");
          return;
        }
        const el = await fragment(msg.event_id, msg.html);
        if (!el || byEvent(list, msg.event_id)) return;
        const empty = document.getElementById("no-replies");
        if (empty) empty.remove();
        list.appendChild(el);
        flash(el);
        document.dispatchEvent(new CustomEvent("forum:post-added", { detail: { element: el, eventId: msg.event_id } }));
      } else if (msg.type === "thread.updated" && msg.thread === threadId) {
        if (typeof msg.reply_count === "number") showReplyCount(list, msg.reply_count);
        showFlags(msg);
        const satsEl = document.getElementById("thread-sats");
        if (satsEl && typeof msg.sats_msat === "number") satsEl.textContent = satsText(msg.sats_msat);
        if (msg.is_hidden) showNotice(list, "Moderators hid this thread.");
        const composer = document.getElementById("compose");
        if (msg.is_locked && composer) {
          // A reply paid now would be rejected (thread_locked): say so before anyone pays.
          composer.replaceWith(Object.assign(document.createElement("p"), {
            className: "notice",
            id: "locked-notice",
            textContent: "This thread is locked: new replies are rejected (and not published).",
          }));
        }
        const lockedNotice = document.getElementById("locked-notice");
        if (msg.is_locked === false && lockedNotice) {
          lockedNotice.textContent = "Moderators reopened this thread: reload the page to reply.";
        }
      } else if (msg.type === "post.hidden" && msg.event_id) {
        const el = byEvent(list, msg.event_id);
        if (el) el.remove();
      } else if (msg.type === "post.edited" && msg.thread === threadId) {
        // The author replaced the text (a kind 1010 edit): swap in the card the server renders.
        if (!msg.number) {
          showNotice(list, "The opening post was edited: reload the page to read the new version.");
          return;
        }
        const old = byEvent(list, msg.event_id);
        if (!old) return;
        const el = await fragment(msg.event_id);
        if (el && old.isConnected) {
          old.replaceWith(el);
          flash(el);
        }
      }
    });
  }

  /** "1 reply", "2 replies"; with none the heading goes and the list says "No replies yet." */
  function showReplyCount(list, count) {
    const head = document.getElementById("replies-head");
    if (!head) return;
    head.querySelector("#reply-count").textContent = String(count);
    head.querySelector("#reply-noun").textContent = count === 1 ? "reply" : "replies";
    head.hidden = count === 0;
    if (count === 0 && !list.querySelector(".post, #no-replies")) {
      list.append(Object.assign(document.createElement("p"), {
        className: "empty", id: "no-replies", textContent: "No replies yet.",
      }));
    }
  }

  /** The "pinned" and "locked" tags before the title, in the order the page renders them. */
  function showFlags(msg) {
    const heading = document.querySelector("h1.thread-heading");
    if (!heading) return;
    for (const [name, text, on] of [["tag-lock", "locked", msg.is_locked], ["tag-pin", "pinned", msg.is_pinned]]) {
      if (typeof on !== "boolean") continue;
      const tag = heading.querySelector("." + name);
      if (!on && tag) tag.remove();
      if (on && !tag) {
        const added = Object.assign(document.createElement("span"), { className: "tag " + name, textContent: text });
        const pin = heading.querySelector(".tag-pin");
        if (name === "tag-lock" && pin) pin.after(added);
        else heading.prepend(added);
      }
    }
  }

  function showNotice(list, text) {
    let note = document.getElementById("live-notice");
    if (!note) {
      note = document.createElement("p");
      note.id = "live-notice";
      note.className = "notice";
      list.after(note);
    }
    note.textContent = text;
  }

  // --- board page ----------------------------------------------------------------------------
  function boardPage(list) {
    const slug = list.dataset.liveBoard;
    const params = new URLSearchParams(location.search);
    const firstPage = (params.get("page") || "1") === "1";
    const sort = params.get("sort") || "latest";
    follow("/ws/board/" + slug + "/", async (msg) => {
      if (msg.type === "post.published" && msg.board === slug) {
        const threadId = msg.kind === 11 ? msg.event_id : msg.thread_event_id;
        const existing = byEvent(list, threadId);
        // A new thread tops "latest" and "newest"; a reply moves its thread up in "latest".
        const moves = firstPage && (sort === "latest" || (sort === "newest" && msg.kind === 11));
        if (!existing && !moves) return;
        const el = await fragment(threadId, msg.row_html);
        if (!el) return;
        const current = byEvent(list, threadId);
        if (moves) {
          if (current) current.remove();
          const empty = list.querySelector(".empty");
          if (empty) empty.remove();
          const firstUnpinned = list.querySelector(".thread-row:not(.is-pinned)");
          list.insertBefore(el, el.classList.contains("is-pinned") ? list.firstChild : firstUnpinned);
        } else if (current) {
          list.replaceChild(el, current);
        }
        flash(el);
      } else if (msg.type === "post.hidden" && msg.event_id) {
        const el = byEvent(list, msg.event_id);
        if (el) el.remove();
      } else if (msg.type === "thread.updated" && msg.thread) {
        const row = byEvent(list, msg.thread);
        if (!row) return;
        if (msg.is_hidden) { row.remove(); return; }
        const el = await fragment(msg.thread, msg.row_html);  // fresh counters and flags
        if (el && row.parentNode) list.replaceChild(el, row);
      }
    });
  }

  // --- home page: latest across the forum -------------------------------------------------------
  function feedPage(list) {
    if (list.dataset.livePrepend !== "yes") return;  // older pages stay as they are
    const keep = Number(list.dataset.livePageSize) || 20;
    follow("/ws/feed/" + list.dataset.liveFeed + "/", (msg) => {
      if (msg.type === "post.hidden" && msg.event_id) {
        // Hidden by a moderator: the item goes; a hidden thread (number 0) takes its replies.
        for (const item of list.querySelectorAll(".feed-item")) {
          if (item.dataset.eventId === msg.event_id || (msg.number === 0 && item.dataset.thread === msg.thread)) item.remove();
        }
        return;
      }
      // The server sends only what the public feed shows (never a private room's post).
      if (msg.type !== "post.published" || !msg.html || byEvent(list, msg.event_id)) return;
      const el = element(msg.html);
      if (!el) return;
      const empty = document.getElementById("feed-empty");
      if (empty) empty.remove();
      list.insertBefore(el, list.firstChild);
      while (list.children.length > keep) list.lastElementChild.remove();
      flash(el);
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const feed = document.querySelector("[data-live-feed]");
    if (feed) feedPage(feed);
    const thread = document.querySelector("[data-live-thread]");
    if (thread) threadPage(thread);
    const board = document.querySelector("[data-live-board]");
    if (board) boardPage(board);
  });

  window.ForumLive = { follow, socketUrl };
})();
