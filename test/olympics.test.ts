import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cluster } from "../src/driver/cluster.ts";
import type { CommonOptions, RunControl } from "../src/driver/scenario.ts";
import { runScenario as runDriver } from "../src/driver/run.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { EVENTS, MEDALS, TEAMS, parseEvent, parseScores, parseTeam, type Score, type Tally } from "../src/workers/olympics/domain.ts";
import type { CacofonixConfig, RegisterOk, TabletConfig, TabletState } from "../src/workers/olympics/messages.ts";
import { roles } from "../src/workers/olympics/roles.ts";
import { scenario, type ObelixSnapshot, type OlympicsOptions } from "../src/workers/olympics/scenario.ts";
import { ErrorCode, RpcError, defineRole, type Body, type NodeSpec } from "../src/workers/runtime/types.ts";
import type { NetworkPatch } from "../src/driver/cluster.ts";
import { delays, floorVerdict, floorWorkerUrl, packedFloorSplit, packedVerdict, plots, rawFanOut, roleSplit, verdicts, type FloorWorker, type Row } from "../bench/push-pull.ts";
import { packedFloor, tabletsPerThread } from "../bench/lib/packed-floor.ts";
import { allowedCpus } from "../src/workers/runtime/cpu-affinity.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const PW = "test-password";

function obelixSpec(): NodeSpec {
  return { id: "obelix", role: "obelix", config: { password: PW, port: 0 } };
}

function tabletSpec(id: string, mode: "push" | "pull", teams: string[], events: string[], extra: Partial<TabletConfig> = {}): NodeSpec {
  return { id, role: "tablet", config: { obelix: "obelix", mode, teams, events, pollMs: 100, refreshMs: 5000, ...extra } satisfies TabletConfig };
}

async function inSim<T>(nodes: NodeSpec[], fn: (c: Cluster) => Promise<T>, opts: { seed?: number; network?: NetworkPatch } = {}): Promise<T> {
  return new Simulation({ seed: opts.seed ?? 1, nodes, roles, network: opts.network, logLevel: "silent" }).run(fn);
}

async function rpcError(p: Promise<unknown>): Promise<RpcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof RpcError) return e;
    throw e;
  }
  throw new Error("expected an RpcError, got a reply");
}

const inc = (team: unknown, medal: unknown, password: unknown = PW) => ({ type: "increment_medal_tally", team, medal, password });
const setScore = (event: unknown, scores: unknown, password: unknown = PW) => ({ type: "set_score", event, scores, password });
const tallyOf = async (c: Cluster, team: string) => (await c.request<{ type: string; tally: Tally }>("obelix", { type: "get_medal_tally", team })).tally;
const scoreOf = async (c: Cluster, event: string) => (await c.request<{ type: string; score: Score }>("obelix", { type: "get_score", event })).score;
const board = async (c: Cluster) => (await c.inspect<ObelixSnapshot>("obelix"))!;

function post(path: string, opts: { auth?: string; body?: string } = {}): Request {
  const headers: Record<string, string> = {};
  if (opts.auth !== undefined) headers.authorization = opts.auth;
  return new Request(`http://obelix${path}`, { method: "POST", headers, body: opts.body });
}
const get = (path: string) => new Request(`http://obelix${path}`);

describe("domain", () => {
  test("names are matched in any case, with - or _ for spaces, and unknown ones list the valid names", () => {
    expect(parseTeam("gaul")).toBe("Gaul");
    expect(parseEvent("stone-curling")).toBe("Stone Curling");
    expect(parseEvent("SYNCHRONIZED_STONE_SWIMMING")).toBe("Synchronized Stone Swimming");
    const e = (() => {
      try {
        parseTeam("Atlantis");
      } catch (x) {
        return x as RpcError;
      }
    })()!;
    expect(e.code).toBe(ErrorCode.KeyDoesNotExist);
    for (const t of TEAMS) expect(e.text).toContain(t);
    expect(() => parseScores({ Gaul: Number.NaN })).toThrow(RpcError);
    expect(() => parseScores({ Gaul: 1, gaul: 2 })).toThrow(/twice/);
    expect(() => parseScores([1, 2])).toThrow(RpcError);
    expect(parseScores({ rome: 2 })).toEqual({ Rome: 2 });
  });
});

