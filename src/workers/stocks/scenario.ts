import type { Cluster } from "../../driver/cluster.ts";
import type { Scenario } from "../../driver/scenario.ts";
import { stocksModel } from "../../history/models.ts";
import { percentile } from "../../driver/stats.ts";
import type { NodeSpec } from "../runtime/types.ts";
import { STOCKS } from "./catalog.ts";
import type { ClientState, VerifyResult } from "./client.ts";
import type { CatalogConfig, ClientConfig, FrontendConfig, LogTailOk, Order, ReplicaConfig, Stock } from "./messages.ts";

export interface StocksOptions extends Record<string, unknown> {
  replicas: number;
  initialQuantity: number;
  cacheSize: number;
  cache: boolean;
  clients: number;
  p: number;
  port: number;
  intervalMs: number;
  maxQuantity: number;
}

export const DEFAULTS: StocksOptions = { replicas: 3, initialQuantity: 1000, cacheSize: 100, cache: true, clients: 5, p: 0.5, port: 8080, intervalMs: 5, maxQuantity: 10 };

export const replicaIds = (n: number) => Array.from({ length: n }, (_, i) => `order-${i + 1}`);

/** The stocks cluster: one frontend, one catalog, `replicas` order replicas and `clients` traders. */
export function stocksTopology(o: Partial<StocksOptions> = {}): NodeSpec[] {
  const opt = { ...DEFAULTS, ...o };
  const replicas = replicaIds(opt.replicas);
  const nodes: NodeSpec[] = [
    { id: "frontend", role: "frontend", config: { port: opt.port, catalog: "catalog", replicas, cache: opt.cache !== false, cacheSize: opt.cacheSize } satisfies FrontendConfig },
    { id: "catalog", role: "catalog", config: { frontends: ["frontend"], initialQuantity: opt.initialQuantity } satisfies CatalogConfig },
    ...replicas.map((id) => ({ id, role: "replica", config: { catalog: "catalog", replicas } satisfies ReplicaConfig })),
  ];
  for (let i = 1; i <= opt.clients; i++) {
    nodes.push({
      id: `client-${i}`,
      role: "client",
      config: { frontend: "frontend", p: opt.p, stocks: STOCKS.map((s) => s.name), intervalMs: opt.intervalMs, maxQuantity: opt.maxQuantity } satisfies ClientConfig,
    });
  }
  return nodes;
}

// ---- checks, shared with the tests ----

export interface ReplicaView {
  state: string;
  epoch: number;
  leader?: string;
  last: number;
  lastEpoch: number;
  digest: string;
  /** Trades dropped from this log not yet handed back to the catalog. */
  dropped: number;
}

/** A replica's whole order log, read through its own log_tail handler. */
export async function readLog(cluster: Cluster, replica: string): Promise<Order[]> {
  const out: Order[] = [];
  for (;;) {
    const r = await cluster.request<LogTailOk>(replica, { type: "log_tail", after: out.length - 1, limit: 256 }, 5000);
    out.push(...r.entries);
    if (r.entries.length === 0 || out.length - 1 >= r.last) return out;
  }
}

export async function liveReplicas(cluster: Cluster, replicas: string[]): Promise<Array<{ id: string; view: ReplicaView }>> {
  const out: Array<{ id: string; view: ReplicaView }> = [];
  for (const id of replicas) {
    if (cluster.status(id) !== "running") continue;
    const view = await cluster.inspect<ReplicaView>(id);
    if (view) out.push({ id, view });
  }
  return out;
}

/** Waits (bounded) until every live replica has recovered and all hold the same log. */
export async function awaitConvergence(cluster: Cluster, replicas: string[], maxMs = 10_000): Promise<{ converged: boolean; views: Array<{ id: string; view: ReplicaView }> }> {
  const deadline = cluster.now() + maxMs;
  for (;;) {
    const views = await liveReplicas(cluster, replicas);
    const converged = views.every((v) => v.view.state !== "recovering" && v.view.digest === views[0]!.view.digest);
    if (converged || cluster.now() >= deadline) return { converged, views };
    await cluster.sleep(100);
  }
}

/**
 * Waits (bounded) until every trade the catalog applied is in the order log: the catalog lists none
 * as unlogged and no replica holds dropped trades to hand back. Returns what is still open.
 */
export async function awaitResolved(cluster: Cluster, replicas: string[], maxMs = 15_000): Promise<{ unlogged: number; dropped: number }> {
  const deadline = cluster.now() + maxMs;
  for (;;) {
    const cat = cluster.status("catalog") === "running" ? await cluster.inspect<{ unlogged: number }>("catalog") : null;
    const views = await liveReplicas(cluster, replicas);
    const open = { unlogged: cat?.unlogged ?? -1, dropped: views.reduce((a, v) => a + (v.view.dropped ?? 0), 0) };
    if ((open.unlogged === 0 && open.dropped === 0) || cluster.now() >= deadline) return open;
    await cluster.sleep(100);
  }
}

