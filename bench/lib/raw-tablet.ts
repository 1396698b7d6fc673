/**
 * The floor's tablet for push-pull (rawFanOut): a bare worker that receives the update's JSON text
 * on a raw MessagePort, parses it, and notes how long it took to arrive. No node runtime.
 *
 * It reads the clock as a tablet does (runtime/real-clock.ts): an epoch offset taken once, then
 * `Bun.nanoseconds()` per read. It read `performance.timeOrigin + performance.now()` per message
 * until that measured slower than the tablets' read: p50 at 500 workers 6.43 and 6.20 ms against
 * 5.64 and 5.76 ms this way (interleaved rounds, CPU per delivery 45.2 and 42.4 µs against 38.7 and
 * 40.5), on threads woken cold. A floor that does more work than the node it bounds flatters the ratio.
 */
import { realNow } from "../../src/workers/runtime/real-clock.ts";

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

let got: number[] = [];
self.onmessage = (e: MessageEvent) => {
  if (e.data === "collect") {
    self.postMessage(got);
    got = [];
    return;
  }
  (e.data as { port: MessagePort }).port.onmessage = (m) => {
    got.push(realNow() - (JSON.parse(m.data as string) as { tally: { updatedAt: number } }).tally.updatedAt);
  };
  self.postMessage("ready");
};
