/**
 * `bun run bench cache`: what the stocks frontend's cache buys.
 *
 * 1. Latency per request type (lookup, trade, order query) for p ∈ {0, 0.2, …, 0.8}, with and
 *    without the cache, 5 concurrent HTTP clients (the original lab's evaluation) — table + SVGs.
 * 2. Lookup latency on a hit and on a miss, next to one in-cluster round trip (frontend → catalog,
 *    timed by the frontend itself during the miss run).
 * 3. Cached GET /stocks/:name throughput from a separate load-generator process, against a bare
 *    Bun.serve returning the same JSON, with the same load generator in the same run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/driver/stats.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { STOCKS } from "../src/workers/stocks/catalog.ts";
import { stocksTopology } from "../src/workers/stocks/scenario.ts";
import { printTable, progress, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";
import { lineChart, writeSvg } from "./lib/plot.ts";

const PS = [0, 0.2, 0.4, 0.6, 0.8];
const CLIENTS = 5;
const LOADGEN = new URL("./loadgen.ts", import.meta.url).pathname;

type Cluster = Awaited<ReturnType<typeof startCluster>>;

interface ByP {
  p: number;
  cache: boolean;
  lookupP50Ms: number;
  tradeP50Ms: number;
  orderQueryP50Ms: number;
}

export interface CacheResults {
  hitP50Us: number;
  missP50Us: number;
  rttP50Us: number;
  cachedRps: number;
  bareRps: number;
  byP: ByP[];
}

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await f();
  return performance.now() - t0;
}

async function get(url: string): Promise<void> {
  const r = await fetch(url);
  await r.arrayBuffer();
  if (!r.ok) throw new Error(`GET ${url}: ${r.status}`);
}

/** CLIENTS closed-loop traders for `seconds`: look up a random stock, trade it with probability p, then query every order placed. */
async function workload(base: string, p: number, seconds: number): Promise<Omit<ByP, "p" | "cache">> {
  const lat = { lookup: [] as number[], trade: [] as number[], orderQuery: [] as number[] };
  const end = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      const placed: number[] = [];
      while (performance.now() < end) {
        const name = STOCKS[n++ % STOCKS.length]!.name;
        lat.lookup.push(await timed(() => get(`${base}/stocks/${name}`)));
        if (Math.random() < p) {
          const body = JSON.stringify({ name, type: Math.random() < 0.5 ? "buy" : "sell", quantity: 1 + Math.floor(Math.random() * 10) });
          let number: number | undefined;
          lat.trade.push(
            await timed(async () => {
              const r = await fetch(`${base}/orders`, { method: "POST", body, headers: { "content-type": "application/json" } });
              const j = (await r.json()) as { data?: { transaction_number: number } };
              number = j.data?.transaction_number;
            }),
          );
          if (number !== undefined && placed.length < 200) placed.push(number);
        }
      }
      for (const o of placed) lat.orderQuery.push(await timed(() => get(`${base}/orders/${o}`)));
    }),
  );
  return { lookupP50Ms: percentile(lat.lookup, 50), tradeP50Ms: percentile(lat.trade, 50), orderQueryP50Ms: percentile(lat.orderQuery, 50) };
}

async function hitAndMiss(c: Cluster, base: string, n: number): Promise<{ hitP50Us: number; missP50Us: number }> {
  const hit = `${base}/stocks/nvidia`;
  const miss = `${base}/stocks/meta`;
  const hits: number[] = [];
  const misses: number[] = [];
  for (let i = 0; i < n + 50; i++) {
    const h = await timed(() => get(hit));
    await c.request("frontend", { type: "invalidate", name: "meta", version: 0 }, 5000);
    const m = await timed(() => get(miss));
    if (i >= 50) (hits.push(h), misses.push(m));
  }
  return { hitP50Us: percentile(hits, 50) * 1000, missP50Us: percentile(misses, 50) * 1000 };
}

