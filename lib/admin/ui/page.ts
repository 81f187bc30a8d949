// The web UI's HTML shell and stylesheet, as strings: they ship inside the compiled package
// (tsc copies no other files into dist/) and need no build step. The behaviour is in the browser
// modules next to this file (app.ts and the views it imports).

/** The page; `entry` is the URL of the browser entry module (app.ts from source, app.js built). */
export function pageHtml(entry: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Cairn</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/ui/style.css">
<script type="module" src="${entry}"></script>
</head>
<body>
<a class="skip" href="#routes-heading">Skip to the routing table</a>
<header class="top">
  <div class="brand"><span class="logo" aria-hidden="true">&#9650;</span><h1>Cairn</h1></div>
  <div id="status" class="status">
    <span class="muted">Loading&#8230;</span>
  </div>
  <div id="announce" class="sr-only" role="status" aria-live="polite"></div>
  <span id="live" class="live" title="Live updates">connecting</span>
</header>
<main>
  <section class="card routes" aria-labelledby="routes-heading">
    <div class="toolbar">
      <h2 id="routes-heading">Routing table</h2>
      <label class="filter" for="filter">Filter
        <input id="filter" type="search" autocomplete="off" spellcheck="false"
          placeholder="service, host, path, tag or address" aria-describedby="route-count">
      </label>
      <span id="route-count" class="muted" aria-live="polite"></span>
    </div>
    <div class="table-wrap">
      <table id="routes">
        <caption class="sr-only">Routes and their targets with live traffic; column headers sort.</caption>
        <thead>
          <tr>
            <th scope="col" data-sort="service"><button type="button">Service</button></th>
            <th scope="col" data-sort="source"><button type="button">Source</button></th>
            <th scope="col" data-sort="destination"><button type="button">Destination</button></th>
            <th scope="col" data-sort="weight" class="num"><button type="button">Weight</button></th>
            <th scope="col" data-sort="health"><button type="button">Health</button></th>
            <th scope="col" data-sort="rate" class="num"><button type="button">Req/s</button></th>
            <th scope="col" data-sort="p50" class="num"><button type="button">p50</button></th>
            <th scope="col" data-sort="p99" class="num"><button type="button">p99</button></th>
            <th scope="col" data-sort="errors" class="num"><button type="button">5xx</button></th>
            <th scope="col" data-sort="open" class="num"><button type="button">Open</button></th>
          </tr>
        </thead>
        <tbody></tbody>
      </table>
      <p id="routes-empty" class="empty" hidden></p>
    </div>
  </section>

  <div class="panels">
    <section class="card" aria-labelledby="explain-heading">
      <h2 id="explain-heading">Explain a URL</h2>
      <form id="explain-form" class="row">
        <label for="explain-url" class="sr-only">URL to explain</label>
        <input id="explain-url" name="url" type="text" required autocomplete="off" spellcheck="false"
          placeholder="http://example.com/api/users or /path or tcp://:5432">
        <button type="submit">Explain</button>
      </form>
      <div id="explain-result" aria-live="polite"></div>
    </section>

    <section class="card" aria-labelledby="overrides-heading">
      <h2 id="overrides-heading">Overrides</h2>
      <p class="muted small" id="manual-where">route add | route del | route weight, one per line.</p>
      <label for="manual" class="sr-only">Manual route commands</label>
      <textarea id="manual" rows="8" spellcheck="false" autocomplete="off"
        aria-describedby="manual-where manual-feedback"></textarea>
      <form id="token-row" class="row" hidden>
        <label for="token">Admin token</label>
        <input id="token" type="password" autocomplete="current-password">
      </form>
      <div class="row buttons">
        <button type="button" id="manual-check">Check</button>
        <button type="button" id="manual-save" class="primary">Save</button>
        <button type="button" id="manual-reload">Reload</button>
      </div>
      <div id="manual-feedback" class="feedback" role="status" aria-live="polite"></div>
    </section>

    <section class="card" aria-labelledby="problems-heading">
      <h2 id="problems-heading">Problems <span id="problem-count" class="pill"></span></h2>
      <ul id="problems" class="problems"></ul>
    </section>

    <section class="card" aria-labelledby="history-heading">
      <h2 id="history-heading">Change history</h2>
      <ol id="history" class="history" reversed></ol>
    </section>
  </div>
</main>
</body>
</html>
`;
}

export const styleCss = `
:root {
  --bg: #f5f6f8; --card: #fff; --fg: #1d2330; --muted: #667085; --line: #e3e6eb;
  --accent: #2f5bd3; --ok: #177245; --ok-bg: #e3f4ea; --warn: #8a5a00; --warn-bg: #fdf1d8;
  --bad: #b42318; --bad-bg: #fde7e5; --drain: #475467; --drain-bg: #eceef2; --flash: #fff6c2;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #11151c; --card: #181d26; --fg: #e6e9ef; --muted: #98a2b3; --line: #2a313d;
    --accent: #7aa2ff; --ok: #6fdc9c; --ok-bg: #16362a; --warn: #f5c26b; --warn-bg: #3b2f16;
    --bad: #ff8a80; --bad-bg: #46201d; --drain: #c0c7d2; --drain-bg: #2a303a; --flash: #3d3a1c;
  }
}
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
code, .mono, td.dst, td.src, textarea, #explain-url { font-family: ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; font-size: 13px; }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 10px; }
a { color: var(--accent); }
button { font: inherit; padding: 5px 12px; border: 1px solid var(--line); border-radius: 6px; background: var(--card); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); }
button:disabled { opacity: .55; cursor: default; }
input, textarea { font: inherit; color: var(--fg); background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 6px 8px; }
input:focus, textarea:focus, button:focus-visible { outline: 2px solid var(--accent); outline-offset: 1px; }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.skip { position: absolute; left: -999px; } .skip:focus { left: 8px; top: 8px; background: var(--card); padding: 6px; z-index: 9; }
.muted { color: var(--muted); } .small { font-size: 12px; }
.top { display: flex; flex-wrap: wrap; align-items: center; gap: 10px 18px; padding: 10px 18px; background: var(--card); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 5; }
.brand { display: flex; align-items: center; gap: 8px; } .logo { color: var(--accent); }
.status { display: flex; flex-wrap: wrap; gap: 6px 14px; align-items: center; flex: 1; }
.chip { display: inline-flex; align-items: center; gap: 6px; padding: 2px 9px; border-radius: 99px; border: 1px solid var(--line); white-space: nowrap; }
.chip .dot { width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.chip.up .dot { background: var(--ok); } .chip.stale .dot { background: var(--warn); } .chip.down .dot { background: var(--bad); }
.live { font-size: 12px; color: var(--muted); } .live.on { color: var(--ok); } .live.on::before { content: "\\25CF  "; }
main { padding: 14px 18px 40px; display: grid; gap: 14px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 14px; min-width: 0; }
.toolbar { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; margin-bottom: 10px; }
.toolbar h2 { margin: 0; }
.filter { display: flex; align-items: center; gap: 8px; flex: 1; max-width: 520px; }
.filter input { flex: 1; min-width: 0; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-weight: 600; white-space: nowrap; position: sticky; top: 0; background: var(--card); }
th button { border: 0; padding: 0; background: none; font-weight: 600; color: var(--fg); }
th[aria-sort=ascending] button::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort=descending] button::after { content: " \\25BC"; font-size: 10px; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.src .proto { color: var(--muted); font-size: 11px; margin-left: 6px; }
td.dst { word-break: break-all; }
tr.flash td { background: var(--flash); transition: background 1.5s; }
tr.draining td { color: var(--muted); }
.tag { display: inline-block; font-size: 11px; padding: 0 6px; border-radius: 4px; background: var(--drain-bg); color: var(--drain); margin: 2px 4px 0 0; }
.badge { display: inline-block; font-size: 12px; padding: 1px 8px; border-radius: 99px; white-space: nowrap; }
.badge.passing { background: var(--ok-bg); color: var(--ok); }
.badge.warning { background: var(--warn-bg); color: var(--warn); }
.badge.ejected { background: var(--bad-bg); color: var(--bad); }
.badge.draining { background: var(--drain-bg); color: var(--drain); }
.bad { color: var(--bad); }
.empty { color: var(--muted); padding: 12px 4px; }
.panels { display: grid; gap: 14px; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); }
.row { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin: 8px 0; }
.row input { flex: 1; min-width: 0; }
textarea { width: 100%; resize: vertical; min-height: 130px; }
.feedback:empty { display: none; }
.feedback { border-radius: 6px; padding: 8px 10px; margin-top: 6px; background: var(--drain-bg); }
.feedback.ok { background: var(--ok-bg); } .feedback.error { background: var(--bad-bg); } .feedback.conflict { background: var(--warn-bg); }
.feedback ul { margin: 6px 0 0; padding-left: 18px; }
.pill { font-size: 12px; font-weight: 500; padding: 0 7px; border-radius: 99px; background: var(--drain-bg); }
.pill.has { background: var(--bad-bg); color: var(--bad); }
.problems, .history { margin: 0; padding: 0; list-style: none; max-height: 360px; overflow: auto; }
.problems li, .history li { border-bottom: 1px solid var(--line); padding: 6px 0; }
.history li li, .feedback li { border: 0; padding: 1px 0; }
.problems .sev { font-size: 11px; text-transform: uppercase; font-weight: 600; margin-right: 6px; }
.problems .sev.error { color: var(--bad); } .problems .sev.warning { color: var(--warn); }
.problems code, .history code { display: block; word-break: break-all; color: var(--muted); }
.history summary { cursor: pointer; } .history summary code { display: inline; }
.history .add, .history .add code { color: var(--ok); } .history .del, .history .del code { color: var(--bad); }
.history .chg, .history .chg code { color: var(--warn); }
dl.explain { display: grid; grid-template-columns: max-content 1fr; gap: 4px 12px; margin: 10px 0; }
dl.explain dt { color: var(--muted); } dl.explain dd { margin: 0; word-break: break-all; }
.explain-list { margin: 4px 0 0; padding-left: 18px; }
@media (max-width: 760px) {
  main { padding: 10px; }
  .top { position: static; }
  .panels { grid-template-columns: 1fr; }
  table, tbody, tr, td { display: block; width: 100%; }
  thead { display: none; }
  tr { border-bottom: 1px solid var(--line); padding: 6px 0; }
  td { border: 0; padding: 2px 4px 2px 104px; position: relative; text-align: left; min-height: 24px; }
  td::before { content: attr(data-label); color: var(--muted); position: absolute; left: 4px; width: 92px;
    font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
  td.num { text-align: left; }
}
`;
