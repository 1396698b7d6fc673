/**
 * Push against pull for the olympics system, on worker threads: how long an update takes to reach
 * every interested tablet, as the number of tablets grows, and what a pull costs per round trip.
 *
 * Cacofonix runs in testing mode (each tick, Gaul wins a gold and Stone Curling gets a new score) and
 * every tablet is interested in Gaul only: each tick is one update that fans out to all N tablets,
 * and no update queues behind another's fan-out. The delay of an update at a tablet runs until the
 * tablet holds that version or a newer one (see `delays`). Propagation delay of one
 * update at one tablet = the tablet's node.now() when it applies the value − obelix's node.now()
 * when it applied the update (the value's updatedAt). Every node is a worker thread of this one
 * process, so every node.now() reads the same clock (performance.timeOrigin + performance.now()).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster } from "../src/driver/cluster.ts";
import { summarize } from "../src/driver/stats.ts";
import { startCluster } from "../src/main/supervisor.ts";
import type { AppliedValue, CacofonixConfig, ObelixConfig, TabletConfig, TabletMode, TabletState } from "../src/workers/olympics/messages.ts";
import type { ObelixSnapshot } from "../src/workers/olympics/scenario.ts";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { realNow } from "../src/workers/runtime/real-clock.ts";
import type { TopLevelSpec } from "vega-lite";
import { lineChart, writeSvg } from "./lib/plot.ts";
import { printTable, progress, ratioSpread, roundsFor, runChild, valueSpread, workerAnswer, writeJson, type Bench, type BenchOptions, type Spread } from "./lib/harness.ts";
import { formatThreadCpu, threadCpuSnapshot, threadWindowSince } from "./lib/thread-cpu.ts";
import { SLOW_GC_PERIOD_MS, describeGcTimer, gcTimer } from "./lib/gc-timer.ts";
import type { PackedFloorOptions, PackedFloorRow } from "./lib/packed-floor.ts";

const PASSWORD = "bench-password";
/**
 * Cacofonix's period: each tick, one update every tablet wants (Gaul's tally). Prime, so it does not
 * lock in phase with a poll interval (a poll always landing just after an update would flatter pull).
 */
const RATE_MS = 137;
/**
 * Push updates every tablet applies before the window opens, and the floor's workers receive before
 * theirs. Each worker thread compiles its own receive path, so with one tablet per thread the early
 * deliveries run cold: at 500 tablets the whole process's CPU per delivery was ~240 µs after 2 or 60
 * warm-up updates and ~130 µs after 150, and 500 threads paying that at once on 2 cores decide the
 * p50. After 150 the JIT was still compiling in the window (its thread took 330 ms of a 3 s window;
 * 10 ms after 300), and the floor's CPU per delivery fell from ~100 µs after 150 to ~40 after 300
 * (its p50 from ~7 to ~6 ms). A tablet's receive path is optimized around its 130th–170th push
 * (see the floor's comment), but 500 threads' compiles, some redone, queue on 2 cores: after 300
 * updates they still took ~600 ms of the window, after 400 ~90. The window measures the steady
 * state, for push and its floor alike:
 * `cpuMsByThread` in each row shows whether it did.
 */
const warmUpdates = (quick: boolean) => (quick ? 10 : 400);
/**
 * How long push, packed push and the floor are measured: in a full run, one of Bun's slow GC periods,
 * so the burst in which every thread's settled heap collects (bench/lib/gc-timer.ts) falls in the
 * window for push and the floor alike. A 3 s window caught 5, 64 or 294 of those collections,
 * depending on where it fell, and the push/floor ratio moved from 1.5× to 2.1× with it. `--quick`
 * keeps a short window and claims no steady state.
 */
const pushWindowMs = (quick: boolean) => (quick ? 1500 : SLOW_GC_PERIOD_MS);

export interface Row {
  mode: TabletMode;
  tablets: number;
  /** null for push. */
  pollMs: number | null;
  propagationP50Ms: number;
  propagationP99Ms: number;
  propagationMaxMs: number;
  /** null for push: it makes no requests. */
  requestP50Ms: number | null;
  requestP99Ms: number | null;
  requestMaxMs: number | null;
  /** Updates measured (applied by obelix during the window). */
  updates: number;
  /** Propagation samples: one per update per tablet. */
  samples: number;
  /** Samples where the tablet never held that version, only a newer one (a poll came after two updates): timed until the newer one. */
  superseded: number;
  /** Samples where the tablet never caught up (should be 0). */
  missing: number;
  /** Smallest propagation sample: a negative one would mean the clocks disagree. */
  propagationMinMs: number;
  /** push: how long obelix took to hand one update to every tablet (the part of propagation spent sending). */
  fanOutP50Ms: number | null;
  /**
   * push: CPU time of the whole process (every thread) during the window, per update per tablet (µs):
   * what one delivery costs the machine, comparable with the floor's `cpuUsPerPush` on a busy one.
   */
  cpuUsPerPush: number | null;
  /** CPU ms of the window by kind of thread, largest first (bench/lib/thread-cpu.ts; null without /proc). */
  cpuMsByThread: Record<string, number> | null;
  /**
   * push: how many times the worker threads (the nodes') slept and were woken in the window, per
   * update per tablet: about 1 when each tablet's thread wakes once per push, far less when packed
   * (one wake delivers to many); more would be a wake the runtime added. Obelix's and cacofonix's
   * threads count too, and so do timers (Bun's idle collection timer wakes a thread every second
   * while its heap changes): at a few tablets, or with --quick's short warm-up, it reads well above 1
   * for the floor too. Null without /proc.
   */
  wakesPerPush: number | null;
}

export interface Config {
  mode: TabletMode;
  tablets: number;
  pollMs: number | null;
  /** Worker threads the nodes are packed into; undefined: one thread per node. */
  threads?: number;
  /** Push: updates every tablet has applied before the window opens (default 2). */
  warmChanges?: number;
}

function topology(c: Config): NodeSpec[] {
  // Memory storage: the figures are about propagation, not about the disk under obelix.
  const tablets = Array.from({ length: c.tablets }, (_, i) => ({
    id: `tablet-${i + 1}`,
    role: "tablet",
    storage: "memory" as const,
    config: { obelix: "obelix", mode: c.mode, teams: ["Gaul"], events: [], pollMs: c.pollMs ?? 1000, refreshMs: 600_000 } satisfies TabletConfig,
  }));
  return [
    { id: "obelix", role: "obelix", storage: "memory", config: { password: PASSWORD } satisfies ObelixConfig },
    { id: "cacofonix", role: "cacofonix", storage: "memory", config: { obelix: "obelix", password: PASSWORD, mode: "testing", rateMs: RATE_MS } satisfies CacofonixConfig },
    ...tablets,
  ];
}

/** Control calls that had to be retried (a thread too busy to answer in time): reported, not fatal. */
export const slowSteps: string[] = [];

/**
 * Inspect with retries: with hundreds of busy threads on two cores a tablet's thread can miss the
 * supervisor's control timeout. That is a slow step, not a failed measurement: retry and report it.
 */
async function inspectRetry<T>(cluster: Cluster, id: string, tries = 4): Promise<T | null> {
  for (let k = 1; ; k++) {
    try {
      return await cluster.inspect<T>(id);
    } catch (e) {
      if (k >= tries) throw new Error(`inspect ${id}: ${e instanceof Error ? e.message : String(e)} (${tries} tries)`);
      slowSteps.push(`inspect ${id}: ${e instanceof Error ? e.message : String(e)}; retried`);
    }
  }
}

/** A driver request that is safe to repeat (a reset, a stop), retried like inspectRetry. */
async function requestRetry(cluster: Cluster, id: string, body: { type: string }, timeoutMs: number, tries = 4): Promise<unknown> {
  for (let k = 1; ; k++) {
    try {
      return await cluster.request(id, body, timeoutMs);
    } catch (e) {
      if (k >= tries) throw new Error(`${body.type} to ${id}: ${e instanceof Error ? e.message : String(e)} (${tries} tries)`);
      slowSteps.push(`${body.type} to ${id}: ${e instanceof Error ? e.message : String(e)}; retried`);
    }
  }
}

