/**
 * The real clock as worker threads read it: milliseconds since the epoch. The origin is read once
 * per thread: the `performance.timeOrigin` getter costs ~0.7 µs a call (measured), and a request
 * reads the clock three or four times (sent at, its latency, the role's own timing). The simulator
 * never imports this: its time is virtual.
 */
const TIME_ORIGIN = performance.timeOrigin;

export function realNow(): number {
  return TIME_ORIGIN + performance.now();
}
