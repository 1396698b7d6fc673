import { describe, expect, test } from "bun:test";
import { SharedBody, deliverInOrder, fromLink, toLink, toPort } from "../src/workers/runtime/port-codec.ts";
import type { Message } from "../src/workers/runtime/types.ts";

const msg = (body: Record<string, unknown>): Message => ({ src: "a", dest: "b", body: { type: "t", ...body } });

/** What the receiving node gets: the form posted on a node's link through a real MessageChannel, decoded. */
async function overPort(m: Message): Promise<unknown> {
  const ch = new MessageChannel();
  const got = new Promise<unknown>((r) => (ch.port2.onmessage = (e) => r(fromLink(e.data, m.src, m.dest))));
  ch.port1.postMessage(toLink(m));
  const out = await got;
  ch.port1.close();
  ch.port2.close();
  return out;
}

describe("a node message on a MessageChannel", () => {
  test("plain JSON data goes as text and arrives equal", async () => {
    const m = msg({ tally: { team: "Gaul", gold: 1, version: 2, updatedAt: 1763764000000.123 }, list: [1, "x\u{d800}y", null, true, { deep: [[]] }], msg_id: 2 ** 40 + 1 });
    expect(typeof toPort(m)).toBe("string");
    expect(typeof toLink(m)).toBe("string");
    expect(await overPort(m)).toEqual(m);
  });

  test("what JSON would change goes as the object and arrives exactly", async () => {
    const cases: Array<Record<string, unknown>> = [{ u: undefined }, { n: Number.NaN }, { z: -0 }, { i: Infinity }, { when: new Date(3) }, { bytes: new Uint8Array([1]) }, { m: new Map([[1, 2]]) }, { big: 5n }, { holes: [1, , 2] }];
    for (const c of cases) {
      const m = msg(c);
      expect(typeof toPort(m)).toBe("object");
      expect(toLink(m)).toBe(m);
      const got = (await overPort(m)) as Message;
      expect(got).toEqual(m);
      if ("z" in c) expect(Object.is(got.body.z, -0)).toBe(true);
      if ("u" in c) expect("u" in got.body).toBe(true);
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(typeof toPort(msg({ cyclic }))).toBe("object");
    const cyclicMsg = msg({ cyclic });
    expect(toLink(cyclicMsg)).toBe(cyclicMsg);
  });

  test("an own __proto__ key is posted as the object, so it cannot become a prototype", async () => {
    const m = msg(JSON.parse('{"__proto__":{"polluted":true}}') as Record<string, unknown>);
    expect(typeof toPort(m)).toBe("object");
    expect(toLink(m)).toBe(m);
  });

  test("text that is not JSON is handed on unparsed (the runtime refuses it as malformed)", () => {
    expect(fromLink("{not json", "a", "b")).toBe("{not json");
    expect(fromLink(7, "a", "b")).toBe(7);
  });

  test("on a node's own link, a body goes as its text alone and arrives as a message from the link's one end to the other", async () => {
    const m = msg({ tally: { team: "Gaul", gold: 1, version: 2, updatedAt: 1763764000000.123 } });
    const posted = toLink(m);
    expect(posted).toBe(JSON.stringify(m.body));
    const ch = new MessageChannel();
    const got = new Promise<unknown>((r) => (ch.port2.onmessage = (e) => r(fromLink(e.data, "a", "b"))));
    ch.port1.postMessage(posted);
    expect(await got).toEqual(m);
    ch.port1.close();
    ch.port2.close();
    // The text names no sender: the link does, so a body cannot pass for another node's message.
    expect(fromLink(JSON.stringify({ type: "t", src: "c" }), "a", "b")).toEqual({ src: "a", dest: "b", body: { type: "t", src: "c" } });
    // What JSON would change goes as the whole message, as toPort sends it; text that does not parse is handed on as is.
    const odd = msg({ z: -0 });
    expect(toLink(odd)).toBe(odd);
    expect(fromLink(odd, "a", "b")).toBe(odd);
  });

  test("a body shared by a fan-out is encoded once and posts, for each recipient, what that recipient's own message would", () => {
    const bodies: Array<Record<string, unknown>> = [
      { type: "tally_update", tally: { team: "Gaul", gold: 1, version: 2, updatedAt: 1763764000000.123 } },
      { type: "t", s: 'quote " and \\ and \u{2028}' },
      { type: "t", z: -0 },
      { type: "t", m: new Map([[1, 2]]) },
      JSON.parse('{"type":"t","__proto__":{"polluted":true}}') as Record<string, unknown>,
    ];
    for (const body of bodies) {
      const shared = new SharedBody(body as Message["body"]);
      for (const dest of ["b", 'odd "name"', "tablet-500"]) {
        const m: Message = { src: "obelix", dest, body: body as Message["body"] };
        const own = toLink(m);
        // One text for every recipient (made once), equal to what each one's own message would post.
        const mine = shared.toLink(m);
        expect(typeof mine).toBe(typeof own);
        if (typeof own === "string") {
          expect(mine).toBe(own);
          expect(mine).toBe(shared.bodyText()!);
        } else expect(mine).toBe(m);
      }
    }
    // The walk's budget counts the message around the body, as toPort's walk of the whole message does.
    const atLimit = { type: "t", xs: Array.from({ length: 4096 - 6 }, () => 1) };
    const over = { type: "t", xs: Array.from({ length: 4096 - 5 }, () => 1) };
    for (const body of [atLimit, over]) {
      const m: Message = { src: "a", dest: "b", body };
      expect(typeof new SharedBody(body).toLink(m)).toBe(typeof toPort(m));
      expect(typeof toLink(m)).toBe(typeof toPort(m));
    }
    expect(typeof toPort({ src: "a", dest: "b", body: atLimit })).toBe("string");
    expect(typeof toPort({ src: "a", dest: "b", body: over })).toBe("object");
  });
});

describe("a fan-out's copies for the sender's own thread", () => {
  test("copy the body in the call and hand it on later, in order, each recipient its own", async () => {
    const body = { type: "t", nested: { v: 1 } };
    const shared = new SharedBody(body);
    const got: Message[] = [];
    const deliver = (m: Message) => got.push(m);
    for (const dest of ["x", "y", "x"]) shared.local(deliver, { src: "a", dest, body });
    shared.flushLocal();
    body.nested.v = 2; // after the call
    expect(got.length).toBe(0); // asynchronous, as every delivery is
    await Promise.resolve();
    expect(got.map((m) => [m.dest, (m.body.nested as { v: number }).v])).toEqual([["x", 1], ["y", 1], ["x", 1]]);
    expect(new Set(got.map((m) => m.body.nested)).size).toBe(3);
  });

  test("a recipient that changes its copy changes nobody else's, though later copies are made after it ran", async () => {
    const body = { type: "t", nested: { v: 1 } };
    const shared = new SharedBody(body);
    const seen: number[] = [];
    const deliver = (m: Message) => {
      const nested = m.body.nested as { v: number };
      seen.push(nested.v);
      nested.v = 100 + seen.length; // a handler that writes into what it was given
    };
    for (const dest of ["x", "y", "z"]) shared.local(deliver, { src: "a", dest, body });
    shared.flushLocal();
    await Promise.resolve();
    expect(seen).toEqual([1, 1, 1]);
    expect(body.nested.v).toBe(1);
  });

  test("one delivery that throws costs the others nothing; its error is raised after them", () => {
    const got: string[] = [];
    const ok = (m: Message) => void got.push(m.dest);
    const boom = (m: Message) => {
      got.push(m.dest);
      throw new Error(`deliberate ${m.dest}`);
    };
    const m = (dest: string): Message => ({ src: "a", dest, body: { type: "t" } });
    expect(() => deliverInOrder([{ deliver: ok, msg: m("x") }, { deliver: boom, msg: m("y") }, { deliver: boom, msg: m("z") }, { deliver: ok, msg: m("w") }])).toThrow("deliberate y");
    expect(got).toEqual(["x", "y", "z", "w"]);
  });
});
