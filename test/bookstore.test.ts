import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { runScenario, type HistoryOutcome } from "../src/driver/run.ts";
import { renderHistoryReport } from "../src/history/report.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { BOOKS } from "../src/workers/bookstore/messages.ts";
import { roles } from "../src/workers/bookstore/roles.ts";
import type { HistoryOp } from "../src/workers/bookstore/client.ts";
import { awaitQuiet, balanceCheck, bookstoreTopology, catalogIds, checkRun, orderIds, readCatalogLog, readOrders, scenario, type BookstoreOptions, type CatalogView } from "../src/workers/bookstore/scenario.ts";
import { ErrorCode, RpcError } from "../src/workers/runtime/types.ts";
import { simHttp } from "./helpers.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const C = catalogIds(2);
const O = orderIds(2);

function sim(seed: number, opts: Partial<BookstoreOptions> = {}): Simulation {
  return new Simulation({ seed, nodes: bookstoreTopology({ clients: 0, port: 0, ...opts }), roles, logLevel: "silent", network: { latencyMs: 1 } });
}

const call = (c: Simulation, method: string, path: string, body?: unknown) => simHttp(c, "frontend", method, path, body);

const qty = async (c: Simulation, item: number) => (await call(c, "GET", `/get_quantity/${item}`)).body.data.quantity as number;
const inspect = (c: Simulation, id: string) => c.inspect<CatalogView>(id) as Promise<CatalogView>;

