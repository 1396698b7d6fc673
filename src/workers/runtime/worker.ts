/**
 * The worker-thread host. A worker holds one node — or, with `--threads`, several — and owns what
 * node code may not touch: links to peers (in-thread delivery to nodes in the same worker,
 * MessageChannels to other workers, the node's own TCP connections to nodes on other hosts), real
 * timers, the sqlite files, the HTTP sockets. The supervisor drives it over comlink (control
 * plane); node messages never pass through the main thread (data plane).
 */
import type { TCPSocketListener } from "bun";
import * as Comlink from "comlink";
import type hyperid from "hyperid";
import { join } from "node:path";
import { DEFAULT_MAX_HTTP_BODY, guardHttp } from "./http.ts";
import { WorkerLanes, type LanePeer, type LaneTarget } from "./lanes.ts";
import { Links, type LinkGrant } from "./links.ts";
import { formatLogLine, printLine, wallStamp } from "./log.ts";
import { assert } from "./assert.ts";
import { LinkPlanner, type NetworkSettings } from "./network.ts";
import { NodeRuntime, type NodeStats } from "./node.ts";
import { NodeSlot, type SlotHost } from "./slot.ts";
import { realNow } from "./real-clock.ts";
import { seededRandom } from "./random.ts";
import { openStorage } from "./storage.ts";
import type { LogLevel, Message, NodeId, NodeSpec, Role } from "./types.ts";
import { wireListen, type WireConn } from "./wire.ts";
import { acceptWireFrame } from "./data-link.ts";
import { pinThread } from "./cpu-affinity.ts";

export interface WorkerInit {
  /** The system's name (for messages) and the module its roles come from (resolved by the supervisor). */
  system: string;
  rolesModule: string;
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
  /** A link for `incarnation` of `src` (a request from an incarnation that has died is refused). */
  requestLink(src: NodeId, incarnation: number, dest: NodeId): Promise<LinkGrant | null>;
  httpReady(id: NodeId, url: string): void;
  dataReady(id: NodeId, port: number): void;
}

export type { LinkGrant };

/** What a node's host needs from the worker around it. */
interface WorkerShared {
  supervisor: Comlink.Remote<SupervisorPort>;
  driverPort: MessagePort;
  /** Another node in this worker, if dest lives here and is up. */
  colocated(dest: NodeId): NodeHost | undefined;
  /** Changes whenever a node of this worker starts or ends (what colocated answers may change). */
  hostedVersion(): number;
  /** Packed threads: the lanes to the other threads of this process. */
  lanes: WorkerLanes;
  uid(): string;
}

/** One node inside a worker: its slot (state, runtime, fault planning), storage, links and sockets. */
class NodeHost implements LaneTarget {
  readonly id: NodeId;
  readonly incarnation: number;
  private readonly slot: NodeSlot;
  private readonly storage: ReturnType<typeof openStorage>;
  private readonly links: Links;
  private net: NetworkSettings;
  private server: ReturnType<typeof Bun.serve> | null = null;
  private dataListener: TCPSocketListener<WireConn> | null = null;
  private readonly placement: Record<NodeId, string>;
  /** Messages that arrived on a link for another node, or on a lane for another incarnation of this one or from a dead one. */
  private misrouted = 0;

  constructor(
    private readonly init: WorkerInit,
    private readonly shared: WorkerShared,
  ) {
    this.id = init.spec.id;
    this.incarnation = init.incarnation;
    this.net = init.network;
    this.placement = init.wire?.placement ?? {};
    const mode = init.spec.storage ?? "os";
    this.storage = openStorage(mode, join(init.dataDir, `${init.spec.id}.sqlite`));
    const host: SlotHost = {
      now: realNow,
      setTimer: (ms, fn) => setTimeout(fn, ms),
      clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
      network: () => this.net,
      deliver: (msg, _delayed, shared) => this.links.post(msg, shared),
      deliverMany: (src, dests, body, shared) => this.links.postMany(src, dests, body, shared),
      toDriver: (msg) => shared.driverPort.postMessage(msg),
      emitLog: (level, node, text, fields) => printLine(level, formatLogLine(wallStamp(), node, level, text, fields)),
      serveHttp: (node, handler, opts) => {
        if (this.server) throw new Error(`${node} already serves HTTP`);
        const fetch = guardHttp(
          handler,
          opts,
          (e) => host.emitLog("error", node, `http handler failed: ${String(e)}`),
          (e) => this.init.logLevel === "debug" && host.emitLog("debug", node, `http client went away mid-body: ${String(e)}`),
        );
        this.server = Bun.serve({ port: opts.port, hostname: opts.hostname ?? "127.0.0.1", fetch, maxRequestBodySize: (opts.maxBodyBytes ?? DEFAULT_MAX_HTTP_BODY) + 1 });
        void shared.supervisor.httpReady(node, this.server.url.toString());
      },
    };
    const wire = init.wire;
    this.links = new Links({
      id: this.id,
      packed: { lanes: shared.lanes, incarnation: this.incarnation },
      grant: (dest) => shared.supervisor.requestLink(this.id, this.incarnation, dest),
      colocated: (dest) => shared.colocated(dest)?.receive,
      hostedVersion: () => shared.hostedVersion(),
      receive: this.receive,
      wireFrame: (conn, frame) => void this.wireFrame(conn, frame),
      wire: wire ? { host: wire.host, secret: wire.secret, peers: new Set(wire.peerHosts) } : null,
      now: () => performance.now(),
    });
    this.slot = new NodeSlot(init.spec, { nodeIds: init.nodeIds, seed: init.seed, logLevel: init.logLevel }, host, new LinkPlanner(seededRandom(init.seed, `net:${init.spec.id}#${init.incarnation}`)), () => shared.uid());
    this.slot.boot(this.storage, init.incarnation);
    if (wire) this.listenForPeers(wire);
  }

