/**
 * The supervisor: spawns each local node as a worker thread, wires links between them on first use,
 * and implements the driver's Cluster interface on real threads. It is control plane only: once a
 * link exists, messages go straight from worker to worker.
 */
import * as Comlink from "comlink";
import { mkdirSync, rmSync } from "node:fs";
import { DriverCalls } from "../driver/calls.ts";
import { DRIVER_ID, type Cluster, type NetworkPatch, type NodeInfo, type NodeStatus } from "../driver/cluster.ts";
import { Limits } from "../workers/runtime/limits.ts";
import { applyNetworkPatch, defaultNetwork, parseNetworkPatch, type NetworkSettings } from "../workers/runtime/network.ts";
import { isMessage } from "../workers/runtime/node.ts";
import { formatLogLine, makeLogger, printLine, wallStamp } from "../workers/runtime/log.ts";
import { seededRandom } from "../workers/runtime/random.ts";
import { ErrorCode, RpcError, type Body, type LogLevel, type Logger, type Message, type NodeId, type NodeSpec, type Random } from "../workers/runtime/types.ts";
import type { LinkGrant, SupervisorPort, WorkerApi, WorkerInit } from "../workers/runtime/worker.ts";
import type { Bridge } from "./bridge.ts";

const WORKER_URL = new URL("../workers/runtime/worker.ts", import.meta.url).href;

export interface StartOptions {
  system: string;
  nodes: NodeSpec[];
  seed: number;
  dataDir: string;
  /** Wipe dataDir first. */
  fresh?: boolean;
  network?: NetworkPatch;
  logLevel?: LogLevel;
  /** Multi-host: this process's host name, and where each node lives (absent: every node is local). */
  host?: string;
  placement?: Record<NodeId, string>;
  /** The host that runs the driver (scenario, nemesis, checks). Default: this one. */
  driverHost?: string;
  /** Multi-host: what nodes need for their own TCP data endpoints. */
  wire?: { secret: string; listenHostname: string; peerHosts: string[] };
  /**
   * Worker threads to pack this host's nodes into (round-robin). Default: one thread per node,
   * where a crash terminates the thread itself; in a shared thread a crash drops the node's
   * runtime (its memory) and keeps its storage, as in the simulator.
   */
  threads?: number;
}

/** A worker thread and the nodes it holds. */
interface Group {
  worker: Worker | null;
  api: Comlink.Remote<WorkerApi> | null;
  driverPort: MessagePort | null;
  members: NodeId[];
}

interface LocalNode {
  spec: NodeSpec;
  status: NodeStatus;
  incarnation: number;
  group: Group;
  httpUrl?: string;
  dataPort?: number;
}

export class ThreadCluster implements Cluster {
  readonly mode = "threads" as const;
  readonly seed: number;
  readonly nodes: readonly NodeSpec[];
  readonly random: Random;
  readonly log: Logger;
  readonly host: string;
  private readonly local = new Map<NodeId, LocalNode>();
  private readonly placement: Record<NodeId, string>;
  private readonly nodeIds: NodeId[];
  private net: NetworkSettings = defaultNetwork();
  get history() {
    return this.driverCalls.history;
  }
  private readonly driverCalls = new DriverCalls({ setTimer: (ms, fn) => setTimeout(fn, ms), clearTimer: (t) => clearTimeout(t as ReturnType<typeof setTimeout>) });
  private bridge: Bridge | null = null;
  private readonly driverHost: string;
  private stopped = false;

  constructor(private readonly opts: StartOptions) {
    this.seed = opts.seed;
    this.nodes = opts.nodes;
    this.nodeIds = opts.nodes.map((n) => n.id);
    this.host = opts.host ?? "local";
    this.driverHost = opts.driverHost ?? this.host;
    this.placement = {};
    for (const n of opts.nodes) this.placement[n.id] = opts.placement?.[n.id] ?? this.host;
    this.random = seededRandom(opts.seed, "driver");
    this.log = makeLogger(opts.logLevel ?? "info", (level, text, fields) => printLine(level, formatLogLine(wallStamp(), DRIVER_ID, level, text, fields)));
    if (opts.network) this.net = applyNetworkPatch(this.net, parseNetworkPatch(opts.network, this.nodeIds));
  }

