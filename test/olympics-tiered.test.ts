import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { Cluster } from "../src/driver/cluster.ts";
import { runScenario, type Summary } from "../src/driver/run.ts";
import type { CommonOptions, NemesisKind } from "../src/driver/scenario.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { withClocks } from "../src/workers/runtime/clock.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { ErrorCode, RpcError, type NodeContext, type NodeSpec, type Role } from "../src/workers/runtime/types.ts";
import { berkeleyRound, type ClockSample } from "../src/workers/olympics/berkeley.ts";
import { MEDALS, TEAMS, type Score, type Tally } from "../src/workers/olympics/domain.ts";
import { Election } from "../src/workers/olympics/election.ts";
import { LoadTable } from "../src/workers/olympics/loadtable.ts";
import { Delivery, RAFFLE_EVERY, Sequencer, samePrefix, type OrderEntry } from "../src/workers/olympics/order.ts";
import { roles } from "../src/workers/olympics/roles.ts";
import { scenario } from "../src/workers/olympics/scenario.ts";
import type { DispatcherState, FrontendState, OrderTag } from "../src/workers/olympics/tiered-messages.ts";
import type { TieredOptions } from "../src/workers/olympics/tiered-scenario.ts";
import { db as dbRole } from "../src/workers/olympics/db.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const PW = "test-password";
type Opts = TieredOptions & CommonOptions;

function options(o: Partial<Opts> = {}): Opts {
  return {
    seed: 1,
    duration: 6,
    latency: 0,
    loss: 0,
    dup: 0,
    nemesis: [],
    nemesisInterval: 2,
    logLevel: "silent",
    clockSkew: 0,
    clockDrift: 0,
    pull: 1,
    push: 1,
    mode: "random",
    rate: 200,
    pollMs: 200,
    refreshMs: 1000,
    port: 0,
    password: PW,
    tiered: true,
    dispatchers: 3,
    frontends: 2,
    syncMs: 500,
    syncOutlierMs: 20,
    syncDeltaMs: 5,
    totalOrder: "on",
    increments: 0,
    heartbeatMs: 100,
    ...o,
  } as Opts;
}

function nodesOf(o: Opts): NodeSpec[] {
  return withClocks(scenario.topology(o), o.seed, o.clockSkew ?? 0, o.clockDrift ?? 0);
}

async function inSim<T>(o: Opts, fn: (c: Cluster) => Promise<T>, extra: { roles?: Record<string, Role>; nodes?: NodeSpec[] } = {}): Promise<T> {
  const sim = new Simulation({ seed: o.seed, nodes: extra.nodes ?? nodesOf(o), roles: { ...roles, ...extra.roles }, network: { latencyMs: o.latency, loss: o.loss, dup: o.dup }, logLevel: "silent" });
  return sim.run(fn);
}

async function simScenario(o: Opts, extra: { roles?: Record<string, Role> } = {}): Promise<Summary> {
  return inSim(o, (c) => runScenario(c, scenario, o), extra);
}

function failing(s: Summary): string[] {
  return Object.entries(s.checks)
    .filter(([, ok]) => !ok)
    .map(([n]) => `${n}: ${s.details[n]}`);
}

const inc = (team: string, medal: string, write_id?: string) => ({ type: "increment_medal_tally", team, medal, password: PW, ...(write_id ? { write_id } : {}) });

async function leaderOf(c: Cluster, ids = ["dispatcher-1", "dispatcher-2", "dispatcher-3"]): Promise<DispatcherState | null> {
  const ds = (await Promise.all(ids.map((d) => c.inspect<DispatcherState>(d)))).filter((d): d is DispatcherState => !!d && d.isLeader);
  return ds[ds.length - 1] ?? null;
}

async function until(c: Cluster, what: string, cond: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = c.now() + ms;
  while (!(await cond())) {
    if (c.now() > end) throw new Error(`timed out waiting for ${what}`);
    await c.sleep(50);
  }
}