describe("bookstore REST API", () => {
  test("a body with a key named \"error\" is a body, not a refusal", async () => {
    await sim(1).run(async (c) => {
      await c.sleep(300);
      const r = await call(c, "POST", "/update_cost/2", { error: 5, cost: 33 });
      expect(r.body).toEqual({ data: { item: 2, cost: 33, version: 1 } });
      const bad = await call(c, "POST", "/update_cost/2", { error: { status: 200 } });
      expect([bad.status, bad.body.error.message]).toEqual([400, "missing field: cost"]);
    });
  });

  test("every endpoint, the write-up's routes, and every error", async () => {
    await sim(1).run(async (c) => {
      await c.sleep(300);
      const list = await call(c, "GET", "/list");
      expect(list.status).toBe(200);
      expect(list.body.data.map((b: any) => [b.item, b.cost, b.quantity])).toEqual([
        [1, 50, 100],
        [2, 51, 101],
        [3, 12, 100],
        [4, 2, 10],
        [5, 30, 100],
        [6, 10, 100],
        [7, 20, 100],
      ]);
      expect((await call(c, "GET", "/search/distributed-systems")).body.data).toEqual([
        { item: 1, title: BOOKS[0]!.title },
        { item: 2, title: "RPCs for Dummies" },
        { item: 5, title: "How to finish Project 3 on time" },
      ]);
      expect((await call(c, "GET", "/search/Graduate_School")).body.data.map((b: any) => b.item)).toEqual([3, 4, 6, 7]);
      expect((await call(c, "POST", "/search/", { topic: "Distributed_systems" })).body.data.length).toBe(3);
      expect((await call(c, "GET", "/lookup/3")).body).toEqual({ data: { item: 3, title: "Xen and the Art of Surviving Graduate School", topic: "graduate-school", cost: 12, quantity: 100, version: 0 } });
      expect((await call(c, "POST", "/lookup/", { item: 2 })).body.data.title).toBe("RPCs for Dummies");
      expect((await call(c, "GET", "/get_quantity/4")).body).toEqual({ data: { item: 4, quantity: 10, version: 0 } });

      const b1 = await call(c, "POST", "/buy/4");
      expect(b1.status).toBe(200);
      expect(b1.body.data).toMatchObject({ item: 4, version: 1 });
      const b2 = await call(c, "POST", "/buy/", { item: 4 });
      expect(b2.body.data.order).not.toBe(b1.body.data.order);
      expect(await qty(c, 4)).toBe(8);
      expect((await call(c, "GET", `/orders/${b1.body.data.order}`)).body).toEqual({ data: { number: b1.body.data.order, item: 4 } });
      expect((await call(c, "POST", "/update_cost/1", { cost: 12.5 })).body).toEqual({ data: { item: 1, cost: 12.5, version: 1 } });
      expect((await call(c, "POST", "/update_c/1/10")).body.data.cost).toBe(10);
      expect((await call(c, "POST", "/update_quantity/4", { delta: -8 })).body).toEqual({ data: { item: 4, quantity: 0, version: 3 } });
      expect((await call(c, "POST", "/update_q/7/5")).body.data.quantity).toBe(105);
      expect((await call(c, "GET", "/lookup/1")).body.data).toMatchObject({ cost: 10, quantity: 100 });

      const errors: Array<[string, string, unknown, number, string]> = [
        ["POST", "/buy/4", undefined, 409, "item is unavailable"],
        ["POST", "/update_quantity/4", { delta: -1 }, 409, "quantity would go below 0"],
        ["GET", "/lookup/99", undefined, 404, "item not found"],
        ["GET", "/get_quantity/0", undefined, 404, "item not found"],
        ["POST", "/buy/99", undefined, 404, "item not found"],
        ["GET", "/orders/999", undefined, 404, "order not found"],
        ["GET", "/orders/abc", undefined, 404, "order not found"],
        ["GET", "/search/cooking", undefined, 404, "unknown topic"],
        ["GET", "/lookup/abc", undefined, 400, "item must be an integer"],
        ["POST", "/buy/1.5", undefined, 400, "item must be an integer"],
        ["POST", "/update_cost/1", { cost: -3 }, 400, "cost must be a positive number"],
        ["POST", "/update_cost/1", { cost: "cheap" }, 400, "cost must be a positive number"],
        ["POST", "/update_c/1/0", undefined, 400, "cost must be a positive number"],
        ["POST", "/update_quantity/1", { delta: 1.5 }, 400, "delta must be an integer"],
        ["POST", "/update_q/1/x", undefined, 400, "delta must be an integer"],
        ["POST", "/update_quantity/1", {}, 400, "missing field: delta"],
        ["POST", "/update_cost/1", "{bad json", 400, "body is not JSON"],
        ["POST", "/buy/", "[1]", 400, "body must be a JSON object"],
        ["POST", "/buy/", {}, 400, "missing field: item"],
        ["GET", "/buy/1", undefined, 405, "method not allowed"],
        ["GET", "/update_q/1/5", undefined, 405, "method not allowed"],
        ["DELETE", "/lookup/1", undefined, 405, "method not allowed"],
        ["GET", "/nowhere", undefined, 404, "not found"],
        ["GET", "/lookup/1/2", undefined, 404, "not found"],
        ["POST", "/buy/1", "x".repeat(70_000), 413, "request body over 65536 bytes"],
      ];
      for (const [method, path, body, status, message] of errors) {
        const r = await call(c, method, path, body);
        expect({ path, status: r.status, reply: r.body }).toEqual({ path, status, reply: { error: { code: status, message } } });
        if (status === 405 && method === "GET") expect(r.headers.get("allow")).toBe("POST");
      }
      // None of those changed anything.
      expect(await qty(c, 1)).toBe(100);
      expect(await qty(c, 4)).toBe(0);
      const [a, b] = [await inspect(c, "catalog-1"), await inspect(c, "catalog-2")];
      expect(a.digest).toBe(b.digest);
      expect(a.last).toBe(6);
    });
  });

  test("503 with Retry-After when no replica of a kind is alive; the other kind keeps working", async () => {
    await sim(2).run(async (c) => {
      await c.sleep(300);
      for (const o of O) await c.crash(o);
      await c.sleep(500);
      const r = await call(c, "POST", "/buy/1");
      expect(r.status).toBe(503);
      expect(r.headers.get("retry-after")).toBe("1");
      expect(r.body).toEqual({ error: { code: 503, message: "no order server available" } });
      expect(await qty(c, 1)).toBe(100);
      for (const k of C) await c.crash(k);
      await c.sleep(500);
      // (A cached lookup may still answer: with no catalog up, nothing can change it.)
      expect((await call(c, "GET", "/list")).body).toEqual({ error: { code: 503, message: "no catalog replica available" } });
      expect((await call(c, "POST", "/update_cost/1", { cost: 3 })).status).toBe(503);
      for (const id of [...C, ...O]) await c.restart(id);
      await awaitQuiet(c, C, O, 10_000);
      expect((await call(c, "POST", "/buy/1")).status).toBe(200);
      expect(await qty(c, 1)).toBe(99);
    });
  });

  test("malformed node messages get errors and change nothing", async () => {
    await sim(3).run(async (c) => {
      await c.sleep(300);
      await call(c, "POST", "/buy/2");
      const before = await inspect(c, "catalog-1");
      const bad: Array<[string, { type: string; [k: string]: unknown }]> = [
        ["catalog-1", { type: "write", rid: "x", op: { k: "steal", item: 1 } }],
        ["catalog-1", { type: "write", op: { k: "buy", item: 1 } }],
        ["catalog-1", { type: "write", rid: "y", op: { k: "cost", item: 1, cost: -1 } }],
        ["catalog-2", { type: "replicate", view: { epoch: 9, primary: "nobody", members: [] }, entries: [] }],
        ["catalog-2", { type: "replicate", view: { epoch: 9, primary: "catalog-1", members: C }, entries: [{ seq: 2 }] }],
        ["catalog-1", { type: "pull", after: -1 }],
        ["catalog-1", { type: "join", last: "x" }],
        ["catalog-1", { type: "hb", view: { epoch: "x" } }],
        ["catalog-1", { type: "read", query: null }],
        ["catalog-1", { type: "read", query: { what: "lookup", item: {} } }],
        ["frontend", { type: "invalidate", item: "x" }],
        ["frontend", { type: "view_change", epoch: 1, primary: "evil", members: ["evil"] }],
        ["order-1", { type: "buy", rid: "", item: 1 }],
        ["order-1", { type: "buy", rid: "z", item: -1 }],
        ["order-1", { type: "order_log", after: "x" }],
      ];
      for (const [dest, body] of bad) {
        const err = await c.request(dest, body, 2000).catch((e) => e);
        expect(err).toBeInstanceOf(RpcError);
        expect([ErrorCode.MalformedRequest, ErrorCode.KeyDoesNotExist]).toContain(err.code);
      }
      const after = await inspect(c, "catalog-1");
      expect(after.digest).toBe(before.digest);
      expect(after.epoch).toBe(before.epoch);
      expect((await call(c, "POST", "/buy/2")).status).toBe(200);
      expect(await qty(c, 2)).toBe(99);
    });
  });
});

