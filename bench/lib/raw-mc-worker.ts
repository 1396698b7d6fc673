/**
 * Raw MessageChannel baseline: no node runtime, just the node's message shapes (the ping a request
 * sends, the pong its reply carries back) in the form the runtime posts them on a node's link — the
 * body's JSON text (port-codec.ts toLink), stringified by the sender and parsed by the receiver, one
 * message at a time — answered at once by a handler with no promise, no timer, nothing but the message.
 *
 * It posted the objects themselves until it measured slower than the node API (0.94, 1.14, 0.91
 * node/raw in three full runs): structured cloning an object costs more than JSON text does (see
 * port-codec.ts), so the "floor" did more work than the node. Measured in interleaved rounds
 * (5 rounds of 10,000 timed round trips each after the warm-up below): p50 16.5 µs posting objects
 * (range 11.6–16.7) against 10.8 µs as JSON text (9.1–12.6), node API 13.2 µs (10.5–14.4); process
 * CPU per timed round trip 21 µs against 13.5 µs. The threads wait alike: every series took two
 * context switches per round trip (perf stat), whether the raw worker or the node ran, so how the
 * worker was started or waits was not it. Pinned to one CPU (taskset -c 0) the JSON and node
 * medians stayed put (11.2, 13.2 µs); posting objects still swung between ~11 and ~16.6 µs from
 * round to round, and its CPU per round trip with it (13 or 21 µs). The node's clock (epoch-based,
 * 0.24 µs steps) against performance.now() here is too fine a difference to matter.
 *
 * It does what the node side does, in the same order: untimed round trips and an untimed pipelined
 * blast (the node's warm-up, see transport.ts), then the timed round trips, then the timed blast.
 * transport.ts flags any round where this is still slower than the node rather than hiding it.
 */
declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(v: unknown): void };

interface Msg {
  src: string;
  dest: string;
  body: { type: string; msg_id?: number; in_reply_to?: number; n?: number; i?: number };
}

self.onmessage = (e: MessageEvent) => {
  const { port, role, n, warmup, warmupBlast, blast: blastN } = e.data as { port: MessagePort; role: "ping" | "pong"; n: number; warmup: number; warmupBlast: number; blast: number };
  // As a node's link carries them (port-codec.ts toLink): the body's text; the channel names the ends.
  const post = (msg: Msg) => port.postMessage(JSON.stringify(msg.body));
  const read = (m: { data: unknown }) => ({ src: "", dest: "", body: JSON.parse(m.data as string) }) as Msg;
  if (role === "pong") {
    let count = 0;
    port.onmessage = (m) => {
      const msg = read(m);
      const t = msg.body.type;
      if (t === "one") count++;
      else if (t === "ping") post({ src: msg.dest, dest: msg.src, body: { type: "pong", in_reply_to: msg.body.msg_id } });
      else if (t === "until") {
        post({ src: msg.dest, dest: msg.src, body: { type: "until_ok", in_reply_to: msg.body.msg_id } });
        count = 0;
      }
    };
    self.postMessage("ready");
    return;
  }
  const roundTrips = (count: number, lat: number[] | null, then: () => void) => {
    let i = 0;
    let t0 = 0;
    port.onmessage = (m) => {
      // The node matches its reply to the request; a floor at least reads it.
      if (read(m).body.in_reply_to !== i) throw new Error(`raw mc: pong for ${i} expected`);
      lat?.push(performance.now() - t0);
      if (++i < count) {
        t0 = performance.now();
        post({ src: "pinger", dest: "ponger", body: { type: "ping", msg_id: i } });
      } else then();
    };
    t0 = performance.now();
    post({ src: "pinger", dest: "ponger", body: { type: "ping", msg_id: i } });
  };
  const blast = (count: number, then: (elapsedMs: number) => void) => {
    const start = performance.now();
    port.onmessage = (m) => {
      read(m);
      then(performance.now() - start);
    };
    for (let k = 0; k < count; k++) post({ src: "pinger", dest: "ponger", body: { type: "one", i: k } });
    post({ src: "pinger", dest: "ponger", body: { type: "until", n: count, msg_id: -1 } });
  };
  const lat: number[] = [];
  roundTrips(warmup, null, () =>
    blast(warmupBlast, () =>
      roundTrips(n, lat, () => blast(blastN, (elapsedMs) => self.postMessage({ lat, elapsedMs }))),
    ),
  );
};
