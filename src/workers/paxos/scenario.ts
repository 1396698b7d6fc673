import type { Cluster } from "../../driver/cluster.ts";
import { MAX_NODES, type Check, type CommonOptions, type RunControl, type RunResult, type Scenario } from "../../driver/scenario.ts";
import { percentile } from "../../driver/stats.ts";
import { checkTotalOrder, type TotalOrderResult } from "../../history/total-order.ts";
import type { NodeSpec, StorageMode } from "../runtime/types.ts";
import { replay } from "./chat.ts";
import {
  DEFAULT_REPLICA_CONFIG,
  PaxosLimits,
  parseSlotList,
  type ClientSnapshot,
  type LogReadOk,
  type PaxosClientConfig,
  type PaxosReplicaConfig,
  type ReplicaSnapshot,
  type Value,
} from "./messages.ts";

export interface PaxosOptions extends Record<string, unknown> {
  f: number;
  clients: number;
  pipeline: number;
  clientBatch: number;
  skipSlots: string | number | undefined;
  memory: boolean;
  fsync: boolean;
  window: number;
  batch: number;
  intervalMs: number;
  tickMs: number;
  electionMs: number;
  clientTimeoutMs: number;
}

type Opts = PaxosOptions & Partial<CommonOptions>;

const num = (v: unknown, d: number): number => {
  const n = Number(v);
  return v === undefined || v === null || v === "" || !Number.isFinite(n) ? d : n;
};

export function replicaIds(f: number): string[] {
  return Array.from({ length: 2 * f + 1 }, (_, i) => `replica-${i}`);
}

export function paxosTopology(o: Partial<Opts>): NodeSpec[] {
  const f = num(o.f, 1);
  if (!Number.isInteger(f) || f < 0 || f > 7) throw new Error(`--f must be an integer from 0 to 7, got ${o.f}`);
  const replicas = replicaIds(f);
  const storage: StorageMode = o.memory ? "memory" : o.fsync ? "fsync" : "os";
  const tickMs = num(o.tickMs, DEFAULT_REPLICA_CONFIG.tickMs);
  const electionMs = num(o.electionMs, DEFAULT_REPLICA_CONFIG.electionTicks * DEFAULT_REPLICA_CONFIG.tickMs);
  const electionTicks = Math.max(3, Math.round(electionMs / tickMs));
  const rc: PaxosReplicaConfig = {
    ...DEFAULT_REPLICA_CONFIG,
    replicas,
    window: num(o.window, DEFAULT_REPLICA_CONFIG.window),
    maxBatch: num(o.batch, DEFAULT_REPLICA_CONFIG.maxBatch),
    tickMs,
    electionTicks,
    heartbeatTicks: Math.max(1, Math.floor(electionTicks / 6)),
    resendTicks: Math.max(1, Math.floor(electionTicks / 3)),
    skipSlots: parseSlotList(o.skipSlots),
    storageMode: storage,
  };
  const nodes: NodeSpec[] = replicas.map((id) => ({ id, role: "replica", config: rc, storage }));
  const clients = num(o.clients, 4);
  for (let i = 1; i <= clients; i++) {
    const cc: PaxosClientConfig = {
      replicas,
      timeoutMs: num(o.clientTimeoutMs, 100),
      pipeline: num(o.pipeline, 1),
      batch: num(o.clientBatch, 1),
      intervalMs: num(o.intervalMs, 1),
      textChars: 24,
      recordAcked: true,
    };
    nodes.push({ id: `client-${i}`, role: "client", config: cc });
  }
  return nodes;
}

interface Failover {
  leader: string;
  at: number;
  commit: number;
  ms?: number;
}

