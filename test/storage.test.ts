import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";
import type { StorageMode } from "../src/workers/runtime/types.ts";

// A node acknowledges once its transaction returns (types.ts, Storage): all of its writes must have
// landed then, and none of a transaction that threw. The wrapper is made once per storage and reused
// (storage.ts), so these run many transactions on one storage, nested and after failures.
describe("storage transactions", () => {
  const modes: StorageMode[] = ["memory", "os"];
  for (const mode of modes) {
    test(`${mode}: all of a transaction's writes land, or none if it throws`, () => {
      const dir = mkdtempSync(join(tmpdir(), "menhir-storage-"));
      const path = join(dir, "s.sqlite");
      let s = new SqliteStorage(mode === "memory" ? null : path, mode);
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
          s = new SqliteStorage(path, mode);
          expect([s.get("a"), s.get("b"), s.get("outer"), s.get("k49")]).toEqual([1, { n: 2 }, true, 49]);
        }
      } finally {
        s.close();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
