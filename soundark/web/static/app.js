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

// The play queue: a list marked data-queue plays its items (those with data-audio) one after
// another in the player bar; "Play all" starts at the top, a row's play button starts there.
document.addEventListener("DOMContentLoaded", () => {
  const bar = document.getElementById("nowplaying");
  const audio = document.getElementById("queue-audio");
  const title = document.getElementById("nowplaying-title");
  const next = document.getElementById("queue-next");
  if (!bar || !audio) return;
  let queue = [];
  let pos = -1;

  function playAt(i) {
    if (pos >= 0 && queue[pos]) queue[pos].removeAttribute("aria-current");
    pos = i;
    const item = queue[pos];
    if (!item) { pos = -1; title.textContent = "End of the list"; next.disabled = true; return; }
    item.setAttribute("aria-current", "true");
    bar.hidden = false;
    title.textContent = "Playing " + (pos + 1) + " of " + queue.length + ": " + item.dataset.title;
    next.disabled = pos + 1 >= queue.length;
    audio.src = item.dataset.audio;
    audio.play().catch(() => {});  // autoplay refusals leave the controls ready to press
  }

  function start(list, item) {
    const other = document.querySelector("audio#player");
    if (other) other.pause();  // one sound at a time
    queue = Array.from(list.querySelectorAll("[data-audio]"));
    playAt(item ? queue.indexOf(item) : 0);
  }

  for (const list of document.querySelectorAll("[data-queue]")) {
    for (const item of list.querySelectorAll("[data-audio]")) {
      const button = item.querySelector("button.play");
      if (!button) continue;
      button.hidden = false;
      button.addEventListener("click", () => start(list, item));
    }
  }
  for (const button of document.querySelectorAll("button.play-all")) {
    const list = document.getElementById(button.dataset.list);
    if (!list || !list.querySelector("[data-audio]")) continue;
    button.hidden = false;
    button.addEventListener("click", () => start(list, null));
  }
  audio.addEventListener("ended", () => playAt(pos + 1));
  next.addEventListener("click", () => playAt(pos + 1));
});
