import type { Cluster } from "./cluster.ts";
import { Nemesis, type NemesisEvent } from "./nemesis.ts";
import type { Check, ClientSpec, CommonOptions, RunResult, Scenario } from "./scenario.ts";
import type { NodeId, NodeSpec } from "../workers/runtime/types.ts";
import { checkLinearizable, type CheckResult } from "../history/linearizable.ts";
import { describeOp, type History } from "../history/op.ts";
import type { TotalOrderResult } from "../history/total-order.ts";

/**
 * How far the runner's linearizability check may search before it says `unknown`: a number of
 * search steps (about 10 s on a quiet 2-core machine), so a run's verdict does not depend on how
 * busy the machine was; the wall-clock bound is only a safety net.
 */
const HISTORY_BUDGET_STEPS = 10_000_000;
const HISTORY_BUDGET_MS = 120_000;

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
 * Runs a simulation and collects the errors that escaped it: rejections nobody handled, such as an
 * assertion failing in a node's promise callback. On threads that ends the node's worker; in the
 * simulator every node shares this process, which would only print it, so a seed could pass with
 * an assertion failed in the middle of it.
 */
export async function escapedErrors<T>(run: () => Promise<T>): Promise<{ value: T; errors: string[] }> {
  const errors: string[] = [];
  const onEscape = (e: unknown): void => {
    errors.push(e instanceof Error ? e.message : String(e));
  };
  process.on("unhandledRejection", onEscape);
  try {
    const value = await run();
    // A rejection counts as unhandled only once the microtasks of its turn have run: wait one turn.
    await new Promise((resolve) => setTimeout(resolve, 0));
    return { value, errors };
  } finally {
    process.off("unhandledRejection", onEscape);
  }
}

/** The summary with a check that no error escaped: a run that had one fails, whatever else it checked. */
export function withEscapedCheck(s: Summary, errors: string[]): Summary {
  const name = "no error escaped node code";
  const checks = { ...s.checks, [name]: errors.length === 0 };
  const details = errors.length === 0 ? s.details : { ...s.details, [name]: `${errors.length} unhandled, first: ${errors[0]!.slice(0, 300)}` };
  return { ...s, ok: s.ok && errors.length === 0, checks, details };
}

/** The longest final window: a client slower than this is reported as not checked rather than holding up every run. */
export const FINAL_WINDOW_MAX_MS = 15_000;

/** A client's count of completed operations, or null if it is down or reports none. */
async function completed(cluster: Cluster, id: NodeId): Promise<number | null> {
  const s = await cluster.inspect<{ completed?: unknown }>(id).catch(() => null);
  return s && typeof s.completed === "number" ? s.completed : null;
}

/** Completed counts of many clients, a few at a time (a thousand one by one would outlast the window). */
async function completedOf(cluster: Cluster, clients: ClientSpec[]): Promise<Map<NodeId, number | null>> {
  const out = new Map<NodeId, number | null>();
  for (let i = 0; i < clients.length; i += 50) {
    const batch = clients.slice(i, i + 50);
    const counts = await Promise.all(batch.map((c) => completed(cluster, c.id)));
    batch.forEach((c, k) => out.set(c.id, counts[k]!));
  }
  return out;
}

/**
 * The final window: with every fault healed, each client must complete at least one more operation
 * within its `withinMs` (Jepsen's final phase). Ends as soon as every client has.
 */
async function finalWindow(cluster: Cluster, clients: ClientSpec[]): Promise<Check> {
  const due = clients.filter((c) => c.withinMs <= FINAL_WINDOW_MAX_MS);
  const slow = clients.filter((c) => c.withinMs > FINAL_WINDOW_MAX_MS).map((c) => `${c.id} (may idle ${c.withinMs} ms)`);
  const windowMs = Math.max(0, ...due.map((c) => c.withinMs));
  const before = await completedOf(cluster, due);
  const after = new Map<NodeId, number | null>();
  // Down at the start (an operator crashed it) and back later: any completed operation counts.
  const grew = (c: ClientSpec) => {
    const b = before.get(c.id);
    const a = after.get(c.id);
    return a !== null && a !== undefined && a > (b ?? 0);
  };
  const t0 = cluster.now();
  const step = Math.min(250, Math.max(20, windowMs / 20));
  let failed = due;
  while (failed.length > 0 && cluster.now() - t0 < windowMs) {
    await cluster.sleep(Math.min(step, windowMs - (cluster.now() - t0)));
    for (const [id, n] of await completedOf(cluster, failed)) after.set(id, n);
    failed = failed.filter((c) => !grew(c));
  }
  const parts = [
    failed.length === 0 ? `${due.length}/${due.length} clients completed an operation within ${Math.round(cluster.now() - t0)} ms (allowed ${windowMs})` : `no progress: ${failed.map((c) => `${c.id} (${after.get(c.id) == null ? "down, or shows no completed count" : `completed ${before.get(c.id) ?? "none"} -> ${after.get(c.id)}`})`).join(", ")}`,
  ];
  if (slow.length > 0) parts.push(`not checked, idle longer than the ${FINAL_WINDOW_MAX_MS} ms window: ${slow.join(", ")}`);
  return { ok: failed.length === 0, detail: parts.join("; ") };
}