async function inspectAll(cluster: Cluster, n: number): Promise<TabletState[]> {
  const ids = Array.from({ length: n }, (_, i) => `tablet-${i + 1}`);
  const out: TabletState[] = [];
  // A few at a time: 500 inspections at once would queue on two cores and distort nothing but the wait.
  for (let i = 0; i < ids.length; i += 50) {
    const batch = await Promise.all(ids.slice(i, i + 50).map((id) => inspectRetry<TabletState>(cluster, id)));
    for (const s of batch) if (s) out.push(s);
  }
  return out;
}

/**
 * Delay of every update at every tablet: until the tablet held that version or a newer one. A pull
 * tablet that skips a version (a newer one came first) still waited for it, so it counts, with the
 * delay until the newer one arrived; only counting the versions it held would flatter pull.
 */
export function delays(updates: AppliedValue[], tablets: TabletState[]): { ms: number[]; superseded: number; missing: number } {
  const ms: number[] = [];
  let superseded = 0;
  let missing = 0;
  for (const t of tablets) {
    const byKey = new Map<string, AppliedValue[]>();
    for (const a of t.applied) (byKey.get(a.key) ?? byKey.set(a.key, []).get(a.key)!).push(a);
    for (const u of updates) {
      const held = byKey.get(u.key)?.find((a) => a.version >= u.version);
      if (!held) {
        missing++;
        continue;
      }
      if (held.version > u.version) superseded++;
      ms.push(held.at - u.at);
    }
  }
  return { ms, superseded, missing };
}

async function resetSamples(cluster: Cluster, n: number): Promise<void> {
  for (let i = 0; i < n; i += 50) {
    const batch = Array.from({ length: Math.min(50, n - i) }, (_, k) => `tablet-${i + k + 1}`);
    await Promise.all(batch.map((id) => requestRetry(cluster, id, { type: "tablet_reset_samples" }, 10_000)));
  }
}

/** A stage's process is killed if it has not answered by then (a 500-thread stage takes 1–5 minutes on a busy 2-core machine). */
const STAGE_TIMEOUT_MS = 15 * 60_000;

/**
 * measure() in a child process (bench/lib/push-pull-child.ts): each stage starts from a clean
 * process, and a stage that hangs is killed and reported as failed instead of stopping the bench.
 */
async function measureInChild(c: Config, windowMs: number, dataDir: string): Promise<Row> {
  const j = await runChild<{ row: Row; slowSteps: string[] }>("./push-pull-child.ts", [JSON.stringify(c), String(windowMs), dataDir], STAGE_TIMEOUT_MS);
  slowSteps.push(...j.slowSteps);
  return j.row;
}

/**
 * The bare worker a floor runs: "raw" parses the update and reads the clock (bench/lib/raw-tablet.ts),
 * the floor the issue's target is judged against; "role" also does the tablet role's own work on it
 * with no runtime around it (bench/lib/role-tablet.ts), which splits push's ratio into the role's
 * share and the runtime's (roleSplit); "node" is one real tablet node fed the same posts
 * (bench/lib/node-tablet.ts), run by hand to find where push's time goes.
 */
export type FloorWorker = "raw" | "role" | "node";

const FLOOR_WORKERS: Record<FloorWorker, string> = { raw: "./lib/raw-tablet.ts", role: "./lib/role-tablet.ts", node: "./lib/node-tablet.ts" };

export function floorWorkerUrl(worker: FloorWorker = "raw"): string {
  return new URL(FLOOR_WORKERS[worker], import.meta.url).href;
}

/** What the floor's stage is asked to do (bench/lib/push-pull-child.ts runs rawFanOut with it). */
export interface FloorConfig {
  floor: true;
  tablets: number;
  updates: number;
  warm: number;
  /** Default "raw". */
  worker?: FloorWorker;
}

/** The floor in a child process too, as push is measured: from a clean process, and killed and reported if it hangs. */
async function floorInChild(f: Omit<FloorConfig, "floor">): Promise<BaselineRow> {
  const config: FloorConfig = { floor: true, ...f };
  return (await runChild<{ row: BaselineRow }>("./push-pull-child.ts", [JSON.stringify(config)], STAGE_TIMEOUT_MS)).row;
}

/** What the packed floor's stage is asked to do (bench/lib/push-pull-child.ts runs packedFloor with it). */
export interface PackedFloorConfig extends PackedFloorOptions {
  packedFloor: true;
}

/**
 * The packed floor's warm-up posts come this far apart: the JIT counts calls, not time, and 400
 * updates at cacofonix's pace would take a minute for no other gain. Its window runs at that pace.
 */
const PACKED_FLOOR_WARM_GAP_MS = 2;

async function packedFloorInChild(tablets: number, threads: number, quick: boolean): Promise<PackedFloorRow> {
  const config: PackedFloorConfig = { packedFloor: true, tablets, threads, updates: Math.floor(pushWindowMs(quick) / RATE_MS), gapMs: RATE_MS, warm: warmUpdates(quick), warmGapMs: PACKED_FLOOR_WARM_GAP_MS };
  return (await runChild<{ row: PackedFloorRow }>("./push-pull-child.ts", [JSON.stringify(config)], STAGE_TIMEOUT_MS)).row;
}

export async function measure(c: Config, windowMs: number, dataDir: string): Promise<Row> {
  const cluster = await startCluster({ system: "olympics", nodes: topology(c), seed: 1, dataDir, fresh: true, logLevel: "error", threads: c.threads });
  try {
    // Warm up: every tablet has registered (so obelix holds a link to it) or polled a few times. A
    // busy machine warms up slowly: give up only when no more tablets have become ready for 120 s.
    let deadline = cluster.now() + 120_000;
    let mostReady = 0;
    for (;;) {
      const states = await inspectAll(cluster, c.tablets);
      const ready = states.filter((s) => (s.mode === "push" ? s.registered && s.changes >= (c.warmChanges ?? 2) : s.polls >= 3 && s.changes >= 2)).length;
      if (ready === c.tablets) break;
      if (ready > mostReady) [mostReady, deadline] = [ready, cluster.now() + 120_000];
      if (cluster.now() > deadline) throw new Error(`${ready}/${c.tablets} tablets ready, none more for 120 s`);
      // Samples taken so far are never used: dropped, so that each look at 500 tablets stays small
      // (a pull tablet keeps up to 20,000 of each, and a slow warm-up made every look slower still).
      await resetSamples(cluster, c.tablets);
      await cluster.sleep(250);
    }
    await resetSamples(cluster, c.tablets);
    const from = cluster.now();
    const threads0 = threadCpuSnapshot();
    const cpu0 = process.cpuUsage();
    await cluster.sleep(windowMs);
    const cpu = process.cpuUsage(cpu0);
    const { cpuMsByThread, workerWakes: wakes } = threadWindowSince(threads0);
    await requestRetry(cluster, "cacofonix", { type: "cacofonix_stop" }, RATE_MS + 10_000);
    // Let every tablet catch up with the last update, so none is counted as never arriving.
    const obelix = (await inspectRetry<ObelixSnapshot>(cluster, "obelix"))!;
    const last = obelix.tallies.find((t) => t.team === "Gaul")!.version;
    const catchUp = cluster.now() + 30_000;
    while (cluster.now() < catchUp) {
      const states = await inspectAll(cluster, c.tablets);
      if (states.every((s) => (s.tallies.Gaul?.version ?? -1) >= last)) break;
      await cluster.sleep(100);
    }
    const states = await inspectAll(cluster, c.tablets);
    const updates = obelix.stats.recentUpdates.filter((u) => u.key === "tally/Gaul" && u.at >= from);
    const d = delays(updates, states);
    const prop = summarize(d.ms);
    const req = c.mode === "pull" ? summarize(states.flatMap((s) => s.requestMs)) : null;
    const fanOut = c.mode === "push" ? summarize(obelix.stats.fanOutMs.slice(-updates.length)) : null;
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    return {
      mode: c.mode,
      tablets: c.tablets,
      pollMs: c.pollMs,
      propagationP50Ms: r3(prop.p50),
      propagationP99Ms: r3(prop.p99),
      propagationMaxMs: r3(prop.max),
      requestP50Ms: req ? r3(req.p50) : null,
      requestP99Ms: req ? r3(req.p99) : null,
      requestMaxMs: req ? r3(req.max) : null,
      updates: updates.length,
      samples: prop.n,
      superseded: d.superseded,
      missing: d.missing,
      propagationMinMs: r3(d.ms.reduce((m, v) => Math.min(m, v), Infinity)),
      fanOutP50Ms: fanOut ? r3(fanOut.p50) : null,
      cpuUsPerPush: c.mode === "push" && updates.length > 0 ? r3((cpu.user + cpu.system) / updates.length / c.tablets) : null,
      cpuMsByThread,
      wakesPerPush: c.mode === "push" && updates.length > 0 && wakes !== null ? r3(wakes / updates.length / c.tablets) : null,
    };
  } finally {
    if (cluster.lateAnswers > 0) slowSteps.push(`${c.mode} ${c.tablets} tablets: ${cluster.lateAnswers} control calls answered past their timeout, waited for while the calls sent with them kept being answered`);
    await cluster.stop();
  }
}

