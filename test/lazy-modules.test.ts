/**
 * A node's worker thread loads msgpackr's native string extractor (a native addon, ~2.4 MB per
 * thread) and node:crypto (~1 MB) only once it opens a TCP wire: a thread-per-node cluster on one
 * host never does. Run in a child process, so modules other test files loaded do not count.
 */
import { expect, test } from "bun:test";
import { join } from "node:path";

test("storage works without msgpackr's native extractor; opening a wire loads it, and values decode the same either way", async () => {
  const child = Bun.spawn([process.execPath, join(import.meta.dir, "fixtures", "lazy-wire.ts")], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  expect(JSON.parse(out.trim())).toEqual({ storedEqual: true, beforeWire: false, afterWire: true, roundTripEqual: true });
});
