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
  /** Only these stages (push-pull: push, pull, packed, baseline); undefined: all. */
  stages?: string[];
  /** Only these tablet counts (push-pull); undefined: the bench's own ladder. */
  tablets?: number[];
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

/**
 * Runs a bench/lib script in its own process (a clean process per configuration: memory measured
 * from a fresh start, no threads left over from the last one) and returns its last stdout line as
 * JSON. A child that has not answered within `limitMs` is killed; either failure throws, naming it.
 */
export async function runChild<T>(script: string, args: string[], limitMs: number): Promise<T> {
  const child = Bun.spawn([process.execPath, new URL(script, import.meta.url).pathname, ...args], { stdout: "pipe", stderr: "pipe" });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, limitMs);
  try {
    const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
    if (timedOut) throw new Error(`no result within ${Math.round(limitMs / 1000)} s: its process was killed`);
    const line = out.trim().split("\n").pop() ?? "";
    if (code !== 0 || !line.startsWith("{")) throw new Error(`exit ${code}: ${err.trim().split("\n").slice(-3).join(" | ") || "no output"}`);
    return JSON.parse(line) as T;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A bare worker's next message, bounded: a worker that never answers or fails makes the step fail,
 * named by `what`, instead of hanging the bench (one full run hung for good on an answer that never came).
 */
export function workerAnswer(w: Worker, what: string, limitMs: number): Promise<unknown> {
  return new Promise<unknown>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${limitMs / 1000} s`)), limitMs);
    w.onmessage = (e) => (clearTimeout(t), resolve(e.data));
    w.onerror = (e) => (clearTimeout(t), reject(new Error(`${what}: a worker failed: ${e.message}`)));
  });
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

/** Rounds a benchmark interleaves: at least 3 even with --quick, so every figure has a median and a spread. */
export function roundsFor(quick: boolean, full = 5): number {
  return quick ? 3 : Math.max(3, full);
}

export interface Spread {
  median: number;
  lo: number;
  hi: number;
  /** True when the rounds disagree by more than the effect: the run cannot tell the effect from noise. */
  noisy: boolean;
}

function med(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * A ratio measured per round (each round's thing over the same round's baseline), as a median with
 * its spread. The effect is how far the ratio is from 1 (no difference); if the spread is wider
 * than that, the run says so rather than report a difference it did not measure.
 */
export function ratioSpread(values: number[], baselines: number[]): Spread {
  if (values.length !== baselines.length || values.length === 0) throw new Error("ratioSpread: one value per baseline, at least one round");
  const r = values.map((v, i) => v / baselines[i]!);
  const m = med(r);
  const lo = Math.min(...r);
  const hi = Math.max(...r);
  return { median: m, lo, hi, noisy: hi - lo > Math.abs(m - 1) };
}

/** A figure over rounds: median and range. */
export function valueSpread(values: number[]): { median: number; lo: number; hi: number } {
  return { median: med(values), lo: Math.min(...values), hi: Math.max(...values) };
}

export function fmtSpread(s: Spread, digits = 2): string {
  return `${s.median.toFixed(digits)} (${s.lo.toFixed(digits)}..${s.hi.toFixed(digits)})${s.noisy ? " NOISY" : ""}`;
}