describe("bookstore cache and balancing", () => {
  test("reads hit the cache; a buy invalidates it before it is acknowledged; --no-cache never caches", async () => {
    await sim(4).run(async (c) => {
      await c.sleep(300);
      for (let i = 0; i < 5; i++) await call(c, "GET", "/lookup/5");
      const fe = await c.inspect<{ cache: { hits: number; misses: number } }>("frontend");
      expect(fe!.cache).toMatchObject({ hits: 4, misses: 1 });
      await call(c, "POST", "/buy/5");
      expect(await qty(c, 5)).toBe(99); // not the cached 100
    });
    await sim(5, { cache: false }).run(async (c) => {
      await c.sleep(300);
      for (let i = 0; i < 4; i++) await call(c, "GET", "/lookup/5");
      expect((await c.inspect<{ cache: { hits: number } }>("frontend"))!.cache.hits).toBe(0);
    });
  });

  test("reads alternate between the catalogs and buys between the order servers", async () => {
    await sim(6).run(async (c) => {
      await c.sleep(300);
      for (let i = 0; i < 20; i++) await call(c, "GET", "/list");
      for (let i = 0; i < 10; i++) await call(c, "POST", "/buy/1");
      const a = await inspect(c, "catalog-1");
      const b = await inspect(c, "catalog-2");
      expect([a.served.reads, b.served.reads]).toEqual([10, 10]);
      const o = await Promise.all(O.map((id) => c.inspect<{ served: { buys: number } }>(id)));
      expect(o.map((x) => x!.served.buys)).toEqual([5, 5]);
    });
  });
});

