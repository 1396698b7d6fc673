/**
 * The worker-thread host of one node. It owns what node code may not touch: its links to peers
 * (MessageChannels to local nodes, its own TCP connections to nodes on other hosts), real timers,
 * the sqlite file, the HTTP socket. The supervisor drives it over comlink (control plane); node
 * messages never pass through the main thread (data plane).
 */
import * as Comlink from "comlink";
import hyperid from "hyperid";
import { join } from "node:path";
import { DRIVER_ID } from "../../driver/cluster.ts";
import { loadRoles } from "../registry.ts";
import { guardHttp } from "./http.ts";
import { formatLogLine, printLine, wallStamp } from "./log.ts";
import { Limits } from "./limits.ts";
import { defaultNetwork, isPerfect, plan, type NetworkSettings } from "./network.ts";
import { NodeRuntime, isMessage, type Env, type NodeStats } from "./node.ts";
import { seededRandom } from "./random.ts";
import type { TCPSocketListener } from "bun";
import { Links, MAX_FRAME_MESSAGES, type LinkGrant } from "./links.ts";
import { SqliteStorage } from "./storage.ts";
import { wireListen, type WireConn } from "./wire.ts";
import type { LogLevel, Message, NodeId, NodeSpec } from "./types.ts";

export interface WorkerInit {
  system: string;
  spec: NodeSpec;
  nodeIds: NodeId[];
  incarnation: number;
  seed: number;
  dataDir: string;
  logLevel: LogLevel;
  network: NetworkSettings;
  /** Multi-host: this node listens for peers on other hosts and dials them itself. */
  wire?: { host: string; secret: string; listenHostname: string; peerHosts: string[]; placement: Record<NodeId, string> };
}

/** What a worker asks of the supervisor. */
export interface SupervisorPort {
  requestLink(src: NodeId, dest: NodeId): Promise<LinkGrant | null>;
  httpReady(id: NodeId, url: string): void;
  dataReady(id: NodeId, port: number): void;
}

export type { LinkGrant };

class WorkerHost {
  private runtime!: NodeRuntime;
  private storage!: SqliteStorage;
  private supervisor!: Comlink.Remote<SupervisorPort>;
  private driverPort!: MessagePort;
  private links!: Links;
  private net: NetworkSettings = defaultNetwork();
  private perfect = true;
  private netRng = seededRandom(0);
  private readonly fifo = new Map<NodeId, number>();
  private inFlight = 0;
  private server: ReturnType<typeof Bun.serve> | null = null;
  private dataListener: TCPSocketListener<WireConn> | null = null;
  private id = "";
  private placement: Record<NodeId, string> = {};
  private dropped = 0;

  async init(init: WorkerInit, supervisorPort: MessagePort, driverPort: MessagePort): Promise<void> {
    this.id = init.spec.id;
    this.supervisor = Comlink.wrap<SupervisorPort>(supervisorPort);
    this.driverPort = driverPort;
    driverPort.onmessage = (e) => this.receive(e.data);
    this.setNetwork(init.network);
    this.netRng = seededRandom(init.seed, `net:${init.spec.id}#${init.incarnation}`);
    const mode = init.spec.storage ?? "os";
    this.storage = new SqliteStorage(mode === "memory" ? null : join(init.dataDir, `${init.spec.id}.sqlite`), mode);
    const uid = hyperid({ urlSafe: true });
    const env: Env = {
      now: () => performance.timeOrigin + performance.now(),
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      transmit: (msg) => this.transmit(msg),
      storage: this.storage,
      emitLog: (level, node, text, fields) => printLine(level, formatLogLine(wallStamp(), node, level, text, fields)),
      uid: () => uid(),
      serveHttp: (node, handler, opts) => {
        if (this.server) throw new Error(`${node} already serves HTTP`);
        const fetch = guardHttp(handler, opts, (e) => env.emitLog("error", node, `http handler failed: ${String(e)}`));
        this.server = Bun.serve({ port: opts.port, hostname: opts.hostname ?? "127.0.0.1", fetch, maxRequestBodySize: (opts.maxBodyBytes ?? 64 * 1024) + 1 });
        void this.supervisor.httpReady(node, this.server.url.toString());
      },
    };
    const wire = init.wire;
    if (wire) this.placement = wire.placement;
    this.links = new Links({
      id: this.id,
      grant: (dest) => this.supervisor.requestLink(this.id, dest),
      receive: (data) => this.receive(data),
      wireFrame: (conn, frame) => void this.wireFrame(conn, frame),
      wire: wire ? { host: wire.host, secret: wire.secret, peers: new Set(wire.peerHosts) } : null,
      now: () => performance.now(),
    });
    this.runtime = new NodeRuntime(
      { id: init.spec.id, role: init.spec.role, config: init.spec.config ?? {}, nodeIds: init.nodeIds, incarnation: init.incarnation, seed: init.seed, logLevel: init.logLevel },
      env,
    );
    if (wire) this.listenForPeers(wire);
    const roles = await loadRoles(init.system);
    const role = roles[init.spec.role];
    if (!role) throw new Error(`system ${init.system} has no role "${init.spec.role}"`);
    await this.runtime.start(role);
  }

