/**
 * The floor for packed push (`--threads`): the same fan-out, to the same tablets dealt to the same
 * threads, pinned as packed threads are, done by bare workers with no node runtime
 * (packed-floor-worker.ts). Against it, packed push's p50 at a size says what the runtime costs
 * there; and its own p50 at 500 tablets against 1 says how far apart those two sizes sit when a
 * delivery costs almost nothing.
 */
import { summarize } from "../../src/driver/stats.ts";
import { packedThreadOf } from "../../src/main/supervisor.ts";
import { cpusForThreads } from "../../src/workers/runtime/cpu-affinity.ts";
import { workerAnswer } from "./harness.ts";
import type { PackedFloorInit } from "./packed-floor-worker.ts";
import { threadCpuSnapshot, threadWindowSince } from "./thread-cpu.ts";

export interface PackedFloorRow {
  tablets: number;
  threads: number;
  propagationP50Ms: number;
  propagationP99Ms: number;
  propagationMaxMs: number;
  /** CPU of the whole process during the updates, per update per tablet (µs). */
  cpuUsPerPush: number;
  cpuMsByThread: Record<string, number> | null;
  /** How many times the bare threads slept and were woken, per update per tablet (bench/lib/thread-cpu.ts). */
  wakesPerPush: number | null;
  /** The CPU each thread was pinned to, or why none was. */
  pinned: number[] | string;
}

/** Tablets on each of `threads` threads, dealt as the supervisor deals push-pull's nodes (obelix, cacofonix, then the tablets). */
export function tabletsPerThread(tablets: number, threads: number): number[] {
  const per = new Array<number>(threads).fill(0);
  for (let i = 2; i < tablets + 2; i++) per[packedThreadOf(i, threads)]!++;
  return per;
}

/**
 * `updates` updates `gapMs` apart after `warm` warm-up updates (their samples dropped) `warmGapMs`
 * apart: a warm-up is for the JIT, which counts calls, not time.
 */
export interface PackedFloorOptions {
  tablets: number;
  threads: number;
  updates: number;
  gapMs: number;
  warm: number;
  warmGapMs: number;
  /** How long any one step may wait for a thread's answer (default 60 s); past it the stage fails, naming the step. */
  answerMs?: number;
}

export async function packedFloor(o: PackedFloorOptions): Promise<PackedFloorRow> {
  if (!Number.isInteger(o.threads) || o.threads < 2) throw new Error(`packed floor: threads must be an integer ≥ 2 (thread 1 plays cacofonix); got ${o.threads}`);
  const answerMs = o.answerMs ?? 60_000;
  const plan = cpusForThreads(o.threads);
  // As the supervisor does before its first worker: the collector's shared helper threads start
  // here, unpinned, rather than inside a pinned worker whose mask they would inherit.
  if (typeof plan !== "string") Bun.gc(true);
  const url = new URL("./packed-floor-worker.ts", import.meta.url).href;
  const workers = Array.from({ length: o.threads }, () => new Worker(url));
  const what = (i: number, step: string) => `packed floor, ${o.tablets} tablets, thread ${i}: ${step}`;
  try {
    const lanes = workers.slice(1).map(() => new MessageChannel());
    const per = tabletsPerThread(o.tablets, o.threads);
    const ready = workers.map((w, i) => {
      const got = workerAnswer(w, what(i, "starting"), answerMs);
      const mine = i === 0 ? lanes.map((c) => c.port1) : [lanes[i - 1]!.port2];
      const init: PackedFloorInit = { thread: i, tablets: per[i]!, lanes: mine, cpu: typeof plan === "string" ? null : plan[i]! };
      w.postMessage(init, mine);
      return got as Promise<{ notPinned: string | null }>;
    });
    const notPinned = (await Promise.all(ready)).map((r) => r.notPinned).find((r) => r !== null);
    const caller = workers[1]!;
    const run = (count: number, gapMs: number) => {
      const done = workerAnswer(caller, what(1, `${count} updates`), answerMs + count * gapMs);
      caller.postMessage({ run: count, gapMs });
      return done;
    };
    const collect = async () => {
      const all: number[] = [];
      for (const [i, w] of workers.entries()) {
        const got = workerAnswer(w, what(i, "handing over its samples"), answerMs);
        w.postMessage("collect");
        all.push(...((await got) as number[]));
      }
      return all;
    };
    if (o.warm > 0) await run(o.warm, o.warmGapMs);
    await collect();
    const threads0 = threadCpuSnapshot();
    const cpu0 = process.cpuUsage();
    await run(o.updates, o.gapMs);
    const cpu = process.cpuUsage(cpu0);
    const { cpuMsByThread, workerWakes: wakes } = threadWindowSince(threads0);
    const all = await collect();
    if (all.length !== o.updates * o.tablets) throw new Error(`packed floor, ${o.tablets} tablets: ${all.length} deliveries, expected ${o.updates * o.tablets}`);
    const st = summarize(all);
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    return {
      tablets: o.tablets,
      threads: o.threads,
      propagationP50Ms: r3(st.p50),
      propagationP99Ms: r3(st.p99),
      propagationMaxMs: r3(st.max),
      cpuUsPerPush: r3((cpu.user + cpu.system) / o.updates / o.tablets),
      cpuMsByThread,
      wakesPerPush: wakes === null ? null : r3(wakes / o.updates / o.tablets),
      pinned: notPinned ?? plan,
    };
  } finally {
    for (const w of workers) w.terminate();
  }
}
