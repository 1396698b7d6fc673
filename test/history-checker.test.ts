import { describe, expect, test } from "bun:test";
import { checkLinearizable, type Model } from "../src/history/linearizable.ts";
import { bookstoreInitial, bookstoreModel, echoModel, registerModel, stocksModel, talliesModel, NOT_ENOUGH_STOCK, ITEM_UNAVAILABLE, QUANTITY_BELOW_ZERO } from "../src/history/models.ts";
import type { Op, OpType } from "../src/history/op.ts";
import { REJECT } from "../src/history/linearizable.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";

/** op("c1", "write", 1, [0, 10]) — key "x" unless given; type ok unless given; completeMs null when the range has one end. */
function op(process: string, f: string, value: unknown, span: [number, number?], type: OpType = "ok", extra: Record<string, unknown> = {}): Op {
  return { process, type, f, value, invokeMs: span[0], completeMs: span[1] ?? null, key: "x", ...extra };
}

type Row = [name: string, model: Model<any>, history: Op[], verdict: "linearizable" | "not linearizable"];

const stocks = stocksModel({ initialQuantity: 10 });
const tallies0 = talliesModel({ initial: 0 });
const book2 = bookstoreModel({ initial: () => ({ quantity: 2, cost: 5 }) });

const rows: Row[] = [
  // ---- register: linearizable ----
  ["empty history", registerModel, [], "linearizable"],
  ["sequential write then read", registerModel, [op("a", "write", 1, [0, 1]), op("b", "read", 1, [2, 3])], "linearizable"],
  ["read concurrent with a write may see the old value", registerModel, [op("a", "write", 1, [0, 10]), op("b", "read", null, [2, 5])], "linearizable"],
  ["read concurrent with a write may see the new value", registerModel, [op("a", "write", 1, [0, 10]), op("b", "read", 1, [2, 5])], "linearizable"],
  ["touching operations count as concurrent", registerModel, [op("a", "write", 1, [0, 5]), op("b", "read", null, [5, 6])], "linearizable"],
  [
    "two concurrent writes, reads agree on one order",
    registerModel,
    [op("a", "write", 1, [0, 10]), op("b", "write", 2, [0, 10]), op("c", "read", 2, [11, 12]), op("d", "read", 2, [13, 14])],
    "linearizable",
  ],
  ["a definitely failed write is ignored", registerModel, [op("a", "write", 1, [0, 1], "fail"), op("b", "read", null, [2, 3])], "linearizable"],
  ["cas from the current value", registerModel, [op("a", "write", 1, [0, 1]), op("b", "cas", [1, 2], [2, 3]), op("c", "read", 2, [4, 5])], "linearizable"],
  ["cas refused because the value differed", registerModel, [op("a", "write", 1, [0, 1]), op("b", "cas", [5, 2], [2, 3], "fail", { error: "precondition failed" })], "linearizable"],
  // ---- register: classic anomalies ----
  ["stale read after an acknowledged write", registerModel, [op("a", "write", 1, [0, 1]), op("a", "write", 2, [2, 3]), op("b", "read", 1, [4, 5])], "not linearizable"],
  ["lost write: acknowledged, then read as never written", registerModel, [op("a", "write", 1, [0, 1]), op("b", "read", null, [2, 3])], "not linearizable"],
  ["read of a value never written", registerModel, [op("a", "write", 1, [0, 1]), op("b", "read", 7, [2, 3])], "not linearizable"],
  ["a definitely failed write is read", registerModel, [op("a", "write", 1, [0, 1], "fail"), op("b", "read", 1, [2, 3])], "not linearizable"],
  [
    "reads disagree on the order of two concurrent writes",
    registerModel,
    [op("a", "write", 1, [0, 10]), op("b", "write", 2, [0, 10]), op("c", "read", 1, [11, 12]), op("d", "read", 2, [13, 14]), op("c", "read", 1, [15, 16])],
    "not linearizable",
  ],
  ["cas succeeded from a value that was not there", registerModel, [op("a", "write", 1, [0, 1]), op("b", "cas", [3, 2], [2, 3])], "not linearizable"],
  ["cas refused though the value matched", registerModel, [op("a", "write", 1, [0, 1]), op("b", "cas", [1, 2], [2, 3], "fail", { error: "precondition failed" })], "not linearizable"],
  // ---- indefinite operations ----
  ["only linearizable if the timed-out write took effect", registerModel, [op("a", "write", 1, [0, 3], "info"), op("b", "read", 1, [10, 11])], "linearizable"],
  ["an indefinite write may also never happen", registerModel, [op("a", "write", 1, [0, 3], "info"), op("b", "read", null, [10, 11])], "linearizable"],
  ["an indefinite write open to the end took effect late", registerModel, [op("a", "write", 1, [0]), op("b", "read", null, [2, 3]), op("b", "read", 1, [10, 11])], "linearizable"],
  [
    "an indefinite write cannot be undone once seen",
    registerModel,
    [op("a", "write", 1, [0, 3], "info"), op("b", "read", 1, [4, 5]), op("b", "read", null, [6, 7])],
    "not linearizable",
  ],
  ["an indefinite write cannot take effect before it was invoked", registerModel, [op("b", "read", 1, [0, 1]), op("a", "write", 1, [5, 6], "info")], "not linearizable"],
  // ---- stocks ----
  ["stocks: buys and sells and a lookup", stocks, [op("a", "buy", 3, [0, 1]), op("b", "sell", 2, [2, 3]), op("a", "lookup", 9, [4, 5])], "linearizable"],
  ["stocks: a buy over the stock is refused", stocks, [op("a", "buy", 11, [0, 1], "fail", { error: NOT_ENOUGH_STOCK }), op("b", "lookup", 10, [2, 3])], "linearizable"],
  [
    "stocks: of two concurrent buys of 6 one is refused",
    stocks,
    [op("a", "buy", 6, [0, 10]), op("b", "buy", 6, [0, 10], "fail", { error: NOT_ENOUGH_STOCK }), op("c", "lookup", 4, [11, 12])],
    "linearizable",
  ],
  ["stocks: a refused buy the stock could cover", stocks, [op("a", "buy", 5, [0, 1], "fail", { error: NOT_ENOUGH_STOCK })], "not linearizable"],
  ["stocks: an oversold buy", stocks, [op("a", "buy", 8, [0, 1]), op("b", "buy", 8, [2, 3])], "not linearizable"],
  ["stocks: a stale lookup after an acknowledged buy (cache not invalidated)", stocks, [op("a", "lookup", 10, [0, 1]), op("a", "buy", 3, [2, 3]), op("b", "lookup", 10, [4, 5])], "not linearizable"],
  ["stocks: a 503 (definite) buy is ignored", stocks, [op("a", "buy", 3, [0, 1], "fail", { error: "no leader" }), op("b", "lookup", 10, [2, 3])], "linearizable"],
  ["stocks: a timed-out buy seen later", stocks, [op("a", "buy", 3, [0, 1], "info"), op("b", "lookup", 7, [2, 3])], "linearizable"],
  ["stocks, unknown start: a lookup then consistent trades", stocksModel(), [op("a", "lookup", 5, [0, 1]), op("a", "buy", 5, [2, 3]), op("b", "buy", 1, [4, 5], "fail", { error: NOT_ENOUGH_STOCK }), op("b", "sell", 2, [6, 7]), op("a", "lookup", 2, [8, 9])], "linearizable"],
  ["stocks, unknown start: bounds from buys alone", stocksModel(), [op("a", "buy", 5, [0, 1]), op("b", "buy", 3, [2, 3], "fail", { error: NOT_ENOUGH_STOCK }), op("a", "lookup", 1, [4, 5])], "linearizable"],
  ["stocks, unknown start: a refusal contradicts an earlier success", stocksModel(), [op("a", "buy", 5, [0, 1]), op("a", "sell", 5, [2, 3]), op("b", "buy", 5, [4, 5], "fail", { error: NOT_ENOUGH_STOCK })], "not linearizable"],
  ["stocks, unknown start: a stale lookup", stocksModel(), [op("a", "lookup", 10, [0, 1]), op("a", "buy", 3, [2, 3]), op("b", "lookup", 10, [4, 5])], "not linearizable"],
  // ---- olympics tallies ----
  ["tallies: increments and reads", tallies0, [op("a", "increment", 1, [0, 1]), op("b", "read", 1, [2, 3]), op("a", "increment", 1, [4, 6]), op("b", "read", 1, [5, 7])], "linearizable"],
  ["tallies: a read ahead of the increments", tallies0, [op("a", "increment", 1, [0, 1]), op("b", "read", 2, [2, 3])], "not linearizable"],
  ["tallies: a read going backwards", tallies0, [op("a", "increment", 1, [0, 1]), op("a", "increment", 1, [2, 3]), op("b", "read", 2, [4, 5]), op("c", "read", 1, [6, 7])], "not linearizable"],
  ["tallies, unknown start: the first read fixes it", talliesModel(), [op("a", "increment", 1, [0, 1]), op("b", "read", 7, [2, 3]), op("a", "increment", 1, [4, 5]), op("b", "read", 8, [6, 7])], "linearizable"],
  ["tallies, unknown start: a later read disagrees", talliesModel(), [op("b", "read", 7, [0, 1]), op("a", "increment", 1, [2, 3]), op("b", "read", 7, [4, 5])], "not linearizable"],
  ["tallies, unknown start: a read below the increments seen", talliesModel(), [op("a", "increment", 1, [0, 1]), op("a", "increment", 1, [2, 3]), op("b", "read", 1, [4, 5])], "not linearizable"],
  // ---- bookstore (f names, value shapes and error texts as bookstore's clients record them) ----
  [
    "bookstore: buying the last copies, then unavailable",
    book2,
    [op("a", "buy", null, [0, 1]), op("b", "buy", null, [2, 3]), op("a", "buy", null, [4, 5], "fail", { error: ITEM_UNAVAILABLE }), op("b", "quantity", 0, [6, 7])],
    "linearizable",
  ],
  ["bookstore: unavailable while copies remain", book2, [op("a", "buy", null, [0, 1], "fail", { error: ITEM_UNAVAILABLE })], "not linearizable"],
  [
    "bookstore: update_quantity never below 0, update_cost seen by lookup",
    book2,
    [op("a", "update_quantity", -5, [0, 1], "fail", { error: QUANTITY_BELOW_ZERO }), op("a", "update_quantity", { delta: 3, quantity: 5 }, [2, 3]), op("b", "update_cost", 7, [4, 5]), op("a", "lookup", { quantity: 5, cost: 7 }, [6, 7])],
    "linearizable",
  ],
  ["bookstore: a refused update_quantity the stock could cover", book2, [op("a", "update_quantity", -2, [0, 1], "fail", { error: QUANTITY_BELOW_ZERO })], "not linearizable"],
  ["bookstore: an update_quantity whose reply reports a wrong quantity", book2, [op("a", "update_quantity", { delta: 3, quantity: 6 }, [0, 1])], "not linearizable"],
  ["bookstore: a 503 (definite) buy is ignored", book2, [op("a", "buy", null, [0, 1], "fail", { error: "no order server available" }), op("b", "quantity", 2, [2, 3])], "linearizable"],
  ["bookstore: a timed-out buy seen later", book2, [op("a", "buy", null, [0, 1], "info"), op("b", "quantity", 1, [2, 3])], "linearizable"],
  ["bookstore: a list's read of a book after a buy", book2, [op("a", "buy", null, [0, 1]), op("b", "list", { quantity: 1, cost: 5 }, [2, 3])], "linearizable"],
  ["bookstore: a stale list after a buy", book2, [op("a", "buy", null, [0, 1]), op("b", "list", { quantity: 2, cost: 5 }, [2, 3])], "not linearizable"],
  ["bookstore: a list that left a book out", book2, [op("b", "list", null, [0, 1])], "not linearizable"],
  ["bookstore: a stale cost", book2, [op("b", "update_cost", 7, [0, 1]), op("a", "lookup", { cost: 5 }, [2, 3])], "not linearizable"],
  ["bookstore: the write-up's books", bookstoreModel({ initial: bookstoreInitial }), [op("a", "quantity", 10, [0, 1], "ok", { key: "4" }), op("a", "lookup", { cost: 50, quantity: 100 }, [2, 3], "ok", { key: "1" })], "linearizable"],
  ["bookstore, unknown start: any first reads", bookstoreModel(), [op("a", "quantity", 37, [0, 1]), op("a", "lookup", { cost: 9, quantity: 37 }, [2, 3])], "linearizable"],
  [
    "bookstore, unknown start: reads, buys and a restock agree",
    bookstoreModel(),
    [op("a", "quantity", 2, [0, 1]), op("a", "buy", null, [2, 3]), op("b", "buy", null, [4, 5]), op("b", "buy", null, [6, 7], "fail", { error: ITEM_UNAVAILABLE }), op("a", "update_quantity", { delta: 4, quantity: 4 }, [8, 9]), op("b", "lookup", { quantity: 4, cost: 3 }, [10, 11])],
    "linearizable",
  ],
  ["bookstore, unknown start: bounds from buys and a refusal alone", bookstoreModel(), [op("a", "buy", null, [0, 1]), op("a", "buy", null, [2, 3], "fail", { error: ITEM_UNAVAILABLE }), op("b", "update_quantity", { delta: 2, quantity: 2 }, [4, 5])], "linearizable"],
  ["bookstore, unknown start: a stale quantity after an acknowledged buy (cache not invalidated)", bookstoreModel(), [op("a", "quantity", 7, [0, 1]), op("a", "buy", null, [2, 3]), op("b", "quantity", 7, [4, 5])], "not linearizable"],
  ["bookstore, unknown start: a read after a sell-out", bookstoreModel(), [op("a", "buy", null, [0, 1], "fail", { error: ITEM_UNAVAILABLE }), op("b", "quantity", 3, [2, 3])], "not linearizable"],
  ["bookstore, unknown start: a refused update_quantity then a read that could have covered it", bookstoreModel(), [op("a", "update_quantity", -3, [0, 1], "fail", { error: QUANTITY_BELOW_ZERO }), op("b", "quantity", 3, [2, 3])], "not linearizable"],
  ["bookstore, unknown start: the cost changes with no update_cost", bookstoreModel(), [op("a", "lookup", { cost: 9, quantity: 1 }, [0, 1]), op("b", "lookup", { cost: 8, quantity: 1 }, [2, 3])], "not linearizable"],
  ["bookstore, unknown start: the cost changes only by update_cost", bookstoreModel(), [op("a", "lookup", { cost: 9, quantity: 1 }, [0, 1]), op("a", "update_cost", 8, [2, 3]), op("b", "lookup", { cost: 8, quantity: 1 }, [4, 5])], "linearizable"],
  // ---- echo ----
  ["echo: replies carry their payloads", echoModel, [op("a", "echo", "p1", [0, 1], "ok", { sent: "p1" }), op("a", "echo", null, [2, 3], "info", { sent: "p2" })], "linearizable"],
  ["echo: a reply with another payload", echoModel, [op("a", "echo", "p2", [0, 1], "ok", { sent: "p1" })], "not linearizable"],
];

