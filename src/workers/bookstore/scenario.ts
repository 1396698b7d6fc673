import type { Cluster } from "../../driver/cluster.ts";
import type { Check, Scenario } from "../../driver/scenario.ts";
import { percentile } from "../../driver/stats.ts";
import { bookstoreModel } from "../../history/models.ts";
import type { NodeSpec } from "../runtime/types.ts";
import { CRASHED_BEFORE_ANSWER, MAX_OP_MS, OP_FS, isWriteF, type HistoryOp } from "./client.ts";
import { BOOKS, isEntry, type Book, type CatalogConfig, type ClientConfig, type FrontendConfig, type LogEntry, type Order, type OrderConfig, type View } from "./messages.ts";

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
  /** The books' quantities when this run began (the catalog outlives runs), and its log position then. */
  runStart?: { last: number; quantities: Array<[number, number]> } | null;
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

/** Pages of a client's history a reader asks for before it gives up (MAX_HISTORY / HISTORY_PAGE, and some). */
const MAX_HISTORY_PAGES = 1000;

/** A client's whole history (every boot of this run), read from its storage through its `history` handler. */
export async function readHistory(cluster: Cluster, id: string): Promise<{ ops: unknown[]; truncated: boolean }> {
  const ops: unknown[] = [];
  let from: number | null = 0;
  let truncated = false;
  for (let pages = 0; from !== null; pages++) {
    if (pages >= MAX_HISTORY_PAGES) throw new Error(`${id}: history longer than ${MAX_HISTORY_PAGES} pages`);
    const r: { ops?: unknown; next?: unknown; truncated?: unknown } = await cluster.request(id, { type: "history", from }, 10_000);
    if (!Array.isArray(r.ops) || (r.next !== null && !(Number.isSafeInteger(r.next) && (r.next as number) > from))) throw new Error(`${id}: malformed history page`);
    ops.push(...r.ops);
    truncated ||= r.truncated === true;
    from = r.next as number | null;
  }
  return { ops, truncated };
}

/** Waits (bounded) until every catalog is up, in the view and identical, and no buy is pending. */
export async function awaitQuiet(cluster: Cluster, catalogs: string[], orders: string[], maxMs = 20_000): Promise<{ quiet: boolean; views: Array<{ id: string; view: CatalogView | null }> }> {
  const deadline = cluster.now() + maxMs;
  for (;;) {
    // A node that does not answer counts as down: the checks then say which, instead of throwing.
    const views = await Promise.all(catalogs.map(async (id) => ({ id, view: cluster.status(id) === "running" ? await cluster.inspect<CatalogView>(id).catch(() => null) : null })));
    const pending = await Promise.all(orders.map(async (id) => (cluster.status(id) === "running" ? ((await cluster.inspect<{ pending: number }>(id).catch(() => null))?.pending ?? 1) : 1)));
    const quiet =
      views.every((v) => v.view && (v.view.mode === "primary" || v.view.mode === "member") && v.view.digest === views[0]!.view?.digest && v.view.view?.members.length === catalogs.length) &&
      pending.every((p) => p === 0);
    if (quiet || cluster.now() >= deadline) return { quiet, views };
    await cluster.sleep(200);
  }
}

