import { describe, expect, test } from "bun:test";
import { Links, type LinkGrant } from "../src/workers/runtime/links.ts";
import { fromLink } from "../src/workers/runtime/port-codec.ts";
import { acceptWireFrame } from "../src/workers/runtime/data-link.ts";
import { WireConn, wireListen } from "../src/workers/runtime/wire.ts";
import type { Message } from "../src/workers/runtime/types.ts";
import { NodeRuntime, type Env } from "../src/workers/runtime/node.ts";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";

/** A node's links with the supervisor played by hand: every grant request waits for the test to answer it. */
function harness() {
  const asked: Array<{ dest: string; answer(g: LinkGrant | null): void }> = [];
  const received: unknown[] = [];
  const links = new Links({
    id: "n1",
    grant: (dest) => new Promise((answer) => asked.push({ dest, answer })),
    colocated: () => undefined,
    receive: (d) => void received.push(d),
    wireFrame: () => {},
    wire: null,
    now: () => performance.now(),
  });
  const msg = (n: number): Message => ({ src: "n1", dest: "n2", body: { type: "count", seq: n } });
  const turn = () => new Promise((r) => setTimeout(r, 20));
  return { links, asked, received, msg, turn };
}

describe("a port link's two ends", () => {
  test("a body's text arriving on the link from n2 is a message from n2 to this node, whatever the text says; a whole message object arrives as posted", async () => {
    const { links, received, turn } = harness();
    const ch = new MessageChannel();
    links.accept("n2", 0, ch.port2);
    ch.port1.postMessage(JSON.stringify({ type: "hello", src: "n9" }));
    const whole: Message = { src: "n2", dest: "n1", body: { type: "odd", z: -0 } };
    ch.port1.postMessage(whole);
    await turn();
    expect(received).toEqual([{ src: "n2", dest: "n1", body: { type: "hello", src: "n9" } }, whole]);
    ch.port1.close();
  });
});

describe("links carry incarnations", () => {
  test("a port offered by an incarnation known dead is refused; the next send asks for a fresh link", async () => {
    const { links, asked, msg, turn } = harness();
    links.peerDown("n2", 0);
    const stale = new MessageChannel();
    let closed = false;
    stale.port1.addEventListener("close", () => (closed = true));
    stale.port1.start();
    links.accept("n2", 0, stale.port2);
    links.post(msg(1));
    await turn();
    expect(closed).toBe(true);
    expect(asked.map((a) => a.dest)).toEqual(["n2"]);
  });

  test("a grant that comes back for an incarnation that died meanwhile is ignored, and what was held counts as dropped", async () => {
    const { links, asked, msg, turn } = harness();
    links.post(msg(1));
    expect(asked.length).toBe(1);
    links.peerDown("n2", 3);
    const late = new MessageChannel();
    const got: unknown[] = [];
    late.port2.onmessage = (e) => void got.push(fromLink(e.data, "n1", "n2"));
    asked[0]!.answer({ port: late.port1, incarnation: 3 });
    await turn();
    expect(got).toEqual([]);
    links.post(msg(2));
    expect(asked.length).toBe(2);
    const fresh = new MessageChannel();
    fresh.port2.onmessage = (e) => void got.push(fromLink(e.data, "n1", "n2"));
    asked[1]!.answer({ port: fresh.port1, incarnation: 4 });
    await turn();
    links.post(msg(3));
    await turn();
    expect(got.map((m) => (m as Message).body.seq)).toEqual([2, 3]);
    expect(links.dropped).toBe(1);
    late.port2.close();
    fresh.port2.close();
  });

  test("'down', answered before the peer was announced up again, is stale: the next send asks at once", async () => {
    const { links, asked, msg, turn } = harness();
    links.post(msg(1));
    links.peerUp("n2", 1);
    asked[0]!.answer(null);
    await turn();
    links.post(msg(2));
    expect(asked.length).toBe(2);
  });

  test("a link whose partner's end closes is forgotten; a drop of an older incarnation leaves a newer link alone", async () => {
    const { links, asked, msg, turn } = harness();
    const ch = new MessageChannel();
    const got: unknown[] = [];
    ch.port2.onmessage = (e) => void got.push(e.data);
    links.accept("n2", 2, ch.port1);
    links.peerDown("n2", 1);
    links.post(msg(1));
    await turn();
    expect(got.length).toBe(1);
    expect(asked.length).toBe(0);
    ch.port2.close();
    await turn();
    links.post(msg(2));
    expect(asked.map((a) => a.dest)).toEqual(["n2"]);
  });
});

