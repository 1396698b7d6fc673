import { describe, expect, test, setDefaultTimeout } from "bun:test";
import type { NetworkPatch } from "../src/driver/cluster.ts";
import { Simulation } from "../src/sim/simulator.ts";
import { ErrorCode, RpcError } from "../src/workers/runtime/types.ts";
import { VersionedLru as StockCache } from "../src/workers/shared/cache.ts";
import { STOCKS } from "../src/workers/stocks/catalog.ts";
import type { Order } from "../src/workers/stocks/messages.ts";
import { roles } from "../src/workers/stocks/roles.ts";
import { awaitConvergence, catalogStocks, expectedQuantities, readLog, replicaIds, scenario, stocksTopology, type StocksOptions } from "../src/workers/stocks/scenario.ts";
import { simHttp } from "./helpers.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const R = replicaIds(3);

function sim(seed: number, opts: Partial<StocksOptions> = {}, network?: NetworkPatch): Simulation {
  return new Simulation({ seed, nodes: stocksTopology({ clients: 0, ...opts }), roles, logLevel: "silent", network });
}

const call = (c: Simulation, method: string, path: string, body?: unknown) => simHttp(c, "frontend", method, path, body);

const quantityOf = async (c: Simulation, name: string) => (await call(c, "GET", `/stocks/${name}`)).body.data.quantity as number;

type Acked = Map<number, { name: string; type: string; quantity: number }>;

/** `loops` concurrent traders placing `each` random trades; returns what was acknowledged. */
async function trade(c: Simulation, loops: number, each: number, acked: Acked, tag = 0): Promise<number> {
  let unknown = 0;
  await Promise.all(
    Array.from({ length: loops }, async (_, l) => {
      for (let i = 0; i < each; i++) {
        const order = { name: STOCKS[(l + i + tag) % STOCKS.length]!.name, type: (i + l) % 3 === 0 ? "buy" : "sell", quantity: 1 + ((i * 7 + l) % 9) };
        const r = await call(c, "POST", "/orders", order);
        if (r.status === 200) {
          const n = r.body.data.transaction_number;
          expect(acked.has(n)).toBe(false); // numbers are unique
          acked.set(n, order);
        } else {
          expect(r.status).toBe(503);
          unknown++;
        }
        await c.sleep(c.random.int(5));
      }
    }),
  );
  return unknown;
}

/** The live replicas converge, hold every acknowledged order, no request twice, and match the catalog. */
async function checkReplicas(c: Simulation, acked: Acked, unknown: number, expectLive: number): Promise<Order[]> {
  const { converged, views } = await awaitConvergence(c, R);
  expect(views.length).toBe(expectLive);
  expect(converged).toBe(true);
  const logs = await Promise.all(views.map((v) => readLog(c, v.id)));
  for (const log of logs) expect(log).toEqual(logs[0]!);
  const log = logs[0]!;
  log.forEach((o, i) => expect(o.number).toBe(i));
  expect(new Set(log.map((o) => o.requestId)).size).toBe(log.length);
  for (const [n, o] of acked) {
    expect(log[n]).toBeDefined();
    expect({ name: log[n]!.name, type: log[n]!.type, quantity: log[n]!.quantity } as Record<string, unknown>).toEqual(o);
  }
  if (unknown === 0) {
    const want = expectedQuantities(log, 1000);
    for (const s of await catalogStocks(c)) expect(s.quantity).toBe(want[s.name]!);
  }
  return log;
}

