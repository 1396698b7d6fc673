import type { Cluster } from "./cluster.ts";
import { Nemesis, type NemesisEvent } from "./nemesis.ts";
import type { CommonOptions, RunResult, Scenario } from "./scenario.ts";

export interface Summary {
  system: string;
  mode: "threads" | "sim";
  seed: number;
  ok: boolean;
  checks: Record<string, boolean>;
  details: Record<string, string>;
  metrics: Record<string, unknown>;
  nemesis: NemesisEvent[];
}

/**
 * Runs a scenario's workload on a cluster: starts the nemesis, waits for the duration (or `stop`),
 * heals every fault, then lets the scenario check. The same code runs on threads and in the simulator.
 */
export async function runScenario<O extends Record<string, unknown>>(
  cluster: Cluster,
  scenario: Scenario<O>,
  opts: O & CommonOptions,
  stop: Promise<void> = new Promise(() => {}),
): Promise<Summary> {
  const targets = scenario.nemesisTargets?.(opts) ?? cluster.nodes.map((n) => n.id);
  const nemesis = new Nemesis(cluster, opts.nemesis, targets, opts.nemesisInterval * 1000, opts.clockSkew ?? 0);
  let stopping = false;
  const stopped = (async () => {
    await Promise.race([Number.isFinite(opts.duration) ? cluster.sleep(opts.duration * 1000) : new Promise<void>(() => {}), stop]);
    stopping = true;
    await nemesis.stop();
    // Whatever a scenario or an operator left broken is healed before the checks.
    for (const id of targets) {
      const s = cluster.status(id);
      if (s === "paused") await cluster.resume(id);
    }
    if (cluster.network().partitions.length > 0) await cluster.setNetwork({ partitions: [] });
  })();
  nemesis.start();
  let result: RunResult;
  try {
    result = await scenario.run(cluster, opts, { untilStopped: () => stopped, stopping: () => stopping });
  } catch (e) {
    await nemesis.stop().catch(() => {});
    result = { checks: { "workload ran": { ok: false, detail: e instanceof Error ? e.stack ?? e.message : String(e) } } };
  }
  const checks: Record<string, boolean> = {};
  const details: Record<string, string> = {};
  for (const [name, c] of Object.entries(result.checks)) {
    checks[name] = c.ok;
    if (c.detail) details[name] = c.detail;
  }
  return {
    system: scenario.name,
    mode: cluster.mode,
    seed: cluster.seed,
    ok: Object.values(checks).every(Boolean) && Object.keys(checks).length > 0,
    checks,
    details,
    metrics: result.metrics ?? {},
    nemesis: nemesis.events,
  };
}

export function formatSummary(s: Summary): string {
  const lines = [`== ${s.system} (${s.mode}, seed ${s.seed}): ${s.ok ? "all checks passed" : "CHECKS FAILED"}`];
  for (const [name, ok] of Object.entries(s.checks)) lines.push(`  ${ok ? "ok  " : "FAIL"} ${name}${s.details[name] ? ` — ${s.details[name]}` : ""}`);
  if (s.nemesis.length > 0) lines.push(`  nemesis: ${s.nemesis.filter((e) => e.action === "inject").length} faults injected, all healed`);
  for (const [k, v] of Object.entries(s.metrics)) lines.push(`  ${k}: ${typeof v === "number" ? +v.toFixed(3) : JSON.stringify(v)}`);
  return lines.join("\n");
}
