import { expect, test } from "bun:test";
import { rawMessageChannel } from "../bench/consensus.ts";

// The consensus bench divides commits/s by this baseline, so it must end on its own and give a rate:
// the driver stops sending after the window and answers once every message it sent has come back.
test("the raw MessageChannel baseline ends after its window and reports a rate", async () => {
  const t0 = performance.now();
  const rate = await rawMessageChannel(300);
  const took = performance.now() - t0;
  expect(Number.isFinite(rate)).toBe(true);
  expect(rate).toBeGreaterThan(1000);
  expect(took).toBeGreaterThanOrEqual(300);
}, 10_000);
