// soundark web: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // "Copy" buttons beside magnet links (shown only when scripts run).
  for (const button of document.querySelectorAll("button.copy")) {
    const field = button.parentElement.querySelector("input");
    if (!field) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
      } catch (e) {
        field.select();  // clipboard API needs a secure context; selection lets Ctrl+C work
        document.execCommand("copy");
      }
      button.textContent = "Copied";
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
  // Clicking into a magnet field selects it whole, ready to copy.
  for (const field of document.querySelectorAll(".magnet input")) {
    field.addEventListener("focus", () => field.select());
  }
});
