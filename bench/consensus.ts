/**
 * `bun run bench consensus`: the Multi-Paxos chat log on worker threads. Committed messages per
 * second and commit latency (client-observed, p50/p99) for f in {1, 2}, batching on/off, loss 0/5%,
 * durable (sqlite, synchronous=NORMAL: survives a process crash) and memory, each as a ratio to raw
 * MessageChannel messages per second between two workers measured in the same round. Rounds are
 * interleaved (raw, then every configuration once, again and again: at least 3 even with --quick)
 * and every figure is a median with its spread over rounds.
 *
 * Then the election timeout's trade-off, under full load (f=1, durable): for each timeout in a
 * sweep, the elections started with no crash (false elections: the leader's heartbeats or accepts
 * arrived late) and the failover time after crashing the leader; the default timeout gets the most
 * crashes and is the failover figure reported.
 *
 * Each row also gives the CPU time of the whole process (every thread) per commit over the measured
 * window, and cores / that: on a shared machine commits/s moves with other processes' load, CPU per
 * commit much less, and the quotient is the ceiling this code has on this machine.
 * `bun bench/consensus-profile.ts` runs the same load in one thread (the simulator) for a CPU
 * profile and counts messages and bytes per commit.
 *
 * Load: each client thread keeps PIPELINE requests outstanding (closed loop: a lane sends again as
 * soon as it is answered), each carrying CLIENT_BATCH messages
 * (batching on); with batching off, the same number of messages outstanding go one per request and
 * one per slot. One-after-another clients would measure round trips, not the log's capacity. A small
 * window (4 slots) makes the leader batch what queues while slots are in flight: per-slot costs (a
 * storage transaction and two messages per follower) are paid per batch, not per request.
 * The floor, in the same rounds: the raw pipeline (bench/lib/raw-paxos.ts) moves the same messages
 * with the same payloads in the same pattern over plain workers and MessageChannels, encoded and
 * decoded as the runtime does, with no checks, storage, history or chat log; per f, batching load.
 * Each batching row gives its commits/s as a share of that floor's ("x floor").
 *
 * PX_CLIENTS, PX_PIPELINE, PX_CBATCH, PX_SBATCH, PX_WINDOW, PX_TIMEOUT override the load for experiments;
 * PX_SWEEP=40,60,80 picks the election timeouts swept; PX_ONLY_ELECTIONS=1 skips the throughput rows.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/driver/stats.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { DEFAULT_REPLICA_CONFIG, type ClientSnapshot, type ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { paxosTopology, replicaIds } from "../src/workers/paxos/scenario.ts";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { printTable, progress, ratioSpread, roundsFor, valueSpread, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";
import { groupedBarChart, writeSvg } from "./lib/plot.ts";
import { rawPaxos, type RawPaxosResult } from "./lib/raw-paxos.ts";

export interface ConsensusRow {
  f: number;
  batching: boolean;
  loss: number;
  durable: boolean;
  commitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /**
   * CPU time of the whole process (every thread: replicas, clients, the driver) over the measured
   * window, per commit. Unlike commits/s it hardly moves with other processes' load, and
   * cores / it is the most this machine could commit per second at that cost.
   */
  cpuUsPerCommit: number;
}

export const CLIENTS = Number(process.env.PX_CLIENTS ?? 3);
export const PIPELINE = Number(process.env.PX_PIPELINE ?? 8);
const CLIENT_BATCH = Number(process.env.PX_CBATCH ?? 64);
const SLOT_BATCH = Number(process.env.PX_SBATCH ?? 1024);
const WINDOW = Number(process.env.PX_WINDOW ?? 4);
const CLIENT_TIMEOUT_MS = Number(process.env.PX_TIMEOUT ?? 100);
/** The clients' chat text length (paxosTopology's). */
const TEXT_CHARS = 24;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Two workers ping-pong small messages over a MessageChannel, 1,000 in flight; messages/s counts both
 * directions. The driver reads the clock once per 256 answers, not per answer: a read per answer
 * held the baseline ~5% lower (medians of 11 interleaved 2 s rounds: 2.00M msgs/s against 2.12M),
 * and a baseline that does more work than it must flatters every ratio to it.
 */
