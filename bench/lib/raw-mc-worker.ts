/**
 * Raw MessageChannel baseline: no node runtime, just postMessage of the same message shape.
 *
 * It once measured slower than the node API (61.7 µs vs 13.7 µs p50, quiet machine, full run).
 * The one systematic difference found: the node side was always warm when timed (an untimed
 * request first set the link up and ran the handlers through the JIT; the cluster's start had
 * already woken both threads), while this worker timed its first round trips on a freshly spawned
 * thread pair. On a loaded 2-core machine the gap did not reproduce (raw 10.5–15.8 µs vs node
 * 13.4–16.8 µs, same run), consistent with cold thread wake-ups that only dominate when cores idle.
 * So the baseline warms up first (WARMUP round trips, not timed, as many as the node's warm-up in
 * transport.ts) and answers from the port handler directly (no promise, no timer, no allocation
 * beyond the message): the cheapest way to do the work.
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
