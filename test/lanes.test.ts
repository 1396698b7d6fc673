import { describe, expect, setDefaultTimeout, test } from "bun:test";
import type { ThreadCluster } from "../src/main/supervisor.ts";
import { WorkerLanes, type LanePeer, type LaneTarget } from "../src/workers/runtime/lanes.ts";
import { Limits } from "../src/workers/runtime/limits.ts";
import { Links } from "../src/workers/runtime/links.ts";
import { SharedBody } from "../src/workers/runtime/port-codec.ts";
import type { Message, NodeId } from "../src/workers/runtime/types.ts";
import { tempDirs, withThreads } from "./helpers.ts";

/**
 * Lanes: with packed threads, one MessageChannel per pair of threads carries their nodes' messages,
 * a turn's worth per post. First two "threads" on this one (each end of a channel held here), then
 * a packed cluster on real worker threads.
 */

setDefaultTimeout(60_000);

class Target implements LaneTarget {
  readonly got: Message[] = [];
  refused = 0;
  throws = false;
  constructor(public incarnation: number) {}
  receive(msg: Message): void {
    if (this.throws) throw new Error("deliberate");
    this.got.push(msg);
  }
  refuseFromLane(): void {
    this.refused++;
  }
}

const PLACEMENT: Readonly<Record<NodeId, LanePeer>> = { a1: { group: 0, incarnation: 0, up: true }, b1: { group: 1, incarnation: 0, up: true }, b2: { group: 1, incarnation: 0, up: true } };

/** Thread 0 holds a1, thread 1 holds b1 and b2; each node of thread 0 sends through its own Links, as in a worker. */
function pair() {
  const placement = PLACEMENT;
  const targets = new Map<NodeId, Target>([
    ["b1", new Target(0)],
    ["b2", new Target(0)],
  ]);
  const a = new WorkerLanes(() => undefined);
  const b = new WorkerLanes((id) => targets.get(id));
  const ch = new MessageChannel();
  a.connect(0, 1, ch.port1, placement);
  b.connect(1, 0, ch.port2, placement);
  const links = (id: NodeId, incarnation: number) =>
    new Links({
      id,
      packed: { lanes: a, incarnation },
      grant: () => Promise.reject(new Error("a lane peer is never asked for a link")),
      colocated: () => undefined,
      receive: () => {},
      wireFrame: () => {},
      wire: null,
      now: () => performance.now(),
    });
  return { a, b, targets, port: ch.port1, links, close: () => (ch.port1.close(), ch.port2.close()) };
}

const settle = () => Bun.sleep(20);
/** A sendMany from a1 as NodeRuntime makes it: `list` is the same array each time its recipients are the same. */
function fanOut(a1: Links, list: readonly NodeId[], body: Message["body"]): void {
  const shared = new SharedBody(body);
  a1.postMany("a1", list, body, shared);
  shared.flushLocal();
}
const count = (seq: number, extra: Record<string, unknown> = {}): Message => ({ src: "a1", dest: "b1", body: { type: "count", seq, ...extra } });

