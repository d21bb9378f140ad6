// Samsa flight control: a dashboard over the samsa.v1 REST API.
// Plain JavaScript, no dependencies, no build step (see docs/ui.md).
"use strict";

const REFRESH_MS = 3000;
const SEVERITY = { failing: 0, degraded: 1, maintenance: 2, paused: 3, active: 4 };
const TOKEN_KEY = "samsa.token";
const OVERVIEW_PATH = "/v1/flowstatuses?historyPoints=60";

const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || "",
  role: "",
  anonymous: false,
  timer: 0,
  route: null,
  overview: { sort: "worst", dir: 1, filter: "", stateFilter: "", rows: new Map(), firstRender: true },
  flowSeries: { name: "", points: [], errors: [] },
  prevSources: null,
};

// ---------- helpers ----------

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const num = (v) => Number(v || 0);

function fmtNum(n) {
  n = num(n);
  if (Math.abs(n) >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (Math.abs(n) >= 1e4) return (n / 1e3).toFixed(1) + "k";
  return String(Math.round(n));
}

function fmtRate(r) {
  r = num(r);
  if (r === 0) return "0";
  if (r < 0.1) return r.toFixed(2);
  if (r < 10) return r.toFixed(1);
  return fmtNum(r);
}

function fmtMs(ms) {
  ms = num(ms);
  if (ms === 0) return "–";
  if (ms < 1000) return ms.toFixed(ms < 10 ? 1 : 0) + " ms";
  return (ms / 1000).toFixed(1) + " s";
}

function fmtTime(ts) {
  if (!ts) return "–";
  const d = new Date(ts);
  return d.toLocaleString();
}

function ago(ts) {
  if (!ts) return "";
  const s = Math.round((Date.now() - new Date(ts).getTime()) / 1000);
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.round(s / 60) + "m ago";
  return Math.round(s / 3600) + "h ago";
}

function badge(st) {
  st = st || "active";
  return el("span", { class: "badge s-" + st, text: st });
}

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 5000);
}

const canAct = () => state.role === "admin" || state.role === "editor";

// ---------- API ----------

class APIError extends Error {
  constructor(status, msg) { super(msg); this.status = status; }
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  const text = await res.text();
  if (!res.ok) {
    let msg = text;
    try { const j = JSON.parse(text); msg = j.message || j.error || text; } catch (e) { /* not JSON */ }
    if (res.status === 401) { showLogin("Your token was refused: log in again."); }
    throw new APIError(res.status, msg || res.statusText);
  }
  return text;
}

async function getJSON(path) { return JSON.parse(await api("GET", path)); }

// ---------- login ----------

async function whoami() {
  const me = await getJSON("/v1/whoami");
  state.role = me.role || "viewer";
  state.anonymous = !!me.anonymous;
  $("#who").textContent = state.anonymous ? "no authentication (admin)" : "role: " + state.role;
  $("#logout").hidden = state.anonymous;
  document.body.dataset.role = state.role;
}

function showLogin(msg) {
  clearInterval(state.timer);
  $("#view").replaceChildren();
  $("#login").hidden = false;
  $("#login-error").textContent = msg || "";
  $("#token").focus();
}

async function login(ev) {
  ev.preventDefault();
  state.token = $("#token").value.trim();
  try {
    await whoami();
  } catch (e) {
    $("#login-error").textContent = e.status === 401 ? "This token is not valid." : "Cannot reach the control API: " + e.message;
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, state.token);
  $("#token").value = "";
  $("#login").hidden = true;
  route();
}

function logout() {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = ""; state.role = "";
  $("#who").textContent = "";
  $("#logout").hidden = true;
  showLogin("");
}

// ---------- routing ----------

