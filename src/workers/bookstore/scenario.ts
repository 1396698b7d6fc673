import type { Cluster } from "../../driver/cluster.ts";
import type { Check, Scenario } from "../../driver/scenario.ts";
import { percentile } from "../../driver/stats.ts";
import type { NodeSpec } from "../runtime/types.ts";
import type { ClientState, HistoryOp } from "./client.ts";
import { BOOKS, type Book, type CatalogConfig, type ClientConfig, type FrontendConfig, type LogEntry, type Order, type OrderConfig, type View } from "./messages.ts";

export interface BookstoreOptions extends Record<string, unknown> {
  catalogs: number;
  orders: number;
  clients: number;
  port: number;
  heartbeatMs: number;
  cacheSize: number;
  cache: boolean;
  intervalMs: number;
  writeP: number;
  /** Test hooks (not CLI options): plant a bug in the catalogs; shorten their logs. */
  bug?: CatalogConfig["bug"];
  logKeep?: number;
}

export const DEFAULTS: BookstoreOptions = { catalogs: 2, orders: 2, clients: 4, port: 8081, heartbeatMs: 100, cacheSize: 100, cache: true, intervalMs: 10, writeP: 0.3 };

export const catalogIds = (n: number) => Array.from({ length: n }, (_, i) => `catalog-${i + 1}`);
export const orderIds = (n: number) => Array.from({ length: n }, (_, i) => `order-${i + 1}`);
export const clientIds = (n: number) => Array.from({ length: n }, (_, i) => `client-${i + 1}`);

/** One front end, `catalogs` catalog replicas, `orders` order servers and `clients` shoppers. */
export function bookstoreTopology(o: Partial<BookstoreOptions> = {}): NodeSpec[] {
  const opt = normalize(o);
  const catalogs = catalogIds(opt.catalogs);
  const orders = orderIds(opt.orders);
  return [
    { id: "frontend", role: "frontend", config: { port: opt.port, catalogs, orders, heartbeatMs: opt.heartbeatMs, cache: opt.cache, cacheSize: opt.cacheSize } satisfies FrontendConfig },
    ...catalogs.map((id) => ({ id, role: "catalog", config: { catalogs, frontend: "frontend", bug: opt.bug, logKeep: opt.logKeep } satisfies CatalogConfig })),
    ...orders.map((id) => ({ id, role: "order", config: { orders, frontend: "frontend" } satisfies OrderConfig })),
    ...clientIds(opt.clients).map((id) => ({ id, role: "client", config: { frontend: "frontend", intervalMs: opt.intervalMs, writeP: opt.writeP } satisfies ClientConfig })),
  ];
}

// ---- what the checks read, shared with the tests ----

export interface CatalogView {
  mode: string;
  epoch: number;
  view: View | null;
  last: number;
  digest: string;
  books: Book[];
  served: { reads: number; writes: number; pulls: number };
}

/** A catalog's whole recovery log, read through its own `pull` handler. */
export async function readCatalogLog(cluster: Cluster, id: string): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  for (;;) {
    const r = await cluster.request<{ entries: LogEntry[]; last: number }>(id, { type: "pull", after: out.length === 0 ? 0 : out[out.length - 1]!.seq }, 5000);
    out.push(...r.entries);
    if (r.entries.length === 0 || out[out.length - 1]!.seq >= r.last) return out;
  }
}

export async function readOrders(cluster: Cluster, id: string): Promise<Order[]> {
  const out: Order[] = [];
  for (;;) {
    const r = await cluster.request<{ orders: Order[] }>(id, { type: "order_log", after: out.length === 0 ? 0 : out[out.length - 1]!.number }, 5000);
    if (r.orders.length === 0) return out;
    out.push(...r.orders);
  }
}

/** Waits (bounded) until every catalog is up, in the view and identical, and no buy is pending. */
export async function awaitQuiet(cluster: Cluster, catalogs: string[], orders: string[], maxMs = 20_000): Promise<{ quiet: boolean; views: Array<{ id: string; view: CatalogView | null }> }> {
  const deadline = cluster.now() + maxMs;
  for (;;) {
    const views = await Promise.all(catalogs.map(async (id) => ({ id, view: cluster.status(id) === "running" ? await cluster.inspect<CatalogView>(id) : null })));
    const pending = await Promise.all(orders.map(async (id) => (cluster.status(id) === "running" ? ((await cluster.inspect<{ pending: number }>(id))?.pending ?? 1) : 1)));
    const quiet =
      views.every((v) => v.view && (v.view.mode === "primary" || v.view.mode === "member") && v.view.digest === views[0]!.view?.digest && v.view.view?.members.length === catalogs.length) &&
      pending.every((p) => p === 0);
    if (quiet || cluster.now() >= deadline) return { quiet, views };
    await cluster.sleep(200);
  }
}