/** Watches replicas' snapshots: leader kills (crash or pause of the current leader) and when progress resumes. */
class Monitor {
  leader: string | null = null;
  maxCommit = 0;
  lastProgress: number;
  maxStallMs = 0;
  leaderChanges = 0;
  readonly failovers: Failover[] = [];
  private pendingKill: Failover | null = null;
  private stop = false;
  private done: Promise<void> | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly replicas: string[],
    private readonly everyMs: number,
  ) {
    this.lastProgress = cluster.now();
  }

  start(): void {
    this.done = (async () => {
      while (!this.stop) {
        await this.poll();
        await this.cluster.sleep(this.everyMs);
      }
    })();
  }
  async halt(): Promise<void> {
    this.stop = true;
    await this.done;
  }
  get pending(): boolean {
    return this.pendingKill !== null;
  }

  async poll(): Promise<void> {
    const now = this.cluster.now();
    let best: ReplicaSnapshot | null = null;
    let maxCommit = this.maxCommit;
    for (const id of this.replicas) {
      if (this.cluster.status(id) !== "running") continue;
      const s = await this.cluster.inspect<ReplicaSnapshot>(id).catch(() => null);
      if (!s) continue;
      maxCommit = Math.max(maxCommit, s.commit);
      if (s.role === "leader" && (!best || s.ballot > best.ballot)) best = s;
    }
    if (this.leader && !this.pendingKill && this.cluster.status(this.leader) !== "running") {
      this.pendingKill = { leader: this.leader, at: now, commit: maxCommit };
    }
    if (maxCommit > this.maxCommit) {
      this.maxStallMs = Math.max(this.maxStallMs, now - this.lastProgress);
      this.lastProgress = now;
      this.maxCommit = maxCommit;
    }
    if (best && best.id !== this.leader) {
      if (this.leader !== null) this.leaderChanges++;
      this.leader = best.id;
    }
    const k = this.pendingKill;
    if (k && best && maxCommit > k.commit) {
      k.ms = now - k.at;
      this.failovers.push(k);
      this.pendingKill = null;
    }
  }
}

async function readLog(cluster: Cluster, id: string, upTo: number): Promise<Array<[number, Value]>> {
  const out: Array<[number, Value]> = [];
  let from = 1;
  while (from <= upTo) {
    const r = await cluster.request<LogReadOk>(id, { type: "log_read", from, limit: 1024 }, 5000);
    if (r.entries.length === 0) break;
    for (const e of r.entries) out.push(e);
    from = r.entries[r.entries.length - 1]![0] + 1;
  }
  return out;
}

async function snapshots(cluster: Cluster, ids: string[]): Promise<Array<ReplicaSnapshot | null>> {
  return Promise.all(ids.map((id) => (cluster.status(id) === "running" ? cluster.inspect<ReplicaSnapshot>(id).catch(() => null) : Promise.resolve(null))));
}

/**
 * The workload and the checks, shared by the CLI and the tests: clients chat while faults happen;
 * then (after the nemesis healed) clients stop, the cluster goes quiet, and every replica's whole
 * executed log is compared (all of it, after the quiet period), read back and replayed.
 */
