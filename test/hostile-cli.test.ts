/**
 * Hostile and careless input on the command line: every bad flag is a usage error (exit 2, one
 * clear line, no stack trace) that starts nothing; a run that cannot start fails, it does not pass.
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MAX_NODES, UsageError, forSeed, maxThreads, parseOptions } from "../src/main/options.ts";
import { scenario as echo } from "../src/workers/echo/scenario.ts";
import { scenario as olympics } from "../src/workers/olympics/scenario.ts";
import { scenario as paxos } from "../src/workers/paxos/scenario.ts";
import { runCli } from "./helpers.ts";
import { startCli } from "./raw-http.ts";

setDefaultTimeout(60_000);

const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "menhir-hostile-cli-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** A usage error: exit 2, the message on stderr, no stack trace, nothing started. */
function expectUsage(r: { code: number | null; out: string; err: string }, pattern: RegExp): void {
  expect(r.err).toMatch(pattern);
  expect(r.code).toBe(2);
  expect(r.err).not.toMatch(/\n\s+at /);
  expect(r.out).not.toContain("cluster up");
}

describe("hostile CLI: systems and counts", () => {
  test("an unknown system is a usage error that lists the systems, not a stocks run", async () => {
    const r = await runCli(["nosuchsystem", "--duration", "1", "--port", "0", "--data-dir", join(dir, "nosuch")]);
    expectUsage(r, /unknown system "nosuchsystem" \(systems: echo, paxos, olympics, stocks, bookstore\)/);
  });

  test("counts are integers within a stated limit, refused at once", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["stocks", "--clients", "2.5"], /--clients must be an integer/],
      [["stocks", "--clients", "1e9"], /--clients must be an integer >= 0 and <= 1000, got "1e9"/],
      [["stocks", "--clients", "100000"], /--clients must be an integer/],
      [["paxos", "--clients", "1e9"], /--clients must be an integer/],
      [["paxos", "--clients", "2.5"], /--clients must be an integer/],
      [["echo", "--clients", "2.5"], /--clients must be an integer/],
      [["echo", "--clients", "1e9"], /--clients must be an integer/],
      [["olympics", "--pull", "100000"], /--pull must be an integer/],
      [["olympics", "--pull", "9000", "--push", "5000"], new RegExp(`14002 nodes; menhir runs at most ${MAX_NODES}`)],
      [["paxos", "--window", "0"], /--window must be an integer >= 1/],
    ];
    // --sim: should a case slip through, it runs in memory instead of binding ports or spawning threads.
    for (const [args, pattern] of cases) expectUsage(await runCli([...args, "--sim", "--duration", "1", "--data-dir", join(dir, "counts")], 10_000), pattern);
  });

  test("more worker threads than this machine's memory holds is refused up front, with the way out", () => {
    const gib = 2 ** 30;
    const can = maxThreads(4 * gib);
    expect(can).toBeGreaterThan(10);
    const flags = (clients: number, extra: Record<string, unknown> = {}) => ({ clients, intervalMs: 10, ...extra });
    expect(() => parseOptions("echo", echo, flags(can - 1), {}, { totalMemBytes: 4 * gib })).not.toThrow();
    expect(() => parseOptions("echo", echo, flags(can), {}, { totalMemBytes: 4 * gib })).toThrow(UsageError);
    expect(() => parseOptions("echo", echo, flags(can), {}, { totalMemBytes: 4 * gib })).toThrow(/holds at most \d+ threads: pack them with --threads/);
    // Packed into fewer threads, or simulated, the same cluster fits.
    expect(() => parseOptions("echo", echo, flags(can, { threads: 4 }), {}, { totalMemBytes: 4 * gib })).not.toThrow();
    expect(() => parseOptions("echo", echo, flags(can, { sim: true }), {}, { totalMemBytes: 4 * gib })).not.toThrow();
    // The node limit holds in every mode.
    expect(() => parseOptions("paxos", paxos, { clients: MAX_NODES, sim: true }, {}, { totalMemBytes: 1024 * gib })).toThrow(UsageError);
  });

  test("--no-pin applies to packed threads only, and takes no value", async () => {
    // cac hands `pin: true` unless --no-pin is given.
    expect(parseOptions("echo", echo, { clients: 2, pin: true }, {}).opts.pin).toBe(true);
    expect(parseOptions("echo", echo, { clients: 2, threads: 2, pin: false }, {}).opts.pin).toBe(false);
    expect(() => parseOptions("echo", echo, { clients: 2, pin: false }, {})).toThrow(/--no-pin applies to packed threads: give --threads <n> too/);
    expect(() => parseOptions("echo", echo, { clients: 2, threads: 2, pin: "yes" }, {})).toThrow(/--no-pin takes no value, got "yes"/);
    expectUsage(await runCli(["echo", "--no-pin", "--duration", "1", "--data-dir", join(dir, "nopin")], 10_000), /--no-pin applies to packed threads/);
  });
});