describe("lanes between two threads", () => {
  test("FIFO per pair across JSON runs, entries posted as objects and batches cut at the bound", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const n = Limits.maxLaneBatch * 2 + 100;
    // Every 7th carries a NaN: posted as the entry itself, between two JSON runs.
    for (let i = 0; i < n; i++) a1.post(count(i, i % 7 === 0 ? { nan: NaN } : {}));
    a1.post({ src: "a1", dest: "b2", body: { type: "count", seq: 0 } });
    await settle();
    const got = p.targets.get("b1")!.got;
    expect(got.map((m) => m.body.seq)).toEqual(Array.from({ length: n }, (_, i) => i));
    expect(Number.isNaN(got[7]!.body.nan)).toBe(true);
    expect(p.targets.get("b2")!.got.length).toBe(1);
    expect([p.b.refused, a1.dropped, p.targets.get("b1")!.refused]).toEqual([0, 0, 0]);
    p.close();
  });

  test("what arrives is the message as it was sent, though the batch is posted later", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const asText = { type: "count", seq: 1, list: [1] };
    const asObject = { type: "count", seq: 2, list: [1], nan: NaN };
    a1.post({ src: "a1", dest: "b1", body: asText });
    a1.post({ src: "a1", dest: "b1", body: asObject });
    asText.list.push(2);
    asObject.list.push(2);
    await settle();
    expect(p.targets.get("b1")!.got.map((m) => m.body.list)).toEqual([[1], [1]]);
    p.close();
  });

  test("an entry for an incarnation other than the one hosted is refused and counted; it flows once the sender knows the new one", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const b1 = p.targets.get("b1")!;
    b1.incarnation = 1; // b1 restarted; thread 0 has not heard yet
    a1.post(count(1));
    await settle();
    expect([b1.got.length, b1.refused]).toEqual([0, 1]);
    p.a.peerUp("b1", 1);
    a1.post(count(2));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([2]);
    p.close();
  });

  test("a node known down is dropped at send, until a newer incarnation is up", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const b1 = p.targets.get("b1")!;
    p.a.peerDown("b1", 0);
    a1.post(count(1));
    await settle();
    expect([a1.dropped, b1.got.length, b1.refused]).toEqual([1, 0, 0]);
    p.a.peerDown("b1", 0); // a stale down changes nothing
    p.a.peerUp("b1", 0); // nor does an up for the incarnation that died
    a1.post(count(2));
    expect(a1.dropped).toBe(2);
    b1.incarnation = 1;
    p.a.peerUp("b1", 1);
    a1.post(count(3));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([3]);
    p.close();
  });

  test("a newer sender incarnation announces itself; entries from the one before it are then refused", async () => {
    const p = pair();
    const old = p.links("a1", 0);
    const fresh = p.links("a1", 1);
    const b1 = p.targets.get("b1")!;
    fresh.post(count(1));
    await settle();
    old.post(count(2));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1]);
    expect(b1.refused).toBe(1);
    p.close();
  });

  test("a fan-out is one multicast entry per lane: the body once, each destination its own copy, in order and in its place", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const posted: unknown[] = [];
    const post = p.port.postMessage.bind(p.port);
    p.port.postMessage = (d: unknown) => (posted.push(d), post(d));
    a1.post(count(1));
    const body = { type: "count", seq: 2, marker: "only-once", nested: { n: 1 } };
    const shared = new SharedBody(body);
    for (const dest of ["b1", "b2", "b1"]) a1.post({ src: "a1", dest, body }, shared);
    shared.flushLocal();
    body.nested.n = 99; // after the call: every recipient has the body as it was sent
    a1.post(count(3));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 2, 2, 3]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([2]);
    const copies = [b1.got[1]!, b1.got[2]!, b2.got[0]!];
    expect(copies.map((m) => [m.src, m.dest, (m.body.nested as { n: number }).n])).toEqual([["a1", "b1", 1], ["a1", "b1", 1], ["a1", "b2", 1]]);
    expect(new Set(copies.map((m) => m.body)).size).toBe(3);
    expect(new Set(copies.map((m) => m.body.nested)).size).toBe(3);
    expect(JSON.stringify(posted).split("only-once").length - 1).toBe(1);
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([0, 0, 0]);
    p.close();
  });

  test("a whole fan-out posts the other thread's share before it looks at its own thread's recipients; one known down is dropped and counted", async () => {
    const p = pair();
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const order: string[] = [];
    const post = p.port.postMessage.bind(p.port);
    p.port.postMessage = (d: unknown) => (order.push("lane"), post(d));
    const near: Message[] = [];
    const a1 = new Links({
      id: "a1",
      packed: { lanes: p.a, incarnation: 0 },
      grant: () => Promise.reject(new Error("no links here")),
      colocated: (dest) => (dest === "a2" ? (order.push("a2"), (m: Message) => void near.push(m)) : undefined),
      receive: () => {},
      wireFrame: () => {},
      wire: null,
      now: () => performance.now(),
    });
    p.a.peerDown("b2", 0);
    const body = { type: "count", seq: 1, nested: { n: 1 } };
    const shared = new SharedBody(body);
    a1.postMany("a1", ["a2", "b1", "b2", "a2", "b1"], body, shared);
    shared.flushLocal();
    body.nested.n = 9; // after the call
    expect(order).toEqual(["lane", "a2", "a2"]);
    expect(a1.dropped).toBe(1);
    await settle();
    const seen = (ms: Message[]) => ms.map((m) => [m.dest, (m.body.nested as { n: number }).n]);
    expect(seen(b1.got)).toEqual([["b1", 1], ["b1", 1]]);
    expect(seen(near)).toEqual([["a2", 1], ["a2", 1]]);
    expect([b2.got.length, p.b.refused]).toEqual([0, 0]);
    p.close();
  });

  test("a list fanned out to again is planned again when a recipient's state changes: one gone down is dropped, its next incarnation gets the copy", async () => {
    const p = pair();
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const a1 = p.links("a1", 0);
    // The same array every time, as NodeRuntime hands a remembered list down.
    const list = ["b1", "b2"];
    const send = (seq: number) => {
      const body = { type: "count", seq };
      const shared = new SharedBody(body);
      a1.postMany("a1", list, body, shared);
      shared.flushLocal();
    };
    send(1);
    await settle();
    p.a.peerDown("b2", 0);
    send(2);
    await settle();
    expect(a1.dropped).toBe(1);
    b2.incarnation = 1;
    p.a.peerUp("b2", 1);
    send(3);
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 2, 3]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([1, 3]);
    expect([b1.refused, b2.refused, p.b.refused]).toEqual([0, 0, 0]);
    // A list past the batch bound is cut where recipient-by-recipient queueing cuts it, planned or not.
    const posts: unknown[] = [];
    const post = p.port.postMessage.bind(p.port);
    p.port.postMessage = (d: unknown) => (posts.push(d), post(d));
    const many = Array.from({ length: Limits.maxLaneBatch + 10 }, (_, i) => (i % 2 === 0 ? "b1" : "b2"));
    for (let seq = 4; seq <= 5; seq++) {
      const body = { type: "count", seq };
      const shared = new SharedBody(body);
      a1.postMany("a1", many, body, shared);
      shared.flushLocal();
    }
    await settle();
    // Each fan-out: one post at the bound, and its last 10 when the call posts its lanes.
    expect(posts.length).toBe(4);
    expect(b1.got.filter((m) => m.body.seq === 4 || m.body.seq === 5).length).toBe(Limits.maxLaneBatch + 10);
    expect(b2.got.filter((m) => m.body.seq === 4 || m.body.seq === 5).length).toBe(Limits.maxLaneBatch + 10);
    expect([b1.refused, b2.refused, p.b.refused]).toEqual([0, 0, 0]);
    p.close();
  });

  test("a list fanned out to again is named by number after its first post: its recipients are not sent again, each still gets its copy in order", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const posts: string[] = [];
    const post = p.port.postMessage.bind(p.port);
    p.port.postMessage = (d: unknown) => (posts.push(JSON.stringify(d)), post(d));
    const list = ["b1", "b2", "b1"];
    for (let seq = 1; seq <= 5; seq++) fanOut(a1, list, { type: "count", seq, nested: { n: seq } });
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(b1.got.map((m) => m.body.nested)).size).toBe(10);
    expect(posts.length).toBe(5);
    expect(posts[0]).toContain("b2");
    for (const later of posts.slice(1)) expect(later).not.toContain("b2");
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([0, 0, 0]);
    p.close();
  });

  test("more lists than a lane keeps: slots are reused, and every fan-out reaches exactly its own list", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const often = ["b2", "b1"];
    const shapes = [["b1"], ["b2"], ["b1", "b2", "b2"]];
    const want = new Map<NodeId, number[]>([["b1", []], ["b2", []]]);
    for (let i = 0; i < 3 * Limits.maxLaneLists; i++) {
      // Every other fan-out is to one list kept all along; the rest each to a list of its own.
      const list = i % 2 === 0 ? often : [...shapes[(i >> 1) % 3]!];
      fanOut(a1, list, { type: "count", seq: i });
      for (const d of list) want.get(d)!.push(i);
      if (i % 16 === 15) await settle();
    }
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual(want.get("b1")!);
    expect(b2.got.map((m) => m.body.seq)).toEqual(want.get("b2")!);
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([0, 0, 0]);
    p.close();
  });

  test("a new channel between the same threads starts with no lists: the next fan-out names its list again", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const list = ["b1", "b2"];
    fanOut(a1, list, { type: "count", seq: 1 });
    await settle();
    const again = new MessageChannel();
    p.a.connect(0, 1, again.port1, PLACEMENT);
    p.b.connect(1, 0, again.port2, PLACEMENT);
    fanOut(a1, list, { type: "count", seq: 2 });
    fanOut(a1, list, { type: "count", seq: 3 });
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 2, 3]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([1, 2, 3]);
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([0, 0, 0]);
    again.port1.close();
    again.port2.close();
    p.close();
  });

  test("a kept list is checked at every use: an unknown or bad slot is refused, a bad list replaces the one kept and is refused wherever it is named, a post refused whole forgets them all", async () => {
    const p = pair();
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const body = (seq: number) => ({ type: "count", seq });
    const send = (...entries: unknown[]) => p.port.postMessage(JSON.stringify(entries));
    send([0, "a1", [0, "b1"], body(1), 0]); // defines slot 0
    send([0, "a1", 0, body(2)]);
    send([0, "a1", 5, body(3)]); // slot 5 never defined
    send([0, "a1", [0, "b2"], body(4), Limits.maxLaneLists]); // no such slot
    send([0, "a1", [0, "b2"], body(5), 1.5]);
    send([0, "a1", -1, body(6)]);
    send([0, "a1", [0, "b2", 0], body(7), 0]); // an odd list: refused, and it is what slot 0 now holds
    send([0, "a1", 0, body(8)]);
    send([0, "a1", [0, "b2", 0, "zz"], body(9), 1], [0, "a1", 1, body(10)]); // defined and used in one run; zz refused each time
    // A run's cost counts a kept list's recipients, defined in that run or before: this one is past the bound, refused whole.
    const big = Array.from({ length: Limits.maxLaneBatch - 10 }, () => [0, "b1"]).flat();
    send([0, "a1", big, body(11), 2], [0, "a1", 2, body(12)]);
    send([0, "a1", 1, body(13)]); // refused whole, that run forgot every list
    send([0, "a1", [0, "b1"], body(14), 3], [0, "a1", [0, "b2"], body(15), 1]);
    send([0, "a1", 1, body(16)], [0, "a1", 1, body(17)], [0, "a1", 3, body(18)]);
    p.port.postMessage("not json"); // refused whole: what it defined is unknown, so every list is forgotten
    send([0, "a1", 1, body(19)], [0, "a1", 3, body(20)]);
    send([0, "a1", [0, "b1", 0, "b2"], body(21), 1], [0, "a1", 1, body(22)]);
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 2, 14, 18, 21, 22]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([9, 10, 15, 16, 17, 21, 22]);
    // 3, 4, 5, 6, 7, 8, zz twice, the run of 11 and 12, 13, "not json", 19, 20
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([13, 0, 0]);
    p.close();
  });

  test("a fan-out of a body JSON does not carry goes entry by entry, and arrives as it was sent", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const body = { type: "count", seq: 4, gone: undefined as unknown, nested: { n: 1 } };
    const shared = new SharedBody(body);
    a1.postMany("a1", ["b1", "b2"], body, shared);
    shared.flushLocal();
    body.nested.n = 9;
    await settle();
    for (const t of [b1, b2]) {
      expect(t.got.length).toBe(1);
      expect("gone" in t.got[0]!.body).toBe(true); // as an object, not as JSON (which drops it)
      expect((t.got[0]!.body.nested as { n: number }).n).toBe(1);
    }
    p.close();
  });

  test("a multicast checks each destination's incarnation on its own; one past the batch bound is cut in two", async () => {
    const p = pair();
    const a1 = p.links("a1", 0);
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    b2.incarnation = 1; // b2 restarted; thread 0 has not heard yet
    const dests = ["b2", ...Array.from({ length: Limits.maxLaneBatch + 10 }, () => "b1")];
    const body = { type: "count", seq: 7 };
    const shared = new SharedBody(body);
    for (const dest of dests) a1.post({ src: "a1", dest, body }, shared);
    shared.flushLocal();
    await settle();
    expect([b1.got.length, b1.refused, b2.got.length, b2.refused, p.b.refused]).toEqual([Limits.maxLaneBatch + 10, 0, 0, 1, 0]);
    p.close();
  });

  test("bad multicast entries are refused, each bad destination on its own", async () => {
    const p = pair();
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const body = (seq: number) => ({ type: "count", seq });
    p.port.postMessage(
      JSON.stringify([
        [0, "a1", [0, "b1", 0, "b2"], body(1)],
        [0, "a1", [0, "b1", 0], body(2)], // odd list
        [0, "a1", [], body(3)], // no destination
        [0, "b2", [0, "b1"], body(4)], // b2 is not of the sending thread
        [0, "a1", [0, "zz", -1, "b2", 0, "b1"], body(5)], // unknown node, bad incarnation: refused; b1 still gets it
        [0, "a1", [0, "b1"], 5], // body not an object
        [-1, "a1", [0, "b1"], body(6)], // bad sender incarnation
        [0, 7, [0, "b1"], body(7)], // sender not a name
        [0, "a1", [0, "b1"], body(8)],
      ]),
    );
    p.port.postMessage(JSON.stringify([[0, "a1", Array.from({ length: Limits.maxLaneBatch + 1 }, () => [0, "b1"]).flat(), body(9)]]));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 5, 8]);
    expect(b2.got.map((m) => m.body.seq)).toEqual([1]);
    // odd, empty, impostor, zz, the bad incarnation, the body, the sender incarnation, the sender name, the oversized post
    expect([p.b.refused, b1.refused, b2.refused]).toEqual([9, 0, 0]);
    p.close();
  });

  test("bad entries are refused one by one; the rest of the batch, and a throwing receiver's neighbours, still get theirs", async () => {
    const p = pair();
    const [b1, b2] = [p.targets.get("b1")!, p.targets.get("b2")!];
    const good = (dest: NodeId, seq: number) => [0, 0, { src: "a1", dest, body: { type: "count", seq } }];
    b2.throws = true;
    p.port.postMessage([
      "not json",
      JSON.stringify([good("b1", 1), [0, 0, 5], [-1, 0, { src: "a1", dest: "b1", body: {} }], [0, 0, { src: "b2", dest: "b1", body: {} }], [0, 0, { src: "a1", dest: "zz", body: {} }], good("b2", 2), good("b1", 3)]),
      [0, 0, null],
      { length: 3 },
      good("b1", 4),
    ]);
    p.port.postMessage(42);
    p.port.postMessage(Array.from({ length: Limits.maxLaneBatch + 1 }, () => good("b1", 9)));
    await settle();
    expect(b1.got.map((m) => m.body.seq)).toEqual([1, 3, 4]);
    expect(b2.refused).toBe(1); // its receive threw
    // "not json", [0,0,5], the negative incarnation, the impostor from b2, the unknown dest, [0,0,null], {length:3}, 42, the oversized post
    expect(p.b.refused).toBe(9);
    p.close();
  });
});

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const tmp = tempDirs("lanes");