  /** Open this node's TCP data endpoint for peers on other hosts. */
  private listenForPeers(w: NonNullable<WorkerInit["wire"]>): void {
    this.dataListener = wireListen(
      { hostname: w.listenHostname, port: 0 },
      {
        host: w.host,
        secret: w.secret,
        peers: new Set(w.peerHosts),
        onFrame: (conn, frame) => {
          const batch = this.wireFrame(conn, frame);
          this.links.adoptWire(batch[0]!.src, conn);
        },
        onClose: (conn) => this.links.wireClosed(conn),
        onReject: (conn, why) => this.runtime.ctx.log.warn(`data link: closed a connection from ${conn.remoteAddress}${conn.peerHost ? ` (host ${conn.peerHost})` : ""}: ${why}`),
      },
    );
    void this.supervisor.dataReady(this.id, this.dataListener.port);
  }

  /** Validate a data-link frame whole, then deliver it: messages for this node, from nodes on the authenticated host. */
  private wireFrame(conn: WireConn, frame: Record<string, unknown>): Message[] {
    const placement = this.placement;
    if (frame.t !== "msgs" || !Array.isArray(frame.ms) || frame.ms.length === 0 || frame.ms.length > MAX_FRAME_MESSAGES) {
      throw new Error(`expected a batch of 1 to ${MAX_FRAME_MESSAGES} messages`);
    }
    for (const m of frame.ms) {
      if (!isMessage(m)) throw new Error("malformed node message");
      if (m.dest !== this.id) throw new Error(`message for "${m.dest}" on ${this.id}'s data link`);
      if (placement[m.src] !== conn.peerHost) throw new Error(`host ${conn.peerHost} sent a message from "${m.src}", which does not live there`);
    }
    for (const m of frame.ms as Message[]) this.runtime.deliver(m);
    return frame.ms as Message[];
  }

  private receive(msg: unknown): void {
    // A port only ever carries messages for this node; anything else is refused inside deliver.
    if (typeof msg === "object" && msg !== null && (msg as Message).dest !== this.id) {
      this.dropped++;
      return;
    }
    this.runtime.deliver(msg);
  }

  private transmit(msg: Message): void {
    if (msg.dest === DRIVER_ID) {
      this.driverPort.postMessage(msg);
      return;
    }
    if (this.perfect) {
      this.links.post(msg);
      return;
    }
    const floor = Math.max(0, (this.fifo.get(msg.dest) ?? 0) - performance.now());
    const delays = plan(this.net, msg.src, msg.dest, this.netRng, floor);
    if (delays.length === 0) this.dropped++;
    for (const d of delays) {
      if (d <= 0) {
        this.links.post(msg);
        continue;
      }
      if (this.inFlight >= Limits.maxInFlight) {
        this.dropped++;
        continue;
      }
      this.fifo.set(msg.dest, Math.max(this.fifo.get(msg.dest) ?? 0, performance.now() + d));
      this.inFlight++;
      setTimeout(() => {
        this.inFlight--;
        this.links.post(msg);
      }, d);
    }
  }

  /** The supervisor hands us the far end of a channel a local peer asked for. */
  acceptLink(peer: NodeId, port: MessagePort): void {
    this.links.accept(peer, port);
  }

  /** The peer crashed or restarted: forget its link so the next send asks for a fresh one. */
  dropLink(peer: NodeId): void {
    this.links.drop(peer);
  }

  setNetwork(net: NetworkSettings): void {
    this.net = net;
    this.perfect = isPerfect(net);
  }

  pause(): void {
    this.runtime.pause();
  }

  resume(): void {
    this.runtime.resume();
  }

  stats(): NodeStats {
    const s = this.runtime.snapshotStats();
    return { ...s, refused: s.refused + this.dropped + this.links.dropped };
  }

  inspect(): unknown {
    return this.runtime.inspect();
  }

  async stop(): Promise<void> {
    try {
      await this.runtime.stop();
    } finally {
      this.server?.stop(true);
      this.dataListener?.stop(true);
      this.links.close();
      this.storage.close();
    }
  }
}

export type WorkerApi = Pick<WorkerHost, "init" | "acceptLink" | "dropLink" | "setNetwork" | "pause" | "resume" | "stats" | "inspect" | "stop">;

Comlink.expose(new WorkerHost(), globalThis as unknown as Comlink.Endpoint);
