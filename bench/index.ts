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

const cli = cac("bench");
cli
  .command("[name]", `Run one benchmark (${Object.keys(BENCHES).join(", ")}) or all`)
  .option("--json <file>", "Write the results as JSON")
  .option("--quick", "A short run")
  .option("--results-dir <dir>", "Where plots go", { default: "bench/results" })
  .action(async (name: string | undefined, o: { json?: string; quick?: boolean; resultsDir: string }) => {
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
      await bench.run({ quick: o.quick === true, json, resultsDir: o.resultsDir });
    }
    process.exit(0);
  });
cli.help();
cli.parse();
