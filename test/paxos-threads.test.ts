import { describe, expect, test } from "bun:test";
import type { RunResult } from "../src/driver/scenario.ts";
import type { ThreadCluster } from "../src/main/supervisor.ts";
import type { ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { paxosTopology, replicaIds, runPaxos, type PaxosOptions } from "../src/workers/paxos/scenario.ts";
import { healAll, tempDirs, withThreads } from "./helpers.ts";

/** A few real runs on worker threads with sqlite storage: the same scenario and checks as the simulator. */

const tmp = tempDirs("paxos");

function threaded(o: Partial<PaxosOptions>, faults: (c: ThreadCluster) => Promise<void>): Promise<RunResult> {
  const opts = { f: 1, clients: 2, intervalMs: 2, ...o } as PaxosOptions;
  return withThreads({ system: "paxos", nodes: paxosTopology(opts), seed: 1, dataDir: tmp(), logLevel: "silent" }, (c) =>
    runPaxos(c, opts, { untilStopped: () => faults(c).then(() => healAll(c)), stopping: () => false }, { quietTimeoutMs: 5000 }),
  );
}

/** The current leader, waiting out an election under way (a busy machine may delay one). */
async function leaderOf(c: ThreadCluster): Promise<string | null> {
  for (let i = 0; i < 100; i++) {
    for (const id of replicaIds(1)) if ((await c.inspect<ReplicaSnapshot>(id))?.role === "leader") return id;
    await c.sleep(50);
  }
  return null;
}

function expectAllChecks(r: RunResult): void {
  expect(Object.entries(r.checks).filter(([, c]) => !c.ok)).toEqual([]);
}

describe("paxos on worker threads", () => {
  test("a second run over the same durable log (no --fresh) passes every check: the earlier run's messages are not this run's faults", async () => {
    const dir = tmp();
    const opts = { f: 1, clients: 2, intervalMs: 2 } as PaxosOptions;
    for (const round of [1, 2]) {
      const r = await withThreads({ system: "paxos", nodes: paxosTopology(opts), seed: round, dataDir: dir, fresh: round === 1, logLevel: "silent" }, (c) =>
        runPaxos(c, opts, { untilStopped: () => c.sleep(600), stopping: () => false }, { quietTimeoutMs: 5000 }),
      );
      expect({ round, failing: Object.entries(r.checks).filter(([, c]) => !c.ok) }).toEqual({ round, failing: [] });
      if (round === 2) expect(r.checks["total order"]?.detail).toContain("an earlier run logged");
    }
  }, 60_000);


  test("leader killed and restarted from its sqlite state: a new leader takes over, logs identical, exactly once", async () => {
    let old: string | null = null;
    const r = await threaded({ f: 1, nemesis: ["kill"] } as Partial<PaxosOptions>, async (c) => {
      await c.sleep(700);
      old = await leaderOf(c);
      expect(old).not.toBeNull();
      await c.crash(old!);
      await c.sleep(1200);
      await c.restart(old!);
      const back = (await c.inspect<ReplicaSnapshot>(old!))!;
      expect(back.incarnation).toBe(1);
      expect(back.commit).toBeGreaterThan(0); // recovered from disk before any catch-up
      await c.sleep(500);
    });
    expectAllChecks(r);
    expect((r.metrics!.failoverMs as number[]).length).toBe(1);
    expect(r.metrics!.acknowledged as number).toBeGreaterThan(100);
  });

  test("a partitioned old leader commits nothing; after the heal the logs agree", async () => {
    const r = await threaded({ f: 1, clientTimeoutMs: 100 } as Partial<PaxosOptions>, async (c) => {
      await c.sleep(500);
      const old = await leaderOf(c);
      expect(old).not.toBeNull();
      await c.setNetwork({ partitions: [{ from: [old!], to: replicaIds(1).filter((id) => id !== old) }] });
      await c.sleep(100);
      const before = (await c.inspect<ReplicaSnapshot>(old!))!.commit;
      await c.sleep(1200);
      const during = (await c.inspect<ReplicaSnapshot>(old!))!;
      expect(during.commit).toBe(before);
      expect(during.role).not.toBe("leader");
      await c.setNetwork({ partitions: [] });
      await c.sleep(700);
    });
    expectAllChecks(r);
    expect(r.metrics!.leaderChanges as number).toBeGreaterThanOrEqual(1);
  });

  test("skipped slots and 5% loss on threads", async () => {
    const opts = { f: 1, clients: 2, intervalMs: 2, skipSlots: "3,5", clientTimeoutMs: 100 } as PaxosOptions;
    const r = await withThreads({ system: "paxos", nodes: paxosTopology(opts), seed: 2, dataDir: tmp(), logLevel: "silent", network: { loss: 0.05 } }, (c) =>
      runPaxos(c, opts, { untilStopped: () => c.sleep(1500), stopping: () => false }, { quietTimeoutMs: 5000 }),
    );
    expectAllChecks(r);
    expect(r.checks["every skipped slot holds a no-op"]?.ok).toBe(true);
  });
});
