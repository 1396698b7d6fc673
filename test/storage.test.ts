import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MemoryStorage, compareKeys } from "../src/workers/runtime/memory-storage.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { SqliteStorage, openStorage } from "../src/workers/runtime/storage.ts";
import type { ScanOptions, Storage, StorageMode } from "../src/workers/runtime/types.ts";

// A node acknowledges once its transaction returns (types.ts, Storage): all of its writes must have
// landed then, and none of a transaction that threw. The wrapper is made once per storage and reused
// (storage.ts), so these run many transactions on one storage, nested and after failures.
describe("storage transactions", () => {
  const modes: StorageMode[] = ["memory", "os"];
  for (const mode of modes) {
    test(`${mode}: all of a transaction's writes land, or none if it throws`, () => {
      const dir = mkdtempSync(join(tmpdir(), "menhir-storage-"));
      const path = join(dir, "s.sqlite");
      let s = openStorage(mode, path);
      try {
        expect(s.transaction(() => (s.put("a", 1), s.put("b", { n: 2 }), "done"))).toBe("done");
        expect(() =>
          s.transaction(() => {
            s.put("a", 10);
            s.delete("b");
            s.put("c", 3);
            throw new Error("refused halfway");
          }),
        ).toThrow("refused halfway");
        expect([s.get("a"), s.get("b"), s.get("c")]).toEqual([1, { n: 2 }, undefined]);

        // A transaction after a failed one still commits, and the same storage runs many in turn.
        for (let i = 0; i < 50; i++) s.transaction(() => s.put(`k${i}`, i));
        expect(s.scan({ prefix: "k" })).toHaveLength(50);

        // Nested: an inner failure caught by the outer undoes only the inner writes.
        s.transaction(() => {
          s.put("outer", true);
          try {
            s.transaction(() => {
              s.put("inner", true);
              throw new Error("inner fails");
            });
          } catch {
            // the outer goes on
          }
        });
        expect([s.get("outer"), s.get("inner")]).toEqual([true, undefined]);

        // An outer failure undoes what a nested transaction that returned had written.
        expect(() =>
          s.transaction(() => {
            s.transaction(() => s.put("nested", 1));
            s.put("x", 1);
            throw new Error("outer fails");
          }),
        ).toThrow("outer fails");
        expect([s.get("nested"), s.get("x")]).toEqual([undefined, undefined]);

        if (mode === "os") {
          // What a transaction committed is on disk for the next storage opened on the file.
          s.close();
          s = openStorage(mode, path);
          expect([s.get("a"), s.get("b"), s.get("outer"), s.get("k49")]).toEqual([1, { n: 2 }, true, 49]);
        }
      } finally {
        s.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

// Mode memory is a MemoryStorage (memory-storage.ts), held here to SQLite's behaviour: the same
// seeded sequence of writes, deletes, reads, scans and transactions (nested, some failing) on both,
// with keys chosen where JavaScript's string order and SQLite's differ.
describe("MemoryStorage against SQLite in memory", () => {
  // Around "\uffff" (the prefix scan's bound), U+E000..U+FFFF against code points above U+FFFF, plain ASCII,
  // and lone surrogates, which SQLite stores as U+FFFD.
  const parts = ["a", "b", "a/", "\ue000", "\uffff", "\u{10000}", "\u{1f600}", "é", "0", "9", "", "\ud800", "\udc00", "\ufffd"];
  const keyOf = (r: ReturnType<typeof seededRandom>) => Array.from({ length: 1 + r.int(3) }, () => r.pick(parts)).join("") || "k";
  const valueOf = (r: ReturnType<typeof seededRandom>, i: number): unknown =>
    r.pick([i, `v${i}`, { n: i, list: [1, "two", null], nested: { ok: true } }, [i, i + 1], null, false, -0.5, "\u{1f600}"]);

  for (const seed of [1, 2, 3, 4, 5]) {
    test(`seed ${seed}: every read, scan and failed transaction agrees`, () => {
      const r = seededRandom(seed, "storage");
      const mem = new MemoryStorage();
      const ref = new SqliteStorage(null, "memory");
      // The same call on both: the same answer, or the same error.
      const outcome = (f: (s: Storage) => unknown, s: Storage) => {
        try {
          return { ok: f(s) };
        } catch (e) {
          return { err: String(e) };
        }
      };
      const both = (f: (s: Storage) => unknown): void => expect(outcome(f, mem)).toEqual(outcome(f, ref));
      // Every random draw is made before an operation runs on either side, so both see the same one.
      const write = (i: number): ((s: Storage) => void) => {
        const key = keyOf(r);
        if (r.chance(0.3)) return (s) => s.delete(key);
        const v = valueOf(r, i);
        return (s) => s.put(key, v);
      };
      for (let i = 0; i < 400; i++) {
        const roll = r.int(10);
        if (roll < 5) both(write(i));
        else if (roll < 6) {
          const key = keyOf(r);
          both((s) => s.get(key));
        } else if (roll < 8) {
          const o: ScanOptions = {};
          if (r.chance(0.5)) o.prefix = keyOf(r);
          if (r.chance(0.3)) o.start = keyOf(r);
          if (r.chance(0.3)) o.end = keyOf(r);
          if (r.chance(0.4)) o.reverse = true;
          if (r.chance(0.4)) o.limit = r.int(4);
          both((s) => s.scan(o));
        } else {
          // A transaction of a few writes, failing before one of them a third of the time, and a nested
          // one inside it that fails on its own half the time (the outer catches that and goes on).
          const outer = Array.from({ length: 1 + r.int(4) }, (_, k) => write(i * 100 + k));
          const inner = Array.from({ length: 1 + r.int(3) }, (_, k) => write(i * 100 + 50 + k));
          const outerFails = r.chance(0.33) ? r.int(outer.length) : -1;
          const innerFails = r.chance(0.5);
          both((s) =>
            s.transaction(() => {
              outer.forEach((w, k) => {
                if (k === outerFails) throw new Error("outer fails halfway");
                w(s);
                if (k === 0) {
                  try {
                    s.transaction(() => {
                      for (const v of inner) v(s);
                      if (innerFails) throw new Error("inner fails");
                    });
                  } catch {
                    // the outer goes on
                  }
                }
              });
            }),
          );
        }
        both((s) => s.scan());
      }
      // Nested: an outer transaction holding inner ones, the outer failing after an inner returned.
      both((s) =>
        s.transaction(() => {
          s.put("a", "outer");
          s.transaction(() => s.put("b", "inner"));
          throw new Error("outer fails");
        }),
      );
      both((s) => s.scan());
      expect(mem.size).toBe(ref.scan().length);
      ref.close();
      mem.close();
      expect(() => mem.get("a")).toThrow("storage used after close");
    });
  }

  test("keys in SQLite's order: code points above U+FFFF after U+E000..U+FFFF, as their UTF-8 bytes sort", () => {
    const keys = ["\u{10000}", "\uffff", "\ue000", "z", "a", "a\u{1f600}", "a\uffff", ""];
    const byBytes = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y)));
    expect([...keys].sort(compareKeys)).toEqual(byBytes);
    // JavaScript's own order puts "\u{10000}" (a surrogate pair) before "\ue000": the case compareKeys exists for.
    expect([...keys].sort()).not.toEqual(byBytes);
  });

  test("a value read back is a copy: changing it, or what was put, changes nothing stored", () => {
    const s = new MemoryStorage();
    const v = { list: [1, 2] };
    s.put("k", v);
    v.list.push(3);
    const got = s.get<{ list: number[] }>("k")!;
    got.list.push(4);
    expect(s.get("k")).toEqual({ list: [1, 2] });
    expect(() => s.put("u", undefined)).toThrow("undefined is not storable");
    expect(s.get("u")).toBeUndefined();
  });
});
