import { describe, expect, test, setDefaultTimeout } from "bun:test";
import { TcpBridge } from "../src/main/bridge.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";
import { FrameDecoder, encodeFrame, proof } from "../src/workers/runtime/wire.ts";
import { freePort, tempDirs } from "./helpers.ts";

// Starts workers or OS processes: give it room on a loaded 2-core machine.
setDefaultTimeout(30_000);

const FIXTURE = new URL("./fixtures/kv-roles.ts", import.meta.url).href;
const CLI = new URL("../src/main/cli.ts", import.meta.url).pathname;
const SECRET = "bridge-test-secret";
const tmp = tempDirs("bridge");

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

describe("bridge and data-link security, bad frames", () => {
  async function setup() {
    const cluster = new ThreadCluster({
      system: FIXTURE,
      nodes: [{ id: "n1", role: "kv" }, { id: "n2", role: "kv" }],
      seed: 1,
      dataDir: tmp(),
      logLevel: "silent",
      host: "b",
      placement: { n1: "b", n2: "a" },
      wire: { secret: SECRET, listenHostname: "127.0.0.1", peerHosts: ["a"] },
    });
    const warnings: string[] = [];
    const log = { debug() {}, info() {}, warn: (t: string) => void warnings.push(t), error: (t: string) => void warnings.push(t) };
    const bridge = new TcpBridge({ host: "b", listen: { hostname: "127.0.0.1", port: 0 }, peers: { a: { hostname: "127.0.0.1", port: freePort() } }, secret: SECRET, log, handshakeTimeoutMs: 2000 }, cluster);
    cluster.attachBridge(bridge);
    bridge.start();
    await cluster.start();
    for (let i = 0; i < 100 && cluster.dataPort("n1") === undefined; i++) await Bun.sleep(10);
    return { cluster, bridge, warnings, dataPort: cluster.dataPort("n1")! };
  }

  /** A raw client speaking the wire protocol as host "a". */
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

  const count = (n = 1) => encodeFrame({ t: "msgs", ms: Array.from({ length: n }, () => ({ src: "n2", dest: "n1", body: { type: "count" } })) });

  test("a wrong secret is refused on the host bridge and on a node's data link; the right one is welcomed", async () => {
    const { cluster, bridge, warnings, dataPort } = await setup();
    try {
      const bad = await authenticate(bridge.port, "not-the-secret");
      expect(await bad.waitFor(bad.isClosed)).toBe(true);
      expect(bridge.counters.rejectedConnections).toBe(1);
      expect(warnings.some((w) => /failed the handshake/.test(w))).toBe(true);
      const badData = await authenticate(dataPort, "not-the-secret");
      expect(await badData.waitFor(badData.isClosed)).toBe(true);

      const good = await authenticate(dataPort, SECRET);
      await good.waitFor(() => good.frames.length > 1);
      expect(good.frames[1]!.t).toBe("welcome");
      expect(good.frames[1]!.proof).toBe(proof(SECRET, "listener", "n0nce", "b", "a"));
      good.sock.write(count(3));
      // Wait for the count to land (a loaded machine may take a while), not a fixed time.
      let seen: unknown = null;
      for (let i = 0; i < 100; i++) {
        seen = await cluster.inspect<{ count: number; incarnation: number }>("n1");
        if ((seen as { count?: number } | null)?.count === 3) break;
        await Bun.sleep(50);
      }
      expect(good.isClosed()).toBe(false);
      expect(seen).toEqual({ count: 3, incarnation: 0 });
      good.sock.end();
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });

  test("a network change that cannot reach a host is an error naming that host, not a silent success", async () => {
    const { cluster, bridge } = await setup();
    try {
      // Host a never comes up in this setup.
      const failed = await cluster.setNetwork({ loss: 0.1 }).then(() => "applied", (e: Error) => e.message);
      expect(failed).toMatch(/did not take effect everywhere: host a/);
      const invalid = await cluster.setNetwork({ loss: 2 } as never).then(() => "applied", (e: Error) => e.message);
      expect(invalid).toMatch(/loss must be a probability/);
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });

  test("oversized, malformed, misaddressed and spoofed frames close only their own connection", async () => {
    const { cluster, bridge, dataPort } = await setup();
    try {
      const keeper = await authenticate(dataPort, SECRET);
      await keeper.waitFor(() => keeper.frames.length > 1);

      const huge = await rawClient(dataPort);
      const hdr = new Uint8Array(4);
      new DataView(hdr.buffer).setUint32(0, 0xfffffff0);
      huge.sock.write(hdr);
      expect(await huge.waitFor(huge.isClosed)).toBe(true);

      const garbage = await authenticate(dataPort, SECRET);
      await garbage.waitFor(() => garbage.frames.length > 1);
      garbage.sock.write(new Uint8Array([0, 0, 0, 3, 0xc1, 0xc1, 0xc1]));
      expect(await garbage.waitFor(garbage.isClosed)).toBe(true);

      for (const m of [{ src: "n2", dest: "n2", body: { type: "count" } }, { src: "n1", dest: "n1", body: { type: "count" } }, { src: "n2", dest: "n1", body: "no type" }]) {
        const c = await authenticate(dataPort, SECRET);
        await c.waitFor(() => c.frames.length > 1);
        c.sock.write(encodeFrame({ t: "msgs", ms: [m] }));
        expect(await c.waitFor(c.isClosed)).toBe(true);
      }

      // The host bridge carries no node-to-node traffic and refuses unknown frame types.
      for (const frame of [{ t: "msgs", ms: [{ src: "n2", dest: "n1", body: { type: "count" } }] }, { t: "launch-missiles" }]) {
        const c = await authenticate(bridge.port, SECRET);
        await c.waitFor(() => c.frames.length > 1);
        c.sock.write(encodeFrame(frame));
        expect(await c.waitFor(c.isClosed)).toBe(true);
      }
      expect(bridge.counters.rejectedConnections).toBe(2);

      // The first connection and the process are unaffected.
      expect(keeper.isClosed()).toBe(false);
      keeper.sock.write(count());
      await Bun.sleep(100);
      expect((await cluster.inspect<{ count: number }>("n1"))!.count).toBe(1);
      keeper.sock.end();
    } finally {
      await cluster.stop();
      bridge.close();
    }
  });
});
