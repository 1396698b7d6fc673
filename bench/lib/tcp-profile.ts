/**
 * The transport bench's pipelined TCP blast with both nodes on the main thread, so a CPU profiler
 * sees the sender's and the receiver's halves of a data link (`bun --cpu-prof` does not see worker
 * threads). Each node is built as worker.ts builds one (a NodeSlot, memory storage, Links with a
 * wire identity) and they talk over a real loopback TCP data link; beside it, the fair baseline's
 * client and server (lib/fair-tcp.ts) over their own loopback socket on the same thread. Rounds
 * alternate between the two and report process CPU per message, which a busy machine disturbs
 * far less than wall time.
 *
 *   bun --cpu-prof --cpu-prof-dir=/tmp/prof bench/lib/tcp-profile.ts --messages 100000 --rounds 5
 *   bun bench/lib/tcp-profile.ts --rtt --messages 20000   (serial round trips instead: CPU per round trip)
 */
import { roles } from "../nodes/transport-roles.ts";
import { Links } from "../../src/workers/runtime/links.ts";
import { LinkPlanner, defaultNetwork } from "../../src/workers/runtime/network.ts";
import { seededRandom } from "../../src/workers/runtime/random.ts";
import { NodeSlot, type SlotHost } from "../../src/workers/runtime/slot.ts";
import { MemoryStorage } from "../../src/workers/runtime/memory-storage.ts";
import { realNow } from "../../src/workers/runtime/real-clock.ts";
import { acceptWireFrame } from "../../src/workers/runtime/data-link.ts";
import { WireConn, wireListen } from "../../src/workers/runtime/wire.ts";
import { DRIVER_ID, type Message, type NodeId, type NodeSpec, type Role } from "../../src/workers/runtime/types.ts";
import { BATCH, BatchWriter, MessageReader, encodeOne, writeAll } from "./fair-tcp.ts";

const SECRET = "profile-secret";
const SPECS: NodeSpec[] = [
  { id: "pinger", role: "pinger", storage: "memory", config: { peer: "ponger" } },
  { id: "ponger", role: "ponger", storage: "memory" },
];
const PLACEMENT: Record<NodeId, string> = { pinger: "a", ponger: "b" };

class Host {
  readonly slot: NodeSlot;
  readonly links: Links;
  port = 0;
  constructor(
    readonly spec: NodeSpec,
    hosts: Map<NodeId, Host>,
  ) {
    const net = defaultNetwork();
    const me = PLACEMENT[spec.id]!;
    const peers = new Set(Object.values(PLACEMENT).filter((h) => h !== me));
    const slotHost: SlotHost = {
      now: realNow,
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      network: () => net,
      deliver: (msg) => this.links.post(msg),
      toDriver: (msg) => toDriver(msg),
      emitLog: (level, node, text) => level !== "debug" && level !== "info" && console.error(`${node}: ${text}`),
      serveHttp: () => {
        throw new Error("no HTTP here");
      },
    };
    this.links = new Links({
      id: spec.id,
      grant: async (dest) => ({ wire: { hostname: "127.0.0.1", port: hosts.get(dest)!.port } }),
      colocated: () => undefined,
      receive: () => {
        throw new Error("no ports here");
      },
      wireFrame: (conn, frame) => void this.frame(conn, frame),
      wire: { host: me, secret: SECRET, peers },
      now: () => performance.now(),
    });
    this.slot = new NodeSlot(spec, { nodeIds: SPECS.map((s) => s.id), seed: 1, logLevel: "warn" }, slotHost, new LinkPlanner(seededRandom(1, `net:${spec.id}#0`)), () => crypto.randomUUID());
    this.slot.boot(new MemoryStorage(), 0);
    const listener = wireListen(
      { hostname: "127.0.0.1", port: 0 },
      {
        host: me,
        secret: SECRET,
        peers,
        onFrame: (conn, frame) => this.links.adoptWire(this.frame(conn, frame)[0]!.src, conn),
        onClose: (conn) => this.links.wireClosed(conn),
      },
    );
    this.port = listener.port;
  }