/** Catalog quantities implied by an order log. */
export function expectedQuantities(orders: readonly Order[], initialQuantity: number): Record<string, number> {
  const q: Record<string, number> = Object.fromEntries(STOCKS.map((s) => [s.name, initialQuantity]));
  for (const o of orders) q[o.name] = (q[o.name] ?? initialQuantity) + (o.type === "sell" ? o.quantity : -o.quantity);
  return q;
}

export async function catalogStocks(cluster: Cluster): Promise<Array<Stock & { version: number }>> {
  const s = await cluster.inspect<{ stocks: Array<Stock & { version: number }> }>("catalog");
  return s?.stocks ?? [];
}

export const scenario: Scenario<StocksOptions> = {
  name: "stocks",
  description: "Stock bazaar: REST frontend with a cache, a catalog, and a replicated order service; clients trade and check their orders",
  options: [
    { flags: "--replicas <n>", description: "Order replicas", default: DEFAULTS.replicas, integer: true, min: 1, max: 64 },
    { flags: "--initial-quantity <n>", description: "Starting quantity of every stock", default: DEFAULTS.initialQuantity, integer: true, max: 1e12 },
    { flags: "--cache-size <n>", description: "Frontend lookup cache entries (LRU)", default: DEFAULTS.cacheSize, integer: true, max: 1e6 },
    { flags: "--no-cache", description: "Disable the frontend lookup cache" },
    { flags: "--clients <n>", description: "Client nodes", default: DEFAULTS.clients, integer: true, max: 1000 },
    { flags: "--p <p>", description: "Probability a client trades after a lookup", default: DEFAULTS.p, max: 1 },
    { flags: "--port <port>", description: "Frontend HTTP port (0: a free port)", default: DEFAULTS.port, integer: true, max: 65535 },
    { flags: "--interval-ms <ms>", description: "A client's pause between steps", default: DEFAULTS.intervalMs, max: 3_600_000 },
    { flags: "--max-quantity <n>", description: "Largest quantity a client trades", default: DEFAULTS.maxQuantity, integer: true, min: 1, max: 1e9 },
  ],
  topology: (o) => stocksTopology(normalize(o)),
  // After a heal, a trade in flight may wait out its timeout (10 s, client.ts) before the next request.
  clients: (o) => Array.from({ length: normalize(o).clients }, (_, i) => ({ id: `client-${i + 1}`, withinMs: 10_000 + normalize(o).intervalMs + 2000 })),
  // The catalog outlives a run (without --fresh): the model learns each starting quantity from the history.
  historyModel: () => stocksModel(),
  async run(cluster, o, control) {
    const opt = normalize(o);
    const replicas = replicaIds(opt.replicas);
    const clients = Array.from({ length: opt.clients }, (_, i) => `client-${i + 1}`);
    await control.untilStopped();
    // Restarted replicas finish catching up before anyone checks them.
    await awaitConvergence(cluster, replicas);
    const verifies = await Promise.all(clients.map((c) => cluster.request<VerifyResult & { type: string; [k: string]: unknown }>(c, { type: "verify" }, 300_000).catch(() => null)));
    const states = (await Promise.all(clients.map((c) => cluster.inspect<ClientState>(c)))).filter((s): s is ClientState => s !== null);
    // Trades interrupted by a crash (even those that ended in a 503 or no answer) are finished by
    // the order leader: wait for that before comparing the catalog with the log.
    const open = await awaitResolved(cluster, replicas);
    const { converged, views } = await awaitConvergence(cluster, replicas);

    const v = verifies.filter((x) => x !== null) as VerifyResult[];
    const sum = (f: (r: VerifyResult) => number) => v.reduce((a, r) => a + f(r), 0);
    const checks: Record<string, { ok: boolean; detail?: string }> = {
      "every client verified its orders": { ok: v.length === clients.length, detail: `${v.length}/${clients.length} clients answered` },
      "every order query matches what was placed": {
        ok: sum((r) => r.mismatched) === 0 && sum((r) => r.failed) === 0,
        detail: `${sum((r) => r.matched)} matched, ${sum((r) => r.mismatched)} mismatched, ${sum((r) => r.failed)} unanswered` + (v.find((r) => r.firstMismatch)?.firstMismatch ? `; ${v.find((r) => r.firstMismatch)!.firstMismatch}` : ""),
      },
      "live replicas hold identical order logs": {
        ok: converged && views.length > 0,
        detail: views.map((x) => `${x.id}:${x.view.state}:${x.view.last}:${x.view.digest}`).join(" "),
      },
    };

    // Every trade is all or nothing, including those whose client saw a 503 or no answer: the
    // catalog holds exactly the trades the order log holds.
    const indefinite = states.reduce((a, s) => a + (s.statuses["503"] ?? 0) + s.unanswered, 0);
    if (views.length > 0) {
      const log = await readLog(cluster, views[0]!.id);
      const want = expectedQuantities(log, opt.initialQuantity);
      const have = await catalogStocks(cluster);
      const off = have.filter((s) => want[s.name] !== s.quantity).map((s) => `${s.name}: catalog ${s.quantity}, log ${want[s.name]}`);
      const pending = open.unlogged !== 0 || open.dropped !== 0 ? `; still open: ${open.unlogged} unlogged at the catalog, ${open.dropped} dropped at replicas` : "";
      checks["catalog agrees with the order log"] = {
        ok: off.length === 0 && pending === "" && have.length > 0,
        detail: (off.length ? off.join("; ") : `${have.length} stocks, ${log.length} orders, ${indefinite} trades with an outcome unknown to their client`) + pending,
      };
      checks["no quantity below zero"] = { ok: have.every((s) => s.quantity >= 0), detail: have.map((s) => `${s.name}=${s.quantity}`).join(" ") };
    }

    const lat = (k: keyof ClientState["latenciesMs"]) => states.flatMap((s) => s.latenciesMs[k]);
    const statuses: Record<string, number> = {};
    for (const s of states) for (const [k, n] of Object.entries(s.statuses)) statuses[k] = (statuses[k] ?? 0) + n;
    const metrics: Record<string, unknown> = { ordersPlaced: states.reduce((a, s) => a + s.ordersPlaced, 0), statuses };
    for (const k of ["lookup", "trade", "orderQuery"] as const) {
      metrics[`${k}Requests`] = states.reduce((a, s) => a + s.requests[k], 0);
      metrics[`${k}P50Ms`] = percentile(lat(k), 50);
      metrics[`${k}P99Ms`] = percentile(lat(k), 99);
    }
    const fe = await cluster.inspect<{ cache: unknown }>("frontend");
    if (fe) metrics.cache = fe.cache;
    return { checks, metrics };
  },
};

