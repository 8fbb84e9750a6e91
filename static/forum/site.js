/* Page-wide helpers, loaded first: JSON over fetch with Django's CSRF token (window.ForumHttp,
 * used by the composer and the demo wallet) and "Copy" buttons ([data-copy-target="#id"]). */
(function () {
  "use strict";

  // Pages that differ per reader carry the token in a meta tag; cached public pages (the same
  // for everyone) carry none, so it is fetched once from /csrf, which also sets its cookie.
  let fetchedToken = null;
  async function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && meta.content) return meta.content;
    if (!fetchedToken) {
      fetchedToken = fetch("/csrf", { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) => response.json())
        .then((data) => data.token || "")
        .catch(() => { fetchedToken = null; return ""; });
    }
    return fetchedToken;
  }

  async function answer(response) {
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || data.message || "HTTP " + response.status);
    return data;
  }

  async function getJSON(url) {
    return answer(await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }));
  }

  async function postJSON(url, body) {
    return answer(await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": await csrfToken() },
      body: JSON.stringify(body),
    }));
  }

  window.ForumHttp = { getJSON, postJSON, csrfToken };
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-copy-target]").forEach((button) => {
      button.hidden = false;
      button.addEventListener("click", () => {
        const source = document.querySelector(button.dataset.copyTarget);
        if (!source || !navigator.clipboard) return;
        navigator.clipboard.writeText(source.textContent).then(() => {
          button.textContent = "Copied";
          setTimeout(() => { button.textContent = "Copy"; }, 1500);
        }, () => {});
      });
    });
  });
})();
