import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStorage } from "../src/workers/runtime/storage.ts";

// The transaction wrapper is made once per storage and reused: each call must still commit its own
// writes, return its function's value, and roll back all of its writes (and only its own) on a throw.
for (const mode of ["memory", "os"] as const) {
  test(`storage transactions commit, return, roll back and nest (${mode})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "storage-test-"));
    try {
      const st = new SqliteStorage(mode === "memory" ? null : join(dir, "db"), mode);
      expect(st.transaction(() => {
        st.put("a", 1);
        st.put("b", [2, "two"]);
        return "done";
      })).toBe("done");
      expect(() =>
        st.transaction(() => {
          st.put("a", 10);
          st.put("c", 3);
          throw new Error("planned");
        }),
      ).toThrow("planned");
      expect(st.get("a")).toBe(1);
      expect(st.get("c")).toBeUndefined();
      // A second transaction after a rollback commits normally.
      st.transaction(() => st.put("c", 4));
      expect(st.get("c")).toBe(4);
      // A nested transaction that throws rolls back its own writes only.
      st.transaction(() => {
        st.put("d", 5);
        try {
          st.transaction(() => {
            st.put("e", 6);
            throw new Error("inner");
          });
        } catch {}
      });
      expect(st.get("d")).toBe(5);
      expect(st.get("e")).toBeUndefined();
      expect(st.get("b")).toEqual([2, "two"]);
      st.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