describe("obelix over node messages", () => {
  test("reads, writes, and every refusal changes nothing", async () => {
    await inSim([obelixSpec()], async (c) => {
      expect(await tallyOf(c, "Gaul")).toMatchObject({ team: "Gaul", gold: 0, silver: 0, bronze: 0, version: 0, updatedAt: null });
      const t = (await c.request<{ type: string; tally: Tally }>("obelix", inc("Gaul", "gold"))).tally;
      expect(t).toMatchObject({ gold: 1, version: 1 });
      expect(t.updatedAt).toBeNumber();
      await c.request("obelix", inc("rome", "Silver"));
      expect(await tallyOf(c, "Rome")).toMatchObject({ team: "Rome", gold: 0, silver: 1, bronze: 0 });

      const s = (await c.request<{ type: string; score: Score }>("obelix", setScore("Stone Curling", { Gaul: 3, Rome: 2 }))).score;
      expect(s).toMatchObject({ event: "Stone Curling", scores: { Gaul: 3, Rome: 2 }, version: 1 });
      expect(await scoreOf(c, "stone curling")).toMatchObject({ scores: { Gaul: 3, Rome: 2 } });

      const before = JSON.stringify((await board(c)).tallies) + JSON.stringify((await board(c)).scores);
      const unknownTeam = await rpcError(tallyOf(c, "Atlantis"));
      expect(unknownTeam.code).toBe(ErrorCode.KeyDoesNotExist);
      expect(unknownTeam.text).toContain("Atlantis");
      expect(unknownTeam.text).toContain(TEAMS.join(", "));
      const unknownEvent = await rpcError(scoreOf(c, "Stone Juggling"));
      expect(unknownEvent.text).toContain(EVENTS.join(", "));
      const unknownMedal = await rpcError(c.request("obelix", inc("Gaul", "tin")));
      expect(unknownMedal.code).toBe(ErrorCode.KeyDoesNotExist);
      expect(unknownMedal.text).toContain(MEDALS.join(", "));
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", { Atlantis: 1 })))).text).toContain(TEAMS.join(", "));
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", { Gaul: "many" })))).code).toBe(ErrorCode.MalformedRequest);
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", "3-2")))).code).toBe(ErrorCode.MalformedRequest);
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", { Gaul: 1e300 })))).code).toBe(ErrorCode.MalformedRequest);

      const wrong = await rpcError(c.request("obelix", inc("Gaul", "gold", "guess")));
      expect(wrong.code).toBe(ErrorCode.Unauthorized);
      expect(wrong.text).toContain("wrong password");
      const missing = await rpcError(c.request("obelix", { type: "increment_medal_tally", team: "Gaul", medal: "gold" }));
      expect(missing.code).toBe(ErrorCode.Unauthorized);
      expect(missing.text).toContain("missing password");
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", { Gaul: 99 }, PW + "x")))).code).toBe(ErrorCode.Unauthorized);
      expect((await rpcError(c.request("obelix", setScore("Stone Curling", { Gaul: 99 }, { pw: PW })))).code).toBe(ErrorCode.Unauthorized);
      // The password is checked first: a wrong one learns nothing, not even that a name is invalid.
      expect((await rpcError(c.request("obelix", inc("Atlantis", "gold", "guess")))).code).toBe(ErrorCode.Unauthorized);

      // Garbage of every shape: a clear error, and obelix keeps serving.
      for (const body of [
        { type: "get_medal_tally" },
        { type: "get_medal_tally", team: { $gt: "" } },
        { type: "get_score", event: 42 },
        { type: "get_score", event: "x".repeat(100_000) },
        { type: "increment_medal_tally", team: ["Gaul"], medal: "gold", password: PW },
        { type: "set_score", event: "Stone Curling", password: PW },
        { type: "register", tablet: "obelix", teams: [], events: [] },
        { type: "register", tablet: "nobody", teams: [], events: [] },
        { type: "tally_update", tally: { team: "Gaul", gold: 1e9 } },
      ]) {
        const e = await rpcError(c.request("obelix", body));
        expect([ErrorCode.KeyDoesNotExist, ErrorCode.MalformedRequest, ErrorCode.NotSupported]).toContain(e.code as never);
      }
      const after = JSON.stringify((await board(c)).tallies) + JSON.stringify((await board(c)).scores);
      expect(after).toBe(before);
      expect((await board(c)).stats.refusedWrites).toBe(5);
    });
  });

  test("an obelix without a password refuses every write", async () => {
    await inSim([{ id: "obelix", role: "obelix", config: {} }], async (c) => {
      expect((await rpcError(c.request("obelix", inc("Gaul", "gold", "")))).code).toBe(ErrorCode.Unauthorized);
      expect((await rpcError(c.request("obelix", inc("Gaul", "gold", "anything")))).code).toBe(ErrorCode.Unauthorized);
      expect((await tallyOf(c, "Gaul")).gold).toBe(0);
    });
  });
});

describe("obelix over HTTP", () => {
  test("every route, with the password only in the Authorization header", async () => {
    await inSim([obelixSpec()], async (c) => {
      const f = (r: Request) => c.fetch("obelix", r);
      let res = await f(post("/incrementMedalTally/Gaul/gold", { auth: `Bearer ${PW}` }));
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ team: "Gaul", gold: 1, version: 1 });
      res = await f(get("/getMedalTally/gaul"));
      expect(await res.json()).toMatchObject({ team: "Gaul", gold: 1, silver: 0, bronze: 0 });

      res = await f(post("/setScore/Stone%20Curling", { auth: `bearer ${PW}`, body: JSON.stringify({ Gaul: 2, Carthage: 1 }) }));
      expect(res.status).toBe(200);
      res = await f(get("/getScore/stone-curling"));
      expect(await res.json()).toMatchObject({ event: "Stone Curling", scores: { Gaul: 2, Carthage: 1 }, version: 1 });
      res = await f(get("/"));
      expect(((await res.json()) as { teams: string[] }).teams).toEqual([...TEAMS]);

      const before = JSON.stringify(await board(c));
      const expectError = async (r: Request, status: number, ...mentions: string[]) => {
        const res = await f(r);
        expect(res.status).toBe(status);
        const body = (await res.json()) as { error: { message: string } };
        for (const m of mentions) expect(body.error.message).toContain(m);
      };
      await expectError(get("/getMedalTally/Atlantis"), 404, "Atlantis", TEAMS.join(", "));
      await expectError(get("/getScore/Stone%20Juggling"), 404, "Stone Juggling", EVENTS.join(", "));
      await expectError(post("/incrementMedalTally/Gaul/tin", { auth: `Bearer ${PW}` }), 404, MEDALS.join(", "));
      await expectError(post("/incrementMedalTally/Gaul/gold"), 401, "missing password");
      await expectError(post("/incrementMedalTally/Gaul/gold", { auth: "Bearer nope" }), 403, "wrong password");
      await expectError(post("/incrementMedalTally/Gaul/gold", { auth: `Basic ${btoa("x:" + PW)}` }), 401, "Bearer");
      await expectError(post(`/incrementMedalTally/Gaul/gold?password=${PW}`, { auth: `Bearer ${PW}` }), 400, "never in the URL");
      await expectError(post("/setScore/Stone%20Curling", { body: JSON.stringify({ Gaul: 9 }) }), 401);
      await expectError(post("/setScore/Stone%20Curling", { auth: "Bearer nope", body: JSON.stringify({ Gaul: 9 }) }), 403);
      await expectError(post("/setScore/Stone%20Curling", { auth: `Bearer ${PW}`, body: "{not json" }), 400, "JSON");
      await expectError(post("/setScore/Stone%20Curling", { auth: `Bearer ${PW}`, body: JSON.stringify({ Atlantis: 1 }) }), 404, TEAMS.join(", "));
      await expectError(post("/setScore/Stone%20Curling", { auth: `Bearer ${PW}`, body: JSON.stringify([1]) }), 400);
      await expectError(post("/setScore/Stone%20Curling", { auth: `Bearer ${PW}`, body: "x".repeat(20_000) }), 413);
      await expectError(get("/incrementMedalTally/Gaul/gold"), 405, "POST");
      await expectError(post("/getMedalTally/Gaul"), 405, "GET");
      await expectError(get("/getMedalTally"), 404, "/getMedalTally/:team");
      await expectError(get("/getMedalTally/Gaul/extra"), 404);
      await expectError(get("/getScore/%E0%A4%A"), 400, "malformed");
      await expectError(get("/admin"), 404, "routes");
      expect(JSON.stringify({ ...(await board(c)), stats: null })).toBe(JSON.stringify({ ...JSON.parse(before), stats: null }));
    });
  });
});

