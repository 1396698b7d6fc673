import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { runScenario } from "../src/driver/run.ts";
import { scenario } from "../src/workers/echo/scenario.ts";
import { tempDirs, withThreads } from "./helpers.ts";

setDefaultTimeout(60_000);
const tmp = tempDirs("startup");

describe("a large cluster coming up", () => {
  // Nodes start in no particular order, and a client's request still in flight when the run ends is
  // neither a success nor a failure: with no fault injected, none may fail (timeout or error).
  test("300 clients packed into 2 threads: with no fault, no request fails", async () => {
    const opts = { clients: 300, intervalMs: 10, seed: 3, duration: 2, latency: 0, loss: 0, dup: 0, nemesis: [], nemesisInterval: 5, logLevel: "silent" } as never;
    const s = await withThreads({ system: "echo", nodes: scenario.topology(opts), seed: 3, dataDir: tmp(), logLevel: "silent", threads: 2 }, (c) => runScenario(c, scenario, opts));
    expect(s.checks["no request failed without a fault"]).toBe(true);
    expect(s.metrics.failed).toBe(0);
    expect(s.metrics.ok as number).toBeGreaterThan(300);
    expect(Object.entries(s.checks).filter(([, ok]) => !ok)).toEqual([]);
  });
});
