/**
 * Bun's idle collection timer, as this process runs it.
 *
 * Every JS thread (each node's worker too) runs a timer that, by default every second, starts a
 * collection if the heap grew since it last fired. One thread does not notice it. Five hundred do:
 * in the 500-tablet fan-out of `bench push-pull` they made 294 eden collections in a 3 s window
 * (~1 ms each), and the allocator's purge thread spent 410 ms handing back the pages they freed,
 * which the next push faulted in again; the floor's bare workers made none. With a 10 s period:
 * 97 collections, 50 ms of purging, and the CPU of a delivery fell from 150 to 96 µs (medians of 3
 * interleaved rounds). Memory: 500 push tablets under load for 100 s held 2.6 GB at the end with
 * either period (a heap grows between collections, and 10 s is short next to that run); with the
 * timer off it kept growing (3.2 GB), so off is not the setting.
 *
 * Bun reads the period once, when the process starts (setting process.env later changes nothing),
 * so the package.json scripts that start clusters and benchmarks set it on their command line.
 */

/** The environment variable Bun reads for the timer's period, in ms. */
export const GC_TIMER_ENV = "BUN_GC_TIMER_INTERVAL";
/** Bun's switch that turns the timer off altogether. */
export const GC_TIMER_OFF_ENV = "BUN_GC_TIMER_DISABLE";
/** The period the package.json scripts give clusters and benchmarks. */
export const CLUSTER_GC_TIMER_MS = 10_000;
/** Bun's own period when none is given. */
export const BUN_DEFAULT_GC_TIMER_MS = 1000;
/** From this many worker threads on, the default period is worth a word at start. */
export const GC_TIMER_ADVICE_THREADS = 100;

/** The timer as this process got it: its period, or null when turned off. */
export interface GcTimer {
  periodMs: number | null;
  /** Where that came from: Bun's default, or the environment variable that set it. */
  source: "default" | typeof GC_TIMER_ENV | typeof GC_TIMER_OFF_ENV;
}

export function gcTimer(env: Record<string, string | undefined> = process.env): GcTimer {
  if (env[GC_TIMER_OFF_ENV]) return { periodMs: null, source: GC_TIMER_OFF_ENV };
  const raw = env[GC_TIMER_ENV];
  const ms = raw === undefined || raw.trim() === "" ? Number.NaN : Number(raw);
  if (Number.isInteger(ms) && ms > 0) return { periodMs: ms, source: GC_TIMER_ENV };
  return { periodMs: BUN_DEFAULT_GC_TIMER_MS, source: "default" };
}

export function describeGcTimer(t: GcTimer): string {
  if (t.periodMs === null) return `off (${GC_TIMER_OFF_ENV})`;
  return t.source === "default" ? `every ${t.periodMs} ms (Bun's default)` : `every ${t.periodMs} ms (${t.source})`;
}

/** A line to print when a cluster of `threads` worker threads starts with Bun's 1 s timer; null when there is nothing to say. */
export function gcTimerAdvice(threads: number, t: GcTimer = gcTimer()): string | null {
  if (threads < GC_TIMER_ADVICE_THREADS || t.source !== "default") return null;
  return (
    `${threads} worker threads with Bun's idle collection timer at its default ${t.periodMs} ms: each thread that allocates collects every second, ` +
    `which cost a 500-node fan-out a third of each delivery's CPU. \`bun run cluster\` sets ${GC_TIMER_ENV}=${CLUSTER_GC_TIMER_MS}; ` +
    `started another way, set it before bun starts (or use --threads)`
  );
}
