/**
 * Where a message's microseconds go: the pieces on the node API's hot path, each timed alone with
 * tinybench (wire codec, size check, runtime dispatch and reply, durable put). Explains the gap
 * between the transport benchmark's node-API and raw figures.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench as TinyBench } from "tinybench";
import { Limits, exceedsSize } from "../src/workers/runtime/limits.ts";
import { NodeRuntime, type Env } from "../src/workers/runtime/node.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import { defineRole, type Message } from "../src/workers/runtime/types.ts";
import { FrameDecoder, encodeFrame } from "../src/workers/runtime/wire.ts";
import { printTable, writeJson, type Bench } from "./lib/harness.ts";

const MSG: Message = { src: "pinger", dest: "ponger", body: { type: "ping", msg_id: 12345, payload: "hello" } };

export const bench: Bench = {
  name: "runtime",
  description: "per-message cost of the node API's hot-path pieces (tinybench)",
  async run(o) {
    const dir = mkdtempSync(join(tmpdir(), "menhir-bench-rt-"));
    const disk = new SqliteStorage(join(dir, "os.sqlite"), "os");
    const mem = new SqliteStorage(null, "memory");
    let sink = 0;
    const env: Env = {
      now: () => performance.now(),
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      transmit: () => void sink++,
      storage: mem,
      emitLog: () => {},
      uid: () => "u",
      serveHttp: () => {},
    };
    const rt = new NodeRuntime({ id: "ponger", role: "r", config: {}, nodeIds: ["pinger", "ponger"], incarnation: 0, seed: 1, logLevel: "silent" }, env);
    await rt.start(defineRole((n) => n.on("ping", (m) => n.reply(m, { type: "pong" }))));
    const decoder = new FrameDecoder();
    const frame = encodeFrame({ t: "msgs", ms: [MSG] });
    let key = 0;

    const tb = new TinyBench({ time: o.quick ? 200 : 1000 });
    tb.add("wire: encode one-message frame", () => void encodeFrame({ t: "msgs", ms: [MSG] }))
      .add("wire: decode one-message frame", () => void decoder.push(frame))
      .add("size check (flat body)", () => void exceedsSize(MSG.body, Limits.maxMessageBytes))
      .add("runtime: deliver request + send reply", () => rt.deliver(MSG))
      .add("structuredClone (MessagePort's copy)", () => void structuredClone(MSG))
      .add("storage put, memory", () => mem.put(`k${key++ % 1000}`, { n: key }))
      .add("storage put, os (WAL, synchronous=NORMAL)", () => disk.put(`k${key++ % 1000}`, { n: key }));
    await tb.run();
    disk.close();
    mem.close();
    rmSync(dir, { recursive: true, force: true });
    const rows = tb.tasks.map((t) => {
      const r = t.result as { latency?: { p50?: number; p99?: number }; throughput?: { mean?: number } } | undefined;
      return { task: t.name, "p50 µs": (r?.latency?.p50 ?? NaN) * 1000, "p99 µs": (r?.latency?.p99 ?? NaN) * 1000, "ops/s": Math.round(r?.throughput?.mean ?? NaN) };
    });
    printTable(rows);
    if (sink === 0) throw new Error("the runtime task sent no reply: the measurement is void");
    if (o.json) writeJson(o.json, { rows });
    return { rows };
  },
};
