import { expect, test } from "bun:test";

/**
 * A tablet in a thread of its own sees a push every so often, and 500 of them share two cores: how
 * much each push costs depends on whether JSC has optimized the code it runs. JSC optimizes a
 * function only once most of the places it profiles in it have run, so a hot path padded with rare
 * cases stays in the baseline tier for thousands of pushes (bench/push-pull.ts, beside the floor).
 * Run in a fresh process: in this one, other tests have long since optimized the runtime.
 */
test("the runtime's deliver, the tablet's push handler and node.now() are optimized within 600 pushes, and stay so when the tablet is inspected; a handler padded with rare paths is not", async () => {
  const p = Bun.spawn([process.execPath, new URL("./fixtures/push-tier.ts", import.meta.url).pathname, "600"], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  // The push after which each was first seen optimized, or null if never.
  const r = JSON.parse(out) as {
    tablet: { deliver: number | null; handler: number | null; now: number | null; reoptimizedAfterInspect: number };
    planted: { handler: number | null };
    addsAfterCopy: { handler: number | null; reoptimizedAfterInspect: number };
  };
  expect(r.tablet.deliver).not.toBeNull();
  expect(r.tablet.handler).not.toBeNull();
  // A now() that tested on every read whether the clock had been stepped stayed unoptimized past 600 (node.ts, readClock).
  expect(r.tablet.now).not.toBeNull();
  // The check can fail: the same pushes leave a handler written with many untaken paths unoptimized.
  expect(r.planted.handler).toBeNull();
  // Inspecting a tablet (the admin API, a driver) leaves its optimized push path in place...
  expect(r.tablet.reoptimizedAfterInspect).toBe(0);
  // ...as it does not for a role whose inspect copies its state and then adds a field (the tablet's did).
  expect(r.addsAfterCopy.handler).not.toBeNull();
  expect(r.addsAfterCopy.reoptimizedAfterInspect).toBeGreaterThan(0);
}, 30_000);
