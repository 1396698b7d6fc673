/**
 * Where a commit's CPU goes on threads: the `bench consensus` load (batching) on worker threads, and
 * every thread's CPU over the measured window from /proc/self/task (Linux only), per commit. A CPU
 * profile cannot see into worker threads; this at least says which thread pays: the leader, the
 * followers, the clients, the driver (main thread), or the engine's own threads (JIT compiler, GC).
 *
 *   bun bench/consensus-threads.ts [--f 1] [--durable] [--warmup 3000] [--measure 2000]
 *
 * Worker threads are named after nodes by start order (tid order): the supervisor starts the
 * replicas first (replica-0, the first leader, is the one that should be busiest), then the clients.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { CLIENTS, PIPELINE, nodesFor, throughput } from "./consensus.ts";

const { values } = parseArgs({
  options: {
    f: { type: "string", default: "1" },
    durable: { type: "boolean", default: false },
    warmup: { type: "string", default: "3000" },
    measure: { type: "string", default: "2000" },
  },
});
const f = Number(values.f);
const warmupMs = Number(values.warmup);
const measureMs = Number(values.measure);
if (![1, 2].includes(f) || !(warmupMs >= 0) || !(measureMs >= 500)) throw new Error("--f 1|2, --warmup >= 0, --measure >= 500 (ms)");

interface TaskCpu {
  name: string;
  /** user + system, clock ticks. */
  ticks: number;
}

function tasks(): Map<number, TaskCpu> {
  const out = new Map<number, TaskCpu>();
  for (const t of readdirSync("/proc/self/task")) {
    let s: string;
    try {
      s = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
    } catch {
      continue; // the thread ended between the listing and the read
    }
    const close = s.lastIndexOf(")");
    const fields = s.slice(close + 2).split(" ");
    // utime and stime are fields 14 and 15 of stat; fields[] starts at field 3.
    out.set(Number(t), { name: s.slice(s.indexOf("(") + 1, close), ticks: Number(fields[11]) + Number(fields[12]) });
  }
  return out;
}

const nodes = nodesFor({ f, batching: true, durable: values.durable, clients: CLIENTS, pipeline: PIPELINE });
const before = tasks();
const samples: { a?: Map<number, TaskCpu>; b?: Map<number, TaskCpu> } = {};
// Inside the measured window (it starts after the warm-up and a reset of the clients' stats).
const t0 = performance.now();
setTimeout(() => (samples.a = tasks()), warmupMs + 100);
setTimeout(() => (samples.b = tasks()), warmupMs + measureMs - 50);
const row = await throughput({ f, batching: true, loss: 0, durable: values.durable }, warmupMs, measureMs);
const { a, b } = samples;
if (!a || !b) throw new Error("the measured window ended before both samples were taken");
const windowSec = (measureMs - 150) / 1000;
const commits = row.commitsPerSec * windowSec;
// Clock ticks per second: 100 on Linux unless the kernel was built otherwise.
const TICK_US = 10_000;
const workers = [...b.keys()].filter((t) => !before.has(t) && b.get(t)!.name === "Worker").sort((x, y) => x - y);
const names = new Map(workers.map((t, i) => [t, nodes[i]?.id ?? `worker ${i}`] as const));
const rows = [...b].flatMap(([tid, cur]) => {
  const old = a.get(tid);
  if (!old || cur.ticks === old.ticks) return [];
  const us = ((cur.ticks - old.ticks) * TICK_US) / commits;
  return [{ thread: names.get(tid) ?? (before.has(tid) && cur.name === "bun" ? "main (driver)" : cur.name), tid, usPerCommit: +us.toFixed(2) }];
});
rows.sort((x, y) => y.usPerCommit - x.usPerCommit);
const total = rows.reduce((s, r) => s + r.usPerCommit, 0);
console.log(`f=${f} ${values.durable ? "durable" : "memory"}: ${row.commitsPerSec} commits/s, ${row.cpuUsPerCommit} us CPU per commit (whole process, bench window); by thread over ${windowSec.toFixed(2)} s (${(performance.now() - t0) | 0} ms run):`);
console.table(rows.map((r) => ({ thread: r.thread, "us/commit": r.usPerCommit, share: `${((100 * r.usPerCommit) / total).toFixed(1)}%` })));
process.exit(0);
