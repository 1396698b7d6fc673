import { describe, expect, test } from "bun:test";
import type { Cluster } from "../src/driver/cluster.ts";
import { MEDALS, TEAMS, type Tally } from "../src/workers/olympics/domain.ts";
import type { TabletConfig, TabletState } from "../src/workers/olympics/messages.ts";
import type { ObelixSnapshot } from "../src/workers/olympics/scenario.ts";
import type { NodeSpec } from "../src/workers/runtime/types.ts";
import { tempDirs, withThreads } from "./helpers.ts";

const PW = "threads-password";
const tmp = tempDirs("olympics");

function tablet(id: string, mode: "push" | "pull"): NodeSpec {
  return { id, role: "tablet", config: { obelix: "obelix", mode, teams: ["Gaul"], events: ["Stone Curling"], pollMs: 50, refreshMs: 60_000 } satisfies TabletConfig };
}

function withCluster<T>(nodes: NodeSpec[], fn: (c: Cluster) => Promise<T>): Promise<T> {
  return withThreads({ system: "olympics", nodes, seed: 1, dataDir: tmp(), logLevel: "silent" }, fn);
}

/** Poll until `ok` holds (threads run on real time); gives up after `ms`. */
async function until(c: Cluster, ok: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = c.now() + ms;
  while (c.now() < end) {
    if (await ok()) return true;
    await c.sleep(20);
  }
  return ok();
}

describe("olympics on worker threads", () => {
  test("1,000 concurrent increments over node messages and real HTTP end with exactly the expected tallies", async () => {
    await withCluster([{ id: "obelix", role: "obelix", config: { password: PW, port: 0 } }], async (c) => {
      const expected = new Map<string, number>();
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 1000; i++) {
        const team = TEAMS[i % TEAMS.length]!;
        const medal = MEDALS[Math.floor(i / TEAMS.length) % MEDALS.length]!;
        expected.set(`${team}/${medal}`, (expected.get(`${team}/${medal}`) ?? 0) + 1);
        if (i % 2 === 0) writes.push(c.request("obelix", { type: "increment_medal_tally", team, medal, password: PW }, 10_000));
        else
          writes.push(
            c.fetch("obelix", new Request(`http://x/incrementMedalTally/${team}/${medal}`, { method: "POST", headers: { authorization: `Bearer ${PW}` } })).then((r) => expect(r.status).toBe(200)),
          );
      }
      await Promise.all(writes);
      const b = (await c.inspect<ObelixSnapshot>("obelix"))!;
      expect(b.tallies.map((t) => t.team).sort()).toEqual([...TEAMS].sort());
      for (const t of b.tallies) for (const m of MEDALS) expect(t[m]).toBe(expected.get(`${t.team}/${m}`) ?? 0);
      const unauthorized = await c.fetch("obelix", new Request("http://x/incrementMedalTally/Gaul/gold", { method: "POST", headers: { authorization: "Bearer nope" } }));
      expect(unauthorized.status).toBe(403);
      expect(((await (await c.fetch("obelix", new Request("http://x/getMedalTally/Gaul"))).json()) as Tally).gold).toBe(expected.get("Gaul/gold")!);
    });
  }, 30_000);

  test("obelix restarting keeps its tallies and scores on disk", async () => {
    await withCluster([{ id: "obelix", role: "obelix", config: { password: PW, port: 0 } }], async (c) => {
      await c.request("obelix", { type: "increment_medal_tally", team: "Gaul", medal: "gold", password: PW }, 5000);
      await c.request("obelix", { type: "set_score", event: "Stone Curling", scores: { Gaul: 2, Rome: 1 }, password: PW }, 5000);
      await c.crash("obelix");
      await c.restart("obelix");
      const tally = (await (await c.fetch("obelix", new Request("http://x/getMedalTally/Gaul"))).json()) as Tally;
      expect(tally).toMatchObject({ gold: 1, version: 1 });
      expect((await c.inspect<ObelixSnapshot>("obelix"))!.scores.find((s) => s.event === "Stone Curling")!.scores).toEqual({ Gaul: 2, Rome: 1 });
    });
  }, 30_000);

  test("a push tablet that restarts registers again and catches up; a pull tablet converges, obelix restarting too", async () => {
    await withCluster([{ id: "obelix", role: "obelix", config: { password: PW, port: 0 } }, tablet("push-1", "push"), tablet("pull-1", "pull")], async (c) => {
      const inc = () => c.request("obelix", { type: "increment_medal_tally", team: "Gaul", medal: "gold", password: PW }, 5000);
      await inc();
      await c.crash("push-1");
      await inc();
      await c.request("obelix", { type: "set_score", event: "Stone Curling", scores: { Gaul: 2, Rome: 1 }, password: PW }, 5000);
      await c.restart("push-1");
      await c.restart("obelix");
      const held = async (id: string) => {
        const s = await c.inspect<TabletState>(id);
        return { gold: s?.tallies.Gaul?.gold, curling: s?.scores["Stone Curling"]?.scores.Gaul };
      };
      const caughtUp = async (id: string) => JSON.stringify(await held(id)) === JSON.stringify({ gold: 2, curling: 2 });
      await until(c, () => caughtUp("push-1"));
      expect(await held("push-1")).toEqual({ gold: 2, curling: 2 });
      await until(c, () => caughtUp("pull-1"));
      expect(await held("pull-1")).toEqual({ gold: 2, curling: 2 });
      // The restarted tablet is pushed to again.
      await inc();
      await until(c, async () => (await held("push-1")).gold === 3);
      expect((await held("push-1")).gold).toBe(3);
      expect((await c.inspect<TabletState>("push-1"))!.unexpectedPushes).toBe(0);
    });
  }, 30_000);
});
