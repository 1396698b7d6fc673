import type { Cluster } from "./cluster.ts";
import { Nemesis, type NemesisEvent } from "./nemesis.ts";
import type { CommonOptions, RunResult, Scenario } from "./scenario.ts";
import { checkLinearizable, type CheckResult } from "../history/linearizable.ts";
import { describeOp, type History } from "../history/op.ts";
import type { TotalOrderResult } from "../history/total-order.ts";

/** How long the runner's linearizability check may search before it says `unknown`. */
const HISTORY_BUDGET_MS = 10_000;

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

/** The clients' history of a run and the checker's verdict on it (kept out of the JSON summary). */
export interface HistoryOutcome {
  ops: History;
  truncated: boolean;
  check?: CheckResult;
  /** The scenario's own total-order verdict (paxos), when it has one. */
  totalOrder?: TotalOrderResult;
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
  onHistory?: (h: HistoryOutcome) => void,
): Promise<Summary> {
  const targets = scenario.nemesisTargets?.(opts) ?? cluster.nodes.map((n) => n.id);
  const nemesis = new Nemesis(cluster, opts.nemesis, targets, opts.nemesisInterval * 1000);
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
  const outcome = historyOutcome(cluster, scenario, opts);
  if (outcome?.check) result.checks.linearizable = linearizableCheck(outcome);
  onHistory?.({ ...(outcome ?? { ops: [], truncated: false }), totalOrder: result.totalOrder });
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

function historyOutcome<O extends Record<string, unknown>>(cluster: Cluster, scenario: Scenario<O>, opts: O & CommonOptions): HistoryOutcome | null {
  if (!cluster.history) return null;
  const ops = cluster.history.history();
  const truncated = cluster.history.truncated;
  if (!scenario.historyModel) return { ops, truncated };
  return { ops, truncated, check: checkLinearizable(ops, scenario.historyModel(opts), { budgetMs: HISTORY_BUDGET_MS }) };
}

function linearizableCheck(h: HistoryOutcome): { ok: boolean; detail: string } {
  const c = h.check!;
  const size = `${c.ops} operations, ${c.partitions} keys, ${c.elapsedMs.toFixed(0)} ms`;
  if (h.truncated) return { ok: false, detail: `unknown: the history was truncated (${size})` };
  // An empty history is vacuously linearizable (a run with no clients); the detail says so.
  if (c.verdict === "linearizable") return { ok: true, detail: c.ops > 0 ? size : "no operations recorded" };
  if (c.verdict === "unknown") return { ok: false, detail: `unknown: search budget ran out on ${c.unknown.join(", ")} (${size})` };
  const f = c.failures[0]!;
  return { ok: false, detail: `key ${f.key || "(all)"}: ${describeOp(f.stuck)} cannot be linearized after ${f.linearized.length} operations (state before: ${f.stateBefore}); ${c.failures.length} key(s) fail (${size})` };
}

export function formatSummary(s: Summary): string {
  const lines = [`== ${s.system} (${s.mode}, seed ${s.seed}): ${s.ok ? "all checks passed" : "CHECKS FAILED"}`];
  for (const [name, ok] of Object.entries(s.checks)) lines.push(`  ${ok ? "ok  " : "FAIL"} ${name}${s.details[name] ? ` — ${s.details[name]}` : ""}`);
  if (s.nemesis.length > 0) lines.push(`  nemesis: ${s.nemesis.filter((e) => e.action === "inject").length} faults injected, all healed`);
  for (const [k, v] of Object.entries(s.metrics)) lines.push(`  ${k}: ${typeof v === "number" ? +v.toFixed(3) : JSON.stringify(v)}`);
  return lines.join("\n");
}