export interface CheckInput {
  history: HistoryOp[];
  /** Final state of each catalog (null: not running). */
  catalogs: Array<{ id: string; view: CatalogView | null }>;
  /** The primary's recovery log. */
  log: LogEntry[];
  orders: Order[];
  pendingBuys: number;
}

const isWrite = (op: HistoryOp) => op.f === "buy" || op.f === "update_cost" || op.f === "update_quantity";

/** Every check of the run, as pure functions of what was observed. */
export function checkRun(x: CheckInput): Record<string, Check> {
  const checks: Record<string, Check> = {};
  const initial = new Map(BOOKS.map((b) => [b.item, b.quantity]));

  // 1. No quantity ever below 0: in any answer a client got, and in any catalog at the end.
  const negatives: string[] = [];
  for (const op of x.history) {
    if (op.type !== "ok") continue;
    const qs: Array<[unknown, unknown]> = [];
    if (typeof op.value.quantity === "number") qs.push([op.value.item, op.value.quantity]);
    if (Array.isArray(op.value.books)) for (const b of op.value.books as Array<Record<string, unknown>>) if (typeof b.quantity === "number") qs.push([b.item, b.quantity]);
    for (const [item, q] of qs) if ((q as number) < 0) negatives.push(`${op.process} ${op.f} saw item ${item} at ${q}`);
  }
  for (const c of x.catalogs) for (const b of c.view?.books ?? []) if (b.quantity < 0) negatives.push(`${c.id} holds item ${b.item} at ${b.quantity}`);
  checks["no quantity ever below 0"] = { ok: negatives.length === 0, detail: negatives.length ? negatives.slice(0, 3).join("; ") : `${x.history.filter((o) => o.type === "ok" && !isWrite(o)).length} reads` };

  // 2. Every acknowledged buy: exactly one order and one decrement; every decrement has its order (all-or-nothing).
  const ordersByNumber = new Map<number, Order[]>();
  for (const o of x.orders) ordersByNumber.set(o.number, [...(ordersByNumber.get(o.number) ?? []), o]);
  const buyEntries = new Map<string, number>();
  for (const e of x.log) if (e.op.k === "buy") buyEntries.set(e.rid, (buyEntries.get(e.rid) ?? 0) + 1);
  const problems: string[] = [];
  const okBuys = x.history.filter((o) => o.f === "buy" && o.type === "ok");
  for (const b of okBuys) {
    const found = ordersByNumber.get(b.value.order as number) ?? [];
    if (found.length !== 1 || found[0]!.item !== b.value.item) problems.push(`order ${b.value.order} (item ${b.value.item}) found ${found.length} times`);
    else if (buyEntries.get(found[0]!.requestId) !== 1) problems.push(`order ${b.value.order} has ${buyEntries.get(found[0]!.requestId) ?? 0} decrements`);
  }
  const orderRids = new Set(x.orders.map((o) => o.requestId));
  if (orderRids.size !== x.orders.length) problems.push(`${x.orders.length - orderRids.size} request ids with two orders`);
  for (const [rid, n] of buyEntries) if (n !== 1 || !orderRids.has(rid)) problems.push(`decrement ${rid} applied ${n} times, ${orderRids.has(rid) ? "with" : "without"} an order`);
  for (const o of x.orders) if (!buyEntries.has(o.requestId)) problems.push(`order ${o.number} has no decrement`);
  if (x.pendingBuys > 0) problems.push(`${x.pendingBuys} buys still pending`);
  checks["every acknowledged buy has exactly one order and one decrement"] = {
    ok: problems.length === 0,
    detail: problems.length ? problems.slice(0, 3).join("; ") : `${okBuys.length} acknowledged, ${x.orders.length} orders, ${buyEntries.size} decrements`,
  };

  // 3. The catalog replicas are identical at the end.
  const digests = x.catalogs.map((c) => `${c.id}:${c.view ? `${c.view.mode}:${c.view.digest}` : "down"}`);
  checks["the catalog replicas are identical at the end"] = {
    ok: x.catalogs.every((c) => c.view && (c.view.mode === "primary" || c.view.mode === "member") && c.view.digest === x.catalogs[0]!.view?.digest),
    detail: digests.join(" "),
  };

  // 4. No read older than an acknowledged write that finished before the read began (per book version).
  const acked = new Map<number, Array<{ completeMs: number; version: number }>>();
  for (const op of x.history) {
    if (op.type === "ok" && isWrite(op) && typeof op.value.version === "number") acked.set(op.value.item as number, [...(acked.get(op.value.item as number) ?? []), { completeMs: op.completeMs, version: op.value.version }]);
  }
  const stale: string[] = [];
  let readsChecked = 0;
  for (const op of x.history) {
    if (op.type !== "ok" || (op.f !== "lookup" && op.f !== "quantity" && op.f !== "list")) continue;
    const seen: Array<[number, number]> = op.f === "list" ? (op.value.books as Book[]).map((b) => [b.item, b.version]) : [[op.value.item as number, op.value.version as number]];
    for (const [item, version] of seen) {
      readsChecked++;
      const floor = Math.max(0, ...(acked.get(item) ?? []).filter((w) => w.completeMs < op.invokeMs).map((w) => w.version));
      if (version < floor) stale.push(`${op.process} ${op.f} item ${item} at ${op.invokeMs}: version ${version} < ${floor}`);
    }
  }
  checks["no read older than an acknowledged write that finished before it began"] = { ok: stale.length === 0, detail: stale.length ? `${stale.length} stale: ${stale.slice(0, 2).join("; ")}` : `${readsChecked} book reads checked` };

  // 4b. Reads never go back in time: none older than a read that finished before it began (a read
  // may see a write still in flight; every later read must then see it too).
  const reads: Array<{ item: number; version: number; invokeMs: number; completeMs: number; who: string }> = [];
  for (const op of x.history) {
    if (op.type !== "ok" || (op.f !== "lookup" && op.f !== "quantity" && op.f !== "list")) continue;
    const seen: Array<[number, number]> = op.f === "list" ? (op.value.books as Book[]).map((b) => [b.item, b.version]) : [[op.value.item as number, op.value.version as number]];
    for (const [item, version] of seen) reads.push({ item, version, invokeMs: op.invokeMs, completeMs: op.completeMs, who: `${op.process} ${op.f}` });
  }
  const backwards: string[] = [];
  const byItem = new Map<number, typeof reads>();
  for (const r of reads) byItem.set(r.item, [...(byItem.get(r.item) ?? []), r]);
  for (const [item, rs] of byItem) {
    const done = [...rs].sort((a, b) => a.completeMs - b.completeMs);
    const starts = [...rs].sort((a, b) => a.invokeMs - b.invokeMs);
    let j = 0;
    let max = -1;
    let maxWho = "";
    for (const r of starts) {
      while (j < done.length && done[j]!.completeMs < r.invokeMs) {
        if (done[j]!.version > max) (max = done[j]!.version), (maxWho = done[j]!.who);
        j++;
      }
      if (r.version < max) backwards.push(`item ${item}: ${r.who} at ${r.invokeMs} saw version ${r.version} after ${maxWho} saw ${max}`);
    }
  }
  checks["reads never go back in time"] = { ok: backwards.length === 0, detail: backwards.length ? `${backwards.length}: ${backwards.slice(0, 2).join("; ")}` : `${reads.length} book reads checked` };

  // 5. Final quantities account for every acknowledged write (and only for writes that may have happened).
  const final = x.catalogs.find((c) => c.view)?.view?.books ?? [];
  const off: string[] = [];
  for (const b of final) {
    let lo = initial.get(b.item) ?? 0;
    let hi = lo;
    for (const op of x.history) {
      if (op.value.item !== b.item || op.type === "fail") continue;
      const d = op.f === "buy" ? -1 : op.f === "update_quantity" ? (op.value.delta as number) : 0;
      if (op.type === "ok") (lo += d), (hi += d);
      else if (d < 0) lo += d;
      else hi += d;
    }
    if (b.quantity < lo || b.quantity > hi) off.push(`item ${b.item}: ${b.quantity} not in [${lo}, ${hi}]`);
  }
  checks["final quantities account for every acknowledged write"] = { ok: final.length > 0 && off.length === 0, detail: off.length ? off.slice(0, 3).join("; ") : `${final.length} books` };
  return checks;
}