  private frame(conn: WireConn, frame: Record<string, unknown>): Message[] {
    const ms = acceptWireFrame(frame, this.spec.id, PLACEMENT, conn.peerHost);
    for (const m of ms) this.slot.receive(m);
    return ms;
  }
}

/**
 * CPU time (ms) spent in receivers' data handlers (decode, check, deliver), per series: the
 * receiving half of a message's cost. Process CPU, not wall time: on a busy machine a handler
 * preempted mid-chunk would otherwise be charged for other processes' time.
 */
const receiving = { node: 0, fair: 0 };
function cpuMs(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1000;
}
// Not for serial round trips: reading the CPU clock around every one-message chunk cost a fifth of a round trip's CPU.
const measureReceiving = !process.argv.includes("--rtt");
const onData = WireConn.prototype.onData;
if (measureReceiving) {
  WireConn.prototype.onData = function (this: WireConn, chunk: Uint8Array) {
    const t0 = cpuMs();
    onData.call(this, chunk);
    receiving.node += cpuMs() - t0;
  };
}

/** Replies the nodes send to the driver (here: the end of a blast). */
let toDriver: (msg: Message) => void = () => {};

/** Serial: `n` request/reply round trips, each waiting for the last. */
function nodeRtt(pinger: Host, n: number): Promise<void> {
  return new Promise<void>((resolve) => {
    toDriver = () => resolve();
    pinger.slot.receive({ src: DRIVER_ID, dest: "pinger", body: { type: "rtt", n, msg_id: 2 } });
  });
}

/** Pipelined: `n` one-way messages in one turn, then a request the receiver answers once it has them all. */
function nodeBlast(pinger: Host, n: number): Promise<void> {
  return new Promise<void>((resolve) => {
    toDriver = () => resolve();
    pinger.slot.receive({ src: DRIVER_ID, dest: "pinger", body: { type: "blast", n, msg_id: 1 } });
  });
}