describe("bookstore faults (the write-up's cases)", () => {
  test("one catalog killed: reads go to the other and writes go on; restarted, it resyncs only what it missed and serves the new values", async () => {
    await sim(7).run(async (c) => {
      await c.sleep(300);
      await call(c, "POST", "/buy/1");
      await c.crash("catalog-2");
      await c.sleep(400);
      const before = (await inspect(c, "catalog-1")).served.reads;
      for (let i = 0; i < 10; i++) expect((await call(c, "GET", "/list")).status).toBe(200);
      expect((await inspect(c, "catalog-1")).served.reads - before).toBe(10);
      const acked: number[] = [];
      for (let i = 0; i < 25; i++) {
        const r = await call(c, "POST", "/buy/1");
        expect(r.status).toBe(200);
        acked.push(r.body.data.order);
      }
      expect((await call(c, "POST", "/update_cost/1", { cost: 77 })).status).toBe(200);
      await c.restart("catalog-2");
      const { quiet, views } = await awaitQuiet(c, C, O, 10_000);
      expect(quiet).toBe(true);
      expect(views[1]!.view!.digest).toBe(views[0]!.view!.digest);
      // catalog-2 itself answers with the new values.
      const r = await c.request<{ book: { quantity: number; cost: number } }>("catalog-2", { type: "read", query: { what: "lookup", item: 1 } });
      expect(r.book).toMatchObject({ quantity: 74, cost: 77 });
      const log = await readCatalogLog(c, "catalog-2");
      expect(log.map((e) => e.seq)).toEqual(Array.from({ length: 27 }, (_, i) => i + 1));
      const orders = (await Promise.all(O.map((o) => readOrders(c, o)))).flat();
      for (const n of acked) expect(orders.filter((o) => o.number === n).length).toBe(1);
    });
  });

  test("a catalog that missed more than the primary's log keeps takes a snapshot, then follows the log", async () => {
    await sim(10, { logKeep: 5 }).run(async (c) => {
      await c.sleep(300);
      await c.crash("catalog-2");
      for (let i = 0; i < 20; i++) expect((await call(c, "POST", `/update_q/${1 + (i % 7)}/1`)).status).toBe(200);
      await c.restart("catalog-2");
      const { quiet, views } = await awaitQuiet(c, C, O, 10_000);
      expect(quiet).toBe(true);
      expect(views[1]!.view!.digest).toBe(views[0]!.view!.digest);
      expect((await call(c, "POST", "/update_q/1/1")).status).toBe(200);
      expect((await inspect(c, "catalog-2")).books[0]!.quantity).toBe(103 + 1);
      const tail = await c.request<{ entries: Array<{ seq: number }>; snapshot?: unknown }>("catalog-1", { type: "pull", after: 16 });
      expect(tail.entries.map((e) => e.seq)).toEqual([17, 18, 19, 20, 21]);
      expect((await c.request<{ snapshot?: { last: number } }>("catalog-1", { type: "pull", after: 3 })).snapshot?.last).toBe(21);
    });
  });

  test("the primary catalog killed: the other is promoted, nothing acknowledged is lost, and the old one rejoins", async () => {
    await sim(8).run(async (c) => {
      await c.sleep(300);
      for (let i = 0; i < 5; i++) expect((await call(c, "POST", "/update_q/3/2")).status).toBe(200);
      await c.crash("catalog-1");
      let last = 0;
      for (let i = 0; i < 10; i++) {
        const r = await call(c, "POST", "/update_q/3/1");
        if (r.status === 200) last = r.body.data.quantity;
        else expect(r.status).toBe(503);
      }
      expect(last).toBeGreaterThan(110);
      expect((await c.inspect<{ view: { primary: string } }>("frontend"))!.view.primary).toBe("catalog-2");
      await c.restart("catalog-1");
      const { quiet } = await awaitQuiet(c, C, O, 10_000);
      expect(quiet).toBe(true);
      expect(await qty(c, 3)).toBe(last);
      expect((await inspect(c, "catalog-1")).books.find((b) => b.item === 3)!.quantity).toBe(last);
    });
  });

  test("an order server killed mid-run: no acknowledged buy is lost, and every pending buy completes all-or-nothing", async () => {
    await sim(9).run(async (c) => {
      await c.sleep(300);
      const acked = new Set<number>();
      let unknown = 0;
      const shopper = async () => {
        for (let i = 0; i < 15; i++) {
          const r = await call(c, "POST", `/buy/${1 + (i % 3)}`);
          if (r.status === 200) acked.add(r.body.data.order);
          else unknown++;
        }
      };
      const work = Promise.all([shopper(), shopper(), shopper()]);
      await c.sleep(30);
      await c.crash("order-1");
      await c.sleep(700);
      await c.restart("order-1");
      await work;
      const { quiet } = await awaitQuiet(c, C, O, 10_000);
      expect(quiet).toBe(true);
      const orders = (await Promise.all(O.map((o) => readOrders(c, o)))).flat();
      const log = await readCatalogLog(c, "catalog-1");
      for (const n of acked) expect(orders.filter((o) => o.number === n).length).toBe(1);
      expect(orders.length).toBeGreaterThanOrEqual(acked.size);
      expect(orders.length).toBeLessThanOrEqual(acked.size + unknown);
      // All-or-nothing: the decrements are exactly the orders.
      expect(new Set(log.filter((e) => e.op.k === "buy").map((e) => e.rid))).toEqual(new Set(orders.map((o) => o.requestId)));
      const books = (await inspect(c, "catalog-1")).books;
      expect(300 + 1 - books.filter((b) => b.item <= 3).reduce((a, b) => a + b.quantity, 0)).toBe(orders.length);
    });
  });
});

