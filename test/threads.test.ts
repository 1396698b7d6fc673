import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { startCluster, type ThreadCluster } from "../src/main/supervisor.ts";
import { ErrorCode, RpcError } from "../src/workers/runtime/types.ts";
import { kvNodes, tempDirs, withThreads, within } from "./helpers.ts";

// Starts workers or OS processes: give it room on a loaded 2-core machine.
setDefaultTimeout(30_000);

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const tmp = tempDirs("threads");

/** Each test runs with a thread per node, and again with every node sharing one thread (--threads 1). */
for (const threads of [undefined, 1] as const) {
  const layout = threads === undefined ? "a thread per node" : "all nodes in one thread";

  function withCluster<T>(n: number, fn: (c: ThreadCluster) => Promise<T>, dataDir = tmp(), nodes = kvNodes(n)): Promise<T> {
    return withThreads({ system: FIXTURE, nodes, seed: 1, dataDir, logLevel: "silent", threads }, fn);
  }

  describe(`worker threads (${layout})`, () => {
    test("request/reply between nodes over direct MessageChannels", async () => {
      await withCluster(3, async (c) => {
        await c.request("n3", { type: "put", key: "k", value: [1, 2, 3] });
        const r = await c.request<{ reply: { durable: unknown } }>("n1", { type: "relay", to: "n3", inner: { type: "get", key: "k" } });
        expect(r.reply.durable).toEqual([1, 2, 3]);
        const info = await c.info();
        expect(info.map((i) => i.status)).toEqual(["running", "running", "running"]);
        expect(info.find((i) => i.id === "n3")!.stats!.received).toBeGreaterThan(0);
      });
    });

    test("crash loses memory and keeps sqlite storage; restart links peers again", async () => {
      await withCluster(2, async (c) => {
        await c.request("n2", { type: "put", key: "a", value: "durable" });
        await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" } });
        await c.crash("n2");
        expect(c.status("n2")).toBe("crashed");
        const down = await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" }, timeoutMs: 200 }).catch((e) => e);
        expect((down as RpcError).code).toBe(ErrorCode.Timeout);
        await c.restart("n2");
        const r = await c.request<{ reply: { durable: unknown; memory: unknown } }>("n1", { type: "relay", to: "n2", inner: { type: "get", key: "a" } });
        expect(r.reply.durable).toBe("durable");
        expect(r.reply.memory).toBeNull();
        expect((await c.inspect<{ incarnation: number }>("n2"))!.incarnation).toBe(1);
      });
    });

    test("links survive a restart under traffic: no peer is left holding a dead link", async () => {
      await withCluster(2, async (c) => {
        const relay = (from: string, to: string) => c.request(from, { type: "relay", to, inner: { type: "ping" }, timeoutMs: 300 }, 2000).then(() => true, () => false);
        const greetings = async () => (await c.inspect<{ count: number }>("n1"))!.count;
        // The first greeting may still be in flight; crashing n2 now would (rightly) lose it.
        for (let i = 0; i < 200 && (await greetings()) < 1; i++) await Bun.sleep(10);
        for (let round = 0; round < 3; round++) {
          let busy = true;
          // n1 keeps talking to n2 all through n2's crash and restart.
          const traffic = (async () => {
            while (busy) await relay("n1", "n2");
          })();
          await c.restart("n2");
          // The restarted node talks at once, too.
          const fromNew = await relay("n2", "n1");
          busy = false;
          await traffic;
          expect(fromNew).toBe(true);
          expect(await relay("n1", "n2")).toBe(true);
          expect(await relay("n2", "n1")).toBe(true);
        }
        // n2 greets n1 from its start: counted once per incarnation (4), and the link it opened still works.
        expect(await greetings()).toBe(4);
      }, undefined, [{ id: "n1", role: "kv" }, { id: "n2", role: "kv", config: { greet: "n1" } }]);
    });

    test("control operations on one node are serialised: concurrent restarts, a crash right after a restart", async () => {
      await withCluster(2, async (c) => {
        // Each call answers within a bound (a dropped comlink call would hang it) with the state it left.
        const prompt = <T>(p: Promise<T>) => within(8000, p);
        const both = await prompt(Promise.all([c.restart("n2"), c.restart("n2")]));
        expect(both).toEqual(["running", "running"]);
        expect(c.status("n2")).toBe("running");
        for (const delay of [30, 40, 50]) {
          const restarting = prompt(c.restart("n2"));
          await Bun.sleep(delay);
          const crashed = await prompt(c.crash("n2"));
          expect([await restarting, crashed]).toEqual(["running", "crashed"]);
          expect(await prompt(c.restart("n2"))).toBe("running");
        }
        expect(c.status("n2")).toBe("running");
        const r = await c.request<{ reply: { type: string } }>("n1", { type: "relay", to: "n2", inner: { type: "ping" } }, 5000);
        expect(r.reply.type).toBe("pong");
        expect((await c.inspect<{ incarnation: number }>("n2"))!.incarnation).toBe(8);
      });
    });

    test("a control call pending on a worker that ends is answered, not dropped", async () => {
      const c = await startCluster({ system: FIXTURE, nodes: [{ id: "n1", role: "kv" }, { id: "n2", role: "kv", config: { slowRestartMs: 60_000 } }], seed: 1, dataDir: tmp(), logLevel: "silent", threads });
      const restarting = c.restart("n2");
      await Bun.sleep(100);
      await c.stop();
      const answer = await within(5000, restarting).catch((e: Error) => e.message);
      expect(answer).toBe("crashed");
    });

    test("pause holds messages, resume delivers them", async () => {
      await withCluster(2, async (c) => {
        expect(await c.pause("n1")).toBe("paused");
        const timedOut = await c.request("n1", { type: "ping" }, 150).catch((e) => e);
        expect((timedOut as RpcError).code).toBe(ErrorCode.Timeout);
        let answered = false;
        const late = c.request("n1", { type: "ping" }, 5000).finally(() => (answered = true));
        await c.request("n2", { type: "blast", to: "n1", n: 5 });
        await Bun.sleep(100);
        // Held, not handled: no answer, no count.
        expect([answered, (await c.inspect<{ count: number }>("n1"))!.count]).toEqual([false, 0]);
        expect(await c.resume("n1")).toBe("running");
        expect((await late).type).toBe("pong");
        expect((await c.request<{ seqs: number[] }>("n1", { type: "seqs" })).seqs).toEqual([0, 1, 2, 3, 4]);
      });
    });

    test("network settings reach the workers: a partition cuts a link, healing restores it", async () => {
      await withCluster(2, async (c) => {
        await c.setNetwork({ partitions: [{ from: ["n1"], to: ["n2"] }] });
        const cut = await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" }, timeoutMs: 150 }).then(() => true, () => false);
        await c.setNetwork({ partitions: [] });
        const healed = await c.request("n1", { type: "relay", to: "n2", inner: { type: "ping" }, timeoutMs: 1000 }).then(() => true, () => false);
        expect([cut, healed]).toEqual([false, true]);
        await expect(c.setNetwork({ loss: 3 } as never)).rejects.toThrow(/loss must be a probability/);
      });
    });

    test("a whole-cluster restart keeps durable storage", async () => {
      const dir = tmp();
      await withCluster(1, (c) => c.request("n1", { type: "put", key: "x", value: 7 }), dir);
      const v = await withCluster(1, (c) => c.request<{ durable: unknown }>("n1", { type: "get", key: "x" }), dir);
      expect(v.durable).toBe(7);
    });
  });
}