async function fairSetup() {
  const server = Bun.listen<{ reader: MessageReader; count: number; want: number }>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { reader: new MessageReader(), count: 0, want: -1 };
        s.setNoDelay?.(true);
      },
      data(s, chunk) {
        const t0 = measureReceiving ? cpuMs() : 0;
        try {
          s.data.reader.push(chunk, (m) => {
          if (m.body.type === "ping") s.write(encodeOne({ src: m.dest, dest: m.src, body: { type: "pong", in_reply_to: m.body.msg_id } }));
          else if (m.body.type === "one") s.data.count++;
          else if (m.body.type === "until") s.data.want = m.body.n;
          if (s.data.want >= 0 && s.data.count >= s.data.want) {
            s.write(new Uint8Array([0, 0, 0, 1, 0xc0]));
            s.data.count = 0;
            s.data.want = -1;
          }
        });
        } finally {
          if (measureReceiving) receiving.fair += cpuMs() - t0;
        }
      },
    },
  });
  let done = () => {};
  let drained: (() => void) | null = null;
  const reader = new MessageReader();
  const sock = await Bun.connect({ hostname: "127.0.0.1", port: server.port, socket: { data: (_s, d) => reader.push(d, () => done()), drain: () => drained?.() } });
  sock.setNoDelay?.(true);
  const rtt = async (n: number) => {
    for (let i = 0; i < n; i++) {
      await new Promise<void>((r) => {
        done = r;
        sock.write(encodeOne({ src: "pinger", dest: "ponger", body: { type: "ping", msg_id: i } }));
      });
    }
  };
  const blast = async (n: number) => {
    const finished = new Promise<void>((r) => (done = r));
    const writes: Uint8Array[] = [];
    const batch = new BatchWriter();
    for (let i = 0; i < n; i++) {
      batch.add({ src: "pinger", dest: "ponger", body: { type: "one", i } });
      if (batch.count === BATCH) writes.push(batch.take());
    }
    batch.add({ src: "pinger", dest: "ponger", body: { type: "until", n, msg_id: 1 } });
    writes.push(batch.take());
    await writeAll(sock, writes, (fn) => (drained = fn));
    await finished;
  };
  return { rtt, blast };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (k: string, d: number) => (args.includes(`--${k}`) ? Number(args[args.indexOf(`--${k}`) + 1]) : d);
  const n = opt("messages", 100_000);
  const rounds = opt("rounds", 5);
  const only = args.includes("--node-only") ? "node" : args.includes("--fair-only") ? "fair" : null;
  const hosts = new Map<NodeId, Host>();
  for (const s of SPECS) hosts.set(s.id, new Host(s, hosts));
  for (const h of hosts.values()) await h.slot.start(roles[h.spec.role as keyof typeof roles] as Role);
  const pinger = hosts.get("pinger")!;
  const fairSides = await fairSetup();
  const serial = args.includes("--rtt");
  const fair = serial ? fairSides.rtt : fairSides.blast;
  const nodeRun = serial ? nodeRtt : nodeBlast;
  // Set the data link up first: a link being dialed holds only a bounded backlog.
  await new Promise<void>((resolve) => {
    toDriver = () => resolve();
    pinger.slot.receive({ src: DRIVER_ID, dest: "pinger", body: { type: "rtt", n: 10, msg_id: 0 } });
  });
  const cpu = async (k: "node" | "fair", f: () => Promise<void>) => {
    receiving[k] = 0;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await f();
    const c = process.cpuUsage(c0);
    const cpuNs = ((c.user + c.system) * 1000) / n;
    const recvNs = (receiving[k] * 1e6) / n;
    return { cpuNs, recvNs, sendNs: cpuNs - recvNs };
  };
  // Warm-up: the JIT settles after a few hundred thousand messages (see transport.ts WARMUP_ROUND_TRIPS).
  for (let i = 0; i < 3; i++) {
    if (only !== "fair") await nodeRun(pinger, n);
    if (only !== "node") await fair(n);
  }
  type Row = { cpuNs: number; recvNs: number; sendNs: number };
  const res: Record<"node" | "fair", Row[]> = { node: [], fair: [] };
  for (let r = 0; r < rounds; r++) {
    if (only !== "fair") res.node.push(await cpu("node", () => nodeRun(pinger, n)));
    if (only !== "node") res.fair.push(await cpu("fair", () => fair(n)));
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? NaN;
  for (const [k, rows] of Object.entries(res)) {
    if (rows.length === 0) continue;
    const col = (f: keyof Row) => `${med(rows.map((x) => x[f])).toFixed(0)} (${Math.min(...rows.map((x) => x[f])).toFixed(0)}..${Math.max(...rows.map((x) => x[f])).toFixed(0)})`;
    console.log(`${k}: ns per ${serial ? "round trip" : "message"}, median (range) of ${rows.length} rounds: CPU both ends ${col("cpuNs")}${serial ? "" : `; receiving ${col("recvNs")}; the rest (sending, sockets) ${col("sendNs")}`}`);
  }
  if (res.node.length && res.fair.length) {
    // Pipelined across two processes, the slower half sets the pace.
    const half = (rows: Row[]) => med(rows.map((x) => Math.max(x.recvNs, x.sendNs)));
    if (serial) console.log(`node/fair CPU per round trip: ${(med(res.node.map((x) => x.cpuNs)) / med(res.fair.map((x) => x.cpuNs))).toFixed(2)}`);
    else console.log(`fair/node of the slower half: ${(half(res.fair) / half(res.node)).toFixed(2)} (what the throughput ratio would be with each half on its own core)`);
  }
  for (const h of hosts.values()) h.slot.crash();
  process.exit(0);
}

await main();
