/**
 * The tiered Olympics: request latency and throughput through 1, 2 and 4 front ends, with total
 * ordering on and off, against the single-server obelix under the same load (the baseline, measured
 * in the same run); and each node's clock error over Berkeley rounds, as a plot.
 *
 * Throughput and latency run on worker threads: the driver keeps `CONCURRENCY` requests in flight
 * (half reads, half increments, each increment with its own write id), spread over the front ends.
 * The driver's requests pass through the main thread, the same for every configuration. Clock error
 * runs in the simulator, where true time is exact: skewed (±50 ms) and drifting (±100 ppm) clocks,
 * 1 ms of jittery latency, and a clock jump half-way.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster } from "../src/driver/cluster.ts";
import type { CommonOptions } from "../src/driver/scenario.ts";
import { percentile } from "../src/driver/stats.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { CLOCK_JUMP, withClocks } from "../src/workers/runtime/clock.ts";
import { MEDALS, TEAMS } from "../src/workers/olympics/domain.ts";
import { roles } from "../src/workers/olympics/roles.ts";
import { scenario } from "../src/workers/olympics/scenario.ts";
import type { DispatcherState } from "../src/workers/olympics/tiered-messages.ts";
import type { TieredOptions } from "../src/workers/olympics/tiered-scenario.ts";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { printTable, progress, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";
import { lineChart, writeSvg } from "./lib/plot.ts";

const PASSWORD = "bench-password";
const CONCURRENCY = 16;

export interface LoadRow {
  topology: string;
  frontends: number | null;
  totalOrder: "on" | "off" | null;
  requests: number;
  errors: number;
  throughputPerS: number;
  p50Ms: number;
  p99Ms: number;
}

export interface ClockRow {
  round: number;
  node: string;
  errorMs: number;
}

function options(o: Partial<TieredOptions & CommonOptions>): TieredOptions & CommonOptions {
  return {
    seed: 1,
    duration: 10,
    latency: 0,
    loss: 0,
    dup: 0,
    nemesis: [],
    nemesisInterval: 5,
    logLevel: "silent",
    pull: 0,
    push: 0,
    mode: "random",
    rate: 500,
    pollMs: 500,
    refreshMs: 3000,
    port: 0,
    password: PASSWORD,
    tiered: true,
    dispatchers: 3,
    frontends: 2,
    syncMs: 500,
    syncOutlierMs: 20,
    syncDeltaMs: 5,
    totalOrder: "on",
    increments: 0,
    heartbeatMs: 100,
    ...o,
  } as TieredOptions & CommonOptions;
}

/** Keep CONCURRENCY requests in flight for `ms`, round-robin over `targets`. */
async function load(c: Cluster, targets: string[], ms: number): Promise<{ latencies: number[]; errors: number; seconds: number }> {
  const latencies: number[] = [];
  let errors = 0;
  let n = 0;
  const t0 = c.now();
  const end = t0 + ms;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async (_, w) => {
      while (c.now() < end) {
        const i = n++;
        const target = targets[i % targets.length]!;
        const body =
          i % 2 === 0
            ? { type: "get_medal_tally", team: TEAMS[i % TEAMS.length]! }
            : { type: "increment_medal_tally", team: TEAMS[i % TEAMS.length]!, medal: MEDALS[i % MEDALS.length]!, password: PASSWORD, write_id: `bench-${w}-${i}` };
        const s = c.now();
        try {
          await c.request(target, body, 5000);
          latencies.push(c.now() - s);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, errors, seconds: (c.now() - t0) / 1000 };
}

async function measure(nodes: NodeSpec[], targets: string[], ms: number, warmMs: number): Promise<{ latencies: number[]; errors: number; seconds: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-tiered-"));
  const c = await startCluster({ system: "olympics", nodes, seed: 1, dataDir, fresh: true, logLevel: "error" });
  try {
    // Wait for a leader and for the front ends to be up (the tiered ones need the sequencer's group).
    await c.sleep(warmMs);
    await load(c, targets, Math.min(500, ms / 4));
    return await load(c, targets, ms);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

function row(topology: string, frontends: number | null, totalOrder: "on" | "off" | null, r: { latencies: number[]; errors: number; seconds: number }): LoadRow {
  return {
    topology,
    frontends,
    totalOrder,
    requests: r.latencies.length,
    errors: r.errors,
    throughputPerS: +(r.latencies.length / r.seconds).toFixed(1),
    p50Ms: +percentile(r.latencies, 50).toFixed(3),
    p99Ms: +percentile(r.latencies, 99).toFixed(3),
  };
}

async function loadRows(quick: boolean): Promise<LoadRow[]> {
  const ms = quick ? 1500 : 5000;
  const configs: Array<{ frontends: number; totalOrder: "on" | "off" }> = [];
  for (const frontends of quick ? [1, 2] : [1, 2, 4]) for (const totalOrder of ["off", "on"] as const) configs.push({ frontends, totalOrder });
  const bar = progress("tiered load", configs.length + 1);
  const rows: LoadRow[] = [];
  // The baseline: the single-server obelix, same load, same run.
  const single: NodeSpec[] = [{ id: "obelix", role: "obelix", config: { password: PASSWORD } }];
  rows.push(row("single obelix", null, null, await measure(single, ["obelix"], ms, 300)));
  bar.tick("single");
  for (const cfg of configs) {
    const o = options(cfg);
    const nodes = scenario.topology(o).filter((n) => n.id !== "cacofonix");
    const fes = nodes.filter((n) => n.role === "frontend").map((n) => n.id);
    rows.push(row("tiered", cfg.frontends, cfg.totalOrder, await measure(nodes, fes, ms, 1000)));
    bar.tick(`${cfg.frontends} fe, order ${cfg.totalOrder}`);
  }
  bar.done();
  return rows;
}

/** Each synced node's clock error against true time, sampled just before every sync round, in the simulator. */
async function clockRows(quick: boolean): Promise<{ rows: ClockRow[]; spread: Array<{ round: number; spreadMs: number }> }> {
  const rounds = quick ? 12 : 30;
  const o = options({ seed: 7, clockSkew: 50, clockDrift: 100, syncMs: 500 });
  const nodes = withClocks(
    scenario.topology(o).filter((n) => n.id !== "cacofonix"),
    o.seed,
    50,
    100,
  );
  const sim = new Simulation({ seed: o.seed, nodes, roles, network: { latencyMs: 1, distribution: "uniform" }, logLevel: "silent" });
  const synced = nodes.filter((n) => n.role !== "tiered-tablet").map((n) => n.id);
  return sim.run(async (c) => {
    const rows: ClockRow[] = [];
    const spread: Array<{ round: number; spreadMs: number }> = [];
    const t0 = c.now();
    // Four samples per round, so a jump and its correction both show; x is time in sync periods.
    for (let i = 0; i <= rounds * 4; i++) {
      const round = +((c.now() - t0) / o.syncMs).toFixed(2);
      const info = await c.info();
      const errs = info.filter((n) => synced.includes(n.id) && n.stats).map((n) => ({ node: n.id, errorMs: +n.stats!.clockErrorMs.toFixed(3) }));
      for (const e of errs) rows.push({ round, ...e });
      spread.push({ round, spreadMs: +(Math.max(...errs.map((e) => e.errorMs)) - Math.min(...errs.map((e) => e.errorMs))).toFixed(3) });
      // Half-way, the db's clock jumps by 40 ms: the next round pulls it back.
      if (i === rounds * 2 + 1) await c.request("db", { type: CLOCK_JUMP, deltaMs: 40 });
      await c.sleep(o.syncMs / 4);
    }
    const leaders = (await Promise.all(["dispatcher-1", "dispatcher-2", "dispatcher-3"].map((d) => c.inspect<DispatcherState>(d)))).filter((d) => d?.isLeader);
    console.log(`\n${Math.max(...leaders.map((d) => d!.syncRounds))} sync rounds run`);
    return { rows, spread };
  });
}

export const bench: Bench = {
  name: "tiered",
  description: "tiered olympics: latency and throughput with 1, 2, 4 front ends and total ordering on/off (single obelix as baseline); clock error per node over Berkeley rounds",
  async run(opts: BenchOptions) {
    const load = await loadRows(opts.quick);
    console.log("\nrequests (half reads, half increments), " + CONCURRENCY + " in flight from the driver:");
    printTable(load as unknown as Array<Record<string, unknown>>);
    const clock = await clockRows(opts.quick);
    console.log("\nlargest clock difference among synced nodes, every sync period, and every sample at or above 5 ms (simulator; ±50 ms skew, ±100 ppm drift, db jumps +40 ms half-way):");
    printTable(clock.spread.filter((_, i) => i % 4 === 0 || (clock.spread[i]!.spreadMs >= 5)));
    const files = [join(opts.resultsDir, "tiered-clock-error.svg"), join(opts.resultsDir, "tiered-load.svg")];
    await writeSvg(files[0]!, lineChart({ title: "Clock error against true time, per node, over Berkeley rounds", rows: clock.rows as unknown as Array<Record<string, unknown>>, x: "round", y: "errorMs", series: "node", xTitle: "time (sync periods of 500 ms)", yTitle: "clock − true time (ms)" }));
    await writeSvg(
      files[1]!,
      lineChart({
        title: "Tiered olympics: p50 latency against front ends",
        rows: load.filter((r) => r.frontends !== null).map((r) => ({ ...r, series: `total order ${r.totalOrder}` })),
        x: "frontends",
        y: "p50Ms",
        series: "series",
        xTitle: "front ends",
        yTitle: "p50 latency (ms)",
      }),
    );
    console.log(`plots: ${files.join(", ")}`);
    if (opts.json) {
      writeJson(opts.json, { load, clock: clock.rows, spread: clock.spread });
      console.log(`json: ${opts.json}`);
    }
    return { load, clock };
  },
};
