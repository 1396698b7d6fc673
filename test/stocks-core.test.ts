import { describe, expect, test } from "bun:test";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { ErrorCode, RpcError, type Body } from "../src/workers/runtime/types.ts";
import { OrderCore, type Ready, type Result } from "../src/workers/stocks/core.ts";
import type { Order, TradeRecord } from "../src/workers/stocks/messages.ts";

/**
 * The order replica's core driven with no network: a harness routes each Ready by hand (1 ms per
 * hop, in a seeded order), keeps each replica's "durable" state as the shell would write it, plays
 * the catalog (trades, the unlogged list, logged, reopen), and can cut links, hold replies or crash
 * replicas.
 */
const R = ["order-1", "order-2", "order-3"];
const TICK = 25;
const START = 1_000_000;

interface Durable {
  epoch: number;
  orders: Order[];
  dropped: Map<string, TradeRecord>;
}

type Event = { at: number; seq: number; fn: () => void };

class Harness {
  now = START;
  cores = new Map<string, OrderCore>();
  durable = new Map<string, Durable>();
  down = new Set<string>();
  /** Messages between these pairs ("a>b") are lost. */
  cut = new Set<string>();
  /** While set, the catalog's replies to trades are held and released by `release`. */
  holdTrades = false;
  held: Array<() => void> = [];
  answers = new Map<number, Body | RpcError>();
  catalog = { quantity: new Map<string, number>(), applied: new Set<string>(), unlogged: new Map<string, TradeRecord>() };
  private events: Event[] = [];
  private seq = 0;
  private nextAsk = 0;
  private rng = seededRandom(5, "harness");

  constructor() {
    for (const id of R) {
      this.durable.set(id, { epoch: 0, orders: [], dropped: new Map() });
      this.boot(id);
    }
  }

  boot(id: string): void {
    const d = this.durable.get(id)!;
    const core = new OrderCore({ me: id, replicas: R, catalog: "catalog" }, { epoch: d.epoch, orders: [...d.orders], dropped: [...d.dropped.values()] });
    this.cores.set(id, core);
    this.down.delete(id);
    this.apply(id, core.start(this.now));
  }

  crash(id: string): void {
    this.down.add(id);
    this.cores.delete(id);
  }

  linked(a: string, b: string): boolean {
    return !this.down.has(a) && !this.down.has(b) && !this.cut.has(`${a}>${b}`) && !this.cut.has(`${b}>${a}`);
  }

  isolate(id: string, from: string[]): void {
    for (const o of from) this.cut.add(`${id}>${o}`);
  }

  at(delay: number, fn: () => void): void {
    // Same-time events run in a seeded order: the schedule varies, the run replays.
    this.events.push({ at: this.now + delay, seq: this.rng.next(), fn });
  }

  /** What the shell does with a Ready: persist first, then send, request and answer. */
  apply(id: string, r: Ready): void {
    const d = this.durable.get(id)!;
    if (r.epoch !== null) d.epoch = r.epoch;
    for (const w of r.writes) {
      if (w.kind === "truncate") d.orders.splice(w.from);
      else if (w.kind === "put") {
        expect(w.order.number).toBe(d.orders.length);
        d.orders.push(w.order);
      } else if (w.kind === "drop") d.dropped.set(w.trade.requestId, w.trade);
      else d.dropped.delete(w.requestId);
    }
    const inc = this.cores.get(id);
    for (const s of r.sends) this.deliver(id, s.to, s.body, () => {});
    for (const q of r.requests) {
      let done = false;
      const finish = (res: Result) => {
        if (done || this.cores.get(id) !== inc || this.down.has(id)) return;
        done = true;
        this.apply(id, inc!.result(this.now, q.id, res));
      };
      this.at(q.timeoutMs, () => finish({ ok: false, error: new RpcError(ErrorCode.Timeout, "timeout") }));
      this.deliver(id, q.to, q.body, finish);
    }
    for (const a of r.answers) {
      const back = this.pendingAnswers.get(a.ref);
      if (!back) continue;
      this.pendingAnswers.delete(a.ref);
      back("error" in a ? { ok: false, error: a.error } : { ok: true, body: a.body });
    }
  }

  private pendingAnswers = new Map<number, (r: Result) => void>();
  private nextRef = 0;