/**
 * The floor for push: the same fan-out (a push-sized message to each of N threads, every RATE_MS)
 * over raw MessageChannels to bare workers, without the node runtime. Push cannot beat it: the
 * update goes in its cheapest form, the body's JSON text built once and posted to every port (as the
 * runtime posts it on a node's links: port-codec.ts toLink), and each bare worker only parses it
 * and reads the clock as a tablet does (bench/lib/raw-tablet.ts; the figures below, up to that
 * file's, were taken against a floor that read a slower clock and was ~10% slower for it).
 *
 * What lies between them at 500 tablets (perf with JSC's jitdump, bench/lib/perf-threads.ts): the
 * p50 follows the CPU each woken thread takes on its own thread, as 500 wakes share 2 cores while
 * the sender's posts hold one of them (the median recipient waits for about half the posts and
 * half the other recipients' wakes). Work on other threads afterwards is not on that path: with mimalloc's hole purging
 * off (MIMALLOC_PURGE_HOLES=0) its scavenger thread's CPU in the window fell from 990 to 80 ms and
 * the push p50 did not move (7.86, 7.83 ms). A bare worker's wake is
 * ~28 µs, nearly all of it Bun's own (the event loop, the port, JSON.parse) and the kernel's, with
 * under 1 µs of JS. A tablet's was about twice that, mostly JS: the node runtime's receive path,
 * then the role's handler (validate, apply, record). Each thread has its own VM and compiles its own
 * code, and 500 other threads have run since its last turn, so all of it runs cold.
 *
 * Most of that JS ran unoptimized. JSC optimizes (DFG) a function only once most of the places it
 * profiles in it have run (CodeBlock::shouldOptimizeNow; BUN_JSC_verboseOSR=1 prints each
 * decision), else it waits again, up to five times. `deliver`, with the paused queue, replies, the
 * clock nemesis and errors written in it, took ~1,350 messages here (the jitdump's load times); the
 * tablet's push handler and apply, with refusals, stale values, both kinds of value and the log
 * line in them, likewise. A tablet saw ~600 pushes in this bench, so in the window those three
 * ran as baseline JIT code: a third of a tablet thread's CPU, against 2% of a bare worker's.
 * Written with only what every push does and the rest in functions of their own, each is
 * optimized after ~130–170 pushes (test/push-tier.test.ts). Push p50 at 500, interleaved rounds,
 * written so against the earlier form (warm-up 300 for both):
 * - a bare worker with the real runtime and tablet role, fed as here: 7.13, 7.25, 7.86 ms against
 *   8.80, 8.27, 7.57 (floor 5.91, 5.88);
 * - the whole system: 7.67, 7.41, 7.53 ms against 8.66, 9.06 (floor 5.56, 5.59, 5.38), CPU per push
 *   64–67 µs against 78–81.
 * Their compiles are why the warm-up is 400 updates (warmUpdates). Earlier attempts that did not
 * move the p50: lowering JSC's tier-up thresholds for the whole process (the compiler thread took
 * back what the workers saved), and calling fewer runtime functions per message while those
 * functions were still unoptimized. Those figures are too high: measure()'s warm-up inspects every
 * tablet, the last time just before the window (the bare worker's harness did too), and a tablet's
 * inspect then threw the optimized push path away (docs/architecture.md, "Hot paths stay
 * optimized"). With that fixed, the whole system against this floor, interleaved in one run: 6.70,
 * 7.60, 7.57 ms against 5.50, 6.24, 6.14 (1.22×; CPU per push 60–67 µs against 39–45).
 * The p50 follows the fan-out's total CPU: it was ~0.52 of the time from the first post to the last
 * delivery in the whole system, in a bare worker holding the real runtime and role, and here. No
 * single layer shows as the rest: the real worker host around each tablet (NodeHost, Links) measured
 * no cost against that bare worker (6.19 against 6.13 ms), and a pending timer on every tablet (the
 * registration lease) none in the whole system. A tablet's work itself, written flat in one small
 * script, came within ~1.1× of the older floor (p50 at 500: 6.28, 5.90, 5.96 ms against 5.75, 5.25,
 * 5.56, interleaved).
 * Where a tablet thread's CPU goes now, against a bare worker's (perf with the jitdump, 15 s of
 * each window at 500; p50 6.95 against 5.62 ms): 7,310 samples in the tablets' threads against
 * 4,794 in the bare workers (1.52×): Bun's own code 4,059 against 3,198, JIT-compiled JS 1,714
 * against 157, the kernel 1,461 against 1,359. Obelix's thread took 2,013 against the floor
 * sender's 1,757, so the gap is on the receiving side, and JS is two thirds of it: about 9 µs per
 * push, spread over the small functions on its path (the link's decode, deliver, isMessage, the
 * handler, asTally, apply) and their inline caches, each under 1.5 µs. Warm, on a packed thread,
 * the same path takes ~2 µs (bench/lib/fanout-profile.ts); on a thread woken cold after 500 others,
 * its code and data are in no cache. Validating a tally in place instead of copying it moved
 * nothing measurable there (fanout-profile, 3 runs each: 1.81–2.12 µs against 1.72–2.06).
 * What a thread only holds costs nothing measurable: bare workers that also loaded the runtime's
 * modules and the olympics roles and opened a memory sqlite, none of it run per push (heap after a
 * full collection 555 KB against 146 KB), took 5.58, 4.77, 5.11 ms against 4.88, 4.73, 5.09
 * (interleaved). The sender's loop is not a fixed cost either: from first post to last, the floor's
 * took 8.6–10.5 ms (p50 over updates) against obelix's fan-out of 11.5–12.8 ms, because woken
 * workers take the cores from it. Both track the fan-out's total CPU.
 * Where the gap is, from a fresh clone, floors fed the same raw posts and the whole system, 3
 * interleaved rounds at 500, p50 (CPU per push): raw-tablet.ts 5.05, 5.89, 5.62 ms (35–43 µs); the
 * role's work flat (role-tablet.ts) 5.58, 5.30, 5.92 (38–43); a real tablet node (node-tablet.ts)
 * 6.90, 6.27, 6.49 (48–53); the whole system 7.24, 7.52, 7.40 (65–68). Medians: role / raw 1.05×,
 * node / role 1.18×, system / node 1.14×, system / raw 1.32×. So about half the gap is the tablet's
 * runtime path and half is what the system has beyond one tablet node.
 * - The tablet role as written costs nothing over its work written flat: a node whose role does
 *   exactly role-tablet.ts's work was as slow as the real tablet (6.71, 6.56, 6.18 ms against 6.50,
 *   6.40, 6.71, in a run where the node floor's registration was unanswered, see below).
 * - A started runtime idle in the thread costs nothing: role-tablet.ts's work beside a started,
 *   unused tablet node took 6.09, 5.91 ms against 5.46, 6.07 for the role floor.
 * - Fewer functions between the port and deliver do not move the system. In the node floor, a port
 *   handing the body's text straight to deliver (no fromLink, no host's or slot's receive) took
 *   5.06–5.52 ms (median 5.18, 9 rounds) against 5.29–5.88 (5.64, 6 rounds) through them, with
 *   fromLink alone or the slot's receive alone in between (interleaved). Built into the worker host
 *   (one listener per port link doing that, every check kept), the node floor took 5.09, 5.31, 5.63
 *   against 5.28, 5.70, 5.42, and the whole system 5.73, 5.77, 5.74 against 5.74, 5.82, 5.77: not kept.
 * - Neither tiering nor collection is the receiving path's share. In the whole system at 500,
 *   fromLink, deliver, isMessage, asTally, apply and the node's now are optimized in every tablet's
 *   thread before the window, and lowering JSC's threshold (BUN_JSC_thresholdForOptimizeAfterWarmUp
 *   =100) moved nothing (6.66, 6.91 ms against 6.74, 7.54 lowered); raising its inlining limits made
 *   the node floor far worse (8.26 ms, 119 µs a push, the compiler's threads busy in the window).
 *   Less optimized code is not cheaper cold either: with JSC's JIT off (BUN_JSC_useJIT=0) the whole
 *   system took 8.96, 9.56 ms and with the baseline tier only (useDFGJIT=0) 9.11, against 6.12, 6.63.
 *   JSC's GC log gives ~1–1.5 eden collections per thread in a window, pausing 0.31 s in all in the
 *   node floor and 0.36 s in the role floor, against ~5.5 s of CPU. What is left, ~6–12 µs of CPU
 *   per push, is the receive path as optimized code run cold: ~10 more functions than the flat work
 *   (the link's handler, fromLink, the host's receive, the slot's, deliver, isMessage, the handler
 *   table, the handler, apply, the node clock's chain), each its own code and data.
 * - The system's share beyond the node floor is on the sender's side, not in the worker host
 *   around each tablet. Interleaved, from scratch harnesses: the node floor inside worker.ts's real
 *   host (started over comlink as the supervisor starts it, its link granted as the supervisor
 *   grants one) took 5.63, 5.32, 5.36, 5.34, 5.33, 5.51 ms, against 5.78, 5.63, 5.70, 5.45, 5.31,
 *   5.51 for the node floor and 5.89, 6.25, 6.27 for the whole system. Fanning out to raw-tablet.ts
 *   workers in place of the floor's loop, a bare node's sendMany took 4.65, 4.52, 4.73 ms and obelix's
 *   whole write path (cacofonix's request, the durable write, sendMany, the reply) 4.89, 4.96, 4.85,
 *   against 4.49, 4.51, 4.36 for the loop: 1.035× and 1.09×. Of obelix's share, its durable write
 *   between an update's stamp and its first post (a memory transaction of two puts, the tally and
 *   its write-log entry) took 0.10–0.15 ms p50, run cold; it stays first, as a tablet must never show
 *   a value obelix could still lose. So of the whole system's ~1.3× over the floor about 1.09× is
 *   obelix's side, and the rest is the tablets' receive path (above): the real host around it costs
 *   nothing. With storage mode memory a MemoryStorage now, obelix's stamp to the start of its fan-out
 *   took 0.037 ms p50 in the whole system (0.6% of push's p50): its share is the posts themselves.
 * - mimalloc's purging of freed memory is off the path too, not only its hole purging: with all of
 *   it off (MIMALLOC_PURGE_DELAY=-1 MIMALLOC_PURGE_HOLES=0) its scavenger thread's ~0.7 s of CPU in
 *   the window went and CPU per push fell by up to 9 µs, but the whole system's p50 did not move:
 *   5.73, 6.37, 6.29, 6.02 ms against 6.58, 5.98, 6.36, 5.95 with the defaults (interleaved).
 * - A tablet's thread wakes no more often than a bare worker's, and collects no more often: in the
 *   window (10 s samples of /proc/<pid>/task/<tid>/status, one run each at 500), voluntary context
 *   switches per update per thread were 0.92–0.94 for push's tablets and 0.93–0.99 for the floor's
 *   workers (now `wakesPerPush` in each row); obelix was preempted ~101 times per fan-out, the
 *   floor's sender ~107. JSC's GC log (BUN_JSC_logGC=1) gave as many eden collections in the window
 *   for both, mostly the 30 s idle burst (bench/lib/gc-timer.ts); the tablets' heaps were 2.2 MB
 *   against 0.64 MB. The supervisor's heap, ~100 MB after the warm-up's inspections, collected once
 *   a second in the window at 1.0–1.9 ms a collection, beside ~5 s of the fan-outs' CPU: not the gap.
 * - The sender's being preempted by the threads it wakes is part of both: with every worker thread
 *   in SCHED_BATCH (a woken thread then does not preempt the running one; scratch, through libc's
 *   sched_setscheduler), the floor took 4.68, 4.23 ms against 5.18, 5.11 and push 5.81, 5.91
 *   against 6.14, 6.39 (obelix's fan-out 8.4 ms against 11.4–11.9), interleaved at 500. It helps
 *   the floor more, so the ratio is worse (~1.3× against ~1.22×), and it would change how every
 *   system's nodes are scheduled: not kept.
 * - The node floor must have its registration answered (node-tablet.ts does): unanswered, its
 *   deliver never saw a reply, and JSC, which waits for a function's paths to be profiled, left
 *   deliver in the baseline tier in all 500 threads for all 650 pushes (BUN_JSC_reportCompileTimes=1).
 *   It read 7.14, 7.68 ms against 6.45, 6.33 with JSC's threshold lowered so that deliver was
 *   optimized (interleaved), and so looked as slow as the whole system: an earlier reading of
 *   these floors put the whole gap in the receiving node for that reason.
 */
