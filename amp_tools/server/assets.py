"""The web app's only stylesheet and script, served by the app itself (no CDN, CSP ``'self'``).

The script shows every ``<time>`` in the browser's time zone (relative when near: "in 14 min"),
counts down each approval's expiry and keeps the page live: it listens to the server-sent events
at ``/api/events`` (falling back to polling ``/api/approvals/version``) and reloads when the set of
pending approvals changes, unless the person is typing. In a background tab it puts the pending
count in the title and raises a notification (once the owner allowed them) instead. The CSS is
phone first: on a narrow screen every table row stacks into a labelled card.
"""

from __future__ import annotations

__all__ = ["APP_CSS", "APP_JS", "SW_JS"]

APP_JS = r"""
(function () {
  "use strict";
  var fmt = new Intl.DateTimeFormat(undefined, {dateStyle: "medium", timeStyle: "short"});
  var full = new Intl.DateTimeFormat(undefined, {dateStyle: "full", timeStyle: "long"});
  var rel = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, {numeric: "auto"}) : null;
  function relative(ms) {
    var s = Math.round(ms / 1000), a = Math.abs(s);
    if (!rel) { return null; }
    if (a < 60) { return rel.format(s, "second"); }
    if (a < 3600) { return rel.format(Math.round(s / 60), "minute"); }
    if (a < 86400) { return rel.format(Math.round(s / 3600), "hour"); }
    return null;  // older than a day: the date says more
  }
  function localTimes() {
    var now = Date.now();
    document.querySelectorAll("time.local").forEach(function (el) {
      var at = Date.parse(el.getAttribute("datetime"));
      if (isNaN(at)) { return; }
      var d = new Date(at), near = el.hasAttribute("data-rel") ? relative(at - now) : null;
      el.textContent = near ? near : fmt.format(d);
      el.title = full.format(d);
    });
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var left = Math.floor((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      if (left <= 0) { el.textContent = "expired"; el.classList.add("expired"); return; }
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = "in " + (m ? m + " min " : "") + (m < 5 ? s + " s" : "");
      el.title = full.format(new Date(Date.parse(el.getAttribute("datetime"))));
    });
  }
  localTimes();
  tick();
  setInterval(tick, 1000);
  setInterval(localTimes, 30000);

  var notify = document.getElementById("notify");
  if (notify && window.Notification && Notification.permission === "default") {
    notify.hidden = false;
    notify.addEventListener("click", function () {
      Notification.requestPermission().then(function () { notify.hidden = true; });
    });
  }
  if (navigator.serviceWorker && window.isSecureContext) {
    navigator.serviceWorker.register("/sw.js").catch(function () {});
  }

  var live = document.querySelector("[data-version]");
  if (!live) { return; }
  var seen = live.getAttribute("data-version"), stale = false;
  var base = document.body.getAttribute("data-title") || document.title;
  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.value;
  }
  function tell(pending) {
    document.title = (pending ? "(" + pending + ") " : "") + base;
    if (!pending || !window.Notification || Notification.permission !== "granted") { return; }
    var text = pending + (pending === 1 ? " payment is" : " payments are") + " waiting for your approval";
    var options = {body: "Open the console to approve or deny.", tag: "amp-tools-approvals", renotify: true};
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.ready.then(function (reg) { reg.showNotification(text, options); });
      return;
    }
    try { new Notification(text, options).onclick = function () { window.focus(); }; } catch (e) { /* phones */ }
  }
  function check(version, pending) {
    if (!version || version === seen) { return; }
    seen = version;
    if (document.hidden) { tell(pending); stale = true; return; }
    if (!busy()) { window.location.reload(); } else { stale = true; }
  }
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && stale && !busy()) { window.location.reload(); }
  });
  function poll() {
    fetch("/api/approvals/version", {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (d) { if (d) { check(d.version, d.pending); } }).catch(function () {});
  }
  if (window.EventSource) {
    var es = new EventSource("/api/events");
    es.addEventListener("approvals", function (e) { var d = JSON.parse(e.data); check(d.version, d.pending); });
    es.onerror = function () { setTimeout(poll, 1000); };
  } else {
    setInterval(poll, 3000);
  }
})();
"""

#: The service worker: it only opens the inbox when a notification is tapped (nothing is cached).
SW_JS = r"""
self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  event.waitUntil(self.clients.openWindow("/inbox"));
});
"""

