import { describe, expect, test } from "bun:test";
import { cloneMessage } from "../src/workers/runtime/clone.ts";

describe("cloneMessage: the copy for a node in the same thread", () => {
  test("plain data: an equal deep copy that shares no object with the original", () => {
    const msg = { src: "a", dest: "b", body: { type: "t", n: -0, big: 10n, u: undefined, list: [1, "x", { y: [true, null] }], nested: { deep: { deeper: {} } } } };
    const c = cloneMessage(msg);
    expect(c).toEqual(msg);
    expect(Object.is(c.body.n, -0)).toBe(true);
    expect("u" in c.body).toBe(true);
    expect(c.body).not.toBe(msg.body);
    expect(c.body.list).not.toBe(msg.body.list);
    expect(c.body.list[2]).not.toBe(msg.body.list[2]);
    (c.body.list[2] as { y: unknown[] }).y.push("changed");
    c.body.nested.deep.deeper = { x: 1 };
    expect(msg.body.list[2]).toEqual({ y: [true, null] });
    expect(msg.body.nested.deep.deeper).toEqual({});
  });

  test("a null-prototype object copies to an ordinary one, as structuredClone does", () => {
    const o = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const c = cloneMessage({ o });
    expect(Object.getPrototypeOf(c.o)).toBe(Object.prototype);
    expect(c.o).toEqual(structuredClone({ o }).o);
  });

  test("an own __proto__ key stays data: the copy's prototype is untouched", () => {
    const body = JSON.parse('{"type":"t","__proto__":{"polluted":true}}') as Record<string, unknown>;
    const c = cloneMessage(body);
    expect(Object.getPrototypeOf(c)).toBe(Object.prototype);
    expect((c as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.keys(c)).toEqual(["type", "__proto__"]);
  });

  test("anything but plain data gets structuredClone's behaviour, for the whole message", () => {
    const when = new Date(5);
    const msg = { body: { when, m: new Map([[1, "a"]]), bytes: new Uint8Array([1, 2]), holes: [1, , 3] } };
    const c = cloneMessage(msg);
    expect(c.body.when).toBeInstanceOf(Date);
    expect(c.body.when).not.toBe(when);
    expect(c.body.m).toBeInstanceOf(Map);
    expect(c.body.bytes).toBeInstanceOf(Uint8Array);
    expect(1 in c.body.holes).toBe(false);
    class Point {
      constructor(readonly x: number) {}
    }
    expect(Object.getPrototypeOf(cloneMessage({ p: new Point(1) }).p)).toBe(Object.prototype);
  });

  test("what structuredClone refuses is refused", () => {
    expect(() => cloneMessage({ f: () => 1 })).toThrow();
    expect(() => cloneMessage({ s: Symbol("s") })).toThrow();
  });

  test("a cycle, a deep message and a large one are copied whole", () => {
    const cyclic: Record<string, unknown> = { type: "t" };
    cyclic.self = cyclic;
    const c = cloneMessage(cyclic);
    expect(c.self).toBe(c);
    expect(c).not.toBe(cyclic);
    let deep: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 100; i++) deep = { next: deep };
    expect(cloneMessage(deep)).toEqual(deep);
    const large = { items: Array.from({ length: 10_000 }, (_, i) => ({ i })) };
    const l = cloneMessage(large);
    expect(l).toEqual(large);
    expect(l.items[0]).not.toBe(large.items[0]);
  });

  test("an object reachable twice is copied twice (a tree, as on the TCP links)", () => {
    const shared = { v: 1 };
    const c = cloneMessage({ a: shared, b: shared });
    expect(c.a).toEqual(shared);
    expect(c.a).not.toBe(c.b);
  });
});