describe("a TCP data link", () => {
  test("a turn's sends arrive whole and in order as one batch; a large batch goes as records (about half the bytes)", async () => {
    const got: Message[] = [];
    let bytes = 0;
    const secret = "links-test-secret";
    const listener = wireListen(
      { hostname: "127.0.0.1", port: 0 },
      {
        host: "b",
        secret,
        peers: new Set(["a"]),
        onFrame: (conn, frame) => void got.push(...acceptWireFrame(frame, "n2", { n1: "a", n2: "b" }, conn.peerHost)),
      },
    );
    const onData = WireConn.prototype.onData;
    const counting = function (this: WireConn, chunk: Uint8Array) {
      if (!this.dialed) bytes += chunk.length;
      onData.call(this, chunk);
    };
    WireConn.prototype.onData = counting;
    const links = new Links({
      id: "n1",
      grant: async () => ({ wire: { hostname: "127.0.0.1", port: listener.port } }),
      colocated: () => undefined,
      receive: () => {},
      wireFrame: () => {},
      wire: { host: "a", secret, peers: new Set(["b"]) },
      now: () => performance.now(),
    });
    const msg = (seq: number): Message => ({ src: "n1", dest: "n2", body: { type: "count", seq } });
    const until = async (n: number) => {
      for (let i = 0; i < 500 && got.length < n; i++) await Bun.sleep(10);
      expect(got.length).toBe(n);
    };
    try {
      links.post(msg(0));
      await until(1);
      const before = bytes;
      for (let i = 1; i <= 1000; i++) links.post(msg(i));
      await until(1001);
      expect(got.map((m) => m.body.seq)).toEqual(Array.from({ length: 1001 }, (_, i) => i));
      // Plain msgpack takes ~45 bytes for each of these messages; records ~25.
      expect(bytes - before).toBeLessThan(1000 * 32);
      expect(links.dropped).toBe(0);
    } finally {
      WireConn.prototype.onData = onData;
      links.close();
      listener.stop(true);
    }
  });
});