export interface CheckInput {
  /** Every record the clients (and the driver) kept. Untrusted: a record of the wrong shape is reported, never thrown on. */
  history: readonly unknown[];
  /** Final state of each catalog (null: not running). */
  catalogs: Array<{ id: string; view: CatalogView | null }>;
  /** The primary's recovery log. */
  log: readonly unknown[];
  orders: readonly unknown[];
  pendingBuys: number;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Why a history record cannot be judged (null: it can): the fields every check reads, per operation and outcome. */
export function historyProblem(v: unknown): string | null {
  if (!isObj(v)) return "not an object";
  if (typeof v.process !== "string" || v.process === "") return "no process";
  if (v.type !== "ok" && v.type !== "fail" && v.type !== "info") return `type ${JSON.stringify(v.type)}`;
  if (!(OP_FS as readonly unknown[]).includes(v.f)) return `operation ${JSON.stringify(v.f)}`;
  if (!isObj(v.value)) return `${v.f} without a value`;
  if (!isNum(v.invokeMs) || !isNum(v.completeMs) || v.completeMs < v.invokeMs) return `${v.f} with invoke/complete times ${v.invokeMs}/${v.completeMs}`;
  const f = v.f as HistoryOp["f"];
  const val = v.value;
  if (f !== "list" && f !== "search" && !isInt(val.item)) return `${f} without an item`;
  if (f === "update_quantity" && !isInt(val.delta)) return "update_quantity without a delta";
  if (v.type !== "ok") return null;
  const versioned = isInt(val.version) && (val.version as number) >= 0;
  switch (f) {
    case "lookup":
    case "quantity":
      return isNum(val.quantity) && versioned ? null : `ok ${f} without a quantity and a version`;
    case "list":
      return Array.isArray(val.books) && val.books.every((b) => isObj(b) && isInt(b.item) && isInt(b.version) && isNum(b.quantity)) ? null : "ok list without its books";
    case "search":
      return Array.isArray(val.books) ? null : "ok search without its books";
    case "buy":
      return isInt(val.order) && versioned ? null : "ok buy without an order number and a version";
    case "update_cost":
      return versioned ? null : "ok update_cost without a version";
    case "update_quantity":
      return versioned && isNum(val.quantity) ? null : "ok update_quantity without a quantity and a version";
  }
}

/** Appends in place: long histories group hundreds of thousands of records by book. */
function pushTo<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

const isOrder = (v: unknown): v is Order => isObj(v) && isInt(v.number) && isInt(v.item) && typeof v.requestId === "string";

/** Every check of the run, as pure functions of what was observed. None throws, whatever it is given. */
export function checkRun(x: CheckInput): Record<string, Check> {
  const checks: Record<string, Check> = {};
  // Where this run started: the most advanced catalog's first-boot books (an earlier run's writes
  // stay in a durable catalog), else the write-up's seven books.
  const starts = x.catalogs.map((c) => c.view?.runStart).filter((r): r is NonNullable<typeof r> => !!r && Array.isArray(r.quantities));
  const from = starts.reduce<(typeof starts)[number] | null>((a, r) => (!a || r.last > a.last ? r : a), null);
  const initial = new Map<number, number>(from ? from.quantities : BOOKS.map((b) => [b.item, b.quantity]));

  // 0. Every record can be judged; one that cannot is reported and left out of the other checks.
  const history: HistoryOp[] = [];
  const malformed: string[] = [];
  for (const v of x.history) {
    const why = historyProblem(v);
    if (why === null) history.push(v as HistoryOp);
    else malformed.push(`${isObj(v) && typeof v.process === "string" ? v.process : "?"}: ${why}`);
  }
  checks["every history record is well-formed"] = { ok: malformed.length === 0, detail: malformed.length ? `${malformed.length} malformed: ${malformed.slice(0, 3).join("; ")}` : `${history.length} records` };
  const catalogBooks = (c: { view: CatalogView | null }): Book[] => (Array.isArray(c.view?.books) ? c.view.books.filter((b) => isObj(b) && isInt(b.item) && isNum(b.quantity)) : []);
  const bookReads = (op: HistoryOp): Array<[number, number]> =>
    op.f === "list" ? (op.value.books as Book[]).map((b) => [b.item, b.version]) : [[op.value.item as number, op.value.version as number]];

  // 1. No quantity ever below 0: in any answer a client got, and in any catalog at the end.
  const negatives: string[] = [];
  for (const op of history) {
    if (op.type !== "ok") continue;
    const qs: Array<[unknown, unknown]> = [];
    if (typeof op.value.quantity === "number") qs.push([op.value.item, op.value.quantity]);
    if (Array.isArray(op.value.books)) for (const b of op.value.books as unknown[]) if (isObj(b) && typeof b.quantity === "number") qs.push([b.item, b.quantity]);
    for (const [item, q] of qs) if ((q as number) < 0) negatives.push(`${op.process} ${op.f} saw item ${item} at ${q}`);
  }
  for (const c of x.catalogs) for (const b of catalogBooks(c)) if (b.quantity < 0) negatives.push(`${c.id} holds item ${b.item} at ${b.quantity}`);
  checks["no quantity ever below 0"] = { ok: negatives.length === 0, detail: negatives.length ? negatives.slice(0, 3).join("; ") : `${history.filter((o) => o.type === "ok" && !isWriteF(o.f)).length} reads` };

  // 2. Every acknowledged buy: exactly one order and one decrement; every decrement has its order (all-or-nothing).
  const problems: string[] = [];
  const orders = x.orders.filter(isOrder);
  if (orders.length !== x.orders.length) problems.push(`${x.orders.length - orders.length} malformed orders`);
  const log = x.log.filter(isEntry);
  if (log.length !== x.log.length) problems.push(`${x.log.length - log.length} malformed log entries`);
  const ordersByNumber = new Map<number, Order[]>();
  for (const o of orders) pushTo(ordersByNumber, o.number, o);
  const buyEntries = new Map<string, number>();
  for (const e of log) if (e.op.k === "buy") buyEntries.set(e.rid, (buyEntries.get(e.rid) ?? 0) + 1);
  const okBuys = history.filter((o) => o.f === "buy" && o.type === "ok");
  for (const b of okBuys) {
    const found = ordersByNumber.get(b.value.order as number) ?? [];
    if (found.length !== 1 || found[0]!.item !== b.value.item) problems.push(`order ${b.value.order} (item ${b.value.item}) found ${found.length} times`);
    else if (buyEntries.get(found[0]!.requestId) !== 1) problems.push(`order ${b.value.order} has ${buyEntries.get(found[0]!.requestId) ?? 0} decrements`);
  }
  const orderRids = new Set(orders.map((o) => o.requestId));
  if (orderRids.size !== orders.length) problems.push(`${orders.length - orderRids.size} request ids with two orders`);
  for (const [rid, n] of buyEntries) if (n !== 1 || !orderRids.has(rid)) problems.push(`decrement ${rid} applied ${n} times, ${orderRids.has(rid) ? "with" : "without"} an order`);
  for (const o of orders) if (!buyEntries.has(o.requestId)) problems.push(`order ${o.number} has no decrement`);
  if (x.pendingBuys > 0) problems.push(`${x.pendingBuys} buys still pending`);
  checks["every acknowledged buy has exactly one order and one decrement"] = {
    ok: problems.length === 0,
    detail: problems.length ? problems.slice(0, 3).join("; ") : `${okBuys.length} acknowledged, ${orders.length} orders, ${buyEntries.size} decrements`,
  };

  // 3. The catalog replicas are identical at the end.
  const digests = x.catalogs.map((c) => `${c.id}:${c.view ? `${c.view.mode}:${c.view.digest}` : "down"}`);
  checks["the catalog replicas are identical at the end"] = {
    ok: x.catalogs.length > 0 && x.catalogs.every((c) => c.view && (c.view.mode === "primary" || c.view.mode === "member") && c.view.digest === x.catalogs[0]!.view?.digest),
    detail: digests.length ? digests.join(" ") : "no catalog seen",
  };

  // 4. No read older than an acknowledged write that finished before the read began (per book version).
  const acked = new Map<number, Array<{ completeMs: number; version: number }>>();
  for (const op of history) {
    if (op.type === "ok" && isWriteF(op.f)) pushTo(acked, op.value.item as number, { completeMs: op.completeMs, version: op.value.version as number });
  }
  // Per book, writes by completion time with the highest version so far: a read's floor is one binary search.
  const floors = new Map<number, { completeMs: number[]; maxVersion: number[] }>();
  for (const [item, ws] of acked) {
    ws.sort((a, b) => a.completeMs - b.completeMs);
    let max = 0;
    floors.set(item, { completeMs: ws.map((w) => w.completeMs), maxVersion: ws.map((w) => (max = Math.max(max, w.version))) });
  }
  const floorAt = (item: number, beforeMs: number): number => {
    const f = floors.get(item);
    if (!f) return 0;
    let lo = 0;
    let hi = f.completeMs.length; // first write completing at or after beforeMs
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f.completeMs[mid]! < beforeMs) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : f.maxVersion[lo - 1]!;
  };
  const isRead = (op: HistoryOp) => op.type === "ok" && (op.f === "lookup" || op.f === "quantity" || op.f === "list");
  const stale: string[] = [];
  let readsChecked = 0;
  for (const op of history) {
    if (!isRead(op)) continue;
    for (const [item, version] of bookReads(op)) {
      readsChecked++;
      const floor = floorAt(item, op.invokeMs);
      if (version < floor) stale.push(`${op.process} ${op.f} item ${item} at ${op.invokeMs}: version ${version} < ${floor}`);
    }
  }
  checks["no read older than an acknowledged write that finished before it began"] = { ok: stale.length === 0, detail: stale.length ? `${stale.length} stale: ${stale.slice(0, 2).join("; ")}` : `${readsChecked} book reads checked` };

