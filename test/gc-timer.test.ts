import { describe, expect, test } from "bun:test";
import { BUN_DEFAULT_GC_TIMER_MS, GC_TIMER_ENV, describeGcTimer, gcTimer } from "../bench/lib/gc-timer.ts";

describe("Bun's idle collection timer, as the benchmarks report it", () => {
  test("the period is read as Bun reads it: a positive integer, else Bun's default; the off switch wins", () => {
    expect(gcTimer({})).toEqual({ periodMs: BUN_DEFAULT_GC_TIMER_MS, source: "default" });
    expect(gcTimer({ [GC_TIMER_ENV]: "10000" })).toEqual({ periodMs: 10_000, source: GC_TIMER_ENV });
    for (const bad of ["", " ", "0", "-5", "1.5", "ten"]) expect(gcTimer({ [GC_TIMER_ENV]: bad }).source).toBe("default");
    expect(gcTimer({ [GC_TIMER_ENV]: "10000", BUN_GC_TIMER_DISABLE: "1" })).toEqual({ periodMs: null, source: "BUN_GC_TIMER_DISABLE" });
    expect(describeGcTimer(gcTimer({}))).toContain("Bun's default");
    expect(describeGcTimer(gcTimer({ [GC_TIMER_ENV]: "10000" }))).toBe(`every 10000 ms (${GC_TIMER_ENV})`);
  });

  // The README tells users what the variable does to a cluster: this checks that this Bun still honours it.
  test("a thread that allocates a little every 50 ms is collected every second by default, and not with a 10 s period", async () => {
    // Small allocations (~1 MB in all), so JSC's own allocation trigger never fires: what remains is the timer's.
    const script = `
      const src = "let n = 0; let keep; const id = setInterval(() => { keep = Array.from({ length: 100 }, (_, i) => ({ i })); if (++n >= 40) { clearInterval(id); postMessage(0); } }, 50);";
      const w = new Worker(URL.createObjectURL(new Blob([src], { type: "application/javascript" })));
      await new Promise((r) => (w.onmessage = r));
      w.terminate();`;
    const edens = async (env: Record<string, string>) => {
      const base: Record<string, string | undefined> = { ...process.env, BUN_JSC_logGC: "1" };
      delete base[GC_TIMER_ENV];
      delete base.BUN_GC_TIMER_DISABLE;
      const p = Bun.spawn([process.execPath, "-e", script], { env: { ...base, ...env }, stdout: "pipe", stderr: "pipe" });
      const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
      expect(code).toBe(0);
      return ((out + err).match(/=> EdenCollection/g) ?? []).length;
    };
    const byDefault = await edens({});
    const slow = await edens({ [GC_TIMER_ENV]: "10000" });
    // 2 s with a 1 s timer: one or more in the worker and as many in the main thread (here: 4); with 10 s: none (here: 0).
    expect(byDefault).toBeGreaterThanOrEqual(2);
    expect(slow).toBeLessThanOrEqual(1);
  }, 30_000);
});