export interface BaselineRow {
  tablets: number;
  propagationP50Ms: number;
  propagationP99Ms: number;
  propagationMaxMs: number;
  /** CPU time of the whole process during the updates, per update per worker (µs). */
  cpuUsPerPush: number;
  /** As Row's. */
  cpuMsByThread: Record<string, number> | null;
  /** As Row's: the bare workers' wakes per update per worker. */
  wakesPerPush: number | null;
}

/** How long a bare worker may take to answer the floor (it answers in milliseconds): past it, the stage fails and says which step. */
const FLOOR_ANSWER_MS = 60_000;

/** `url` and `answerMs` are for tests: another bare worker's script, a shorter wait. */
export async function rawFanOut(n: number, updates: number, warm = 0, url = floorWorkerUrl("raw"), answerMs = FLOOR_ANSWER_MS): Promise<BaselineRow> {
  const workers: Worker[] = [];
  const ports: MessagePort[] = [];
  // Every wait on a worker is bounded: one full run hung here for good (a worker's answer never came,
  // at 50 workers, after every stage before it), and a hang must be a failed stage, not a stuck bench.
  const once = (w: Worker, step: string) => workerAnswer(w, `floor, ${n} bare workers: ${step}`, answerMs);
  try {
    const ready: Promise<unknown>[] = [];
    for (let i = 0; i < n; i++) {
      const w = new Worker(url);
      const ch = new MessageChannel();
      workers.push(w);
      ready.push(once(w, `worker ${i + 1} starting`));
      w.postMessage({ port: ch.port2 }, [ch.port2]);
      ports.push(ch.port1);
    }
    await Promise.all(ready);
    await Bun.sleep(500);
    const collect = async () => {
      const all: number[] = [];
      for (const [i, w] of workers.entries()) {
        const got = once(w, `worker ${i + 1} handing over its samples`);
        w.postMessage("collect");
        all.push(...((await got) as number[]));
      }
      return all;
    };
    let k = 0;
    const post = async (count: number) => {
      for (const end = k + count; k < end; ) {
        k++;
        const body = { type: "tally_update", tally: { team: "Gaul", gold: k, silver: 0, bronze: 0, version: k, updatedAt: realNow() } };
        const text = JSON.stringify(body);
        for (const port of ports) port.postMessage(text);
        await Bun.sleep(RATE_MS);
      }
    };
    // The same warm-up as the tablets get (see measure), its samples dropped.
    await post(warm);
    await collect();
    const threads0 = threadCpuSnapshot();
    const cpu0 = process.cpuUsage();
    await post(updates);
    const cpu = process.cpuUsage(cpu0);
    const { cpuMsByThread, workerWakes: wakes } = threadWindowSince(threads0);
    const all = await collect();
    const st = summarize(all);
    const r3 = (v: number) => Math.round(v * 1000) / 1000;
    return {
      tablets: n,
      propagationP50Ms: r3(st.p50),
      propagationP99Ms: r3(st.p99),
      propagationMaxMs: r3(st.max),
      cpuUsPerPush: r3((cpu.user + cpu.system) / updates / n),
      cpuMsByThread,
      wakesPerPush: wakes === null ? null : r3(wakes / updates / n),
    };
  } finally {
    for (const w of workers) w.terminate();
  }
}