  /** Sends `body` from `from` to `to` (a replica or the catalog); the reply comes back through `reply`. */
  deliver(from: string, to: string, body: Body, reply: (r: Result) => void): void {
    if (!this.linked(from, to)) return;
    this.at(1, () => {
      if (!this.linked(from, to)) return;
      const back = (r: Result) => this.at(1, () => this.linked(from, to) && reply(r));
      if (to === "catalog") return this.catalogReceive(body, back);
      const core = this.cores.get(to)!;
      const ref = this.nextRef++;
      this.pendingAnswers.set(ref, back);
      this.apply(to, core.receive(this.now, ref, from, body));
    });
  }

  /** The catalog, reduced to what the order path needs. */
  catalogReceive(body: Body, reply: (r: Result) => void): void {
    const c = this.catalog;
    const b = body as any;
    switch (body.type) {
      case "trade": {
        if (!c.applied.has(b.requestId)) {
          const q = (c.quantity.get(b.name) ?? 1000) + (b.tradeType === "sell" ? b.quantity : -b.quantity);
          if (q < 0) return reply({ ok: false, error: new RpcError(ErrorCode.PreconditionFailed, "not enough stock") });
          c.quantity.set(b.name, q);
          c.applied.add(b.requestId);
          c.unlogged.set(b.requestId, { requestId: b.requestId, name: b.name, tradeType: b.tradeType, quantity: b.quantity });
        }
        const ok = () => reply({ ok: true, body: { type: "trade_ok", stock: { name: b.name, price: 1, quantity: c.quantity.get(b.name)! }, version: 1 } });
        if (this.holdTrades) this.held.push(ok);
        else ok();
        return;
      }
      case "unlogged":
        return reply({ ok: true, body: { type: "unlogged_ok", trades: [...c.unlogged.values()].slice(0, 256), total: c.unlogged.size } });
      case "logged":
        for (const id of b.requestIds) c.unlogged.delete(id);
        return;
      case "reopen":
        for (const t of b.trades) c.unlogged.set(t.requestId, t);
        return reply({ ok: true, body: { type: "reopen_ok" } });
    }
  }

  /** The test plays the front end: ask `to` and keep the answer under the returned key. */
  ask(to: string, body: Body, from = "frontend"): number {
    const k = this.nextAsk++;
    this.deliver(from, to, body, (r) => this.answers.set(k, r.ok ? r.body : r.error));
    return k;
  }

  run(ms: number): void {
    const end = this.now + ms;
    let nextTick = this.now - (this.now % TICK) + TICK;
    for (;;) {
      this.events.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const ev = this.events[0];
      const t = Math.min(ev?.at ?? Infinity, nextTick);
      if (t > end) break;
      this.now = t;
      if (ev && ev.at === t) {
        this.events.shift();
        ev.fn();
      } else {
        nextTick += TICK;
        for (const [id, core] of this.cores) if (!this.down.has(id)) this.apply(id, core.tick(this.now));
      }
    }
    this.now = end;
  }

  release(): void {
    const h = this.held;
    this.held = [];
    for (const f of h) f();
  }

  /** Quantities the given log implies. */
  implied(orders: readonly Order[]): Map<string, number> {
    const q = new Map<string, number>();
    for (const o of orders) q.set(o.name, (q.get(o.name) ?? 1000) + (o.type === "sell" ? o.quantity : -o.quantity));
    return q;
  }

  digests(): string[] {
    return R.filter((id) => !this.down.has(id)).map((id) => this.cores.get(id)!.inspect().digest);
  }
}

const numberOf = (v: Body | RpcError | undefined) => (v as unknown as { number: number }).number;
const order = (i: number) => ({ type: "place_order", requestId: `req-${i}`, name: ["meta", "nike", "amc"][i % 3]!, tradeType: i % 2 ? "buy" : "sell", quantity: 1 + (i % 4) });

function elect(h: Harness, leader: string, epoch: number): void {
  const k = h.ask(leader, { type: "set_leader", leader, epoch });
  for (const r of R) if (r !== leader) h.ask(r, { type: "set_leader", leader, epoch });
  h.run(1500);
  expect(h.answers.get(k)).toEqual({ type: "set_leader_ok" });
  expect(h.cores.get(leader)!.state).toBe("leader");
}

/** Every live log equal, every trade the catalog applied logged exactly once, nothing left open. */
function expectConsistent(h: Harness): Order[] {
  expect(new Set(h.digests()).size).toBe(1);
  const log = h.durable.get(R.find((id) => !h.down.has(id))!)!.orders;
  expect(new Set(log.map((o) => o.requestId)).size).toBe(log.length);
  expect(new Set(log.map((o) => o.requestId))).toEqual(h.catalog.applied);
  expect(h.implied(log)).toEqual(h.catalog.quantity);
  expect(h.catalog.unlogged.size).toBe(0);
  for (const id of R) if (!h.down.has(id)) expect(h.cores.get(id)!.inspect().dropped).toBe(0);
  return log;
}