describe("stocks REST API", () => {
  test("a body with a key named \"error\" is a body, not a refusal: the order is judged on its fields", async () => {
    await sim(1).run(async (c) => {
      await c.sleep(300);
      const r = await call(c, "POST", "/orders", { error: 7, name: "nvidia", type: "buy", quantity: 1 });
      expect(r.status).toBe(200);
      expect(typeof r.body.data.transaction_number).toBe("number");
      const bad = await call(c, "POST", "/orders", { error: { status: 200 }, name: "nvidia", type: "buy" });
      expect([bad.status, bad.body.error.message]).toEqual([400, "missing field: quantity"]);
    });
  });

  test("every endpoint and error, with codes and messages", async () => {
    await sim(1).run(async (c) => {
      const nvidia = await call(c, "GET", "/stocks/nvidia");
      expect(nvidia.status).toBe(200);
      expect(nvidia.body).toEqual({ data: { name: "nvidia", price: 240.63, quantity: 1000 } });
      expect(STOCKS.length).toBeGreaterThanOrEqual(10);

      const nf = await call(c, "GET", "/stocks/imaginarycompany");
      expect(nf.status).toBe(404);
      expect(nf.body).toEqual({ error: { code: 404, message: "stock not found" } });

      const sell = await call(c, "POST", "/orders", { name: "meta", type: "sell", quantity: 10 });
      expect(sell.status).toBe(200);
      expect(sell.body).toEqual({ data: { transaction_number: 0 } });
      expect(await quantityOf(c, "meta")).toBe(1010);

      const buy = await call(c, "POST", "/orders", { name: "gamestop", type: "buy", quantity: 10 });
      expect(buy.body).toEqual({ data: { transaction_number: 1 } });
      expect(await quantityOf(c, "gamestop")).toBe(990);

      const q = await call(c, "GET", "/orders/1");
      expect(q.status).toBe(200);
      expect(q.body).toEqual({ data: { number: 1, name: "gamestop", type: "buy", quantity: 10 } });

      const errors: Array<[string, string, unknown, number, string]> = [
        ["POST", "/orders", { name: "nvidia", type: "buy", quantity: 10_000_000 }, 409, "not enough stock"],
        ["POST", "/orders", { name: "amazon", type: "buy", quantity: -1000 }, 400, "invalid quantity"],
        ["POST", "/orders", { name: "amazon", type: "sell", quantity: 0 }, 400, "invalid quantity"],
        ["POST", "/orders", { name: "amazon", type: "sell", quantity: 1.5 }, 400, "invalid quantity"],
        ["POST", "/orders", { name: "amazon", type: "sell", quantity: "10" }, 400, "invalid quantity"],
        ["POST", "/orders", { name: "meta", type: "trade", quantity: 100 }, 400, "invalid request type"],
        ["POST", "/orders", { name: "imaginarycompany", type: "buy", quantity: 100 }, 404, "stock not found"],
        ["POST", "/orders", { type: "buy", quantity: 1 }, 400, "missing field: name"],
        ["POST", "/orders", { name: "meta", quantity: 1 }, 400, "missing field: type"],
        ["POST", "/orders", { name: "meta", type: "buy" }, 400, "missing field: quantity"],
        ["POST", "/orders", "{not json", 400, "body is not JSON"],
        ["POST", "/orders", "[1,2]", 400, "body must be a JSON object"],
        ["POST", "/orders", { name: 42, type: "buy", quantity: 1 }, 400, "invalid stock name"],
        ["GET", "/orders/2", undefined, 404, "order not found"],
        ["GET", "/orders/abc", undefined, 404, "order not found"],
        ["GET", "/nowhere", undefined, 404, "not found"],
        ["GET", "/stocks/", undefined, 404, "not found"],
        ["GET", "/stocks/a/b", undefined, 404, "not found"],
        ["DELETE", "/stocks/nvidia", undefined, 405, "method not allowed"],
        ["GET", "/orders", undefined, 405, "method not allowed"],
        ["PUT", "/orders/1", undefined, 405, "method not allowed"],
        ["POST", "/orders", "x".repeat(70_000), 413, "request body over 65536 bytes"],
      ];
      for (const [method, path, body, status, message] of errors) {
        const r = await call(c, method, path, body);
        expect({ path, body, status: r.status, reply: r.body }).toEqual({ path, body, status, reply: { error: { code: status, message } } });
      }
      // None of those changed anything.
      expect(await quantityOf(c, "nvidia")).toBe(1000);
      expect(await quantityOf(c, "amazon")).toBe(1000);
      const next = await call(c, "POST", "/orders", { name: "amazon", type: "sell", quantity: 1 });
      expect(next.body).toEqual({ data: { transaction_number: 2 } });
    });
  });

  test("503 with Retry-After when no order replica can be reached; lookups still work", async () => {
    await sim(2).run(async (c) => {
      for (const r of R) await c.crash(r);
      const t = await call(c, "POST", "/orders", { name: "meta", type: "sell", quantity: 1 });
      expect(t.status).toBe(503);
      expect(t.headers.get("retry-after")).toBe("1");
      expect(t.body.error.code).toBe(503);
      expect((await call(c, "GET", "/orders/0")).status).toBe(503);
      expect(await quantityOf(c, "meta")).toBe(1000);
      // Back up: the frontend finds a leader again.
      await c.restart("order-1");
      await c.sleep(1500);
      expect((await call(c, "POST", "/orders", { name: "meta", type: "sell", quantity: 1 })).status).toBe(200);
    });
  });

  test("client nodes' http messages go through the same router", async () => {
    await sim(3).run(async (c) => {
      const viaMsg = await c.request("frontend", { type: "http", method: "GET", path: "/stocks/tesla" }, 5000);
      expect(viaMsg).toMatchObject({ status: 200, body: { data: { name: "tesla", quantity: 1000 } } });
      const bad = await c.request("frontend", { type: "http", method: "POST", path: "/orders", body: '{"name":"tesla"' }, 5000);
      expect(bad).toMatchObject({ status: 400, body: { error: { code: 400, message: "body is not JSON" } } });
      const big = await c.request("frontend", { type: "http", method: "POST", path: "/orders", body: "x".repeat(70_000) }, 5000);
      expect(big).toMatchObject({ status: 413 });
      const junk = await c.request("frontend", { type: "http", method: 7, path: null }, 5000);
      expect(junk).toMatchObject({ status: 400 });
    });
  });

  test("malformed node messages get errors and change nothing", async () => {
    await sim(4).run(async (c) => {
      await call(c, "POST", "/orders", { name: "nike", type: "sell", quantity: 5 });
      const before = await Promise.all(R.map((r) => c.inspect<{ digest: string }>(r)));
      const bad: Array<[string, { type: string; [k: string]: unknown }]> = [
        ["catalog", { type: "trade", requestId: "x", name: "nike", tradeType: "steal", quantity: 5 }],
        ["catalog", { type: "trade", requestId: "x", name: "nike", tradeType: "buy", quantity: -5 }],
        ["catalog", { type: "trade", name: "nike", tradeType: "buy", quantity: 5 }],
        ["catalog", { type: "lookup", name: { evil: true } }],
        ["frontend", { type: "invalidate", name: 5, version: "x" }],
        ["order-3", { type: "place_order", requestId: "", name: "nike", tradeType: "buy", quantity: 1 }],
        ["order-3", { type: "append", epoch: 99, prev: 0, prevEpoch: 1, entries: [{ number: 7 }], leaderLast: 0 }],
        ["order-2", { type: "append", epoch: "x" }],
        ["order-1", { type: "set_leader", leader: "nobody", epoch: 5 }],
        ["order-1", { type: "log_tail", after: -5, limit: 1 }],
        ["order-1", { type: "get_order", number: -1 }],
      ];
      for (const [dest, body] of bad) {
        const err = await c.request(dest, body, 2000).catch((e) => e);
        expect(err).toBeInstanceOf(RpcError);
        expect([ErrorCode.MalformedRequest, ErrorCode.KeyDoesNotExist, ErrorCode.TemporarilyUnavailable]).toContain(err.code);
      }
      expect(await quantityOf(c, "nike")).toBe(1005);
      const after = await Promise.all(R.map((r) => c.inspect<{ digest: string }>(r)));
      expect(after.map((a) => a!.digest)).toEqual(before.map((b) => b!.digest));
      expect((await call(c, "POST", "/orders", { name: "nike", type: "buy", quantity: 5 })).body).toEqual({ data: { transaction_number: 1 } });
    });
  });
});

