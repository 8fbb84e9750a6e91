/* Page-wide helpers, loaded first: JSON over fetch with Django's CSRF token (window.ForumHttp,
 * used by the composer and the demo wallet) and "Copy" buttons ([data-copy-target="#id"]). */
(function () {
  "use strict";

  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
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
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
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