/** With both replicas of a kind up, each served at least a third of its kind's requests (of `total` in this phase). */
export function balanceCheck(kind: string, counts: Record<string, number>): Check {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const low = Object.entries(counts).filter(([, n]) => n * 3 < total);
  return { ok: total > 0 && low.length === 0, detail: `${kind}: ${Object.entries(counts).map(([id, n]) => `${id} ${n}`).join(", ")} of ${total}` };
}

async function driverOp(cluster: Cluster, f: HistoryOp["f"], method: string, path: string, value: Record<string, unknown>): Promise<HistoryOp> {
  const invokeMs = cluster.now();
  try {
    const r = await cluster.request<{ status: number; body: { data?: any } }>("frontend", { type: "http", method, path }, 10_000);
    const data = r.body.data;
    return { process: "driver", type: r.status === 200 ? "ok" : r.status === 503 && f === "buy" ? "info" : "fail", f, value: { ...value, ...(Array.isArray(data) ? { books: data } : data) }, invokeMs, completeMs: cluster.now() };
  } catch {
    return { process: "driver", type: "info", f, value, invokeMs, completeMs: cluster.now() };
  }
}

export const scenario: Scenario<BookstoreOptions> = {
  name: "bookstore",
  description: "Pygmy bookstore: front end with a cache, replicated catalog, order servers; clients list, search, look up, buy and restock",
  options: [
    { flags: "--catalogs <n>", description: "Catalog replicas (1 or 2)", default: DEFAULTS.catalogs },
    { flags: "--orders <n>", description: "Order servers", default: DEFAULTS.orders },
    { flags: "--clients <n>", description: "Client nodes", default: DEFAULTS.clients },
    { flags: "--port <port>", description: "Front end HTTP port (0: a free port)", default: DEFAULTS.port },
    { flags: "--heartbeat-ms <ms>", description: "Front end heartbeat period", default: DEFAULTS.heartbeatMs },
    { flags: "--cache-size <n>", description: "Front end cache entries (LRU)", default: DEFAULTS.cacheSize },
    { flags: "--no-cache", description: "Disable the front end cache" },
    { flags: "--interval-ms <ms>", description: "A client's pause between operations", default: DEFAULTS.intervalMs },
    { flags: "--write-p <p>", description: "Probability a client operation is a write", default: DEFAULTS.writeP },
  ],
  topology: (o) => bookstoreTopology(o),
  async run(cluster, o, control) {
    const opt = normalize(o);
    const catalogs = catalogIds(opt.catalogs);
    const orders = orderIds(opt.orders);
    const clients = clientIds(opt.clients);
    await control.untilStopped();
    await Promise.all(clients.map((c) => cluster.request(c, { type: "finish" }, 60_000).catch(() => null)));
    await awaitQuiet(cluster, catalogs, orders);

    // Load balancing, measured now that every replica is back: uncached reads and buys through the front end.
    const driverOps: HistoryOp[] = [];
    const servedBefore = (await cluster.inspect<{ served: Record<string, number> }>("frontend"))?.served ?? {};
    for (let i = 0; i < 30; i++) driverOps.push(await driverOp(cluster, "list", "GET", "/list", {}));
    for (let i = 0; i < 12; i++) driverOps.push(await driverOp(cluster, "buy", "POST", `/buy/${1 + (i % 3)}`, { item: 1 + (i % 3) }));
    const servedAfter = (await cluster.inspect<{ served: Record<string, number> }>("frontend"))?.served ?? {};
    const delta = (ids: string[], prefix: string) => Object.fromEntries(ids.map((id) => [id, (servedAfter[`${prefix}:${id}`] ?? 0) - (servedBefore[`${prefix}:${id}`] ?? 0)]));

    const { views } = await awaitQuiet(cluster, catalogs, orders);
    const states = (await Promise.all(clients.map((c) => cluster.inspect<ClientState>(c)))).filter((s): s is ClientState => s !== null);
    const history = [...states.flatMap((s) => s.history), ...driverOps];
    const primary = views.find((v) => v.view?.mode === "primary")?.id ?? catalogs[0]!;
    const log = await readCatalogLog(cluster, primary).catch(() => [] as LogEntry[]);
    const allOrders = (await Promise.all(orders.map((id) => readOrders(cluster, id).catch(() => [] as Order[])))).flat();
    const pendingBuys = (await Promise.all(orders.map(async (id) => (await cluster.inspect<{ pending: number }>(id))?.pending ?? 0))).reduce((a, b) => a + b, 0);

    const checks = checkRun({ history, catalogs: views, log, orders: allOrders, pendingBuys });
    if (catalogs.length > 1) checks["with both catalogs up, each served at least a third of the reads"] = balanceCheck("reads", delta(catalogs, "read"));
    if (orders.length > 1) checks["with both order servers up, each served at least a third of the buys"] = balanceCheck("buys", delta(orders, "buy"));
    checks["clients recorded complete histories"] = { ok: states.length === clients.length && states.every((s) => !s.truncated), detail: `${history.length} operations from ${states.length}/${clients.length} clients` };

    const metrics: Record<string, unknown> = {};
    const byF: Record<string, Record<string, number>> = {};
    for (const op of history) (byF[op.f] ??= { ok: 0, fail: 0, info: 0 })[op.type]!++;
    metrics.operations = byF;
    for (const f of ["lookup", "quantity", "search", "buy", "update_quantity"]) {
      const lat = history.filter((op) => op.f === f && op.type === "ok").map((op) => op.completeMs - op.invokeMs);
      metrics[`${f}P50Ms`] = percentile(lat, 50);
      metrics[`${f}P99Ms`] = percentile(lat, 99);
    }
    const fe = await cluster.inspect<{ cache: unknown; view: View }>("frontend");
    if (fe) (metrics.cache = fe.cache), (metrics.view = fe.view);
    metrics.catalogLog = log.length;
    return { checks, metrics };
  },
};