function configs(quick: boolean, only?: number[]): Config[] {
  const ns = only ?? (quick ? [1, 10, 50] : [1, 10, 50, 100, 500]);
  const polls = quick ? [100] : [50, 200, 1000];
  return ns.flatMap((n) => [{ mode: "push" as const, tablets: n, pollMs: null, warmChanges: warmUpdates(quick) }, ...polls.map((p) => ({ mode: "pull" as const, tablets: n, pollMs: p }))]);
}

function seriesName(r: Row): string {
  return r.mode === "push" ? "push" : `pull every ${r.pollMs} ms`;
}

/** `packed`: push with packed threads, and its floor's rows (every round; the plot takes each size's median). */
export async function plots(rows: Row[], dir: string, baseline: BaselineRow[] = [], packed: { threads: number; rows: Row[]; floorRows: PackedFloorRow[] } | null = null): Promise<string[]> {
  const push = rows.filter((r) => r.mode === "push");
  const pull = rows.filter((r) => r.mode === "pull");
  const long = (rs: Row[], label: (r: Row, stat: string) => string) =>
    rs.flatMap((r) => [
      { tablets: r.tablets, ms: Math.max(r.propagationP50Ms, 0.001), series: label(r, "p50") },
      { tablets: r.tablets, ms: Math.max(r.propagationP99Ms, 0.001), series: label(r, "p99") },
    ]);
  const files = [join(dir, "push-pull-latency_push.svg"), join(dir, "push-pull-latency_pull.svg"), join(dir, "push-pull-comparison.svg")];
  await writeSvg(
    files[0]!,
    lineChart({
      title: "Push: propagation delay against tablets",
      rows: [
        ...long(push, (_, s) => `thread per node: propagation ${s}`),
        ...push.map((r) => ({ tablets: r.tablets, ms: Math.max(r.fanOutP50Ms ?? 0, 0.001), series: "thread per node: obelix's fan-out p50 (send to all)" })),
        ...baseline.map((b) => ({ tablets: b.tablets, ms: Math.max(b.propagationP50Ms, 0.001), series: "thread per node, floor: raw MessageChannel fan-out p50" })),
        ...(packed?.rows ?? []).map((r) => ({ tablets: r.tablets, ms: Math.max(r.propagationP50Ms, 0.001), series: `packed into ${packed!.threads} threads: propagation p50` })),
        ...[...new Set((packed?.floorRows ?? []).map((r) => r.tablets))].map((n) => ({
          tablets: n,
          ms: Math.max(valueSpread(packed!.floorRows.filter((r) => r.tablets === n).map((r) => r.propagationP50Ms)).median, 0.001),
          series: `packed floor: ${packed!.threads} bare threads, p50`,
        })),
      ],
      x: "tablets",
      y: "ms",
      series: "series",
      xTitle: "tablets",
      yTitle: "ms",
      xLog: true,
      yLog: true,
    }),
  );
  await writeSvg(
    files[1]!,
    lineChart({ title: "Pull: propagation delay against tablets", rows: long(pull, (r, s) => `every ${r.pollMs} ms, ${s}`), x: "tablets", y: "ms", series: "series", xTitle: "tablets", yTitle: "propagation delay (ms)", xLog: true, yLog: true }),
  );
  // Side by side on one shared log scale: push on the left, pull (one line per interval) on the right.
  await writeSvg(files[2]!, {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: "Push against pull: propagation delay (solid p50, dashed p99)",
    data: {
      values: rows.flatMap((r) =>
        (["p50", "p99"] as const).map((stat) => ({
          mode: r.mode,
          tablets: r.tablets,
          stat,
          series: seriesName(r),
          line: `${seriesName(r)} ${stat}`,
          ms: Math.max(stat === "p50" ? r.propagationP50Ms : r.propagationP99Ms, 0.001),
        })),
      ),
    },
    facet: { column: { field: "mode", type: "nominal", title: null, sort: ["push", "pull"] } },
    spec: {
      width: 360,
      height: 300,
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "tablets", type: "quantitative", scale: { type: "log" }, title: "tablets" },
        y: { field: "ms", type: "quantitative", scale: { type: "log" }, title: "propagation delay (ms)" },
        color: { field: "series", type: "nominal", title: null },
        strokeDash: { field: "stat", type: "nominal", title: null },
        detail: { field: "line", type: "nominal" },
      },
    },
    resolve: { scale: { y: "shared" } },
  } as TopLevelSpec);
  return files;
}

/** A line to print: a target met or missed, or (ok null) a figure shown beside them and not judged. */
export interface Verdict {
  target: string;
  ok: boolean | null;
  detail: string;
}

/**
 * The issue's targets, as lines to print. The 5× bound on 500 tablets against 1 is the issue's for
 * packed threads (`scaleJudged`); with one thread per node, 500 threads share the machine's cores,
 * so that ratio is shown and not judged (its bound there is the floor's, floorVerdict).
 */
export function verdicts(rows: Row[], scaleJudged = true): Verdict[] {
  const push = new Map(rows.filter((r) => r.mode === "push").map((r) => [r.tablets, r]));
  const out: Verdict[] = [];
  const ns = [...push.keys()].sort((a, b) => a - b);
  const lo = push.get(ns[0]!);
  const hi = push.get(ns[ns.length - 1]!);
  if (lo && hi && ns.length > 1) {
    const ratio = hi.propagationP50Ms / lo.propagationP50Ms;
    const detail = `${hi.propagationP50Ms} ms vs ${lo.propagationP50Ms} ms (${ratio.toFixed(1)}×)`;
    if (scaleJudged) out.push({ target: `push p50 at ${hi.tablets} tablets ≤ 5× p50 at ${lo.tablets}`, ok: ratio <= 5, detail });
    else out.push({ target: `push p50 at ${hi.tablets} tablets against ${lo.tablets}, one thread per node (the 5× bound is for packed threads)`, ok: null, detail });
  }
  for (const n of ns) {
    const p = push.get(n)!;
    const pulls = rows.filter((r) => r.mode === "pull" && r.tablets === n);
    const best = pulls.reduce<Row | null>((b, r) => (!b || r.propagationP50Ms < b.propagationP50Ms ? r : b), null);
    if (best) out.push({ target: `push beats pull's p50 at ${n} tablets`, ok: p.propagationP50Ms < best.propagationP50Ms, detail: `push ${p.propagationP50Ms} ms, best pull (every ${best.pollMs} ms) ${best.propagationP50Ms} ms` });
  }
  return out;
}

/** The issue's bound for thread-per-node push against its floor at the largest size. */
export const FLOOR_RATIO_TARGET = 1.25;

/** One round of push and its floors at the same size, measured back to back. */
export interface FloorRound {
  pushP50Ms: number;
  floorP50Ms: number;
  /** The role's floor in the same round (FloorWorker "role"); absent when its stage failed. */
  roleFloorP50Ms?: number;
}

/**
 * Push's ratio to its floor, split at the role's floor: what the tablet's own work costs (the role's
 * floor against the raw one) and what the runtime costs (push against the role's floor), each as a
 * median over the rounds that measured the role's floor; null when none did.
 */
export function roleSplit(rounds: FloorRound[]): { role: Spread; runtime: Spread; rounds: number } | null {
  const measured = rounds.filter((r): r is Required<FloorRound> => r.roleFloorP50Ms !== undefined);
  if (measured.length === 0) return null;
  const role = measured.map((r) => r.roleFloorP50Ms);
  return {
    role: ratioSpread(role, measured.map((r) => r.floorP50Ms)),
    runtime: ratioSpread(measured.map((r) => r.pushP50Ms), role),
    rounds: measured.length,
  };
}

/**
 * Push against its floor over interleaved rounds: the median ratio and its range, and whether the
 * rounds fall on both sides of the target (then the run cannot say which side push is on).
 */
