import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { RunResult } from "../src/driver/scenario.ts";
import { Simulation } from "../src/sim/simulator.ts";
import type { ReplicaSnapshot } from "../src/workers/paxos/messages.ts";
import { roles } from "../src/workers/paxos/roles.ts";
import { paxosTopology, replicaIds, runPaxos, type PaxosOptions } from "../src/workers/paxos/scenario.ts";
import { ErrorCode, RpcError } from "../src/workers/runtime/types.ts";
import type { NetworkPatch } from "../src/driver/cluster.ts";
import { healAll } from "./helpers.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

/**
 * Fault tests in the deterministic simulator, many seeds each: the scenario's own workload and
 * checks (identical executed logs, exactly-once, no-op fill, progress after leader kills) run after
 * each fault schedule.
 */

type Opts = Partial<PaxosOptions> & { nemesis?: Array<"kill" | "partition" | "loss" | "pause"> };

const NET: NetworkPatch = { latencyMs: 1, distribution: "uniform" };

async function simulate(seed: number, o: Opts, faults: (c: Simulation) => Promise<void>, network: NetworkPatch = NET): Promise<{ r: RunResult; sim: Simulation }> {
  const opts = { clients: 2, intervalMs: 5, clientTimeoutMs: 100, ...o } as PaxosOptions;
  const sim = new Simulation({ seed, nodes: paxosTopology(opts), roles, network, logLevel: "silent" });
  const r = await sim.run(async (c) => {
    let stopped = false;
    return runPaxos(c, opts, {
      untilStopped: async () => {
        await faults(c);
        await healAll(c);
        stopped = true;
      },
      stopping: () => stopped,
    });
  });
  return { r, sim };
}

function expectAllChecks(r: RunResult, seed: number): void {
  const failed = Object.entries(r.checks).filter(([, c]) => !c.ok);
  expect({ seed, failed }).toEqual({ seed, failed: [] });
}

async function leaderOf(c: Simulation, f: number): Promise<string | null> {
  let best: ReplicaSnapshot | null = null;
  for (const id of replicaIds(f)) {
    const s = await c.inspect<ReplicaSnapshot>(id);
    if (s && s.role === "leader" && (!best || s.ballot > best.ballot)) best = s;
  }
  return best?.id ?? null;
}

async function snap(c: Simulation, id: string): Promise<ReplicaSnapshot> {
  const s = await c.inspect<ReplicaSnapshot>(id);
  if (!s) throw new Error(`${id} is down`);
  return s;
}

const acked = (r: RunResult) => r.metrics!.acknowledged as number;
const seeds = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);

