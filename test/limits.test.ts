import { describe, expect, test } from "bun:test";
import { Limits, exceedsSize } from "../src/workers/runtime/limits.ts";

describe("exceedsSize", () => {
  test("a flat body with one huge key is too large (the flat fast path must not skip keys)", () => {
    expect(exceedsSize({ type: "x", ["k".repeat(Limits.maxMessageBytes)]: 1 }, Limits.maxMessageBytes)).toBe(true);
  });

  test("64 fields of 512-char strings exceed a 64 KiB limit (the fast path's bound holds only for larger limits)", () => {
    const body = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, "x".repeat(512)]));
    expect(exceedsSize(body, 65_536)).toBe(true);
    expect(exceedsSize(body, Limits.maxMessageBytes)).toBe(false);
  });

  test("small flat and nested bodies fit; a large nested one does not", () => {
    expect(exceedsSize({ type: "ping", msg_id: 1, payload: "hello" }, Limits.maxMessageBytes)).toBe(false);
    expect(exceedsSize({ type: "t", tally: { team: "Gaul", gold: 1 } }, Limits.maxMessageBytes)).toBe(false);
    expect(exceedsSize({ type: "t", blob: { s: "x".repeat(Limits.maxMessageBytes) } }, Limits.maxMessageBytes)).toBe(true);
  });
});