  /** Attach the TCP bridge that carries traffic to nodes on other hosts. */
  attachBridge(bridge: Bridge): void {
    this.bridge = bridge;
  }

  isLocal(id: NodeId): boolean {
    return this.placement[id] === this.host;
  }

  hostOf(id: NodeId): string | undefined {
    return this.placement[id];
  }

  async start(): Promise<void> {
    if (this.opts.fresh) rmSync(this.opts.dataDir, { recursive: true, force: true });
    mkdirSync(this.opts.dataDir, { recursive: true });
    const specs = this.opts.nodes.filter((s) => this.isLocal(s.id));
    const threads = this.opts.threads === undefined ? specs.length : Math.max(1, Math.min(this.opts.threads, specs.length));
    const groups: Group[] = Array.from({ length: threads }, () => ({ worker: null, api: null, driverPort: null, members: [] }));
    specs.forEach((spec, i) => {
      const group = groups[i % threads]!;
      group.members.push(spec.id);
      this.local.set(spec.id, { spec, status: "crashed", incarnation: -1, group });
    });
    await Promise.all(groups.map((g) => this.spawnWorker(g)));
    // A node that cannot start (its port is taken, say) fails the run: it does not run without it.
    const failed = (await Promise.all([...this.local.values()].map((n) => this.startNode(n)))).filter((why) => why !== null);
    if (failed.length > 0) throw new Error(failed.join("; "));
  }

  private groups(): Group[] {
    return [...new Set([...this.local.values()].map((n) => n.group))];
  }

  /** Start a worker thread for a group (its nodes are started one by one after). */
  private async spawnWorker(g: Group): Promise<void> {
    const worker = new Worker(WORKER_URL);
    const api = Comlink.wrap<WorkerApi>(worker as unknown as Comlink.Endpoint);
    const sup = new MessageChannel();
    const drv = new MessageChannel();
    const supervisorPort: SupervisorPort = {
      requestLink: (src, dest) => this.requestLink(src, dest),
      httpReady: (id, url) => {
        const node = this.local.get(id);
        if (node) node.httpUrl = url;
      },
      dataReady: (id, port) => {
        const node = this.local.get(id);
        if (node) node.dataPort = port;
      },
    };
    Comlink.expose(supervisorPort, sup.port1);
    drv.port1.onmessage = (e) => this.fromNodeToDriver(e.data);
    g.worker = worker;
    g.api = api;
    g.driverPort = drv.port1;
    worker.addEventListener("error", (e) => {
      this.log.error(`worker of ${g.members.join(", ")} died: ${(e as ErrorEvent).message}`);
      if (g.worker !== worker) return;
      this.endWorker(g);
      for (const id of g.members) void this.crash(id);
    });
    await api.connect(Comlink.transfer(sup.port2, [sup.port2]), Comlink.transfer(drv.port2, [drv.port2]));
  }

  private endWorker(g: Group): void {
    g.worker?.terminate();
    g.api?.[Comlink.releaseProxy]();
    g.driverPort?.close();
    g.worker = null;
    g.api = null;
    g.driverPort = null;
  }

  /** Starts a node; a failure leaves it crashed and is returned (null: it runs). */
  private async startNode(n: LocalNode): Promise<string | null> {
    n.incarnation++;
    n.httpUrl = undefined;
    n.dataPort = undefined;
    n.status = "running";
    const init: WorkerInit = {
      system: this.opts.system,
      spec: n.spec,
      nodeIds: this.nodeIds,
      incarnation: n.incarnation,
      seed: this.seed,
      dataDir: this.opts.dataDir,
      logLevel: this.opts.logLevel ?? "info",
      network: this.net,
      wire: this.opts.wire ? { ...this.opts.wire, host: this.host, placement: this.placement } : undefined,
    };
    try {
      await n.group.api!.startNode(init);
      return null;
    } catch (e) {
      await this.crash(n.spec.id);
      return `node ${n.spec.id} failed to start: ${e instanceof Error ? e.message : String(e)}`;
    }
  }