  // 4b. Reads never go back in time: none older than a read that finished before it began (a read
  // may see a write still in flight; every later read must then see it too).
  const reads: Array<{ item: number; version: number; invokeMs: number; completeMs: number; who: string }> = [];
  for (const op of history) if (isRead(op)) for (const [item, version] of bookReads(op)) reads.push({ item, version, invokeMs: op.invokeMs, completeMs: op.completeMs, who: `${op.process} ${op.f}` });
  const backwards: string[] = [];
  const byItem = new Map<number, typeof reads>();
  for (const r of reads) pushTo(byItem, r.item, r);
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

  // 5. Final quantities account for every acknowledged write (and only for writes that may have
  // happened: an `info` write, a crashed client's open one included, may or may not have).
  const finalFrom = x.catalogs.find((c) => catalogBooks(c).length > 0);
  const final = finalFrom ? catalogBooks(finalFrom) : [];
  const off: string[] = [];
  for (const b of final) {
    let lo = initial.get(b.item) ?? 0;
    let hi = lo;
    for (const op of history) {
      if (op.value.item !== b.item || op.type === "fail") continue;
      const d = op.f === "buy" ? -1 : op.f === "update_quantity" ? (op.value.delta as number) : 0;
      if (op.type === "ok") (lo += d), (hi += d);
      else if (d < 0) lo += d;
      else hi += d;
    }
    if (b.quantity < lo || b.quantity > hi) off.push(`item ${b.item}: ${b.quantity} not in [${lo}, ${hi}]`);
  }
  checks["final quantities account for every acknowledged write"] = {
    ok: final.length > 0 && off.length === 0,
    detail: final.length === 0 ? "no catalog showed its books" : off.length ? off.slice(0, 3).join("; ") : `${final.length} books`,
  };
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

/** The value, or null if the node is down or does not answer in time (a check then says so). */
async function orNull<T>(p: Promise<T>): Promise<T | null> {
  return p.catch(() => null);
}

/**
 * The longest a healthy client goes without completing an operation: one in flight when the faults
 * healed may wait out its timeout, the next may too (a front end that restarted at the heal is still
 * learning who is alive), then one interval and a margin.
 */
export const clientWithinMs = (intervalMs: number) => 2 * (MAX_OP_MS + intervalMs) + 2000;

export const scenario: Scenario<BookstoreOptions> = {
  name: "bookstore",
  description: "Pygmy bookstore: front end with a cache, replicated catalog, order servers; clients list, search, look up, buy and restock",
  options: [
    { flags: "--catalogs <n>", description: "Catalog replicas (1 or 2)", default: DEFAULTS.catalogs, integer: true, min: 1, max: 2 },
    { flags: "--orders <n>", description: "Order servers", default: DEFAULTS.orders, integer: true, min: 1, max: 16 },
    { flags: "--clients <n>", description: "Client nodes", default: DEFAULTS.clients, integer: true, max: 1000 },
    { flags: "--port <port>", description: "Front end HTTP port (0: a free port)", default: DEFAULTS.port, integer: true, max: 65535 },
    { flags: "--heartbeat-ms <ms>", description: "Front end heartbeat period", default: DEFAULTS.heartbeatMs, integer: true, min: 10, max: 10_000 },
    { flags: "--cache-size <n>", description: "Front end cache entries (LRU)", default: DEFAULTS.cacheSize, integer: true, max: 1_000_000 },
    { flags: "--no-cache", description: "Disable the front end cache" },
    { flags: "--interval-ms <ms>", description: "A client's pause between operations (0: back to back; not with --sim at zero latency, where virtual time would stand still)", default: DEFAULTS.intervalMs, max: 60_000 },
    { flags: "--write-p <p>", description: "Probability a client operation is a write", default: DEFAULTS.writeP, max: 1 },
  ],
  topology: (o) => bookstoreTopology(o),
  clients: (o) => {
    const opt = normalize(o);
    return clientIds(opt.clients).map((id) => ({ id, withinMs: clientWithinMs(opt.intervalMs) }));
  },
  // Judged by what clients observed, per item. The catalog outlives a run (without --fresh): the
  // model learns each item's starting quantity and cost from the history.
  historyModel: () => bookstoreModel(),
  async run(cluster, o, control) {
    const opt = normalize(o);
    const catalogs = catalogIds(opt.catalogs);
    const orders = orderIds(opt.orders);
    const clients = clientIds(opt.clients);
    await control.untilStopped();
    const finished = await Promise.all(clients.map((c) => cluster.request(c, { type: "finish" }, 60_000).then(() => true, () => false)));
    await awaitQuiet(cluster, catalogs, orders);

    // Load balancing, measured now that every replica is back: uncached reads and buys through the front end.
    const driverOps: HistoryOp[] = [];
    const served = async () => (await orNull(cluster.inspect<{ served: Record<string, number> }>("frontend")))?.served ?? {};
    const servedBefore = await served();
    for (let i = 0; i < 30; i++) driverOps.push(await driverOp(cluster, "list", "GET", "/list", {}));
    for (let i = 0; i < 12; i++) driverOps.push(await driverOp(cluster, "buy", "POST", `/buy/${1 + (i % 3)}`, { item: 1 + (i % 3) }));
    const servedAfter = await served();
    const delta = (ids: string[], prefix: string) => Object.fromEntries(ids.map((id) => [id, (servedAfter[`${prefix}:${id}`] ?? 0) - (servedBefore[`${prefix}:${id}`] ?? 0)]));

    const { views } = await awaitQuiet(cluster, catalogs, orders);
    // Every client's whole history (all its boots), from its storage; one that cannot be read is named.
    const histories = await Promise.all(clients.map(async (id) => ({ id, h: await readHistory(cluster, id).catch((e: unknown) => (e instanceof Error ? e.message : String(e))) })));
    const history: unknown[] = [...histories.flatMap((x) => (typeof x.h === "string" ? [] : x.h.ops)), ...driverOps];
    const primary = views.find((v) => v.view?.mode === "primary")?.id ?? catalogs[0]!;
    const log = await readCatalogLog(cluster, primary).catch(() => [] as LogEntry[]);
    const allOrders = (await Promise.all(orders.map((id) => readOrders(cluster, id).catch(() => [] as Order[])))).flat();
    const pendingBuys = (await Promise.all(orders.map(async (id) => (await orNull(cluster.inspect<{ pending: number }>(id)))?.pending ?? 0))).reduce((a, b) => a + b, 0);

    const checks = checkRun({ history, catalogs: views, log, orders: allOrders, pendingBuys });
    if (catalogs.length > 1) checks["with both catalogs up, each served at least a third of the reads"] = balanceCheck("reads", delta(catalogs, "read"));
    if (orders.length > 1) checks["with both order servers up, each served at least a third of the buys"] = balanceCheck("buys", delta(orders, "buy"));
    const unread = histories.filter((x) => typeof x.h === "string").map((x) => `${x.id} (${x.h})`);
    const unfinished = clients.filter((_, i) => !finished[i]);
    const truncated = histories.filter((x) => typeof x.h !== "string" && x.h.truncated).map((x) => x.id);
    checks["clients recorded complete histories"] = {
      ok: unread.length === 0 && unfinished.length === 0,
      detail:
        `${history.length} operations from ${clients.length - unread.length}/${clients.length} clients` +
        (unread.length ? `; unreadable: ${unread.join(", ")}` : "") +
        (unfinished.length ? `; did not stop: ${unfinished.join(", ")}` : "") +
        (truncated.length ? `; full (no writes since, later reads unrecorded): ${truncated.join(", ")}` : ""),
    };

    const judged = history.filter((op): op is HistoryOp => historyProblem(op) === null);
    const metrics: Record<string, unknown> = {};
    const byF: Record<string, Record<string, number>> = {};
    for (const op of judged) (byF[op.f] ??= { ok: 0, fail: 0, info: 0 })[op.type]!++;
    metrics.operations = byF;
    for (const f of ["lookup", "quantity", "search", "buy", "update_quantity"]) {
      const lat = judged.filter((op) => op.f === f && op.type === "ok").map((op) => op.completeMs - op.invokeMs);
      metrics[`${f}P50Ms`] = percentile(lat, 50);
      metrics[`${f}P99Ms`] = percentile(lat, 99);
    }
    metrics.writesOpenAtAClientCrash = judged.filter((op) => op.value.error === CRASHED_BEFORE_ANSWER).length;
    const fe = await orNull(cluster.inspect<{ cache: unknown; view: View }>("frontend"));
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