/** CLI values may arrive as strings; defaults fill what is missing. */
function normalize(o: Partial<StocksOptions>): StocksOptions {
  const num = (v: unknown, d: number) => (v === undefined || v === null || v === "" || !Number.isFinite(Number(v)) ? d : Number(v));
  const out: StocksOptions = {
    replicas: num(o.replicas, DEFAULTS.replicas),
    initialQuantity: num(o.initialQuantity, DEFAULTS.initialQuantity),
    cacheSize: num(o.cacheSize, DEFAULTS.cacheSize),
    cache: o.cache !== false,
    clients: num(o.clients, DEFAULTS.clients),
    p: num(o.p, DEFAULTS.p),
    port: num(o.port, DEFAULTS.port),
    intervalMs: num(o.intervalMs, DEFAULTS.intervalMs),
    maxQuantity: num(o.maxQuantity, DEFAULTS.maxQuantity),
  };
  if (!Number.isInteger(out.replicas) || out.replicas < 1 || out.replicas > 64) throw new Error(`--replicas must be an integer in 1..64, got ${o.replicas}`);
  if (!Number.isInteger(out.clients) || out.clients < 0 || out.clients > 1000) throw new Error(`--clients must be an integer in 0..1000, got ${o.clients}`);
  if (!(out.p >= 0 && out.p <= 1)) throw new Error(`--p must be in [0, 1], got ${o.p}`);
  if (!Number.isInteger(out.initialQuantity) || out.initialQuantity < 0 || out.initialQuantity > 1e12) throw new Error(`--initial-quantity must be a non-negative integer, got ${o.initialQuantity}`);
  if (!Number.isInteger(out.cacheSize) || out.cacheSize < 0 || out.cacheSize > 1e6) throw new Error(`--cache-size must be an integer in 0..1000000, got ${o.cacheSize}`);
  if (!Number.isInteger(out.port) || out.port < 0 || out.port > 65535) throw new Error(`--port must be in 0..65535, got ${o.port}`);
  if (!(out.intervalMs >= 0)) throw new Error(`--interval-ms must be ≥ 0, got ${o.intervalMs}`);
  if (!Number.isInteger(out.maxQuantity) || out.maxQuantity < 1 || out.maxQuantity > 1e9) throw new Error(`--max-quantity must be an integer in 1..1e9, got ${o.maxQuantity}`);
  return out;
}
