/**
 * Simulator speed: simulated seconds per wall second and delivered messages per wall second for the
 * echo system with 10 nodes, against the wall time of the same workload on worker threads, measured
 * in the same run.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScenario } from "../src/driver/run.ts";
import { percentile } from "../src/driver/stats.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { roles } from "../src/workers/echo/roles.ts";
import { scenario } from "../src/workers/echo/scenario.ts";
import { printTable, progress, writeJson, type Bench } from "./lib/harness.ts";

export const bench: Bench = {
  name: "sim",
  description: "deterministic simulator vs worker threads on the same echo workload (10 nodes)",
  async run(o) {
    const duration = o.quick ? 5 : 20;
    const rounds = o.quick ? 1 : 3;
    const opts = { clients: 9, intervalMs: 1, seed: 1, duration, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent" };
    const sims: Array<{ simSeconds: number; wall: number; delivered: number }> = [];
    const threads: Array<{ wall: number; delivered: number }> = [];
    const bar = progress("sim", rounds * 2);
    const dir = mkdtempSync(join(tmpdir(), "menhir-bench-sim-"));
    try {
      for (let r = 0; r < rounds; r++) {
        const sim = new Simulation({ seed: r + 1, nodes: scenario.topology(opts), roles, network: { latencyMs: 0.1 }, logLevel: "silent" });
        const t0 = performance.now();
        const s = await sim.run((c) => runScenario(c, scenario, { ...opts, seed: r + 1 }));
        const wall = (performance.now() - t0) / 1000;
        if (!s.ok) throw new Error(`simulated run failed its checks: ${JSON.stringify(s.details)}`);
        const st = sim.stats();
        sims.push({ simSeconds: st.simSeconds, wall, delivered: st.delivered });
        bar.tick("sim");

        const cluster = new ThreadCluster({ system: "echo", nodes: scenario.topology(opts), seed: r + 1, dataDir: join(dir, String(r)), fresh: true, network: { latencyMs: 0.1 }, logLevel: "silent" });
        const t1 = performance.now();
        await cluster.start();
        const ts = await runScenario(cluster, scenario, { ...opts, seed: r + 1 });
        const info = await cluster.info();
        await cluster.stop();
        threads.push({ wall: (performance.now() - t1) / 1000, delivered: info.reduce((a, n) => a + (n.stats?.received ?? 0), 0) });
        if (!ts.ok) throw new Error(`threaded run failed its checks: ${JSON.stringify(ts.details)}`);
        bar.tick("threads");
      }
    } finally {
      bar.done();
      rmSync(dir, { recursive: true, force: true });
    }
    const med = (xs: number[]) => percentile(xs, 50);
    const result = {
      simSecondsPerWallSecond: med(sims.map((s) => s.simSeconds / s.wall)),
      simDeliveredPerWallSecond: med(sims.map((s) => s.delivered / s.wall)),
      simWallSeconds: med(sims.map((s) => s.wall)),
      threadsWallSeconds: med(threads.map((t) => t.wall)),
      threadsDeliveredPerWallSecond: med(threads.map((t) => t.delivered / t.wall)),
      workloadSeconds: duration,
      nodes: 10,
      rounds,
    };
    printTable([
      { mode: "sim", "wall s": result.simWallSeconds, "sim s / wall s": result.simSecondsPerWallSecond, "delivered / wall s": Math.round(result.simDeliveredPerWallSecond) },
      { mode: "threads", "wall s": result.threadsWallSeconds, "sim s / wall s": null, "delivered / wall s": Math.round(result.threadsDeliveredPerWallSecond) },
    ]);
    console.log(`same workload (echo, 9 clients, ${duration} s of cluster time, 0.1 ms latency); medians of ${rounds} rounds; simulator ${(result.threadsWallSeconds / result.simWallSeconds).toFixed(1)}x faster in wall time`);
    if (o.json) writeJson(o.json, result);
    return result;
  },
};
