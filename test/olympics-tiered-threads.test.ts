import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runScenario } from "../src/driver/run.ts";
import type { CommonOptions } from "../src/driver/scenario.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { withClocks } from "../src/workers/runtime/clock.ts";
import { scenario } from "../src/workers/olympics/scenario.ts";
import type { TieredOptions } from "../src/workers/olympics/tiered-scenario.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("tiered olympics on worker threads", () => {
  test("skewed, drifting clocks, kill and clock faults: every check passes on real time and real threads", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "menhir-tiered-"));
    dirs.push(dataDir);
    const o = {
      seed: 5,
      duration: 6,
      latency: 0,
      loss: 0,
      dup: 0,
      nemesis: ["kill", "clock"],
      nemesisInterval: 1.5,
      logLevel: "silent",
      clockSkew: 40,
      clockDrift: 100,
      pull: 2,
      push: 2,
      mode: "random",
      rate: 200,
      pollMs: 200,
      refreshMs: 1000,
      port: 0,
      password: "threads-password",
      tiered: true,
      dispatchers: 3,
      frontends: 2,
      syncMs: 300,
      syncOutlierMs: 20,
      syncDeltaMs: 5,
      totalOrder: "on",
      increments: 300,
      heartbeatMs: 100,
    } as TieredOptions & CommonOptions;
    const nodes = withClocks(scenario.topology(o), o.seed, o.clockSkew!, o.clockDrift!);
    const c = await startCluster({ system: "olympics", nodes, seed: o.seed, dataDir, logLevel: "silent", threads: 2 });
    try {
      const s = await runScenario(c, scenario, o);
      const failing = Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`);
      expect(failing).toEqual([]);
      expect(Object.keys(s.checks).length).toBeGreaterThanOrEqual(7);
    } finally {
      await c.stop();
    }
  }, 60_000);

  test("a second run over the same data dir, whose tablets want other things (another seed), passes every check: front ends forget the earlier run's subscriptions", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "menhir-tiered-"));
    dirs.push(dataDir);
    for (const seed of [1, 2]) {
      const o = {
        seed, duration: 2, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent",
        pull: 1, push: 3, mode: "random", rate: 100, pollMs: 200, refreshMs: 1000, port: 0, password: "threads-password",
        tiered: true, dispatchers: 1, frontends: 3, syncMs: 300, syncOutlierMs: 20, syncDeltaMs: 5, totalOrder: "on", increments: 100, heartbeatMs: 100,
      } as TieredOptions & CommonOptions;
      const c = await startCluster({ system: "olympics", nodes: scenario.topology(o), seed, dataDir, fresh: seed === 1, logLevel: "silent", threads: 2 });
      try {
        const s = await runScenario(c, scenario, o);
        expect({ seed, failing: Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`) }).toEqual({ seed, failing: [] });
      } finally {
        await c.stop();
      }
    }
  }, 60_000);
});