  private get runtime(): NodeRuntime {
    assert(this.slot.runtime, `${this.id}#${this.incarnation} has no runtime (crashed)`);
    return this.slot.runtime;
  }

  async start(): Promise<void> {
    const mod = (await import(this.init.rolesModule)) as { roles?: Record<string, Role> };
    if (!mod.roles) throw new Error(`module ${this.init.rolesModule} exports no \`roles\``);
    const role = mod.roles[this.init.spec.role];
    if (!role) throw new Error(`system ${this.init.system} has no role "${this.init.spec.role}"`);
    await this.slot.start(role);
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
    void this.shared.supervisor.dataReady(this.id, this.dataListener.port);
  }

  /** Validate a data-link frame whole, then deliver it: messages for this node, from nodes on the authenticated host. */
  private wireFrame(conn: WireConn, frame: Record<string, unknown>): Message[] {
    const ms = acceptWireFrame(frame, this.id, this.placement, conn.peerHost);
    for (const m of ms) this.slot.receive(m);
    return ms;
  }

  /** A message from a port, the driver, or a node in the same worker. Bound once: Links and a fan-out's in-thread recipients hold it as is. */
  readonly receive = (msg: unknown): void => {
    // A link only ever carries messages for this node; anything else is refused inside deliver.
    if (typeof msg === "object" && msg !== null && (msg as Message).dest !== this.id) {
      this.misrouted++;
      return;
    }
    this.slot.receive(msg);
  };

  refuseFromLane(): void {
    this.misrouted++;
  }

  acceptLink(peer: NodeId, incarnation: number, port: MessagePort): void {
    this.links.accept(peer, incarnation, port);
  }

  peerDown(peer: NodeId, incarnation: number): void {
    this.links.peerDown(peer, incarnation);
  }

  peerUp(peer: NodeId, incarnation: number): void {
    this.links.peerUp(peer, incarnation);
  }

  setNetwork(net: NetworkSettings): void {
    this.net = net;
  }

  pause(): void {
    this.slot.pause();
  }

  resume(): void {
    this.slot.resume();
  }

  stats(): NodeStats {
    const s = this.runtime.snapshotStats();
    return { ...s, refused: s.refused + this.misrouted + this.slot.dropped + this.links.dropped, links: this.slot.linkCountsSnapshot() };
  }

  inspect(): unknown {
    return this.runtime.inspect();
  }

  /** A clean stop: the role's stop hook runs (cut off if it overruns), then sockets and storage close. */
  async stop(): Promise<{ cutOff: boolean }> {
    try {
      return await this.runtime.stop();
    } finally {
      this.release();
    }
  }

  /** A crash, seen from inside a shared worker: no hooks; memory is dropped with this object, storage kept. */
  halt(): void {
    this.release();
  }

  private release(): void {
    if (this.slot.status !== "crashed") this.slot.crash();
    this.server?.stop(true);
    this.dataListener?.stop(true);
    this.links.close();
    this.storage.close();
  }
}

/** The comlink face of a worker: control operations, each naming the node it is for. */
class WorkerHost {
  private supervisor!: Comlink.Remote<SupervisorPort>;
  private driverPort!: MessagePort;
  private readonly nodes = new Map<NodeId, NodeHost>();
  /** Moves whenever `nodes` does (WorkerShared.hostedVersion). */
  private hostedVersion = 0;
  private readonly lanes = new WorkerLanes((id) => this.nodes.get(id));
  /**
   * Made on a node's first uid(): hyperid loads uuid and node:crypto, a fifth of what a worker
   * thread spends starting, and most nodes never ask for an id.
   */
  private uidSource: (() => string) | null = null;
  private uid(): string {
    this.uidSource ??= (import.meta.require("hyperid") as typeof hyperid)({ urlSafe: true });
    return this.uidSource();
  }

