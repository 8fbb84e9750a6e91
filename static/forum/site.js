/* Small page-wide helpers: "Copy" buttons next to commands ([data-copy-target="#id"]). */
(function () {
  "use strict";
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
