/**
 * The nemesis may hit any node, and every run's summary checks what the scenario's own checks may
 * miss: every node is up at the end, and every client made progress once the faults healed. All in
 * the simulator (cheap): each check is shown to pass on a healthy run and to fail when it should.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { Cluster } from "../src/driver/cluster.ts";
import { describeNemesisExcludes, nemesisTargets, runScenario, type Summary } from "../src/driver/run.ts";
import type { CommonOptions, NemesisKind, Scenario } from "../src/driver/scenario.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { scenario as bookstore } from "../src/workers/bookstore/scenario.ts";
import { roles as bookstoreRoles } from "../src/workers/bookstore/roles.ts";
import { scenario as echo } from "../src/workers/echo/scenario.ts";
import { roles as echoRoles } from "../src/workers/echo/roles.ts";
import { scenario as olympics } from "../src/workers/olympics/scenario.ts";
import { roles as olympicsRoles } from "../src/workers/olympics/roles.ts";
import { scenario as paxos } from "../src/workers/paxos/scenario.ts";
import { roles as paxosRoles } from "../src/workers/paxos/roles.ts";
import type { NetworkPatch } from "../src/driver/cluster.ts";
import { defineRole, type Role } from "../src/workers/runtime/types.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const SYSTEMS = {
  bookstore: { scenario: bookstore, roles: bookstoreRoles, opts: { clients: 3, port: 0 } },
  echo: { scenario: echo, roles: echoRoles, opts: { clients: 3, intervalMs: 10 } },
  olympics: { scenario: olympics, roles: olympicsRoles, opts: { pull: 2, push: 2, mode: "random", rate: 200, pollMs: 200, refreshMs: 1000, port: 0, password: "test-password" } },
  paxos: { scenario: paxos, roles: paxosRoles, opts: { f: 1, clients: 3, intervalMs: 5, clientTimeoutMs: 100 } },
} as const;

async function sim(
  scenario: Scenario<any>,
  roles: Record<string, Role>,
  o: Record<string, unknown>,
  common: Partial<CommonOptions> & { seed: number },
  network: NetworkPatch = { latencyMs: 2, distribution: "exponential" },
): Promise<Summary & { simSeconds: number }> {
  const opts = { duration: 10, latency: 0, loss: 0, dup: 0, nemesis: [] as NemesisKind[], nemesisInterval: 1, logLevel: "silent", ...o, ...common };
  const s = new Simulation({ seed: opts.seed, nodes: scenario.topology(opts), roles, network, logLevel: "silent" });
  const summary = await s.run((c) => runScenario(c, scenario, opts));
  return { ...summary, simSeconds: s.stats().simSeconds };
}

const failed = (s: Summary) => Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`);
/** Nodes the nemesis crashed or paused that serve nobody: clients, tablets, cacofonix. */
const hitClients = (s: Summary) => s.nemesis.filter((e) => e.action === "inject" && (e.kind === "kill" || e.kind === "pause") && /client|tablet|cacofonix/.test(e.detail)).map((e) => `${e.kind} ${e.detail}`);

describe("the nemesis may hit any node", () => {
  test("by default every node is a target; an exclusion needs a reason", () => {
    const nodes = echo.topology({ clients: 2, intervalMs: 10 } as never);
    expect(nemesisTargets(echo, nodes)).toEqual(["server", "client-1", "client-2"]);
    const excluding = { ...echo, nemesisExcludes: { client: "a reason" } };
    expect(nemesisTargets(excluding, nodes)).toEqual(["server"]);
    expect(() => nemesisTargets({ ...echo, nemesisExcludes: { server: " " } }, nodes)).toThrow(/no reason/);
    // --help shows each exclusion with its reason, and nothing when there is none.
    expect(describeNemesisExcludes(excluding)).toBe("client (a reason)");
    expect(describeNemesisExcludes(echo)).toBe("");
    for (const { scenario } of Object.values(SYSTEMS)) expect(scenario.nemesisExcludes).toBeUndefined();
  });

  for (const [name, { scenario, roles, opts }] of Object.entries(SYSTEMS)) {
    test(`${name}: kills and pauses of clients and writers, partitions of anyone, and every check passes`, async () => {
      const s = await sim(scenario, roles, opts, { seed: 5, duration: name === "paxos" ? 8 : 16, nemesis: ["kill", "partition", "pause"], nemesisInterval: 0.5 });
      expect(hitClients(s).length).toBeGreaterThan(0);
      expect(failed(s)).toEqual([]);
      // Judged by what its clients observed, where the system has a model.
      if (scenario.historyModel) expect(s.checks.linearizable).toBe(true);
      expect(s.checks["every node is up at the end"]).toBe(true);
      expect(s.checks["every client made progress after the faults healed"]).toBe(true);
    });
  }
});

describe("a crashed client or writer resumes without breaking a check", () => {
  /** Crash `id` every `everyMs` and restart it at once, for the whole run: what the nemesis does, made dense. */
  function crashing(scenario: Scenario<any>, id: string, everyMs: number): Scenario<any> {
    return {
      ...scenario,
      async run(c: Cluster, o, control) {
        const loop = (async () => {
          while (!control.stopping()) {
            await c.sleep(everyMs);
            if (control.stopping()) break;
            await c.crash(id);
            await c.restart(id);
          }
        })();
        const r = await scenario.run(c, o, control);
        await loop;
        return r;
      },
    };
  }

  test("paxos: a restarted client is a new session, and its acknowledged messages are all in the log", async () => {
    for (const seed of [1, 2, 3]) {
      const s = await sim(crashing(paxos, "client-1", 150), paxosRoles, SYSTEMS.paxos.opts, { seed, duration: 3 });
      expect({ seed, failed: failed(s) }).toEqual({ seed, failed: [] });
    }
  });

  test("olympics: cacofonix restarted with writes in flight keeps every tally within its acknowledged and attempted writes", async () => {
    // Reordering latency lets a write sent before the crash land after the restart's first reads
    // (seed 5: with the standings read afresh, Rome's silvers went one past what was attempted).
    const net: NetworkPatch = { latencyMs: 10, distribution: "exponential", reorder: true };
    for (const seed of [1, 5]) {
      const s = await sim(crashing(olympics, "cacofonix", 1500), olympicsRoles, { ...SYSTEMS.olympics.opts, rate: 20 }, { seed, duration: 8 }, net);
      expect({ seed, failed: failed(s) }).toEqual({ seed, failed: [] });
    }
  });
});

