/**
 * Linearizability checker speed: wall time against history size, for histories generated from a
 * truly linearizable register (every operation takes effect at a random point inside its interval),
 * split over 1 or 100 keys, with and without indefinite operations. One process per client, each
 * with one operation open at a time, 10 clients.
 */
import { checkLinearizable } from "../src/history/linearizable.ts";
import { registerModel } from "../src/history/models.ts";
import type { Op } from "../src/history/op.ts";
import { seededRandom } from "../src/workers/runtime/random.ts";
import { printTable, progress, writeJson, type Bench } from "./lib/harness.ts";

/** A linearizable register history: `ops` operations by `clients` clients over `keys` keys; `infoRate` of writes time out. */
export function registerHistory(ops: number, keys: number, clients: number, infoRate: number, seed = 1): Op[] {
  const rng = seededRandom(seed, "checker-bench");
  const clock = Array.from({ length: clients }, () => rng.range(0, 1));
  const planned: Array<{ op: Op; at: number }> = [];
  for (let i = 0; i < ops; i++) {
    const c = i % clients;
    const invokeMs = clock[c]! + rng.range(0, 2);
    const at = invokeMs + rng.range(0, 3);
    const completeMs = at + rng.range(0, 3);
    clock[c] = completeMs;
    const write = rng.chance(0.5);
    const op: Op = { process: `client-${c + 1}`, type: "ok", f: write ? "write" : "read", value: write ? i : null, invokeMs, completeMs, key: `k${rng.int(keys)}` };
    if (write && rng.chance(infoRate)) op.type = "info";
    planned.push({ op, at });
  }
  // Apply in linearization order to learn what each read saw; an info write took effect (or not, by coin).
  const reg = new Map<string, unknown>();
  for (const { op } of [...planned].sort((a, b) => a.at - b.at)) {
    const k = op.key as string;
    if (op.f === "read") op.value = reg.get(k) ?? null;
    else if (op.type === "ok" || rng.chance(0.5)) reg.set(k, op.value);
  }
  return planned.map((p) => p.op);
}

export const bench: Bench = {
  name: "checker",
  description: "linearizability checker: wall time against history size (register model, 10 clients)",
  async run(o) {
    const sizes = o.quick ? [1_000, 10_000] : [1_000, 10_000, 50_000, 100_000];
    const shapes = [
      { keys: 100, infoRate: 0 },
      { keys: 100, infoRate: 0.05 },
      { keys: 1, infoRate: 0 },
    ];
    const rows: Array<Record<string, unknown>> = [];
    const bar = progress("checker", sizes.length * shapes.length);
    for (const shape of shapes) {
      for (const n of sizes) {
        // One key with 100k operations is the pathological case; it is bounded by the budget.
        const h = registerHistory(n, shape.keys, 10, shape.infoRate);
        const r = checkLinearizable(h, registerModel, { budgetMs: 30_000 });
        rows.push({ ops: n, keys: shape.keys, "info %": shape.infoRate * 100, verdict: r.verdict, ms: +r.elapsedMs.toFixed(1), "µs / op": +((r.elapsedMs * 1000) / n).toFixed(2), steps: r.steps });
        bar.tick(`${n} ops, ${shape.keys} keys`);
      }
    }
    bar.done();
    printTable(rows);
    if (o.json) writeJson(o.json, rows);
    return rows;
  },
};
