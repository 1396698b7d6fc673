/**
 * Bookstore clients under the nemesis: a client may be killed, paused or cut off like any node, and
 * what it observed still counts. In the simulator (cheap), each property shown to fail when it should.
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { Cluster } from "../src/driver/cluster.ts";
import { runScenario, type Summary } from "../src/driver/run.ts";
import type { NemesisKind, Scenario } from "../src/driver/scenario.ts";
import { UsageError, parseOptions } from "../src/main/options.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { CRASHED_BEFORE_ANSWER, NO_ANSWER_YET, type ClientState, type HistoryOp } from "../src/workers/bookstore/client.ts";
import { BOOKS } from "../src/workers/bookstore/messages.ts";
import { roles } from "../src/workers/bookstore/roles.ts";
import { bookstoreTopology, checkRun, historyProblem, readHistory, scenario, type BookstoreOptions, type CatalogView } from "../src/workers/bookstore/scenario.ts";
import { defineRole } from "../src/workers/runtime/types.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const runOpts = { duration: 12, latency: 2, loss: 0, dup: 0, nemesisInterval: 1, logLevel: "silent" };

async function run(seed: number, nemesis: NemesisKind[], extra: Partial<BookstoreOptions> = {}, wrap: (s: Scenario<any>) => Scenario<any> = (s) => s): Promise<Summary> {
  const opts = { clients: 3, ...runOpts, ...extra, seed, nemesis, port: 0 } as never;
  const s = new Simulation({ seed, nodes: scenario.topology(opts), roles, logLevel: "silent", network: { latencyMs: 2, distribution: "exponential" } });
  return s.run((c) => runScenario(c, wrap(scenario), opts));
}

const failed = (s: Summary) => Object.entries(s.checks).filter(([, ok]) => !ok).map(([n]) => `${n}: ${s.details[n]}`);
const clientKills = (s: Summary) => s.nemesis.filter((e) => e.action === "inject" && e.kind === "kill" && /^client-/.test(e.detail)).map((e) => e.detail);

describe("bookstore clients under the nemesis", () => {
  test("the nemesis kills clients (and anyone else): every check holds, every client progresses (regression: a killed client garbled the history)", async () => {
    // Seeds whose nemesis kills a client; before client histories were stored, both failed with a TypeError in the checks.
    for (const seed of [1, 6]) {
      const s = await run(seed, ["kill", "partition", "pause"]);
      expect({ seed, kills: clientKills(s).length > 0 }).toEqual({ seed, kills: true });
      expect({ seed, failed: failed(s) }).toEqual({ seed, failed: [] });
      expect(s.checks["every client made progress after the faults healed"]).toBe(true);
      expect(s.checks["every node is up at the end"]).toBe(true);
    }
  }, 60_000);

  test("a client crashed every 300 ms, mostly writing: its open writes count as indefinite and every check holds", async () => {
    const crashing = (sc: Scenario<any>): Scenario<any> => ({
      ...sc,
      async run(c: Cluster, o, control) {
        const loop = (async () => {
          while (!control.stopping()) {
            await c.sleep(300);
            if (control.stopping()) break;
            await c.crash("client-1");
            await c.restart("client-1");
          }
        })();
        const r = await sc.run(c, o, control);
        await loop;
        return r;
      },
    });
    const s = await run(3, [], { writeP: 0.9, clients: 2 }, crashing);
    expect(failed(s)).toEqual([]);
    expect(s.metrics.writesOpenAtAClientCrash as number).toBeGreaterThan(0);
  }, 60_000);
});

describe("load balance with sold-out books", () => {
  test("a buy the order server refuses (sold out) counts as served: the balance check holds (regression: failed after a long run sold out items 1-3)", async () => {
    const soldOut: Scenario<any> = {
      ...scenario,
      async run(c, o, control) {
        await c.sleep(300);
        for (const b of BOOKS.slice(0, 3)) {
          const r = await c.fetch("frontend", new Request(`http://bookstore.test/update_quantity/${b.item}`, { method: "POST", body: JSON.stringify({ delta: -b.quantity }) }));
          expect(r.status).toBe(200);
        }
        return scenario.run(c, o, control);
      },
    };
    const s = await run(7, [], { clients: 0, duration: 1 } as never, () => soldOut);
    expect(s.details["with both order servers up, each served at least a third of the buys"]).toBe("buys: order-1 6, order-2 6 of 12");
    expect(s.checks["with both order servers up, each served at least a third of the buys"]).toBe(true);
    expect(s.checks["every acknowledged buy has exactly one order and one decrement"]).toBe(true);
  });
});

describe("a client's history outlives its crash", () => {
  test("a write in flight at the crash is recorded as info; the next boot is a new process and keeps every earlier record", async () => {
    const sim = new Simulation({ seed: 4, nodes: bookstoreTopology({ clients: 1, port: 0, writeP: 1 }), roles, logLevel: "silent", network: { latencyMs: 1 } });
    await sim.run(async (c) => {
      await c.sleep(1000);
      // (A write in flight shows as info "no answer yet" until it is answered.)
      const before = ((await readHistory(c, "client-1")).ops as HistoryOp[]).filter((op) => op.value.error !== NO_ANSWER_YET);
      const counted = (await c.inspect<ClientState>("client-1"))!.completed;
      expect(before.length).toBeGreaterThan(5);
      expect(counted).toBeGreaterThan(5);
      // The front end stops answering: the client's next write hangs, and the client dies waiting.
      await c.pause("frontend");
      await c.sleep(200);
      await c.crash("client-1");
      await c.resume("frontend");
      await c.restart("client-1");
      await c.sleep(1000);
      await c.request("client-1", { type: "finish" }, 10_000);
      const after = (await readHistory(c, "client-1")).ops as HistoryOp[];
      expect(after.slice(0, before.length)).toEqual(before);
      const open = after.filter((op) => op.value.error === CRASHED_BEFORE_ANSWER);
      expect(open.length).toBe(1);
      expect(open[0]).toMatchObject({ type: "info", process: "client-1#1" });
      expect(["buy", "update_cost", "update_quantity"]).toContain(open[0]!.f);
      const later = after.slice(after.indexOf(open[0]!) + 1);
      expect(later.length).toBeGreaterThan(5);
      expect(later.every((op) => op.process.startsWith("client-1#2"))).toBe(true);
      expect((await c.inspect<ClientState>("client-1"))!.completed).toBeGreaterThanOrEqual(counted + later.filter((op) => op.type === "ok").length);
      // Every process is sequential: no two operations of one process overlap.
      const last = new Map<string, number>();
      for (const op of after) {
        expect(op.invokeMs).toBeGreaterThanOrEqual(last.get(op.process) ?? 0);
        last.set(op.process, op.completeMs);
      }
      expect(after.filter((op) => historyProblem(op) !== null)).toEqual([]);
    });
  });

  test("the front end never hands a restarted sender its previous life's answer (new message ids per incarnation; sessions besides)", async () => {
    const prober = defineRole<{ frontend: string; sessions: boolean }>((node) => {
      node.on("probe", async (msg) => {
        const session = node.config.sessions ? `${node.id}#${node.incarnation}` : undefined;
        const r = await node.request<{ status: number; body: { data: { item: number } } }>(node.config.frontend, { type: "http", session, method: "GET", path: msg.body.path });
        node.reply(msg, { type: "probe_ok", item: r.body.data.item });
      });
    });
    for (const sessions of [true, false]) {
      const nodes = [...bookstoreTopology({ clients: 0, port: 0 }), { id: "prober", role: "prober", config: { frontend: "frontend", sessions } }];
      await new Simulation({ seed: 5, nodes, roles: { ...roles, prober }, logLevel: "silent", network: { latencyMs: 1 } }).run(async (c) => {
        await c.sleep(300);
        expect((await c.request<{ item: number }>("prober", { type: "probe", path: "/lookup/1" })).item).toBe(1);
        await c.crash("prober");
        await c.restart("prober");
        // The front end remembers answers by (sender, session, message id). The runtime numbers a new
        // incarnation's messages apart from the old one's, so even without a session the restarted
        // prober's first request is not taken for its first life's (it used to be: ids restarted).
        const second = (await c.request<{ item: number }>("prober", { type: "probe", path: "/lookup/2" })).item;
        expect({ sessions, second }).toEqual({ sessions, second: 2 });
        for (const session of [42, "x".repeat(200)]) {
          const r = await c.request<{ status: number; body: { error: { message: string } } }>("frontend", { type: "http", session, method: "POST", path: "/buy/1" });
          expect([r.status, r.body.error.message]).toEqual([400, "malformed session"]);
        }
      });
    }
  });
});

describe("no check throws on partial data", () => {
  const cat = (): CatalogView => ({ mode: "primary", epoch: 1, view: null, last: 0, digest: "d", books: BOOKS.map((b) => ({ ...b })), served: { reads: 0, writes: 0, pulls: 0 } });
  const good: HistoryOp = { process: "client-1#1", type: "ok", f: "lookup", value: { item: 1, quantity: 100, version: 0 }, invokeMs: 0, completeMs: 1 };

  test("garbled records are reported as such and left out; the other checks still judge the rest", () => {
    const garbage: unknown[] = [
      null,
      42,
      {},
      { ...good, type: "maybe" },
      { ...good, f: "steal" },
      { ...good, value: null },
      { ...good, completeMs: -1 },
      { ...good, f: "list", value: {} },
      { ...good, f: "list", value: { books: [null] } },
      { ...good, f: "search", value: { topic: "x" } },
      { ...good, f: "buy", value: { item: 1 } },
      { ...good, f: "update_quantity", type: "info", value: { item: 1 } },
      { ...good, value: { item: 1 } },
    ];
    const checks = checkRun({ history: [good, ...garbage], catalogs: [{ id: "catalog-1", view: cat() }], log: [null, { seq: 1 }], orders: [undefined, { number: "x" }], pendingBuys: 0 });
    expect(checks["every history record is well-formed"]!.ok).toBe(false);
    expect(checks["every history record is well-formed"]!.detail).toStartWith(`${garbage.length} malformed`);
    expect(checks["every acknowledged buy has exactly one order and one decrement"]!.detail).toContain("2 malformed orders");
    expect(checks["every acknowledged buy has exactly one order and one decrement"]!.detail).toContain("2 malformed log entries");
    expect(checks["no read older than an acknowledged write that finished before it began"]).toEqual({ ok: true, detail: "1 book reads checked" });
    expect(checks["final quantities account for every acknowledged write"]!.ok).toBe(true);
  });

  test("a long history (200 000 writes on one book, and reads) is judged without throwing, stale reads still caught", () => {
    const n = 200_000;
    const history: HistoryOp[] = [];
    for (let i = 1; i <= n; i++) history.push({ process: "client-1#1", type: "ok", f: "update_cost", value: { item: 1, cost: 1 + (i % 50), version: i }, invokeMs: 2 * i, completeMs: 2 * i + 1 });
    history.push({ ...good, value: { item: 1, quantity: 100, version: n }, invokeMs: 2 * n + 2, completeMs: 2 * n + 3 });
    history.push({ ...good, value: { item: 1, quantity: 100, version: n - 1 }, invokeMs: 2 * n + 2, completeMs: 2 * n + 3 });
    const checks = checkRun({ history, catalogs: [{ id: "catalog-1", view: cat() }], log: [], orders: [], pendingBuys: 0 });
    expect(checks["no read older than an acknowledged write that finished before it began"]).toEqual({ ok: false, detail: `1 stale: client-1#1 lookup item 1 at ${2 * n + 2}: version ${n - 1} < ${n}` });
    expect(checks["every history record is well-formed"]!.ok).toBe(true);
  });

  test("no catalog seen, or one without its books: a failed check that says so", () => {
    const none = checkRun({ history: [good], catalogs: [], log: [], orders: [], pendingBuys: 0 });
    expect(none["the catalog replicas are identical at the end"]).toEqual({ ok: false, detail: "no catalog seen" });
    expect(none["final quantities account for every acknowledged write"]).toEqual({ ok: false, detail: "no catalog showed its books" });
    const broken = checkRun({ history: [good], catalogs: [{ id: "catalog-1", view: { ...cat(), books: undefined as never } }, { id: "catalog-2", view: null }], log: [], orders: [], pendingBuys: 0 });
    expect(broken["the catalog replicas are identical at the end"]!.ok).toBe(false);
    expect(broken["final quantities account for every acknowledged write"]!.ok).toBe(false);
  });
});

describe("bookstore options", () => {
  test("every numeric option states its range, and the CLI refuses a value outside it", () => {
    for (const o of scenario.options) if (typeof o.default === "number") expect({ flags: o.flags, max: o.max }).toEqual({ flags: o.flags, max: expect.any(Number) });
    const parse = (flags: Record<string, unknown>) => parseOptions("bookstore", scenario, { sim: true, ...flags }, {});
    expect(() => parse({ catalogs: 2, clients: 4, writeP: 0.5 })).not.toThrow();
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ catalogs: 3 }, /--catalogs must be an integer >= 1 and <= 2/],
      [{ catalogs: 0 }, /--catalogs must be an integer >= 1/],
      [{ orders: 17 }, /--orders must be an integer >= 1 and <= 16/],
      [{ clients: 2.5 }, /--clients must be an integer/],
      [{ clients: "1e9" }, /--clients must be an integer >= 0 and <= 1000/],
      [{ port: 70000 }, /--port must be an integer/],
      [{ heartbeatMs: 5 }, /--heartbeat-ms must be an integer >= 10/],
      [{ cacheSize: -1 }, /--cache-size must be an integer >= 0/],
      [{ intervalMs: -1 }, /--interval-ms must be a number >= 0/],
      [{ writeP: 1.5 }, /--write-p must be a number >= 0 and <= 1/],
    ];
    for (const [flags, pattern] of bad) {
      expect(() => parse(flags)).toThrow(UsageError);
      expect(() => parse(flags)).toThrow(pattern);
    }
  });
});
