/**
 * Bun's idle collection timer, as this benchmark process got it: part of what a figure means.
 *
 * Every JS thread (each node's worker too) runs a timer that starts a collection each time it
 * fires: every second (by default) while the thread's heap keeps changing, and every 30 s once it
 * has not changed for 30 ticks. With 500 threads that means bursts: after warm-up the tablets'
 * heaps and the floor's workers alike go quiet, then all collect within a few seconds of each other
 * every 30 s (the JSC GC log, BUN_JSC_logGC=1, with a seconds ticker: 311 of the floor's collections
 * in one second). A 3 s window saw 5, 64 or 294 of them depending on where it fell, so push-pull's
 * windows now cover a whole slow period (SLOW_GC_PERIOD_MS).
 *
 * `BUN_GC_TIMER_INTERVAL=10000` cut a push delivery's CPU from 150 to 96 µs in 3 s windows
 * (push/floor p50 1.97 -> 1.77, medians of 3 interleaved rounds), but 500 tablets polling every
 * 50 ms then stalled: request p99 180–190 -> 830–870 ms, propagation p99 160 -> 5700–7700 ms (2
 * interleaved rounds, while their request p50 fell): with fewer of the timer's eden collections
 * more garbage reached the old generation, and that run made 1,179 full collections against 541
 * and paused 104 s in all against 20 s (JSC's GC log, whole run). So menhir leaves Bun's default,
 * and the benchmark says which setting its figures were taken with. Bun reads the variable only
 * when the process starts; stages run in child processes, which inherit it.
 */

/** The environment variable Bun reads for the timer's period, in ms. */
export const GC_TIMER_ENV = "BUN_GC_TIMER_INTERVAL";
/** Bun's switch that turns the timer off altogether. */
export const GC_TIMER_OFF_ENV = "BUN_GC_TIMER_DISABLE";
/** Bun's own period when none is given. */
export const BUN_DEFAULT_GC_TIMER_MS = 1000;
/** The timer's period once a thread's heap has stopped changing (Bun's source: 30 ticks unchanged). */
export const SLOW_GC_PERIOD_MS = 30_000;

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
