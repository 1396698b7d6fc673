/**
 * The real clock as worker threads read it: milliseconds since the epoch, to a microsecond or better.
 *
 * Read from `Bun.nanoseconds()` (monotonic) plus an epoch offset taken once per thread against
 * `performance.timeOrigin + performance.now()`, so every thread keeps the clock it had before. Why
 * not `performance.now()` each time: in the olympics fan-out, where a thread's hundreds of tablets
 * each read the clock once per push, it cost ~0.7 µs a call against ~0.2 µs for `Bun.nanoseconds()`
 * (bench/lib/fanout-profile.ts, CPU per tablet per update: 5.3 -> 4.7 µs in one comparison, medians
 * 5.47 -> 5.26 in interleaved rounds from fresh clones); a tight loop of either takes ~40 ns, so the
 * gap shows only among other work. The `performance.timeOrigin` getter is
 * worse still (~0.7 µs), hence read once. The simulator never imports this: its time is virtual.
 */

/** Reads closer together than this pin the offset well enough (the error is at most half of it). */
const GOOD_BRACKET_MS = 0.01;
const MAX_TRIES = 64;

/**
 * The offset from a monotonic clock `ns()` (nanoseconds) to epoch milliseconds, given the epoch
 * clock as `origin + ms()`: each try reads ms() between two reads of ns(), and the tightest bracket
 * wins. One try is not enough: a thread preempted between its reads (500 workers starting on two
 * cores) took an offset 10 ms off, and every latency it measured with it.
 */
export function epochOffsetMs(ns: () => number, ms: () => number, origin: number): number {
  let best = Infinity;
  let offset = Number.NaN;
  for (let i = 0; i < MAX_TRIES && best > GOOD_BRACKET_MS; i++) {
    const a = ns();
    const p = ms();
    const b = ns();
    const width = (b - a) / 1e6;
    if (width < best) {
      best = width;
      offset = origin + p - (a + b) / 2e6;
    }
  }
  return offset;
}

const EPOCH_OFFSET_MS = epochOffsetMs(Bun.nanoseconds, () => performance.now(), performance.timeOrigin);

export function realNow(): number {
  return EPOCH_OFFSET_MS + Bun.nanoseconds() / 1e6;
}
