// End-to-end tests of the control dashboard (/ui/) in headless Chromium.
//
// Starts `samsa dev` (its own ports and embedded broker) and two
// `samsa sink` destinations, drives Debian's chromium with playwright-core
// (the browser is never downloaded) and checks the acceptance points of the
// dashboard. Screenshots go to artifacts/. Exits non-zero on the first
// failure, after stopping every process it started.
//
//   SAMSA_BIN   the samsa binary (default ../../bin/samsa)
//   CHROMIUM    the browser (default /usr/bin/chromium)
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const BIN = resolve(process.env.SAMSA_BIN || join(here, "../../bin/samsa"));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ARTIFACTS = join(here, "artifacts");
const ADMIN = "admin-" + randomHex(16);
const VIEWER = "viewer-" + randomHex(16);
const FLOWS_FOR_LOAD = 200;
const LOAD_BUDGET_MS = 1000;

function randomHex(n) {
  let s = "";
  for (let i = 0; i < n; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

const started = Date.now();
const log = (...a) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
const procs = new Set();
const tmp = mkdtempSync(join(tmpdir(), "samsa-ui-"));
let browser;
let failed = false;
let failure = "";
const pages = [];

function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.unref();
    s.on("error", rej);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
  });
}

function start(name, args) {
  const out = [];
  const p = spawn(BIN, args, { stdio: ["ignore", "pipe", "pipe"] });
  p.stdout.on("data", (d) => out.push(d));
  p.stderr.on("data", (d) => out.push(d));
  p.name = name;
  p.output = () => Buffer.concat(out).toString();
  p.exited = new Promise((r) => p.on("exit", r));
  procs.add(p);
  return p;
}

async function stop(p) {
  if (!procs.has(p)) return;
  procs.delete(p);
  if (p.exitCode === null && p.signalCode === null) {
    p.kill("SIGTERM");
    const t = setTimeout(() => p.kill("SIGKILL"), 10000);
    await p.exited;
    clearTimeout(t);
  }
}

async function poll(what, fn, timeoutMs = 30000, everyMs = 200) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (last ? `: ${last.message}` : ""));
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

function assert(cond, msg) { if (!cond) throw new Error("assertion failed: " + msg); }

let CONTROL, RECEIVER;

