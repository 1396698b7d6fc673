import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { fileURLToPath } from "node:url";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { tempDirs, withThreads } from "./helpers.ts";

setDefaultTimeout(60_000);
const tmp = tempDirs("control-deadline");
const ROLES = fileURLToPath(new URL("./fixtures/control-roles.ts", import.meta.url));

function idle(n: number, delayMs: (i: number) => number = () => 0): NodeSpec[] {
  return Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, role: "idle", storage: "memory" as const, config: { startDelayMs: delayMs(i) } }));
}

describe("control calls to workers", () => {
  test("a first start is one call per worker, one per lane end and one per node, not one per node per worker", async () => {
    const calls = await withThreads({ system: ROLES, nodes: idle(30), seed: 1, dataDir: tmp(), logLevel: "silent", threads: 3 }, async (c) => c.controlCalls);
    // 3 connects, 3 lanes (one per pair of threads, handed to both ends) and 30 starts (announcing each node to every worker was 90 more).
    expect(calls).toBe(3 + 3 * 2 + 30);
  });

  test("a step slower than its timeout is waited for while the calls sent with it keep being answered", async () => {
    // Node i answers its start after i x 250 ms: the last well past the 1 s timeout, but never 1 s after the one before it.
    const nodes = idle(8, (i) => (i + 1) * 250);
    const [ok, late] = await withThreads({ system: ROLES, nodes, seed: 1, dataDir: tmp(), logLevel: "silent", controlTimeoutMs: 1000 }, async (c) => [nodes.map((n) => c.status(n.id)), c.lateAnswers] as const);
    expect(ok).toEqual(nodes.map(() => "running"));
    // Reported as slow: at least the starts of n5..n8 came after the 1 s budget.
    expect(late).toBeGreaterThanOrEqual(4);
  });

  test("a hung worker fails the call, naming the node and the call", async () => {
    await withThreads({ system: ROLES, nodes: idle(3), seed: 1, dataDir: tmp(), logLevel: "silent", controlTimeoutMs: 300 }, async (c) => {
      expect(await c.request("n2", { type: "hang" })).toMatchObject({ type: "hanging" });
      const t0 = performance.now();
      const [paused, others] = await Promise.all([c.pause("n2").then(() => null, (e: Error) => e.message), Promise.all([c.pause("n1"), c.pause("n3")])]);
      expect(paused).toMatch(/^pause n2: the worker of n2: no answer within \d+ ms/);
      expect(others).toEqual(["paused", "paused"]);
      // Not before its own timeout, and not forever for having been sent with others that were answered.
      expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
      await c.crash("n2");
    });
  });
});
