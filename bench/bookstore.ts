/**
 * `bun run bench bookstore`: the bookstore on worker threads over real HTTP.
 *
 * 1. Latency (p50, p99) per request type — search, lookup, buy, update — with and without the front
 *    end's cache, 4 closed-loop HTTP clients per type.
 * 2. Read throughput (uncached GET /list, 16 closed-loop clients) with one catalog and with two.
 * 3. Resync time against writes missed: catalog-2 is killed, N writes land on catalog-1, catalog-2
 *    restarts; timed from the restart until it serves as a member again (N = 0 is the baseline:
 *    the restart itself, measured in the same run).
 * 4. A tinybench table of the in-node pieces: the replication core per write, the router, the cache.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/driver/stats.ts";
import { Bench as TinyBench } from "tinybench";
import { startCluster } from "../src/main/supervisor.ts";
import { CatalogCore } from "../src/workers/bookstore/core.ts";
import { route, type BookstoreApi } from "../src/workers/bookstore/http.ts";
import { BOOKS, type LogEntry } from "../src/workers/bookstore/messages.ts";
import { VersionedLru } from "../src/workers/shared/cache.ts";
import { ok } from "../src/workers/shared/http.ts";
import { bookstoreTopology, type CatalogView } from "../src/workers/bookstore/scenario.ts";
import { printTable, progress, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";
import { groupedBarChart, lineChart, writeSvg } from "./lib/plot.ts";

type Cluster = Awaited<ReturnType<typeof startCluster>>;
type Kind = "search" | "lookup" | "buy" | "update";
const KINDS: Kind[] = ["search", "lookup", "buy", "update"];

export interface LatencyRow {
  kind: Kind;
  cache: boolean;
  p50Ms: number;
  p99Ms: number;
  requests: number;
}
export interface ThroughputRow {
  catalogs: number;
  rps: number;
}
export interface ResyncRow {
  missed: number;
  resyncMs: number;
}

async function send(base: string, kind: Kind, i: number): Promise<number> {
  const item = 1 + (i % 7);
  const t0 = performance.now();
  const r =
    kind === "search"
      ? await fetch(`${base}/search/${i % 2 ? "distributed-systems" : "graduate-school"}`)
      : kind === "lookup"
        ? await fetch(`${base}/lookup/${item}`)
        : kind === "buy"
          ? await fetch(`${base}/buy/${item}`, { method: "POST" })
          : await fetch(`${base}/update_quantity/${item}`, { method: "POST", body: JSON.stringify({ delta: 1 }) });
  await r.arrayBuffer();
  if (r.status !== 200) throw new Error(`${kind}: HTTP ${r.status}`);
  return performance.now() - t0;
}

/** `clients` closed loops of one request type for `seconds`; latencies in ms. */
async function loop(base: string, kind: Kind, clients: number, seconds: number): Promise<number[]> {
  const lat: number[] = [];
  const end = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < end) lat.push(await send(base, kind, n++));
  }));
  return lat;
}