/** A summary's details without the linearizability check's running time (the one thing a replay may change). */
const untimed = (d: string) => d.replace(/, \d+ ms\)$/, ")");
const untimedDetails = (details: Record<string, string>) => Object.fromEntries(Object.entries(details).map(([k, v]) => [k, untimed(v)]));

const runOpts = { duration: 12, latency: 2, loss: 0, dup: 0, nemesisInterval: 1, logLevel: "silent" };

async function runSeed(seed: number, nemesis: Array<"kill" | "partition" | "pause">, extra: Partial<BookstoreOptions> = {}, network: { loss?: number; dup?: number; latencyMs?: number } = {}) {
  const opts = { clients: 3, ...runOpts, ...extra, seed, nemesis, port: 0 } as BookstoreOptions & typeof runOpts & { seed: number; nemesis: typeof nemesis };
  const s = new Simulation({ seed, nodes: scenario.topology(opts as never), roles, logLevel: "silent", network: { latencyMs: 2, distribution: "exponential", ...network } });
  let history: HistoryOutcome | undefined;
  const summary = await s.run((c) => runScenario(c, scenario, opts as never, undefined, (h) => (history = h)));
  return { summary, digest: s.stats().digest, history: history! };
}

describe("bookstore under the nemesis (simulator)", () => {
  test("kill, partition and pause of any node: every check passes (4 seeds)", async () => {
    for (const seed of [11, 12, 13, 14]) {
      const { summary } = await runSeed(seed, ["kill", "partition", "pause"]);
      expect({ seed, ok: summary.ok, details: summary.ok ? {} : summary.details }).toEqual({ seed, ok: true, details: {} });
      expect(summary.nemesis.length).toBeGreaterThan(4);
    }
  }, 60_000);

  test("a network that loses and duplicates messages buys nothing twice (regression: duplicated http messages)", async () => {
    const { summary } = await runSeed(31, [], {}, { dup: 0.3, loss: 0.02 });
    expect({ ok: summary.ok, details: summary.ok ? {} : summary.details }).toEqual({ ok: true, details: {} });
  }, 60_000);

  test("reads never go back in time when a backup shows a write before the primary commits it (regression)", async () => {
    const { summary } = await runSeed(15, [], { clients: 6 }, { latencyMs: 3 });
    expect({ ok: summary.ok, details: summary.ok ? {} : summary.details }).toEqual({ ok: true, details: {} });
  }, 60_000);

  test("planted bug, oversell: the below-zero check fails, and the seed replays it", async () => {
    const a = await runSeed(21, [], { bug: "oversell", writeP: 0.6 });
    expect(a.summary.checks["no quantity ever below 0"]).toBe(false);
    const b = await runSeed(21, [], { bug: "oversell", writeP: 0.6 });
    expect(b.digest).toBe(a.digest);
    expect(untimedDetails(b.summary.details)).toEqual(untimedDetails(a.summary.details));
  }, 60_000);

  test("planted bug, no cache invalidation: the stale-read check fails", async () => {
    const { summary } = await runSeed(22, [], { bug: "no-invalidate" });
    expect(summary.checks["no read older than an acknowledged write that finished before it began"]).toBe(false);
    expect(summary.checks["no quantity ever below 0"]).toBe(true);
  }, 60_000);
});

