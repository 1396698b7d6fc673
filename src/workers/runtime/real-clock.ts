/**
 * The real clock as worker threads read it: milliseconds since the epoch, to a microsecond or better.
 *
 * Read from `Bun.nanoseconds()` (monotonic) plus an epoch offset taken once per thread from
 * `performance.timeOrigin + performance.now()`, so every thread's clock is the one it had before to
 * within a microsecond. Why not `performance.now()` each time: in the olympics fan-out, where a
 * thread's hundreds of tablets each read the clock once per push, it cost ~0.7 µs a call against
 * ~0.2 µs for `Bun.nanoseconds()` (bench/lib/fanout-profile.ts: 5.3 -> 4.7 µs of CPU per tablet per
 * update); a tight loop of either takes ~40 ns, so the gap shows only among other work. The
 * `performance.timeOrigin` getter is worse still (~0.7 µs), hence read once. The simulator never
 * imports this: its time is virtual.
 */
const EPOCH_OFFSET_MS = performance.timeOrigin + performance.now() - Bun.nanoseconds() / 1e6;

export function realNow(): number {
  return EPOCH_OFFSET_MS + Bun.nanoseconds() / 1e6;
}