async function loadgen(url: string, seconds: number, connections: number): Promise<number> {
  const proc = Bun.spawn([process.execPath, LOADGEN, url, String(seconds), String(connections)], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  await proc.exited;
  const r = JSON.parse(out.trim().split("\n").pop()!) as { rps: number; errors: number };
  if (r.errors > 0) console.error(`loadgen: ${r.errors} errors against ${url}`);
  return r.rps;
}

async function bareServer(json: string): Promise<{ url: string; stop(): void }> {
  const proc = Bun.spawn([process.execPath, LOADGEN, "--bare", json], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("bare server exited before it printed its URL");
    text += new TextDecoder().decode(value);
  }
  return { url: (JSON.parse(text.split("\n")[0]!) as { url: string }).url, stop: () => proc.kill() };
}

async function withCluster<T>(cache: boolean, f: (c: Cluster, base: string) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-cache-"));
  const c = await startCluster({ system: "stocks", nodes: stocksTopology({ clients: 0, port: 0, cache, initialQuantity: 1_000_000_000 }), seed: 1, dataDir, fresh: true, logLevel: "error" });
  try {
    const base = c.httpUrl("frontend");
    if (!base) throw new Error("the frontend serves no HTTP");
    const root = base.replace(/\/$/, "");
    // The first trade waits for the leader to be chosen; keep that out of the figures.
    await fetch(`${root}/orders`, { method: "POST", body: JSON.stringify({ name: "nvidia", type: "sell", quantity: 1 }) });
    return await f(c, root);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

export const bench: Bench = {
  name: "cache",
  description: "stocks frontend cache: latency per request type vs p, hit vs miss, cached lookup throughput vs a bare Bun.serve",
  async run(opts: BenchOptions): Promise<CacheResults> {
    const seconds = opts.quick ? 0.8 : 4;
    // At least the frontend's 1024-sample round-trip ring.
    const samples = opts.quick ? 1100 : 3000;
    const loadSeconds = opts.quick ? 1 : 3;
    const connections = 32;
    const bar = progress("cache", PS.length * 2 + 2);
    const byP: ByP[] = [];
    let hitP50Us = NaN;
    let missP50Us = NaN;
    let rttP50Us = NaN;
    let cachedRps = NaN;
    let bareRps = NaN;

    for (const cache of [true, false]) {
      await withCluster(cache, async (c, base) => {
        const url = `${base}/stocks/nvidia`;
        if (cache) {
          // Hits and misses interleaved on one quiet cluster, so drift on a shared machine hits both
          // alike; a miss is forced by invalidating the stock just before (not timed). The frontend's
          // round-trip ring then holds exactly these misses' catalog round trips.
          ({ hitP50Us, missP50Us } = await hitAndMiss(c, base, samples));
          const fe = await c.inspect<{ catalogRttP50Ms: number | null }>("frontend");
          rttP50Us = (fe?.catalogRttP50Ms ?? NaN) * 1000;
          bar.tick("hit and miss latency");
        }
        for (const p of PS) {
          byP.push({ p, cache, ...(await workload(base, p, seconds)) });
          bar.tick(`p=${p} cache=${cache}`);
        }
        if (cache) {
          // Alternate the two servers and keep each one's best round: the machine is shared, and
          // a neighbour's burst should not decide the ratio.
          const json = await (await fetch(url)).text();
          const bare = await bareServer(json);
          try {
            cachedRps = bareRps = 0;
            for (let round = 0; round < 2; round++) {
              cachedRps = Math.max(cachedRps, await loadgen(url, loadSeconds, connections));
              bareRps = Math.max(bareRps, await loadgen(bare.url, loadSeconds, connections));
            }
          } finally {
            bare.stop();
          }
          bar.tick("throughput, cached vs bare");
        }
      });
    }
    bar.done();

    const round = (x: number, d = 3) => +x.toFixed(d);
    printTable(byP.map((r) => ({ p: r.p, cache: r.cache ? "on" : "off", "lookup p50 ms": round(r.lookupP50Ms), "trade p50 ms": round(r.tradeP50Ms), "order query p50 ms": round(r.orderQueryP50Ms) })));
    console.log();
    printTable([
      { figure: "lookup p50, cache hit", value: round(hitP50Us, 1), unit: "µs" },
      { figure: "lookup p50, cache miss", value: round(missP50Us, 1), unit: "µs" },
      { figure: "miss − hit", value: round(missP50Us - hitP50Us, 1), unit: "µs" },
      { figure: "in-cluster round trip p50 (frontend → catalog, timed by the frontend)", value: round(rttP50Us, 1), unit: "µs" },
      { figure: "cached GET /stocks/:name", value: Math.round(cachedRps), unit: "req/s" },
      { figure: "bare Bun.serve, same JSON", value: Math.round(bareRps), unit: "req/s" },
      { figure: "cached / bare", value: round((100 * cachedRps) / bareRps, 1), unit: "% (target ≥ 60)" },
    ]);

    for (const [key, title] of [
      ["lookupP50Ms", "Lookup latency (p50)"],
      ["tradeP50Ms", "Trade latency (p50)"],
      ["orderQueryP50Ms", "Order query latency (p50)"],
    ] as const) {
      const rows = byP.map((r) => ({ p: r.p, cache: r.cache ? "cache" : "no cache", ms: r[key] })).filter((r) => Number.isFinite(r.ms));
      const file = join(opts.resultsDir, `cache-${key.replace("P50Ms", "").toLowerCase()}.svg`);
      await writeSvg(file, lineChart({ title: `${title}, ${CLIENTS} clients`, rows, x: "p", y: "ms", series: "cache", xTitle: "trade probability p", yTitle: "p50 latency (ms)" }));
    }
    console.log(`\nplots in ${opts.resultsDir}/cache-*.svg`);

    const results: CacheResults = { hitP50Us, missP50Us, rttP50Us, cachedRps, bareRps, byP };
    if (opts.json) writeJson(opts.json, results);
    return results;
  },
};
