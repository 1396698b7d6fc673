/**
 * A trade is all or nothing whoever crashes. Traders flood the order path while the front end, the
 * catalog or an order replica is crashed and restarted over and over; afterwards the catalog's
 * quantities are exactly what the order log implies, although many trades ended with no answer or a
 * 503. (Before the order service resolved the catalog's unlogged trades, an in-flight place_order
 * whose leader was deposed or whose front end died left the trade in the catalog with no order.)
 */
import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { Simulation } from "../src/sim/simulator.ts";
import { RpcError } from "../src/workers/runtime/types.ts";
import type { Order } from "../src/workers/stocks/messages.ts";
import { OrderLog } from "../src/workers/stocks/log.ts";
import { roles } from "../src/workers/stocks/roles.ts";
import { awaitConvergence, awaitResolved, catalogStocks, expectedQuantities, readLog, replicaIds, scenario, stocksTopology } from "../src/workers/stocks/scenario.ts";

// Simulator runs are CPU-bound: on a loaded 2-core machine some take longer than bun's 5 s default.
setDefaultTimeout(30_000);

const R = replicaIds(3);
const opts = { clients: 8, p: 1, intervalMs: 1, port: 0, replicas: 3, initialQuantity: 1000, maxQuantity: 5 };
const common = { duration: 0, latency: 1, loss: 0, dup: 0, nemesis: [], nemesisInterval: 1, logLevel: "silent" };

/** Crash and restart `victims` in turn, one every 0.7 s, while 8 clients trade as fast as they can. */
async function crashLoop(seed: number, victims: string[], rounds: number) {
  const o = { ...opts, ...common, seed } as any;
  const s = new Simulation({ seed, nodes: stocksTopology(o), roles, logLevel: "silent", network: { latencyMs: 2, distribution: "exponential" } });
  return s.run(async (c) => {
    let stopped = false;
    const control = {
      untilStopped: async () => {
        for (let k = 0; k < rounds; k++) {
          await c.sleep(600 + c.random.int(100));
          const v = victims[k % victims.length]!;
          await c.crash(v);
          await c.sleep(c.random.int(100));
          await c.restart(v);
        }
        await c.sleep(500);
        stopped = true;
      },
      stopping: () => stopped,
    };
    const result = await scenario.run(c, o, control);
    // Independently of the scenario's own checks: the catalog is what the order log says.
    const { views } = await awaitConvergence(c, R);
    const log = await readLog(c, views[0]!.id);
    const want = expectedQuantities(log, opts.initialQuantity);
    const have = Object.fromEntries((await catalogStocks(c)).map((st) => [st.name, st.quantity]));
    return { result, log, want, have };
  });
}

describe("a trade is all or nothing whoever crashes", () => {
  test.each([1, 2, 3])("front end crashed every 0.7 s under an 8-way order flood (seed %d)", async (seed) => {
    const { result, log, want, have } = await crashLoop(seed, ["frontend"], 10);
    expect(log.length).toBeGreaterThan(100);
    expect(have).toEqual(want);
    for (const [name, check] of Object.entries(result.checks)) expect({ name, ...check }).toMatchObject({ name, ok: true });
  });

  test.each([4, 5, 6])("every node crashed in turn under an 8-way order flood (seed %d)", async (seed) => {
    const { result, log, want, have } = await crashLoop(seed, ["frontend", "catalog", ...R], 10);
    expect(log.length).toBeGreaterThan(100);
    expect(have).toEqual(want);
    for (const [name, check] of Object.entries(result.checks)) expect({ name, ...check }).toMatchObject({ name, ok: true });
  });
});

describe("dropped orders go back to the catalog", () => {
  const order = (number: number, epoch: number, requestId: string): Order => ({ number, name: "meta", type: "buy", quantity: 1, requestId, epoch });

  test("a tail replaced by a newer leader's entries is kept as dropped trades until handed back", () => {
    const log = new OrderLog();
    log.append(order(0, 1, "a"));
    log.append(order(1, 1, "b"));
    log.append(order(2, 1, "c"));
    // The epoch-2 leader never had b and c: its entries replace them.
    expect(log.merge(0, 1, [order(1, 2, "c")])).toEqual({ ok: true });
    expect(log.last).toBe(1);
    expect(log.dropped).toBe(2);
    expect(log.droppedList(10).map((t) => t.requestId).sort()).toEqual(["b", "c"]);
    expect(log.numberOf("c")).toBe(1);
    expect(log.numberOf("b")).toBeUndefined();
    log.truncateFrom(1);
    expect(log.droppedList(10).map((t) => t.requestId).sort()).toEqual(["b", "c"]);
    log.forgetDropped(["b", "c", "nonexistent"]);
    expect(log.dropped).toBe(0);
    // What the shell persists, in order: each dropped trade is listed before its order goes.
    const writes = log.takeWrites().map((w) => (w.kind === "put" ? `put ${w.order.number}` : w.kind === "truncate" ? `truncate ${w.from}` : `${w.kind} ${"trade" in w ? w.trade.requestId : w.requestId}`));
    expect(writes).toEqual(["put 0", "put 1", "put 2", "drop b", "drop c", "truncate 1", "put 1", "truncate 1", "forget b", "forget c"]);
  });

  test("the catalog lists reopened trades as unlogged and the leader logs each once", async () => {
    const s = new Simulation({ seed: 9, nodes: stocksTopology({ clients: 0, port: 0 }), roles, logLevel: "silent" });
    await s.run(async (c) => {
      // A trade applied at the catalog that no order service asked for: as if its leader died at once.
      await c.request("catalog", { type: "trade", requestId: "orphan-1", name: "nike", tradeType: "sell", quantity: 4 }, 2000);
      // And a reopened one the log already holds after that: it must not be logged twice.
      await c.sleep(1000);
      await c.request("catalog", { type: "reopen", trades: [{ requestId: "orphan-1", name: "nike", tradeType: "sell", quantity: 4 }] }, 2000);
      const bad = [
        { type: "reopen", trades: [{ requestId: "", name: "nike", tradeType: "sell", quantity: 4 }] },
        { type: "reopen", trades: "x" },
        { type: "logged", requestIds: [7] },
      ];
      for (const b of bad) expect(await c.request("catalog", b, 2000).catch((e) => e)).toBeInstanceOf(RpcError);
      expect((await awaitResolved(c, R)).unlogged).toBe(0);
      const { converged, views } = await awaitConvergence(c, R);
      expect(converged).toBe(true);
      const log = await readLog(c, views[0]!.id);
      expect(log.map((o) => o.requestId)).toEqual(["orphan-1"]);
      expect((await catalogStocks(c)).find((st) => st.name === "nike")!.quantity).toBe(1004);
    });
  });
});