describe("linearizability checker", () => {
  test.each(rows)("%s", (_name, model, history, verdict) => {
    const r = checkLinearizable(history, model);
    expect(r.verdict).toBe(verdict);
    if (verdict === "not linearizable") {
      expect(r.failures.length).toBe(1);
      const f = r.failures[0]!;
      expect(f.window).toContain(f.stuck);
      expect(history).toContain(f.stuck);
    } else expect(r.failures).toEqual([]);
  });

  test("partitions by key and names the failing key with the state before its window", () => {
    const h = [
      op("a", "write", 1, [0, 1], "ok", { key: "x" }),
      op("b", "read", 1, [2, 3], "ok", { key: "x" }),
      op("a", "write", 5, [0, 1], "ok", { key: "y" }),
      op("a", "write", 6, [2, 3], "ok", { key: "y" }),
      op("b", "read", 5, [4, 5], "ok", { key: "y" }),
    ];
    const r = checkLinearizable(h, registerModel);
    expect(r.partitions).toBe(2);
    expect(r.failures.map((f) => f.key)).toEqual(["y"]);
    const f = r.failures[0]!;
    expect(f.stuck).toBe(h[4]!);
    expect(f.stateBefore).toBe("6");
    expect(f.linearized).toEqual([h[2]!, h[3]!]);
  });

  test("the window holds the operations the search could not order, not the whole history", () => {
    const h: Op[] = [];
    for (let i = 0; i < 50; i++) h.push(op("a", "write", i, [i * 10, i * 10 + 1]), op("b", "read", i, [i * 10 + 2, i * 10 + 3]));
    h.push(op("b", "read", 3, [600, 601]));
    const r = checkLinearizable(h, registerModel);
    expect(r.verdict).toBe("not linearizable");
    expect(r.failures[0]!.window).toEqual([h[100]!]);
    expect(r.failures[0]!.linearized.length).toBe(100);
    expect(r.failures[0]!.stateBefore).toBe("49");
  });

  test("large partitions (hashed visited sets) reach the same verdicts", () => {
    const h: Op[] = [];
    for (let i = 0; i < 1500; i++) h.push(op("a", "write", i, [i * 10, i * 10 + 6]), op(`r${i % 3}`, "read", i % 2 ? i : i - 1 < 0 ? null : i - 1, [i * 10 + 1, i * 10 + 2]));
    expect(h.length).toBeGreaterThan(32 * 64);
    expect(checkLinearizable(h, registerModel).verdict).toBe("linearizable");
    h.push(op("z", "read", 3, [20_000, 20_001]));
    const r = checkLinearizable(h, registerModel);
    expect(r.verdict).toBe("not linearizable");
    expect(r.failures[0]!.stateBefore).toBe("1499");
  });

  test("a search over its budget ends in unknown, not a hang", () => {
    // 60 concurrent writes and a read of a value never written: every subset of the writes is a state.
    const h: Op[] = Array.from({ length: 60 }, (_, i) => op(`p${i}`, "write", i, [0, 100]));
    h.push(op("r", "read", 999, [101, 102]));
    let t = 0;
    const r = checkLinearizable(h, registerModel, { budgetMs: 50, clock: () => t++ });
    expect(r.verdict).toBe("unknown");
    expect(r.unknown).toEqual(["x"]);
  });

  test("a step budget gives the same verdict and step count whatever the clock does (a busy machine)", () => {
    const h: Op[] = Array.from({ length: 60 }, (_, i) => op(`p${i}`, "write", i, [0, 100]));
    h.push(op("r", "read", 999, [101, 102]));
    let slow = 0;
    const quiet = checkLinearizable(h, registerModel, { maxSteps: 50_000 });
    const busy = checkLinearizable(h, registerModel, { maxSteps: 50_000, budgetMs: 1e12, clock: () => (slow += 1000) });
    expect(quiet.verdict).toBe("unknown");
    expect(busy.verdict).toBe("unknown");
    expect(busy.steps).toBe(quiet.steps);
    expect(quiet.steps).toBeGreaterThanOrEqual(50_000);
    expect(quiet.steps).toBeLessThan(50_000 + 1024 + 1);
  });

  test("memoisation keeps wide concurrency tractable", () => {
    // 200 concurrent increments then reads of the total: without memoisation this is 200! orders.
    const h: Op[] = Array.from({ length: 200 }, (_, i) => op(`p${i}`, "increment", 1, [0, 100]));
    h.push(op("r", "read", 200, [101, 102]));
    const r = checkLinearizable(h, tallies0, { budgetMs: 5000 });
    expect(r.verdict).toBe("linearizable");
  });
});

