/**
 * Hostile and careless input on the host bridge: a --listen port that is taken, a peer host that
 * never answers, and an authenticated peer sending control requests that must be refused whole.
 * (Bad frames on the bridge and on nodes' data links: bridge.test.ts.)
 */
import { afterAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TcpBridge } from "../src/main/bridge.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";
import { FrameDecoder, encodeFrame, proof } from "../src/workers/runtime/wire.ts";
import { runCli } from "./helpers.ts";

setDefaultTimeout(60_000);

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const SECRET = "hostile-bridge-secret";
const dir = mkdtempSync(join(tmpdir(), "menhir-hostile-bridge-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** One line on stderr, no stack trace, exit 1, no summary. */
function expectRunError(r: { code: number | null; out: string; err: string }, pattern: RegExp): void {
  expect(r.err).toMatch(pattern);
  expect(r.code).toBe(1);
  expect(r.err.trim().split("\n")).toHaveLength(1);
  expect(r.out).not.toContain("checks passed");
}

describe("hostile bridge: ports and peers", () => {
  test("a taken --listen port is one line and exit 1", async () => {
    const held = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const r = await runCli(["echo", "--host", "a", "--listen", `127.0.0.1:${held.port}`, "--peer", "b=127.0.0.1:1", "--secret", SECRET, "--duration", "1", "--data-dir", join(dir, "busy")], 20_000);
      expectRunError(r, new RegExp(`^error: --listen 127.0.0.1:${held.port}: cannot listen`));
    } finally {
      held.stop(true);
    }
  });

  test("an unreachable peer host fails the run within --connect-timeout, on the driver host and on the others", async () => {
    const common = ["--listen", "127.0.0.1:0", "--secret", SECRET, "--connect-timeout", "1.5", "--data-dir", join(dir, "no-peer"), "--duration", "1"];
    // Killed at 15 s: well past the stated 1.5 s, well short of the old fixed 60 s.
    expectRunError(await runCli(["echo", "--host", "a", "--peer", "b=127.0.0.1:1", ...common], 15_000), /^error: peer hosts not connected within --connect-timeout 1.5 s: b at 127.0.0.1:1$/m);
    expectRunError(await runCli(["echo", "--host", "b", "--peer", "a=127.0.0.1:1", ...common], 15_000), /^error: peer hosts not connected within --connect-timeout 1.5 s: a at 127.0.0.1:1$/m);
  });
});

describe("hostile bridge: control requests from an authenticated peer", () => {
  test("network settings with unknown keys inside a link or a partition are refused whole; nothing changes", async () => {
    const cluster = new ThreadCluster({
      system: FIXTURE,
      nodes: [{ id: "n1", role: "kv" }, { id: "n2", role: "kv" }],
      seed: 1,
      dataDir: join(dir, "ctl"),
      logLevel: "silent",
      host: "b",
      placement: { n1: "b", n2: "a" },
      wire: { secret: SECRET, listenHostname: "127.0.0.1", peerHosts: ["a"] },
    });
    const log = { debug() {}, info() {}, warn() {}, error() {} };
    const bridge = new TcpBridge({ host: "b", listen: { hostname: "127.0.0.1", port: 0 }, peers: { a: { hostname: "127.0.0.1", port: 1 } }, secret: SECRET, log, handshakeTimeoutMs: 2000 }, cluster);
    cluster.attachBridge(bridge);
    bridge.start();
    await cluster.start();
    try {
      // Host "a", authenticated by the shared secret, on b's bridge.
      const decoder = new FrameDecoder();
      const frames: Array<Record<string, unknown>> = [];
      const sock = await Bun.connect({ hostname: "127.0.0.1", port: bridge.port, socket: { data: (_s, d) => void frames.push(...(decoder.push(d) as Array<Record<string, unknown>>)) } });
      const waitFor = async (n: number) => {
        for (let i = 0; i < 300 && frames.length < n; i++) await Bun.sleep(10);
        expect(frames.length).toBeGreaterThanOrEqual(n);
        return frames[n - 1]!;
      };
      const challenge = await waitFor(1);
      sock.write(encodeFrame({ t: "auth", host: "a", nonce: "n0nce", proof: proof(SECRET, "dialer", String(challenge.nonce), "a", "b") }));
      expect((await waitFor(2)).t).toBe("welcome");

      const before = JSON.stringify(cluster.network());
      const good = cluster.network();
      const hostile = [
        { ...good, links: { "n1->n2": { loss: 1, bogus: true } } },
        { ...good, partitions: [{ from: ["n1"], to: ["n2"], oneway: true }] },
      ];
      for (const [i, extra] of hostile.entries()) {
        sock.write(encodeFrame({ t: "ctl", id: 100 + i, op: "network", extra }));
        const answer = await waitFor(3 + i);
        expect(answer).toMatchObject({ t: "ctl_err", id: 100 + i });
        expect(String(answer.error)).toMatch(/unknown (setting|key)/);
      }
      expect(JSON.stringify(cluster.network())).toBe(before);
      sock.end();
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });
});