describe("order replica core (no network)", () => {
  test("boots, follows a named leader, replicates every order, and persists before it sends", () => {
    const h = new Harness();
    h.run(1200);
    for (const id of R) expect(h.cores.get(id)!.state).toBe("follower");
    elect(h, "order-3", 1);
    const keys = Array.from({ length: 20 }, (_, i) => h.ask("order-3", order(i)));
    h.run(1000);
    const numbers = keys.map((k) => numberOf(h.answers.get(k))).sort((a, b) => a - b);
    expect(numbers).toEqual([...Array(20).keys()]);
    const log = expectConsistent(h);
    expect(log.length).toBe(20);
    for (const id of R) expect(h.durable.get(id)!.orders).toEqual(log);
    // A retry (same request id) is answered with the same number and logs nothing new.
    const again = h.ask("order-3", order(7));
    h.run(200);
    expect(numberOf(h.answers.get(again))).toBe(numberOf(h.answers.get(keys[7]!)));
    expect(h.durable.get("order-3")!.orders.length).toBe(20);
  });

  test("a Ready that sends an order to followers also carries its write: durable before it leaves", () => {
    const core = new OrderCore({ me: "order-1", replicas: ["order-1"], catalog: "catalog" }, { epoch: 0, orders: [], dropped: [] });
    let r = core.start(0);
    expect(core.state).toBe("follower");
    r = core.receive(1, 0, "frontend", { type: "set_leader", leader: "order-1", epoch: 1 });
    expect(r.answers).toEqual([{ ref: 0, body: { type: "set_leader_ok" } }]);
    expect(r.epoch).toBe(1);
    r = core.receive(2, 1, "frontend", order(0));
    const trade = r.requests.find((q) => q.to === "catalog" && q.body.type === "trade")!;
    expect(r.writes).toEqual([]); // nothing is logged before the catalog applied the trade
    r = core.result(3, trade.id, { ok: true, body: { type: "trade_ok", stock: { name: "meta", price: 1, quantity: 1001 }, version: 4 } });
    expect(r.writes).toEqual([{ kind: "put", order: { number: 0, name: "meta", type: "sell", quantity: 1, requestId: "req-0", epoch: 1 } }]);
    expect(r.answers).toEqual([{ ref: 1, body: { type: "place_order_ok", number: 0, version: 4 } }]);
    // A catalog refusal passes through and logs nothing.
    r = core.receive(4, 2, "frontend", { ...order(1), requestId: "req-x" });
    const t2 = r.requests.find((q) => q.body.type === "trade")!;
    r = core.result(5, t2.id, { ok: false, error: new RpcError(ErrorCode.PreconditionFailed, "not enough stock") });
    expect(r.writes).toEqual([]);
    expect(r.answers[0]).toMatchObject({ ref: 2, error: { code: ErrorCode.PreconditionFailed } });
  });

  test.each([
    ["the catalog's reply arrives after the new leader took over", 100, "not the leader"],
    ["the catalog's reply is lost (the leader times out)", 1500, "catalog unavailable"],
  ])("a leader deposed after the catalog applied its trade, %s: the next leader logs the trade", (_, electMs, error) => {
    const h = new Harness();
    h.run(1200);
    elect(h, "order-3", 1);
    h.holdTrades = true;
    const k = h.ask("order-3", order(1));
    h.run(50);
    expect(h.catalog.applied.has("req-1")).toBe(true);
    // The front end restarts and names order-2 under a new epoch while the catalog's reply is held.
    for (const r of R) h.ask(r, { type: "set_leader", leader: "order-2", epoch: 2 });
    h.run(electMs as number);
    expect(h.cores.get("order-2")!.state).toBe("leader");
    expect(h.cores.get("order-3")!.state).toBe("follower");
    h.holdTrades = false;
    h.release();
    h.run(100);
    // The old leader gives up on it (it never logs under a stale epoch), and nobody will retry it...
    expect(h.answers.get(k)).toMatchObject({ code: ErrorCode.TemporarilyUnavailable, text: error });
    // ...so the new leader's sweep logs it from the catalog's unlogged list.
    h.run(1000);
    const log = expectConsistent(h);
    expect(log.map((o) => [o.requestId, o.epoch])).toEqual([["req-1", 2]]);
  });

  test("a stale leader's tail, acknowledged by no majority, is dropped and its trades are logged again", () => {
    const h = new Harness();
    h.run(1200);
    elect(h, "order-3", 1);
    for (let i = 0; i < 3; i++) h.ask("order-3", order(i));
    h.run(300);
    // order-3 loses its followers; it still reaches the front end and the catalog, marks them down
    // after a few misses and goes on logging alone.
    h.isolate("order-3", ["order-1", "order-2"]);
    for (let i = 3; i < 8; i++) h.ask("order-3", order(i));
    h.run(1500);
    expect(h.durable.get("order-3")!.orders.length).toBe(8);
    expect(h.durable.get("order-2")!.orders.length).toBe(3);
    // The front end moves to order-2 (epoch 2), which cannot see order-3's tail, and trades go on.
    h.isolate("frontend", ["order-3"]);
    elect(h, "order-2", 2);
    for (let i = 8; i < 12; i++) h.ask("order-2", order(i));
    h.run(500);
    // Heal: order-3 follows order-2, drops its stale tail and hands those trades back.
    h.cut.clear();
    h.run(3000);
    expect(h.cores.get("order-3")!.state).toBe("follower");
    const log = expectConsistent(h);
    expect(log.length).toBe(12);
    expect(log.filter((o) => o.epoch === 2).map((o) => o.requestId).sort()).toEqual(["req-10", "req-11", "req-3", "req-4", "req-5", "req-6", "req-7", "req-8", "req-9"].sort());
  });

  test.each([1, 2, 3, 4, 5])("crashes of leader and followers in turn under load: consistent at the end (seed %d)", (seed) => {
    const h = new Harness();
    const rng = seededRandom(seed, "schedule");
    h.run(1200);
    let epoch = 1;
    elect(h, "order-3", epoch);
    let leader = "order-3";
    let i = 0;
    for (let round = 0; round < 6; round++) {
      for (let j = 0; j < 10; j++) h.ask(leader, order(i++));
      h.run(rng.int(40));
      const victim = R[rng.int(3)]!;
      h.crash(victim);
      h.run(200 + rng.int(300));
      h.boot(victim);
      h.run(1200);
      leader = R.filter((r) => r !== victim || rng.chance(0.5)).at(-1)!;
      elect(h, leader, ++epoch);
    }
    h.run(2000);
    const log = expectConsistent(h);
    expect(log.length).toBeGreaterThan(20);
    // Storage survives a restart of everyone: the rebuilt cores hold the same logs.
    for (const id of R) h.crash(id);
    for (const id of R) h.boot(id);
    h.run(1500);
    expect(new Set(h.digests()).size).toBe(1);
    expect(h.cores.get("order-1")!.inspect().last).toBe(log.length - 1);
  });

  test("bad requests get errors and change nothing; assertions guard the log", () => {
    const h = new Harness();
    h.run(1200);
    elect(h, "order-2", 1);
    h.ask("order-2", order(0));
    h.run(300);
    const before = h.digests();
    const bad: Body[] = [
      { type: "append", epoch: 1, prev: 0, prevEpoch: 1, entries: [{ number: 1, name: "meta", type: "buy", quantity: 1, requestId: "z", epoch: 9 }], leaderLast: 1 },
      { type: "append", epoch: "x" },
      { type: "set_leader", leader: "nobody", epoch: 5 },
      { type: "set_leader", leader: "order-1", epoch: 0 },
      { type: "log_tail", after: -5, limit: 1 },
      { type: "place_order", requestId: "", name: "meta", tradeType: "buy", quantity: 1 },
      { type: "place_order", requestId: "q", name: "meta", tradeType: "buy", quantity: 1.5 },
      { type: "no_such_thing" },
    ];
    const keys = bad.map((b) => h.ask("order-1", b));
    h.run(100);
    for (const k of keys) expect(h.answers.get(k)).toBeInstanceOf(RpcError);
    expect(h.digests()).toEqual(before);
    // A stored log whose numbers are not consecutive is refused at start.
    expect(() => new OrderCore({ me: "order-1", replicas: R, catalog: "catalog" }, { epoch: 1, orders: [{ number: 1, name: "a", type: "buy", quantity: 1, requestId: "a", epoch: 1 }], dropped: [] })).toThrow(/assertion/);
    // Time never goes back.
    const core = h.cores.get("order-1")!;
    expect(() => core.tick(h.now - 10)).toThrow(/time went back/);
  });
});
