import { describe, expect, test } from "bun:test";
import { ChatLog } from "../src/workers/paxos/chat.ts";
import { PaxosCore, type CoreConfig, type DurableState, type Ready } from "../src/workers/paxos/core.ts";
import { parsePeerMsg, parseSlotList, opProblem, type Op, type PeerMsg, type Value } from "../src/workers/paxos/messages.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";

/**
 * The protocol core driven with no network at all: a test harness routes Ready messages by hand,
 * keeps each replica's "durable" state in a Map, and can drop messages or whole replicas.
 */
class Harness {
  cores: PaxosCore[] = [];
  durable: Array<{ promised: number; commit: number; slots: Map<number, [number, Value]> }> = [];
  executed: Array<Array<[number, Value]>> = [];
  queue: Array<{ from: number; to: number; msg: PeerMsg }> = [];
  down = new Set<number>();
  /** Drop messages between these pairs ("a>b"). */
  cut = new Set<string>();
  dropped: Op[][] = [];
  rng = seededRandom(7, "harness");

  constructor(
    readonly n: number,
    readonly over: Partial<CoreConfig> = {},
  ) {
    for (let i = 0; i < n; i++) {
      this.durable.push({ promised: 0, commit: 0, slots: new Map() });
      this.executed.push([]);
      this.dropped.push([]);
      this.cores.push(this.make(i, i === 0));
    }
    for (let i = 0; i < n; i++) this.apply(i, this.cores[i]!.start());
  }

  make(i: number, leadFirst: boolean): PaxosCore {
    const d = this.durable[i]!;
    const st: DurableState = {
      promised: d.promised,
      commit: d.commit,
      accepted: [...d.slots].filter(([s]) => s > d.commit).map(([s, [b, v]]) => [s, b, v] as [number, number, Value]),
    };
    const rng = seededRandom(11, `core-${i}-${this.cores.length}`);
    return new PaxosCore(
      { n: this.n, me: i, window: 4, maxBatch: 3, queueLimit: 100, heartbeatTicks: 2, electionTicks: 10, resendTicks: 3, skipSlots: [], leadFirst, random: () => rng.next(), ...this.over, ...(i === 0 ? {} : { skipSlots: [] }) },
      st,
    );
  }

  apply(i: number, r: Ready): void {
    const d = this.durable[i]!;
    if (r.promised !== null) d.promised = r.promised;
    for (const [s, b, v] of r.entries) d.slots.set(s, [b, v]);
    if (r.commit !== null) d.commit = r.commit;
    for (const m of r.messages) this.queue.push({ from: i, to: m.to, msg: m.msg });
    this.executed[i]!.push(...r.execute);
    this.dropped[i]!.push(...r.dropped);
  }

  deliver(max = 100_000): void {
    let steps = 0;
    while (this.queue.length > 0 && steps++ < max) {
      const { from, to, msg } = this.queue.shift()!;
      if (this.down.has(to) || this.down.has(from) || this.cut.has(`${from}>${to}`)) continue;
      if (msg.type === "fetch") {
        // The shell serves fetches from storage: chosen values only.
        const d = this.durable[to]!;
        const entries: Array<[number, Value]> = [];
        for (let s = msg.from; s <= Math.min(msg.to, d.commit); s++) entries.push([s, d.slots.get(s)![1]]);
        this.queue.push({ from: to, to: from, msg: { type: "fetched", entries, commit: d.commit } });
        continue;
      }
      this.apply(to, this.cores[to]!.receive(from, msg));
    }
  }

  tick(k = 1): void {
    for (let t = 0; t < k; t++) {
      for (let i = 0; i < this.n; i++) if (!this.down.has(i)) this.apply(i, this.cores[i]!.tick());
      this.deliver();
    }
  }

  submit(i: number, op: Op) {
    const r = this.cores[i]!.submit(op);
    this.apply(i, r.ready);
    return r.status;
  }

  crash(i: number): void {
    this.down.add(i);
  }
  restart(i: number): void {
    this.down.delete(i);
    this.cores[i] = this.make(i, false);
    // A restarted replica re-executes its durable chosen prefix (the shell replays it from storage).
    const d = this.durable[i]!;
    this.executed[i] = [];
    for (let s = 1; s <= d.commit; s++) this.executed[i]!.push([s, d.slots.get(s)![1]]);
  }