/** Linearizability by brute force: some order of the definite operations plus any subset of the info ones, respecting real time, that the model accepts. */
function bruteForce(history: Op[], model: Model<any>): boolean {
  const ops = history.filter((o) => o.type !== "fail" || model.observes?.(o));
  const end = (o: Op) => (o.type === "info" || o.completeMs === null ? Infinity : o.completeMs);
  const definite = ops.filter((o) => o.type !== "info").length;
  const used = new Set<Op>();
  const search = (state: unknown, placed: number): boolean => {
    if (placed === definite) return true;
    for (const o of ops) {
      if (used.has(o)) continue;
      // o may go next only if no unplaced operation returned before o was invoked (touching counts as concurrent).
      if (ops.some((p) => p !== o && !used.has(p) && p.type !== "info" && end(p) < o.invokeMs)) continue;
      const next = model.step(state, o);
      if (next === REJECT) continue;
      used.add(o);
      if (search(next, placed + (o.type === "info" ? 0 : 1))) return true;
      used.delete(o);
    }
    return false;
  };
  return search(model.init("x"), 0);
}

describe("the checker agrees with brute force on random small histories", () => {
  test("register and tallies, 400 histories of up to 7 operations with indefinite ones", () => {
    const rng = seededRandom(42, "brute");
    let nonLinearizable = 0;
    for (let round = 0; round < 400; round++) {
      const model = round % 2 ? registerModel : tallies0;
      const n = 1 + rng.int(7);
      const h: Op[] = [];
      for (let i = 0; i < n; i++) {
        const inv = rng.int(20);
        const type: OpType = rng.chance(0.2) ? "info" : "ok";
        const len = rng.int(8);
        const write = rng.chance(0.5);
        const f = model === registerModel ? (write ? "write" : "read") : write ? "increment" : "read";
        const value = model === registerModel ? (write ? 1 + rng.int(3) : rng.chance(0.2) ? null : 1 + rng.int(3)) : write ? 1 : rng.int(4);
        h.push(op(`p${i}`, f, value, type === "info" && rng.chance(0.5) ? [inv] : [inv, inv + len], type));
      }
      const want = bruteForce(h, model);
      const got = checkLinearizable(h, model).verdict;
      if (!want) nonLinearizable++;
      expect([round, got]).toEqual([round, want ? "linearizable" : "not linearizable"]);
    }
    // The generator makes both kinds.
    expect(nonLinearizable).toBeGreaterThan(50);
    expect(nonLinearizable).toBeLessThan(350);
  });
});

