import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Nemesis } from "../src/driver/nemesis.ts";
import { startCluster } from "../src/main/supervisor.ts";
import { CLOCK_JUMP, NodeClock, drawClock, withClocks } from "../src/workers/runtime/clock.ts";
import { epochOffsetMs, realNow } from "../src/workers/runtime/real-clock.ts";
import { ErrorCode, RpcError } from "../src/workers/runtime/types.ts";
import { kvNode, kvNodes, simulate } from "./helpers.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("the real clock", () => {
  /** realNow() read between two reads of the performance clock: the gap to the nearer one, in ms (0 inside). */
  const outside = ({ r, a, b }: { r: number; a: number; b: number }) => (r < a ? a - r : r > b ? r - b : 0);
  const read = () => {
    const a = performance.timeOrigin + performance.now();
    const r = realNow();
    return { r, a, b: performance.timeOrigin + performance.now() };
  };

  test("reads the epoch time performance.timeOrigin + performance.now() gives, to 50 µs, on the main thread and in a worker, now and later", async () => {
    const w = new Worker(new URL("./fixtures/real-clock-worker.ts", import.meta.url).href);
    const inWorker = () =>
      new Promise<{ r: number; a: number; b: number }>((resolve) => {
        w.onmessage = (e) => resolve(e.data);
        w.postMessage(0);
      });
    try {
      const samples = [read(), await inWorker()];
      await Bun.sleep(300);
      samples.push(read(), await inWorker());
      for (const s of samples) expect(outside(s)).toBeLessThan(0.05);
      // And it moves with real time: 300 ms of sleep show on both threads (a timer may fire a little early).
      expect(samples[2]!.r - samples[0]!.r).toBeGreaterThanOrEqual(290);
      expect(samples[3]!.r - samples[1]!.r).toBeGreaterThanOrEqual(290);
    } finally {
      w.terminate();
    }
  });

  test("the epoch offset comes from the tightest pair of reads: a thread preempted between two reads does not skew its clock", () => {
    // A monotonic clock at 5,000 ms and an epoch clock 1,000,000 ms ahead of it. The first four tries
    // are preempted for 10 ms between reading ns() and ms(); each read otherwise takes 1 µs.
    let t = 5_000;
    let tries = 0;
    const ns = () => {
      t += 0.001;
      return t * 1e6;
    };
    const ms = () => {
      if (tries++ < 4) t += 10;
      t += 0.001;
      return t - 4_000;
    };
    // The epoch clock is origin + ms() = 1,004,000 + (t - 4,000): t + 1,000,000.
    const offset = epochOffsetMs(ns, ms, 1_004_000);
    expect(Math.abs(offset - 1_000_000)).toBeLessThan(0.002);
    expect(tries).toBe(5);
  });
});