/** CLI values may arrive as strings; defaults fill what is missing. */
export function normalize(o: Partial<BookstoreOptions>): BookstoreOptions {
  const num = (v: unknown, d: number) => (v === undefined || v === null || v === "" || !Number.isFinite(Number(v)) ? d : Number(v));
  const out: BookstoreOptions = {
    catalogs: num(o.catalogs, DEFAULTS.catalogs),
    orders: num(o.orders, DEFAULTS.orders),
    clients: num(o.clients, DEFAULTS.clients),
    port: num(o.port, DEFAULTS.port),
    heartbeatMs: num(o.heartbeatMs, DEFAULTS.heartbeatMs),
    cacheSize: num(o.cacheSize, DEFAULTS.cacheSize),
    cache: o.cache !== false,
    intervalMs: num(o.intervalMs, DEFAULTS.intervalMs),
    writeP: num(o.writeP, DEFAULTS.writeP),
    bug: o.bug,
    logKeep: o.logKeep,
  };
  if (!Number.isInteger(out.catalogs) || out.catalogs < 1 || out.catalogs > 2) throw new Error(`--catalogs must be 1 or 2, got ${o.catalogs}`);
  if (!Number.isInteger(out.orders) || out.orders < 1 || out.orders > 16) throw new Error(`--orders must be an integer in 1..16, got ${o.orders}`);
  if (!Number.isInteger(out.clients) || out.clients < 0 || out.clients > 1000) throw new Error(`--clients must be an integer in 0..1000, got ${o.clients}`);
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error(`--port must be in 0..65535, got ${o.port}`);
  if (!Number.isInteger(out.heartbeatMs) || out.heartbeatMs < 10 || out.heartbeatMs > 10_000) throw new Error(`--heartbeat-ms must be an integer in 10..10000, got ${o.heartbeatMs}`);
  if (!Number.isInteger(out.cacheSize) || out.cacheSize < 0 || out.cacheSize > 1e6) throw new Error(`--cache-size must be an integer in 0..1000000, got ${o.cacheSize}`);
  if (!(out.intervalMs >= 0 && out.intervalMs <= 60_000)) throw new Error(`--interval-ms must be in 0..60000, got ${o.intervalMs}`);
  if (!(out.writeP >= 0 && out.writeP <= 1)) throw new Error(`--write-p must be in [0, 1], got ${o.writeP}`);
  return out;
}
