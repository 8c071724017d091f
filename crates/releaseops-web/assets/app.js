// The dashboard's one script: times in the viewer's zone, and a live board.
// Everything works without it; it loads nothing from anywhere else.
"use strict";
(function () {
  const fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short",
  });
  function localTimes(root) {
    for (const t of root.querySelectorAll("time[datetime]")) {
      const iso = t.getAttribute("datetime");
      const d = new Date(iso);
      if (isNaN(d.getTime())) continue;
      t.textContent = fmt.format(d);
      t.title = d.toISOString().replace(".000Z", "Z") + " (UTC)";
    }
  }
  function live() {
    const board = document.getElementById("board");
    const url = document.body.dataset.live;
    if (!board || !url || !window.EventSource) return;
    let pending = false;
    async function refresh() {
      if (pending) return;
      pending = true;
      try {
        const r = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
        if (r.ok) {
          board.setAttribute("aria-busy", "true");
          board.innerHTML = await r.text();
          localTimes(board);
          board.setAttribute("aria-busy", "false");
          board.dataset.refreshed = String(Date.now());
        }
      } finally {
        pending = false;
      }
    }
    const events = new EventSource("/v1/events", { withCredentials: true });
    let first = true;
    events.addEventListener("snapshot", function () { if (!first) refresh(); first = false; });
    events.addEventListener("moved", refresh);
    // Approvals and reports move no pointer: look again now and then.
    setInterval(refresh, 15000);
  }
  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    live();
  });
})();