/** Four kv nodes packed into two threads: n1 and n3 share one, n2 and n4 the other. */
function packed<T>(fn: (c: ThreadCluster) => Promise<T>, controlTimeoutMs?: number): Promise<T> {
  const nodes = ["n1", "n2", "n3", "n4"].map((id) => ({ id, role: "kv", storage: "memory" as const }));
  return withThreads({ system: FIXTURE, nodes, seed: 1, dataDir: tmp(), logLevel: "silent", threads: 2, controlTimeoutMs }, fn);
}

const seqsOf = async (c: ThreadCluster, id: NodeId) => (await c.request<{ seqs: number[] }>(id, { type: "seqs" })).seqs;
const relay = (c: ThreadCluster, from: NodeId, to: NodeId) => c.request<{ reply: { type: string } }>(from, { type: "relay", to, inner: { type: "ping" }, timeoutMs: 2000 }, 5000).then((r) => r.reply.type);

/** Wait for a condition (a loaded machine is slow, never wrong). */
async function until(ok: () => Promise<boolean>, ms = 10_000): Promise<boolean> {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    if (await ok()) return true;
    await Bun.sleep(10);
  }
  return ok();
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe("lanes on packed threads", () => {
  test("per-pair FIFO over a lane, across batch bounds and messages JSON does not carry", async () => {
    await packed(async (c) => {
      const n = Limits.maxLaneBatch + 1000;
      await c.request("n1", { type: "blast", to: "n2", n, odd: 5 });
      expect(await until(async () => (await seqsOf(c, "n2")).length === n)).toBe(true);
      expect(await seqsOf(c, "n2")).toEqual(range(n));
      const stats = (await c.info()).map((i) => i.stats!.refused);
      expect(stats).toEqual([0, 0, 0, 0]);
    });
  });

  test("a crashed node's messages are dropped at send, not handed to its next incarnation; after a restart they flow both ways", async () => {
    await packed(async (c) => {
      await c.crash("n2");
      const refusedBefore = (await c.info())[0]!.stats!.refused;
      await c.request("n1", { type: "blast", to: "n2", n: 50 });
      expect((await c.info())[0]!.stats!.refused - refusedBefore).toBe(50);
      expect(await c.restart("n2")).toBe("running");
      expect(await c.inspect<{ incarnation: number }>("n2")).toMatchObject({ incarnation: 1 });
      expect(await seqsOf(c, "n2")).toEqual([]);
      expect(await relay(c, "n1", "n2")).toBe("pong");
      expect(await relay(c, "n2", "n1")).toBe("pong");
      expect(await relay(c, "n2", "n3")).toBe("pong");
      await c.request("n1", { type: "blast", to: "n2", n: 20 });
      await c.request("n2", { type: "blast", to: "n3", n: 20 });
      expect(await until(async () => (await seqsOf(c, "n2")).length === 20 && (await seqsOf(c, "n3")).length === 20)).toBe(true);
      expect([await seqsOf(c, "n2"), await seqsOf(c, "n3")]).toEqual([range(20), range(20)]);
    });
  });

  test("fan-outs to a kept list reach every recipient in order, across a recipient's restart and its worker's replacement", async () => {
    await packed(async (c) => {
      const to = ["n2", "n4", "n3"];
      const fan = (from: number, n: number) => c.request("n1", { type: "fan", to, from, n });
      const all = async (want: number[]) => {
        const ok = await until(async () => (await Promise.all(to.map((id) => seqsOf(c, id)))).every((s) => s.length >= want.length));
        return ok && Promise.all(to.map((id) => seqsOf(c, id)));
      };
      await fan(0, 30);
      expect(await all(range(30))).toEqual([range(30), range(30), range(30)]);
      await c.crash("n4");
      expect(await c.restart("n4")).toBe("running");
      await fan(100, 20);
      const after = range(20).map((i) => 100 + i);
      expect(await until(async () => (await seqsOf(c, "n4")).length === 20)).toBe(true);
      expect([await seqsOf(c, "n2"), await seqsOf(c, "n4"), await seqsOf(c, "n3")]).toEqual([[...range(30), ...after], after, [...range(30), ...after]]);
      // The worker of n2 and n4 hangs and is replaced: new lanes, and no list kept from the old ones.
      expect(await c.request("n2", { type: "hang" })).toMatchObject({ type: "hanging" });
      await c.crash("n2");
      expect(await Promise.all([c.restart("n2"), c.restart("n4")])).toEqual(["running", "running"]);
      await fan(200, 20);
      const last = range(20).map((i) => 200 + i);
      expect(await all(last)).toEqual([last, last, [...range(30), ...after, ...last]]);
      expect((await c.info()).map((i) => i.stats!.refused)).toEqual([0, 0, 0, 0]);
    }, 500);
  });

  test("a worker replaced after it hung gets working lanes again", async () => {
    await packed(async (c) => {
      expect(await c.request("n2", { type: "hang" })).toMatchObject({ type: "hanging" });
      // The crash call times out: the worker of n2 and n4 is ended, both are crashed.
      await c.crash("n2");
      expect([c.status("n2"), c.status("n4")]).toEqual(["crashed", "crashed"]);
      expect(await Promise.all([c.restart("n2"), c.restart("n4")])).toEqual(["running", "running"]);
      for (const [from, to] of [["n1", "n2"], ["n2", "n1"], ["n4", "n3"], ["n3", "n4"]] as const) expect(await relay(c, from, to)).toBe("pong");
      await c.request("n3", { type: "blast", to: "n4", n: 500, odd: 3 });
      expect(await until(async () => (await seqsOf(c, "n4")).length === 500)).toBe(true);
      expect(await seqsOf(c, "n4")).toEqual(range(500));
    }, 500);
  });
});