describe("bookstore judged by what its clients observed (the run's history, linearizability)", () => {
  const faults: Array<"kill" | "partition" | "pause"> = ["kill", "partition", "pause"];
  const seeds = [21, 22];
  const verdicts = async (bug?: BookstoreOptions["bug"]) => {
    const out: Array<{ seed: number; ok: boolean; detail: string; digest: string }> = [];
    for (const seed of seeds) {
      const { summary, digest } = await runSeed(seed, faults, { bug, duration: 8 });
      out.push({ seed, ok: summary.checks.linearizable!, detail: summary.details.linearizable ?? "", digest });
    }
    return out;
  };

  test("the correct system's histories are linearizable under the same seeds and faults that expose each planted bug", async () => {
    const correct = await verdicts();
    expect(correct.filter((v) => !v.ok)).toEqual([]);
    for (const v of correct) expect(v.detail).toMatch(/^\d+ operations, 7 keys/);

    // No cache invalidation: a read served from the cache misses an acknowledged write.
    const stale = await verdicts("no-invalidate");
    expect(stale.filter((v) => v.ok).map((v) => v.seed)).toEqual([]);
    for (const v of stale) expect(v.detail).toMatch(/ (lookup|quantity) .* cannot be linearized/);
    // Oversell: a buy acknowledged with no copy left.
    const oversold = await verdicts("oversell");
    expect(oversold.filter((v) => v.ok).map((v) => v.seed)).toEqual([]);
    for (const v of oversold) expect(v.detail).toMatch(/ buy .* cannot be linearized .*state before: quantity 0,/);

    // The seed replays the failure exactly.
    const again = await runSeed(seeds[0]!, faults, { bug: "no-invalidate", duration: 8 });
    expect(again.digest).toBe(stale[0]!.digest);
    expect(untimed(again.summary.details.linearizable!)).toBe(untimed(stale[0]!.detail));
    expect(untimed(stale[0]!.detail)).not.toBe(stale[0]!.detail);
    // What --history-report writes shows the failing window and the state before it.
    const check = again.history.check!;
    expect(check.verdict).toBe("not linearizable");
    const html = renderHistoryReport(again.history.ops, check);
    const f = check.failures[0]!;
    expect(html).toContain(`Key ${f.key}: not linearizable`);
    expect(html).toContain(`model state before the window: ${f.stateBefore}`);
    expect(html).toContain(`>${f.stuck.process}</text>`);
  }, 120_000);
});

describe("bookstore checks on hand-made observations", () => {
  const op = (f: HistoryOp["f"], type: HistoryOp["type"], value: Record<string, unknown>, invokeMs: number, completeMs: number): HistoryOp => ({ process: "p", type, f, value, invokeMs, completeMs });
  const cat = (books = BOOKS.map((b) => ({ ...b }))): CatalogView => ({ mode: "primary", epoch: 1, view: null, last: 0, digest: "d", books, served: { reads: 0, writes: 0, pulls: 0 } });

  test("each check passes on a clean run and fails on its violation", () => {
    const clean = checkRun({ history: [op("lookup", "ok", { item: 1, quantity: 100, version: 0 }, 0, 1)], catalogs: [{ id: "catalog-1", view: cat() }], log: [], orders: [], pendingBuys: 0 });
    expect(Object.values(clean).every((c) => c.ok)).toBe(true);
    const stale = checkRun({
      history: [op("update_cost", "ok", { item: 1, cost: 5, version: 1 }, 0, 10), op("lookup", "ok", { item: 1, quantity: 100, version: 0 }, 11, 12)],
      catalogs: [{ id: "catalog-1", view: cat() }],
      log: [],
      orders: [],
      pendingBuys: 0,
    });
    expect(stale["no read older than an acknowledged write that finished before it began"]!.ok).toBe(false);
    const lostBuy = checkRun({ history: [op("buy", "ok", { item: 1, order: 1, version: 1 }, 0, 1)], catalogs: [{ id: "catalog-1", view: cat() }], log: [], orders: [], pendingBuys: 0 });
    expect(lostBuy["every acknowledged buy has exactly one order and one decrement"]!.ok).toBe(false);
    expect(lostBuy["final quantities account for every acknowledged write"]!.ok).toBe(false);
    const split = checkRun({ history: [], catalogs: [{ id: "catalog-1", view: cat() }, { id: "catalog-2", view: { ...cat(), mode: "member", digest: "other" } }], log: [], orders: [], pendingBuys: 0 });
    expect(split["the catalog replicas are identical at the end"]!.ok).toBe(false);
    const below = checkRun({ history: [op("quantity", "ok", { item: 4, quantity: -1, version: 11 }, 0, 1)], catalogs: [{ id: "catalog-1", view: cat() }], log: [], orders: [], pendingBuys: 0 });
    expect(below["no quantity ever below 0"]!.ok).toBe(false);
    expect(balanceCheck("reads", { "catalog-1": 15, "catalog-2": 15 }).ok).toBe(true);
    expect(balanceCheck("reads", { "catalog-1": 25, "catalog-2": 5 }).ok).toBe(false);
    expect(balanceCheck("reads", { "catalog-1": 0, "catalog-2": 0 }).ok).toBe(false);
  });
});
