/**
 * TCP bridges: the same cluster split over processes or hosts. Each host dials every peer and sends
 * only on the connection it dialed; it receives on the connections it accepted. Frames are msgpack
 * with a size limit. A connection that fails the handshake or sends a bad frame is closed and logged;
 * nothing else is affected. A host that is down looks to nodes like crashed nodes: messages to it
 * are dropped, not buffered.
 */
import type { Socket, TCPSocketListener } from "bun";
import { DRIVER_ID, type NodeInfo, type NodeStatus } from "../driver/cluster.ts";
import { Limits } from "../workers/runtime/limits.ts";
import { parseNetworkPatch, type NetworkSettings } from "../workers/runtime/network.ts";
import { isMessage } from "../workers/runtime/node.ts";
import type { Logger, Message, NodeId } from "../workers/runtime/types.ts";
import { nonce, proof, proofMatches } from "./auth.ts";
import { FrameDecoder, FrameError, encodeFrame } from "./frames.ts";
import type { ThreadCluster } from "./supervisor.ts";

export interface Endpoint {
  hostname: string;
  port: number;
}

export interface BridgeOptions {
  host: string;
  listen: Endpoint;
  peers: Record<string, Endpoint>;
  secret: string;
  log: Logger;
  handshakeTimeoutMs?: number;
}

/** Node messages per frame (a receiver refuses more). */
const MAX_FRAME_MESSAGES = 4096;

type ControlOp = "crash" | "restart" | "pause" | "resume" | "inspect" | "info" | "network" | "shutdown";
const CONTROL_OPS: ReadonlySet<string> = new Set(["crash", "restart", "pause", "resume", "inspect", "info", "network", "shutdown"]);

interface ConnState {
  decoder: FrameDecoder;
  /** Set once the peer proved the secret. */
  peerHost: string | null;
  myNonce: string;
  dialed: boolean;
  timer?: ReturnType<typeof setTimeout>;
}

interface Outgoing {
  endpoint: Endpoint;
  socket: Socket<ConnState> | null;
  ready: boolean;
  pending: Uint8Array[];
  pendingBytes: number;
  backoffMs: number;
  flushScheduled: boolean;
  unsent: Uint8Array | null;
}