describe("push and pull", () => {
  test("register with partly invalid names registers the valid ones and reports the rest", async () => {
    await inSim([obelixSpec(), tabletSpec("t1", "push", ["Gaul"], ["Stone Curling"])], async (c) => {
      const ok = await c.request<RegisterOk>("obelix", { type: "register", tablet: "t1", teams: ["gaul", "Atlantis", 7], events: ["Stone Skating", "Stone Juggling"] });
      expect(ok.teams).toEqual(["Gaul"]);
      expect(ok.events).toEqual(["Stone Skating"]);
      expect(ok.invalid).toEqual({ teams: ["Atlantis", "a number"], events: ["Stone Juggling"] });
      expect(ok.error).toContain("Atlantis");
      expect(ok.error).toContain(EVENTS.join(", "));
      expect(ok.tallies.map((t) => t.team)).toEqual(["Gaul"]);
      expect((await board(c)).subscriptions.t1).toEqual({ teams: ["Gaul"], events: ["Stone Skating"] });
      expect((await rpcError(c.request("obelix", { type: "register", tablet: "t1", teams: "Gaul", events: [] }))).code).toBe(ErrorCode.MalformedRequest);
      expect((await rpcError(c.request("obelix", { type: "register", tablet: "t1", teams: Array(100).fill("Gaul"), events: [] }))).code).toBe(ErrorCode.TooLarge);
      expect((await board(c)).subscriptions.t1).toEqual({ teams: ["Gaul"], events: ["Stone Skating"] });
    });
  });

  test("a node registers itself only", async () => {
    // A test-only node that asks obelix for whatever registration the driver tells it to.
    const forger = defineRole((node) => {
      node.on("forge", async (msg) => {
        try {
          node.reply(msg, { type: "forge_ok", reply: await node.request("obelix", msg.body.register as Body) });
        } catch (e) {
          node.reply(msg, { type: "forge_ok", error: (e as RpcError).code });
        }
      });
    });
    const nodes = [obelixSpec(), { id: "evil", role: "forger" }, tabletSpec("victim", "pull", ["Gaul"], [], { pollMs: 1_000_000 })];
    await new Simulation({ seed: 1, nodes, roles: { ...roles, forger }, logLevel: "silent" }).run(async (c) => {
      const forged = await c.request<{ type: string; error?: number }>("evil", { type: "forge", register: { type: "register", tablet: "victim", teams: ["Gaul"], events: [] } });
      expect(forged.error).toBe(ErrorCode.Unauthorized);
      expect((await board(c)).subscriptions.victim).toBeUndefined();
      const own = await c.request<{ type: string; reply: RegisterOk }>("evil", { type: "forge", register: { type: "register", tablet: "evil", teams: ["Rome"], events: [] } });
      expect(own.reply.teams).toEqual(["Rome"]);
    });
  });

  test("a push tablet with invalid names in its config registers the valid ones and records the rest", async () => {
    await inSim([obelixSpec(), tabletSpec("t1", "push", ["Gaul", "Atlantis"], ["Stone Juggling", "Stone Curling"])], async (c) => {
      await c.sleep(200);
      const s = (await c.inspect<TabletState>("t1"))!;
      expect(s.registered).toBe(true);
      expect(s.invalid.sort()).toEqual(["Atlantis", "Stone Juggling"]);
      expect((await board(c)).subscriptions.t1).toEqual({ teams: ["Gaul"], events: ["Stone Curling"] });
    });
  });

  test("push reaches exactly the interested tablets", async () => {
    const nodes = [
      obelixSpec(),
      tabletSpec("a", "push", ["Gaul"], ["Stone Curling"]),
      tabletSpec("b", "push", ["Rome", "Gaul"], []),
      tabletSpec("c", "push", [], ["Stone Skating"]),
      tabletSpec("d", "pull", ["Gaul"], ["Stone Curling"], { pollMs: 1_000_000 }),
    ];
    await inSim(
      nodes,
      async (c) => {
        await c.sleep(200);
        for (let i = 0; i < 3; i++) await c.request("obelix", inc("Gaul", "gold"));
        await c.request("obelix", inc("Rome", "bronze"));
        await c.request("obelix", setScore("Stone Curling", { Gaul: 1 }));
        await c.request("obelix", setScore("Stone Skating", { Persia: 4 }));
        await c.request("obelix", inc("Persia", "silver"));
        await c.fetch("obelix", post("/incrementMedalTally/Gaul/silver", { auth: `Bearer ${PW}` }));
        await c.sleep(200);
        const [a, b, cc, d] = await Promise.all(["a", "b", "c", "d"].map((id) => c.inspect<TabletState>(id)));
        expect(a!.tallies.Gaul).toMatchObject({ gold: 3, silver: 1, version: 4 });
        expect(a!.scores["Stone Curling"]).toMatchObject({ scores: { Gaul: 1 } });
        expect(Object.keys(a!.tallies)).toEqual(["Gaul"]);
        expect(Object.keys(a!.scores)).toEqual(["Stone Curling"]);
        expect(a!.pushes).toBe(5);
        expect(b!.tallies.Rome).toMatchObject({ bronze: 1 });
        expect(b!.tallies.Gaul).toMatchObject({ gold: 3, silver: 1 });
        expect(b!.pushes).toBe(5);
        expect(Object.keys(b!.scores)).toEqual([]);
        expect(cc!.scores["Stone Skating"]).toMatchObject({ scores: { Persia: 4 } });
        expect(cc!.pushes).toBe(1);
        expect(Object.keys(cc!.tallies)).toEqual([]);
        expect(d!.pushes).toBe(0);
        for (const s of [a, b, cc, d]) expect(s!.unexpectedPushes).toBe(0);
        // Every push was a change the tablet applied, measured from obelix's stamp.
        expect(a!.propagationMs.length).toBe(5);
        expect((await board(c)).stats.pushes).toBe(11);
        // obelix's update log and the tablet's apply log line up version by version (what the benchmark matches).
        const gaul = (await board(c)).stats.recentUpdates.filter((u) => u.key === "tally/Gaul");
        expect(gaul.map((u) => u.version)).toEqual([1, 2, 3, 4]);
        const held = a!.applied.filter((x) => x.key === "tally/Gaul" && x.version > 0);
        expect(held.map((x) => x.version)).toEqual([1, 2, 3, 4]);
        for (let i = 0; i < 4; i++) expect(held[i]!.at).toBeGreaterThanOrEqual(gaul[i]!.at);
      },
      { network: { latencyMs: 2, distribution: "uniform" } },
    );
  });

  test("a benchmark's reset empties a tablet's samples and record; later pushes fill them again, in order", async () => {
    await inSim([obelixSpec(), tabletSpec("a", "push", ["Gaul"], ["Stone Curling"])], async (c) => {
      await c.sleep(200);
      await c.request("obelix", inc("Gaul", "gold"));
      await c.request("obelix", setScore("Stone Curling", { Gaul: 2 }));
      await c.sleep(100);
      const before = (await c.inspect<TabletState>("a"))!;
      expect(before.applied.filter((x) => x.version > 0).map((x) => [x.key, x.version])).toEqual([["tally/Gaul", 1], ["score/Stone Curling", 1]]);
      await c.request("a", { type: "tablet_reset_samples" });
      const reset = (await c.inspect<TabletState>("a"))!;
      expect(reset.applied).toEqual([]);
      expect(reset.propagationMs).toEqual([]);
      // What the tablet holds is not a sample: a reset keeps it.
      expect(reset.tallies.Gaul).toMatchObject({ gold: 1, version: 1 });
      await c.request("obelix", inc("Gaul", "silver"));
      await c.request("obelix", inc("Gaul", "gold"));
      await c.sleep(100);
      const after = (await c.inspect<TabletState>("a"))!;
      expect(after.applied.map((x) => [x.key, x.version])).toEqual([["tally/Gaul", 2], ["tally/Gaul", 3]]);
      expect(after.applied[0]!.at).toBeLessThanOrEqual(after.applied[1]!.at);
      expect(after.propagationMs.length).toBe(2);
    });
  });

  test("forged or malformed pushes are refused and change nothing", async () => {
    await inSim([obelixSpec(), tabletSpec("t", "push", ["Gaul"], ["Stone Curling"]), tabletSpec("evil", "pull", [], [], { pollMs: 1_000_000 })], async (c) => {
      await c.sleep(100);
      const before = JSON.stringify((await c.inspect<TabletState>("t"))!.tallies);
      for (const body of [
        { type: "tally_update", tally: { team: "Gaul", gold: 100, silver: 0, bronze: 0, version: 99, updatedAt: null } },
        { type: "tally_update", tally: "gold!" },
        { type: "score_update", score: { event: "Stone Curling", scores: { Gaul: -1 }, version: 99, updatedAt: null } },
      ]) {
        await c.request("t", body, 50).catch(() => {});
      }
      const s = (await c.inspect<TabletState>("t"))!;
      expect(JSON.stringify(s.tallies)).toBe(before);
      expect(s.refused).toBe(3);
    });
  });

  test("cacofonix told to stop answers at once, however long its rate", async () => {
    const nodes: NodeSpec[] = [obelixSpec(), { id: "cacofonix", role: "cacofonix", config: { obelix: "obelix", password: PW, mode: "testing", rateMs: 3_600_000 } satisfies CacofonixConfig }];
    await inSim(nodes, async (c) => {
      await c.sleep(1000);
      const t0 = c.now();
      const report = (await c.request<{ type: string; report: { running: boolean; updates: number } }>("cacofonix", { type: "cacofonix_stop" }, 5000)).report;
      expect([report.running, report.updates]).toEqual([false, 0]);
      expect(c.now() - t0).toBeLessThan(100);
    });
  });

  test("pull tablets converge on obelix's values while cacofonix writes", async () => {
    const nodes: NodeSpec[] = [
      obelixSpec(),
      { id: "cacofonix", role: "cacofonix", config: { obelix: "obelix", password: PW, mode: "random", rateMs: 50 } satisfies CacofonixConfig },
      tabletSpec("p1", "pull", [...TEAMS], [...EVENTS], { pollMs: 80 }),
      tabletSpec("p2", "pull", ["Greece"], ["Stone Skating"], { pollMs: 130 }),
    ];
    await inSim(
      nodes,
      async (c) => {
        await c.sleep(2000);
        const report = (await c.request<{ type: string; report: { updates: number; acked: Record<string, Record<string, number>> } }>("cacofonix", { type: "cacofonix_stop" }, 5000)).report;
        expect(report.updates).toBeGreaterThan(20);
        await c.sleep(400);
        const b = await board(c);
        const p1 = (await c.inspect<TabletState>("p1"))!;
        expect([b.tallies.length, b.scores.length]).toEqual([TEAMS.length, EVENTS.length]);
        for (const t of b.tallies) expect(p1.tallies[t.team]).toEqual(t);
        for (const s of b.scores) expect(p1.scores[s.event]).toEqual(s);
        const p2 = (await c.inspect<TabletState>("p2"))!;
        expect(p2.tallies.Greece).toEqual(b.tallies.find((t) => t.team === "Greece")!);
        expect(p1.polls).toBeGreaterThan(20);
        // A value seen again on the next poll is not a change: one line per new version at most.
        const versions = b.tallies.reduce((a, t) => a + t.version, 0) + b.scores.reduce((a, s) => a + s.version, 0);
        expect(p1.changes).toBeLessThanOrEqual(versions + TEAMS.length + EVENTS.length);
        expect(p1.changes + p1.skipped).toBe(versions + TEAMS.length + EVENTS.length);
        expect(p1.requestMs.length).toBeGreaterThan(100);
        for (const team of TEAMS) for (const m of MEDALS) expect(b.tallies.find((t) => t.team === team)![m]).toBe(report.acked[team]![m]!);
      },
      { network: { latencyMs: 3, distribution: "exponential" } },
    );
  });

  test("a push tablet that crashes and restarts registers again and catches up", async () => {
    await inSim([obelixSpec(), tabletSpec("t", "push", ["Gaul"], ["Stone Curling"], { refreshMs: 1_000_000 })], async (c) => {
      await c.sleep(100);
      await c.request("obelix", inc("Gaul", "gold"));
      await c.sleep(50);
      expect((await c.inspect<TabletState>("t"))!.tallies.Gaul?.gold).toBe(1);
      await c.crash("t");
      await c.request("obelix", inc("Gaul", "gold"));
      await c.request("obelix", inc("Gaul", "bronze"));
      await c.request("obelix", setScore("Stone Curling", { Gaul: 5, Rome: 4 }));
      await c.restart("t");
      await c.sleep(1500);
      const s = (await c.inspect<TabletState>("t"))!;
      expect(s.registered).toBe(true);
      expect(s.tallies.Gaul).toMatchObject({ gold: 2, bronze: 1, version: 3 });
      expect(s.scores["Stone Curling"]).toMatchObject({ scores: { Gaul: 5, Rome: 4 } });
      // And it is pushed to again.
      await c.request("obelix", inc("Gaul", "silver"));
      await c.sleep(50);
      expect((await c.inspect<TabletState>("t"))!.tallies.Gaul).toMatchObject({ silver: 1, version: 4 });
    });
  });

  test("lost pushes are healed by the next registration", async () => {
    await inSim([obelixSpec(), tabletSpec("t", "push", ["Gaul"], [], { refreshMs: 500 })], async (c) => {
      await c.sleep(100);
      await c.setNetwork({ partitions: [{ from: ["obelix"], to: ["t"], oneWay: true }] });
      await c.request("obelix", inc("Gaul", "gold"));
      await c.sleep(50);
      expect((await c.inspect<TabletState>("t"))!.tallies.Gaul?.gold).toBe(0);
      await c.setNetwork({ partitions: [] });
      await c.sleep(1200);
      expect((await c.inspect<TabletState>("t"))!.tallies.Gaul?.gold).toBe(1);
    });
  });
});

