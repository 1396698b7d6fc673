/**
 * The hosts' bridge: control plane between processes or hosts, and the driver's messages to and from
 * remote nodes. Node-to-node traffic does not pass here: each worker has its own TCP data endpoint
 * (see runtime/worker.ts); this bridge tells peers where a node's endpoint is ("where").
 *
 * Each host dials every peer and sends its requests and driver messages on the connection it
 * dialed; a request's answer comes back on the same connection. A host that is down looks to
 * nodes like crashed nodes.
 */
import type { TCPSocketListener } from "bun";
import { DRIVER_ID, type NodeInfo, type NodeStatus } from "../driver/cluster.ts";
import { parseNetworkPatch, type NetworkSettings } from "../workers/runtime/network.ts";
import { isMessage } from "../workers/runtime/node.ts";
import type { Logger, NodeId } from "../workers/runtime/types.ts";
import { wireDial, wireListen, type Endpoint, type WireConn, type WireOptions } from "../workers/runtime/wire.ts";
import type { ControlOp, LocalHost, RemoteHosts } from "./hosts.ts";
import { Limits } from "../workers/runtime/limits.ts";
import { assert } from "../workers/runtime/assert.ts";

export type { Endpoint } from "../workers/runtime/wire.ts";

export interface BridgeOptions {
  host: string;
  listen: Endpoint;
  peers: Record<string, Endpoint>;
  secret: string;
  log: Logger;
  handshakeTimeoutMs?: number;
}

const CONTROL_OPS: ReadonlySet<string> = new Set<ControlOp>(["crash", "restart", "pause", "resume", "inspect", "info", "network", "where", "shutdown"]);
const CONTROL_TIMEOUT_MS = Limits.bridgeControlTimeoutMs;

interface Peer {
  endpoint: Endpoint;
  conn: WireConn | null;
  backoffMs: number;
}