describe("stocks cache", () => {
  test("lookups hit the cache, and a trade invalidates it before it is acknowledged", async () => {
    await sim(5).run(async (c) => {
      expect(await quantityOf(c, "amazon")).toBe(1000);
      expect(await quantityOf(c, "amazon")).toBe(1000);
      const fe = await c.inspect<{ cache: { hits: number; misses: number } }>("frontend");
      expect(fe!.cache).toMatchObject({ hits: 1, misses: 1 });
      for (let i = 1; i <= 5; i++) {
        expect((await call(c, "POST", "/orders", { name: "amazon", type: "buy", quantity: 3 })).status).toBe(200);
        expect(await quantityOf(c, "amazon")).toBe(1000 - 3 * i);
      }
    });
  });

  test("--no-cache never hits", async () => {
    await sim(6, { cache: false }).run(async (c) => {
      for (let i = 0; i < 3; i++) expect(await quantityOf(c, "intel")).toBe(1000);
      expect((await c.inspect<{ cache: { hits: number } }>("frontend"))!.cache.hits).toBe(0);
    });
  });

  test.each([7, 8, 9])("with concurrent traders and readers on a reordering network, no lookup after an acknowledged trade sees an older quantity (seed %d)", async (seed) => {
    await sim(seed, {}, { latencyMs: 3, distribution: "exponential", reorder: true }).run(async (c) => {
      let trading = true;
      // Readers keep lookups in flight while trades land, so stale catalog replies race invalidations.
      const readers = Array.from({ length: 6 }, async () => {
        while (trading) {
          await call(c, "GET", "/stocks/tesla");
          await c.sleep(c.random.int(3)); // a cache hit takes no virtual time: let the clock move
        }
      });
      // Only sells: quantity only grows, so a read below what one's own sell produced is stale.
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          for (let i = 0; i < 15; i++) {
            const r = await call(c, "POST", "/orders", { name: "tesla", type: "sell", quantity: 1 });
            expect(r.status).toBe(200);
            const after = await call(c, "GET", "/orders/" + r.body.data.transaction_number);
            expect(after.status).toBe(200);
            // The quantity right after my sell includes it; each sell adds 1, so it is at least 1000 + (my count).
            expect(await quantityOf(c, "tesla")).toBeGreaterThanOrEqual(1001 + i);
          }
        }),
      );
      trading = false;
      await Promise.all(readers);
      // And the cache ends up holding the catalog's final quantity, not a late stale reply.
      expect(await quantityOf(c, "tesla")).toBe(1060);
      expect(await quantityOf(c, "tesla")).toBe(1060);
    });
  });

  test("LRU: bounded, evicts the least recently used, refuses fills older than an invalidation", () => {
    const cache = new StockCache<{ name: string; price: number; quantity: number }>(2);
    const s = (name: string, quantity: number) => ({ name, price: 1, quantity });
    cache.fill("a", s("a", 1), 0, cache.ticket());
    cache.fill("b", s("b", 1), 0, cache.ticket());
    cache.get("a");
    cache.fill("c", s("c", 1), 0, cache.ticket());
    expect(cache.size).toBe(2);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBeDefined();
    // A lookup left the catalog at version 0; the trade (version 1) invalidated first.
    const ticket = cache.ticket();
    cache.invalidate("a", 1);
    cache.fill("a", s("a", 1), 0, ticket);
    expect(cache.get("a")).toBeUndefined();
    cache.fill("a", s("a", 2), 1, cache.ticket());
    expect(cache.get("a")!.quantity).toBe(2);
    expect(() => new StockCache(-1)).toThrow();
  });
});

