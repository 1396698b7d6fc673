import { describe, expect, test } from "bun:test";
import { Nemesis } from "../src/driver/nemesis.ts";
import { kvNode, kvNodes, simulate } from "./helpers.ts";

describe("nemesis", () => {
  test("injects and heals in turn every interval, logs each, and leaves nothing broken", async () => {
    const { result } = await simulate({ seed: 21, nodes: kvNodes(5), roles: { kv: kvNode } }, async (c) => {
      const n = new Nemesis(c, ["kill", "partition", "loss", "pause"], ["n1", "n2", "n3", "n4", "n5"], 1000);
      n.start();
      const seen: string[] = [];
      for (let t = 0; t < 20; t++) {
        await c.sleep(1000);
        seen.push(c.nodes.map((x) => c.status(x.id)[0]).join("") + (c.network().partitions.length ? "P" : "") + (c.network().defaults.loss > 0 ? "L" : ""));
      }
      await n.stop();
      const after = { statuses: c.nodes.map((x) => c.status(x.id)), net: c.network() };
      return { events: n.events, seen, after };
    });
    const { events, after, seen } = result;
    // One fault at a time: every sample shows at most one of crashed, paused, partition, loss.
    const faults = (s: string) => (s.match(/[cp]/g)?.length ?? 0) + (s.includes("P") ? 1 : 0) + (s.includes("L") ? 1 : 0);
    expect(seen.length).toBe(20);
    expect(seen.every((s) => faults(s) <= 1)).toBe(true);
    expect(seen.filter((s) => faults(s) === 1).length).toBeGreaterThanOrEqual(5);
    expect(events.length).toBeGreaterThanOrEqual(18);
    // Strict alternation: inject, heal, inject, heal...
    events.forEach((e, i) => expect(e.action).toBe(i % 2 === 0 ? "inject" : "heal"));
    for (let i = 1; i < events.length; i += 2) expect(events[i]!.kind).toBe(events[i - 1]!.kind);
    // Events are a second apart in cluster time.
    expect(events[1]!.at - events[0]!.at).toBeCloseTo(1, 5);
    // More than one kind of fault shows up with this seed.
    expect(new Set(events.map((e) => e.kind)).size).toBeGreaterThan(1);
    expect(after.statuses.every((s) => s === "running")).toBe(true);
    expect(after.net.partitions).toEqual([]);
    expect(after.net.defaults.loss).toBe(0);
  });

  test("the schedule is a function of the seed", async () => {
    const run = (seed: number) =>
      simulate({ seed, nodes: kvNodes(3), roles: { kv: kvNode } }, async (c) => {
        const n = new Nemesis(c, ["kill", "partition", "pause"], ["n1", "n2", "n3"], 500);
        n.start();
        await c.sleep(10_000);
        await n.stop();
        return n.events.map((e) => `${e.at}:${e.kind}:${e.detail}`);
      });
    const [a, b, c] = await Promise.all([run(1), run(1), run(2)]);
    expect(a.result).toEqual(b.result);
    expect(c.result).not.toEqual(a.result);
  });
});
