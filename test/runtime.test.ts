import { describe, expect, test } from "bun:test";
import { ErrorCode, RpcError, defineRole, isDefinite } from "../src/workers/runtime/types.ts";
import { Limits } from "../src/workers/runtime/limits.ts";
import { kvNode, kvNodes, simulate } from "./helpers.ts";

const roles = { kv: kvNode };

describe("node runtime (in the simulator)", () => {
  test("request/reply pairs replies with requests", async () => {
    const { result } = await simulate({ seed: 1, nodes: kvNodes(2), roles }, async (c) => {
      await c.request("n1", { type: "put", key: "a", value: 42 });
      return c.request<{ type: string; durable: unknown }>("n1", { type: "get", key: "a" });
    });
    expect(result.type).toBe("get_ok");
    expect(result.durable).toBe(42);
  });

  test("node-to-node request through another node", async () => {
    const { result } = await simulate({ seed: 2, nodes: kvNodes(2), roles }, async (c) => {
      await c.request("n2", { type: "put", key: "k", value: "v" });
      return c.request<{ reply: { durable: unknown } }>("n1", { type: "relay", to: "n2", inner: { type: "get", key: "k" } });
    });
    expect(result.reply.durable).toBe("v");
  });

  test("a request times out with an indefinite Timeout error", async () => {
    const { result } = await simulate({ seed: 3, nodes: kvNodes(2), roles }, async (c) => {
      await c.crash("n2");
      return c.request("n1", { type: "relay", to: "n2", inner: { type: "get", key: "x" }, timeoutMs: 200 }).catch((e) => e);
    });
    expect(result).toBeInstanceOf(RpcError);
    // The relay's own failure comes back to us as an error reply carrying the timeout's code.
    expect((result as RpcError).code).toBe(ErrorCode.Timeout);
    expect(isDefinite(ErrorCode.Timeout)).toBe(false);
    expect(isDefinite(ErrorCode.NotSupported)).toBe(true);
  });

  test("unknown message types get a definite not-supported error; a throwing handler an indefinite crash error", async () => {
    const { result } = await simulate({ seed: 4, nodes: kvNodes(1), roles }, async (c) => {
      const a = await c.request("n1", { type: "nope" }).catch((e) => e);
      const b = await c.request("n1", { type: "boom" }).catch((e) => e);
      const alive = await c.request("n1", { type: "ping" });
      return { a, b, alive };
    });
    expect((result.a as RpcError).code).toBe(ErrorCode.NotSupported);
    expect((result.b as RpcError).code).toBe(ErrorCode.Crash);
    expect(result.alive.type).toBe("pong");
  });

  test("a message type named like an object's own property finds no handler: not-supported, and the node runs on", async () => {
    const names = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf"];
    const { result } = await simulate({ seed: 4, nodes: kvNodes(1), roles }, async (c) => {
      const errors = [];
      for (const type of names) errors.push(await c.request("n1", { type }).catch((e) => e));
      return { errors, alive: await c.request("n1", { type: "ping" }) };
    });
    expect(result.errors.map((e) => (e as RpcError).code)).toEqual(names.map(() => ErrorCode.NotSupported));
    expect(result.alive.type).toBe("pong");
  });

  test("crash loses memory and keeps durable storage; restart bumps the incarnation", async () => {
    const { result } = await simulate({ seed: 5, nodes: kvNodes(1), roles }, async (c) => {
      await c.request("n1", { type: "put", key: "a", value: 1 });
      await c.crash("n1");
      const whileDown = await c.inspect("n1");
      await c.restart("n1");
      const after = await c.request<{ durable: unknown; memory: unknown }>("n1", { type: "get", key: "a" });
      return { whileDown, after, info: await c.inspect<{ incarnation: number }>("n1") };
    });
    expect(result.whileDown).toBeNull();
    expect(result.after.durable).toBe(1);
    expect(result.after.memory).toBeNull();
    expect(result.info!.incarnation).toBe(1);
  });

  test("memory storage is lost on a crash", async () => {
    const { result } = await simulate({ seed: 6, nodes: [{ id: "n1", role: "kv", storage: "memory" }], roles }, async (c) => {
      await c.request("n1", { type: "put", key: "a", value: 1 });
      await c.restart("n1");
      return c.request<{ durable: unknown }>("n1", { type: "get", key: "a" });
    });
    expect(result.durable).toBeNull();
  });

  test("a paused node answers nothing until resumed, then everything", async () => {
    const { result } = await simulate({ seed: 7, nodes: kvNodes(2), roles }, async (c) => {
      await c.pause("n1");
      const timedOut = await c.request("n1", { type: "ping" }, 100).catch((e) => e);
      let answered = false;
      const late = c.request("n1", { type: "ping" }, 5000).finally(() => (answered = true));
      await c.request("n2", { type: "blast", to: "n1", n: 5 });
      await c.sleep(500);
      // Held, not lost and not handled: no answer and no count yet.
      const whilePaused = { answered, count: (await c.inspect<{ count: number }>("n1"))!.count };
      await c.resume("n1");
      const pong = await late;
      return { timedOut, whilePaused, pong, seqs: (await c.request<{ seqs: number[] }>("n1", { type: "seqs" })).seqs };
    });
    expect((result.timedOut as RpcError).code).toBe(ErrorCode.Timeout);
    expect(result.whilePaused).toEqual({ answered: false, count: 0 });
    expect(result.pong.type).toBe("pong");
    expect(result.seqs).toEqual([0, 1, 2, 3, 4]);
  });

  test("loss drops about the configured fraction, deterministically per seed", async () => {
    const run = (seed: number) =>
      simulate({ seed, nodes: kvNodes(2), roles, network: { loss: 0.3 } }, async (c) => {
        let ok = 0;
        for (let i = 0; i < 300; i++) if (await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" }, timeoutMs: 50 }, 1000).then(() => true, () => false)) ok++;
        return ok;
      });
    const a = await run(11);
    const b = await run(11);
    expect(a.result).toBe(b.result);
    // Two lossy hops per relay: success ~ 0.7^2 = 49%.
    expect(a.result).toBeGreaterThan(300 * 0.35);
    expect(a.result).toBeLessThan(300 * 0.63);
    expect(a.sim.stats().digest).toBe(b.sim.stats().digest);
  });

  test("duplication delivers some messages twice", async () => {
    const { result } = await simulate({ seed: 8, nodes: kvNodes(2), roles }, async (c) => {
      await c.setNetwork({ dup: 0.5 });
      await c.request("n2", { type: "blast", to: "n1", n: 400 });
      await c.sleep(10);
      return c.inspect<{ count: number }>("n1");
    });
    // Each message is doubled with probability 0.5: about 600 arrive.
    expect(result!.count).toBeGreaterThan(520);
    expect(result!.count).toBeLessThan(680);
  });

  test("latency delays delivery by about its mean and keeps a link FIFO", async () => {
    const { result } = await simulate({ seed: 13, nodes: kvNodes(2), roles, network: { latencyMs: 20, distribution: "exponential" } }, async (c) => {
      // A relay is two hops under latency (the driver's own hops are not delayed): about 40 ms.
      const rtts: number[] = [];
      for (let i = 0; i < 50; i++) {
        const t0 = c.now();
        await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" } });
        rtts.push(c.now() - t0);
      }
      await c.request("n2", { type: "blast", to: "n1", n: 100 });
      await c.sleep(1000);
      return { meanRtt: rtts.reduce((a, b) => a + b, 0) / rtts.length, seqs: (await c.request<{ seqs: number[] }>("n1", { type: "seqs" })).seqs };
    });
    expect(result.meanRtt).toBeGreaterThan(25);
    expect(result.meanRtt).toBeLessThan(60);
    // Exponential latencies would reorder 100 messages; the link keeps them in sending order.
    expect(result.seqs).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  test("partitions: symmetric blocks both ways, one-way only one, healing restores", async () => {
    const { result } = await simulate({ seed: 9, nodes: kvNodes(2), roles }, async (c) => {
      const probe = (from: string, to: string) => c.request(from, { type: "relay", to, inner: { type: "ping" }, timeoutMs: 100 }, 1000).then(() => true, () => false);
      await c.setNetwork({ partitions: [{ from: ["n1"], to: ["n2"] }] });
      const sym = [await probe("n1", "n2"), await probe("n2", "n1")];
      await c.setNetwork({ partitions: [{ from: ["n1"], to: ["n2"], oneWay: true }] });
      // One-way n1 -> n2 cut: n2's request reaches n1, but n1's reply to n2 is cut too (it travels n1 -> n2).
      const oneWayN2 = await c.request("n2", { type: "relay", to: "n1", inner: { type: "ping" }, timeoutMs: 100 }, 1000).then(() => true, () => false);
      await c.setNetwork({ partitions: [] });
      const healed = [await probe("n1", "n2"), await probe("n2", "n1")];
      return { sym, oneWayN2, healed };
    });
    expect(result.sym).toEqual([false, false]);
    expect(result.oneWayN2).toBe(false);
    expect(result.healed).toEqual([true, true]);
  });

  test("one-way partition lets the other direction's one-way messages through", async () => {
    const { result } = await simulate({ seed: 10, nodes: kvNodes(2), roles }, async (c) => {
      await c.setNetwork({ partitions: [{ from: ["n1"], to: ["n2"], oneWay: true }] });
      // n2 -> n1 "count" messages are one-way and must arrive; n1 -> n2 must not.
      for (let i = 0; i < 5; i++) await c.request("n2", { type: "relay", to: "n1", inner: { type: "count" }, timeoutMs: 10 }).catch(() => {});
      for (let i = 0; i < 5; i++) await c.request("n1", { type: "relay", to: "n2", inner: { type: "count" }, timeoutMs: 10 }).catch(() => {});
      await c.sleep(50);
      return { n1: await c.inspect<{ count: number }>("n1"), n2: await c.inspect<{ count: number }>("n2") };
    });
    expect(result.n1!.count).toBe(5);
    expect(result.n2!.count).toBe(0);
  });

  test("a zero-delay loop is reported as a livelock, not run forever", async () => {
    const spinner = defineRole((node) => {
      node.on("spin", () => node.send(node.id, { type: "spin" }));
    });
    const run = simulate({ seed: 14, nodes: [{ id: "s", role: "spinner" }], roles: { spinner } }, async (c) => {
      await c.request("s", { type: "spin" }, 10).catch(() => {});
    });
    await expect(run).rejects.toThrow(/livelock/);
  });

  test("malformed and oversized messages are refused without harm", async () => {
    const { result } = await simulate({ seed: 12, nodes: kvNodes(2), roles }, async (c) => {
      const big = "x".repeat(Limits.maxMessageBytes);
      // n1 tries to send an oversized message: the send is refused with TooLarge, replied as an error.
      const tooLarge = await c.request("n1", { type: "relay", to: "n2", inner: { type: "put", key: "k", value: big } }, 2000).catch((e) => e);
      const wrongDest = await c.request("n1", { type: "relay", to: "nobody", inner: { type: "ping" } }).catch((e) => e);
      const alive = await c.request("n2", { type: "ping" });
      return { tooLarge, wrongDest, alive };
    });
    expect((result.tooLarge as RpcError).code).toBe(ErrorCode.TooLarge);
    expect((result.wrongDest as RpcError).code).toBe(ErrorCode.NodeNotFound);
    expect(result.alive.type).toBe("pong");
  });
});