describe("stocks replication and faults (simulator, several seeds)", () => {
  const seeds = [11, 12, 13];
  const net: NetworkPatch = { latencyMs: 3, distribution: "exponential" };

  test.each(seeds)("largest id dead at start (seed %d)", async (seed) => {
    await sim(seed, {}, net).run(async (c) => {
      await c.crash("order-3");
      const acked: Acked = new Map();
      const unknown = await trade(c, 3, 8, acked);
      expect(unknown).toBe(0);
      expect([...acked.keys()].sort((a, b) => a - b)).toEqual([...Array(acked.size).keys()]);
      expect((await c.inspect<{ leader: string }>("frontend"))!.leader).toBe("order-2");
      await checkReplicas(c, acked, unknown, 2);
    });
  });

  test.each(seeds)("two largest dead at start (seed %d)", async (seed) => {
    await sim(seed, {}, net).run(async (c) => {
      await c.crash("order-3");
      await c.crash("order-2");
      const acked: Acked = new Map();
      const unknown = await trade(c, 3, 6, acked);
      expect(unknown).toBe(0);
      expect((await c.inspect<{ leader: string }>("frontend"))!.leader).toBe("order-1");
      await checkReplicas(c, acked, unknown, 1);
    });
  });

  for (const who of ["leader", "follower"] as const) {
    test.each(seeds)(`${who} crash mid-run (seed %d)`, async (seed) => {
      await sim(seed, {}, net).run(async (c) => {
        const acked: Acked = new Map();
        const victim = who === "leader" ? "order-3" : `order-${1 + c.random.int(2)}`;
        const work = trade(c, 5, 12, acked);
        await c.sleep(20 + c.random.int(40));
        await c.crash(victim);
        const unknown = await work;
        expect(unknown).toBe(0);
        await checkReplicas(c, acked, unknown, 2);
      });
    });

    test.each(seeds)(`${who} crash and rejoin (seed %d)`, async (seed) => {
      await sim(seed, {}, net).run(async (c) => {
        const acked: Acked = new Map();
        const victim = who === "leader" ? "order-3" : `order-${1 + c.random.int(2)}`;
        const work = trade(c, 5, 16, acked);
        await c.sleep(20 + c.random.int(40));
        await c.crash(victim);
        await c.sleep(1500 + c.random.int(500));
        await c.restart(victim);
        const unknown = await work;
        expect(unknown).toBe(0);
        // And trading continues with the rejoined replica in the set.
        const more = await trade(c, 2, 4, acked, 5);
        await checkReplicas(c, acked, unknown + more, 3);
      });
    });
  }

  test.each(seeds)("repeated leader kills under client load: the scenario's checks pass (seed %d)", async (seed) => {
    const opts = { clients: 3, p: 0.6, intervalMs: 5, port: 0 };
    const common = { seed, duration: 6, latency: 1, loss: 0, dup: 0, nemesis: [], nemesisInterval: 1, logLevel: "silent" };
    const s = new Simulation({ seed, nodes: scenario.topology({ ...opts, ...common } as any), roles, logLevel: "silent", network: net });
    const result = await s.run(async (c) => {
      let stopped = false;
      const control = {
        untilStopped: async () => {
          for (let k = 0; k < 3; k++) {
            await c.sleep(700 + c.random.int(300));
            const leader = (await c.inspect<{ leader?: string }>("frontend"))?.leader ?? "order-3";
            await c.crash(leader);
            await c.sleep(600 + c.random.int(600));
            await c.restart(leader);
          }
          await c.sleep(500);
          stopped = true;
        },
        stopping: () => stopped,
      };
      return scenario.run(c, { ...opts, ...common } as any, control);
    });
    for (const [name, check] of Object.entries(result.checks)) expect({ name, ...check }).toMatchObject({ name, ok: true });
    expect(result.metrics!.ordersPlaced as number).toBeGreaterThan(20);
  });
});

