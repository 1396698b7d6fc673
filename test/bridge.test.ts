import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { proof } from "../src/main/auth.ts";
import { TcpBridge } from "../src/main/bridge.ts";
import { FrameDecoder, encodeFrame } from "../src/main/frames.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;
const SECRET = "bridge-test-secret";
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), "menhir-bridge-"));
  dirs.push(d);
  return d;
}
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

async function runHosts(place: string): Promise<{ a: { code: number; out: string }; b: { code: number; out: string } }> {
  const pa = freePort();
  const pb = freePort();
  const common = ["echo", "--seed", "5", "--secret", SECRET, "--place", place, "--fresh"];
  const b = Bun.spawn([process.execPath, CLI, ...common, "--host", "b", "--listen", `127.0.0.1:${pb}`, "--peer", `a=127.0.0.1:${pa}`, "--data-dir", tmp()], { stdout: "pipe", stderr: "pipe" });
  const a = Bun.spawn([process.execPath, CLI, ...common, "--host", "a", "--listen", `127.0.0.1:${pa}`, "--peer", `b=127.0.0.1:${pb}`, "--data-dir", tmp(), "--duration", "2", "--json"], { stdout: "pipe", stderr: "pipe" });
  const [ca, cb] = await Promise.all([a.exited, b.exited]);
  return { a: { code: ca, out: await new Response(a.stdout).text() }, b: { code: cb, out: await new Response(b.stdout).text() } };
}

describe("TCP bridge between two OS processes", () => {
  test("request/reply from host a to a server on host b", async () => {
    const r = await runHosts("server=b");
    expect(r.a.code).toBe(0);
    const summary = JSON.parse(r.a.out.trim().split("\n").at(-1)!);
    expect(summary.ok).toBe(true);
    expect(summary.metrics.ok).toBeGreaterThan(10);
    expect(r.b.code).toBe(0); // the driver host told b to stop
  });

  test("request/reply from clients on host b to a server on host a", async () => {
    const r = await runHosts("server=a,client-1=b,client-2=b,client-3=b");
    expect(r.a.code).toBe(0);
    const summary = JSON.parse(r.a.out.trim().split("\n").at(-1)!);
    expect(summary.ok).toBe(true);
    expect(summary.checks["every client answered"]).toBe(true);
    expect(summary.metrics.ok).toBeGreaterThan(10);
  });
});

describe("bridge security and bad frames", () => {
  async function setup() {
    const cluster = new ThreadCluster({ system: FIXTURE, nodes: [{ id: "n1", role: "kv" }, { id: "n2", role: "kv" }], seed: 1, dataDir: tmp(), logLevel: "silent", host: "b", placement: { n1: "b", n2: "a" } });
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, warn: (t: string) => void warnings.push(t), error: (t: string) => void warnings.push(t) };
    const bridge = new TcpBridge({ host: "b", listen: { hostname: "127.0.0.1", port: 0 }, peers: { a: { hostname: "127.0.0.1", port: freePort() } }, secret: SECRET, log, handshakeTimeoutMs: 2000 }, cluster);
    cluster.attachBridge(bridge);
    bridge.start();
    await cluster.start();
    return { cluster, bridge, warnings };
  }

  /** A raw client speaking the bridge protocol as host "a". */
  async function rawClient(port: number) {
    const decoder = new FrameDecoder();
    const frames: Array<Record<string, unknown>> = [];
    let closed = false;
    const sock = await Bun.connect({
      hostname: "127.0.0.1",
      port,
      socket: {
        data: (_s, d) => void frames.push(...(decoder.push(d) as Array<Record<string, unknown>>)),
        close: () => void (closed = true),
      },
    });
    const waitFor = async (pred: () => boolean) => {
      for (let i = 0; i < 200 && !pred(); i++) await Bun.sleep(10);
      return pred();
    };
    return { sock, frames, isClosed: () => closed, waitFor };
  }

  async function authenticate(port: number, secret: string) {
    const c = await rawClient(port);
    await c.waitFor(() => c.frames.length > 0);
    const challenge = c.frames[0]!;
    expect(challenge.t).toBe("challenge");
    c.sock.write(encodeFrame({ t: "auth", host: "a", nonce: "n0nce", proof: proof(secret, "dialer", String(challenge.nonce), "a", "b") }));
    return c;
  }

  test("a wrong secret is refused; a right one is welcomed with the listener's own proof", async () => {
    const { cluster, bridge, warnings } = await setup();
    try {
      const bad = await authenticate(bridge.port, "not-the-secret");
      expect(await bad.waitFor(bad.isClosed)).toBe(true);
      expect(bridge.counters.rejectedConnections).toBe(1);
      expect(warnings.some((w) => /failed the handshake/.test(w))).toBe(true);
      const good = await authenticate(bridge.port, SECRET);
      await good.waitFor(() => good.frames.length > 1);
      expect(good.frames[1]!.t).toBe("welcome");
      expect(good.frames[1]!.proof).toBe(proof(SECRET, "listener", "n0nce", "b", "a"));
      expect(good.isClosed()).toBe(false);
      // The authenticated peer delivers a node message to n1.
      good.sock.write(encodeFrame({ t: "msgs", ms: [{ src: "n2", dest: "n1", body: { type: "count" } }] }));
      await Bun.sleep(100);
      expect(await cluster.inspect<{ count: number; incarnation: number }>("n1")).toEqual({ count: 1, incarnation: 0 });
      good.sock.end();
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });

  test("oversized, malformed and misaddressed frames close only their own connection", async () => {
    const { cluster, bridge } = await setup();
    try {
      const keeper = await authenticate(bridge.port, SECRET);
      await keeper.waitFor(() => keeper.frames.length > 1);

      const huge = await rawClient(bridge.port);
      const hdr = new Uint8Array(4);
      new DataView(hdr.buffer).setUint32(0, 0xfffffff0);
      huge.sock.write(hdr);
      expect(await huge.waitFor(huge.isClosed)).toBe(true);

      const garbage = await authenticate(bridge.port, SECRET);
      await garbage.waitFor(() => garbage.frames.length > 1);
      const junk = new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]);
      garbage.sock.write(junk);
      expect(await garbage.waitFor(garbage.isClosed)).toBe(true);

      const misaddressed = await authenticate(bridge.port, SECRET);
      await misaddressed.waitFor(() => misaddressed.frames.length > 1);
      misaddressed.sock.write(encodeFrame({ t: "msgs", ms: [{ src: "n2", dest: "n2", body: { type: "count" } }] }));
      expect(await misaddressed.waitFor(misaddressed.isClosed)).toBe(true);

      const spoofed = await authenticate(bridge.port, SECRET);
      await spoofed.waitFor(() => spoofed.frames.length > 1);
      spoofed.sock.write(encodeFrame({ t: "msgs", ms: [{ src: "n1", dest: "n1", body: { type: "count" } }] }));
      expect(await spoofed.waitFor(spoofed.isClosed)).toBe(true);

      expect(bridge.counters.rejectedConnections).toBe(4);
      // The first connection and the process are unaffected.
      expect(keeper.isClosed()).toBe(false);
      keeper.sock.write(encodeFrame({ t: "msgs", ms: [{ src: "n2", dest: "n1", body: { type: "count" } }] }));
      await Bun.sleep(100);
      expect((await cluster.inspect<{ count: number }>("n1"))!.count).toBe(1);
      keeper.sock.end();
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });
});
