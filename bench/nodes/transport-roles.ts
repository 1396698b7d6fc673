/** Nodes for the transport benchmark: a pinger that measures, a ponger that answers and counts. */
import { defineRole } from "../../src/workers/runtime/types.ts";

export const pinger = defineRole<{ peer: string }>((node) => {
  const peer = node.config.peer;
  node.on("rtt", async (m) => {
    const n = Number(m.body.n);
    const lat: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = node.now();
      await node.request(peer, { type: "ping" }, { timeoutMs: 5000 });
      lat.push(node.now() - t0);
    }
    node.reply(m, { type: "rtt_ok", lat });
  });
  node.on("blast", async (m) => {
    const n = Number(m.body.n);
    const t0 = node.now();
    for (let i = 0; i < n; i++) node.send(peer, { type: "one", i });
    await node.request(peer, { type: "until", n }, { timeoutMs: 60_000 });
    node.reply(m, { type: "blast_ok", elapsedMs: node.now() - t0 });
  });
});

export const ponger = defineRole((node) => {
  let count = 0;
  let waiter: { msg: Parameters<Parameters<typeof node.on>[1]>[0]; n: number } | null = null;
  node.on("ping", (m) => node.reply(m, { type: "pong" }));
  node.on("one", () => {
    count++;
    if (waiter && count >= waiter.n) {
      node.reply(waiter.msg, { type: "until_ok" });
      waiter = null;
      count = 0;
    }
  });
  node.on("until", (m) => {
    if (count >= Number(m.body.n)) {
      node.reply(m, { type: "until_ok" });
      count = 0;
    } else waiter = { msg: m, n: Number(m.body.n) };
  });
});

export const roles = { pinger, ponger };