describe("stocks durability and concurrency", () => {
  test("restarting the whole cluster keeps the catalog and the orders", async () => {
    await sim(21, {}, { latencyMs: 1 }).run(async (c) => {
      const acked: Acked = new Map();
      await trade(c, 2, 6, acked);
      const before = await Promise.all(STOCKS.map((s) => quantityOf(c, s.name)));
      for (const n of c.nodes) await c.crash(n.id);
      await c.sleep(100);
      for (const n of c.nodes) await c.restart(n.id);
      const after = await Promise.all(STOCKS.map((s) => quantityOf(c, s.name)));
      expect(after).toEqual(before);
      for (const [n, o] of acked) expect((await call(c, "GET", `/orders/${n}`)).body).toEqual({ data: { number: n, ...o } });
      const next = await call(c, "POST", "/orders", { name: "amc", type: "sell", quantity: 1 });
      expect(next.body).toEqual({ data: { transaction_number: acked.size } });
      await checkReplicas(c, acked.set(acked.size, { name: "amc", type: "sell", quantity: 1 }), 0, 3);
    });
  });

  test.each([31, 32])("concurrent buys of the last shares never drive a quantity below zero (seed %d)", async (seed) => {
    await sim(seed, { initialQuantity: 5 }, { latencyMs: 1, distribution: "exponential" }).run(async (c) => {
      const replies = await Promise.all(Array.from({ length: 12 }, () => call(c, "POST", "/orders", { name: "gamestop", type: "buy", quantity: 1 })));
      const statuses = replies.map((r) => r.status).sort();
      expect(statuses.filter((s) => s === 200).length).toBe(5);
      expect(statuses.filter((s) => s === 409).length).toBe(7);
      for (const r of replies.filter((x) => x.status === 409)) expect(r.body).toEqual({ error: { code: 409, message: "not enough stock" } });
      expect(await quantityOf(c, "gamestop")).toBe(0);
      const big = await call(c, "POST", "/orders", { name: "gamestop", type: "buy", quantity: 1 });
      expect(big.status).toBe(409);
    });
  });

  test("a retried trade (same request id) is applied once", async () => {
    await sim(41).run(async (c) => {
      await call(c, "POST", "/orders", { name: "intel", type: "sell", quantity: 1 });
      const leader = (await c.inspect<{ leader: string }>("frontend"))!.leader;
      const body = { type: "place_order", requestId: "retry-1", name: "nike", tradeType: "buy", quantity: 7 };
      const a = await c.request(leader, body, 5000);
      const b = await c.request(leader, body, 5000);
      expect(b).toMatchObject({ number: (a as any).number });
      expect(await quantityOf(c, "nike")).toBe(993);
      const t = { type: "trade", requestId: "retry-2", name: "nike", tradeType: "sell", quantity: 2 };
      await c.request("catalog", t, 5000);
      await c.request("catalog", t, 5000);
      expect((await catalogStocks(c)).find((s) => s.name === "nike")!.quantity).toBe(995);
    });
  });
});