describe("hostile CLI: values", () => {
  test("a negative value is out of range, not an unknown option", async () => {
    expectUsage(await runCli(["echo", "--seed", "-1", "--sim"]), /--seed must be an integer >= 0.*got "-1"/);
    expectUsage(await runCli(["echo", "--loss", "-0.1", "--sim"]), /--loss must be a number >= 0 and <= 1, got "-0.1"/);
    expectUsage(await runCli(["stocks", "--initial-quantity", "-5", "--sim"]), /--initial-quantity must be an integer >= 0/);
  });

  test("values are taken as typed: a secret of digits keeps every digit, an empty one is refused", async () => {
    const secret = "123456789012345678901";
    const run = await startCli(["echo", "--secret", secret, "--admin-port", "0", "--data-dir", join(dir, "digits"), "--fresh"], /admin API at (\S+)/, { MENHIR_SECRET: "" });
    try {
      const r = await fetch(new URL("/nodes", run.match[1]), { headers: { authorization: `Bearer ${secret}` } });
      expect(r.status).toBe(200);
    } finally {
      await run.stop();
    }
    expectUsage(await runCli(["echo", "--secret", "", "--sim"]), /--secret <secret>` value is missing/);
    expectUsage(await runCli(["echo", "--data-dir=", "--sim"]), /--data-dir <dir>` value is missing/);
  });

  test("a stray word after a system is refused", async () => {
    expectUsage(await runCli(["echo", "extra", "--sim"]), /unexpected argument "extra"/);
  });

  test("--help shows no misleading default for a --no- flag", async () => {
    const r = await runCli(["stocks", "--help"]);
    expect(r.code).toBe(0);
    const line = r.out.split("\n").find((l) => l.includes("--no-cache"));
    expect(line).toBeDefined();
    expect(line).not.toContain("default");
  });
});

describe("hostile CLI: the olympics password", () => {
  test("no --password and no env var: a random password, printed at start; the old published default writes nothing", async () => {
    const p = Bun.spawn([process.execPath, CLI, "olympics", "--duration", "4", "--port", "0", "--data-dir", join(dir, "olympics"), "--fresh", "--json"], {
      stdout: "pipe",
      stderr: "pipe",
      env: { ...process.env, MENHIR_OLYMPICS_PASSWORD: "" },
    });
    const reader = p.stdout.getReader();
    let out = "";
    const want = /serves HTTP at (\S+)[\s\S]*olympics password: (\S+) \(generated/;
    while (!want.test(out)) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    const [, url, password] = want.exec(out)!;
    expect(password!.length).toBeGreaterThanOrEqual(16);
    const setScore = (pw: string) =>
      fetch(new URL("/setScore/Stone%20Curling", url), { method: "POST", headers: { authorization: `Bearer ${pw}` }, body: JSON.stringify({ Gaul: 1 }) });
    // The dev default the docs used to publish.
    expect((await setScore("by-toutatis")).status).toBe(403);
    expect((await setScore(password!)).status).toBe(200);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += new TextDecoder().decode(value);
    }
    expect(await p.exited).toBe(0);
    const summary = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(summary.checks["no write without the password took effect"]).toBe(true);
    expect(summary.ok).toBe(true);
  });

  test("generated passwords differ per run, follow the seed in the simulator, and must be given on every host", () => {
    const base = { pull: 1, push: 1 };
    const a = parseOptions("olympics", olympics, base, {}).opts.password;
    const b = parseOptions("olympics", olympics, base, {}).opts.password;
    expect(a).not.toBe(b);
    expect(parseOptions("olympics", olympics, { ...base, password: "chosen-one" }, {}).opts.password).toBe("chosen-one");
    expect(parseOptions("olympics", olympics, base, { MENHIR_OLYMPICS_PASSWORD: "from-the-env" }).opts.password).toBe("from-the-env");
    expect(() => parseOptions("olympics", olympics, { ...base, password: "short" }, {})).toThrow(/at least 8 characters/);
    // A replayed seed is the same run: the simulated password follows the seed, also within --seeds.
    const sim = parseOptions("olympics", olympics, { ...base, sim: true, seed: 5 }, {}).opts;
    expect(parseOptions("olympics", olympics, { ...base, sim: true, seed: 5 }, {}).opts.password).toBe(sim.password);
    const seeds = parseOptions("olympics", olympics, { ...base, seeds: "1..9" }, {}).opts;
    expect(forSeed(seeds, 5).password).toBe(sim.password);
    expect(forSeed(seeds, 6).password).not.toBe(sim.password);
    const multi = { ...base, host: "a", listen: "127.0.0.1:0", peer: "b=127.0.0.1:1", secret: "a-long-secret" };
    expect(() => parseOptions("olympics", olympics, multi, {})).toThrow(/every host must use the same --password/);
    expect(parseOptions("olympics", olympics, { ...multi, password: "chosen-one" }, {}).opts.password).toBe("chosen-one");
  });
});

// A taken --listen port and an unreachable peer host: see hostile-bridge.test.ts.
describe("hostile CLI: ports", () => {
  // A port held by this test process: whatever asks for it next finds it taken.
  const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  afterAll(() => held.stop(true));

  /** A run error: one line on stderr, no stack trace, a non-zero exit, no summary. */
  function expectRunError(r: { code: number | null; out: string; err: string }, pattern: RegExp): void {
    expect(r.err).toMatch(pattern);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toHaveLength(1);
    expect(r.out).not.toContain("checks passed");
  }

  test("a node that cannot bind its HTTP port fails the run", async () => {
    const r = await runCli(["stocks", "--port", String(held.port), "--duration", "2", "--clients", "1", "--data-dir", join(dir, "busy-http"), "--fresh"], 30_000);
    expectRunError(r, new RegExp(`^error: node frontend failed to start: .*${held.port}`));
  });

  test("a taken --admin-port is one line and exit 1", async () => {
    expectRunError(await runCli(["echo", "--admin-port", String(held.port), "--duration", "1", "--data-dir", join(dir, "busy-admin")]), new RegExp(`^error: --admin-port ${held.port}: cannot serve`));
  });
});