export class TcpBridge {
  private readonly out = new Map<string, Outgoing>();
  private listener: TCPSocketListener<ConnState> | null = null;
  private readonly toRemote = new Map<string, MessagePort>();
  private readonly fromRemote = new Map<string, MessagePort | Message[]>();
  private readonly calls = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: ReturnType<typeof setTimeout> }>();
  private nextCall = 1;
  private readonly remoteStatuses = new Map<NodeId, NodeStatus>();
  private closed = false;
  /** Counters for the admin API and tests. */
  readonly counters = { framesIn: 0, framesOut: 0, dropped: 0, rejectedConnections: 0 };
  onShutdown: (() => void) | null = null;

  constructor(
    private readonly opts: BridgeOptions,
    private readonly cluster: ThreadCluster,
  ) {
    for (const [host, endpoint] of Object.entries(opts.peers)) {
      this.out.set(host, { endpoint, socket: null, ready: false, pending: [], pendingBytes: 0, backoffMs: 100, flushScheduled: false, unsent: null });
    }
  }

  get port(): number {
    return this.listener?.port ?? 0;
  }

  start(): void {
    const self = this;
    this.listener = Bun.listen<ConnState>({
      hostname: this.opts.listen.hostname,
      port: this.opts.listen.port,
      socket: {
        open(s) {
          s.data = { decoder: new FrameDecoder(), peerHost: null, myNonce: nonce(), dialed: false };
          s.data.timer = setTimeout(() => self.reject(s, "handshake timed out"), self.opts.handshakeTimeoutMs ?? 5000);
          self.write(s, { t: "challenge", host: self.opts.host, nonce: s.data.myNonce });
        },
        data: (s, chunk) => self.onData(s, chunk),
        close: (s) => clearTimeout(s.data?.timer),
        error: (s, e) => self.opts.log.warn(`bridge: connection error: ${e.message}`),
      },
    });
    for (const host of this.out.keys()) this.dial(host);
  }

  private dial(host: string): void {
    if (this.closed) return;
    const o = this.out.get(host)!;
    const self = this;
    Bun.connect<ConnState>({
      hostname: o.endpoint.hostname,
      port: o.endpoint.port,
      socket: {
        open(s) {
          s.data = { decoder: new FrameDecoder(), peerHost: null, myNonce: nonce(), dialed: true };
          s.data.timer = setTimeout(() => self.reject(s, "handshake timed out"), self.opts.handshakeTimeoutMs ?? 5000);
          s.setNoDelay?.(true);
          o.socket = s;
        },
        data: (s, chunk) => self.onData(s, chunk),
        drain: () => self.flush(host),
        close: (s) => {
          clearTimeout(s.data?.timer);
          if (o.socket === s) self.lostPeer(host);
        },
        error: () => {},
      },
    }).catch(() => this.lostPeer(host));
  }

  private lostPeer(host: string): void {
    const o = this.out.get(host)!;
    if (o.ready) this.opts.log.warn(`bridge: lost host ${host}; its nodes look crashed until it is back`);
    o.socket = null;
    o.ready = false;
    this.counters.dropped += o.pending.length;
    o.pending = [];
    o.pendingBytes = 0;
    o.unsent = null;
    for (const n of this.cluster.nodes) if (this.cluster.hostOf(n.id) === host) this.remoteStatuses.set(n.id, "crashed");
    if (this.closed) return;
    const delay = o.backoffMs;
    o.backoffMs = Math.min(o.backoffMs * 2, 5000);
    setTimeout(() => this.dial(host), delay);
  }

  private reject(s: Socket<ConnState>, why: string): void {
    this.counters.rejectedConnections++;
    this.opts.log.warn(`bridge: closed a connection from ${s.remoteAddress}${s.data?.peerHost ? ` (host ${s.data.peerHost})` : ""}: ${why}`);
    s.end();
  }

  private write(s: Socket<ConnState>, value: unknown): void {
    s.write(encodeFrame(value));
  }

  private onData(s: Socket<ConnState>, chunk: Uint8Array): void {
    let frames: unknown[];
    try {
      frames = s.data.decoder.push(chunk);
    } catch (e) {
      this.reject(s, e instanceof FrameError ? e.message : "bad frame");
      return;
    }
    for (const f of frames) {
      try {
        if (!this.onFrame(s, f)) return;
      } catch (e) {
        this.reject(s, `frame handling failed: ${e instanceof Error ? e.message : String(e)}`);
        return;
      }
    }
  }

  /** Handle one frame; false when the connection was closed. */
  private onFrame(s: Socket<ConnState>, f: unknown): boolean {
    if (typeof f !== "object" || f === null || typeof (f as { t?: unknown }).t !== "string") return this.reject(s, "frame is not an object with a type"), false;
    const frame = f as Record<string, unknown>;
    const st = s.data;
    if (st.peerHost === null) return this.handshake(s, frame);
    this.counters.framesIn++;
    switch (frame.t) {
      case "msgs": {
        const ms = frame.ms;
        if (!Array.isArray(ms) || ms.length === 0 || ms.length > MAX_FRAME_MESSAGES) return this.reject(s, `a batch must be a non-empty array of at most ${MAX_FRAME_MESSAGES} messages`), false;
        // Regroup by destination port: one port message per local node per frame.
        const groups = new Map<MessagePort, Message[]>();
        for (const m of ms) if (!this.onRemoteMessage(s, m, groups)) return false;
        for (const [port, batch] of groups) port.postMessage(batch);
        return true;
      }
      case "ctl":
        void this.onControl(st.peerHost, frame);
        return true;
      case "ctl_ok":
      case "ctl_err": {
        const c = this.calls.get(Number(frame.id));
        if (!c) return true;
        this.calls.delete(Number(frame.id));
        clearTimeout(c.timer);
        if (frame.t === "ctl_ok") c.resolve(frame.value);
        else c.reject(new Error(String(frame.error)));
        return true;
      }
      default:
        return this.reject(s, `unknown frame type "${String(frame.t)}"`), false;
    }
  }

  private handshake(s: Socket<ConnState>, frame: Record<string, unknown>): boolean {
    const st = s.data;
    const secret = this.opts.secret;
    if (!st.dialed) {
      // We listen: expect the dialer's proof over our nonce.
      if (frame.t !== "auth" || typeof frame.host !== "string" || typeof frame.nonce !== "string") return this.reject(s, "expected an auth frame"), false;
      if (!this.out.has(frame.host)) return this.reject(s, `unknown host "${frame.host}"`), false;
      if (!proofMatches(proof(secret, "dialer", st.myNonce, frame.host, this.opts.host), frame.proof)) return this.reject(s, `host "${frame.host}" failed the handshake (wrong secret?)`), false;
      st.peerHost = frame.host;
      clearTimeout(st.timer);
      this.write(s, { t: "welcome", proof: proof(secret, "listener", frame.nonce, this.opts.host, frame.host) });
      return true;
    }
    // We dialed: first the listener's challenge, then its welcome.
    if (frame.t === "challenge") {
      if (typeof frame.nonce !== "string" || typeof frame.host !== "string") return this.reject(s, "bad challenge"), false;
      (st as ConnState & { expectHost?: string }).expectHost = frame.host;
      this.write(s, { t: "auth", host: this.opts.host, nonce: st.myNonce, proof: proof(secret, "dialer", frame.nonce, this.opts.host, frame.host) });
      return true;
    }
    if (frame.t === "welcome") {
      const host = (st as ConnState & { expectHost?: string }).expectHost;
      if (!host || !this.out.has(host)) return this.reject(s, "welcome from an unknown host"), false;
      if (!proofMatches(proof(secret, "listener", st.myNonce, host, this.opts.host), frame.proof)) return this.reject(s, `host "${host}" failed the handshake (wrong secret?)`), false;
      st.peerHost = host;
      clearTimeout(st.timer);
      const o = this.out.get(host)!;
      o.ready = true;
      o.backoffMs = 100;
      this.opts.log.info(`bridge: connected to host ${host}`);
      for (const n of this.cluster.nodes) if (this.cluster.hostOf(n.id) === host) this.remoteStatuses.set(n.id, "running");
      return true;
    }
    return this.reject(s, `unexpected "${String(frame.t)}" during the handshake`), false;
  }

  private onRemoteMessage(s: Socket<ConnState>, m: unknown, groups: Map<MessagePort, Message[]>): boolean {
    const from = s.data.peerHost!;
    if (!isMessage(m)) return this.reject(s, "malformed node message"), false;
    const srcOk = m.src === DRIVER_ID || this.cluster.hostOf(m.src) === from;
    if (!srcOk) return this.reject(s, `host ${from} sent a message from "${m.src}", which does not live there`), false;
    if (m.dest === DRIVER_ID) {
      this.cluster.deliverToDriver(m);
      return true;
    }
    if (!this.cluster.isLocal(m.dest)) return this.reject(s, `message for "${m.dest}", which does not live on ${this.opts.host}`), false;
    if (m.src === DRIVER_ID) {
      this.cluster.deliverFromDriver(m);
      return true;
    }
    const key = `${m.dest}|${m.src}`;
    const existing = this.fromRemote.get(key) ?? this.toRemote.get(key);
    if (existing instanceof MessagePort) {
      const g = groups.get(existing);
      if (g) g.push(m);
      else groups.set(existing, [m]);
      return true;
    }
    if (Array.isArray(existing)) {
      if (existing.length < Limits.maxLinkBacklog) existing.push(m);
      else this.counters.dropped++;
      return true;
    }
    const backlog: Message[] = [m];
    this.fromRemote.set(key, backlog);
    this.cluster.linkFromRemote(m.src, m.dest).then(
      (port) => {
        if (this.fromRemote.get(key) !== backlog) return;
        if (!port) {
          this.fromRemote.delete(key);
          this.counters.dropped += backlog.length;
          return;
        }
        port.onmessage = (e) => this.sendToHost(from, e.data);
        this.fromRemote.set(key, port);
        port.postMessage(backlog);
      },
      () => this.fromRemote.delete(key),
    );
    return true;
  }

  /** A port a local node uses to reach a remote node; the bridge frames what arrives on it. */
  portFor(src: NodeId, dest: NodeId): MessagePort | null {
    const host = this.cluster.hostOf(dest);
    if (!host || !this.out.has(host)) return null;
    const ch = new MessageChannel();
    ch.port2.onmessage = (e) => this.sendToHost(host, e.data);
    const key = `${src}|${dest}`;
    this.toRemote.get(key)?.close();
    this.toRemote.set(key, ch.port2);
    return ch.port1;
  }

  /** A local node crashed or restarted: its old ports are dead. */
  dropLocal(id: NodeId): void {
    for (const map of [this.toRemote, this.fromRemote]) {
      for (const [key, p] of map) {
        if (!key.startsWith(`${id}|`)) continue;
        if (p instanceof MessagePort) p.close();
        map.delete(key);
      }
    }
  }

  /** Frame one message, or a worker's batch, for a host. */
  sendToHost(host: string, msgOrBatch: unknown): void {
    const ms = Array.isArray(msgOrBatch) ? msgOrBatch : [msgOrBatch];
    for (let i = 0; i < ms.length; i += MAX_FRAME_MESSAGES) this.enqueueBatch(host, ms.slice(i, i + MAX_FRAME_MESSAGES));
  }

  /** A batch too large for one frame is split in halves until each fits; a single oversized message is dropped. */
  private enqueueBatch(host: string, ms: unknown[]): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame({ t: "msgs", ms });
    } catch {
      if (ms.length === 1) {
        this.counters.dropped++;
        return;
      }
      const mid = ms.length >> 1;
      this.enqueueBatch(host, ms.slice(0, mid));
      this.enqueueBatch(host, ms.slice(mid));
      return;
    }
    this.enqueueBytes(host, bytes);
  }

  private enqueue(host: string, frame: unknown): boolean {
    let bytes: Uint8Array;
    try {
      bytes = encodeFrame(frame);
    } catch {
      this.counters.dropped++;
      return false;
    }
    return this.enqueueBytes(host, bytes);
  }

  private enqueueBytes(host: string, bytes: Uint8Array): boolean {
    const o = this.out.get(host);
    if (!o || !o.ready || !o.socket) {
      this.counters.dropped++;
      return false;
    }
    if (o.pendingBytes + bytes.length > Limits.maxBridgeBufferBytes) {
      this.counters.dropped++;
      return false;
    }
    o.pending.push(bytes);
    o.pendingBytes += bytes.length;
    this.counters.framesOut++;
    if (!o.flushScheduled) {
      o.flushScheduled = true;
      // Frames queued in one turn go out in one write: fewer syscalls, no added latency.
      queueMicrotask(() => this.flush(host));
    }
    return true;
  }

  private flush(host: string): void {
    const o = this.out.get(host)!;
    o.flushScheduled = false;
    if (!o.socket || !o.ready) return;
    let chunk: Uint8Array;
    if (o.unsent) {
      chunk = o.unsent;
      o.unsent = null;
    } else {
      if (o.pending.length === 0) return;
      chunk = o.pending.length === 1 ? o.pending[0]! : concat(o.pending, o.pendingBytes);
      o.pending = [];
      o.pendingBytes = 0;
    }
    const n = o.socket.write(chunk);
    if (n < chunk.length) o.unsent = chunk.subarray(Math.max(n, 0));
    else if (o.pending.length > 0) this.flush(host);
  }

  control(host: string, op: ControlOp, node?: NodeId, extra?: unknown): Promise<unknown> {
    const id = this.nextCall++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (this.calls.delete(id)) reject(new Error(`host ${host} did not answer "${op}" within 5 s`));
      }, 5000);
      this.calls.set(id, { resolve, reject, timer });
      if (!this.enqueue(host, { t: "ctl", id, op, node, extra })) {
        this.calls.delete(id);
        clearTimeout(timer);
        reject(new Error(`host ${host} is not connected`));
      }
    }).then((v) => {
      if (node && (op === "crash" || op === "restart" || op === "pause" || op === "resume")) this.remoteStatuses.set(node, op === "crash" ? "crashed" : op === "pause" ? "paused" : "running");
      return v;
    });
  }

  private async onControl(from: string, frame: Record<string, unknown>): Promise<void> {
    const id = frame.id;
    const reply = (f: Record<string, unknown>) => this.enqueue(from, { ...f, id });
    try {
      const op = frame.op;
      if (typeof op !== "string" || !CONTROL_OPS.has(op)) throw new Error(`unknown control op "${String(op)}"`);
      const node = frame.node;
      const needNode = () => {
        if (typeof node !== "string" || !this.cluster.isLocal(node)) throw new Error(`node "${String(node)}" does not live on ${this.opts.host}`);
        return node;
      };
      let value: unknown = null;
      switch (op as ControlOp) {
        case "crash":
          await this.cluster.crash(needNode());
          break;
        case "restart":
          await this.cluster.restart(needNode());
          break;
        case "pause":
          await this.cluster.pause(needNode());
          break;
        case "resume":
          await this.cluster.resume(needNode());
          break;
        case "inspect":
          value = await this.cluster.inspect(needNode());
          break;
        case "info":
          value = await this.cluster.localInfo();
          break;
        case "network": {
          const net = frame.extra as NetworkSettings;
          const ids = this.cluster.nodes.map((n) => n.id);
          parseNetworkPatch({ ...net?.defaults, links: net?.links ?? {}, partitions: net?.partitions ?? [] }, ids);
          this.cluster.applyNetwork(net);
          break;
        }
        case "shutdown":
          setTimeout(() => this.onShutdown?.(), 0);
          break;
      }
      reply({ t: "ctl_ok", value });
    } catch (e) {
      reply({ t: "ctl_err", error: e instanceof Error ? e.message : String(e) });
    }
  }

  remoteStatus(id: NodeId): NodeStatus {
    return this.remoteStatuses.get(id) ?? "crashed";
  }

  async remoteInfo(): Promise<NodeInfo[]> {
    const all = await Promise.all([...this.out.keys()].map((h) => this.control(h, "info").catch(() => [])));
    return (all as NodeInfo[][]).flat();
  }

  broadcastNetwork(net: NetworkSettings): void {
    for (const h of this.out.keys()) void this.control(h, "network", undefined, net).catch((e) => this.opts.log.warn(`bridge: ${String(e)}`));
  }

  /** Ask every peer host to stop (the driver host does this at the end of a --duration run). */
  async shutdownPeers(): Promise<void> {
    await Promise.all([...this.out.keys()].map((h) => this.control(h, "shutdown").catch(() => {})));
  }

  connectedHosts(): string[] {
    return [...this.out.entries()].filter(([, o]) => o.ready).map(([h]) => h);
  }

  close(): void {
    this.closed = true;
    for (const o of this.out.values()) o.socket?.end();
    this.listener?.stop(true);
    for (const c of this.calls.values()) clearTimeout(c.timer);
    for (const map of [this.toRemote, this.fromRemote]) for (const p of map.values()) if (p instanceof MessagePort) p.close();
  }
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export type Bridge = TcpBridge;