describe("a client's observations outlive its crash", () => {
  test("echo: a mismatched reply client-1 saw still fails the run after client-1 crashed and restarted", async () => {
    let lied = false;
    const liar = defineRole((node) => {
      node.on("echo", (msg) => {
        const wrong = !lied && msg.src === "client-1";
        lied ||= wrong;
        node.reply(msg, { type: "echo_ok", echo: wrong ? "not yours" : msg.body.echo });
      });
    });
    const operator: Scenario<any> = {
      ...echo,
      async run(c, o, control) {
        await c.sleep(1000);
        await c.crash("client-1");
        await c.restart("client-1");
        return echo.run(c, o, control);
      },
    };
    const s = await sim(operator, { ...echoRoles, server: liar }, SYSTEMS.echo.opts, { seed: 1, duration: 3 });
    expect(lied).toBe(true);
    expect(s.checks["replies match requests"]).toBe(false);
    expect(s.details["replies match requests"]).toStartWith("1 mismatched");
  });
});

describe("every summary checks that nodes are up and clients progress", () => {
  test("a node an operator crashed and never restarted fails the run, after the nemesis healed its own faults", async () => {
    const operator: Scenario<any> = {
      ...echo,
      async run(c, o, control) {
        await c.sleep(2000);
        await c.crash("client-2");
        return echo.run(c, o, control);
      },
    };
    const s = await sim(operator, echoRoles, SYSTEMS.echo.opts, { seed: 3, duration: 6, nemesis: ["kill", "pause"], nemesisInterval: 1 });
    expect(s.nemesis.length).toBeGreaterThan(0);
    expect(s.ok).toBe(false);
    expect(s.checks["every node is up at the end"]).toBe(false);
    expect(s.details["every node is up at the end"]).toContain("client-2 (crashed)");
    // The control: the same run without the operator's crash passes.
    const healthy = await sim(echo, echoRoles, SYSTEMS.echo.opts, { seed: 3, duration: 6, nemesis: ["kill", "pause"], nemesisInterval: 1 });
    expect(failed(healthy)).toEqual([]);
  });

  test("an operator's loss, latency and link changes are undone before the final window; the run's own network settings stay", async () => {
    let during: unknown;
    let after: unknown;
    const operator: Scenario<any> = {
      ...echo,
      async run(c, o, control) {
        await c.sleep(1000);
        // Every message lost: without the heal no client could complete anything in the final window.
        await c.setNetwork({ loss: 1, latencyMs: 50, links: { "client-1->server": { dup: 0.5 } } });
        during = structuredClone(c.network());
        const r = await echo.run(c, o, control);
        after = structuredClone(c.network());
        return r;
      },
    };
    const s = await sim(operator, echoRoles, SYSTEMS.echo.opts, { seed: 5, duration: 4 }, { latencyMs: 2, distribution: "exponential", loss: 0.01 });
    expect(during).toMatchObject({ defaults: { loss: 1, latencyMs: 50 }, links: { "client-1->server": { dup: 0.5 } } });
    expect(after).toEqual({ defaults: { latencyMs: 2, distribution: "exponential", loss: 0.01, dup: 0, reorder: false }, links: {}, partitions: [] });
    expect(s.checks["every client made progress after the faults healed"]).toBe(true);
  });

  /** An echo client that stops sending after `stallAfterMs` of its own run (a wedged loop). */
  const stalling = (stallAfterMs: number) =>
    defineRole<{ server: string; intervalMs: number }>((node) => {
      const t0 = node.now();
      let completed = 0;
      void (async () => {
        while (node.now() - t0 < stallAfterMs) {
          await node.request(node.config.server, { type: "echo", echo: "x" }, { timeoutMs: 500 }).then(
            () => completed++,
            () => {},
          );
          await node.sleep(node.config.intervalMs);
        }
      })();
      return { inspect: () => ({ sent: completed, ok: completed, mismatched: 0, failed: 0, slow: 0, latenciesMs: [], completed }) };
    });

  test("a client that stops making progress fails the run, though every other check passes", async () => {
    const s = await sim(echo, { ...echoRoles, client: stalling(3000) }, SYSTEMS.echo.opts, { seed: 4, duration: 6 });
    expect(s.checks["every client made progress after the faults healed"]).toBe(false);
    expect(s.details["every client made progress after the faults healed"]).toMatch(/no progress: client-1 .*client-2 .*client-3/);
    expect(failed(s).length).toBe(1);
    const control = await sim(echo, { ...echoRoles, client: stalling(60_000) }, SYSTEMS.echo.opts, { seed: 4, duration: 6 });
    expect(failed(control)).toEqual([]);
  });

  test("a client slower than the final window is reported as not checked, not failed", async () => {
    const s = await sim(olympics, olympicsRoles, { ...SYSTEMS.olympics.opts, rate: 60_000 }, { seed: 2, duration: 3 });
    expect(s.details["every client made progress after the faults healed"]).toContain("not checked");
    expect(s.details["every client made progress after the faults healed"]).toContain("cacofonix");
  });
});
