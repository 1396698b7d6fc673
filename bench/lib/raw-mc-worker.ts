/** Raw MessageChannel baseline: no node runtime, just postMessage of the same message shape. */
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
  let i = 0;
  let t0 = 0;
  const blast = () => {
    const start = performance.now();
    port.onmessage = () => self.postMessage({ lat, elapsedMs: performance.now() - start });
    for (let k = 0; k < n * 10; k++) port.postMessage({ src: "a", dest: "b", body: { type: "one", i: k } });
    port.postMessage({ src: "a", dest: "b", body: { type: "until", n: n * 10 } });
  };
  port.onmessage = () => {
    lat.push(performance.now() - t0);
    if (++i < n) {
      t0 = performance.now();
      port.postMessage({ src: "a", dest: "b", body: { type: "ping", msg_id: i } });
    } else blast();
  };
  t0 = performance.now();
  port.postMessage({ src: "a", dest: "b", body: { type: "ping", msg_id: 0 } });
};