describe("durability and atomicity", () => {
  test("obelix restarting keeps tallies, scores and push registrations", async () => {
    await inSim([obelixSpec(), tabletSpec("t", "push", ["Rome"], ["Stone Skating"], { refreshMs: 1_000_000 })], async (c) => {
      await c.sleep(100);
      await c.request("obelix", inc("Rome", "gold"));
      await c.fetch("obelix", post("/incrementMedalTally/Rome/gold", { auth: `Bearer ${PW}` }));
      await c.request("obelix", setScore("Stone Skating", { Rome: 7, Greece: 6 }));
      const before = await board(c);
      await c.crash("obelix");
      expect(await c.inspect("obelix")).toBeNull();
      await c.restart("obelix");
      const after = await board(c);
      expect(after.tallies).toEqual(before.tallies);
      expect(after.scores).toEqual(before.scores);
      expect((await (await c.fetch("obelix", get("/getMedalTally/Rome"))).json()) as Tally).toMatchObject({ gold: 2, version: 2 });
      // The tablet never registered again (refresh is far off), yet the restarted obelix pushes to it.
      await c.request("obelix", inc("Rome", "silver"));
      await c.sleep(50);
      expect((await c.inspect<TabletState>("t"))!.tallies.Rome).toMatchObject({ gold: 2, silver: 1, version: 3 });
    });
  });

  test("a write repeated with the same id is applied once, even across an obelix restart", async () => {
    await inSim([obelixSpec()], async (c) => {
      const first = (await c.request<{ type: string; tally: Tally }>("obelix", { ...inc("Gaul", "gold"), write_id: "w1" })).tally;
      const again = (await c.request<{ type: string; tally: Tally }>("obelix", { ...inc("Gaul", "gold"), write_id: "w1" })).tally;
      expect(again).toEqual(first);
      await c.request("obelix", { ...setScore("Stone Curling", { Gaul: 2 }), write_id: "s1" });
      await c.request("obelix", setScore("Stone Curling", { Gaul: 3 }));
      // A late copy of the first set must not roll the score back.
      await c.request("obelix", { ...setScore("Stone Curling", { Gaul: 2 }), write_id: "s1" });
      expect((await scoreOf(c, "Stone Curling")).scores).toEqual({ Gaul: 3 });
      expect((await rpcError(c.request("obelix", { ...inc("Gaul", "silver"), write_id: "w1" }))).code).toBe(ErrorCode.PreconditionFailed);
      expect((await rpcError(c.request("obelix", { ...inc("Gaul", "silver"), write_id: 7 }))).code).toBe(ErrorCode.MalformedRequest);
      const h = () => post("/incrementMedalTally/Rome/bronze", { auth: `Bearer ${PW}` });
      const withKey = () => {
        const r = h();
        r.headers.set("idempotency-key", "k1");
        return r;
      };
      expect((await c.fetch("obelix", withKey())).status).toBe(200);
      expect((await c.fetch("obelix", withKey())).status).toBe(200);
      await c.crash("obelix");
      await c.restart("obelix");
      expect((await c.fetch("obelix", withKey())).status).toBe(200);
      await c.request("obelix", { ...inc("Gaul", "gold"), write_id: "w1" });
      expect(await tallyOf(c, "Gaul")).toMatchObject({ gold: 1, silver: 0, version: 1 });
      expect(await tallyOf(c, "Rome")).toMatchObject({ bronze: 1, version: 1 });
    });
  });

  test("1,000 concurrent increments from several writers end with exactly the expected tallies", async () => {
    await inSim(
      [obelixSpec()],
      async (c) => {
        const expected = new Map<string, number>();
        const writes: Promise<unknown>[] = [];
        for (let i = 0; i < 1000; i++) {
          const team = TEAMS[i % TEAMS.length]!;
          const medal = MEDALS[i % MEDALS.length]!;
          expected.set(`${team}/${medal}`, (expected.get(`${team}/${medal}`) ?? 0) + 1);
          // Two kinds of writer, interleaved: node messages and HTTP.
          if (i % 2 === 0) writes.push(c.request("obelix", inc(team, medal), 5000));
          else writes.push(c.fetch("obelix", post(`/incrementMedalTally/${team}/${medal}`, { auth: `Bearer ${PW}` })).then((r) => expect(r.status).toBe(200)));
        }
        await Promise.all(writes);
        const b = await board(c);
        expect(b.tallies.length).toBe(TEAMS.length);
        for (const t of b.tallies) {
          for (const m of MEDALS) expect(t[m]).toBe(expected.get(`${t.team}/${m}`)!);
          expect(t.version).toBe(200);
        }
      },
      { network: { latencyMs: 5, distribution: "uniform", reorder: true } },
    );
  });
});

