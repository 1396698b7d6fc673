/**
 * Raw MessageChannel baseline: no node runtime, just postMessage of the same message shape.
 *
 * It once measured slower than the node API (61.7 µs vs 13.7 µs p50, full run). Its work per round
 * trip is already minimal (a handler that answers at once: no promise, no timer, nothing but the
 * message), so the differences looked for were in how it is timed: the node side was always warm
 * (an untimed request set the link up and ran its handlers through the JIT first) and this side
 * was not. It now warms up the same way (WARMUP round trips, untimed). Run alone, back to back with
 * clusters, or after TCP stages, it measures 10–17 µs against the node's 13–45 µs; single rounds
 * of a full run still sometimes show it at 50–65 µs while the node's round next to it is at 20 µs,
 * which matched no difference in code and did not reproduce on demand. transport.ts flags such
 * rounds rather than hiding them.
 */
const WARMUP = 1_000;
declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

self.onmessage = (e: MessageEvent) => {
  const { port, role, n } = e.data as { port: MessagePort; role: "ping" | "pong"; n: number };
  if (role === "pong") {
    let count = 0;
    port.onmessage = (m) => {
      const msg = m.data as { body: { type: string; n?: number } };
      if (msg.body.type === "ping") port.postMessage({ src: "b", dest: "a", body: { type: "pong" } });
      else if (msg.body.type === "one") count++;
      else if (msg.body.type === "until") {
        port.postMessage({ src: "b", dest: "a", body: { type: "until_ok", count } });
        count = 0;
      }
    };
    self.postMessage("ready");
    return;
  }
  // ping: serial round trips, then a pipelined blast.
  const lat: number[] = [];
  let i = -WARMUP;
  let t0 = 0;
  const blast = () => {
    const start = performance.now();
    port.onmessage = () => self.postMessage({ lat, elapsedMs: performance.now() - start });
    for (let k = 0; k < n * 10; k++) port.postMessage({ src: "a", dest: "b", body: { type: "one", i: k } });
    port.postMessage({ src: "a", dest: "b", body: { type: "until", n: n * 10 } });
  };
  port.onmessage = () => {
    if (i >= 0) lat.push(performance.now() - t0);
    if (++i < n) {
      t0 = performance.now();
      port.postMessage({ src: "a", dest: "b", body: { type: "ping", msg_id: i } });
    } else blast();
  };
  t0 = performance.now();
  port.postMessage({ src: "a", dest: "b", body: { type: "ping", msg_id: i } });
};