describe("paxos in the simulator", () => {
  test("normal operation, f = 1 and f = 2: identical logs, every message once", async () => {
    for (const [f, seed] of [[1, 1], [1, 2], [2, 3], [2, 4]] as const) {
      const { r } = await simulate(seed, { f, clients: 3 }, (c) => c.sleep(1500));
      expectAllChecks(r, seed);
      expect(acked(r)).toBeGreaterThan(300);
      expect(r.metrics!.leaderChanges).toBe(0);
    }
  });

  test("the primary dies: a new leader takes over and progress resumes (16 seeds)", async () => {
    for (const seed of seeds(16)) {
      let old: string | null = null;
      let after = 0;
      const { r } = await simulate(seed, { f: 1, nemesis: ["kill"] }, async (c) => {
        await c.sleep(600);
        old = await leaderOf(c, 1);
        await c.crash(old!);
        await c.sleep(1500);
        const now = await leaderOf(c, 1);
        expect(now).not.toBeNull();
        expect(now).not.toBe(old);
        after = (await snap(c, now!)).opsExecuted;
      });
      expectAllChecks(r, seed);
      expect((r.metrics!.failoverMs as number[]).length).toBe(1);
      expect(after).toBeGreaterThan(0);
    }
  });

  test("the primary dies f times (f = 2): two view changes, the survivors carry on (8 seeds)", async () => {
    for (const seed of seeds(8, 20)) {
      const killed: string[] = [];
      const { r } = await simulate(seed, { f: 2, nemesis: ["kill"] }, async (c) => {
        for (let k = 0; k < 2; k++) {
          await c.sleep(700);
          const l = await leaderOf(c, 2);
          expect(l).not.toBeNull();
          expect(killed).not.toContain(l);
          killed.push(l!);
          await c.crash(l!);
        }
        await c.sleep(1200);
        const l = await leaderOf(c, 2);
        expect(l).not.toBeNull();
        expect(killed).not.toContain(l);
      });
      expectAllChecks(r, seed);
      expect((r.metrics!.failoverMs as number[]).length).toBe(2);
    }
  });

  test("skipped slots: the next leader fills them with no-ops (abdication and kill, 10 seeds)", async () => {
    for (const seed of seeds(10, 40)) {
      const kill = seed % 2 === 0;
      const { r } = await simulate(seed, { f: 1, skipSlots: "3,5" }, async (c) => {
        if (kill) {
          await c.sleep(150);
          await c.crash("replica-0");
        }
        await c.sleep(1500);
      });
      expectAllChecks(r, seed);
      expect(r.checks["every skipped slot holds a no-op"]?.ok).toBe(true);
      expect(r.metrics!.noops).toBeGreaterThanOrEqual(2);
    }
  });

  test("message loss and duplication do not stop progress (f = 1: 16 seeds, f = 2: 6 seeds)", async () => {
    const lossy: NetworkPatch = { latencyMs: 2, distribution: "exponential", reorder: true, loss: 0.05, dup: 0.05 };
    for (const [f, seed] of [...seeds(16, 60).map((s) => [1, s]), ...seeds(6, 80).map((s) => [2, s])] as Array<[number, number]>) {
      const { r } = await simulate(seed, { f }, (c) => c.sleep(1500), lossy);
      expectAllChecks(r, seed);
      expect(acked(r)).toBeGreaterThan(50);
    }
  });

  test("crash and restart with durable state: replicas recover promises and log, then catch up (10 seeds)", async () => {
    for (const seed of seeds(10, 100)) {
      const { r } = await simulate(seed, { f: 1, nemesis: ["kill"] }, async (c) => {
        await c.sleep(400);
        // A follower goes down and comes back with its durable state.
        const l = (await leaderOf(c, 1))!;
        const follower = replicaIds(1).find((id) => id !== l)!;
        const before = await snap(c, follower);
        await c.crash(follower);
        await c.sleep(500);
        await c.restart(follower);
        const back = await snap(c, follower);
        expect(back.incarnation).toBe(1);
        expect(back.commit).toBeGreaterThanOrEqual(before.commit);
        expect(back.promised).toBeGreaterThanOrEqual(before.promised);
        await c.sleep(400);
        expect((await snap(c, follower)).commit).toBeGreaterThan(before.commit);
        // The whole cluster goes down at once and restarts from disk.
        const all = replicaIds(1);
        const commits = await Promise.all(all.map(async (id) => (await snap(c, id)).commit));
        for (const id of all) await c.crash(id);
        await c.sleep(100);
        for (const id of all) await c.restart(id);
        for (let i = 0; i < all.length; i++) expect((await snap(c, all[i]!)).commit).toBe(commits[i]!);
        await c.sleep(1200);
      });
      expectAllChecks(r, seed);
    }
  });

  test("memory storage: a restarted replica comes back empty, as a learner, and catches up from the others", async () => {
    const { r } = await simulate(5, { f: 1, memory: true }, async (c) => {
      await c.sleep(500);
      await c.crash("replica-2");
      await c.sleep(200);
      await c.restart("replica-2");
      const back = await snap(c, "replica-2");
      expect(back.commit).toBe(0);
      expect(back.voter).toBe(false); // it may have forgotten promises: it never votes again
      await c.sleep(800);
      expect((await snap(c, "replica-2")).commit).toBeGreaterThan(0);
    });
    expectAllChecks(r, 5);
    expect(String(r.metrics!.storage)).toContain("learners now: replica-2");
  });

  test("a minority partition cannot commit; the majority carries on (f = 2, 8 seeds)", async () => {
    for (const seed of seeds(8, 120)) {
      const { r } = await simulate(seed, { f: 2 }, async (c) => {
        await c.sleep(500);
        const minority = ["replica-0", "replica-1"];
        const majority = ["replica-2", "replica-3", "replica-4"];
        await c.setNetwork({ partitions: [{ from: minority, to: majority }] });
        await c.sleep(50);
        const m0 = await Promise.all(minority.map(async (id) => (await snap(c, id)).commit));
        const j0 = (await snap(c, "replica-2")).commit;
        await c.sleep(1500);
        const m1 = await Promise.all(minority.map(async (id) => (await snap(c, id)).commit));
        expect(m1).toEqual(m0);
        expect((await snap(c, "replica-2")).commit).toBeGreaterThan(j0);
        await c.setNetwork({ partitions: [] });
        await c.sleep(800);
      });
      expectAllChecks(r, seed);
    }
  });

  test("a partitioned old leader comes back and commits nothing of its own (12 seeds)", async () => {
    for (const seed of seeds(12, 140)) {
      const { r } = await simulate(seed, { f: 1, clients: 3 }, async (c) => {
        await c.sleep(500);
        const old = (await leaderOf(c, 1))!;
        const others = replicaIds(1).filter((id) => id !== old);
        // Clients still reach the old leader: it keeps taking messages it can never commit.
        await c.setNetwork({ partitions: [{ from: [old], to: others }] });
        await c.sleep(50);
        const before = await snap(c, old);
        await c.sleep(200);
        const during = await snap(c, old);
        expect(during.commit).toBe(before.commit);
        await c.sleep(1300);
        expect((await snap(c, old)).commit).toBe(before.commit);
        expect(await leaderOf(c, 1)).not.toBe(old);
        await c.setNetwork({ partitions: [] });
        await c.sleep(1000);
      });
      expectAllChecks(r, seed);
    }
  });

  test("random faults: kills, restarts, pauses, partitions and loss (16 seeds)", async () => {
    for (const seed of seeds(16, 200)) {
      const f = seed % 2 === 0 ? 1 : 2;
      const ids = replicaIds(f);
      const { r } = await simulate(seed, { f, clients: 3 }, async (c) => {
        for (let step = 0; step < 10; step++) {
          await c.sleep(150 + c.random.int(300));
          const down = ids.filter((id) => c.status(id) !== "running");
          const x = c.random.int(5);
          if (x === 0 && down.length < f) await c.crash(c.random.pick(ids.filter((id) => c.status(id) === "running")));
          else if (x === 1 && down.length > 0) {
            const id = c.random.pick(down);
            if (c.status(id) === "paused") await c.resume(id);
            else await c.restart(id);
          } else if (x === 2 && down.length < f) await c.pause(c.random.pick(ids.filter((id) => c.status(id) === "running")));
          else if (x === 3) {
            const side = c.random.shuffle(ids).slice(0, f);
            await c.setNetwork({ partitions: [{ from: side, to: ids.filter((id) => !side.includes(id)) }] });
          } else await c.setNetwork({ partitions: [], loss: c.random.chance(0.5) ? 0.1 : 0 });
        }
        await c.setNetwork({ partitions: [], loss: 0 });
        for (const id of ids) {
          if (c.status(id) === "paused") await c.resume(id);
          if (c.status(id) === "crashed") await c.restart(id);
        }
        await c.sleep(1000);
      });
      expectAllChecks(r, seed);
    }
  });

  test("pipelined, batching clients under leader kills and loss: still exactly once (8 seeds)", async () => {
    for (const seed of seeds(8, 300)) {
      const { r } = await simulate(
        seed,
        { f: 1, clients: 2, pipeline: 4, clientBatch: 8, window: 4, batch: 16, nemesis: ["kill"] },
        async (c) => {
          for (let k = 0; k < 2; k++) {
            await c.sleep(500);
            const l = await leaderOf(c, 1);
            if (l) {
              await c.crash(l);
              await c.sleep(400);
              await c.restart(l);
            }
          }
          await c.sleep(500);
        },
        { latencyMs: 1, distribution: "exponential", reorder: true, loss: 0.03, dup: 0.03 },
      );
      expectAllChecks(r, seed);
      expect(acked(r)).toBeGreaterThan(1000);
    }
  });

  test("malformed messages are refused or counted; the replica keeps working", async () => {
    const { r } = await simulate(7, { f: 1 }, async (c) => {
      await c.sleep(300);
      for (const body of [
        { type: "prepare", b: 2 ** 60, from: 1 },
        { type: "accept", b: "x", entries: [], commit: 0 },
        { type: "promise" },
        { type: "fetch", from: -5, to: 1e300 },
      ])
        await c.request("replica-0", body, 50).catch(() => undefined); // fire-and-forget types: no reply, just counted
      const bad = [{ op: null }, { op: { id: "x", c: "c", s: -1, lw: 0, t: "" } }, { op: { id: "x", c: "c", s: 0, lw: 0, t: "y".repeat(2000) } }];
      for (const body of bad) {
        const e = await c.request("replica-0", { type: "chat", ...body }, 200).catch((e) => e);
        expect(e).toBeInstanceOf(RpcError);
        expect((e as RpcError).code).toBe(ErrorCode.MalformedRequest);
      }
      // A batch in its compact (encoded string) form: a bad field, a wrong field count, an empty string.
      for (const ops of ["x\u009fc\u009f1\u009f2\u009ft", "x\u009fc\u009f1", ""]) {
        const e = await c.request("replica-0", { type: "chat_batch", ops }, 200).catch((e) => e);
        expect((e as RpcError).code).toBe(ErrorCode.MalformedRequest);
      }
      const e2 = await c.request("replica-0", { type: "log_read", from: "a", limit: 1 }, 200).catch((e) => e);
      expect((e2 as RpcError).code).toBe(ErrorCode.MalformedRequest);
      expect((await snap(c, "replica-0")).badMessages).toBe(10);
      await c.sleep(500);
    });
    expectAllChecks(r, 7);
  });

  test("deterministic: the same seed gives the same run", async () => {
    const a = await simulate(3, { f: 1 }, (c) => c.sleep(500));
    const b = await simulate(3, { f: 1 }, (c) => c.sleep(500));
    expect(a.sim.stats().digest).toBe(b.sim.stats().digest);
    expect(a.r.metrics!.hashes).toEqual(b.r.metrics!.hashes);
  });
});
