/**
 * Where a message's microseconds go: the pieces on the node API's hot path, each timed alone with
 * tinybench, so that a regression shows up as one row moving: the wire codec (one message and a
 * full data-link frame, decoded from socket-sized chunks), per-message validation, the fault
 * planner, posting on each kind of link (same thread, MessagePort) to arrival, dispatch to a
 * handler, a request matched with its reply, a durable put in every storage mode, and a read of a
 * thread host's clock. Explains the gap between the transport benchmark's node-API and raw
 * figures. Rows are only ever added (other tools read `--json`), never renamed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Bench as TinyBench } from "tinybench";
import { Limits, exceedsSize } from "../src/workers/runtime/limits.ts";
import { NodeRuntime, type Env } from "../src/workers/runtime/node.ts";
import { MemoryStorage } from "../src/workers/runtime/memory-storage.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import { defineRole, type Message } from "../src/workers/runtime/types.ts";
import { FrameDecoder, encodeFrame } from "../src/workers/runtime/wire.ts";
import { Links, MAX_FRAME_MESSAGES } from "../src/workers/runtime/links.ts";
import { LinkPlanner, defaultNetwork } from "../src/workers/runtime/network.ts";
import { isMessage } from "../src/workers/runtime/node.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { realNow } from "../src/workers/runtime/real-clock.ts";
import { printTable, writeJson, type Bench } from "./lib/harness.ts";

const MSG: Message = { src: "pinger", dest: "ponger", body: { type: "ping", msg_id: 12345, payload: "hello" } };

const TALLY: Message = { src: "obelix", dest: "tablet-1", body: { type: "tally_update", tally: { team: "Gaul", gold: 3, silver: 1, bronze: 0, version: 4, updatedAt: 1_700_000_000_000 } } };

export const bench: Bench = {
  name: "runtime",
  description: "per-message cost of the node API's hot-path pieces (tinybench)",
  async run(o) {
    const dir = mkdtempSync(join(tmpdir(), "menhir-bench-rt-"));
    const disk = new SqliteStorage(join(dir, "os.sqlite"), "os");
    const fsync = new SqliteStorage(join(dir, "fsync.sqlite"), "fsync");
    // Mode memory is a MemoryStorage; SQLite in memory, what it was before, is timed beside it.
    const mem = new MemoryStorage();
    const sqliteMem = new SqliteStorage(null, "memory");
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

    // A full data-link frame, as a turn's worth of sends goes out, and the chunks a socket hands it over in.
    const batch: Message[] = Array.from({ length: MAX_FRAME_MESSAGES }, (_, i) => ({ src: "pinger", dest: "ponger", body: { type: "one", i } }));
    const bigFrame = encodeFrame({ t: "msgs", ms: batch });
    const chunks: Uint8Array[] = [];
    for (let off = 0; off < bigFrame.length; off += 64 * 1024) chunks.push(bigFrame.subarray(off, off + 64 * 1024));
    const bigDecoder = new FrameDecoder();
    // The same batch as a data link sends it (64 or more messages: records, see wire.ts).
    const recordsFrame = encodeFrame({ t: "msgs", ms: batch }, true);
    const recordChunks: Uint8Array[] = [];
    for (let off = 0; off < recordsFrame.length; off += 64 * 1024) recordChunks.push(recordsFrame.subarray(off, off + 64 * 1024));
    // The largest frame a link accepts, arriving in small reads (a slow or congested connection).
    const fullFrame = encodeFrame({ t: "msgs", ms: [{ src: "pinger", dest: "ponger", body: { type: "blob", data: "x".repeat(Limits.maxFrameBytes - 1024) } }] });
    const smallChunks: Uint8Array[] = [];
    for (let off = 0; off < fullFrame.length; off += 4 * 1024) smallChunks.push(fullFrame.subarray(off, off + 4 * 1024));

    // The fault planner on a network that is not perfect (the perfect one skips it).
    const planner = new LinkPlanner(seededRandom(1, "bench"));
    const lossy = defaultNetwork();
    lossy.defaults = { ...lossy.defaults, latencyMs: 1, distribution: "uniform", loss: 0.01 };

    // A one-way message to a handler, and a request whose reply is matched.
    const oneWay: Message = { src: "pinger", dest: "ponger", body: { type: "one", i: 1 } };
    let seen = 0;
    const rtOne = new NodeRuntime({ id: "ponger", role: "r", config: {}, nodeIds: ["pinger", "ponger"], incarnation: 0, seed: 1, logLevel: "silent" }, env);
    await rtOne.start(defineRole((n) => n.on("one", () => void seen++)));
    let lastReq: Message | null = null;
    let requester!: { request(dest: string, body: { type: string }): Promise<unknown> };
    const rtReq = new NodeRuntime({ id: "pinger", role: "r", config: {}, nodeIds: ["pinger", "ponger"], incarnation: 0, seed: 1, logLevel: "silent" }, { ...env, transmit: (m: Message) => void (lastReq = m) });
    await rtReq.start(defineRole((n) => void (requester = n)));

    // Links: to a node in the same thread, and over a MessagePort (both ends here; timed to arrival).
    let arrived: (() => void) | null = null;
    const linksHost = (colocated: boolean) => ({
      id: "pinger",
      grant: async () => null,
      colocated: (dest: string) => (colocated && dest === "ponger" ? () => arrived?.() : undefined),
      receive: () => {},
      wireFrame: () => {},
      wire: null,
      now: () => performance.now(),
    });
    const nearLinks = new Links(linksHost(true));
    const portLinks = new Links(linksHost(false));
    const channel = new MessageChannel();
    portLinks.accept("ponger", 0, channel.port1);
    channel.port2.onmessage = () => arrived?.();
    const postAndWait = (links: Links) => new Promise<void>((r) => {
      arrived = r;
      links.post(oneWay);
    });

    const tb = new TinyBench({ time: o.quick ? 200 : 1000 });
    tb.add("wire: encode one-message frame", () => void encodeFrame({ t: "msgs", ms: [MSG] }))
      .add("wire: decode one-message frame", () => void decoder.push(frame))
      .add("size check (flat body)", () => void exceedsSize(MSG.body, Limits.maxMessageBytes))
      .add("runtime: deliver request + send reply", () => rt.deliver(MSG))
      .add("structuredClone (MessagePort's copy)", () => void structuredClone(MSG))
      .add("storage put, memory", () => mem.put(`k${key++ % 1000}`, { n: key }))
      .add("storage transaction of two puts, memory (a write and its write-log entry)", () => mem.transaction(() => (mem.put(`k${key++ % 1000}`, { n: key }), mem.put(`w${key % 1000}`, { id: key, op: "inc" }))))
      .add("storage put, SQLite in memory", () => sqliteMem.put(`k${key++ % 1000}`, { n: key }))
      .add("storage transaction of two puts, SQLite in memory", () => sqliteMem.transaction(() => (sqliteMem.put(`k${key++ % 1000}`, { n: key }), sqliteMem.put(`w${key % 1000}`, { id: key, op: "inc" }))))
      .add("storage put, os (WAL, synchronous=NORMAL)", () => disk.put(`k${key++ % 1000}`, { n: key }))
      .add(`wire: encode ${MAX_FRAME_MESSAGES}-message frame`, () => void encodeFrame({ t: "msgs", ms: batch }))
      .add(`wire: decode ${MAX_FRAME_MESSAGES}-message frame from 64 KiB chunks`, () => {
        let n = 0;
        for (const c of chunks) n += bigDecoder.push(c).length;
        if (n !== 1) throw new Error(`decoded ${n} frames`);
      })
      .add(`wire: encode ${MAX_FRAME_MESSAGES}-message frame as records (a data link's batch)`, () => void encodeFrame({ t: "msgs", ms: batch }, true))
      .add(`wire: decode ${MAX_FRAME_MESSAGES}-message records frame from 64 KiB chunks`, () => {
        let n = 0;
        for (const c of recordChunks) n += bigDecoder.push(c).length;
        if (n !== 1) throw new Error(`decoded ${n} frames`);
      })
      .add("wire: decode a largest-size frame from 4 KiB chunks", () => {
        let n = 0;
        for (const c of smallChunks) n += bigDecoder.push(c).length;
        if (n !== 1) throw new Error(`decoded ${n} frames`);
      })
      .add("size check (one nested object: a pushed tally)", () => void exceedsSize(TALLY.body, Limits.maxMessageBytes))
      .add("validate: isMessage (every message a link delivers)", () => {
        if (!isMessage(oneWay)) throw new Error("a valid message refused");
      })
      .add("plan: fault planner, one message (latency + loss)", () => void planner.plan(lossy, "pinger", "ponger", performance.now()))
      .add("post: same-thread node (structuredClone + microtask), to arrival", () => postAndWait(nearLinks))
      .add("post: MessagePort, to arrival", () => postAndWait(portLinks))
      .add("dispatch: deliver one-way message to its handler", () => rtOne.deliver(oneWay))
      .add("reply matching: request out, reply matched and resolved", async () => {
        const p = requester.request("ponger", { type: "ping" });
        const req = lastReq!;
        rtReq.deliver({ src: "ponger", dest: "pinger", body: { type: "pong", in_reply_to: req.body.msg_id } });
        await p;
      })
      .add("storage put, fsync (WAL, synchronous=FULL)", () => fsync.put(`k${key++ % 1000}`, { n: key }))
      .add("clock: a thread host's now() (read 3-4 times a request)", () => void (sink += realNow() > 0 ? 0 : 1));
    await tb.run();
    disk.close();
    fsync.close();
    mem.close();
    sqliteMem.close();
    channel.port1.close();
    channel.port2.close();
    rmSync(dir, { recursive: true, force: true });
    const rows = tb.tasks.map((t) => {
      const r = t.result as { latency?: { p50?: number; p99?: number }; throughput?: { mean?: number } } | undefined;
      return { task: t.name, "p50 µs": (r?.latency?.p50 ?? NaN) * 1000, "p99 µs": (r?.latency?.p99 ?? NaN) * 1000, "ops/s": Math.round(r?.throughput?.mean ?? NaN) };
    });
    printTable(rows);
    if (sink === 0) throw new Error("the runtime task sent no reply: the measurement is void");
    if (seen === 0) throw new Error("the one-way handler never ran: the dispatch measurement is void");
    if (o.json) writeJson(o.json, { rows });
    return { rows };
  },
};
