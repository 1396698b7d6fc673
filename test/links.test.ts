import { describe, expect, test } from "bun:test";
import { Links, type LinkGrant } from "../src/workers/runtime/links.ts";
import { fromPort } from "../src/workers/runtime/port-codec.ts";
import type { Message } from "../src/workers/runtime/types.ts";

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
    late.port2.onmessage = (e) => void got.push(fromPort(e.data));
    asked[0]!.answer({ port: late.port1, incarnation: 3 });
    await turn();
    expect(got).toEqual([]);
    links.post(msg(2));
    expect(asked.length).toBe(2);
    const fresh = new MessageChannel();
    fresh.port2.onmessage = (e) => void got.push(fromPort(e.data));
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