  leader(): number {
    return this.cores.findIndex((c, i) => !this.down.has(i) && c.role === "leader");
  }
}

let nextId = 0;
const op = (c = "c1", s = nextId, t = "hi"): Op => ({ id: `id-${nextId++}`, c, s, lw: 0, t });

function logsAgree(h: Harness): void {
  const logs = h.executed.filter((_, i) => !h.down.has(i));
  expect(logs.length).toBeGreaterThan(1);
  const min = Math.min(...logs.map((l) => l.length));
  expect(min).toBeGreaterThan(0);
  for (const l of logs) expect(JSON.stringify(l.slice(0, min))).toBe(JSON.stringify(logs[0]!.slice(0, min)));
  for (const l of logs) l.forEach(([s], k) => expect(s).toBe(k + 1));
}

describe("paxos core (no network)", () => {
  test("replica 0 leads first; ops are chosen in order and executed everywhere", () => {
    const h = new Harness(3);
    h.deliver();
    expect(h.cores[0]!.role).toBe("leader");
    expect(h.cores[1]!.promised).toBe(h.cores[0]!.ballot);
    for (let k = 0; k < 20; k++) expect(h.submit(0, op())).toBe("queued");
    h.deliver();
    h.tick(3); // heartbeats carry the commit index to followers
    expect(h.cores[0]!.commit).toBeGreaterThan(0);
    for (const c of h.cores) expect(c.commit).toBe(h.cores[0]!.commit);
    const ops = h.executed[0]!.flatMap(([, v]) => v ?? []);
    expect(ops.length).toBe(20);
    logsAgree(h);
  });

  test("an unanswered accept is resent after resendTicks, then with backoff (x2 up to x8)", () => {
    const h = new Harness(3, { resendTicks: 2, electionTicks: 100 });
    h.deliver();
    expect(h.cores[0]!.role).toBe("leader");
    h.cut.add("1>0").add("2>0"); // accepts arrive, no answer comes back
    h.submit(0, op());
    h.deliver();
    const resentAt: number[] = [];
    for (let t = 1; t <= 40; t++) {
      for (let i = 0; i < 3; i++) {
        const r = h.cores[i]!.tick();
        if (i === 0 && r.messages.some((m) => m.to === 1 && m.msg.type === "accept")) resentAt.push(t);
        h.apply(i, r);
      }
      h.deliver();
    }
    expect(resentAt).toEqual([2, 6, 14, 30]);
    // Once answers flow again, the slot is chosen and resends stop.
    h.cut.clear();
    h.tick(20);
    expect(h.cores[0]!.commit).toBe(1);
    expect(h.cores[0]!.inflightCount).toBe(0);
  });

  test("the window bounds slots in flight and batches the queue", () => {
    const h = new Harness(3);
    h.deliver();
    h.cut.add("1>0").add("2>0"); // no acks: nothing gets chosen
    for (let k = 0; k < 30; k++) h.submit(0, op());
    h.deliver();
    const c = h.cores[0]!;
    // Proposals go out at once while the window has room; the rest waits in the queue.
    expect(c.inflightCount).toBe(4);
    expect(c.queued).toBe(26);
    h.cut.clear();
    h.tick(30);
    expect(c.queued).toBe(0);
    expect(h.executed[0]!.flatMap(([, v]) => v ?? []).length).toBe(30);
    // The queued 26 went out in batches of at most 3.
    expect(h.executed[0]!.length).toBe(4 + Math.ceil(26 / 3));
    expect(Math.max(...h.executed[0]!.map(([, v]) => v!.length))).toBe(3);
  });

  test("followers refuse non-leaders and the client queue is bounded", () => {
    const h = new Harness(3, { queueLimit: 5 });
    h.deliver();
    expect(h.submit(1, op())).toBe("not_leader");
    h.cut.add("1>0").add("2>0");
    const statuses = Array.from({ length: 30 }, () => h.submit(0, op()));
    expect(statuses.filter((s) => s === "overloaded").length).toBeGreaterThan(0);
    expect(h.cores[0]!.queued).toBeLessThanOrEqual(5);
  });

  test("leader crash: a follower takes over, re-proposes accepted values, fills holes with no-ops", () => {
    const h = new Harness(3, { skipSlots: [2] });
    h.deliver();
    for (let k = 0; k < 6; k++) h.submit(0, op());
    h.deliver();
    // Slot 2 was skipped: slots 3.. are accepted by a majority but nothing past 1 is committed.
    expect(h.cores[0]!.commit).toBe(1);
    const acceptedAt3 = h.cores[1]!.acceptedAt(3);
    expect(acceptedAt3?.v?.length).toBeGreaterThan(0);
    h.crash(0);
    h.tick(40);
    const l = h.leader();
    expect(l).toBeGreaterThan(0);
    h.tick(5);
    const log = h.executed[l]!;
    expect(log.length).toBeGreaterThanOrEqual(3);
    expect(log[1]![1]).toBeNull(); // the hole became a no-op
    expect(JSON.stringify(log[2]![1])).toBe(JSON.stringify(acceptedAt3!.v)); // the accepted value survived
    logsAgree(h);
  });

  test("a value accepted by only a minority may be lost, but a chosen one never is", () => {
    const h = new Harness(5);
    h.deliver();
    // Cut replica 0 off from 3 and 4: slot values reach only {0,1,2} = a majority, so they are chosen.
    for (const p of [3, 4]) h.cut.add(`0>${p}`).add(`${p}>0`);
    for (let k = 0; k < 3; k++) h.submit(0, op());
    h.deliver();
    const chosen = h.executed[0]!.map(([s, v]) => [s, v]);
    expect(chosen.length).toBeGreaterThan(0);
    h.crash(0);
    h.crash(1); // 2, 3, 4 remain: only 2 saw the chosen values
    h.cut.clear();
    h.tick(80);
    const l = h.leader();
    expect([2, 3, 4]).toContain(l);
    h.tick(10);
    expect(JSON.stringify(h.executed[l]!.slice(0, chosen.length))).toBe(JSON.stringify(chosen));
    logsAgree(h);
  });

  test("restart from durable state keeps promises and the log, and catches up", () => {
    const h = new Harness(3);
    h.deliver();
    for (let k = 0; k < 10; k++) h.submit(0, op());
    h.deliver();
    h.tick(3);
    const promisedBefore = h.cores[2]!.promised;
    h.crash(2);
    for (let k = 0; k < 10; k++) h.submit(0, op());
    h.deliver();
    h.restart(2);
    expect(h.cores[2]!.promised).toBe(promisedBefore);
    expect(h.cores[2]!.commit).toBeGreaterThan(0);
    h.tick(10);
    expect(h.cores[2]!.commit).toBe(h.cores[0]!.commit);
    logsAgree(h);
    // A restarted ex-leader never reuses its old ballot.
    const old = h.cores[0]!.ballot;
    h.crash(0);
    h.restart(0);
    h.crash(1);
    h.crash(2);
    h.restart(1);
    h.restart(2);
    h.tick(60);
    const l = h.leader();
    expect(l).toBeGreaterThanOrEqual(0);
    expect(h.cores[l]!.ballot).toBeGreaterThan(old);
    logsAgree(h);
  });

  test("a replica that lost its state (memory storage) only learns: it never promises, accepts or campaigns", () => {
    const h = new Harness(3);
    h.deliver();
    for (let k = 0; k < 5; k++) h.submit(0, op());
    h.deliver();
    h.crash(2);
    h.durable[2] = { promised: 0, commit: 0, slots: new Map() };
    h.down.delete(2);
    const rng = seededRandom(3, "learner");
    h.cores[2] = new PaxosCore(
      { n: 3, me: 2, window: 4, maxBatch: 3, queueLimit: 100, heartbeatTicks: 2, electionTicks: 10, resendTicks: 3, skipSlots: [], leadFirst: false, voter: false, random: () => rng.next() },
      { promised: 0, commit: 0, accepted: [] },
    );
    h.executed[2] = [];
    const learner = h.cores[2]!;
    expect(learner.receive(1, { type: "prepare", b: 100, from: 1 }).messages).toEqual([]);
    expect(learner.receive(0, { type: "accept", b: h.cores[0]!.ballot, entries: [[1, null]], commit: 0 }).entries).toEqual([]);
    h.tick(10);
    expect(learner.commit).toBe(h.cores[0]!.commit); // caught up by fetching chosen values
    // With replica 0 down, only one voter is left: no leader (safety over liveness) until 0 returns with its disk.
    h.crash(0);
    h.tick(100);
    expect(learner.role).toBe("follower");
    expect(learner.elections).toBe(0);
    expect(h.leader()).toBe(-1);
    h.restart(0);
    h.tick(100);
    expect([0, 1]).toContain(h.leader());
    logsAgree(h);
  });

  test("an isolated old leader commits nothing, steps down, and rejoins", () => {
    const h = new Harness(3);
    h.deliver();
    for (let k = 0; k < 4; k++) h.submit(0, op());
    h.deliver();
    h.tick(2);
    const before = h.cores[0]!.commit;
    for (const p of [1, 2]) h.cut.add(`0>${p}`).add(`${p}>0`);
    for (let k = 0; k < 4; k++) h.submit(0, op("lost"));
    h.tick(60);
    expect(h.cores[0]!.commit).toBe(before);
    expect(h.cores[0]!.role).not.toBe("leader"); // it noticed it cannot hear a majority
    const l = h.leader();
    expect([1, 2]).toContain(l);
    for (let k = 0; k < 4; k++) h.submit(l, op("new"));
    h.tick(5);
    h.cut.clear();
    h.tick(60);
    logsAgree(h);
    expect(h.cores[0]!.commit).toBe(h.cores[l]!.commit);
  });

  test("stale or forged messages are ignored: lower ballots nacked, wrong leader counted", () => {
    const h = new Harness(3);
    h.deliver();
    const c1 = h.cores[1]!;
    const b = c1.promised;
    const r = c1.receive(2, { type: "prepare", b: 1, from: 1 });
    expect(r.messages[0]!.msg).toMatchObject({ type: "promise", ok: false, promised: b });
    const r2 = c1.receive(2, { type: "accept", b: b + 100 * 3, entries: [[1, null]], commit: 0 }); // ballot of replica 0 sent by 2
    expect(r2.entries.length).toBe(0);
    expect(c1.badMessages).toBe(1);
    c1.receive(1, { type: "heartbeat", b, commit: 0 }); // from itself
    c1.receive(9, { type: "heartbeat", b, commit: 0 }); // no such replica
    expect(c1.badMessages).toBe(3);
  });
});