export async function rawMessageChannel(ms: number): Promise<number> {
  const code = `
    let port, mode;
    self.onmessage = (e) => {
      if (e.data.port) {
        port = e.data.port;
        mode = e.data.mode;
        if (mode === "echo") port.onmessage = (m) => port.postMessage(m.data);
        else {
          let n = 0, sent = 0, ending = false;
          const end = performance.now() + e.data.ms;
          const t0 = performance.now();
          port.onmessage = () => {
            n++;
            if (!ending && ((n & 255) !== 0 || performance.now() < end)) port.postMessage({ type: "ping", i: sent++ });
            else {
              ending = true;
              if (n === sent) self.postMessage({ msgsPerSec: (2 * n) / ((performance.now() - t0) / 1000) });
            }
          };
          for (; sent < 1000; sent++) port.postMessage({ type: "ping", i: sent });
        }
      }
    };`;
  const url = URL.createObjectURL(new Blob([code], { type: "application/javascript" }));
  const a = new Worker(url);
  const b = new Worker(url);
  const ch = new MessageChannel();
  try {
    const result = new Promise<number>((resolve) => (a.onmessage = (e: MessageEvent) => resolve(e.data.msgsPerSec)));
    b.postMessage({ port: ch.port2, mode: "echo" }, [ch.port2]);
    a.postMessage({ port: ch.port1, mode: "drive", ms }, [ch.port1]);
    return Math.round(await result);
  } finally {
    a.terminate();
    b.terminate();
    URL.revokeObjectURL(url);
  }
}

/** The bench's cluster for one configuration (bench/consensus-profile.ts runs the same one in the simulator). */
export function nodesFor(o: { f: number; batching: boolean; durable: boolean; clients: number; pipeline: number; electionMs?: number }): NodeSpec[] {
  // Batching off: one message per client request AND one message per slot. Requests outstanding: 8x
  // more than with batching (more would only queue at the leader: one slot per round trip each).
  const clientBatch = o.batching ? CLIENT_BATCH : 1;
  const pipeline = o.batching ? o.pipeline : o.pipeline * 8;
  return paxosTopology({
    f: o.f,
    clients: o.clients,
    pipeline,
    clientBatch,
    memory: !o.durable,
    batch: o.batching ? SLOT_BATCH : 1,
    window: WINDOW,
    clientTimeoutMs: CLIENT_TIMEOUT_MS,
    // Closed loop: a lane sends its next request as soon as one is answered (the CLI's default
    // 1 ms pause between a lane's requests would hold PIPELINE below its number).
    intervalMs: 0,
    ...(o.electionMs === undefined ? {} : { electionMs: o.electionMs }),
  }).map((n) => (n.role === "client" ? { ...n, config: { ...n.config, recordAcked: false } } : n));
}

type Cluster = Awaited<ReturnType<typeof startCluster>>;