export async function runPaxos(cluster: Cluster, o: Opts, control: RunControl, extra?: { quietTimeoutMs?: number }): Promise<RunResult> {
  const replicas = cluster.nodes.filter((n) => n.role === "replica").map((n) => n.id);
  const clients = cluster.nodes.filter((n) => n.role === "client").map((n) => n.id);
  const skip = parseSlotList(o.skipSlots);
  const memory = cluster.nodes.some((n) => n.role === "replica" && n.storage === "memory");
  const t0 = cluster.now();
  const monitor = new Monitor(cluster, replicas, 20);
  monitor.start();
  // Faults are healed when this resolves; a replica still down (an operator crashed it) fails the checks.
  await control.untilStopped();
  // Let a failover still under way finish (clients keep running).
  for (let waited = 0; monitor.pending && waited < 10_000; waited += 50) await cluster.sleep(50);
  await monitor.halt();
  const workloadMs = cluster.now() - t0;
  for (const c of clients) await cluster.request(c, { type: "client_stop" }, 5000).catch(() => undefined);
  // Quiet period: wait for every replica to reach the same commit index.
  const quietLimit = extra?.quietTimeoutMs ?? 15_000;
  let snaps: Array<ReplicaSnapshot | null> = [];
  let stable = 0;
  let lastMax = -1;
  for (let waited = 0; waited <= quietLimit; waited += 100) {
    await cluster.sleep(100);
    snaps = await snapshots(cluster, replicas);
    const commits = snaps.map((s) => (s ? s.commit : -1));
    const max = Math.max(...commits);
    const allEqual = commits.every((c) => c === max);
    stable = allEqual && max === lastMax ? stable + 1 : 0;
    lastMax = max;
    if (stable >= 3) break;
  }
  const live = snaps.filter((s): s is ReplicaSnapshot => s !== null);
  const maxCommit = Math.max(0, ...live.map((s) => s.commit));
  const source = live.find((s) => s.commit === maxCommit);
  const log = source ? await readLog(cluster, source.id, maxCommit) : [];
  // Slots up to where any replica's log stood when this run began may hold an earlier run's messages.
  const runStart = Math.max(0, ...live.map((s) => s.runStart ?? 0));
  const { log: replayed, executed, atMark: prior } = replay(log, runStart);

  const cs = (await Promise.all(clients.map((c) => cluster.inspect<ClientSnapshot>(c).catch(() => null)))).filter((s): s is ClientSnapshot => s !== null);
  const acked = cs.reduce((a, s) => a + s.acked, 0);
  const sent = cs.reduce((a, s) => a + s.sent, 0);
  const lat = cs.flatMap((s) => s.latenciesMs);

  const count = new Map<string, number>();
  for (const op of executed) count.set(op.id, (count.get(op.id) ?? 0) + 1);
  const twice = [...count.values()].filter((n) => n > 1).length;
  let missing = 0;
  let ackedRecorded = 0;
  for (const s of cs)
    for (const id of s.ackedIds) {
      ackedRecorded++;
      if (!count.has(id)) missing++;
    }

  const hashes = Object.fromEntries(snaps.map((s, i) => [replicas[i]!, s ? `${s.hash}@${s.commit}` : "down"]));
  const identical = live.length === replicas.length && live.every((s) => s.commit === maxCommit && s.hash === live[0]!.hash) && replayed.hash === live[0]?.hash;
  const checks: Record<string, Check> = {
    "executed logs identical (whole log, after a quiet period)": {
      ok: identical,
      detail: Object.entries(hashes)
        .map(([k, v]) => `${k}=${v}`)
        .join(" ") + ` read-back=${replayed.hash}@${replayed.applied}`,
    },
    "every acknowledged message executed exactly once": {
      ok: twice === 0 && missing === 0 && ackedRecorded === acked,
      detail: `${acked} acknowledged, ${missing} missing from the log, ${twice} executed twice; ${executed.length} executed, ${replayed.dupsSkipped} retried duplicates skipped`,
    },
    "progress made": { ok: acked > 0 && maxCommit > 0, detail: `${acked} of ${sent} messages acknowledged, ${maxCommit} slots` },
  };
  let to: TotalOrderResult | undefined;
  if (cluster.history) {
    // Judged from what clients saw: the executed log against every client's sends. The log names a
    // client's session (`<node>#<boot>`, a new one per restart); the history names the node.
    to = checkTotalOrder(cluster.history.history(), executed.map((op) => ({ id: op.id, process: op.c.replace(/#\d+$/, "") })), { prior });
    const counts = Object.entries(to.counts).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
    checks["total order"] = {
      ok: to.ok && !cluster.history.truncated && to.acked > 0,
      detail: `${to.acked} acknowledged sends, ${to.logged} in the log${prior > 0 ? ` (after ${prior} messages an earlier run logged)` : ""}${cluster.history.truncated ? "; history truncated" : ""}${counts.length ? `; ${counts.join(", ")}: ${to.problems.slice(0, 3).join("; ")}` : ""}`,
    };
  }
  if (skip.length > 0) {
    const bad = skip.filter((s) => !(s <= log.length && log[s - 1]![1] === null));
    checks["every skipped slot holds a no-op"] = { ok: bad.length === 0, detail: `slots ${skip.join(",")}: ${bad.length === 0 ? "all no-ops" : `not no-ops: ${bad.join(",")}`}` };
  }
  const fo = monitor.failovers.map((f) => f.ms!);
  const kills = (o.nemesis ?? []).some((k) => k === "kill" || k === "pause");
  if (kills || fo.length > 0) {
    checks["progress resumed after each leader kill"] = {
      ok: !monitor.pending,
      detail: fo.length === 0 ? (monitor.pending ? "a leader kill was never followed by progress" : "the leader was never killed") : `${fo.length} leader kills, failover ms: ${fo.map((x) => Math.round(x)).join(", ")}${monitor.pending ? "; the last one never recovered" : ""}`,
    };
  }
  const learners = live.filter((s) => !s.voter).map((s) => s.id);
  const storage = memory
    ? `memory (NOT durable, benchmarks only: a restarted replica has lost its state and rejoins as a non-voting learner${learners.length ? `; learners now: ${learners.join(", ")}` : ""})`
    : (cluster.nodes.find((n) => n.role === "replica")?.storage ?? "os");
  return {
    checks,
    totalOrder: to,
    metrics: {
      storage,
      replicas: replicas.length,
      acknowledged: acked,
      sent,
      commitsPerSec: Math.round((acked / Math.max(1, workloadMs)) * 1000),
      slots: maxCommit,
      noops: replayed.noops,
      latencyP50Ms: percentile(lat, 50),
      latencyP99Ms: percentile(lat, 99),
      failoverMs: fo.map((x) => Math.round(x)),
      leaderChanges: monitor.leaderChanges,
      clientMaxGapMs: Math.round(Math.max(0, ...cs.map((c) => c.maxGapMs))),
      maxStallMs: Math.round(monitor.maxStallMs),
      elections: live.reduce((a, s) => a + s.elections, 0),
      badMessages: live.reduce((a, s) => a + s.badMessages, 0),
      hashes,
    },
  };
}

export const scenario: Scenario<PaxosOptions> = {
  name: "paxos",
  description: "Multi-Paxos replicated chat log: 2f+1 replicas, view change, no-op fill, loss, crash recovery",
  options: [
    { flags: "--f <n>", description: "Failures tolerated: 2f+1 replicas", default: 1, integer: true, max: 7 },
    { flags: "--clients <n>", description: "Chat clients", default: 4, integer: true, max: MAX_NODES - 15 },
    { flags: "--pipeline <k>", description: "Messages a client has outstanding at once (1: one after another)", default: 1, integer: true, min: 1, max: 1024 },
    { flags: "--client-batch <n>", description: "Messages per client request (1: one request per message)", default: 1, integer: true, min: 1, max: 1024 },
    { flags: "--skip-slots <list>", description: 'Slots the first leader leaves empty, e.g. "3,5" (the next leader fills them with no-ops)', default: "" },
    { flags: "--memory", description: "Keep acceptor state and the log in memory only (benchmarks; not crash safe)", default: false },
    { flags: "--fsync", description: "fsync every storage commit (survives power loss)", default: false },
    { flags: "--window <n>", description: "Slots the leader runs at once", default: DEFAULT_REPLICA_CONFIG.window, integer: true, min: 1, max: PaxosLimits.maxWindow },
    { flags: "--batch <n>", description: "Largest batch of messages in one slot (1: batching off)", default: DEFAULT_REPLICA_CONFIG.maxBatch, integer: true, min: 1, max: PaxosLimits.maxBatchOps },
    { flags: "--interval-ms <ms>", description: "Gap between a client's messages (0: back to back; not with --sim at zero latency, where virtual time would stand still)", default: 1, max: 3_600_000 },
    { flags: "--tick-ms <ms>", description: "Replica tick", default: DEFAULT_REPLICA_CONFIG.tickMs, min: 1, max: 60_000 },
    { flags: "--election-ms <ms>", description: "Election timeout (randomized up to twice this)", default: DEFAULT_REPLICA_CONFIG.electionTicks * DEFAULT_REPLICA_CONFIG.tickMs, min: 1, max: 3_600_000 },
    { flags: "--client-timeout-ms <ms>", description: "Client retry timeout", default: 100, min: 1, max: 3_600_000 },
  ],
  topology: (o) => paxosTopology(o),
  clients: (o) => {
    // After a heal a client may wait out an election (up to twice the timeout, a few times over) and time
    // out at each replica on the way. At least 1200 ms for the elections: a short election timeout does
    // not make a busy machine schedule the threads any sooner.
    const withinMs = Math.max(1200, 4 * num(o.electionMs, DEFAULT_REPLICA_CONFIG.electionTicks * DEFAULT_REPLICA_CONFIG.tickMs)) + (2 * num(o.f, 1) + 2) * num(o.clientTimeoutMs, 100) + num(o.intervalMs, 1) + 1000;
    return Array.from({ length: num(o.clients, 4) }, (_, i) => ({ id: `client-${i + 1}`, withinMs }));
  },
  run: (cluster, o, control) => runPaxos(cluster, o, control),
};
