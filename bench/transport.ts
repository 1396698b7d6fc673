/**
 * Transport benchmark: what the node API costs over its raw baseline, on both kinds of link.
 *   mc:  raw MessageChannel ping-pong between two workers  vs  request/reply through the node API
 *   tcp: raw Bun TCP ping-pong between two OS processes     vs  request/reply through the node API between two hosts
 *        (the nodes' own TCP data links, set up through the hosts' bridge)
 * Each figure is the median over interleaved rounds, so drift on a busy machine hits both sides alike.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { percentile } from "../src/driver/stats.ts";
import { TcpBridge } from "../src/main/bridge.ts";
import { ThreadCluster } from "../src/main/supervisor.ts";
import { printTable, progress, writeJson, type Bench, type BenchOptions } from "./lib/harness.ts";

interface Figures {
  rttP50Us: number;
  rttP99Us: number;
  msgsPerSec: number;
}

const ROLES = new URL("./nodes/transport-roles.ts", import.meta.url).href;
const NODES = [
  { id: "pinger", role: "pinger", config: { peer: "ponger" } },
  { id: "ponger", role: "ponger" },
];

function figures(latMs: number[], blastN: number, elapsedMs: number): Figures {
  return { rttP50Us: percentile(latMs, 50) * 1000, rttP99Us: percentile(latMs, 99) * 1000, msgsPerSec: blastN / (elapsedMs / 1000) };
}

async function rawMc(n: number): Promise<Figures> {
  const url = new URL("./lib/raw-mc-worker.ts", import.meta.url).href;
  const a = new Worker(url);
  const b = new Worker(url);
  const ch = new MessageChannel();
  await new Promise((r) => {
    b.onmessage = r;
    b.postMessage({ port: ch.port2, role: "pong", n }, [ch.port2]);
  });
  const res = await new Promise<{ lat: number[]; elapsedMs: number }>((r) => {
    a.onmessage = (e) => r(e.data);
    a.postMessage({ port: ch.port1, role: "ping", n }, [ch.port1]);
  });
  a.terminate();
  b.terminate();
  return figures(res.lat, n * 10, res.elapsedMs);
}

async function nodeOn(cluster: ThreadCluster, n: number): Promise<Figures> {
  // Warm the link first: the first message sets it up through the supervisor.
  await cluster.request("pinger", { type: "rtt", n: 10 }, 10_000);
  const rtt = await cluster.request<{ lat: number[] }>("pinger", { type: "rtt", n }, 120_000);
  const blast = await cluster.request<{ elapsedMs: number }>("pinger", { type: "blast", n: n * 10 }, 120_000);
  return figures(rtt.lat, n * 10, blast.elapsedMs);
}

async function nodeMc(n: number, dataDir: string): Promise<Figures> {
  const cluster = new ThreadCluster({ system: ROLES, nodes: NODES, seed: 1, dataDir, logLevel: "warn" });
  await cluster.start();
  try {
    return await nodeOn(cluster, n);
  } finally {
    await cluster.stop();
  }
}

function frame(kind: number, payloadBytes: number): Uint8Array {
  const f = new Uint8Array(5 + payloadBytes);
  new DataView(f.buffer).setUint32(0, 1 + payloadBytes);
  f[4] = kind;
  return f;
}

async function rawTcp(n: number): Promise<Figures> {
  const server = Bun.spawn([process.execPath, new URL("./lib/raw-tcp-server.ts", import.meta.url).pathname], { stdout: "pipe" });
  const reader = server.stdout.getReader();
  const port = Number(new TextDecoder().decode((await reader.read()).value).trim());
  // About the size of a msgpack-framed node message.
  const ping = frame(1, 48);
  const one = frame(2, 48);
  let onData: (d: Uint8Array) => void = () => {};
  const sock = await Bun.connect({ hostname: "127.0.0.1", port, socket: { data: (_s, d) => onData(d) } });
  sock.setNoDelay?.(true);
  const lat: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    let got = 0;
    await new Promise<void>((r) => {
      onData = (d) => {
        got += d.length;
        if (got >= ping.length) r();
      };
      sock.write(ping);
    });
    lat.push(performance.now() - t0);
  }
  const blastN = n * 10;
  const t0 = performance.now();
  const done = new Promise<void>((r) => (onData = () => r()));
  // Frames are written in batches of 256, as a sender that coalesces would.
  const batch = new Uint8Array(one.length * 256);
  for (let k = 0; k < 256; k++) batch.set(one, k * one.length);
  let pending: Uint8Array[] = [];
  for (let sent = 0; sent < blastN; sent += 256) pending.push(sent + 256 <= blastN ? batch : batch.subarray(0, (blastN - sent) * one.length));
  pending.push(frame(3, 0));
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (pending.length > 0) {
        const c = pending[0]!;
        const w = sock.write(c);
        if (w < c.length) {
          pending[0] = c.subarray(Math.max(0, w));
          setTimeout(pump, 0);
          return;
        }
        pending.shift();
      }
      resolve();
    };
    pump();
  });
  pending = [];
  await done;
  const elapsed = performance.now() - t0;
  sock.end();
  server.kill();
  return figures(lat, blastN, elapsed);
}

function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const p = s.port;
  s.stop(true);
  return p;
}

async function nodeTcp(n: number, dataDir: string): Promise<Figures> {
  const pa = freePort();
  const pb = freePort();
  const secret = "bench-secret-not-for-production";
  const child = Bun.spawn([process.execPath, new URL("./lib/bridge-host.ts", import.meta.url).pathname, String(pb), String(pa), secret, join(dataDir, "b")], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  await reader.read();
  const cluster = new ThreadCluster({ system: ROLES, nodes: NODES, seed: 1, dataDir: join(dataDir, "a"), logLevel: "warn", host: "a", placement: { pinger: "a", ponger: "b" }, driverHost: "a", wire: { secret, listenHostname: "127.0.0.1", peerHosts: ["b"] } });
  const log = { debug() {}, info() {}, warn: (t: string) => console.error(t), error: (t: string) => console.error(t) };
  const bridge = new TcpBridge({ host: "a", listen: { hostname: "127.0.0.1", port: pa }, peers: { b: { hostname: "127.0.0.1", port: pb } }, secret, log }, cluster);
  cluster.attachBridge(bridge);
  bridge.start();
  await cluster.start();
  try {
    while (!(await bridge.control("b", "info").then(() => true, () => false))) await Bun.sleep(50);
    return await nodeOn(cluster, n);
  } finally {
    await bridge.shutdownPeers();
    await cluster.stop();
    bridge.close();
    await child.exited;
  }
}

const median = (xs: number[]) => percentile(xs, 50);

export const bench: Bench = {
  name: "transport",
  description: "node API vs raw MessageChannel and raw TCP: serial round trip and pipelined throughput",
  async run(o: BenchOptions) {
    const n = o.quick ? 2_000 : 10_000;
    const rounds = o.quick ? 1 : 3;
    const dataDir = mkdtempSync(join(tmpdir(), "menhir-bench-"));
    const results: Record<"rawMc" | "nodeMc" | "rawTcp" | "nodeTcp", Figures[]> = { rawMc: [], nodeMc: [], rawTcp: [], nodeTcp: [] };
    const bar = progress("transport", rounds * 4);
    try {
      for (let r = 0; r < rounds; r++) {
        results.rawMc.push(await rawMc(n));
        bar.tick("raw mc");
        results.nodeMc.push(await nodeMc(n, join(dataDir, `mc${r}`)));
        bar.tick("node mc");
        results.rawTcp.push(await rawTcp(n));
        bar.tick("raw tcp");
        results.nodeTcp.push(await nodeTcp(n, join(dataDir, `tcp${r}`)));
        bar.tick("node tcp");
      }
    } finally {
      bar.done();
      rmSync(dataDir, { recursive: true, force: true });
    }
    const med = (k: keyof typeof results, f: keyof Figures) => median(results[k].map((x) => x[f]));
    const spread = (k: keyof typeof results, f: keyof Figures) => {
      const v = results[k].map((x) => x[f]);
      return `${Math.min(...v).toFixed(0)}..${Math.max(...v).toFixed(0)}`;
    };
    const link = (raw: "rawMc" | "rawTcp", node: "nodeMc" | "nodeTcp") => ({
      rawRttP50Us: med(raw, "rttP50Us"),
      nodeRttP50Us: med(node, "rttP50Us"),
      rawRttP99Us: med(raw, "rttP99Us"),
      nodeRttP99Us: med(node, "rttP99Us"),
      rawMsgsPerSec: med(raw, "msgsPerSec"),
      nodeMsgsPerSec: med(node, "msgsPerSec"),
    });
    const json = { mc: link("rawMc", "nodeMc"), tcp: link("rawTcp", "nodeTcp"), roundTrips: n, pipelined: n * 10, rounds };
    const rows = (["mc", "tcp"] as const).map((l) => {
      const j = json[l];
      const raw = l === "mc" ? "rawMc" : "rawTcp";
      const node = l === "mc" ? "nodeMc" : "nodeTcp";
      return {
        link: l,
        "raw rtt p50 µs": j.rawRttP50Us,
        "node rtt p50 µs": j.nodeRttP50Us,
        "rtt ratio": j.nodeRttP50Us / j.rawRttP50Us,
        "raw p99 µs": j.rawRttP99Us,
        "node p99 µs": j.nodeRttP99Us,
        "raw msg/s": Math.round(j.rawMsgsPerSec),
        "node msg/s": Math.round(j.nodeMsgsPerSec),
        "tput ratio": j.nodeMsgsPerSec / j.rawMsgsPerSec,
        "p50 spread raw|node": `${spread(raw, "rttP50Us")}|${spread(node, "rttP50Us")}`,
      };
    });
    printTable(rows);
    console.log(`targets: rtt ratio <= 1.25, throughput ratio >= 0.6 (medians of ${rounds} interleaved rounds; ${n} round trips and ${n * 10} pipelined messages each)`);
    if (o.json) writeJson(o.json, json);
    return json;
  },
};