export function floorVerdict(tablets: number, rounds: FloorRound[], target = FLOOR_RATIO_TARGET): RoundsVerdict {
  return roundsVerdict(
    `push p50 at ${tablets} tablets ≤ ${target}× its floor (median of ${rounds.length} interleaved rounds)`,
    rounds.map((r) => r.pushP50Ms),
    rounds.map((r) => r.floorP50Ms),
    target,
  );
}

/** The issue's bound for packed push at the largest size against 1 tablet. */
export const PACKED_SCALE_TARGET = 5;

/** One round of packed push at the largest size and at the smallest, measured back to back. */
export interface PackedRound {
  hiP50Ms: number;
  loP50Ms: number;
  /** The packed floor at the same two sizes in the same round (bench/lib/packed-floor.ts); absent when a stage of it failed. */
  floorHiP50Ms?: number;
  floorLoP50Ms?: number;
}

/**
 * Packed push against the packed floor, over the rounds that measured it: what the runtime costs at
 * the largest size and at the smallest, and the floor's own ratio of the one to the other (how far
 * apart the two sizes sit when a delivery costs next to nothing); null when no round did.
 */
export function packedFloorSplit(rounds: PackedRound[]): { floorScale: Spread; hi: Spread; lo: Spread; rounds: number } | null {
  const measured = rounds.filter((r): r is Required<PackedRound> => r.floorHiP50Ms !== undefined && r.floorLoP50Ms !== undefined);
  if (measured.length === 0) return null;
  const floorHi = measured.map((r) => r.floorHiP50Ms);
  const floorLo = measured.map((r) => r.floorLoP50Ms);
  return {
    floorScale: ratioSpread(floorHi, floorLo),
    hi: ratioSpread(measured.map((r) => r.hiP50Ms), floorHi),
    lo: ratioSpread(measured.map((r) => r.loP50Ms), floorLo),
    rounds: measured.length,
  };
}

/**
 * Packed push at `hi` tablets against `lo` over interleaved rounds: this machine's speed moves by 2–3×
 * between minutes (the 1-tablet p50 0.05–0.15 ms in one hour), so a ratio of two stages taken
 * minutes apart says as much about the machine as about push; each round's pair is taken together.
 */
export function packedVerdict(hi: number, lo: number, rounds: PackedRound[], target = PACKED_SCALE_TARGET): RoundsVerdict {
  return roundsVerdict(
    `push p50 at ${hi} tablets ≤ ${target}× p50 at ${lo} (median of ${rounds.length} interleaved rounds)`,
    rounds.map((r) => r.hiP50Ms),
    rounds.map((r) => r.loP50Ms),
    target,
  );
}

export interface RoundsVerdict {
  target: string;
  ok: boolean;
  noisy: boolean;
  detail: string;
  median: number;
  lo: number;
  hi: number;
}

/** A ratio bounded by `target`, judged by its median over rounds; rounds on both sides of it say so. */
function roundsVerdict(target: string, values: number[], baselines: number[], bound: number): RoundsVerdict {
  const s = ratioSpread(values, baselines);
  const noisy = s.lo <= bound && s.hi > bound;
  const each = values.map((v, i) => (v / baselines[i]!).toFixed(2)).join(", ");
  return {
    target,
    ok: s.median <= bound,
    noisy,
    detail: `${s.median.toFixed(3)}× (${s.lo.toFixed(2)}..${s.hi.toFixed(2)}; rounds ${each})${noisy ? `; NOISY: the rounds fall on both sides of ${bound}` : ""}`,
    median: s.median,
    lo: s.lo,
    hi: s.hi,
  };
}