async function call(method, path, body, token = ADMIN) {
  const res = await fetch(CONTROL + path, {
    method, headers: { Authorization: "Bearer " + token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, text, json: () => JSON.parse(text) };
}

async function must(method, path, body) {
  const r = await call(method, path, body);
  if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text}`);
  return r;
}

async function startSink(port, status) {
  const p = start(`sink:${port}`, ["sink", "--addr", `127.0.0.1:${port}`, "--status", String(status)]);
  await poll(`sink on ${port}`, async () => (await fetch(`http://127.0.0.1:${port}/`, { method: "GET" }).catch(() => null)) !== null, 10000, 50);
  return p;
}

function flowDef(name, sinkPort, extra = {}) {
  return {
    name, source: "shop",
    transform: 'def transform(event):\n    return {"order": event.data["id"], "total": event.data["amount"] * 2}\n',
    destination: { http: { url: `http://127.0.0.1:${sinkPort}/hook`, allowPrivateNetwork: true } },
    delivery: {
      retry: { initialBackoff: "100ms", maxBackoff: "500ms" },
      circuitBreaker: { failureThreshold: -1 },
      maintenanceWindows: [{ name: "weekly", cron: "0 3 * * SUN", duration: "1h" }],
    },
    ...extra,
  };
}

async function send(n = 1) {
  const res = await fetch(`${RECEIVER}/v1/sources/shop/events`, {
    method: "POST", headers: { "Content-Type": "application/json", "ce-type": "order.created" },
    body: JSON.stringify({ id: "o-" + n, amount: n * 10 }),
  });
  assert(res.status === 202, `ingest answered ${res.status} ${await res.text()}`);
}

async function shot(page, name, fullPage = true) {
  await page.screenshot({ path: join(ARTIFACTS, name + ".png"), fullPage });
}

async function newPage(ctx) {
  const page = await ctx.newPage();
  const external = [];
  page.on("request", (r) => { if (!r.url().startsWith(CONTROL) && !r.url().startsWith("data:")) external.push(r.url()); });
  page.on("pageerror", (e) => { console.error("page error:", e.message); failed = true; });
  page.external = external;
  pages.push(page);
  return page;
}

async function login(page, token) {
  await page.goto(CONTROL + "/ui/");
  await page.getByLabel("Token").fill(token);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.locator("#who").filter({ hasText: "role:" }).waitFor();
}

// rowState reads a flow's state in the overview table.
const rowState = (page, flow) => page.locator(`tr[data-flow="${flow}"] td:nth-child(2) .badge`).textContent({ timeout: 1000 });

async function main() {
  mkdirSync(ARTIFACTS, { recursive: true });
  const [http, grpc, rhttp, rgrpc, kafka, sinkA, sinkB] = await Promise.all(Array.from({ length: 7 }, freePort));
  CONTROL = `http://127.0.0.1:${http}`;
  RECEIVER = `http://127.0.0.1:${rhttp}`;

  const dev = start("samsa dev", ["dev", "--kafka-port", String(kafka),
    "--control-http-addr", `127.0.0.1:${http}`, "--control-grpc-addr", `127.0.0.1:${grpc}`,
    "--receiver-http-addr", `127.0.0.1:${rhttp}`, "--receiver-grpc-addr", `127.0.0.1:${rgrpc}`,
    "--token", ADMIN, "--tokens", `viewer:${VIEWER}`]);
  await poll("samsa dev ready", async () => (await fetch(CONTROL + "/readyz")).ok, 30000, 100);
  let sinkAProc = await startSink(sinkA, 500); // the destination of "orders" is down
  let sinkBProc = await startSink(sinkB, 400); // "rejects" refuses events: they go to the DLQ
  log("samsa dev and sinks up");

  await must("PUT", "/v1/sources/shop", { description: "the shop" });
  await must("PUT", "/v1/flows/orders", flowDef("orders", sinkA));
  await must("PUT", "/v1/flows/rejects", flowDef("rejects", sinkB));
  await must("PUT", "/v1/sources/hooks", { auth: { signature: { preset: "github", secret: "s3cret-" + randomHex(16) } } });
  // Ingest trouble for the sources page: a malformed body, a bad signature.
  let r = await fetch(`${RECEIVER}/v1/sources/shop/events`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{not json" });
  assert(r.status === 400, `malformed body answered ${r.status}`);
  r = await fetch(`${RECEIVER}/v1/sources/hooks/events`, { method: "POST", headers: { "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=00" }, body: "{}" });
  assert(r.status === 401 || r.status === 403, `bad signature answered ${r.status}`);

  // A fresh profile (--user-data-dir) per run: playwright passes it.
  const ctx = await chromium.launchPersistentContext(join(tmp, "chromium"), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1366, height: 768 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  browser = ctx;
  const page = await newPage(ctx);

  // Log in.
  await page.goto(CONTROL + "/ui/");
  await page.getByLabel("Token").waitFor();
  await shot(page, "01-login");
  await page.getByLabel("Token").fill("not-a-token-at-all-xxxx");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByText("This token is not valid.").waitFor();
  await login(page, ADMIN);
  await page.locator('tr[data-flow="orders"]').waitFor();
  log("logged in as admin");

  // A failing destination makes the flow degraded.
  await send(1);
  await poll("orders degraded", async () => ["degraded", "failing"].includes(await rowState(page, "orders")), 30000);
  await poll("rejects dead-lettered", async () => (await page.locator('tr[data-flow="rejects"] td:nth-child(6)').textContent()) === "1", 30000);
  await shot(page, "02-overview-degraded");
  log("orders degraded, rejects has 1 dead letter");

  // The destinations come back.
  await stop(sinkAProc);
  sinkAProc = await startSink(sinkA, 200);
  await stop(sinkBProc);
  sinkBProc = await startSink(sinkB, 200);

  // Meanwhile: 200 flows for the load test, created through the API.
  const creating = (async () => {
    const names = Array.from({ length: FLOWS_FOR_LOAD - 2 }, (_, i) => `load-${String(i).padStart(3, "0")}`);
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(names.slice(i, i + 20).map((n) => must("PUT", `/v1/flows/${n}`, flowDef(n, sinkA))));
    }
  })();

  // Redrive the dead letter of "rejects" from its page.
  await page.getByRole("link", { name: "rejects" }).click();
  await page.locator("#fp-dlq").filter({ hasText: /^1$/ }).waitFor();
  await page.getByRole("button", { name: "Redrive DLQ" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await shot(page, "03-confirm-redrive");
  await dialog.getByRole("button", { name: "Redrive" }).click();
  await page.locator("#toast").filter({ hasText: "Redrive done: 1 of 1" }).waitFor({ timeout: 30000 });
  await page.locator("#fp-dlq").filter({ hasText: /^0$/ }).waitFor({ timeout: 30000 });
  await page.locator('tr[data-stage="delivered"] td').first().filter({ hasText: /^1$/ }).waitFor({ timeout: 30000 });
  await page.locator("#fp-adds.ok").filter({ hasText: "redriven 1" }).waitFor({ timeout: 30000 });
  log("dead letter redriven and delivered; the counts add up");

  // The transform playground.
  await page.getByLabel("Sample events (JSON list)").fill(JSON.stringify([{ type: "order.created", data: { id: "o-9", amount: 21 } }]));
  await page.getByRole("button", { name: "Run" }).click();
  await page.locator("#pg-out pre").filter({ hasText: '"total": 42' }).waitFor();
  await page.getByLabel("Transform", { exact: true }).fill("def transform(event):\n    return event.data[\"nope\"]\n");
  await page.getByRole("button", { name: "Run" }).click();
  await page.locator("#pg-out .error").first().waitFor();
  await shot(page, "04-flow-page-playground");
  log("playground ran");

  // "orders" delivers again: active once its last error is over a minute old.
  await page.getByRole("link", { name: "← all flows" }).click();
  await poll("orders active again", async () => (await rowState(page, "orders")) === "active", 120000, 500);
  await shot(page, "05-overview-active");
  log("orders active again");

  // Pause and resume from the flow page.
  await page.getByRole("link", { name: "orders", exact: true }).click();
  await page.locator('#fp-state[data-state="active"]').waitFor();
  // Escape cancels the confirmation: nothing happens.
  await page.getByRole("button", { name: "Pause" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  assert((await call("GET", "/v1/flows/orders")).json().paused !== true, "Escape paused the flow");
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Pause" }).click();
  await page.locator('#fp-state[data-state="paused"]').waitFor({ timeout: 15000 });
  await shot(page, "06-flow-paused");
  await page.getByRole("button", { name: "Resume" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Resume" }).click();
  await page.locator('#fp-state[data-state="active"]').waitFor({ timeout: 15000 });
  await page.locator('tr[data-stage="delivered"] td').first().filter({ hasText: /^1$/ }).waitFor({ timeout: 30000 });
  await page.locator("#fp-adds.ok").waitFor({ timeout: 15000 });
  await shot(page, "07-flow-active");
  log("paused and resumed");
  assert(page.external.length === 0, "external requests: " + page.external.join(", "));

  // A viewer sees no action buttons, and the API refuses the actions anyway.
  // A new tab has its own sessionStorage, so no token yet.
  const vpage = await newPage(ctx);
  await login(vpage, VIEWER);
  await vpage.goto(CONTROL + "/ui/#/flows/orders");
  await vpage.locator("#fp-state .badge").waitFor();
  await vpage.locator("#pg-run").waitFor();
  for (const b of ["Pause", "Resume", "Redrive DLQ"]) {
    assert(await vpage.getByRole("button", { name: b, exact: true }).count() === 0, `viewer sees the ${b} button`);
  }
  const refused = await vpage.evaluate(async (tok) => {
    const out = [];
    for (const p of ["/v1/flows/orders:pause", "/v1/flows/orders:resume", "/v1/flows/rejects/dlq:redrive"]) {
      const r = await fetch(p, { method: "POST", headers: { Authorization: "Bearer " + tok, "Content-Type": "application/json" }, body: "{}" });
      out.push(r.status);
    }
    return out;
  }, VIEWER);
  assert(refused.every((s) => s === 403), "viewer actions answered " + refused.join(","));
  await shot(vpage, "08-viewer-flow-page");
  await vpage.close();
  log("viewer: no buttons, actions refused with", refused.join(","));

  // The overview with 200 flows loads in under a second.
  await creating;
  const list = (await must("GET", "/v1/flows")).json();
  assert(list.flows.length === FLOWS_FOR_LOAD, `${list.flows.length} flows, want ${FLOWS_FOR_LOAD}`);
  const times = [];
  for (let i = 0; i < 3; i++) {
    await page.goto("about:blank");
    await page.goto(CONTROL + "/ui/");
    await page.waitForFunction(() => window.samsaRenderedAt !== undefined, null, { timeout: 10000 });
    const rows = await page.locator("#flows-body tr").count();
    assert(rows === FLOWS_FOR_LOAD, `${rows} rows rendered, want ${FLOWS_FOR_LOAD}`);
    const t = await page.evaluate(() => {
      const nav = performance.getEntriesByType("navigation")[0];
      const res = performance.getEntriesByType("resource").filter((r) => r.name.includes("/v1/"));
      return { rendered: window.samsaRenderedAt, data: window.samsaDataAt, domContentLoaded: nav.domContentLoadedEventEnd,
        api: res.map((r) => `${r.name.replace(/^.*\/v1\//, "")} ${r.startTime.toFixed(0)}+${r.duration.toFixed(0)}`) };
    });
    log("load:", JSON.stringify(t));
    times.push(t.rendered);
  }
  // The sparkline of the last hour shows once the server sampled twice.
  await poll("sparkline of orders", async () => (await page.locator('tr[data-flow="orders"] svg.spark path').count()) > 0, 30000, 500);
  await shot(page, "09-overview-200-flows", false);
  const best = Math.min(...times), worst = Math.max(...times);
  log(`overview with ${FLOWS_FOR_LOAD} flows: navigation start to table rendered ${times.map((t) => t.toFixed(0)).join(", ")} ms`);
  writeFileSync(join(ARTIFACTS, "load-times.json"), JSON.stringify({ flows: FLOWS_FOR_LOAD, ms: times }, null, 2));
  assert(worst < LOAD_BUDGET_MS, `overview took ${worst.toFixed(0)} ms (best ${best.toFixed(0)}), budget ${LOAD_BUDGET_MS} ms`);

  // Keyboard: the filter narrows the table; sorting by a column works.
  await page.getByLabel("Filter", { exact: true }).fill("orders");
  await poll("filtered", async () => (await page.locator("#flows-body tr:not([hidden])").count()) === 1, 5000);
  await page.getByLabel("Filter", { exact: true }).fill("");
  await page.getByRole("button", { name: "Flow", exact: true }).focus();
  await page.keyboard.press("Enter");
  assert(await page.locator("#flows-body tr").first().getAttribute("data-flow") === "load-000", "sort by name");
  await page.keyboard.press("Enter");
  assert(await page.locator("#flows-body tr").first().getAttribute("data-flow") === "rejects", "sort by name, descending");

  // Focus is visible.
  await page.getByLabel("Filter", { exact: true }).focus();
  await page.keyboard.press("Tab");
  await page.keyboard.press("Tab");
  const focused = await page.evaluate(() => {
    const e = document.activeElement;
    return { text: e.textContent, outline: getComputedStyle(e).outlineStyle };
  });
  assert(focused.outline !== "none", `no visible focus on ${focused.text}`);
  await shot(page, "11-keyboard-focus", false);

  // Sources page.
  await page.getByRole("link", { name: "Sources" }).click();
  await page.locator('tr[data-source="shop"]').waitFor();
  const events = await page.locator('tr[data-source="shop"] td:nth-child(4)').textContent();
  assert(events === "1", `sources page shows ${events} events for shop, want 1`);
  const rejections = await page.locator('tr[data-source="shop"] td:nth-child(7)').textContent();
  assert(rejections !== "–", "no rejections shown for shop");
  const sigFailures = await page.locator('tr[data-source="hooks"] td:nth-child(8)').textContent();
  assert(sigFailures !== "–", "no signature failures shown for hooks");
  log("sources: shop rejections", rejections, "; hooks auth failures", sigFailures);
  await shot(page, "10-sources");
  assert(page.external.length === 0, "external requests: " + page.external.join(", "));
  log("all checks passed");
  void dev;
}

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  for (const p of [...procs].reverse()) await stop(p);
  rmSync(tmp, { recursive: true, force: true });
}

try {
  await main();
} catch (e) {
  failed = true;
  failure = e.message;
  console.error("FAIL:", e.stack || e.message);
  for (const [i, p] of pages.entries()) await p.screenshot({ path: join(ARTIFACTS, `failure-${i}.png`), fullPage: true }).catch(() => {});
  for (const p of procs) {
    const out = p.output();
    if (out) console.error(`--- ${p.name} (last output) ---\n` + out.slice(-3000));
  }
} finally {
  await cleanup();
}
log(failed ? "FAILED: " + failure : "ok");
process.exit(failed ? 1 : 0);