APP_CSS = """
:root { --ink: #1d2330; --muted: #5d6675; --line: #e4e7ec; --ok: #067647; --bad: #b42318; --accent: #1849a9;
        --warn: #b54708; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
* { box-sizing: border-box; }
body { margin: 0; background: #f6f7f9; overflow-wrap: anywhere; }
header { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; padding: .7rem 1.2rem;
  background: #101828; color: #fff; }
header .sub { color: #98a2b3; }
header nav { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: center; margin-left: auto; }
header a, header button.link { color: #d0d5dd; text-decoration: none; }
header a[aria-current] { color: #fff; font-weight: 600; }
main { max-width: 1100px; margin: 1.2rem auto; padding: 0 1rem; }
h1 { font-size: 1.45rem; margin: .6rem 0; } h2 { font-size: 1.12rem; margin: 0 0 .6rem; }
h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; margin: 0 0 1rem; }
.narrow { max-width: 420px; margin: 3rem auto; }
.narrow form { display: flex; flex-direction: column; gap: .7rem; }
.narrow label { flex-direction: column; align-items: stretch; margin: 0; }
.muted, .hint { color: var(--muted); font-size: .9rem; }
.amount { font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .6rem 0; }
dt { color: var(--muted); } dd { margin: 0; min-width: 0; } dd ul { margin: 0; padding-left: 1.1rem; }
.totals { grid-template-columns: repeat(auto-fill, minmax(7rem, max-content) minmax(8rem, 1fr)); }
dl.legs { grid-template-columns: max-content 1fr; gap: 0 .6rem; font-size: .82rem; margin: .3rem 0 0; }
table { border-collapse: collapse; width: 100%; font-size: .9rem; margin: .4rem 0 .8rem; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; white-space: nowrap; } th a { color: inherit; }
th[aria-sort] a { color: var(--ink); font-weight: 600; }
th[aria-sort=ascending] a::after { content: " \\2191"; } th[aria-sort=descending] a::after { content: " \\2193"; }
td time { white-space: nowrap; }
tr.depth-1 td:first-child { padding-left: 1.2rem; } tr.depth-2 td:first-child { padding-left: 2.2rem; }
tr.subs > td { padding-top: 0; } table.sub { margin: 0; background: #fafbfc; }
@media (min-width: 701px) {
  /* The crew's sub-budget rows line up under its own columns. */
  table.budgets, table.sub { table-layout: fixed; }
  table.budgets td:nth-child(1), table.budgets th:nth-child(1) { width: 22%; }
  table.budgets td:nth-child(2), table.budgets th:nth-child(2) { width: 26%; }
  table.budgets td:nth-child(4), table.budgets th:nth-child(4),
  table.budgets td:nth-child(5), table.budgets th:nth-child(5) { width: 10%; }
}
meter { display: block; width: 100%; max-width: 12rem; height: .5rem; margin-top: .2rem; }
.actions { display: flex; gap: .6rem; flex-wrap: wrap; align-items: center; margin: .4rem 0 .6rem; }
.actions form { display: flex; gap: .5rem; flex-wrap: wrap; }
form { margin: 0; } .inline { display: inline; }
.search { display: flex; gap: .5rem; margin: .6rem 0; } .search input { flex: 1; min-width: 0; }
input[type=text], input:not([type]), input[type=password], input[type=search] { padding: .55rem .65rem;
  border: 1px solid #d0d5dd; border-radius: 6px; font: inherit; max-width: 100%; }
label { display: inline-flex; gap: .4rem; align-items: center; margin-right: .6rem; }
button { font: inherit; padding: .55rem 1rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; min-height: 2.6rem; }
button.approve { background: var(--ok); border-color: var(--ok); }
button.deny { background: #fff; color: var(--bad); border-color: var(--bad); }
button.link { background: none; border: none; color: inherit; padding: 0; text-decoration: underline; min-height: 0; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .8rem; background: #eef2f6;
  white-space: nowrap; text-decoration: none; color: var(--ink); }
.badge.ok, .badge.active { background: #dcfae6; color: var(--ok); }
.badge.bad, .badge.frozen { background: #fee4e2; color: var(--bad); }
.badge.pending, .badge.held { background: #fef0c7; color: var(--warn); }
.badge.muted { background: #f2f4f7; color: var(--muted); }
.flash { background: #eff8ff; border: 1px solid #b2ddff; padding: .6rem .8rem; border-radius: 6px; }
.error, .frozen { color: var(--bad); } .ok { color: var(--ok); }
.empty { color: var(--muted); padding: 1rem 0; }
.count { background: var(--accent); color: #fff; border-radius: 999px; padding: 0 .55rem; font-size: .9rem; }
time.expired { color: var(--bad); font-weight: 600; }
.chart { width: 100%; height: auto; max-height: 160px; margin: .4rem 0 0; display: block; }
.chart-caption { display: flex; justify-content: space-between; gap: .5rem; margin: .2rem 0 .6rem;
  color: var(--muted); font-size: .82rem; }
.chart .bar { fill: #528bff; } .chart .axis { stroke: #98a2b3; } .chart .tick { font-size: 13px; fill: #667085; }
code { font-size: .8rem; word-break: break-all; }
details summary { cursor: pointer; color: var(--accent); }
.resolve { display: flex; flex-direction: column; gap: .3rem; margin-top: .3rem; }
.history { margin: .3rem 0 0; padding-left: 1.1rem; font-size: .82rem; color: var(--muted); }
.rules { margin: 0 0 .5rem; padding-left: 1.2rem; } .rules li { margin: .15rem 0; }
.pages { display: flex; gap: 1rem; align-items: center; justify-content: center; margin: .8rem 0; }
.freeze { display: flex; flex-wrap: wrap; gap: .5rem; margin-top: .6rem; }
td.detail { font-size: .84rem; }
@media (max-width: 700px) {
  header { padding: .55rem .8rem; } header nav { margin-left: 0; width: 100%; }
  main { padding: 0 .6rem; margin: .6rem auto; }
  .card { padding: .8rem; }
  table.stack, table.stack tbody, table.stack tr, table.stack td { display: block; width: 100%; }
  table.stack thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); }
  table.stack tr { border-bottom: 1px solid var(--line); padding: .45rem 0; }
  table.stack td { border: 0; padding: .15rem 0 .15rem 7rem; position: relative; min-height: 1.5rem; }
  table.stack td::before { content: attr(data-label); color: var(--muted); font-size: .85rem; position: absolute;
    left: 0; top: .2rem; width: 6.5rem; }
  table.stack tr.subs > td { padding-left: 0; } table.stack tr.subs > td::before { content: none; }
  table.stack td[data-label=""] { padding-left: 0; }
  tr.depth-1 td:first-child, tr.depth-2 td:first-child { padding-left: 7rem; }
  table.sub { padding-left: .6rem; border-left: 3px solid var(--line); }
  .totals { grid-template-columns: max-content minmax(0, 1fr); }
  .actions form, .actions button, .freeze button { flex: 1 1 auto; }
  .actions input { flex: 1 1 100%; }
}
"""