/** Every node but those the scenario excludes (by id or role, with a reason). */
export function nemesisTargets(scenario: Scenario<any>, nodes: readonly NodeSpec[]): NodeId[] {
  const ex = scenario.nemesisExcludes ?? {};
  for (const [k, why] of Object.entries(ex)) if (typeof why !== "string" || why.trim() === "") throw new Error(`assertion failed: nemesis exclusion of ${k} gives no reason`);
  return nodes.filter((n) => !Object.hasOwn(ex, n.id) && !Object.hasOwn(ex, n.role)).map((n) => n.id);
}

/** One line per exclusion, for `--help`; empty when the nemesis may touch every node. */
export function describeNemesisExcludes(scenario: Scenario<any>): string {
  return Object.entries(scenario.nemesisExcludes ?? {})
    .map(([k, why]) => `${k} (${why})`)
    .join("; ");
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
 * heals every fault, watches the clients make progress for a final window, then lets the scenario
 * check, and checks that every node is up. The same code runs on threads and in the simulator.
 */
export async function runScenario<O extends Record<string, unknown>>(
  cluster: Cluster,
  scenario: Scenario<O>,
  opts: O & CommonOptions,
  stop: Promise<void> = new Promise(() => {}),
  onHistory?: (h: HistoryOutcome) => void,
): Promise<Summary> {
  const targets = nemesisTargets(scenario, cluster.nodes);
  const nemesis = new Nemesis(cluster, opts.nemesis, targets, opts.nemesisInterval * 1000, opts.clockSkew ?? 0);
  const clients = scenario.clients?.(opts) ?? [];
  let progress: Check | null = null;
  let stopping = false;
  // The network the run was started with (--loss, --latency ...): what "healed" means at the end.
  const startNet = structuredClone(cluster.network());
  const stopped = (async () => {
    await Promise.race([Number.isFinite(opts.duration) ? cluster.sleep(opts.duration * 1000) : new Promise<void>(() => {}), stop]);
    stopping = true;
    await nemesis.stop();
    // Pauses, partitions and network changes, whoever made them (an operator on the dashboard
    // setting 20% loss, say), are healed before the checks: the final window's allowance assumes
    // the network the run started with. A node crashed by someone else is not restarted:
    // "every node is up at the end" must see it.
    for (const { id } of cluster.nodes) {
      const s = cluster.status(id);
      if (s === "paused") await cluster.resume(id);
    }
    const now = cluster.network();
    if (now.partitions.length > 0 || JSON.stringify([now.defaults, now.links]) !== JSON.stringify([startNet.defaults, startNet.links])) {
      await cluster.setNetwork({ ...startNet.defaults, links: startNet.links, partitions: [] });
    }
    if (clients.length > 0) progress = await finalWindow(cluster, clients);
  })();
  nemesis.start();
  let result: RunResult;
  try {
    result = await scenario.run(cluster, opts, { untilStopped: () => stopped, stopping: () => stopping });
  } catch (e) {
    await nemesis.stop().catch(() => {});
    result = { checks: { "workload ran": { ok: false, detail: e instanceof Error ? e.stack ?? e.message : String(e) } } };
  }
  // Every node is expected up at the end: one left crashed (say, by an operator) fails the run.
  const down = cluster.nodes.map((n) => [n.id, cluster.status(n.id)] as const).filter(([, st]) => st !== "running");
  result.checks["every node is up at the end"] = {
    ok: down.length === 0,
    detail: down.length === 0 ? `${cluster.nodes.length}/${cluster.nodes.length} running` : `not running: ${down.map(([id, st]) => `${id} (${st})`).join(", ")}`,
  };
  if (progress) result.checks["every client made progress after the faults healed"] = progress;
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
  return { ops, truncated, check: checkLinearizable(ops, scenario.historyModel(opts), { maxSteps: HISTORY_BUDGET_STEPS, budgetMs: HISTORY_BUDGET_MS }) };
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
