import { afterAll, describe, expect, test, setDefaultTimeout } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseJsonLines } from "../src/history/jsonl.ts";
import { withEscapedCheck, type Summary } from "../src/driver/run.ts";
import { UsageError, parseOptions, replayCommand } from "../src/main/options.ts";
import { scenario as echo } from "../src/workers/echo/scenario.ts";
import { runCli } from "./helpers.ts";

// Starts workers or OS processes: give it room on a loaded 2-core machine.
setDefaultTimeout(30_000);

const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "menhir-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const cli = (...args: string[]) => runCli(args, 60_000);
const lastJson = (out: string) => JSON.parse(out.trim().split("\n").at(-1)!);

describe("bun run cluster", () => {
  test("--duration --json: summary shape and exit 0 when every check passes", async () => {
    const r = await cli("echo", "--duration", "1", "--json", "--data-dir", join(dir, "a"), "--fresh", "--seed", "3");
    expect(r.code).toBe(0);
    const s = lastJson(r.out);
    expect(s.system).toBe("echo");
    expect(s.ok).toBe(true);
    expect(s.seed).toBe(3);
    expect(Object.values(s.checks).every((v) => v === true)).toBe(true);
    expect(Object.keys(s.checks).length).toBeGreaterThanOrEqual(3);
  });

  test("exit 1 when a check fails (all messages lost)", async () => {
    const r = await cli("echo", "--duration", "1", "--json", "--loss", "1", "--data-dir", join(dir, "b"));
    expect(r.code).toBe(1);
    const s = lastJson(r.out);
    expect(s.ok).toBe(false);
    expect(s.checks["requests succeeded"]).toBe(false);
  });

  test("bad flags get a clear error and exit 2", async () => {
    for (const [args, pattern] of [
      [["echo", "--loss", "7"], /--loss must be a number >= 0 and <= 1/],
      [["echo", "--nemesis", "meteor"], /--nemesis takes kill,partition,loss,pause/],
      [["echo", "--whatever"], /Unknown option/],
      [["echo", "--host", "a"], /--listen needs a value/],
      [["echo", "--seeds", "9..2"], /--seeds must look like A..B/],
      [["echo", "--clients", "lots"], /--clients must be an integer/],
      [["paxos", "--f", "99"], /--f must be an integer >= 0 and <= 7/],
      [["stocks", "--p", "2"], /--p must be a number >= 0 and <= 1/],
      [["olympics", "--mode", "chaos"], /--mode must be random or testing/],
      [["echo", "--threads", "0"], /--threads must be an integer >= 1/],
    ] as const) {
      const r = await cli(...args);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(pattern);
    }
  });

  test("Ctrl-C stops the cluster cleanly: summary printed, exit 0", async () => {
    const p = Bun.spawn([process.execPath, CLI, "echo", "--data-dir", join(dir, "sig"), "--fresh"], { stdout: "pipe", stderr: "pipe" });
    const reader = p.stdout.getReader();
    let out = "";
    while (!out.includes("running until Ctrl-C")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    await Bun.sleep(300);
    p.kill("SIGINT");
    const code = await p.exited;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(code).toBe(0);
    expect(out).toContain("== echo (threads");
    expect(out).toContain("replies match requests");
  });

  test("--help per system lists that system's options", async () => {
    const r = await cli("echo", "--help");
    expect(r.out).toContain("--clients");
    expect(r.out).toContain("--nemesis");
  });

  test("--sim gives the same digest for the same seed, a different one for another seed", async () => {
    const run = (seed: string) => cli("echo", "--sim", "--seed", seed, "--duration", "20", "--nemesis", "kill,partition,loss", "--nemesis-interval", "1", "--json");
    const [a, b, c] = await Promise.all([run("41"), run("41"), run("42")]);
    const [sa, sb, sc] = [lastJson(a.out), lastJson(b.out), lastJson(c.out)];
    expect(sa.digest).toBe(sb.digest);
    expect(sa.delivered).toBe(sb.delivered);
    expect(sa.nemesis).toEqual(sb.nemesis);
    expect(sc.digest).not.toBe(sa.digest);
    expect(JSON.stringify(sc.nemesis)).not.toBe(JSON.stringify(sa.nemesis));
    expect(sa.simSeconds).toBeGreaterThanOrEqual(20);
  });
});

describe("errors that escape node code", () => {
  test("a rejection nobody handles during a run is collected, and fails the summary", async () => {
    const proc = Bun.spawn([process.execPath, new URL("./fixtures/escaped-error.ts", import.meta.url).pathname], { stdout: "pipe", stderr: "pipe" });
    const { value, errors } = JSON.parse((await new Response(proc.stdout).text()).trim()) as { value: number; errors: string[] };
    expect(await proc.exited).toBe(0);
    expect(value).toBe(7);
    expect(errors).toEqual(["order replica assertion failed: planted"]);
    const passed: Summary = { system: "toy", mode: "sim", seed: 1, ok: true, checks: { linearizable: true }, details: {}, metrics: {}, nemesis: [] };
    const s = withEscapedCheck(passed, errors);
    expect(s.ok).toBe(false);
    expect(s.checks["no error escaped node code"]).toBe(false);
    expect(s.details["no error escaped node code"]).toContain("planted");
    expect(withEscapedCheck(passed, []).ok).toBe(true);
  });

  test("stocks, seed 14, clock nemesis: an order replica whose clock steps back passes every check", async () => {
    // The core asserts that time never reverses; fed node.now() raw, a step back failed that assertion in a reply's callback.
    const r = await cli("stocks", "--seeds", "14..14", "--duration", "20", "--nemesis", "clock,kill", "--clock-skew", "50", "--clock-drift", "200");
    expect(r.err + r.out).not.toContain("time went back");
    expect(r.out).toContain("1 seeds, 0 failing");
    expect(r.code).toBe(0);
  });
});

describe("option parsing", () => {
  const parse = (flags: Record<string, unknown>) => parseOptions("echo", echo, flags, {});

  test("--history writes the clients' operations as JSON Lines, --history-report an HTML page; not with --seeds", async () => {
    const h = join(dir, "h.jsonl");
    const page = join(dir, "h.html");
    const r = await cli("echo", "--sim", "--seed", "4", "--duration", "2", "--json", "--history", h, "--history-report", page);
    expect(r.code).toBe(0);
    expect(lastJson(r.out).checks.linearizable).toBe(true);
    const ops = parseJsonLines(await Bun.file(h).text());
    expect(ops.length).toBe(lastJson(r.out).metrics.sent);
    expect(ops.every((op) => op.f === "echo" && op.process.startsWith("client-"))).toBe(true);
    expect(await Bun.file(page).text()).toContain("linearizable");
    const bad = await cli("echo", "--seeds", "1..2", "--history", h);
    expect(bad.code).toBe(2);
    expect(bad.err + bad.out).toContain("--history and --history-report record one run");
  });

  test("defaults and network flags", () => {
    const { opts, nodes } = parse({ seed: 9, latency: 5, loss: 0.1, dup: 0.2, latencyDist: "uniform", reorder: true });
    expect(opts.seed).toBe(9);
    expect(opts.duration).toBe(Infinity);
    expect(opts.network).toEqual({ latencyMs: 5, distribution: "uniform", loss: 0.1, dup: 0.2, reorder: true });
    expect(opts.clients).toBe(3);
    expect(nodes.map((n) => n.id)).toEqual(["server", "client-1", "client-2", "client-3"]);
    expect(opts.secretGenerated).toBe(true);
  });

  test("clock flags: every node gets its seeded offset and drift within the bounds; bad values are usage errors", () => {
    const { opts, nodes } = parse({ seed: 9, clockSkew: 30, clockDrift: 50, nemesis: "clock" });
    expect(opts.clockSkew).toBe(30);
    expect(opts.nemesis).toEqual(["clock"]);
    for (const n of nodes) {
      expect(Math.abs(n.clock!.offsetMs)).toBeLessThanOrEqual(30);
      expect(Math.abs(n.clock!.driftPpm)).toBeLessThanOrEqual(50);
    }
    expect(parse({ seed: 9, clockSkew: 30, clockDrift: 50 }).nodes).toEqual(nodes);
    expect(parse({ seed: 9 }).nodes.every((n) => n.clock!.offsetMs === 0 && n.clock!.driftPpm === 0)).toBe(true);
    expect(() => parse({ clockSkew: -1 })).toThrow(/--clock-skew/);
    expect(() => parse({ clockDrift: 5000 })).toThrow(/--clock-drift/);
  });

  test("multi-host flags: placement, driver host, secret required", () => {
    const { opts } = parse({ host: "b", listen: "0.0.0.0:7100", peer: ["a=10.0.0.1:7100"], place: "server=b", secret: "s3cret-s3cret" });
    expect(opts.multiHost!.placement).toEqual({ server: "b", "client-1": "a", "client-2": "a", "client-3": "a" });
    expect(opts.multiHost!.driverHost).toBe("a");
    expect(() => parse({ host: "b", listen: "0.0.0.0:7100", peer: "a=10.0.0.1:7100" })).toThrow(/shared secret/);
    expect(() => parse({ host: "b", listen: "0.0.0.0:7100", peer: "a=10.0.0.1:7100", secret: "s3cret-s3cret", place: "ghost=a" })).toThrow(UsageError);
    expect(() => parse({ host: "b", listen: "0.0.0.0:7100", peer: "a=10.0.0.1:7100", secret: "s3cret-s3cret", place: "server=c" })).toThrow(/neither --host nor a --peer/);
    expect(() => parse({ host: "b", listen: "nowhere", peer: "a=10.0.0.1:7100", secret: "s3cret-s3cret" })).toThrow(/host:port/);
  });

  test("replay command keeps the flags and pins the seed", () => {
    expect(replayCommand(["echo", "--seeds", "1..50", "--duration", "20", "--nemesis", "kill"], 17)).toBe("bun run cluster echo --duration 20 --nemesis kill --sim --seed 17");
  });
});