describe("tiered olympics: pure cores", () => {
  const entry = (seq: number, rid = `r${seq}`): OrderEntry => ({ seq, origin: "frontend-1", rid, client: "c", op: "get" });

  test("delivery is by position whatever the arrival order, duplicates and gaps", () => {
    const d = new Delivery();
    expect(d.receive([entry(2), entry(3)])).toEqual([]);
    expect(d.hasGap()).toBe(true);
    expect(d.receive([entry(1), entry(2)]).map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(d.hasGap()).toBe(false);
    expect(d.receive([entry(3), entry(1)])).toEqual([]);
    const e = new Delivery();
    e.receive([entry(1), entry(2), entry(3)]);
    expect(e.chain).toEqual(d.chain);
    const f = new Delivery();
    f.receive([entry(1), entry(2, "other")]);
    expect(samePrefix(d.chain, f.chain)).toBe(false);
    expect(samePrefix(d.chain, e.chain.slice(0, 1))).toBe(true);
  });

  test("the sequencer orders each rid once, multicasts to live members only, and restores from its log", () => {
    const s = new Sequencer([], 1000);
    s.join("frontend-2", 0, 0);
    const a = s.order("frontend-1", "x", "c1", "op", 10);
    expect(a.entry.seq).toBe(1);
    expect(a.multicast).toEqual(["frontend-1", "frontend-2"]);
    const again = s.order("frontend-2", "x", "c1", "op", 20);
    expect(again.entry.seq).toBe(1);
    expect(again.append).toBeUndefined();
    // frontend-2's lease (renewed at 20) runs out; frontend-1 keeps ordering.
    const b = s.order("frontend-1", "y", "c1", "op", 1500);
    expect(b.multicast).toEqual(["frontend-1"]);
    // A member that comes back gets what it missed.
    expect(s.join("frontend-2", 1, 1600).map((e) => e.seq)).toEqual([2]);
    const restored = new Sequencer(s.entries(0, s.length), 1000);
    expect(restored.order("frontend-1", "z", "c", "op", 0).entry.seq).toBe(3);
    expect(() => new Sequencer([entry(1), entry(3)], 1000)).toThrow(/contiguous/);
  });

  test("raffle winners are exactly the 100th, 200th, ... entries", () => {
    const d = new Delivery();
    d.receive(Array.from({ length: 350 }, (_, i) => entry(i + 1)));
    expect(d.winners().map((w) => w.seq)).toEqual([RAFFLE_EVERY, 2 * RAFFLE_EVERY, 3 * RAFFLE_EVERY]);
  });

  test("Berkeley over 10 rounds with random offsets: the clocks agree within δ, outliers left out of the average", () => {
    const r = seededRandom(42, "berkeley-test");
    // True offsets of two front ends and the db from the daemon's clock; each round adds fresh random error.
    const offsets = new Map([
      ["frontend-1", 0],
      ["frontend-2", 0],
      ["db", 0],
    ]);
    let daemon = 0;
    for (let round = 1; round <= 10; round++) {
      for (const [n, o] of offsets) offsets.set(n, o + r.range(-5, 5));
      if (round === 5) offsets.set("db", offsets.get("db")! + 500); // a clock jump: an outlier this round
      const now = 1_000_000 + round * 1000;
      const samples: ClockSample[] = [...offsets].map(([node, o]) => ({ node, sentAt: now, receivedAt: now + 2, clock: now + 1 + o - daemon }));
      const res = berkeleyRound("dispatcher-1", samples, 20, 20);
      if (round === 5) expect(res.outliers).toEqual(["db"]);
      for (const [n, c] of res.corrections) {
        if (n === "dispatcher-1") daemon += c;
        else offsets.set(n, offsets.get(n)! + c);
      }
      // Every clock now reads the same (what the write-up's test checks against its internal offsets).
      const clocks = [daemon, ...offsets.values()];
      expect(Math.max(...clocks) - Math.min(...clocks)).toBeLessThan(1e-6);
    }
    // Clocks spread wider than the bound, an even number of them: the largest close group is averaged.
    const spread = berkeleyRound("d", [10, 40, 80, 85, 90].map((o, i) => ({ node: `n${i}`, sentAt: 0, receivedAt: 2, clock: 1 + o })), 20, 20);
    expect(spread.averaged.sort()).toEqual(["n2", "n3", "n4"]);
    expect(spread.average).toBeCloseTo(85, 9);
    const slow = berkeleyRound("d", [{ node: "a", sentAt: 0, receivedAt: 100, clock: 50 }], 20, 20);
    expect(slow.slow).toEqual(["a"]);
    expect(slow.corrections.get("a")).toBeUndefined();
  });

  test("load table: 2N clients on N front ends end with 2 each; a dead front end's clients are placed afresh; the table rebuilds from reports", () => {
    const fes = ["frontend-1", "frontend-2", "frontend-3"];
    const t = new LoadTable(fes, 400, 100);
    for (const fe of fes) t.heartbeat(fe, [], 0);
    for (let i = 0; i < 6; i++) t.register(`c${i}`, 10);
    expect(t.loads(10)).toEqual({ "frontend-1": 2, "frontend-2": 2, "frontend-3": 2 });
    // frontend-3 stops: its clients go to the others when they ask again.
    t.heartbeat("frontend-1", [], 500);
    t.heartbeat("frontend-2", [], 500);
    const moved = Object.entries(t.clients()).length;
    expect(moved).toBe(6);
    expect(t.loads(600)).toEqual({ "frontend-1": 2, "frontend-2": 2 });
    for (let i = 0; i < 6; i++) t.register(`c${i}`, 600);
    const loads = Object.values(t.loads(600));
    expect(loads.reduce((a, b) => a + b, 0)).toBe(6);
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(1);
    // Back again: renewals move clients until the spread is at most one.
    t.heartbeat("frontend-3", [], 700);
    for (let i = 0; i < 6; i++) t.register(`c${i}`, 700);
    expect(t.loads(700)).toEqual({ "frontend-1": 2, "frontend-2": 2, "frontend-3": 2 });
    // A new leader knows nothing but what the front ends report.
    const fresh = new LoadTable(fes, 400, 100);
    fresh.heartbeat("frontend-1", ["c0", "c1"], 0);
    fresh.heartbeat("frontend-2", ["c2"], 0);
    expect(fresh.loads(0)).toEqual({ "frontend-1": 2, "frontend-2": 1 });
    expect(fresh.register("c9", 0)).toBe("frontend-2");
  });

  test("election: the highest id heard from lately leads", () => {
    const e = new Election("dispatcher-1", ["dispatcher-2", "dispatcher-10"], 400);
    expect(e.leader(0)).toBe("dispatcher-1");
    e.heard("dispatcher-2", 100);
    e.heard("dispatcher-10", 100);
    expect(e.leader(200)).toBe("dispatcher-10");
    expect(e.leader(600)).toBe("dispatcher-1");
    e.heard("dispatcher-99", 600);
    expect(e.alive(600)).toEqual(["dispatcher-1"]);
  });
});

describe("tiered olympics in the simulator", () => {
  test("1000 concurrent increments through different front ends, some sent twice with one write id, count exactly once", async () => {
    const o = options({ pull: 0, push: 0, rate: 3_600_000 });
    await inSim(
      o,
      async (c) => {
        await c.sleep(1000);
        const expected = new Map<string, number>();
        const writes: Promise<unknown>[] = [];
        const r = seededRandom(5, "inc");
        for (let i = 0; i < 1000; i++) {
          const team = r.pick(TEAMS);
          const medal = r.pick(MEDALS);
          expected.set(`${team}/${medal}`, (expected.get(`${team}/${medal}`) ?? 0) + 1);
          writes.push(c.request(`frontend-${1 + (i % 2)}`, inc(team, medal, `w${i}`), 10_000));
          // A retry through the other front end, as after a timeout.
          if (i % 10 === 0) writes.push(c.request(`frontend-${2 - (i % 2)}`, inc(team, medal, `w${i}`), 10_000));
        }
        await Promise.all(writes);
        const db = (await c.inspect<{ tallies: Tally[] }>("db"))!;
        for (const t of db.tallies) for (const m of MEDALS) expect(t[m]).toBe(expected.get(`${t.team}/${m}`) ?? 0);
      },
      { nodes: nodesOf(o).filter((n) => n.id !== "cacofonix") },
    );
  });

  test("update and retrieval: a score set through one front end reads back through the other, stamped with the db's synchronised clock", async () => {
    const o = options({ pull: 0, push: 0, clockSkew: 40, clockDrift: 50 });
    await inSim(
      o,
      async (c) => {
        await c.sleep(2000);
        await c.request("frontend-1", { type: "set_score", event: "Stone Curling", scores: { Gaul: 11, Rome: 5 }, password: PW, write_id: "s1" });
        const r = await c.request<{ score: Score }>("frontend-2", { type: "get_score", event: "stone-curling" });
        expect(r.score.scores).toEqual({ Gaul: 11, Rome: 5 });
        const info = await c.info();
        const dbErr = info.find((n) => n.id === "db")!.stats!.clockErrorMs;
        const fe = info.find((n) => n.id === "frontend-2")!.stats!.clockErrorMs;
        expect(Math.abs(dbErr - fe)).toBeLessThan(5);
        expect(Math.abs(r.score.updatedAt! - (c.now() + dbErr))).toBeLessThan(50);
        // Bad writes through a front end are refused by the db and change nothing.
        const bad = await c.request("frontend-2", { type: "set_score", event: "Stone Curling", scores: { Gaul: 1 }, password: "nope" }).catch((e) => e as RpcError);
        expect((bad as RpcError).code).toBe(ErrorCode.Unauthorized);
        expect((await c.request<{ score: Score }>("frontend-1", { type: "get_score", event: "Stone Curling" })).score.scores.Gaul).toBe(11);
      },
      { nodes: nodesOf(o).filter((n) => n.id !== "cacofonix") },
    );
  });

  test("load balancing: 2N clients on N front ends end with 2 each", async () => {
    const o = options({ frontends: 3, pull: 0, push: 0 });
    await inSim(
      o,
      async (c) => {
        await c.sleep(1000);
        const leader = (await leaderOf(c))!.leader;
        expect(leader).toBe("dispatcher-3");
        const redirect = await c.request<{ type: string; leader: string }>("dispatcher-1", { type: "register_client", client: "x" });
        expect(redirect).toMatchObject({ type: "redirect", leader: "dispatcher-3" });
        for (let i = 0; i < 6; i++) await c.request(leader, { type: "register_client", client: `client-${i}` });
        expect((await leaderOf(c))!.loads).toEqual({ "frontend-1": 2, "frontend-2": 2, "frontend-3": 2 });
        const bad = await c.request(leader, { type: "register_client", client: 42 }).catch((e) => e as RpcError);
        expect((bad as RpcError).code).toBe(ErrorCode.MalformedRequest);
        // HTTP: the leader answers, a follower points at it.
        const res = await c.fetch(leader, new Request("http://d/getServer"));
        expect(res.status).toBe(200);
        expect(((await res.json()) as { server: string }).server).toMatch(/^frontend-/);
        expect((await c.fetch("dispatcher-1", new Request("http://d/getServer"))).status).toBe(421);
        const reg = await c.fetch(leader, new Request("http://d/registerClient", { method: "POST", body: JSON.stringify({ client: "curl" }) }));
        expect(((await reg.json()) as { server: string }).server).toMatch(/^frontend-/);
        expect((await c.fetch(leader, new Request("http://d/registerClient", { method: "POST", body: "{" }))).status).toBe(400);
      },
      { nodes: nodesOf(o).filter((n) => n.id !== "cacofonix") },
    );
  });

  test("clock sync: random offsets and drift end within δ after the first rounds; only a dispatcher may correct a clock", async () => {
    const o = options({ pull: 0, push: 0, clockSkew: 200, clockDrift: 200, syncOutlierMs: 500 });
    await inSim(o, async (c) => {
      const spread = async () => {
        const errs = (await c.info()).filter((n) => /^(dispatcher|frontend|db)/.test(n.id)).map((n) => n.stats!.clockErrorMs);
        return Math.max(...errs) - Math.min(...errs);
      };
      expect(await spread()).toBeGreaterThan(50);
      await c.sleep(2000);
      for (let i = 0; i < 10; i++) {
        await c.sleep(500);
        expect(await spread()).toBeLessThan(5);
      }
      expect((await leaderOf(c))!.syncRounds).toBeGreaterThanOrEqual(10);
      const forged = await c.request("frontend-1", { type: "clock_adjust", deltaMs: 1000, round: 1 }).catch((e) => e as RpcError);
      expect((forged as RpcError).code).toBe(ErrorCode.Unauthorized);
      expect(await spread()).toBeLessThan(5);
    });
  });

  test("total order with two front ends and two clients: both deliver the same sequence, and raffle tags match positions", async () => {
    const o = options({ pull: 2, push: 0, pollMs: 200, rate: 3_600_000 });
    await inSim(o, async (c) => {
      await c.sleep(3000);
      const f1 = (await c.inspect<FrontendState & { order: OrderEntry[] }>("frontend-1"))!;
      const f2 = (await c.inspect<FrontendState & { order: OrderEntry[] }>("frontend-2"))!;
      // The load balancer put one client on each front end, and both front ends saw both clients' requests in one order.
      expect(f1.clients.length).toBe(1);
      expect(f2.clients.length).toBe(1);
      const n = Math.min(f1.delivered, f2.delivered);
      expect(n).toBeGreaterThan(20);
      expect(f1.order.slice(0, n)).toEqual(f2.order.slice(0, n));
      expect(new Set(f1.order.map((e) => e.origin))).toEqual(new Set(["frontend-1", "frontend-2"]));
      const tags: OrderTag[] = [];
      for (let i = 0; i < 120; i++) tags.push((await c.request<{ order: OrderTag }>("frontend-1", { type: "get_medal_tally", team: "Gaul" })).order);
      for (const t of tags) expect(t.raffle).toBe(t.seq % 100 === 0);
      expect(tags.some((t) => t.raffle)).toBe(true);
      const raffle = (await (await c.fetch("frontend-1", new Request("http://f/raffle"))).json()) as { winners: OrderEntry[] };
      expect(raffle.winners.map((w: OrderEntry) => w.seq)).toEqual(Array.from({ length: raffle.winners.length }, (_, i) => (i + 1) * 100));
      const tally = (await (await c.fetch("frontend-2", new Request("http://f/getMedalTally/gaul"))).json()) as Tally & { order: OrderTag };
      expect(tally.team).toBe("Gaul");
      expect(tally.order.seq).toBeGreaterThan(tags[tags.length - 1]!.seq);
      const inc = await c.fetch("frontend-1", new Request("http://f/incrementMedalTally/Rome/gold", { method: "POST", headers: { authorization: `Bearer ${PW}`, "idempotency-key": "k1" } }));
      expect(((await inc.json()) as Tally).gold).toBe(1);
      const again = await c.fetch("frontend-2", new Request("http://f/incrementMedalTally/Rome/gold", { method: "POST", headers: { authorization: `Bearer ${PW}`, "idempotency-key": "k1" } }));
      expect(((await again.json()) as Tally).gold).toBe(1);
      expect((await c.fetch("frontend-2", new Request("http://f/incrementMedalTally/Rome/gold", { method: "POST" }))).status).toBe(401);
      expect((await c.fetch("frontend-2", new Request("http://f/raffle", { method: "POST" }))).status).toBe(405);
      const clock = (await (await c.fetch("frontend-2", new Request("http://f/getClock"))).json()) as { clock: number };
      expect(Math.abs(clock.clock - c.now())).toBeLessThan(5);
    });
  });

  test("dispatcher failover: the next dispatcher leads, keeps time, and clients keep working", async () => {
    const o = options({ duration: 8, clockSkew: 30, clockDrift: 100 });
    await inSim(o, async (c) => {
      await c.sleep(2000);
      expect((await leaderOf(c))!.leader).toBe("dispatcher-3");
      await c.crash("dispatcher-3");
      await until(c, "dispatcher-2 to lead", async () => (await leaderOf(c, ["dispatcher-1", "dispatcher-2"]))?.leader === "dispatcher-2");
      const rounds = (await leaderOf(c, ["dispatcher-1", "dispatcher-2"]))!.syncRounds;
      const before = (await c.inspect<{ updates: number }>("cacofonix"))!.updates;
      await c.sleep(3000);
      const after = (await leaderOf(c, ["dispatcher-1", "dispatcher-2"]))!;
      expect(after.syncRounds).toBeGreaterThan(rounds + 3);
      expect(Object.values(after.loads).reduce((a, b) => a + b, 0)).toBe(3);
      expect((await c.inspect<{ updates: number }>("cacofonix"))!.updates).toBeGreaterThan(before + 5);
      // A new client registers with the new leader.
      expect((await c.request<{ server: string }>("dispatcher-2", { type: "register_client", client: "late" })).server).toMatch(/^frontend-/);
      await c.restart("dispatcher-3");
      await until(c, "dispatcher-3 to lead again", async () => (await leaderOf(c))?.leader === "dispatcher-3");
    });
  });

  test("front-end crash: its clients move, the other keeps delivering; restarted, it rejoins and catches up the order", async () => {
    const o = options({ pull: 2, push: 2, rate: 100 });
    await inSim(o, async (c) => {
      await c.sleep(2000);
      await c.crash("frontend-1");
      const during = (await c.inspect<FrontendState>("frontend-2"))!.delivered;
      await c.sleep(2000);
      const f2 = (await c.inspect<FrontendState>("frontend-2"))!;
      expect(f2.delivered).toBeGreaterThan(during + 10);
      expect((await leaderOf(c))!.loads).toEqual({ "frontend-2": 5 });
      await c.restart("frontend-1");
      await c.sleep(3000);
      const db = (await c.inspect<{ order: { length: number; members: string[] } }>("db"))!;
      expect(db.order.members).toEqual(["frontend-1", "frontend-2"]);
      await until(c, "both front ends to agree", async () => {
        const a = (await c.inspect<FrontendState>("frontend-1"))!;
        const b = (await c.inspect<FrontendState>("frontend-2"))!;
        return a.delivered === b.delivered && a.chain[a.chain.length - 1] === b.chain[b.chain.length - 1];
      });
      // Renewals rebalance the clients once it is back.
      await until(c, "loads to rebalance", async () => {
        const loads = Object.values((await leaderOf(c))!.loads);
        return loads.length === 2 && Math.max(...loads) - Math.min(...loads) <= 1;
      });
    });
  });

  test("seeded sweep with clock skew, drift and kill, partition, clock faults: every check passes, and a seed replays", async () => {
    const nemesis: NemesisKind[] = ["kill", "partition", "clock"];
    const digests: string[] = [];
    const kinds = new Set<string>();
    for (const seed of [1, 2, 3, 4]) {
      const o = options({ seed, duration: 12, clockSkew: 50, clockDrift: 100, latency: 1, nemesis, nemesisInterval: 1.5, increments: 300 });
      const sim = new Simulation({ seed, nodes: nodesOf(o), roles, network: { latencyMs: 1 }, logLevel: "silent" });
      const s = await sim.run((c) => runScenario(c, scenario, o));
      expect(failing(s)).toEqual([]);
      for (const e of s.nemesis) kinds.add(e.kind);
      digests.push(sim.stats().digest);
    }
    expect([...kinds].sort()).toEqual(["clock", "kill", "partition"]);
    const again = options({ seed: 1, duration: 12, clockSkew: 50, clockDrift: 100, latency: 1, nemesis, nemesisInterval: 1.5, increments: 300 });
    const sim = new Simulation({ seed: 1, nodes: nodesOf(again), roles, network: { latencyMs: 1 }, logLevel: "silent" });
    await sim.run((c) => runScenario(c, scenario, again));
    expect(sim.stats().digest).toBe(digests[0]!);
  });

  test("the checks catch a db that ignores write ids: retried increments count twice, and the seed replays it", async () => {
    // A planted bug: the db forgets write ids, so a write the front end retries after a lost reply lands twice.
    const forgetful: Role = (node: NodeContext) =>
      (dbRole as Role)({
        ...node,
        on: (type, handler) =>
          node.on(type, (msg) => {
            if (type === "increment_medal_tally") msg = { ...msg, body: { ...msg.body, write_id: undefined } };
            return handler(msg as never);
          }),
      } as NodeContext);
    const o = options({ seed: 3, duration: 8, loss: 0.05, increments: 300 });
    const run = async () => {
      const sim = new Simulation({ seed: 3, nodes: nodesOf(o), roles: { ...roles, db: forgetful }, network: { loss: 0.05 }, logLevel: "silent" });
      const s = await sim.run((c) => runScenario(c, scenario, o));
      return { s, digest: sim.stats().digest };
    };
    const a = await run();
    expect(a.s.checks["exact counts after 300 concurrent increments through 2 front ends"]).toBe(false);
    expect((await run()).digest).toBe(a.digest);
    // The same run with the real db passes.
    const good = await simScenario(o);
    expect(failing(good)).toEqual([]);
  });

  test("the checks catch a front end that garbles what it delivers, and one whose clock ignores corrections", async () => {
    const { frontend } = await import("../src/workers/olympics/frontend.ts");
    // frontend-2 takes every 7th multicast entry for another request: its order diverges from frontend-1's.
    const garbling: Role = (node: NodeContext) =>
      (frontend as Role)({
        ...node,
        on: (type, handler) =>
          node.on(type, (msg) => {
            if (type === "ordered" && node.id === "frontend-2" && Array.isArray(msg.body.entries)) {
              const entries = (msg.body.entries as OrderEntry[]).map((e) => (e.seq % 7 === 0 ? { ...e, op: "forged" } : e));
              msg = { ...msg, body: { ...msg.body, entries } };
            }
            return handler(msg as never);
          }),
      } as NodeContext);
    const o = options({ seed: 4, duration: 5, increments: 200 });
    const garbled = await simScenario(o, { roles: { frontend: garbling } });
    expect(garbled.checks["identical total order at every front end"]).toBe(false);
    // frontend-1's clock never moves: with 50 ms of skew, the spread never closes.
    const stubborn: Role = (node: NodeContext) => (frontend as Role)({ ...node, adjustClock: node.id === "frontend-1" ? () => {} : node.adjustClock } as NodeContext);
    const skewed = options({ seed: 4, duration: 5, increments: 0, clockSkew: 50 });
    const s = await simScenario(skewed, { roles: { frontend: stubborn } });
    expect(s.checks["clock difference below δ=5 ms after the first rounds"]).toBe(false);
    expect(failing(await simScenario(skewed))).toEqual([]);
  });

  test("a db restart keeps every acknowledged write; a db on memory storage loses them, and the check says so", async () => {
    const o = options({ seed: 6, duration: 6, increments: 300 });
    const run = async (storage: "os" | "memory") => {
      const nodes = nodesOf(o).map((n) => (n.id === "db" ? { ...n, storage } : n));
      return inSim(
        o,
        async (c) => {
          const crash = (async () => {
            await c.sleep(4000);
            await c.crash("db");
            await c.sleep(300);
            await c.restart("db");
          })();
          const s = await runScenario(c, scenario, o);
          await crash;
          return s;
        },
        { nodes },
      );
    };
    const durable = await run("os");
    expect(failing(durable)).toEqual([]);
    const volatile = await run("memory");
    expect(volatile.checks["no acknowledged write lost"]).toBe(false);
  });

  test("bad tiered options are refused with a clear error", () => {
    expect(() => scenario.topology(options({ frontends: 0 }))).toThrow(/--frontends/);
    expect(() => scenario.topology(options({ totalOrder: "maybe" }))).toThrow(/--total-order/);
    expect(() => scenario.topology(options({ syncMs: 0 }))).toThrow(/--sync-ms/);
    const ids = scenario.topology(options({ dispatchers: 2, frontends: 3, pull: 1, push: 1 })).map((n) => n.id);
    expect(ids).toEqual(["dispatcher-1", "dispatcher-2", "frontend-1", "frontend-2", "frontend-3", "db", "cacofonix", "tablet-1", "tablet-2"]);
  });

  test("only front ends take part in the order; malformed order messages are refused", async () => {
    const o = options({ pull: 0, push: 0 });
    await inSim(o, async (c) => {
      await c.sleep(500);
      const e = await c.request("db", { type: "order", rid: "x", client: "c", op: "o" }).catch((x) => x as RpcError);
      expect((e as RpcError).code).toBe(ErrorCode.Unauthorized);
      const len = (await c.inspect<{ order: { length: number } }>("db"))!.order.length;
      expect(len).toBeGreaterThanOrEqual(0);
    });
  });
});
