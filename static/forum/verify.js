/* "verify" on a post: fetch its raw signed event and check it here, in the reader's browser,
 * with the same code the composer signs with (keys.js, vendor/noble-schnorr.js):
 *   1. the id is the SHA-256 of the event's NIP-01 serialization (so the content, author,
 *      time, kind and tags are exactly what was signed), and
 *   2. the BIP-340 signature over that id is valid for the author's key.
 * The event is then shown one field per line under the post. Without JavaScript, or with a
 * modifier key, the link simply opens the raw JSON.
 */
(function () {
  "use strict";

  function check(event) {
    let idOk = false;
    let sigOk = false;
    try { idOk = window.ForumKeys.eventId(event) === event.id; } catch (e) { idOk = false; }
    try { sigOk = window.NobleSchnorr.schnorr.verify(event.sig, event.id, event.pubkey); } catch (e) { sigOk = false; }
    return { idOk, sigOk };
  }

  function sentence(event, result) {
    const who = window.ForumKeys.npubEncode(event.pubkey);
    const id = result.idOk
      ? "the id matches this content (SHA-256 of its NIP-01 serialization)"
      : "the id does not match this content: it was changed after signing";
    const sig = result.sigOk
      ? "the signature is valid for " + who
      : "the signature is not valid for " + who;
    return (result.idOk && result.sigOk ? "✓ " : "✗ ") + "Checked in your browser: " + id + ", and " + sig + ".";
  }

  async function show(link, post) {
    const panel = document.createElement("div");
    panel.className = "verify-panel";
    const result = document.createElement("p");
    result.className = "verify-result";
    result.setAttribute("role", "status");
    result.textContent = "Checking…";
    panel.append(result);
    (post.querySelector(".post-head") || link).after(panel);
    let event;
    try {
      const response = await fetch(link.href, { headers: { Accept: "application/json" } });
      if (!response.ok) throw new Error("HTTP " + response.status);
      event = JSON.parse(await response.text());
    } catch (err) {
      result.classList.add("bad");
      result.textContent = "✗ Could not load the signed event: " + err.message + ".";
      return;
    }
    const outcome = check(event);
    result.classList.add(outcome.idOk && outcome.sigOk ? "good" : "bad");
    result.textContent = sentence(event, outcome);
    const pre = document.createElement("pre");
    pre.className = "event-json";
    pre.textContent = JSON.stringify(event, null, 2);
    const raw = Object.assign(document.createElement("a"), {
      className: "raw-json",
      href: link.href,
      textContent: "Raw JSON, byte for byte as signed",
    });
    panel.append(pre, raw);
  }

  document.addEventListener("click", (e) => {
    const link = e.target.closest("a.verify");
    if (!link || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const post = link.closest(".post");
    if (!post || !window.ForumKeys || !window.NobleSchnorr) return;  // plain link then
    e.preventDefault();
    const open = post.querySelector(".verify-panel");
    if (open) open.remove();
    else show(link, post);
  });
})();