async function withCluster<T>(opts: { catalogs: number; cache: boolean }, f: (c: Cluster, base: string) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-bookstore-"));
  const c = await startCluster({ system: "bookstore", nodes: bookstoreTopology({ clients: 0, port: 0, ...opts }), seed: 1, dataDir, fresh: true, logLevel: "error" });
  try {
    const base = c.httpUrl("frontend")?.replace(/\/$/, "");
    if (!base) throw new Error("the front end serves no HTTP");
    // Stock up so buys never run out, and let the first view settle before timing anything.
    for (let item = 1; item <= 7; item++) {
      const r = await fetch(`${base}/update_quantity/${item}`, { method: "POST", body: JSON.stringify({ delta: 1_000_000 }) });
      if (r.status !== 200) throw new Error(`restock: HTTP ${r.status}`);
    }
    return await f(c, base);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function until(c: Cluster, cond: () => Promise<boolean>, maxMs: number): Promise<void> {
  const deadline = performance.now() + maxMs;
  while (!(await cond())) {
    if (performance.now() > deadline) throw new Error("timed out waiting for the cluster");
    await c.sleep(5);
  }
}

/** Per-operation costs of the pieces inside the nodes, with no network and no storage. */
async function pieces(quick: boolean): Promise<Array<Record<string, unknown>>> {
  const cats = ["catalog-1", "catalog-2"];
  const cfg = { catalogs: cats, frontend: "frontend", replicateTimeoutMs: 300, pullEveryMs: 200, maxQueue: 1000 };
  const books = () => BOOKS.map((b) => ({ ...b, quantity: 1e12 }));
  const solo = new CatalogCore({ ...cfg, me: "catalog-1" }, { view: null, last: 0, books: books() }, () => undefined);
  solo.onView({ epoch: 1, primary: "catalog-1", members: ["catalog-1"] }, 0);
  const pair = new CatalogCore({ ...cfg, me: "catalog-1" }, { view: null, last: 0, books: books() }, () => undefined);
  const backup = new CatalogCore({ ...cfg, me: "catalog-2" }, { view: null, last: 0, books: books() }, () => undefined);
  const both = { epoch: 1, primary: "catalog-1", members: cats };
  pair.onView(both, 0);
  backup.onView(both, 0);
  const api = Object.fromEntries(["list", "search", "lookup", "quantity", "buy", "updateCost", "updateQuantity", "order"].map((k) => [k, async () => ok(null)])) as unknown as BookstoreApi;
  const cache = new VersionedLru<{ n: number }>(100);
  cache.fill("book:1", { n: 1 }, 0, cache.ticket());
  let i = 0;
  const tb = new TinyBench({ time: quick ? 200 : 1000 });
  tb.add("core: one buy, primary alone (sequence + commit)", () => void solo.submit({ kind: "write", token: i, rid: `s${i++}`, op: { k: "buy", item: 1 } }, 0))
    .add("core: one buy, primary + backup (sequence, backup applies, commit)", () => {
      const out = pair.submit({ kind: "write", token: i, rid: `p${i++}`, op: { k: "buy", item: 1 } }, 0);
      const entries = (out.send[0]!.msg as { entries: LogEntry[] }).entries;
      backup.onReplicate(both, entries);
      pair.onReplicateReply("catalog-2", entries[entries.length - 1]!.seq, { ok: true, epoch: 1 }, 0);
    })
    .add("router: POST /update_cost/1 with a JSON body", async () => void (await route(api, "POST", "/update_cost/1", '{"cost": 12.5}')))
    .add("cache: hit", () => void cache.get("book:1"))
    .add("cache: invalidate + fill", () => {
      cache.invalidate("book:2", ++i);
      cache.fill("book:2", { n: i }, i, cache.ticket());
    });
  await tb.run();
  return tb.tasks.map((t) => {
    const r = t.result as { latency?: { p50?: number; p99?: number }; throughput?: { mean?: number } } | undefined;
    return { task: t.name, "p50 µs": (r?.latency?.p50 ?? NaN) * 1000, "p99 µs": (r?.latency?.p99 ?? NaN) * 1000, "ops/s": Math.round(r?.throughput?.mean ?? NaN) };
  });
}

export const bench: Bench = {
  name: "bookstore",
  description: "bookstore on threads: latency per request type with/without cache, read throughput with 1 vs 2 catalogs, resync time vs writes missed",
  async run(opts: BenchOptions) {
    const seconds = opts.quick ? 0.5 : 3;
    const missedCounts = opts.quick ? [0, 10, 100] : [0, 10, 100, 1000, 10_000];
    const inNode = await pieces(opts.quick);
    const bar = progress("bookstore", 2 + 2 + missedCounts.length);
    const latency: LatencyRow[] = [];
    const throughput: ThroughputRow[] = [];
    const resync: ResyncRow[] = [];

    for (const cache of [true, false]) {
      await withCluster({ catalogs: 2, cache }, async (_c, base) => {
        for (const kind of KINDS) await loop(base, kind, 4, seconds / 5); // warm-up: JIT, links, first misses
        for (const kind of KINDS) {
          const lat = await loop(base, kind, 4, seconds);
          latency.push({ kind, cache, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), requests: lat.length });
        }
      });
      bar.tick(`latency, cache ${cache ? "on" : "off"}`);
    }

    for (const catalogs of [1, 2]) {
      await withCluster({ catalogs, cache: false }, async (c, base) => {
        await loop(base, "lookup", 16, seconds / 3); // warm-up
        const t0 = performance.now();
        let n = 0;
        const end = t0 + seconds * 1000;
        await Promise.all(Array.from({ length: 16 }, async () => {
          while (performance.now() < end) {
            const r = await fetch(`${base}/list`);
            await r.arrayBuffer();
            if (r.status !== 200) throw new Error(`list: HTTP ${r.status}`);
            n++;
          }
        }));
        throughput.push({ catalogs, rps: n / ((performance.now() - t0) / 1000) });
        void c;
      });
      bar.tick(`throughput, ${catalogs} catalog(s)`);
    }

    await withCluster({ catalogs: 2, cache: true }, async (c, base) => {
      const view = (id: string) => c.inspect<CatalogView>(id);
      for (const missed of missedCounts) {
        await c.crash("catalog-2");
        // Writes, 8 at a time: the first waits for catalog-1 to drop catalog-2 from the view.
        let next = 0;
        await Promise.all(Array.from({ length: 8 }, async () => {
          while (next < missed) await send(base, "update", next++);
        }));
        const t0 = performance.now();
        await c.restart("catalog-2");
        const primaryLast = (await view("catalog-1"))!.last;
        await until(c, async () => {
          const v = await view("catalog-2").catch(() => null);
          return v?.mode === "member" && v.last >= primaryLast;
        }, 120_000);
        resync.push({ missed, resyncMs: performance.now() - t0 });
        bar.tick(`resync after ${missed} missed writes`);
      }
    });
    bar.done();

    const r = (x: number) => +x.toFixed(3);
    printTable(latency.map((x) => ({ request: x.kind, cache: x.cache ? "on" : "off", "p50 ms": r(x.p50Ms), "p99 ms": r(x.p99Ms), requests: x.requests })));
    console.log();
    printTable(throughput.map((x) => ({ catalogs: x.catalogs, "uncached GET /list req/s": Math.round(x.rps) })));
    console.log();
    printTable(resync.map((x) => ({ "writes missed": x.missed, "restart → serving ms": r(x.resyncMs), "minus baseline ms": r(x.resyncMs - resync[0]!.resyncMs) })));

    console.log();
    printTable(inNode);

    const dir = opts.resultsDir;
    await writeSvg(join(dir, "bookstore-latency.svg"), groupedBarChart({ title: "Bookstore latency p50 per request type, 4 clients", rows: latency.map((x) => ({ request: x.kind, cache: x.cache ? "cache" : "no cache", ms: x.p50Ms })), x: "request", y: "ms", group: "cache", yTitle: "p50 latency (ms)" }));
    await writeSvg(join(dir, "bookstore-throughput.svg"), groupedBarChart({ title: "Uncached read throughput, 16 clients", rows: throughput.map((x) => ({ catalogs: `${x.catalogs} catalog${x.catalogs > 1 ? "s" : ""}`, rps: x.rps, series: "GET /list" })), x: "catalogs", y: "rps", group: "series", yTitle: "requests/s" }));
    await writeSvg(join(dir, "bookstore-resync.svg"), lineChart({ title: "Catalog resync: restart until serving, against writes missed", rows: resync.filter((x) => x.missed > 0).map((x) => ({ missed: x.missed, ms: x.resyncMs, series: "catalog-2" })), x: "missed", y: "ms", series: "series", xTitle: "writes missed", yTitle: "ms", xLog: true }));
    console.log(`\nplots in ${dir}/bookstore-*.svg`);

    const rows = [
      ...latency.map((x) => ({ figure: "latency", ...x })),
      ...throughput.map((x) => ({ figure: "read_throughput", ...x })),
      ...resync.map((x) => ({ figure: "resync", ...x })),
      ...inNode.map((x) => ({ figure: "in_node", ...x })),
    ];
    if (opts.json) writeJson(opts.json, rows);
    return rows;
  },
};