  /**
   * A worker asks for a link to dest: a local peer gets a direct MessageChannel; a remote one, the
   * address of its node's own TCP data endpoint (asked of its host), which the worker dials itself.
   */
  private async requestLink(src: NodeId, dest: NodeId): Promise<LinkGrant | null> {
    if (!this.nodeIds.includes(dest)) return null;
    if (!this.isLocal(dest)) {
      const host = this.placement[dest]!;
      const at = this.bridge?.endpointOf(host);
      if (!at || !this.bridge) return null;
      const port = await this.bridge.control(host, "where", dest).catch(() => null);
      return typeof port === "number" ? { wire: { hostname: at.hostname, port } } : null;
    }
    const peer = this.local.get(dest);
    if (!peer || peer.status === "crashed" || !peer.group.api) return null;
    const ch = new MessageChannel();
    await peer.group.api.acceptLink(dest, src, Comlink.transfer(ch.port2, [ch.port2]));
    return Comlink.transfer({ port: ch.port1 }, [ch.port1]);
  }

  /** The port of a local node's TCP data endpoint (multi-host only). */
  dataPort(id: NodeId): number | undefined {
    const n = this.local.get(id);
    return n && n.status !== "crashed" ? n.dataPort : undefined;
  }

  private fromNodeToDriver(msg: unknown): void {
    if (!isMessage(msg)) return;
    if (this.driverHost !== this.host) {
      this.bridge?.sendToHost(this.driverHost, msg);
      return;
    }
    this.deliverToDriver(msg);
  }

  /** A reply for the driver, from a local worker or from the bridge. */
  deliverToDriver(msg: Message): void {
    this.driverCalls.settle(msg);
  }

  /** A message from the driver on another host, for a local node. */
  deliverFromDriver(msg: Message): void {
    this.local.get(msg.dest)?.group.driverPort?.postMessage(msg);
  }

  private node(id: NodeId): LocalNode {
    const n = this.local.get(id);
    if (n) return n;
    if (this.nodeIds.includes(id)) throw new Error(`node "${id}" lives on host ${this.placement[id]}`);
    throw new Error(`no node "${id}" (nodes: ${this.nodeIds.join(", ")})`);
  }

  private broadcastDropLink(id: NodeId): void {
    for (const g of this.groups()) if (g.api) void g.api.dropLink(id).catch(() => {});
  }