export const bench: Bench = {
  name: "push-pull",
  description: "olympics: update propagation to N tablets, obelix pushing against tablets polling",
  async run(opts: BenchOptions) {
    // --stages and --tablets pick a subset (to compare two builds on the push stages, say); the JSON keeps its shape.
    const runs = (stage: string) => !opts.stages || opts.stages.includes(stage);
    const all = configs(opts.quick, opts.tablets);
    const ns = [...new Set(all.map((c) => c.tablets))];
    const cfgs = all.filter((c) => runs(c.mode));
    const dataDir = mkdtempSync(join(tmpdir(), "menhir-push-pull-"));
    const rows: Row[] = [];
    const baseline: BaselineRow[] = [];
    // Push again with every node packed into one thread per core (--threads): the floor of a thread per node is the OS scheduler.
    // Where its 500-tablet p50 (~0.9 ms) goes, instrumented (5 runs): ~0.19 ms from obelix's stamp to
    // its lane post (its commit and the fan-out's set-up), then each thread delivers its 250 at 2–3 µs
    // each. The other thread takes the post up within ~0.1 ms in the median update (0.6 ms in one run
    // of the five), and after 0.84–1.04 ms in the slowest tenth: behind the posting thread's own
    // deliveries (2 cores, 3+ busy threads). Cacofonix on obelix's thread instead did not move the
    // p50 (0.83–1.00 ms against 0.92–0.98, 3 interleaved runs each).
    // Behind that late take-up: unpinned, the two threads mostly ran one after the other on one CPU
    // (Linux's wake-affine placement): the other thread's first delivery came late in the posting
    // thread's run or after it (medians per window 0.40–0.82 ms against its last at 0.55–0.77, 4
    // windows). Pinned one per CPU (the default now, cpu-affinity.ts) it came early (0.16–0.28 against
    // 0.35–0.97, 6 windows).
    // In stages at 500 (4 interleaved rounds, each with the 1-tablet stage beside it): p50 0.22–0.60 ms
    // pinned against 0.28–0.77 unpinned, 3.5–5.3× the round's 1-tablet p50 against 2.9–12.9×. This
    // machine's speed itself moves by 2–3× between minutes (the 1-tablet p50 0.05–0.15 ms), hence rounds.
    // Against the packed floor (the same fan-out in 2 bare pinned threads, packed-floor.ts), three
    // full-size runs of 3 rounds each: the floor's own p50 at 500 was 1.5–2.4× its p50 at 1
    // (0.032–0.055 against 0.013–0.034 ms), push's 3.0–5.0×; push / floor 8–14× at 500, 5–9× at 1.
    // So the 5× bound is far above what the machine allows, and what push pays at 500 is
    // the runtime's cost per delivery on a thread whose data went cold in the 137 ms since the last
    // update: a tablet's handling of a push took ~0.3 µs with updates 2 ms apart and ~2 µs at 30 ms
    // or more, and ~2 µs for the last tablets of an update as for the first (2.7 µs for its first 32):
    // each tablet's own data, not the shared code (fanout-profile.ts --rateMs). Keeping the CPU busy
    // between updates (a spinning idle-priority process on its CPU) did not bring it down. A variant
    // of the floor whose tablets each read K small objects scattered over their thread's heap came
    // to push's p50 near K = 50 (p50 at 500: 0.06, 0.14, 0.20–0.26, 0.34–0.37 ms at K 0, 10, 25, 50;
    // laid out per tablet, 100 cost about what 25 scattered did): what a delivery costs here is how many
    // scattered per-node objects it touches (host, slot, runtime, stats, handlers, closures, state, clock, samples).
    // Obelix's commit was one such cold path: its storage (mode memory) was an in-memory SQLite database,
    // whose code ran once per update between the stamp and the fan-out; a MemoryStorage now
    // (runtime/memory-storage.ts has the before and after). So were a tablet's clock read and its
    // record of what it applied: node.now() went through the node's clock, its Env and the slot's
    // wrapper, and the record was three arrays. Without either, nor the tablet's latency sample
    // (fanout-profile.ts --rateMs 137, 5 interleaved runs), a tablet's handling of a push took 0.72–1.01 µs against 1.44–1.94; with the
    // clock read straight from the runtime and one flat array (node.ts readClock, tablet.ts applied)
    // packed push at 500 took 0.448–0.464 ms against 0.464–0.512 (6 interleaved rounds). Looking a
    // kept lane list's recipients up once per version of the thread's nodes, not at every update
    // (lanes.ts), moved the harness's last delivery by ~0.1 µs per tablet and its p50 not at all: not kept.
    // Nor did counting a delivery in a field of the runtime instead of its stats object: 1.52–2.03 µs
    // (median 1.65) against 1.61–2.20 (1.65), 4 interleaved runs: not kept. Looking the handler up in a
    // null-prototype object instead of the Map (the type's string is fresh from JSON.parse each time)
    // read lower in 7 of 8 harness pairs, 1.44–2.11 µs (median 1.77) against 1.65–2.53 (2.15), and
    // in packed push at 500 (push-pull-child.ts, threads 2) 0.40–0.45 ms (median 0.43) against
    // 0.44–0.53 (0.50), lower in all 6 interleaved pairs (one by 1 µs), CPU per push 6.3–7.9
    // against 6.9–8.2 µs (an earlier 6 rounds had read inside the spread, 0.51 against 0.538): kept
    // (NodeRuntime's handlers). Thread per node at 500 could not tell it apart: 6.04–6.72 ms
    // (median 6.38) with the object against 5.98–7.11 (6.23) with the Map, 10 interleaved pairs, while the same harness
    // comparing one build with itself gave 6.20–6.62 (6.39) against 6.08–6.51 (6.23), 5 pairs: a
    // difference of ~2.5% between such medians is noise here. A one-entry cache of the last type
    // and its handler in front of the Map read 6.12–6.42 (6.35) against 6.07–6.64 (6.21), 5
    // pairs, nothing to tell apart either: not kept.
    const packed: Row[] = [];
    const PACKED_THREADS = 2;
    // Stages run in child processes, which inherit the environment: one setting for every stage and the floor.
    const timer = gcTimer();
    // Push and its floor at the largest size again, in rounds that alternate which goes first, so the
    // ratio the issue bounds is a median of interleaved rounds (the stages above are its first round).
    const floorRounds = runs("push") && runs("baseline") ? roundsFor(opts.quick, 3) : 0;
    // Each round also measures the role's floor (a tablet's own work, no runtime), to split push's ratio (roleSplit).
    // Packed push at the largest size and the smallest again, in rounds that alternate which goes first
    // (packedVerdict): the packed stages above are the first round.
    const packedRounds = runs("packed") && ns.length > 1 ? roundsFor(opts.quick, 3) : 0;
    // Each packed round also measures the packed floor at both sizes (packedFloorSplit).
    const bar = progress("push-pull", cfgs.length + (runs("packed") ? ns.length : 0) + (runs("baseline") ? ns.length : 0) + Math.max(0, floorRounds - 1) * 2 + floorRounds + Math.max(0, packedRounds - 1) * 2 + packedRounds * 2);
    const largestN = Math.max(...ns);
    const smallestN = Math.min(...ns);
    const rounds: FloorRound[] = [];
    const packedRoundsDone: PackedRound[] = [];
    const packedFloorRows: PackedFloorRow[] = [];
    // A stage that fails is reported and skipped; what was measured before it is still printed and written.
    const failed: Array<{ stage: string; error: string }> = [];
    const stage = async <T>(name: string, fn: () => Promise<T>, into?: T[]): Promise<T | undefined> => {
      bar.tick(name);
      let got: T | undefined;
      try {
        got = await fn();
        into?.push(got);
      } catch (e) {
        failed.push({ stage: name, error: e instanceof Error ? e.message : String(e) });
      }
      // Written after every stage (complete: false until the end), so a run cut short keeps what it measured.
      if (opts.json) writeJson(opts.json, { rows, baseline, packed: { threads: PACKED_THREADS, rows: packed, rounds: packedRoundsDone, floorRows: packedFloorRows }, floorRounds: { tablets: largestN, rounds }, failed, slowSteps, gcTimer: timer, complete: false });
      return got;
    };
    const windowMs = (c: Config) => (c.mode === "push" ? pushWindowMs(opts.quick) : Math.max(opts.quick ? 1500 : 3000, 4 * (c.pollMs ?? 0)));
    try {
      for (const c of cfgs) await stage(`${c.mode} ${c.tablets} tablets${c.pollMs ? ` every ${c.pollMs} ms` : ""}`, () => measureInChild(c, windowMs(c), dataDir), rows);
      for (const n of runs("packed") ? ns : []) {
        await stage(`push ${n} tablets, ${PACKED_THREADS} threads`, () => measureInChild({ mode: "push", tablets: n, pollMs: null, threads: PACKED_THREADS, warmChanges: warmUpdates(opts.quick) }, pushWindowMs(opts.quick), dataDir), packed);
      }
      const floorAt = (n: number, worker: FloorWorker = "raw") => floorInChild({ tablets: n, updates: Math.floor(pushWindowMs(opts.quick) / RATE_MS), warm: warmUpdates(opts.quick), worker });
      for (const n of runs("baseline") ? ns : []) await stage(`baseline ${n} bare workers`, () => floorAt(n), baseline);
      // Round 1 is the stages above (push first) and the role's floor; further rounds measure all three
      // again, in the reverse order in even rounds.
      const pushCfg = cfgs.find((c) => c.mode === "push" && c.tablets === largestN);
      const roleRound = (k: number) => stage(`role floor: ${largestN} bare workers doing a tablet's work, round ${k}`, () => floorAt(largestN, "role"));
      const add = (p: Row | undefined, f: BaselineRow | undefined, r: BaselineRow | undefined) =>
        p && f && rounds.push({ pushP50Ms: p.propagationP50Ms, floorP50Ms: f.propagationP50Ms, ...(r ? { roleFloorP50Ms: r.propagationP50Ms } : {}) });
      const first = { push: rows.find((r) => r.mode === "push" && r.tablets === largestN), floor: baseline.find((b) => b.tablets === largestN) };
      if (floorRounds > 0 && first.push && first.floor) add(first.push, first.floor, await roleRound(1));
      for (let k = 2; pushCfg && rounds.length > 0 && k <= floorRounds; k++) {
        const pushRound = () => stage(`push ${largestN} tablets, round ${k}`, () => measureInChild(pushCfg, windowMs(pushCfg), dataDir));
        const floorRound = () => stage(`baseline ${largestN} bare workers, round ${k}`, () => floorAt(largestN));
        if (k % 2 === 0) {
          const r = await roleRound(k);
          const f = await floorRound();
          add(await pushRound(), f, r);
        } else {
          const p = await pushRound();
          const f = await floorRound();
          add(p, f, await roleRound(k));
        }
      }
      const packedCfg = (n: number): Config => ({ mode: "push", tablets: n, pollMs: null, threads: PACKED_THREADS, warmChanges: warmUpdates(opts.quick) });
      const packedFloorAt = (n: number, k: number) => stage(`packed floor: ${n} tablets in ${PACKED_THREADS} bare threads, round ${k}`, () => packedFloorInChild(n, PACKED_THREADS, opts.quick), packedFloorRows);
      const packedRound = (hi: Row | undefined, lo: Row | undefined, floorHi: PackedFloorRow | undefined, floorLo: PackedFloorRow | undefined) => {
        if (!hi || !lo) return;
        const floor = floorHi && floorLo ? { floorHiP50Ms: floorHi.propagationP50Ms, floorLoP50Ms: floorLo.propagationP50Ms } : {};
        packedRoundsDone.push({ hiP50Ms: hi.propagationP50Ms, loP50Ms: lo.propagationP50Ms, ...floor });
      };
      // Round 1 is the packed stages above (from the smallest up), then the floor from the largest down.
      const packedFirst = { hi: packed.find((r) => r.tablets === largestN), lo: packed.find((r) => r.tablets === smallestN) };
      if (packedRounds > 0 && packedFirst.hi && packedFirst.lo) packedRound(packedFirst.hi, packedFirst.lo, await packedFloorAt(largestN, 1), await packedFloorAt(smallestN, 1));
      for (let k = 2; packedRoundsDone.length > 0 && k <= packedRounds; k++) {
        const at = (n: number) => stage(`push ${n} tablets, ${PACKED_THREADS} threads, round ${k}`, () => measureInChild(packedCfg(n), pushWindowMs(opts.quick), dataDir));
        // Even rounds: the floor first, each from the largest down; odd ones: push first, each from the smallest up.
        if (k % 2 === 0) {
          const floorHi = await packedFloorAt(largestN, k);
          const floorLo = await packedFloorAt(smallestN, k);
          const hi = await at(largestN);
          packedRound(hi, await at(smallestN), floorHi, floorLo);
        } else {
          const lo = await at(smallestN);
          const hi = await at(largestN);
          const floorLo = await packedFloorAt(smallestN, k);
          packedRound(hi, lo, await packedFloorAt(largestN, k), floorLo);
        }
      }
    } finally {
      bar.done();
      rmSync(dataDir, { recursive: true, force: true });
    }
    if (failed.length > 0 || slowSteps.length > 0) {
      for (const f of failed) console.log(`FAILED stage "${f.stage}": ${f.error}`);
      if (slowSteps.length > 0) console.log(`${slowSteps.length} slow control steps retried (first: ${slowSteps[0]})`);
    }
    console.log(`Propagation: tablet's node.now() when it holds the update (or a newer one) − obelix's node.now() when it applied it.`);
    console.log(`All nodes of a stage are worker threads of one process (each stage runs in its own),`);
    // Over every stage that ran (--stages packed runs no other).
    const smallest = Math.min(...[...rows, ...packed].map((r) => r.propagationMinMs));
    console.log(`so node.now() is one clock on every node (smallest sample: ${smallest} ms; negative would mean skew).`);
    if (smallest < 0) console.log(`CLOCK SKEW: a tablet held an update ${-smallest} ms before obelix applied it: threads' clocks disagree, and every propagation figure above is off by as much`);
    console.log(`Cacofonix (testing mode) updates every ${RATE_MS} ms; every tablet is interested in Gaul, so each update reaches all N. Storage in memory. Times in ms.`);
    console.log(`Bun's idle collection timer in every thread, floor included: ${describeGcTimer(timer)} (what it costs: bench/lib/gc-timer.ts).`);
    printTable(
      rows.map((r) => ({
        mode: r.mode,
        tablets: r.tablets,
        pollMs: r.pollMs,
        "prop p50": r.propagationP50Ms,
        "prop p99": r.propagationP99Ms,
        "prop max": r.propagationMaxMs,
        "req p50": r.requestP50Ms,
        "req p99": r.requestP99Ms,
        "req max": r.requestMaxMs,
        "fan-out p50": r.fanOutP50Ms,
        "CPU µs/push": r.cpuUsPerPush,
        updates: r.updates,
        samples: r.samples,
        superseded: r.superseded,
        missing: r.missing,
      })),
    );
    console.log("\nBaseline, the floor for push: the same fan-out over raw MessageChannels to N bare worker threads (no node runtime).");
    printTable(baseline.map((b) => ({ tablets: b.tablets, "raw p50": b.propagationP50Ms, "raw p99": b.propagationP99Ms, "raw max": b.propagationMaxMs, "raw CPU µs/push": b.cpuUsPerPush, "push p50": rows.find((r) => r.mode === "push" && r.tablets === b.tablets)?.propagationP50Ms, "push CPU µs/push": rows.find((r) => r.mode === "push" && r.tablets === b.tablets)?.cpuUsPerPush })));
    const largest = baseline.at(-1);
    const largestPush = rows.find((r) => r.mode === "push" && r.tablets === largest?.tablets);
    if (largest) {
      console.log(`CPU of the window by thread at ${largest.tablets} (JITWorker near the top: still compiling, not the steady state; HeapHelper: the collector's helpers; mi-scavenger: Bun's allocator handing freed pages back):`);
      console.log(`  push:  ${formatThreadCpu(largestPush?.cpuMsByThread)}`);
      console.log(`  floor: ${formatThreadCpu(largest.cpuMsByThread)}`);
      // A node's thread woken more than once per push would pay a wake's tens of µs again (bench/lib/thread-cpu.ts).
      console.log(`Wakes per push of each worker thread at ${largest.tablets}: push ${largestPush?.wakesPerPush ?? "n/a"}, floor ${largest.wakesPerPush ?? "n/a"}`);
    }
    // With --stages leaving packed out, no heading over an empty table.
    if (packed.length > 0) {
      console.log(`\nPush with all nodes packed into ${PACKED_THREADS} worker threads (--threads ${PACKED_THREADS}) instead of one thread per node:`);
      printTable(packed.map((r) => ({ tablets: r.tablets, "prop p50": r.propagationP50Ms, "prop p99": r.propagationP99Ms, "prop max": r.propagationMaxMs, "fan-out p50": r.fanOutP50Ms, "CPU µs/push": r.cpuUsPerPush, "wakes/push": r.wakesPerPush ?? "n/a" })));
    }
    if (packedFloorRows.length > 0) {
      const pins = packedFloorRows[0]!.pinned;
      console.log(`Its floor: the same fan-out to the same tablets in ${PACKED_THREADS} bare threads, no runtime (bench/lib/packed-floor.ts), ${typeof pins === "string" ? `not pinned: ${pins}` : `pinned to CPUs ${pins.join(", ")}`}; every round:`);
      printTable(packedFloorRows.map((r) => ({ tablets: r.tablets, "floor p50": r.propagationP50Ms, "floor p99": r.propagationP99Ms, "floor max": r.propagationMaxMs, "floor CPU µs/push": r.cpuUsPerPush, "floor wakes/push": r.wakesPerPush ?? "n/a" })));
    }
    console.log("");
    const mark = (v: Verdict) => (v.ok === null ? "INFO" : v.ok ? "PASS" : "FAIL");
    for (const v of verdicts(rows, false)) console.log(`${mark(v)}  ${v.target}: ${v.detail}`);
    const pv = packedRoundsDone.length > 0 ? packedVerdict(largestN, smallestN, packedRoundsDone) : null;
    if (pv) console.log(`${mark(pv)}  (${PACKED_THREADS} threads) ${pv.target}: ${pv.detail}`);
    else for (const v of verdicts(packed)) console.log(`${mark(v)}  (${PACKED_THREADS} threads) ${v.target}: ${v.detail}`);
    // A ratio over rounds, as the INFO lines give it.
    const spread = (s: Spread) => `${s.median.toFixed(3)}× (${s.lo.toFixed(2)}..${s.hi.toFixed(2)})`;
    const packedSplit = packedFloorSplit(packedRoundsDone);
    if (packedSplit) {
      console.log(`INFO  (${PACKED_THREADS} threads) against the packed floor, medians of ${packedSplit.rounds} rounds: push / floor at ${largestN} tablets ${spread(packedSplit.hi)}, at ${smallestN} ${spread(packedSplit.lo)};`);
      console.log(`      the floor's own p50 at ${largestN} against ${smallestN}: ${spread(packedSplit.floorScale)}`);
    }
    const fv = rounds.length > 0 ? floorVerdict(largestN, rounds) : null;
    // --quick warms up too little for the JIT to have optimized a tablet's push path: its ratio is not the issue's figure.
    if (fv) console.log(`${mark(fv)}  ${fv.target}: ${fv.detail}${opts.quick ? " (--quick: a short warm-up, not the figure the target is for)" : ""}`);
    const split = roleSplit(rounds);
    if (split) {
      console.log(`INFO  that ratio split at the role's floor (${largestN} bare workers doing a tablet's own work, no runtime: bench/lib/role-tablet.ts), medians of ${split.rounds} rounds:`);
      console.log(`      the tablet's own work, role floor / floor: ${spread(split.role)}; the runtime, push / role floor: ${spread(split.runtime)}`);
    }
    if (opts.json) {
      const floorSummary = fv ? { median: fv.median, lo: fv.lo, hi: fv.hi, noisy: fv.noisy, target: FLOOR_RATIO_TARGET, roleSplit: split } : null;
      const packedSummary = pv ? { median: pv.median, lo: pv.lo, hi: pv.hi, noisy: pv.noisy, target: PACKED_SCALE_TARGET, floorSplit: packedSplit } : null;
      writeJson(opts.json, { rows, baseline, packed: { threads: PACKED_THREADS, rows: packed, rounds: packedRoundsDone, floorRows: packedFloorRows, ...packedSummary }, floorRounds: { tablets: largestN, rounds, ...floorSummary }, failed, slowSteps, gcTimer: timer, complete: true });
      console.log(`json: ${opts.json}`);
    }
    const files = await plots(rows, opts.resultsDir, baseline, { threads: PACKED_THREADS, rows: packed, floorRows: packedFloorRows });
    console.log(`\nplots: ${files.join(", ")}`);
    return { rows, baseline, packed, packedRounds: packedRoundsDone, packedFloorRows, floorRounds: rounds, failed, slowSteps };
  },
};