describe("node clocks", () => {
  test("a clock reads true time plus its offset, its drift since boot, and its corrections", () => {
    const c = new NodeClock({ offsetMs: 40, driftPpm: 500 }, 1_000_000);
    expect(c.read(1_000_000)).toBe(1_000_040);
    // 10 s at +500 ppm gains 5 ms.
    expect(c.error(1_010_000)).toBeCloseTo(45, 9);
    c.adjust(-45);
    expect(c.error(1_010_000)).toBeCloseTo(0, 9);
    expect(() => c.adjust(Number.NaN)).toThrow();
    expect(() => new NodeClock({ offsetMs: 0, driftPpm: 5000 }, 0)).toThrow();
  });

  test("offsets and drifts are drawn from the seed within the bounds, the same for the same seed", () => {
    const nodes = withClocks(kvNodes(20), 7, 50, 100);
    for (const n of nodes) {
      expect(Math.abs(n.clock!.offsetMs)).toBeLessThanOrEqual(50);
      expect(Math.abs(n.clock!.driftPpm)).toBeLessThanOrEqual(100);
    }
    expect(new Set(nodes.map((n) => n.clock!.offsetMs)).size).toBe(20);
    expect(withClocks(kvNodes(20), 7, 50, 100)).toEqual(nodes);
    expect(withClocks(kvNodes(20), 8, 50, 100)).not.toEqual(nodes);
    expect(drawClock(7, "n1", 0, 0)).toEqual({ offsetMs: 0, driftPpm: 0 });
  });

  test("in the simulator node.now() carries the node's error, and info() reports it against true time", async () => {
    const nodes = [
      { id: "n1", role: "kv", clock: { offsetMs: 30, driftPpm: 0 } },
      { id: "n2", role: "kv", clock: { offsetMs: -20, driftPpm: 1000 } },
    ];
    const { result } = await simulate({ seed: 1, nodes, roles: { kv: kvNode } }, async (c) => {
      await c.sleep(10_000);
      const t = c.now();
      const a = await c.request<{ at: number }>("n1", { type: "ping" });
      const b = await c.request<{ at: number }>("n2", { type: "ping" });
      const info = await c.info();
      return { t, a: a.at, b: b.at, errors: Object.fromEntries(info.map((n) => [n.id, n.stats!.clockErrorMs])) };
    });
    expect(result.a - result.t).toBeCloseTo(30, 6);
    // -20 ms at boot, +1000 ppm over 10 s: -10 ms.
    expect(result.b - result.t).toBeCloseTo(-10, 6);
    expect(result.errors.n1).toBeCloseTo(30, 6);
    expect(result.errors.n2).toBeCloseTo(-10, 6);
  });

  test("the clock nemesis jumps a node's clock by at most the skew; only the driver may jump a clock", async () => {
    const { result } = await simulate({ seed: 3, nodes: kvNodes(3), roles: { kv: kvNode } }, async (c) => {
      const n = new Nemesis(c, ["clock"], ["n1", "n2", "n3"], 500, 80);
      n.start();
      await c.sleep(5_200);
      await n.stop();
      const info = await c.info();
      // A node forwarding a jump on its own behalf is refused: the runtime answers only the driver.
      const forged = await c.request("n1", { type: "relay", to: "n2", inner: { type: CLOCK_JUMP, deltaMs: 1000 } }).catch((e) => e as RpcError);
      const bad = await c.request("n1", { type: CLOCK_JUMP, deltaMs: "soon" }).catch((e) => e as RpcError);
      return { events: n.events, errors: info.map((i) => i.stats!.clockErrorMs), forged, bad, after: (await c.info()).map((i) => i.stats!.clockErrorMs) };
    });
    expect(result.events.length).toBe(10);
    expect(result.events.every((e) => e.kind === "clock" && e.action === "inject")).toBe(true);
    expect(result.errors.some((e) => e !== 0)).toBe(true);
    for (const e of result.events) expect(Math.abs(Number(/([+-][\d.]+) ms/.exec(e.detail)![1]))).toBeLessThanOrEqual(80);
    expect(result.forged).toBeInstanceOf(RpcError);
    expect((result.forged as RpcError).code).toBe(ErrorCode.NotSupported);
    expect((result.bad as RpcError).code).toBe(ErrorCode.MalformedRequest);
    expect(result.after).toEqual(result.errors);
  });

  test("on worker threads too: node.now() is off by the node's offset, and a jump shows in info()", async () => {
    const dir = mkdtempSync(join(tmpdir(), "menhir-clock-"));
    dirs.push(dir);
    const nodes = [{ id: "n1", role: "kv", clock: { offsetMs: 5000, driftPpm: 0 } }];
    const c = await startCluster({ system: new URL("./fixtures/kv-roles.ts", import.meta.url).href, nodes, seed: 1, dataDir: dir, logLevel: "silent" });
    try {
      const before = Date.now();
      const r = await c.request<{ at: number }>("n1", { type: "ping" });
      expect(r.at - before).toBeGreaterThan(4000);
      expect(r.at - Date.now()).toBeLessThan(6000);
      await c.request("n1", { type: CLOCK_JUMP, deltaMs: -5000 });
      const info = await c.info();
      expect(Math.abs(info[0]!.stats!.clockErrorMs)).toBeLessThan(1);
    } finally {
      await c.stop();
    }
  }, 30_000);
});
