"""The web app's only stylesheet and script, served by the app itself (no CDN, CSP ``'self'``).

The script counts down each approval's expiry and keeps the page live: it listens to the
server-sent events at ``/api/events`` (falling back to polling ``/api/approvals/version``) and
reloads when the set of pending approvals changes, unless the person is typing.
"""

from __future__ import annotations

__all__ = ["APP_CSS", "APP_JS"]

APP_JS = r"""
(function () {
  "use strict";
  function tick() {
    var now = Date.now();
    document.querySelectorAll("time.countdown").forEach(function (el) {
      var left = Math.floor((Date.parse(el.getAttribute("datetime")) - now) / 1000);
      if (left <= 0) { el.textContent = "expired"; el.classList.add("expired"); return; }
      var m = Math.floor(left / 60), s = left % 60;
      el.textContent = m + " min " + (s < 10 ? "0" : "") + s + " s";
    });
  }
  tick();
  setInterval(tick, 1000);

  var live = document.querySelector("[data-version]");
  if (!live) { return; }
  var seen = live.getAttribute("data-version");
  function busy() {
    var el = document.activeElement;
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA") && el.value;
  }
  function check(version) {
    if (version && version !== seen && !busy()) { seen = version; window.location.reload(); }
  }
  function poll() {
    fetch("/api/approvals/version", {credentials: "same-origin"}).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (d) { if (d) { check(d.version); } }).catch(function () {});
  }
  if (window.EventSource) {
    var es = new EventSource("/api/events");
    es.addEventListener("approvals", function (e) { check(JSON.parse(e.data).version); });
    es.onerror = function () { setTimeout(poll, 1000); };
  } else {
    setInterval(poll, 3000);
  }
})();
"""

APP_CSS = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --ok: #067647; --bad: #b42318; --accent: #1849a9;
        font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); }
body { margin: 0; background: #f6f7f9; }
header { display: flex; gap: 1.5rem; align-items: center; padding: .8rem 1.5rem; background: #101828; color: #fff; }
header nav { display: flex; gap: 1rem; align-items: center; margin-left: auto; }
header a { color: #d0d5dd; text-decoration: none; }
header a[aria-current] { color: #fff; font-weight: 600; }
main { max-width: 1100px; margin: 1.5rem auto; padding: 0 1rem; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin: 0 0 .6rem; } h3 { font-size: 1rem; margin: 1rem 0 .4rem; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 10px; padding: 1rem 1.2rem; margin: 0 0 1rem; }
.narrow { max-width: 420px; margin: 3rem auto; }
.muted, .hint { color: var(--muted); font-size: .9rem; }
.amount { font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .6rem 0; }
dt { color: var(--muted); } dd { margin: 0; } dd ul { margin: 0; padding-left: 1.1rem; }
.totals { grid-template-columns: repeat(4, max-content 1fr); }
table { border-collapse: collapse; width: 100%; font-size: .88rem; margin: .4rem 0 .8rem; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 500; }
.actions { display: flex; gap: .8rem; flex-wrap: wrap; align-items: center; }
form { margin: 0; } .inline { display: inline; }
input[type=text], input:not([type]), input[type=password] { padding: .45rem .6rem; border: 1px solid #d0d5dd;
  border-radius: 6px; font: inherit; }
label { display: inline-flex; gap: .4rem; align-items: center; margin-right: .6rem; }
button { font: inherit; padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent);
  background: var(--accent); color: #fff; cursor: pointer; }
button.approve { background: var(--ok); border-color: var(--ok); }
button.deny { background: #fff; color: var(--bad); border-color: var(--bad); }
button.link { background: none; border: none; color: inherit; padding: 0; text-decoration: underline; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 999px; font-size: .78rem; background: #eef2f6; }
.badge.approved, .badge.committed, .badge.active, .badge.consumed { background: #dcfae6; color: var(--ok); }
.badge.denied, .badge.frozen, .badge.released, .badge.unknown { background: #fee4e2; color: var(--bad); }
.badge.expired, .badge.reopened { background: #f2f4f7; color: var(--muted); }
.flash { background: #eff8ff; border: 1px solid #b2ddff; padding: .6rem .8rem; border-radius: 6px; }
.error, .frozen { color: var(--bad); } .ok { color: var(--ok); }
.empty { color: var(--muted); padding: 1rem 0; }
.count { background: var(--accent); color: #fff; border-radius: 999px; padding: 0 .55rem; font-size: .9rem; }
time.expired { color: var(--bad); font-weight: 600; }
.chart { width: 100%; height: auto; max-height: 220px; margin: .4rem 0; }
.chart .bar { fill: #528bff; } .chart .axis { stroke: #98a2b3; } .chart .tick { font-size: 11px; fill: #667085; }
code { font-size: .8rem; word-break: break-all; }
details summary { cursor: pointer; color: var(--accent); }
.resolve { display: flex; flex-direction: column; gap: .3rem; margin-top: .3rem; }
"""