async function withCluster<T>(nodes: NodeSpec[], loss: number, fn: (c: Cluster) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-paxos-"));
  const c = await startCluster({ system: "paxos", nodes, seed: 1, dataDir, fresh: true, logLevel: "error", network: loss > 0 ? { loss } : undefined });
  try {
    return await fn(c);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function clientSnaps(c: Cluster, ids: string[]): Promise<ClientSnapshot[]> {
  return (await Promise.all(ids.map((id) => c.inspect<ClientSnapshot>(id)))).filter((s): s is ClientSnapshot => s !== null);
}

async function replicaSnaps(c: Cluster, ids: string[]): Promise<ReplicaSnapshot[]> {
  return (await Promise.all(ids.map((id) => c.inspect<ReplicaSnapshot>(id)))).filter((s): s is ReplicaSnapshot => s !== null);
}

export async function throughput(cfg: Config, warmupMs: number, measureMs: number): Promise<ConsensusRow> {
  const nodes = nodesFor({ ...cfg, clients: CLIENTS, pipeline: PIPELINE });
  const clients = nodes.filter((n) => n.role === "client").map((n) => n.id);
  return withCluster(nodes, cfg.loss, async (c) => {
    await sleep(warmupMs);
    await Promise.all(clients.map((id) => c.request(id, { type: "client_reset_stats" }, 5000)));
    const a0 = (await clientSnaps(c, clients)).reduce((s, x) => s + x.acked, 0);
    const t0 = performance.now();
    const u0 = process.cpuUsage();
    await sleep(measureMs);
    const snaps = await clientSnaps(c, clients);
    const u = process.cpuUsage(u0);
    const dt = (performance.now() - t0) / 1000;
    const a1 = snaps.reduce((s, x) => s + x.acked, 0);
    await Promise.all(clients.map((id) => c.request(id, { type: "client_stop" }, 5000).catch(() => undefined)));
    const lat = snaps.flatMap((s) => s.latenciesMs);
    return { ...cfg, commitsPerSec: Math.round((a1 - a0) / dt), cpuUsPerCommit: +((u.user + u.system) / Math.max(1, a1 - a0)).toFixed(2), p50Ms: +percentile(lat, 50).toFixed(2), p99Ms: +percentile(lat, 99).toFixed(2) };
  });
}

async function currentLeader(c: Cluster, ids: string[]): Promise<{ leader: string | null; commit: number }> {
  let leader: string | null = null;
  let commit = 0;
  for (const s of await replicaSnaps(c, ids)) {
    commit = Math.max(commit, s.commit);
    if (s.role === "leader") leader = s.id;
  }
  return { leader, commit };
}

export interface ElectionRow {
  electionMs: number;
  /** Elections started (summed over replicas) while nothing crashed, under full load. */
  falseElections: number;
  quietSec: number;
  /** Crash the leader to a new leader committing past the old commit index, per crash. */
  failoverMs: number[];
}

/**
 * One cluster (f=1, durable, full batching load) with this election timeout: first a quiet stretch
 * with no crash, counting the elections the load alone caused (a leader's heartbeats or accepts
 * arrived too late); then `crashes` times, crash the leader and time until a new leader has
 * committed past the old commit index (the client-visible outage), restart it, let it settle.
 * Durable: a memory replica restarts as a learner and would leave no majority after a few crashes.
 */
async function electionTrial(electionMs: number | undefined, quietMs: number, crashes: number): Promise<Omit<ElectionRow, "electionMs">> {
  const nodes = nodesFor({ f: 1, batching: true, durable: true, clients: CLIENTS, pipeline: PIPELINE, electionMs });
  const ids = replicaIds(1);
  return withCluster(nodes, 0, async (c) => {
    for (const t0 = performance.now(); (await currentLeader(c, ids)).leader === null; ) {
      if (performance.now() - t0 > 10_000) throw new Error("no leader within 10 s");
      await sleep(20);
    }
    await sleep(300);
    const e0 = (await replicaSnaps(c, ids)).reduce((s, x) => s + x.elections, 0);
    const q0 = performance.now();
    await sleep(quietMs);
    const e1 = (await replicaSnaps(c, ids)).reduce((s, x) => s + x.elections, 0);
    const quietSec = (performance.now() - q0) / 1000;
    const failoverMs: number[] = [];
    for (let r = 0; r < crashes; r++) {
      const { leader, commit } = await currentLeader(c, ids);
      if (!leader) {
        await sleep(100);
        r--;
        continue;
      }
      const t0 = performance.now();
      await c.crash(leader);
      for (;;) {
        await sleep(2);
        const snaps = await replicaSnaps(c, ids.filter((id) => id !== leader));
        if (snaps.some((s) => s.role === "leader" && s.commit > commit)) break;
        if (performance.now() - t0 > 10_000) throw new Error("no failover within 10 s");
      }
      failoverMs.push(Math.round(performance.now() - t0));
      await c.restart(leader);
      await sleep(500);
    }
    return { falseElections: e1 - e0, quietSec: +quietSec.toFixed(2), failoverMs };
  });
}

type Config = Omit<ConsensusRow, "commitsPerSec" | "p50Ms" | "p99Ms" | "cpuUsPerCommit">;
const keyOf = (c: Config) => `f=${c.f} ${c.durable ? "durable" : "memory"} ${c.batching ? "batch" : "no-batch"} loss=${c.loss * 100}%`;

async function run(opts: BenchOptions): Promise<unknown> {
  // The engine is still compiling well after a second of this load: per-thread CPU (/proc task
  // stats) showed its JIT threads at ~19% of the process's CPU in the second after an 800 ms warm-up,
  // ~8% after 2 s and ~2% after 4 s. A short warm-up measured the compiler along with the code.
  const warmupMs = opts.quick ? 1500 : 3000;
  const measureMs = opts.quick ? 1000 : 2000;
  const rounds = roundsFor(opts.quick, 3);
  const rawMs = opts.quick ? 400 : 1000;
  const configs: Config[] = [];
  if (!process.env.PX_ONLY_ELECTIONS)
  for (const f of [1, 2]) for (const durable of [false, true]) for (const batching of [true, false]) for (const loss of opts.quick ? [0] : [0, 0.05]) {
    // --quick: the rows the targets name (f=1 memory and durable, f=2 memory), batching on, no loss.
    if (opts.quick && (!batching || (f === 2 && durable))) continue;
    configs.push({ f, batching, loss, durable });
  }
  const defaultElectionMs = DEFAULT_REPLICA_CONFIG.electionTicks * DEFAULT_REPLICA_CONFIG.tickMs;
  const swept = process.env.PX_SWEEP ? process.env.PX_SWEEP.split(",").map(Number) : opts.quick ? [40, 300] : [40, 150, 300];
  const sweep = [...new Set([...swept, defaultElectionMs])].sort((a, b) => a - b);
  const quietMs = opts.quick ? 1500 : 3000;
  const loadBefore = +loadavg()[0]!.toFixed(2);
  const bar = progress("consensus", rounds * (configs.length + 1 + new Set(configs.filter((c) => c.batching).map((c) => c.f)).size) + sweep.length);

  // Interleaved rounds: each round measures the raw baseline, then every configuration once, so a
  // burst of load from other processes hits one round of everything rather than all of one thing.
  const raw: number[] = [];
  const fs = [...new Set(configs.filter((c) => c.batching).map((c) => c.f))];
  const floors = new Map<number, RawPaxosResult[]>(fs.map((f) => [f, []]));
  /** Each configuration's measured rounds, with the round each belongs to (a failed one is missing). */
  const byKey = new Map<string, Array<ConsensusRow & { round: number }>>();
  // A stage that fails (a control call timed out, say) is reported and skipped: the rest still run,
  // and what was measured is still printed and written.
  const failed: Array<{ stage: string; error: string }> = [];
  const why = (e: unknown) => (e instanceof Error ? e.message : String(e));
  for (let r = 0; r < rounds; r++) {
    raw.push(await rawMessageChannel(rawMs));
    bar.tick(`round ${r + 1}: raw MessageChannel`);
    for (const f of fs) {
      floors.get(f)!.push(await rawPaxos({ f, clients: CLIENTS, pipeline: PIPELINE, clientBatch: CLIENT_BATCH, slotBatch: SLOT_BATCH, window: WINDOW, textChars: TEXT_CHARS }, warmupMs, measureMs));
      bar.tick(`round ${r + 1}: raw pipeline f=${f}`);
    }
    for (const cfg of configs) {
      try {
        const row = await throughput(cfg, warmupMs, measureMs);
        byKey.set(keyOf(cfg), [...(byKey.get(keyOf(cfg)) ?? []), { ...row, round: r }]);
      } catch (e) {
        failed.push({ stage: `round ${r + 1}: ${keyOf(cfg)}`, error: why(e) });
      }
      bar.tick(`round ${r + 1}: ${keyOf(cfg)}`);
    }
  }
  const elections: ElectionRow[] = [];
  for (const ms of sweep) {
    try {
      const t = await electionTrial(ms, quietMs, ms === defaultElectionMs ? (opts.quick ? 3 : 5) : opts.quick ? 1 : 2);
      elections.push({ electionMs: ms, ...t });
    } catch (e) {
      failed.push({ stage: `election ${ms} ms`, error: why(e) });
    }
    bar.tick(`election ${ms} ms`);
  }
  bar.done();

  const rawSpread = valueSpread(raw);
  /** Batching rows: commits/s as a share of the same round's raw pipeline at the same f. */
  const floorOf = (cfg: Config, rs: Array<ConsensusRow & { round: number }>) => {
    const fl = cfg.batching ? floors.get(cfg.f) : undefined;
    if (!fl) return {};
    const x = ratioSpread(
      rs.map((r) => r.commitsPerSec),
      rs.map((r) => fl[r.round]!.commitsPerSec),
    );
    return { xFloor: +x.median.toFixed(3), xFloorLo: +x.lo.toFixed(3), xFloorHi: +x.hi.toFixed(3) };
  };
  const floorRows = fs.map((f) => {
    const fl = floors.get(f)!;
    const c = valueSpread(fl.map((r) => r.commitsPerSec));
    const cpu = valueSpread(fl.map((r) => r.cpuUsPerCommit));
    return { f, commitsPerSec: Math.round(c.median), commitsLo: Math.round(c.lo), commitsHi: Math.round(c.hi), cpuUsPerCommit: cpu.median, cpuUsLo: cpu.lo, cpuUsHi: cpu.hi, rounds: fl.map((r) => r.commitsPerSec) };
  });
  const rows = configs.filter((cfg) => byKey.has(keyOf(cfg))).map((cfg) => {
    const rs = byKey.get(keyOf(cfg))!;
    const commits = valueSpread(rs.map((x) => x.commitsPerSec));
    // Each measured round against that same round's baseline.
    const ratio = ratioSpread(
      rs.map((x) => x.commitsPerSec),
      rs.map((x) => raw[x.round]!),
    );
    return {
      ...cfg,
      commitsPerSec: Math.round(commits.median),
      commitsLo: Math.round(commits.lo),
      commitsHi: Math.round(commits.hi),
      xRaw: +ratio.median.toFixed(4),
      xRawLo: +ratio.lo.toFixed(4),
      xRawHi: +ratio.hi.toFixed(4),
      cpuUsPerCommit: valueSpread(rs.map((x) => x.cpuUsPerCommit)).median,
      cpuUsLo: valueSpread(rs.map((x) => x.cpuUsPerCommit)).lo,
      cpuUsHi: valueSpread(rs.map((x) => x.cpuUsPerCommit)).hi,
      /** Commits/s if every core did nothing else, at the median CPU cost per commit. */
      cpuCeiling: Math.round((navigator.hardwareConcurrency * 1e6) / valueSpread(rs.map((x) => x.cpuUsPerCommit)).median),
      p50Ms: valueSpread(rs.map((x) => x.p50Ms)).median,
      p99Ms: valueSpread(rs.map((x) => x.p99Ms)).median,
      rounds: rs.map((x) => x.commitsPerSec),
      ...floorOf(cfg, rs),
    };
  });
  const def = elections.find((e) => e.electionMs === defaultElectionMs);
  const defRuns = def?.failoverMs ?? [];
  const failoverMs = defRuns.length > 0 ? percentile(defRuns, 50) : null;

  console.log(
    `load: ${CLIENTS} client threads x ${PIPELINE} requests outstanding x ${CLIENT_BATCH} messages per request (batching on) or ${PIPELINE * 8} single-message requests (off); client retry timeout ${CLIENT_TIMEOUT_MS} ms; ` +
      `window ${WINDOW} slots, up to ${SLOT_BATCH} messages per slot (on) or 1 (off); durable = sqlite WAL, synchronous=NORMAL; ${rounds} interleaved rounds, each ${measureMs} ms after ${warmupMs} ms warm-up; median (min..max over rounds)`,
  );
  printTable(
    rows.map((r) => ({
      f: r.f,
      batching: r.batching,
      loss: `${r.loss * 100}%`,
      durable: r.durable,
      "commits/s": `${r.commitsPerSec} (${r.commitsLo}..${r.commitsHi})`,
      "x raw": `${r.xRaw.toFixed(3)} (${r.xRawLo.toFixed(3)}..${r.xRawHi.toFixed(3)})`,
      "CPU us/commit": `${r.cpuUsPerCommit} (${r.cpuUsLo}..${r.cpuUsHi})`,
      "cores/CPU": r.cpuCeiling,
      "x floor": r.xFloor === undefined ? "-" : `${r.xFloor.toFixed(2)} (${r.xFloorLo!.toFixed(2)}..${r.xFloorHi!.toFixed(2)})`,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
    })),
  );
  console.log(
    `CPU us/commit: CPU time of every thread (replicas, clients, driver) over the window, per commit; cores/CPU = ${navigator.hardwareConcurrency} cores x 1e6 / that: the commits/s this machine could reach at that cost with nothing else running (a ceiling, not a measurement)`,
  );
  console.log(`raw MessageChannel (2 workers, ping-pong, 1000 in flight): ${Math.round(rawSpread.median)} msgs/s (${Math.round(rawSpread.lo)}..${Math.round(rawSpread.hi)}); each row's "x raw" is per round against that round's baseline`);
  console.log("floor: the raw pipeline (same threads, messages, payloads and pattern, encoded and decoded as the runtime does; no runtime, checks, storage, history or chat log), batching load:");
  printTable(
    floorRows.map((r) => ({
      f: r.f,
      "commits/s": `${r.commitsPerSec} (${r.commitsLo}..${r.commitsHi})`,
      "CPU us/commit": `${r.cpuUsPerCommit} (${r.cpuUsLo}..${r.cpuUsHi})`,
      "cores/CPU": Math.round((navigator.hardwareConcurrency * 1e6) / r.cpuUsPerCommit),
    })),
  );
  const wide = rows.filter((r) => r.xRawHi - r.xRawLo > 0.5 * r.xRaw);
  if (wide.length > 0) console.log(`NOISY: ${wide.length} row(s) spread over more than half their median (${wide.map((r) => keyOf(r)).join("; ")}): the machine was busy; compare medians only`);
  console.log(`machine: ${navigator.hardwareConcurrency} cores, 1-min load average ${loadBefore} at start, ${+loadavg()[0]!.toFixed(2)} at end (other processes share the cores)`);
  console.log(
    `election timeout under full load (f=1, durable, batching; timeout randomized in [T, 2T), heartbeat every max(T/6, ${DEFAULT_REPLICA_CONFIG.tickMs} ms); false elections counted over a quiet stretch with no crash):`,
  );
  printTable(
    elections.map((e) => ({
      "election T ms": e.electionMs + (e.electionMs === defaultElectionMs ? " (default)" : ""),
      "false elections": e.falseElections,
      "per minute": +((e.falseElections / e.quietSec) * 60).toFixed(1),
      "failover p50 ms": percentile(e.failoverMs, 50),
      "failover runs ms": e.failoverMs.join(", "),
    })),
  );
  if (failoverMs !== null) console.log(`failover after a leader crash (default election timeout ${defaultElectionMs}-${2 * defaultElectionMs} ms): median ${failoverMs} ms (runs: ${defRuns.join(", ")})`);
  for (const f of failed) console.log(`FAILED  ${f.stage}: ${f.error} (skipped; the rest ran)`);

  const series = rows.map((r) => ({ ...r, config: `${r.durable ? "durable" : "memory"}, ${r.batching ? "batching" : "no batching"}, loss ${r.loss * 100}%`, replicas: `f=${r.f} (${2 * r.f + 1} replicas)` }));
  const svg = join(opts.resultsDir, "consensus.svg");
  await writeSvg(svg, groupedBarChart({ title: `Multi-Paxos committed messages/s (raw MessageChannel median: ${Math.round(rawSpread.median)} msgs/s)`, rows: series, x: "config", y: "commitsPerSec", group: "replicas", xTitle: "configuration", yTitle: "committed messages / s", yLog: true }));
  console.log(`plot: ${svg}`);
  const result = {
    rows,
    failoverMs,
    failoverRunsMs: defRuns,
    elections,
    defaultElectionMs,
    rawMsgsPerSec: Math.round(rawSpread.median),
    rawRounds: raw,
    /** The raw pipeline per f (batching load): the floor each batching row's xFloor is against. */
    floor: floorRows,
    rounds,
    loadAverage: loadBefore,
    load: { clients: CLIENTS, pipeline: PIPELINE, clientBatch: CLIENT_BATCH, slotBatch: SLOT_BATCH, window: WINDOW },
    /** Stages that failed and were skipped (empty: every stage ran); a row then has fewer rounds, or is missing. */
    failed,
  };
  if (opts.json) writeJson(opts.json, result);
  return result;
}

export const bench: Bench = {
  name: "consensus",
  description: "Multi-Paxos chat log on worker threads: commits/s, commit latency, failover, vs raw MessageChannel",
  run,
};