  /**
   * Once per worker: the channel to the supervisor and the one for the driver's messages; `cpu`, for
   * packed threads, the CPU this thread is pinned to (cpu-affinity.ts). Answers null, or why it was not pinned.
   */
  connect(supervisorPort: MessagePort, driverPort: MessagePort, cpu: number | null = null): string | null {
    this.supervisor = Comlink.wrap<SupervisorPort>(supervisorPort);
    this.driverPort = driverPort;
    driverPort.onmessage = (e) => {
      const dest = (e.data as Message | null)?.dest;
      if (typeof dest === "string") this.nodes.get(dest)?.receive(e.data);
    };
    return cpu === null ? null : pinThread(cpu);
  }

  async startNode(init: WorkerInit): Promise<void> {
    if (this.nodes.has(init.spec.id)) throw new Error(`node ${init.spec.id} already runs in this worker`);
    const host = new NodeHost(init, {
      supervisor: this.supervisor,
      driverPort: this.driverPort,
      colocated: (dest) => this.nodes.get(dest),
      hostedVersion: () => this.hostedVersion,
      lanes: this.lanes,
      uid: () => this.uid(),
    });
    this.nodes.set(init.spec.id, host);
    this.hostedVersion++;
    try {
      await host.start();
    } catch (e) {
      this.crashNode(init.spec.id, init.incarnation);
      throw e;
    }
  }

  /** Crash `incarnation` of a node here (a crash meant for another incarnation is stale: ignored). */
  crashNode(id: NodeId, incarnation: number): void {
    const n = this.nodes.get(id);
    if (!n || n.incarnation !== incarnation) return;
    this.nodes.delete(id);
    this.hostedVersion++;
    n.halt();
    this.lanes.peerDown(id, incarnation);
    for (const other of this.nodes.values()) other.peerDown(id, incarnation);
  }

  /**
   * Packed threads: the lane between this thread (`self`) and thread `other`, given before any node
   * here runs code, and again when `other` is replaced. `placement` says where every node of this
   * process lives and which incarnation of it is current.
   */
  connectLane(self: number, other: number, port: MessagePort, placement: Record<NodeId, LanePeer>): void {
    this.lanes.connect(self, other, port, placement);
  }

  private node(id: NodeId): NodeHost {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`node ${id} is not running in this worker`);
    return n;
  }

  /** The supervisor hands `destInc` of `dest` the far end of a channel `peerInc` of `peer` asked for. */
  acceptLink(dest: NodeId, destInc: number, peer: NodeId, peerInc: number, port: MessagePort): void {
    const n = this.nodes.get(dest);
    if (n && n.incarnation === destInc) n.acceptLink(peer, peerInc, port);
    else port.close();
  }

  /** `incarnation` of `peer` crashed: every node here forgets its links to it. */
  peerDown(peer: NodeId, incarnation: number): void {
    this.lanes.peerDown(peer, incarnation);
    for (const n of this.nodes.values()) if (n.id !== peer) n.peerDown(peer, incarnation);
  }

  /** `incarnation` of `peer` started: links to older ones are stale, and it is worth asking for at once. */
  peerUp(peer: NodeId, incarnation: number): void {
    this.lanes.peerUp(peer, incarnation);
    for (const n of this.nodes.values()) if (n.id !== peer) n.peerUp(peer, incarnation);
  }

  setNetwork(net: NetworkSettings): void {
    for (const n of this.nodes.values()) n.setNetwork(net);
  }

  pause(id: NodeId): void {
    this.node(id).pause();
  }

  resume(id: NodeId): void {
    this.node(id).resume();
  }

  stats(id: NodeId): NodeStats {
    return this.node(id).stats();
  }

  inspect(id: NodeId): unknown {
    return this.node(id).inspect();
  }

  async stopNode(id: NodeId): Promise<{ cutOff: boolean }> {
    const n = this.nodes.get(id);
    if (!n) return { cutOff: false };
    this.nodes.delete(id);
    this.hostedVersion++;
    return n.stop();
  }
}

export type WorkerApi = Pick<WorkerHost, "connect" | "connectLane" | "startNode" | "crashNode" | "acceptLink" | "peerDown" | "peerUp" | "setNetwork" | "pause" | "resume" | "stats" | "inspect" | "stopNode">;

Comlink.expose(new WorkerHost(), globalThis as unknown as Comlink.Endpoint);