describe("interchangeable operations (a counter's increments)", () => {
  // The search alone: the counter bounds (refute) would settle some of these before it runs.
  const searchOnly: Model<any> = { ...tallies0, refute: undefined };

  test("the search agrees with brute force on 400 random histories of increments by 1 or 2, overlapping and indefinite", () => {
    const rng = seededRandom(7, "twins");
    let nonLinearizable = 0;
    for (let round = 0; round < 400; round++) {
      const n = 2 + rng.int(7);
      const h: Op[] = [];
      for (let i = 0; i < n; i++) {
        const inv = rng.int(12);
        const type: OpType = rng.chance(0.2) ? "info" : "ok";
        const inc = rng.chance(0.7);
        h.push(op(`p${i}`, inc ? "increment" : "read", inc ? 1 + rng.int(2) : rng.int(6), type === "info" && rng.chance(0.5) ? [inv] : [inv, inv + rng.int(10)], type));
      }
      const want = bruteForce(h, searchOnly);
      if (!want) nonLinearizable++;
      expect([round, checkLinearizable(h, searchOnly).verdict]).toEqual([round, want ? "linearizable" : "not linearizable"]);
    }
    expect(nonLinearizable).toBeGreaterThan(40);
    expect(nonLinearizable).toBeLessThan(360);
  });

  test("80 concurrent increments with reads among them check in a few thousand steps, and a read that lost one is caught", () => {
    // The shape of tiered olympics' burst: every increment in flight at once, returning in an order
    // unrelated to the one they were sent in, read while they land.
    const rng = seededRandom(3, "burst");
    const h: Op[] = [];
    const ends: number[] = [];
    for (let i = 0; i < 80; i++) {
      const end = 100 + rng.int(1000);
      ends.push(end);
      h.push(op(`burst-${i}`, "increment", 1, [rng.int(50), end]));
    }
    ends.sort((a, b) => a - b);
    // A read that starts just after the k-th increment returned and ends before the next one did sees k.
    for (const k of [10, 40, 70]) h.push(op(`reader-${k}`, "read", k, [ends[k - 1]! + 0.1, ends[k]! - 0.1]));
    const ok = checkLinearizable(h, searchOnly, { maxSteps: 200_000 });
    expect(ok.verdict).toBe("linearizable");
    const last = op("reader-end", "read", 79, [ends[79]! + 1, ends[79]! + 2]);
    expect(checkLinearizable([...h, last], searchOnly, { maxSteps: 200_000 }).verdict).toBe("not linearizable");
  });
});

