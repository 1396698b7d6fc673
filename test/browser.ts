/**
 * For the dashboard tests: a cluster started by the CLI as a person would (its printed dashboard
 * line parsed), and a headless system Chromium driven by puppeteer-core. No browser is downloaded:
 * without one on the machine the tests skip with a message saying how to get it.
 */
import { existsSync, mkdirSync } from "node:fs";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import puppeteer, { type Browser } from "puppeteer-core";

const CANDIDATES = [process.env.CHROMIUM_PATH, "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];

/** A Chromium binary, or null (the tests then skip). */
export const CHROMIUM: string | null = CANDIDATES.find((p): p is string => !!p && existsSync(p)) ?? null;
export const NO_CHROMIUM = "dashboard browser tests skipped: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH); .ci/run installs it";

/** Screenshots of the test run, for a person to look at (gitignored). */
export const SHOTS = join(import.meta.dir, "screenshots");

const CLI = join(import.meta.dir, "..", "src", "main", "cli.ts");

export interface RunningCli {
  proc: ReturnType<typeof Bun.spawn>;
  /** The admin API's base URL and the token from the printed dashboard line. */
  base: string;
  token: string;
  dashboard: string;
  output(): string;
  errors(): string;
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }>;
  stop(): Promise<number>;
}

/** Start `cluster <args>` and wait for its dashboard line. */
export async function startCli(args: string[]): Promise<RunningCli> {
  const dir = mkdtempSync(join(tmpdir(), "menhir-dash-"));
  const proc = Bun.spawn([process.execPath, CLI, ...args, "--data-dir", dir, "--fresh", "--admin-port", "0"], { stdout: "pipe", stderr: "pipe", env: { ...process.env, MENHIR_SECRET: "" } });
  let out = "";
  const reader = (proc.stdout as ReadableStream<Uint8Array>).getReader();
  const dec = new TextDecoder();
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += dec.decode(value, { stream: true });
    }
  })();
  let err = "";
  const errReader = (proc.stderr as ReadableStream<Uint8Array>).getReader();
  void (async () => {
    for (;;) {
      const { value, done } = await errReader.read();
      if (done) break;
      err += dec.decode(value);
    }
  })();
  const t0 = Date.now();
  let m: RegExpExecArray | null = null;
  while (!(m = /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)#token=(\S+)/.exec(out))) {
    if (Date.now() - t0 > 30_000 || proc.exitCode !== null) throw new Error(`no dashboard line from the CLI:\n${out}`);
    await Bun.sleep(50);
  }
  const base = m[1]!;
  const token = decodeURIComponent(m[2]!);
  return {
    proc,
    base,
    token,
    dashboard: `${base}#token=${encodeURIComponent(token)}`,
    output: () => out,
    errors: () => err,
    async api(method, path, body) {
      const res = await fetch(new URL(path, base), { method, headers: { authorization: `Bearer ${token}` }, body: body === undefined ? undefined : JSON.stringify(body) });
      return { status: res.status, json: (await res.json()) as any };
    },
    async stop() {
      proc.kill("SIGINT");
      return await proc.exited;
    },
  };
}

export async function launchBrowser(): Promise<Browser> {
  mkdirSync(SHOTS, { recursive: true });
  return puppeteer.launch({
    executablePath: CHROMIUM!,
    headless: true,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    defaultViewport: { width: 1440, height: 1000 },
  });
}

/** Poll until `fn` returns a truthy value (or throw after `ms`). */
export async function until<T>(what: string, fn: () => Promise<T> | T, ms = 20_000): Promise<T> {
  const t0 = Date.now();
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await Bun.sleep(100);
  }
}