export class TcpBridge implements RemoteHosts {
  private readonly peers = new Map<string, Peer>();
  private listener: TCPSocketListener<WireConn> | null = null;
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> }>();
  private nextCall = 1;
  private readonly remoteStatuses = new Map<NodeId, NodeStatus>();
  private closed = false;
  /** Set once the run is ending and hosts disconnect on purpose. */
  private parting = false;
  private readonly wire: WireOptions;
  /** Counters for the admin API and tests. */
  readonly counters = { framesIn: 0, framesOut: 0, dropped: 0, rejectedConnections: 0 };
  onShutdown: (() => void) | null = null;

  constructor(
    private readonly opts: BridgeOptions,
    private readonly cluster: LocalHost,
  ) {
    for (const [host, endpoint] of Object.entries(opts.peers)) this.peers.set(host, { endpoint, conn: null, backoffMs: Limits.bridgeRedialMinMs });
    this.wire = {
      host: opts.host,
      secret: opts.secret,
      peers: new Set(this.peers.keys()),
      handshakeTimeoutMs: opts.handshakeTimeoutMs,
      onFrame: (conn, frame) => this.onFrame(conn, frame),
      onReject: (conn, why) => {
        this.counters.rejectedConnections++;
        this.opts.log.warn(`bridge: closed a connection from ${conn.remoteAddress}${conn.peerHost ? ` (host ${conn.peerHost})` : ""}: ${why}`);
      },
    };
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  /** Where a peer host is reached (its nodes' data endpoints share the hostname). */
  endpointOf(host: string): Endpoint | undefined {
    return this.peers.get(host)?.endpoint;
  }

  start(): void {
    this.listener = wireListen(this.opts.listen, this.wire);
    for (const host of this.peers.keys()) this.dial(host);
  }

  private dial(host: string): void {
    if (this.closed) return;
    const p = this.peers.get(host)!;
    wireDial(p.endpoint, {
      ...this.wire,
      // Our own requests' answers come back here; anything else is refused in onFrame.
      onFrame: (conn, frame) => {
        if (frame.t !== "ctl_ok" && frame.t !== "ctl_err") throw new Error(`a dialed connection carries only answers, not "${String(frame.t)}"`);
        this.onFrame(conn, frame);
      },
      onReady: (conn) => {
        p.conn = conn;
        p.backoffMs = Limits.bridgeRedialMinMs;
        this.opts.log.info(`bridge: connected to host ${host}`);
        for (const n of this.cluster.nodes) if (this.cluster.hostOf(n.id) === host) this.remoteStatuses.set(n.id, "running");
      },
      onClose: (conn) => {
        if (p.conn === conn || p.conn === null) this.lostPeer(host, p.conn === conn);
      },
    }).catch(() => this.lostPeer(host, false));
  }

  private lostPeer(host: string, wasUp: boolean): void {
    const p = this.peers.get(host)!;
    // At the end of a run hosts part on purpose: not worth a warning.
    if (wasUp && !this.closed && !this.parting) this.opts.log.warn(`bridge: lost host ${host}; its nodes look crashed until it is back`);
    p.conn = null;
    for (const n of this.cluster.nodes) if (this.cluster.hostOf(n.id) === host) this.remoteStatuses.set(n.id, "crashed");
    if (this.closed) return;
    const delay = p.backoffMs;
    p.backoffMs = Math.min(p.backoffMs * 2, Limits.bridgeRedialMaxMs);
    setTimeout(() => this.dial(host), delay);
  }

  private onFrame(conn: WireConn, frame: Record<string, unknown>): void {
    this.counters.framesIn++;
    switch (frame.t) {
      case "msgs":
        return this.onDriverMessages(conn, frame.ms);
      case "ctl":
        void this.onControl(conn, frame);
        return;
      case "ctl_ok":
      case "ctl_err": {
        const c = this.calls.get(Number(frame.id));
        if (!c) return;
        this.calls.delete(Number(frame.id));
        assert(this.calls.size < Limits.maxBridgePendingCalls, "bridge pending calls within bound");
        clearTimeout(c.timer);
        if (frame.t === "ctl_ok") c.resolve(frame.value);
        else c.reject(new Error(String(frame.error)));
        return;
      }
      default:
        throw new Error(`unknown frame type "${String(frame.t)}"`);
    }
  }

  /** Only the driver's traffic crosses the bridge: requests from a remote driver, replies to a local one. */
  private onDriverMessages(conn: WireConn, ms: unknown): void {
    if (!Array.isArray(ms) || ms.length === 0 || ms.length > Limits.maxFrameMessages) throw new Error(`a batch must be a non-empty array of at most ${Limits.maxFrameMessages} messages`);
    for (const m of ms) {
      if (!isMessage(m)) throw new Error("malformed node message");
      if (m.dest === DRIVER_ID) {
        if (this.cluster.hostOf(m.src) !== conn.peerHost) throw new Error(`host ${conn.peerHost} sent a message from "${m.src}", which does not live there`);
        this.cluster.deliverToDriver(m);
      } else if (m.src === DRIVER_ID) {
        if (!this.cluster.isLocal(m.dest)) throw new Error(`message for "${m.dest}", which does not live on ${this.opts.host}`);
        this.cluster.deliverFromDriver(m);
      } else throw new Error("node-to-node messages travel on node data links, not the host bridge");
    }
  }

  /** A driver message for a node on (or a driver on) another host. */
  sendToHost(host: string, msg: unknown): void {
    this.send(host, { t: "msgs", ms: [msg] });
  }

  private send(host: string, frame: unknown): boolean {
    const conn = this.peers.get(host)?.conn;
    if (!conn?.send(frame)) {
      this.counters.dropped++;
      return false;
    }
    this.counters.framesOut++;
    return true;
  }

  control(host: string, op: ControlOp, node?: NodeId, extra?: unknown): Promise<unknown> {
    if (this.calls.size >= Limits.maxBridgePendingCalls) return Promise.reject(new Error(`host ${host}: ${this.calls.size} control calls already pending`));
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.calls.delete(id)) reject(new Error(`host ${host} did not answer "${op}" within ${CONTROL_TIMEOUT_MS / 1000} s`));
      }, CONTROL_TIMEOUT_MS);
      assert(!this.calls.has(id), `bridge call id ${id} reused`);
      this.calls.set(id, { resolve, reject, timer });
      if (!this.send(host, { t: "ctl", id, op, node, extra })) {
        this.calls.delete(id);
        clearTimeout(timer);
        reject(new Error(`host ${host} is not connected`));
      }
    }).then((v) => {
      if (node && (op === "crash" || op === "restart" || op === "pause" || op === "resume") && (v === "running" || v === "paused" || v === "crashed")) this.remoteStatuses.set(node, v);
      return v;
    });
  }

  /** Run a control request and answer on the connection it came in on, so the answer never waits for our own dial. */
  private async onControl(conn: WireConn, frame: Record<string, unknown>): Promise<void> {
    const id = frame.id;
    try {
      const op = frame.op;
      if (typeof op !== "string" || !CONTROL_OPS.has(op)) throw new Error(`unknown control op "${String(op)}"`);
      const node = frame.node;
      const local = () => {
        if (typeof node !== "string" || !this.cluster.isLocal(node)) throw new Error(`node "${String(node)}" does not live on ${this.opts.host}`);
        return node;
      };
      let value: unknown = null;
      switch (op as ControlOp) {
        case "crash":
          value = await this.cluster.crash(local());
          break;
        case "restart":
          value = await this.cluster.restart(local());
          break;
        case "pause":
          value = await this.cluster.pause(local());
          break;
        case "resume":
          value = await this.cluster.resume(local());
          break;
        case "inspect":
          value = await this.cluster.inspect(local());
          break;
        case "info":
          value = await this.cluster.localInfo();
          break;
        case "where":
          value = (await this.cluster.dataPortWhenUp(local())) ?? null;
          break;
        case "network": {
          const net = frame.extra as NetworkSettings;
          parseNetworkPatch({ ...net?.defaults, links: net?.links ?? {}, partitions: net?.partitions ?? [] }, this.cluster.nodes.map((n) => n.id));
          await this.cluster.applyNetwork(net);
          break;
        }
        case "shutdown":
          this.parting = true;
          setTimeout(() => this.onShutdown?.(), 0);
          break;
      }
      conn.send({ t: "ctl_ok", id, value });
    } catch (e) {
      conn.send({ t: "ctl_err", id, error: e instanceof Error ? e.message : String(e) });
    }
  }

  remoteStatus(id: NodeId): NodeStatus {
    return this.remoteStatuses.get(id) ?? "crashed";
  }

  async remoteInfo(): Promise<NodeInfo[]> {
    // A host that does not answer shows its nodes as crashed (status() says the same): logged, not thrown.
    const all = await Promise.all([...this.peers.keys()].map((h) => this.control(h, "info").catch((e) => (this.opts.log.debug(`bridge: no info from host ${h}: ${e instanceof Error ? e.message : String(e)}`), []))));
    return (all as NodeInfo[][]).flat();
  }

  /** Every peer host adopts the settings; throws naming each host that did not confirm. */
  async broadcastNetwork(net: NetworkSettings): Promise<void> {
    const hosts = [...this.peers.keys()];
    const results = await Promise.allSettled(hosts.map((h) => this.control(h, "network", undefined, net)));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`host ${hosts[i]}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`] : []));
    if (failed.length > 0) throw new Error(failed.join("; "));
  }

  /** Ask every peer host to stop (the driver host does this at the end of a --duration run). */
  async shutdownPeers(): Promise<void> {
    this.parting = true;
    await Promise.all([...this.peers.keys()].map((h) => this.control(h, "shutdown").catch((e) => this.opts.log.warn(`bridge: host ${h} did not confirm the shutdown: ${e instanceof Error ? e.message : String(e)}`))));
  }

  connectedHosts(): string[] {
    return [...this.peers.entries()].filter(([, p]) => p.conn?.ready).map(([h]) => h);
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) p.conn?.close();
    this.listener?.stop(true);
    // Calls still pending are answered, not dropped.
    for (const c of this.calls.values()) {
      clearTimeout(c.timer);
      c.reject(new Error("the bridge closed before the host answered"));
    }
    this.calls.clear();
  }
}

export type Bridge = TcpBridge;