describe("paxos message validation", () => {
  test("huge, negative, fractional and mistyped fields are refused", () => {
    expect(parsePeerMsg({ type: "prepare", b: 2 ** 60, from: 1 })).toBeNull();
    expect(parsePeerMsg({ type: "prepare", b: -1, from: 1 })).toBeNull();
    expect(parsePeerMsg({ type: "prepare", b: 1.5, from: 1 })).toBeNull();
    expect(parsePeerMsg({ type: "prepare", b: "3", from: 1 })).toBeNull();
    expect(parsePeerMsg({ type: "accept", b: 3, commit: 0, entries: [[0, null]] })).toBeNull();
    expect(parsePeerMsg({ type: "accept", b: 3, commit: 0, entries: [[1, [{ id: "x" }]]] })).toBeNull();
    expect(parsePeerMsg({ type: "accept", b: 3, commit: 0, entries: "no" })).toBeNull();
    expect(parsePeerMsg({ type: "nope" })).toBeNull();
    expect(parsePeerMsg({ type: "accept", b: 3, commit: 0, entries: [[1, null]] })).toEqual({ type: "accept", b: 3, commit: 0, entries: [[1, null]] });
    expect(opProblem({ id: "a", c: "c", s: 1, lw: 0, t: "x".repeat(5000) })).toContain("text");
    expect(opProblem({ id: "a", c: "c", s: 1, lw: 2, t: "" })).toContain("lw");
    expect(opProblem({ id: "a", c: "c", s: 1, lw: 0, t: "ok" })).toBeNull();
  });

  test("--skip-slots parsing", () => {
    expect(parseSlotList("5,3, 3")).toEqual([3, 5]);
    expect(parseSlotList("")).toEqual([]);
    expect(parseSlotList(4)).toEqual([4]);
    expect(() => parseSlotList("3,x")).toThrow(/not a slot/);
    expect(() => parseSlotList("0")).toThrow();
  });

  test("the chat log executes each (client, seq) once, whatever the retries", () => {
    const log = new ChatLog();
    const a: Op = { id: "a", c: "c1", s: 0, lw: 0, t: "x" };
    const b: Op = { id: "b", c: "c1", s: 1, lw: 1, t: "y" };
    expect(log.apply(1, [a, a]).executed.length).toBe(1);
    expect(log.apply(2, [b, a]).duplicates.map((o) => o.id)).toEqual(["a"]);
    expect(log.apply(3, null).noop).toBe(true);
    expect(log.apply(4, [b]).executed.length).toBe(0);
    expect(log.isDone("c1", 0)).toBe(true);
    expect(log.isDone("c1", 2)).toBe(false);
    expect(() => log.apply(9, null)).toThrow(/contiguous/);
    const again = new ChatLog();
    again.apply(1, [a, a]);
    again.apply(2, [b, a]);
    again.apply(3, null);
    again.apply(4, [b]);
    expect(again.hash).toBe(log.hash);
  });

  test("seqs executed out of order are each executed once; the low water and retries are honoured", () => {
    const log = new ChatLog();
    const op = (s: number, lw: number): Op => ({ id: `m${s}`, c: "c1", s, lw, t: "t" });
    expect(log.apply(1, [op(2, 0), op(0, 0), op(5, 0)]).executed.map((o) => o.s)).toEqual([2, 0, 5]);
    expect([0, 1, 2, 3, 4, 5, 6].map((s) => log.isDone("c1", s))).toEqual([true, false, true, false, false, true, false]);
    // 1 closes the gap up to 2; a retry of 2 or 5 is a duplicate; 3 still executes.
    const a = log.apply(2, [op(1, 0), op(2, 0), op(5, 0), op(3, 1)]);
    expect(a.executed.map((o) => o.s)).toEqual([1, 3]);
    expect(a.duplicates.map((o) => o.s)).toEqual([2, 5]);
    // A low water of 8: everything below is done (never sent again), whether it ran or not.
    expect(log.apply(3, [op(9, 8)]).executed.map((o) => o.s)).toEqual([9]);
    expect([4, 7, 8, 9, 10].map((s) => log.isDone("c1", s))).toEqual([true, true, false, true, false]);
    expect(log.apply(4, [op(8, 8), op(4, 8), op(10, 8)]).executed.map((o) => o.s)).toEqual([8, 10]);
    expect(log.opsExecuted).toBe(8);
    const probe = [0, 4, 6, 7, 8, 11].map((s) => op(s, 0));
    expect(log.notDone([...probe, { ...op(0, 0), c: "c2" }]).map((o) => `${o.c}:${o.s}`)).toEqual(["c1:11", "c2:0"]);
    expect(log.notDone(probe)).toEqual(probe.filter((o) => !log.isDone(o.c, o.s)));
    expect(log.dupsSkipped).toBe(3);
  });

  test("the chain hash covers every field of every op: logs that differ in client, seq or low water differ", () => {
    const base: Op = { id: "a", c: "c1", s: 3, lw: 1, t: "x" };
    const hashOf = (v: Op[]) => {
      const log = new ChatLog();
      log.apply(1, v);
      return log.hash;
    };
    const h = hashOf([base]);
    expect(hashOf([{ ...base }])).toBe(h);
    for (const other of [{ ...base, c: "c2" }, { ...base, s: 4 }, { ...base, lw: 2 }, { ...base, t: "y" }, { ...base, id: "b" }]) expect(hashOf([other])).not.toBe(h);
  });
});

