import cac from "cac";
import type { Bench } from "./lib/harness.ts";

/** Every benchmark, by name. Each module exports `bench`. */
const BENCHES: Record<string, () => Promise<{ bench: Bench }>> = {
  transport: () => import("./transport.ts"),
  sim: () => import("./sim.ts"),
  runtime: () => import("./runtime.ts"),
  consensus: () => import("./consensus.ts"),
  cache: () => import("./cache.ts"),
  bookstore: () => import("./bookstore.ts"),
  "push-pull": () => import("./push-pull.ts"),
  tiered: () => import("./tiered.ts"),
  scale: () => import("./scale.ts"),
  checker: () => import("./checker.ts"),
};

const STAGES = ["push", "pull", "packed", "baseline"];

function parseStages(list: string): string[] {
  const out = list.split(",").map((x) => x.trim());
  const bad = out.filter((x) => !STAGES.includes(x));
  if (bad.length > 0 || out.length === 0) throw new Error(`--stages: unknown stage(s) ${bad.map((b) => JSON.stringify(b)).join(", ")}; known: ${STAGES.join(", ")}`);
  return out;
}

function parseCounts(list: string): number[] {
  const out = list.split(",").map((x) => Number(x.trim()));
  if (out.length === 0 || out.length > 16 || out.some((n) => !Number.isInteger(n) || n < 1 || n > 2000)) throw new Error(`--tablets: expected up to 16 whole numbers from 1 to 2000, comma-separated; got ${JSON.stringify(list)}`);
  return [...new Set(out)].sort((a, b) => a - b);
}

const cli = cac("bench");
cli
  .command("[name]", `Run one benchmark (${Object.keys(BENCHES).join(", ")}) or all`)
  .option("--json <file>", "Write the results as JSON")
  .option("--quick", "A short run")
  .option("--results-dir <dir>", "Where plots go", { default: "bench/results" })
  .option("--stages <list>", "push-pull only: the stages to run, of push,pull,packed,baseline (default: all)")
  .option("--tablets <list>", "push-pull only: the tablet counts to run, e.g. 1,100,500 (default: the usual ladder)")
  .action(async (name: string | undefined, o: { json?: string; quick?: boolean; resultsDir: string; stages?: string; tablets?: string | number }) => {
    let stages: string[] | undefined;
    let tablets: number[] | undefined;
    try {
      stages = o.stages === undefined ? undefined : parseStages(String(o.stages));
      tablets = o.tablets === undefined ? undefined : parseCounts(String(o.tablets));
    } catch (e) {
      console.error(e instanceof Error ? e.message : String(e));
      process.exit(2);
    }
    const names = name ? [name] : Object.keys(BENCHES);
    for (const n of names) {
      if (!BENCHES[n]) {
        console.error(`unknown benchmark "${n}" (known: ${Object.keys(BENCHES).join(", ")})`);
        process.exit(2);
      }
    }
    for (const n of names) {
      const { bench } = await BENCHES[n]!();
      console.log(`\n== ${bench.name}: ${bench.description}`);
      const json = o.json && names.length > 1 ? o.json.replace(/(\.json)?$/, `.${n}.json`) : o.json;
      await bench.run({ quick: o.quick === true, json, resultsDir: o.resultsDir, stages, tablets });
    }
    process.exit(0);
  });
cli.help();
cli.parse();