function control(c: Cluster, ms: number): RunControl {
  let stopped = false;
  const done = c.sleep(ms).then(() => void (stopped = true));
  return { untilStopped: () => done, stopping: () => stopped };
}

async function runScenario(o: Partial<OlympicsOptions & CommonOptions>, network?: NetworkPatch) {
  const opts = { seed: 7, duration: 4, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent", pull: 2, push: 2, mode: "random", rate: 100, pollMs: 200, refreshMs: 1000, port: 0, password: PW, ...o } as OlympicsOptions & CommonOptions;
  const nodes = scenario.topology(opts);
  return inSim(nodes, (c) => scenario.run(c, opts, control(c, opts.duration * 1000)), { seed: opts.seed, network });
}

describe("scenario", () => {
  test("testing mode: every tablet ends on Gaul's golds and Stone Curling, and no unauthorized write lands", async () => {
    const r = await runScenario({ mode: "testing", pull: 2, push: 3 });
    expect(Object.keys(r.checks).length).toBeGreaterThan(3);
    for (const [name, check] of Object.entries(r.checks)) expect({ name, ...check }).toMatchObject({ name, ok: true });
    expect(r.metrics!.unauthorizedWrites as number).toBeGreaterThan(0);
  });

  test("random mode over a lossy, duplicating network still converges", async () => {
    const r = await runScenario({ seed: 11, pull: 3, push: 3 }, { loss: 0.05, dup: 0.05, latencyMs: 5, distribution: "exponential" });
    expect(Object.keys(r.checks).length).toBeGreaterThan(3);
    for (const [name, check] of Object.entries(r.checks)) expect({ name, ...check }).toMatchObject({ name, ok: true });
  });

  test("a run that ends before cacofonix's first update was due passes, and its stop does not wait out the gap", async () => {
    const opts = { seed: 3, duration: 3, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent", pull: 1, push: 1, mode: "random", rate: 60_000, pollMs: 200, refreshMs: 1000, port: 0, password: PW } as OlympicsOptions & CommonOptions;
    for (const seed of [3, 4]) {
      const sim = new Simulation({ seed, nodes: scenario.topology({ ...opts, seed }), roles, logLevel: "silent" });
      const s = await sim.run((c) => runDriver(c, scenario, { ...opts, seed }));
      expect(Object.entries(s.checks).filter(([, ok]) => !ok)).toEqual([]);
      expect(s.details["cacofonix wrote"]).toStartWith("no update was due yet");
      // 3 s of workload, then a few seconds of checks: not the rest of a gap of up to 60 s.
      expect(sim.stats().simSeconds).toBeLessThan(10);
    }
  });

  test("bad options are refused with a clear error", () => {
    const base = { seed: 1, pull: 1, push: 1, mode: "random", rate: 100, pollMs: 100, refreshMs: 1000, port: 0, password: PW } as OlympicsOptions & CommonOptions;
    expect(() => scenario.topology({ ...base, pull: -1 })).toThrow(/--pull/);
    expect(() => scenario.topology({ ...base, mode: "chaos" })).toThrow(/--mode/);
    expect(() => scenario.topology({ ...base, port: 70000 })).toThrow(/--port/);
    const nodes = scenario.topology({ ...base, pull: 2, push: 3 });
    expect(nodes.map((n) => n.id)).toEqual(["obelix", "cacofonix", "tablet-1", "tablet-2", "tablet-3", "tablet-4", "tablet-5"]);
    expect(nodes.filter((n) => n.config?.mode === "push").length).toBe(3);
  });
});

describe("push-pull benchmark", () => {
  test("an update a tablet skipped counts, with the delay until a newer value arrived", () => {
    const updates = [
      { key: "tally/Gaul", version: 1, at: 100 },
      { key: "tally/Gaul", version: 2, at: 150 },
      { key: "tally/Gaul", version: 3, at: 400 },
    ];
    const tablet = (applied: Array<{ key: string; version: number; at: number }>) => ({ applied }) as unknown as TabletState;
    const d = delays(updates, [
      tablet([{ key: "tally/Gaul", version: 2, at: 200 }]),
      tablet([
        { key: "tally/Gaul", version: 1, at: 101 },
        { key: "tally/Gaul", version: 2, at: 152 },
        { key: "tally/Gaul", version: 3, at: 403 },
      ]),
    ]);
    expect(d.ms).toEqual([100, 50, 1, 2, 3]);
    expect(d.superseded).toBe(1);
    expect(d.missing).toBe(1);
    const rows = [
      { mode: "push", tablets: 1, pollMs: null, propagationP50Ms: 1 } as Row,
      { mode: "push", tablets: 500, pollMs: null, propagationP50Ms: 6 } as Row,
      { mode: "pull", tablets: 500, pollMs: 50, propagationP50Ms: 5 } as Row,
    ];
    expect(verdicts(rows).map((x) => x.ok)).toEqual([false, false]);
    // One thread per node: the 500-against-1 ratio is shown, not judged; push against pull still is.
    const threadPerNode = verdicts(rows, false);
    expect(threadPerNode.map((x) => x.ok)).toEqual([null, false]);
    expect(threadPerNode[0]!.detail).toContain("6.0×");
  });

  test("the floor's stage fails with the step that got no answer, instead of waiting for ever", async () => {
    const silent = new URL("./fixtures/silent-worker.ts", import.meta.url).href;
    await expect(rawFanOut(3, 1, 0, silent, 300)).rejects.toThrow(/floor, 3 bare workers: worker 1 starting: no answer within 0.3 s/);
    // The real bare worker answers every step: the same call with it measures.
    const row = await rawFanOut(3, 2, 0, undefined, 10_000);
    expect(row.tablets).toBe(3);
    expect(row.propagationP50Ms).toBeGreaterThan(0);
  });

  test("push against its floor is judged by the median of its rounds, and rounds on both sides of the target say so", () => {
    const round = (push: number, floor: number) => ({ pushP50Ms: push, floorP50Ms: floor });
    const clear = floorVerdict(500, [round(6, 5), round(6.2, 5.2), round(5.9, 5)]);
    expect(clear.ok).toBe(true);
    expect(clear.noisy).toBe(false);
    expect(clear.median).toBeCloseTo(1.19, 2);
    // Two rounds over, one under: the median fails, and the run says it cannot tell which side push is on.
    const split = floorVerdict(500, [round(7, 5), round(6, 5), round(7.2, 5.2)]);
    expect(split.ok).toBe(false);
    expect(split.noisy).toBe(true);
    expect(split.detail).toContain("NOISY");
    expect([split.lo, split.hi]).toEqual([1.2, 1.4]);
  });

  test("packed push at 500 against 1 tablet is judged per round, each round's pair taken together", () => {
    const round = (hi: number, lo: number) => ({ hiP50Ms: hi, loP50Ms: lo });
    // The machine twice as slow in the second round: both stages of it slower, the round's ratio the same.
    const steady = packedVerdict(500, 1, [round(0.3, 0.075), round(0.6, 0.15), round(0.32, 0.08)]);
    expect(steady.ok).toBe(true);
    expect(steady.noisy).toBe(false);
    expect(steady.median).toBeCloseTo(4, 5);
    expect(steady.target).toBe("push p50 at 500 tablets ≤ 5× p50 at 1 (median of 3 interleaved rounds)");
    // Rounds on both sides of 5: judged by the median, and said to be noisy.
    const split = packedVerdict(500, 1, [round(0.6, 0.1), round(0.4, 0.1), round(0.7, 0.1)]);
    expect(split.ok).toBe(false);
    expect(split.noisy).toBe(true);
    expect(split.detail).toContain("NOISY: the rounds fall on both sides of 5");
  });

  test("the packed floor deals its tablets as the supervisor deals nodes, and times every delivery on every thread", async () => {
    // obelix and cacofonix first, then the tablets, round-robin.
    expect(tabletsPerThread(1, 2)).toEqual([1, 0]);
    expect(tabletsPerThread(3, 2)).toEqual([2, 1]);
    expect(tabletsPerThread(500, 2)).toEqual([250, 250]);
    expect(tabletsPerThread(4, 3)).toEqual([1, 1, 2]);
    // It throws unless every tablet on every thread was timed for every update, so a thread that drops its share fails here.
    const two = await packedFloor({ tablets: 5, threads: 2, updates: 4, gapMs: 1, warm: 2, warmGapMs: 1, answerMs: 10_000 });
    expect(two.tablets).toBe(5);
    expect(two.propagationP50Ms).toBeGreaterThan(0);
    expect(two.propagationMaxMs).toBeGreaterThanOrEqual(two.propagationP50Ms);
    // Pinned as packed threads are, one CPU each, where there are enough.
    const allowed = allowedCpus();
    if (typeof allowed !== "string" && allowed.length >= 2) expect(two.pinned).toEqual(allowed.slice(0, 2));
    // The writer posts to every other thread; with more threads than CPUs it says why it did not pin.
    const cpus = typeof allowed === "string" ? 1 : allowed.length;
    const many = await packedFloor({ tablets: 4, threads: cpus + 1, updates: 3, gapMs: 1, warm: 0, warmGapMs: 1, answerMs: 10_000 });
    expect(many.pinned).toBe(typeof allowed === "string" ? allowed : `${cpus + 1} threads, ${cpus} CPUs`);
    await expect(packedFloor({ tablets: 4, threads: 1, updates: 3, gapMs: 1, warm: 0, warmGapMs: 1 })).rejects.toThrow(/threads must be an integer ≥ 2/);
  });

  test("packed push against its floor is read over the rounds that measured the floor", () => {
    expect(packedFloorSplit([{ hiP50Ms: 0.5, loP50Ms: 0.1 }])).toBeNull();
    const split = packedFloorSplit([
      { hiP50Ms: 0.5, loP50Ms: 0.1, floorHiP50Ms: 0.05, floorLoP50Ms: 0.02 },
      { hiP50Ms: 0.6, loP50Ms: 0.1 },
      { hiP50Ms: 0.4, loP50Ms: 0.08, floorHiP50Ms: 0.05, floorLoP50Ms: 0.02 },
      { hiP50Ms: 0.9, loP50Ms: 0.1, floorHiP50Ms: 0.06, floorLoP50Ms: 0.02 },
    ])!;
    expect(split.rounds).toBe(3);
    expect(split.hi.median).toBeCloseTo(10, 5);
    expect(split.hi.lo).toBeCloseTo(8, 5);
    expect(split.hi.hi).toBeCloseTo(15, 5);
    expect(split.lo.median).toBeCloseTo(5, 5);
    expect(split.floorScale.median).toBeCloseTo(2.5, 5);
  });

  test("the push plot draws packed push and its floor beside the thread-per-node lines, the floor at each size's median", async () => {
    const dir = mkdtempSync(join(tmpdir(), "menhir-plot-"));
    try {
      const push = (n: number, p50: number) => ({ mode: "push", tablets: n, pollMs: null, propagationP50Ms: p50, propagationP99Ms: p50 * 2, fanOutP50Ms: p50 / 2 }) as Row;
      const floor = (n: number, p50: number) => ({ tablets: n, threads: 2, propagationP50Ms: p50, propagationP99Ms: p50, propagationMaxMs: p50, cpuUsPerPush: 1, cpuMsByThread: null, wakesPerPush: null, pinned: [0, 1] });
      const [file] = await plots([push(1, 0.1), push(500, 6)], dir, [], { threads: 2, rows: [push(1, 0.15), push(500, 0.6)], floorRows: [floor(500, 0.04), floor(1, 0.03), floor(500, 0.05), floor(500, 0.9)] });
      const svg = readFileSync(file!, "utf8");
      for (const series of ["thread per node: propagation p50", "packed into 2 threads: propagation p50", "packed floor: 2 bare threads, p50"]) expect(svg).toContain(series);
      expect(svg).not.toContain("…");
      // One point per size for the floor: 3 rounds at 500 drawn as their median, not 3 points.
      const floorPoints = [...new Set(svg.match(/aria-label="[^"]*series: packed floor[^"]*"/g) ?? [])];
      expect(floorPoints.length).toBe(2);
      expect(floorPoints.some((a) => a.includes("ms: 0.05"))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  /** A floor's bare worker, linked as rawFanOut links it: `push` posts on its port, `ask` sends a control word and waits for the answer. */
  async function floorWorker(kind: FloorWorker) {
    const w = new Worker(floorWorkerUrl(kind));
    const ask = (what: unknown, transfer: MessagePort[] = []) => {
      const got = new Promise<unknown>((resolve) => (w.onmessage = (e) => resolve(e.data)));
      w.postMessage(what, transfer);
      return got;
    };
    const ch = new MessageChannel();
    expect(await ask({ port: ch.port2 }, [ch.port2])).toBe("ready");
    const push = (body: unknown) => ch.port1.postMessage(typeof body === "string" ? body : JSON.stringify(body));
    return { ask, push, stop: () => w.terminate() };
  }
  const tally = (version: number, extra: Record<string, unknown> = {}) => ({ team: "Gaul", gold: version, silver: 0, bronze: 0, version, updatedAt: performance.timeOrigin + performance.now(), ...extra });

  test("the role's floor does a tablet's checks on each push: what is refused, stale or not newer is not timed", async () => {
    const f = await floorWorker("role");
    try {
      f.push({ type: "tally_update", tally: tally(2) });
      f.push("{not json");
      f.push({ type: "tally_update", tally: tally(3, { gold: -1 }) });
      f.push({ type: "tally_update", tally: tally(3, { team: "Rome" }) });
      f.push({ type: "tally_update", msg_id: "7", tally: tally(3) });
      f.push({ type: "tally_update", tally: tally(1) });
      f.push({ type: "tally_update", tally: tally(2) });
      f.push({ type: "tally_update", tally: tally(3) });
      await Bun.sleep(50);
      expect(await f.ask("counts")).toEqual({ received: 6, refused: 4, pushes: 4, changes: 2, stale: 1 });
      const samples = (await f.ask("collect")) as number[];
      expect(samples).toHaveLength(2);
      for (const ms of samples) expect(ms).toBeGreaterThanOrEqual(0);
    } finally {
      f.stop();
    }
  });

  test("the node floor is a real tablet node: registered as in the system, it applies obelix's pushes, refuses what is malformed, and hands over its own samples", async () => {
    const row = await rawFanOut(2, 3, 1, floorWorkerUrl("node"), 10_000);
    expect(row.propagationP50Ms).toBeGreaterThanOrEqual(0);
    const f = await floorWorker("node");
    try {
      for (const v of [1, 2, 3]) f.push({ type: "tally_update", tally: tally(v) });
      f.push("{not json");
      f.push({ type: "tally_update", tally: tally(4, { team: "Rome" }) });
      await Bun.sleep(50);
      // The first value has nothing older to be compared with (TabletState.propagationMs): two samples.
      const samples = (await f.ask("collect")) as number[];
      expect(samples).toHaveLength(2);
      for (const ms of samples) expect(ms).toBeGreaterThanOrEqual(0);
      // Registered, as in the system: its start ran to the end and its deliver has seen a reply.
      // Rome's tally is a push it did not ask for; the text that is not JSON never reached the role.
      expect(await f.ask("counts")).toEqual({ registered: true, pushes: 4, unexpectedPushes: 1, changes: 3, stale: 0 });
    } finally {
      f.stop();
    }
  });

  test("push's ratio to its floor splits at the role's floor, over the rounds that measured it", () => {
    expect(roleSplit([{ pushP50Ms: 6, floorP50Ms: 5 }])).toBeNull();
    const split = roleSplit([
      { pushP50Ms: 6.6, floorP50Ms: 5, roleFloorP50Ms: 5.5 },
      { pushP50Ms: 7, floorP50Ms: 5 },
      { pushP50Ms: 6, floorP50Ms: 4, roleFloorP50Ms: 5 },
      { pushP50Ms: 5.5, floorP50Ms: 5, roleFloorP50Ms: 5 },
    ])!;
    expect(split.rounds).toBe(3);
    expect(split.role.median).toBeCloseTo(1.1, 5);
    expect([split.role.lo, split.role.hi]).toEqual([1, 1.25]);
    expect(split.runtime.median).toBeCloseTo(1.2, 5);
    expect(split.runtime.lo).toBeCloseTo(1.1, 5);
  });
});