function route() {
  clearInterval(state.timer);
  const h = location.hash || "#/";
  let m;
  for (const a of document.querySelectorAll("[data-nav]")) a.removeAttribute("aria-current");
  if ((m = h.match(/^#\/flows\/([a-z0-9-]+)$/))) {
    state.route = { page: "flow", name: m[1] };
    renderFlowPage(m[1]);
  } else if (h === "#/sources") {
    state.route = { page: "sources" };
    $("[data-nav=sources]").setAttribute("aria-current", "page");
    renderSources();
  } else {
    state.route = { page: "overview" };
    $("[data-nav=overview]").setAttribute("aria-current", "page");
    renderOverview();
  }
}

function every(fn) {
  fn();
  state.timer = setInterval(fn, REFRESH_MS);
}

// ---------- sparkline and charts ----------

const SVGNS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  return e;
}

// rates turns cumulative samples into per-second rates between neighbours.
function rates(history, field) {
  const out = [];
  for (let i = 1; i < history.length; i++) {
    const a = history[i - 1], b = history[i];
    const dt = (new Date(b.time) - new Date(a.time)) / 1000;
    if (dt <= 0) continue;
    out.push({ t: new Date(b.time).getTime(), v: Math.max(0, (num(b[field]) - num(a[field])) / dt) });
  }
  return out;
}

function sparkPath(values, w, h) {
  if (values.length === 1) values = [values[0], values[0]];
  if (values.length < 2) return "";
  const max = Math.max(...values, 1e-9);
  const step = w / (values.length - 1);
  return values.map((v, i) => (i ? "L" : "M") + (i * step).toFixed(1) + "," + (h - 1 - (v / max) * (h - 2)).toFixed(1)).join("");
}

function sparkline(history) {
  const w = 120, h = 22;
  const inR = rates(history || [], "received").map((p) => p.v);
  const outR = rates(history || [], "delivered").map((p) => p.v);
  const s = svg("svg", { class: "spark", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img" });
  const total = inR.reduce((a, b) => a + b, 0);
  s.setAttribute("aria-label", inR.length < 1 ? "no history yet" :
    `last hour: in up to ${fmtRate(Math.max(...inR))}/s, out up to ${fmtRate(Math.max(...outR, 0))}/s`);
  if (inR.length >= 1) {
    const max = Math.max(...inR, ...outR, 1e-9);
    const scaled = (vals) => vals.map((v) => v / max);
    s.append(svg("path", { d: sparkPath(scaled(inR), w, h), fill: "none", stroke: "#0b57d0", "stroke-width": 1.5 }));
    if (total > 0) s.append(svg("path", { d: sparkPath(scaled(outR), w, h), fill: "none", stroke: "#146c2e", "stroke-width": 1.2, "stroke-dasharray": "3 2" }));
  } else {
    s.append(svg("line", { x1: 0, y1: h - 1, x2: w, y2: h - 1, stroke: "#d5d9e0" }));
  }
  return s;
}

const COLORS = ["#0b57d0", "#146c2e", "#a0161b", "#8a4b00"];

// chart draws series [{label, points:[{t,v}]}] as lines over time.
function chart(title, series, unitFmt, opts = {}) {
  const w = 460, h = 170, L = 52, R = 8, T = 10, B = 22;
  const all = series.flatMap((s) => s.points);
  const wrap = el("figure", { class: "card chartcard" });
  wrap.append(el("h2", { text: title }));
  const s = svg("svg", { class: "chart", width: "100%", viewBox: `0 0 ${w} ${h}`, role: "img" });
  if (!series.some((se) => se.points.length >= 2)) {
    s.setAttribute("aria-label", title + ": not enough data yet");
    const t = svg("text", { x: w / 2, y: h / 2, "text-anchor": "middle" });
    t.textContent = "collecting data…";
    s.append(t);
    wrap.append(s);
    return wrap;
  }
  const t0 = Math.min(...all.map((p) => p.t)), t1 = Math.max(...all.map((p) => p.t), t0 + 1);
  let vmax = Math.max(...all.map((p) => p.v)) * 1.1 || 1;
  // Whole numbers (records) get whole ticks.
  if (opts.integer) vmax = Math.max(2, Math.ceil(vmax / 2) * 2);
  const tick = (v) => (v === 0 ? "0" : unitFmt(v));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (w - L - R);
  const y = (v) => T + (1 - v / vmax) * (h - T - B);
  for (const f of [0, 0.5, 1]) {
    s.append(svg("line", { x1: L, x2: w - R, y1: y(vmax * f), y2: y(vmax * f), stroke: "#e3e6eb" }));
    const lab = svg("text", { x: L - 4, y: y(vmax * f) + 4, "text-anchor": "end" });
    lab.textContent = tick(vmax * f);
    s.append(lab);
  }
  for (const [tt, anchor] of [[t0, "start"], [t1, "end"]]) {
    const lab = svg("text", { x: x(tt), y: h - 6, "text-anchor": anchor });
    lab.textContent = new Date(tt).toLocaleTimeString();
    s.append(lab);
  }
  const desc = [];
  series.forEach((se, i) => {
    if (se.points.length === 0) return;
    const d = se.points.map((p, j) => (j ? "L" : "M") + x(p.t).toFixed(1) + "," + y(p.v).toFixed(1)).join("");
    s.append(svg("path", { d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.8 }));
    desc.push(`${se.label} now ${unitFmt(se.points[se.points.length - 1].v)}`);
  });
  s.setAttribute("aria-label", `${title}: ${desc.join(", ")}`);
  wrap.append(s);
  wrap.append(el("div", { class: "legend", "aria-hidden": "true" },
    series.map((se, i) => el("span", {}, el("i", { class: "c" + (i % COLORS.length) }), se.label))));
  return wrap;
}

// ---------- overview ----------

const COLUMNS = [
  { key: "name", label: "Flow" },
  { key: "state", label: "State" },
  { key: "in", label: "In /s", num: true },
  { key: "out", label: "Out /s", num: true },
  { key: "lag", label: "Lag", num: true },
  { key: "dlq", label: "DLQ", num: true },
  { key: "p99", label: "p99 latency", num: true },
  { key: "breaker", label: "Breaker" },
  { key: "error", label: "Last error" },
  { key: null, label: "Last hour" },
];

function rowValues(st) {
  return {
    name: st.name,
    state: st.state || "active",
    in: num(st.rates && st.rates.received),
    out: num(st.rates && st.rates.delivered),
    lag: num(st.transformLag) + num(st.deliveryLag),
    dlq: num(st.dlqDepth),
    p99: num(st.latencyP99Ms),
    breaker: st.breaker || "closed",
    error: st.lastError ? st.lastError.message : "",
  };
}

function worseFirst(a, b) {
  return (SEVERITY[a.state] ?? 9) - (SEVERITY[b.state] ?? 9) || b.dlq - a.dlq || b.lag - a.lag || a.name.localeCompare(b.name);
}

function renderOverview() {
  const o = state.overview;
  o.rows = new Map();
  o.firstRender = true;
  const view = $("#view");
  const filter = el("input", { id: "f-text", type: "search", placeholder: "name, error…", value: o.filter,
    oninput: (e) => { o.filter = e.target.value; applyOverview(); } });
  const stateSel = el("select", { id: "f-state", onchange: (e) => { o.stateFilter = e.target.value; applyOverview(); } },
    el("option", { value: "" , text: "all" }),
    Object.keys(SEVERITY).map((s) => el("option", { value: s, text: s, selected: o.stateFilter === s })));
  const headRow = el("tr", {}, COLUMNS.map((c) => {
    const th = el("th", { scope: "col", class: c.num ? "num" : "" });
    if (c.key) {
      th.append(el("button", { type: "button", "data-sort": c.key, onclick: () => {
        if (o.sort === c.key) o.dir = -o.dir; else { o.sort = c.key; o.dir = c.num ? -1 : 1; }
        applyOverview();
      } }, c.label));
    } else th.textContent = c.label;
    return th;
  }));
  view.replaceChildren(
    el("h1", { text: "Flows" }),
    el("div", { class: "toolbar" },
      el("div", {}, el("label", { for: "f-text", text: "Filter" }), filter),
      el("div", {}, el("label", { for: "f-state", text: "State" }), stateSel),
      el("button", { type: "button", onclick: () => { o.sort = "worst"; o.dir = 1; applyOverview(); } }, "Worst first"),
      el("span", { class: "muted", id: "ov-summary", "aria-live": "polite" })),
    el("div", { class: "tablewrap" },
      el("table", { id: "flows" },
        el("caption", { class: "sr-only", text: "Every flow, worst first; refreshed every few seconds" }),
        el("thead", {}, headRow),
        el("tbody", { id: "flows-body" }))),
    el("p", { class: "muted", id: "ov-updated" }));
  every(refreshOverview);
}

async function refreshOverview() {
  let data;
  try {
    const pre = state.prefetch;
    state.prefetch = null;
    data = (pre && await pre) || await getJSON(OVERVIEW_PATH);
  } catch (e) {
    if (e.status !== 401) $("#ov-updated").textContent = "refresh failed: " + e.message;
    return;
  }
  if (!state.route || state.route.page !== "overview") return;
  const o = state.overview;
  if (o.firstRender) window.samsaDataAt = performance.now();
  const seen = new Set();
  for (const st of data.statuses || []) {
    seen.add(st.name);
    let r = o.rows.get(st.name);
    if (!r) { r = makeRow(st.name); o.rows.set(st.name, r); }
    updateRow(r, st);
  }
  for (const [name, r] of o.rows) if (!seen.has(name)) { r.tr.remove(); o.rows.delete(name); }
  applyOverview();
  $("#ov-updated").textContent = "updated " + new Date().toLocaleTimeString();
  if (o.firstRender) {
    o.firstRender = false;
    window.samsaRenderedAt = performance.now();
    document.body.dataset.rendered = "overview";
  }
}

function makeRow(name) {
  const cells = {};
  const tr = el("tr", { "data-flow": name });
  for (const c of COLUMNS) {
    const td = el(c.key === "name" ? "th" : "td", c.key === "name" ? { scope: "row" } : { class: c.num ? "num" : c.key === "error" ? "err" : "" });
    cells[c.key || "spark"] = td;
    tr.append(td);
  }
  cells.name.append(el("a", { href: "#/flows/" + name, text: name }));
  return { tr, cells, v: null };
}

function updateRow(r, st) {
  const v = rowValues(st);
  const c = r.cells;
  c.state.replaceChildren(badge(v.state));
  if (st.reason) c.state.title = st.reason; else c.state.removeAttribute("title");
  c.in.textContent = fmtRate(v.in);
  c.out.textContent = fmtRate(v.out);
  c.lag.textContent = fmtNum(v.lag);
  c.dlq.textContent = fmtNum(v.dlq);
  c.p99.textContent = fmtMs(v.p99);
  c.breaker.replaceChildren(el("span", { class: "b-" + v.breaker, text: v.breaker }));
  c.error.textContent = v.error;
  c.error.title = v.error ? `${st.lastError.stage || ""} ${ago(st.lastError.time)}: ${v.error}` : "";
  c.spark.replaceChildren(sparkline(st.history));
  r.v = v;
}

function applyOverview() {
  const o = state.overview;
  const q = o.filter.toLowerCase();
  const rows = [...o.rows.values()];
  let shown = 0;
  const counts = {};
  for (const r of rows) {
    const ok = (!q || r.v.name.includes(q) || r.v.error.toLowerCase().includes(q)) && (!o.stateFilter || r.v.state === o.stateFilter);
    r.tr.hidden = !ok;
    if (ok) shown++;
    counts[r.v.state] = (counts[r.v.state] || 0) + 1;
  }
  rows.sort((a, b) => {
    if (o.sort === "worst") return worseFirst(a.v, b.v);
    const x = a.v[o.sort], y = b.v[o.sort];
    const d = typeof x === "number" ? x - y : String(x).localeCompare(String(y));
    return d * o.dir || a.v.name.localeCompare(b.v.name);
  });
  const body = $("#flows-body");
  if (!body) return;
  // Move rows only when the order changed, so focus and selection stay.
  const cur = [...body.children];
  if (cur.length !== rows.length || rows.some((r, i) => cur[i] !== r.tr)) body.append(...rows.map((r) => r.tr));
  for (const th of document.querySelectorAll("#flows thead th")) {
    const b = th.querySelector("button");
    if (b && b.dataset.sort === o.sort) th.setAttribute("aria-sort", o.dir > 0 ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
  const parts = Object.keys(SEVERITY).filter((s) => counts[s]).map((s) => `${counts[s]} ${s}`);
  $("#ov-summary").textContent = `${shown} of ${rows.length} flows` + (parts.length ? " · " + parts.join(", ") : "");
}

// ---------- flow page ----------

async function renderFlowPage(name) {
  const view = $("#view");
  view.replaceChildren(el("p", { text: "Loading " + name + "…" }));
  let def;
  try {
    def = await getJSON("/v1/flows/" + name);
  } catch (e) {
    view.replaceChildren(el("h1", { text: name }), el("p", { class: "error", role: "alert", text: e.message }));
    return;
  }
  if (state.flowSeries.name !== name) state.flowSeries = { name, points: [], errors: [] };
  const actions = el("div", { class: "row", id: "actions" });
  if (canAct()) {
    actions.append(
      el("button", { type: "button", id: "btn-pause", onclick: () => act(name, "pause") }, "Pause"),
      el("button", { type: "button", id: "btn-resume", onclick: () => act(name, "resume") }, "Resume"),
      el("button", { type: "button", id: "btn-redrive", class: "danger", onclick: () => act(name, "redrive") }, "Redrive DLQ"));
  }
  view.replaceChildren(
    el("p", {}, el("a", { href: "#/", text: "← all flows" })),
    el("div", { class: "row" }, el("h1", { text: name }), el("span", { id: "fp-state" }), actions),
    el("p", { class: "reason muted", id: "fp-reason", "aria-live": "polite" }),
    el("div", { class: "grid" },
      el("section", { class: "card", "aria-labelledby": "h-counts" }, el("h2", { id: "h-counts", text: "Stages" }), el("div", { id: "fp-counts" })),
      el("section", { class: "card", "aria-labelledby": "h-health" }, el("h2", { id: "h-health", text: "Health" }), el("div", { id: "fp-health" }))),
    el("div", { class: "grid", id: "fp-charts" }),
    el("div", { class: "grid" },
      el("section", { class: "card", "aria-labelledby": "h-errors" }, el("h2", { id: "h-errors", text: "Recent errors" }), el("div", { id: "fp-errors" })),
      el("section", { class: "card", "aria-labelledby": "h-maint" }, el("h2", { id: "h-maint", text: "Maintenance windows" }), maintenance(def), el("p", { id: "fp-next" }))),
    playground(name, def),
    el("section", { class: "card spaced", "aria-labelledby": "h-def" },
      el("h2", { id: "h-def", text: "Definition" }),
      el("p", { class: "muted", text: "Secrets are redacted by the API." }),
      el("pre", { tabindex: "0", "aria-label": "flow definition as JSON", text: JSON.stringify(def, null, 2) })));
  $("#main").focus();
  every(() => refreshFlow(name));
}

function maintenance(def) {
  const ws = (def.delivery && def.delivery.maintenanceWindows) || [];
  if (!ws.length) return el("p", { class: "muted", text: "No maintenance windows." });
  return el("table", {},
    el("thead", {}, el("tr", {}, ["Name", "Schedule (cron)", "Duration", "Time zone"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, ws.map((w) => el("tr", {}, el("td", { text: w.name || "" }), el("td", {}, el("code", { text: w.cron })), el("td", { text: w.duration }), el("td", { text: w.timeZone || "UTC" })))));
}

async function refreshFlow(name) {
  let st;
  try {
    st = await getJSON("/v1/flows/" + name + "/status");
  } catch (e) {
    if (e.status !== 401) $("#fp-reason").textContent = "refresh failed: " + e.message;
    return;
  }
  if (!state.route || state.route.name !== name) return;
  const fs = state.flowSeries;
  fs.points.push({ t: Date.now(), p50: num(st.latencyP50Ms), p99: num(st.latencyP99Ms), tlag: num(st.transformLag), dlag: num(st.deliveryLag) });
  if (fs.points.length > 1200) fs.points.shift();
  if (st.lastError && !fs.errors.some((e) => e.time === st.lastError.time && e.message === st.lastError.message)) {
    fs.errors.unshift(st.lastError);
    fs.errors.length = Math.min(fs.errors.length, 20);
  }
  $("#fp-state").replaceChildren(badge(st.state));
  $("#fp-state").dataset.state = st.state || "active";
  $("#fp-reason").textContent = st.reason || (st.state === "active" || !st.state ? "Delivering normally." : "");
  const paused = st.state === "paused";
  if ($("#btn-pause")) { $("#btn-pause").disabled = paused; $("#btn-resume").disabled = !paused; }

  const c = st.counts || {};
  const rcv = num(c.received), fo = num(c.filteredOut), tr = num(c.transformed), dl = num(c.delivered), dq = num(c.deadLettered), inf = num(c.inFlight);
  const rd = num(c.redriven);
  // Redriven dead letters go through delivery again and count again.
  const adds = rcv + rd === fo + dl + dq + inf;
  $("#fp-counts").replaceChildren(
    el("table", { class: "counts" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "Stage" }), el("th", { scope: "col", class: "num", text: "Events" }), el("th", { scope: "col", class: "num", text: "Per second" }))),
      el("tbody", {},
        [["Received", rcv, st.rates && st.rates.received, "received"], ["Filtered out", fo, st.rates && st.rates.filteredOut, "filtered"],
          ["Transformed", tr, st.rates && st.rates.transformed, "transformed"], ["Delivered", dl, st.rates && st.rates.delivered, "delivered"],
          ["Dead-lettered", dq, st.rates && st.rates.deadLettered, "dead-lettered"], ["Redriven from the DLQ", rd, null, "redriven"],
          ["In flight", inf, null, "in-flight"]]
          .map(([l, n, r, id]) => el("tr", { "data-stage": id }, el("th", { scope: "row", text: l }), el("td", { class: "num", text: String(n) }), el("td", { class: "num", text: r === null ? "" : fmtRate(r) }))))),
    el("p", { class: adds ? "ok" : "bad", id: "fp-adds" },
      `received ${rcv}` + (rd ? ` + redriven ${rd}` : "") + ` = filtered out ${fo} + delivered ${dl} + dead-lettered ${dq} + in flight ${inf}` +
      (adds ? " ✓" : " (reports still arriving)")));
  $("#fp-health").replaceChildren(el("dl", { class: "kv" },
    el("dt", { text: "Breaker" }), el("dd", {}, el("span", { class: "b-" + (st.breaker || "closed"), text: st.breaker || "closed" })),
    el("dt", { text: "Lag (transform / delivery)" }), el("dd", { text: `${fmtNum(st.transformLag)} / ${fmtNum(st.deliveryLag)} records` }),
    el("dt", { text: "Latency p50 / p95 / p99" }), el("dd", { text: `${fmtMs(st.latencyP50Ms)} / ${fmtMs(st.latencyP95Ms)} / ${fmtMs(st.latencyP99Ms)}` }),
    el("dt", { text: "DLQ depth" }), el("dd", { id: "fp-dlq", text: String(num(st.dlqDepth)) }),
    el("dt", { text: "Updated" }), el("dd", { text: fmtTime(st.updateTime) })));
  $("#fp-next").textContent = st.nextMaintenance ? "Next window starts " + fmtTime(st.nextMaintenance) : "";

  const h = st.history || [];
  const latency = fs.points.filter((p) => p.p99 > 0);
  $("#fp-charts").replaceChildren(
    chart("Events per second (last hour)", [
      { label: "in", points: rates(h, "received") },
      { label: "delivered", points: rates(h, "delivered") },
      { label: "dead-lettered", points: rates(h, "deadLettered") }], fmtRate),
    chart("Delivery latency (since this page opened)", [
      { label: "p50", points: latency.map((p) => ({ t: p.t, v: p.p50 })) },
      { label: "p99", points: latency.map((p) => ({ t: p.t, v: p.p99 })) }], fmtMs),
    chart("Lag in records (since this page opened)", [
      { label: "transform", points: fs.points.map((p) => ({ t: p.t, v: p.tlag })) },
      { label: "delivery", points: fs.points.map((p) => ({ t: p.t, v: p.dlag })) }], fmtNum, { integer: true }));
  $("#fp-errors").replaceChildren(fs.errors.length === 0 ? el("p", { class: "muted", text: "No errors." }) :
    el("ul", {}, fs.errors.map((e) => el("li", {},
      el("strong", { text: e.stage || "error" }), " ", el("span", { class: "muted", text: fmtTime(e.time) }), ": ", e.message,
      e.eventId ? el("div", { class: "muted" }, "event ", el("code", { text: e.eventId })) : null))));
}

function confirmDialog(msg, okLabel) {
  const d = $("#confirm");
  $("#confirm-msg").textContent = msg;
  $("#confirm-ok").textContent = okLabel;
  d.returnValue = "";
  d.showModal();
  return new Promise((resolve) => d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true }));
}

async function act(name, what) {
  const msgs = {
    pause: [`Pause delivery of ${name}? Events wait in Kafka until you resume.`, "Pause"],
    resume: [`Resume delivery of ${name}?`, "Resume"],
    redrive: [`Send every dead-lettered event of ${name} back through delivery?`, "Redrive"],
  };
  if (!(await confirmDialog(...msgs[what]))) return;
  try {
    if (what === "redrive") {
      const text = await api("POST", `/v1/flows/${name}/dlq:redrive`, {});
      let last = {};
      for (const line of text.split("\n")) if (line.trim()) { const j = JSON.parse(line); if (j.error) throw new Error(j.error.message); last = j.result || last; }
      toast(`Redrive done: ${num(last.redriven)} of ${num(last.scanned)} dead letters sent back.`);
    } else {
      await api("POST", `/v1/flows/${name}:${what}`, {});
      toast(what === "pause" ? `${name} paused.` : `${name} resumed.`);
    }
  } catch (e) {
    toast(`${what} failed: ${e.message}`);
  }
  refreshFlow(name);
}

// ---------- transform playground ----------

const SAMPLE_EVENTS = [{ type: "order.created", data: { id: "o-1", amount: 42 } }];

function playground(name, def) {
  const out = el("div", { id: "pg-out", "aria-live": "polite" });
  const filter = el("textarea", { id: "pg-filter", rows: 2, spellcheck: "false" });
  filter.value = def.filter || "";
  const transform = el("textarea", { id: "pg-transform", rows: 8, spellcheck: "false" });
  transform.value = def.transform || "";
  const events = el("textarea", { id: "pg-events", rows: 8, spellcheck: "false", "aria-describedby": "pg-events-help" });
  events.value = JSON.stringify(SAMPLE_EVENTS, null, 2);
  const run = async (ev) => {
    ev.preventDefault();
    let evs;
    try { evs = JSON.parse(events.value); if (!Array.isArray(evs)) evs = [evs]; } catch (e) {
      out.replaceChildren(el("p", { class: "error", role: "alert", text: "Sample events are not valid JSON: " + e.message }));
      return;
    }
    try {
      const res = JSON.parse(await api("POST", "/v1/transforms:test", { filter: filter.value, transform: transform.value, events: evs }));
      out.replaceChildren(el("ol", { class: "pg-results" }, (res.results || []).map((r) =>
        el("li", {}, r.error ? el("span", { class: "error", text: r.error }) :
          !r.kept ? el("span", { class: "muted", text: "dropped by the filter" }) :
            el("pre", { text: JSON.stringify((r.outputs || []).map((o) => o.data === undefined ? o : o.data), null, 2) })))));
    } catch (e) {
      out.replaceChildren(el("p", { class: "error", role: "alert", text: e.message }));
    }
  };
  return el("section", { class: "card spaced", "aria-labelledby": "h-pg" },
    el("h2", { id: "h-pg", text: "Transform playground" }),
    el("p", { class: "muted", text: "Runs the filter and transform below on the sample events without delivering anything. Changes here do not change the flow." }),
    el("form", { id: "pg-form", onsubmit: run },
      el("div", { class: "pg" },
        el("div", {},
          el("label", { for: "pg-filter", text: "Filter" }), filter,
          el("label", { for: "pg-transform", text: "Transform" }), transform),
        el("div", {},
          el("label", { for: "pg-events", text: "Sample events (JSON list)" }), events,
          el("p", { id: "pg-events-help", class: "muted", text: "Each event may set id, type, subject, key, attributes and data." }))),
      el("div", { class: "row" }, el("button", { type: "submit", class: "primary", id: "pg-run" }, "Run"))),
    el("h3", { text: "Results" }), out);
}

// ---------- sources ----------

function renderSources() {
  state.prevSources = null;
  $("#view").replaceChildren(
    el("h1", { text: "Sources" }),
    el("p", { class: "muted", id: "src-note" }),
    el("div", { class: "tablewrap" },
      el("table", { id: "sources" },
        el("thead", {}, el("tr", {}, ["Source", "Topic", "Flows", "Events", "Events /s", "Requests", "Rejections by reason", "Auth and signature failures"]
          .map((h, i) => el("th", { scope: "col", class: i >= 2 && i <= 5 ? "num" : "", text: h })))),
        el("tbody", { id: "sources-body" }))));
  every(refreshSources);
}

function reasons(m) {
  const e = Object.entries(m || {}).filter(([, n]) => num(n) > 0);
  if (!e.length) return "–";
  return e.map(([k, n]) => `${k}: ${num(n)}`).join(", ");
}

async function refreshSources() {
  let data;
  try { data = await getJSON("/v1/sourcestatuses"); } catch (e) { if (e.status !== 401) $("#src-note").textContent = "refresh failed: " + e.message; return; }
  if (!state.route || state.route.page !== "sources") return;
  const now = Date.now();
  const prev = state.prevSources;
  $("#src-note").textContent = data.ingestKnown ?
    "Ingest numbers since each source was created, summed over every receiver (published every few seconds); rates over the last refresh." :
    "No receiver has reported ingest numbers yet: receivers publish them to samsa.stats every few seconds once they serve requests.";
  $("#sources-body").replaceChildren(...(data.statuses || []).map((s) => {
    let rate = "–";
    if (data.ingestKnown && prev && prev.by[s.name] !== undefined) rate = fmtRate((num(s.events) - prev.by[s.name]) / ((now - prev.t) / 1000));
    return el("tr", { "data-source": s.name },
      el("th", { scope: "row", text: s.name }), el("td", {}, el("code", { text: s.topic })), el("td", { class: "num", text: String(num(s.flows)) }),
      el("td", { class: "num", text: data.ingestKnown ? fmtNum(s.events) : "–" }), el("td", { class: "num", text: rate }),
      el("td", { class: "num", text: data.ingestKnown ? fmtNum(s.requests) : "–" }),
      el("td", { text: reasons(s.rejections) }), el("td", { text: reasons(s.authFailures) }));
  }));
  state.prevSources = { t: now, by: Object.fromEntries((data.statuses || []).map((s) => [s.name, num(s.events)])) };
}

// ---------- start ----------

async function start() {
  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  window.addEventListener("hashchange", () => { if (state.role) route(); });
  if ((location.hash || "#/") === "#/") {
    // The overview's data, fetched while the role is asked: one round
    // trip less before the table shows.
    const headers = state.token ? { Authorization: "Bearer " + state.token } : {};
    state.prefetch = fetch(OVERVIEW_PATH, { headers, cache: "no-store" }).then((r) => (r.ok ? r.json() : null)).catch(() => null);
  }
  try {
    await whoami();
  } catch (e) {
    showLogin(e.status === 401 ? "" : "Cannot reach the control API: " + e.message);
    return;
  }
  route();
}

start();