describe("paxos value encoding", () => {
  test("a batch round-trips through its wire form; malformed wire values are refused", async () => {
    const { encodeValue, decodeValue } = await import("../src/workers/paxos/messages.ts");
    const v: Op[] = [
      { id: "a", c: "client-1", s: 0, lw: 0, t: "hello, world" },
      { id: "b", c: "client-2", s: 7, lw: 3, t: "" },
    ];
    const w = encodeValue(v);
    expect(typeof w).toBe("string");
    expect(decodeValue(w)).toEqual(v);
    // Messages cross threads as JSON text: the separators go through it as themselves, unescaped.
    expect(JSON.stringify(w)).toBe(`"${w}"`);
    expect(encodeValue(null)).toBeNull();
    expect(decodeValue(null)).toBeNull();
    for (const bad of ["", "x", 42, [v], "a\u009fc\u009f1\u009f0", "a\u009fc\u009fx\u009f0\u009ft", "a\u009fc\u009f1\u009f2\u009ft"]) expect(decodeValue(bad)).toBeUndefined();
    expect(opProblem({ id: "a", c: "c", s: 1, lw: 0, t: "sneaky\u009eseparator" })).toContain("U+009E");
    // Six fields, a trailing separator, an empty id or client, a sign, too many digits, a leading zero
    // (one value, one spelling: the chain hash covers the encoding), a text too long.
    for (const bad of ["a\u009fc\u009f1\u009f0\u009ft\u009fx", w + "\u009e", "\u009fc\u009f1\u009f0\u009ft", "a\u009f\u009f1\u009f0\u009ft", "a\u009fc\u009f-1\u009f0\u009ft", "a\u009fc\u009f1\u009f+0\u009ft", "a\u009fc\u009f12345678901234567\u009f0\u009ft", "a\u009fc\u009f01\u009f0\u009ft", "a\u009fc\u009f1\u009f00\u009ft", "a\u009fc\u009f1\u009f0\u009f" + "t".repeat(1025)])
      expect(decodeValue(bad)).toBeUndefined();
  });

  test("a slot stored with the earlier separators (U+001E/U+001F) reads as the same ops; one whose text holds today's separators is not guessed at", async () => {
    const { encodeValue, decodeValue, fromLegacySeparators } = await import("../src/workers/paxos/messages.ts");
    const v: Op[] = [
      { id: "a", c: "client-1", s: 0, lw: 0, t: "hello" },
      { id: "b", c: "client-2", s: 7, lw: 3, t: "" },
    ];
    const legacy = v.map((op) => [op.id, op.c, op.s, op.lw, op.t].join("\u001f")).join("\u001e");
    expect(decodeValue(legacy)).toBeUndefined();
    expect(fromLegacySeparators(legacy)).toBe(encodeValue(v)!);
    expect(decodeValue(fromLegacySeparators(legacy))).toEqual(v);
    expect(fromLegacySeparators(legacy.replace("hello", "he\u009ello"))).toBeUndefined();
    expect(fromLegacySeparators(encodeValue(v))).toBeUndefined();
    expect(fromLegacySeparators(null)).toBeUndefined();
  });

  test("a slot made of decoded client batches (whole, cut, or mixed with other ops) encodes as if op by op", async () => {
    const { encodeValue, decodeValue } = await import("../src/workers/paxos/messages.ts");
    const mk = (c: string, from: number, n: number): Op[] => Array.from({ length: n }, (_, i) => ({ id: `${c}-${from + i}`, c, s: from + i, lw: from, t: `text ${from + i}` }));
    const byHand = (v: Op[]) => v.map((op) => [op.id, op.c, op.s, op.lw, op.t].join("\u009f")).join("\u009e");
    const a = decodeValue(encodeValue(mk("client-1", 0, 3)))!;
    const b = decodeValue(encodeValue(mk("client-2", 5, 2)))!;
    const loose = mk("client-3", 9, 1);
    for (const slot of [[...a, ...b], [...b, ...a], a.slice(1), [...a.slice(0, 2), ...b], [...loose, ...a, ...loose, ...b.slice(0, 1)], [...a]]) {
      expect(encodeValue(slot)).toBe(byHand(slot));
      expect(decodeValue(encodeValue(slot))).toEqual(slot);
    }
  });
});

describe("client seq runs", () => {
  test("the low water is the smallest seq of a run still open, whatever order the runs are acknowledged in", async () => {
    const { SeqRuns } = await import("../src/workers/paxos/client.ts");
    const r = new SeqRuns();
    expect(r.lowWater()).toBe(0);
    const a = r.take(4);
    const b = r.take(4);
    const c = r.take(1);
    expect([a, b, c, r.next]).toEqual([0, 4, 8, 9]);
    expect(r.lowWater()).toBe(0);
    r.done(b); // acknowledged out of order: the low water stays below run a
    expect(r.lowWater()).toBe(0);
    r.done(a); // now past a and b, up to c
    expect(r.lowWater()).toBe(8);
    const d = r.take(3);
    r.done(d);
    expect(r.lowWater()).toBe(8);
    r.done(c);
    expect(r.lowWater()).toBe(12);
    expect(() => r.done(c)).toThrow(/run 8 is open/);
    expect(() => r.take(0)).toThrow(/a run of 0 seqs/);
  });
});