describe("a fan-out from a packed thread", () => {
  /**
   * Node n1 whose links reach n3 and n4 in this thread and n2 over a MessageChannel; what each
   * receives, in order. `whole`: sendMany hands its list to the links whole, as a worker does
   * (postMany, with this thread's hand-offs planned per list while `hosted.version` holds).
   */
  async function fanOutHarness(whole = false) {
    const got: Array<{ to: string; body: unknown }> = [];
    const far = new MessageChannel();
    far.port2.onmessage = (e) => got.push({ to: "n2", body: (fromLink(e.data, "n1", "n2") as Message).body });
    const near = (to: string) => (m: Message) => void got.push({ to, body: m.body });
    const hosted = { ids: new Set(["n3", "n4"]), version: 0, lookups: 0 };
    const links = new Links({
      id: "n1",
      grant: async (dest) => (dest === "n2" ? { port: far.port1, incarnation: 0 } : null),
      colocated: (dest) => (hosted.lookups++, hosted.ids.has(dest) ? near(dest) : undefined),
      hostedVersion: whole ? () => hosted.version : undefined,
      receive: () => {},
      wireFrame: () => {},
      wire: null,
      now: () => performance.now(),
    });
    const storage = new SqliteStorage(null, "memory");
    const env: Env = {
      now: () => performance.now(),
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      transmit: (msg, shared) => links.post(msg, shared),
      transmitMany: whole ? (src, dests, body, shared) => links.postMany(src, dests, body, shared) : undefined,
      storage,
      emitLog: () => {},
      uid: () => "u",
      serveHttp: () => {},
    };
    const rt = new NodeRuntime({ id: "n1", role: "r", config: {}, nodeIds: ["n1", "n2", "n3", "n4"], incarnation: 0, seed: 1, logLevel: "error" }, env);
    // Open the port link first, so the fan-out below posts on it.
    rt.ctx.send("n2", { type: "open" });
    for (let i = 0; i < 50 && !got.some((g) => g.to === "n2"); i++) await Bun.sleep(5);
    got.length = 0;
    const close = () => {
      links.close();
      far.port2.close();
      storage.close();
    };
    return { rt, got, links, hosted, close };
  }

  test.each([false, true])("each recipient gets the body as it was when sendMany returned, in order per recipient, in-thread ones included (list handed on whole: %p)", async (whole) => {
    const { rt, got, close } = await fanOutHarness(whole);
    try {
      const body = { type: "u", n: 1, inner: { v: 1 } };
      rt.ctx.send("n3", { type: "before" });
      rt.ctx.sendMany(["n3", "n2", "n4", "n3"], body);
      // The sender changes its object at once: no recipient may see that (nodes share no memory).
      body.n = 2;
      body.inner.v = 2;
      rt.ctx.send("n3", { type: "after" });
      for (let i = 0; i < 50 && got.length < 6; i++) await Bun.sleep(5);
      const to = (d: string) => got.filter((g) => g.to === d).map((g) => g.body);
      const sent = { type: "u", n: 1, inner: { v: 1 } };
      expect(to("n3")).toEqual([{ type: "before" }, sent, sent, { type: "after" }]);
      expect(to("n4")).toEqual([sent]);
      expect(to("n2")).toEqual([sent]);
      // Two copies for the recipient named twice, not one object handed on twice.
      const [, a, b] = to("n3") as object[];
      expect(a).not.toBe(b);
    } finally {
      close();
    }
  });

  test("a list fanned out to again has its hand-offs in this thread planned once, and planned again when a node of this thread ends", async () => {
    const { rt, got, links, hosted, close } = await fanOutHarness(true);
    try {
      const team = new Set(["n3", "n2", "n4", "n3"]); // one collection, fanned out to again and again
      const to = (d: string) => got.filter((g) => g.to === d).map((g) => (g.body as { n: number }).n);
      const upTo = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
      const before = hosted.lookups;
      for (let n = 1; n <= 5; n++) rt.ctx.sendMany(team, { type: "u", n });
      for (let i = 0; i < 50 && to("n2").length < 5; i++) await Bun.sleep(5);
      expect([to("n3"), to("n4"), to("n2")]).toEqual([upTo(5), upTo(5), upTo(5)]);
      // The first fan-out looked each recipient up; the four after it only n2, on its way to a link (post looks).
      expect(hosted.lookups - before).toBe(3 + 5);
      const copies = got.filter((g) => g.to !== "n2").map((g) => g.body);
      expect(new Set(copies).size).toBe(copies.length);
      // n4 ends: the list is planned again, and its copy goes the way post would send it (a link, here refused: dropped).
      hosted.ids.delete("n4");
      hosted.version++;
      rt.ctx.sendMany(team, { type: "u", n: 6 });
      for (let i = 0; i < 50 && (to("n2").length < 6 || links.dropped < 1); i++) await Bun.sleep(5);
      expect(hosted.lookups - before).toBe(3 + 5 + 3 + 2);
      expect([to("n3"), to("n4"), to("n2"), links.dropped]).toEqual([upTo(6), upTo(5), upTo(6), 1]);
    } finally {
      close();
    }
  });
});
