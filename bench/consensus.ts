/**
 * `bun run bench consensus`: the Multi-Paxos chat log on worker threads. Committed messages per
 * second and commit latency (client-observed, p50/p99) for f in {1, 2}, batching on/off, loss 0/5%,
 * durable (sqlite, synchronous=NORMAL: survives a process crash) and memory; failover time after a
 * leader crash with default timeouts; and, in the same run, raw MessageChannel messages per second
 * between two workers, so every throughput is also shown as a ratio to it.
 *
 * Load: each client thread keeps PIPELINE requests outstanding, each carrying CLIENT_BATCH messages
 * (batching on); with batching off, the same number of messages outstanding go one per request and
 * one per slot. One-after-another clients would measure round trips, not the log's capacity.
 * PX_CLIENTS, PX_PIPELINE, PX_CBATCH, PX_SBATCH, PX_WINDOW, PX_TIMEOUT override the load for experiments.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/driver/stats.ts";
import { startCluster } from "../src/main/supervisor.ts";
import type { ClientSnapshot, ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { paxosTopology, replicaIds } from "../src/workers/paxos/scenario.ts";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { printTable, progress, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";
import { groupedBarChart, writeSvg } from "./lib/plot.ts";

export interface ConsensusRow {
  f: number;
  batching: boolean;
  loss: number;
  durable: boolean;
  commitsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

const CLIENTS = Number(process.env.PX_CLIENTS ?? 3);
const PIPELINE = Number(process.env.PX_PIPELINE ?? 8);
const CLIENT_BATCH = Number(process.env.PX_CBATCH ?? 64);
const SLOT_BATCH = Number(process.env.PX_SBATCH ?? 1024);
const WINDOW = Number(process.env.PX_WINDOW ?? 32);
const CLIENT_TIMEOUT_MS = Number(process.env.PX_TIMEOUT ?? 100);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Two workers ping-pong small messages over a MessageChannel, 1,000 in flight; messages/s counts both directions. */
export async function rawMessageChannel(ms: number): Promise<number> {
  const code = `
    let port, mode;
    self.onmessage = (e) => {
      if (e.data.port) {
        port = e.data.port;
        mode = e.data.mode;
        if (mode === "echo") port.onmessage = (m) => port.postMessage(m.data);
        else {
          let n = 0, sent = 0;
          const end = performance.now() + e.data.ms;
          const t0 = performance.now();
          port.onmessage = () => {
            n++;
            if (performance.now() < end) port.postMessage({ type: "ping", i: sent++ });
            else if (n === sent) self.postMessage({ msgsPerSec: (2 * n) / ((performance.now() - t0) / 1000) });
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

function nodesFor(o: { f: number; batching: boolean; durable: boolean; clients: number; pipeline: number }): NodeSpec[] {
  // Batching off: one message per client request AND one message per slot. Requests outstanding: 8x
  // more than with batching (more would only queue at the leader: one slot per round trip each).
  const clientBatch = o.batching ? CLIENT_BATCH : 1;
  const pipeline = o.batching ? o.pipeline : o.pipeline * 8;
  return paxosTopology({ f: o.f, clients: o.clients, pipeline, clientBatch, memory: !o.durable, batch: o.batching ? SLOT_BATCH : 1, window: WINDOW, clientTimeoutMs: CLIENT_TIMEOUT_MS }).map((n) =>
    n.role === "client" ? { ...n, config: { ...n.config, recordAcked: false } } : n,
  );
}

async function withCluster<T>(nodes: NodeSpec[], loss: number, fn: (c: Awaited<ReturnType<typeof startCluster>>) => Promise<T>): Promise<T> {
  const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-paxos-"));
  const c = await startCluster({ system: "paxos", nodes, seed: 1, dataDir, fresh: true, logLevel: "error", network: loss > 0 ? { loss } : undefined });
  try {
    return await fn(c);
  } finally {
    await c.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function clientSnaps(c: Awaited<ReturnType<typeof startCluster>>, ids: string[]): Promise<ClientSnapshot[]> {
  return (await Promise.all(ids.map((id) => c.inspect<ClientSnapshot>(id)))).filter((s): s is ClientSnapshot => s !== null);
}

export async function throughput(cfg: Omit<ConsensusRow, "commitsPerSec" | "p50Ms" | "p99Ms">, warmupMs: number, measureMs: number): Promise<ConsensusRow> {
  const nodes = nodesFor({ ...cfg, clients: CLIENTS, pipeline: PIPELINE });
  const clients = nodes.filter((n) => n.role === "client").map((n) => n.id);
  return withCluster(nodes, cfg.loss, async (c) => {
    await sleep(warmupMs);
    await Promise.all(clients.map((id) => c.request(id, { type: "client_reset_stats" }, 5000)));
    const a0 = (await clientSnaps(c, clients)).reduce((s, x) => s + x.acked, 0);
    const t0 = performance.now();
    await sleep(measureMs);
    const snaps = await clientSnaps(c, clients);
    const dt = (performance.now() - t0) / 1000;
    const a1 = snaps.reduce((s, x) => s + x.acked, 0);
    await Promise.all(clients.map((id) => c.request(id, { type: "client_stop" }, 5000).catch(() => undefined)));
    const lat = snaps.flatMap((s) => s.latenciesMs);
    return { ...cfg, commitsPerSec: Math.round((a1 - a0) / dt), p50Ms: +percentile(lat, 50).toFixed(2), p99Ms: +percentile(lat, 99).toFixed(2) };
  });
}

/** Crash the leader under load; failover = crash until a new leader has committed past the old commit index. */
async function failover(rounds: number): Promise<number[]> {
  const nodes = nodesFor({ f: 1, batching: true, durable: true, clients: 2, pipeline: 1 });
  const ids = replicaIds(1);
  const out: number[] = [];
  await withCluster(nodes, 0, async (c) => {
    await sleep(800);
    for (let r = 0; r < rounds; r++) {
      let leader: string | null = null;
      let commit = 0;
      for (const id of ids) {
        const s = await c.inspect<ReplicaSnapshot>(id);
        if (!s) continue;
        commit = Math.max(commit, s.commit);
        if (s.role === "leader") leader = id;
      }
      if (!leader) {
        await sleep(200);
        r--;
        continue;
      }
      const t0 = performance.now();
      await c.crash(leader);
      for (;;) {
        await sleep(2);
        const snaps = await Promise.all(ids.filter((id) => id !== leader).map((id) => c.inspect<ReplicaSnapshot>(id)));
        if (snaps.some((s) => s && s.role === "leader" && s.commit > commit)) break;
        if (performance.now() - t0 > 10_000) throw new Error("no failover within 10 s");
      }
      out.push(Math.round(performance.now() - t0));
      await c.restart(leader);
      await sleep(700);
    }
  });
  return out;
}

async function run(opts: BenchOptions): Promise<unknown> {
  const warmupMs = opts.quick ? 400 : 800;
  const measureMs = opts.quick ? 1000 : 2500;
  const fs = opts.quick ? [1] : [1, 2];
  const configs: Array<Omit<ConsensusRow, "commitsPerSec" | "p50Ms" | "p99Ms">> = [];
  for (const f of fs) for (const durable of [false, true]) for (const batching of [true, false]) for (const loss of opts.quick ? [0] : [0, 0.05]) configs.push({ f, batching, loss, durable });
  const loadBefore = +loadavg()[0]!.toFixed(2);
  const bar = progress("consensus", configs.length + 2);
  const rawMsgsPerSec = await rawMessageChannel(opts.quick ? 500 : 1500);
  bar.tick("raw MessageChannel");
  const rows: ConsensusRow[] = [];
  for (const cfg of configs) {
    rows.push(await throughput(cfg, warmupMs, measureMs));
    bar.tick(`f=${cfg.f} ${cfg.durable ? "durable" : "memory"} ${cfg.batching ? "batch" : "no-batch"} loss=${cfg.loss}`);
  }
  const failovers = await failover(opts.quick ? 1 : 3);
  bar.tick("failover");
  bar.done();
  const failoverMs = percentile(failovers, 50);

  console.log(
    `load: ${CLIENTS} client threads x ${PIPELINE} requests outstanding x ${CLIENT_BATCH} messages per request (batching on) or ${PIPELINE * 8} single-message requests (off); client retry timeout ${CLIENT_TIMEOUT_MS} ms; ` +
      `window ${WINDOW} slots, up to ${SLOT_BATCH} messages per slot (on) or 1 (off); durable = sqlite WAL, synchronous=NORMAL; measured ${measureMs} ms after ${warmupMs} ms warm-up`,
  );
  printTable(rows.map((r) => ({ ...r, loss: `${r.loss * 100}%`, "x raw": +(r.commitsPerSec / rawMsgsPerSec).toFixed(4) })));
  console.log(`raw MessageChannel (2 workers, ping-pong, 1000 in flight): ${rawMsgsPerSec} msgs/s`);
  console.log(`machine: ${navigator.hardwareConcurrency} cores, 1-min load average ${loadBefore} at start, ${+loadavg()[0]!.toFixed(2)} at end (other processes share the cores)`);
  console.log(`failover after a leader crash (default timeouts: election 300-600 ms): median ${failoverMs} ms (runs: ${failovers.join(", ")})`);

  const series = rows.map((r) => ({ ...r, config: `${r.durable ? "durable" : "memory"}, ${r.batching ? "batching" : "no batching"}, loss ${r.loss * 100}%`, replicas: `f=${r.f} (${2 * r.f + 1} replicas)` }));
  const svg = join(opts.resultsDir, "consensus.svg");
  await writeSvg(svg, groupedBarChart({ title: `Multi-Paxos committed messages/s (raw MessageChannel: ${rawMsgsPerSec} msgs/s)`, rows: series, x: "config", y: "commitsPerSec", group: "replicas", xTitle: "configuration", yTitle: "committed messages / s", yLog: true }));
  console.log(`plot: ${svg}`);
  const result = { rows, failoverMs, failoverRunsMs: failovers, rawMsgsPerSec, loadAverage: loadBefore, load: { clients: CLIENTS, pipeline: PIPELINE, clientBatch: CLIENT_BATCH, slotBatch: SLOT_BATCH, window: WINDOW } };
  if (opts.json) writeJson(opts.json, result);
  return result;
}

export const bench: Bench = {
  name: "consensus",
  description: "Multi-Paxos chat log on worker threads: commits/s, commit latency, failover, vs raw MessageChannel",
  run,
};