  now(): number {
    return performance.timeOrigin + performance.now();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  async crash(id: NodeId): Promise<void> {
    if (!this.isLocal(id) && this.bridge) return void (await this.bridge.control(this.placement[id]!, "crash", id));
    const n = this.node(id);
    if (n.status === "crashed") return;
    n.status = "crashed";
    n.httpUrl = undefined;
    n.dataPort = undefined;
    const g = n.group;
    // Alone in its thread, a node dies with the thread; in a shared one, only its runtime goes.
    if (g.members.length === 1) this.endWorker(g);
    else await g.api?.crashNode(id).catch(() => {});
    this.broadcastDropLink(id);
  }

  async restart(id: NodeId): Promise<void> {
    if (!this.isLocal(id) && this.bridge) return void (await this.bridge.control(this.placement[id]!, "restart", id));
    const n = this.node(id);
    // crash() already told every peer to forget its link; links made once the new worker is up are good.
    if (n.status !== "crashed") await this.crash(id);
    if (!n.group.api) await this.spawnWorker(n.group);
    const failed = await this.startNode(n);
    if (failed) this.log.error(failed);
  }

  async pause(id: NodeId): Promise<void> {
    if (!this.isLocal(id) && this.bridge) return void (await this.bridge.control(this.placement[id]!, "pause", id));
    const n = this.node(id);
    if (n.status !== "running") return;
    await n.group.api!.pause(id);
    n.status = "paused";
  }

  async resume(id: NodeId): Promise<void> {
    if (!this.isLocal(id) && this.bridge) return void (await this.bridge.control(this.placement[id]!, "resume", id));
    const n = this.node(id);
    if (n.status !== "paused") return;
    await n.group.api!.resume(id);
    n.status = "running";
  }

  status(id: NodeId): NodeStatus {
    const n = this.local.get(id);
    if (n) return n.status;
    if (this.nodeIds.includes(id)) return this.bridge?.remoteStatus(id) ?? "crashed";
    throw new Error(`no node "${id}"`);
  }

  /** This host's nodes. */
  async localInfo(): Promise<NodeInfo[]> {
    return Promise.all(
      [...this.local.values()].map(async (n) => ({
        id: n.spec.id,
        role: n.spec.role,
        host: this.host,
        status: n.status,
        incarnation: n.incarnation,
        stats: n.group.api && n.status !== "crashed" ? await withTimeout(n.group.api.stats(n.spec.id), 2000).catch(() => null) : null,
      })),
    );
  }

  async info(): Promise<NodeInfo[]> {
    const mine = await this.localInfo();
    const remote = this.bridge ? await this.bridge.remoteInfo() : [];
    const byId = new Map([...mine, ...remote].map((i) => [i.id, i]));
    return this.nodeIds.map((id) => byId.get(id) ?? { id, role: this.nodes.find((n) => n.id === id)!.role, host: this.placement[id]!, status: "crashed", incarnation: -1, stats: null });
  }

  network(): NetworkSettings {
    return this.net;
  }

  async setNetwork(patch: NetworkPatch): Promise<void> {
    this.applyNetwork(applyNetworkPatch(this.net, parseNetworkPatch(patch, this.nodeIds)));
    this.bridge?.broadcastNetwork(this.net);
  }

  /** Adopt settings (local change, or from the driver host). */
  applyNetwork(net: NetworkSettings): void {
    this.net = net;
    for (const g of this.groups()) if (g.api) void g.api.setNetwork(net).catch(() => {});
  }

  async inspect<T = unknown>(id: NodeId): Promise<T | null> {
    if (!this.isLocal(id) && this.bridge) return (await this.bridge.control(this.placement[id]!, "inspect", id)) as T | null;
    const n = this.node(id);
    if (!n.group.api || n.status === "crashed") return null;
    return (await withTimeout(n.group.api.inspect(id), 5000)) as T | null;
  }

  request<R = Body>(dest: NodeId, body: Body, timeoutMs: number = Limits.defaultRequestTimeoutMs): Promise<R> {
    if (!this.nodeIds.includes(dest)) return Promise.reject(new RpcError(ErrorCode.NodeNotFound, `no node "${dest}"`));
    return this.driverCalls.call<R>(dest, body, timeoutMs, (msg) => {
      if (this.isLocal(dest)) this.deliverFromDriver(msg);
      else this.bridge?.sendToHost(this.placement[dest]!, msg);
    });
  }

  async fetch(id: NodeId, req: Request): Promise<Response> {
    const base = this.httpUrl(id);
    if (!base) throw new Error(`node ${id} serves no HTTP right now`);
    const u = new URL(req.url);
    return fetch(new URL(u.pathname + u.search, base), req);
  }

  httpUrl(id: NodeId): string | undefined {
    return this.local.get(id)?.httpUrl;
  }

  /** Clean stop: every node's stop hook runs and its storage closes; then workers end. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      [...this.local.values()].map(async (n) => {
        const api = n.group.api;
        if (api && n.status !== "crashed") {
          if (n.status === "paused") await api.resume(n.spec.id).catch(() => {});
          await withTimeout(api.stopNode(n.spec.id), 3000).catch((e) => this.log.warn(`node ${n.spec.id} did not stop cleanly: ${String(e)}`));
        }
        n.status = "crashed";
      }),
    );
    for (const g of this.groups()) this.endWorker(g);
    this.driverCalls.clear();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e) => (clearTimeout(t), reject(e)),
    );
  });
}

/** Start a cluster on worker threads (all nodes local unless placement says otherwise). */
export async function startCluster(opts: StartOptions): Promise<ThreadCluster> {
  const c = new ThreadCluster(opts);
  await c.start();
  return c;
}
