/**
 * The CLI as a terminal user meets it: one Ctrl-C under `bun run` (which arrives twice at once)
 * stops cleanly with the summary and exit 0; a piped run prints a status line every few seconds;
 * a clean stop leaves no SQLite -wal/-shm files behind.
 */
import { describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "src", "main", "cli.ts");

async function readAll(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  const dec = new TextDecoder();
  for await (const chunk of stream) sink.text += dec.decode(chunk, { stream: true });
}

describe("the terminal", () => {
  test("a Ctrl-C delivered twice at once (terminal + bun run) still stops cleanly: summary, exit 0, no -wal/-shm left", async () => {
    const dir = mkdtempSync(join(tmpdir(), "menhir-term-"));
    const p = Bun.spawn([process.execPath, CLI, "stocks", "--port", "0", "--clients", "2", "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
    const out = { text: "" };
    const err = { text: "" };
    const reading = Promise.all([readAll(p.stdout, out), readAll(p.stderr, err)]);
    const t0 = Date.now();
    while (!out.text.includes("running until Ctrl-C")) {
      if (Date.now() - t0 > 30_000 || p.exitCode !== null) throw new Error(`cluster did not start:\n${out.text}\n${err.text}`);
      await Bun.sleep(50);
    }
    await Bun.sleep(500);
    // Two signals sent back to back would merge into one pending signal; the terminal's and bun's
    // copies arrive as two deliveries a moment apart.
    p.kill("SIGINT");
    await Bun.sleep(100);
    p.kill("SIGINT");
    const code = await p.exited;
    await reading;
    expect(err.text).toContain("SIGINT: stopping the cluster cleanly");
    expect(code).toBe(0);
    expect(out.text).toContain("== stocks (threads");
    expect(out.text).toContain("all checks passed");
    const files = readdirSync(dir);
    expect(files.filter((f) => f.endsWith(".sqlite")).length).toBeGreaterThan(0);
    expect(files.filter((f) => f.endsWith("-wal") || f.endsWith("-shm"))).toEqual([]);
  }, 60_000);

  // A terminal's Ctrl-C goes to the whole foreground process group: npm, its shell, bun run and the
  // cluster. npm runs the command through `<script-shell> -c`; dash (Debian's sh) dies of the signal
  // at once and npm then reports 130 whatever the cluster did. The project's .npmrc names bash,
  // which execs a lone command, so no shell stands between npm and bun.
  const npx = Bun.which("npx");
  (npx ? test : test.skip)("npx bun run cluster: one Ctrl-C to the process group, as a terminal sends it, ends with the summary and exit 0", async () => {
    const dir = mkdtempSync(join(tmpdir(), "menhir-term-"));
    const p = spawn(npx!, ["bun", "run", "cluster", "stocks", "--port", "0", "--clients", "2", "--data-dir", dir], { cwd: join(import.meta.dir, ".."), detached: true, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout!.on("data", (d) => (out += String(d)));
    p.stderr!.on("data", (d) => (err += String(d)));
    const exited = new Promise<[number | null, string | null]>((resolve) => p.on("exit", (code, signal) => resolve([code, signal])));
    const t0 = Date.now();
    while (!out.includes("running until Ctrl-C")) {
      if (Date.now() - t0 > 60_000 || p.exitCode !== null) throw new Error(`cluster did not start:\n${out}\n${err}`);
      await Bun.sleep(50);
    }
    await Bun.sleep(500);
    process.kill(-p.pid!, "SIGINT");
    const [code, signal] = await exited;
    expect(out).toContain("all checks passed");
    expect([code, signal]).toEqual([0, null]);
  }, 90_000);

  test("piped, the status line is printed every few seconds: ops/s, latency, nodes up, last fault", async () => {
    const dir = mkdtempSync(join(tmpdir(), "menhir-term-"));
    const p = Bun.spawn([process.execPath, CLI, "echo", "--duration", "6", "--nemesis", "kill", "--nemesis-interval", "2", "--data-dir", dir], { stdout: "pipe", stderr: "pipe" });
    const out = { text: "" };
    const err = { text: "" };
    await Promise.all([readAll(p.stdout, out), readAll(p.stderr, err)]);
    expect(await p.exited).toBe(0);
    const lines = err.text.split("\n").filter((l) => l.startsWith("status: "));
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toMatch(/^status: ops\/s \d+ · p50 [\d.–]+ ms · p99 [\d.–]+ ms · nodes up \d\/4 · last fault: /);
    // The nemesis killed a node (any node: clients too) at 2 s; by the 5 s line that is the last fault.
    expect(lines[0]).toMatch(/last fault: \S+ (crashed|restarted) \(nemesis/);
    // The run's stdout stays the summary only: the status line never mixes into it.
    expect(out.text).not.toContain("status: ");
  }, 60_000);
});

describe("--admin-host", () => {
  test("127.0.0.1 unless told otherwise; only addresses are accepted", async () => {
    const { parseOptions, UsageError } = await import("../src/main/options.ts");
    const { loadScenario } = await import("../src/workers/registry.ts");
    const echo = await loadScenario("echo");
    const parse = (flags: Record<string, unknown>) => parseOptions("echo", echo, flags, {}).opts;
    expect(parse({}).adminHost).toBe("127.0.0.1");
    expect(parse({}).adminPort).toBe(0);
    expect(parse({ adminHost: "0.0.0.0" }).adminHost).toBe("0.0.0.0");
    expect(parse({ adminHost: "::1" }).adminHost).toBe("::1");
    for (const bad of ["example.com", "1.2.3", "", "127.0.0.1; rm"]) expect(() => parse({ adminHost: bad })).toThrow(UsageError);
  });
});
