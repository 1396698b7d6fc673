import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import cliProgress from "cli-progress";

export interface BenchOptions {
  /** A short run: fewer samples and configurations, for a smoke check. */
  quick: boolean;
  /** Where to write this benchmark's JSON results, if asked. */
  json?: string;
  /** Folder for plots (gitignored). */
  resultsDir: string;
}

/** A benchmark module's shape: `export const bench: Bench`. */
export interface Bench {
  name: string;
  description: string;
  run(opts: BenchOptions): Promise<unknown>;
}

/** A progress bar on stderr, so stdout stays clean for tables; silent when stderr is not a terminal. */
export function progress(label: string, total: number): { tick(note?: string): void; done(): void } {
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {value}/{total} {note}`, stream: process.stderr, noTTYOutput: false, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { note: "" });
  return {
    tick: (note = "") => bar.increment(1, { note }),
    done: () => bar.stop(),
  };
}

export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(value, null, 2) + "\n");
}

/** Print rows as an aligned table. */
export function printTable(rows: Array<Record<string, unknown>>): void {
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  const fmt = (v: unknown) => (typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v === null || v === undefined ? "-" : String(v));
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => fmt(r[c]).length)));
  console.log(cols.map((c, i) => c.padStart(widths[i]!)).join("  "));
  for (const r of rows) console.log(cols.map((c, i) => fmt(r[c]).padStart(widths[i]!)).join("  "));
}
