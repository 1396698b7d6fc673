/**
 * The supervisor: spawns each local node as a worker thread, wires links between them on first use,
 * and implements the driver's Cluster interface on real threads. It is control plane only: once a
 * link exists, messages go straight from worker to worker.
 */
import * as Comlink from "comlink";
import { cpusForThreads } from "../workers/runtime/cpu-affinity.ts";
import { mkdirSync, rmSync } from "node:fs";
import { DriverCalls } from "../driver/calls.ts";
import { DRIVER_ID, NotAppliedError, type Cluster, type NetworkPatch, type NodeInfo, type NodeStatus } from "../driver/cluster.ts";
import { rolesModule } from "../workers/registry.ts";
import { assert } from "../workers/runtime/assert.ts";
import { Limits } from "../workers/runtime/limits.ts";
import { applyNetworkPatch, defaultNetwork, parseNetworkPatch, type NetworkSettings } from "../workers/runtime/network.ts";
import { isMessage } from "../workers/runtime/node.ts";
import { formatLogLine, makeLogger, printLine, wallStamp } from "../workers/runtime/log.ts";
import { seededRandom } from "../workers/runtime/random.ts";
import { ErrorCode, RpcError, type Body, type LogLevel, type Logger, type Message, type NodeId, type NodeSpec, type Random } from "../workers/runtime/types.ts";
import type { LanePeer } from "../workers/runtime/lanes.ts";
import type { LinkGrant, SupervisorPort, WorkerApi, WorkerInit } from "../workers/runtime/worker.ts";
import type { LocalHost, RemoteHosts } from "./hosts.ts";
import { realNow } from "../workers/runtime/real-clock.ts";

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
  /**
   * Packed threads: pin each worker thread to a CPU of its own (src/workers/runtime/cpu-affinity.ts).
   * Default true; done only when every node is in this process and there are no more threads than
   * CPUs. Several processes on one machine would each pin to the same CPUs, so multi-host never pins.
   */
  pin?: boolean;
  /** What a control call's timeout stretches from (default Limits.controlTimeoutMs; tests shorten it). */
  controlTimeoutMs?: number;
}

/** A worker thread and the nodes it holds. */
interface Group {
  /** Its place among this host's threads (a lane names the thread at its far end by it). */
  index: number;
  worker: Worker | null;
  api: Comlink.Remote<WorkerApi> | null;
  driverPort: MessagePort | null;
  /** Our end of the channel the worker asks the supervisor on (links, HTTP and data endpoints). */
  supervisorPort: MessagePort | null;
  members: NodeId[];
  /** Rejected when the worker ends, failing every call still pending on it (comlink would drop them). */
  gone: { promise: Promise<never>; reject(e: Error): void } | null;
  /** A worker being spawned (two members restarting at once share it). */
  spawning: Promise<void> | null;
  /** Resolves once the current worker thread has exited (its files and sockets are released). */
  exited: Promise<void>;
  /** Control calls sent to this worker and not yet answered (each waits behind the others). */
  inflight: number;
  /** The current worker answered connect (packed threads: it is given lanes to the others). */
  connected: boolean;
}

/** A worker, for messages: its nodes, but not five hundred of them. */
function describeGroup(g: Group): string {
  const shown = g.members.slice(0, 3).join(", ");
  return g.members.length <= 3 ? `the worker of ${shown}` : `the worker of ${shown} and ${g.members.length - 3} more nodes`;
}

interface LocalNode {
  spec: NodeSpec;
  status: NodeStatus;
  incarnation: number;
  group: Group;
  httpUrl?: string;
  dataPort?: number;
  /** Control operations on this node run one at a time, in the order they were called. */
  queue: Promise<unknown>;
  queued: number;
  /** Why the node's last start failed (null once it starts). */
  startError?: string;
}

/** The worker thread a local node goes to, by its place among the local nodes: dealt round-robin (bench/lib/packed-floor.ts deals its tablets the same way). */
export function packedThreadOf(index: number, threads: number): number {
  return index % threads;
}

/** A call to a worker that ended before it answered. */
export class WorkerGone extends Error {}

export class ThreadCluster implements Cluster, LocalHost {
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
  private bridge: RemoteHosts | null = null;
  private readonly driverHost: string;
  private stopped = false;
  private readonly upWaiters = new Map<NodeId, Array<() => void>>();
  /** Resolved once start() has placed this host's nodes (each then starting or started). */
  private readonly populated = Promise.withResolvers<void>();
  /** Where workers import the roles from (they know no registry). */
  private readonly rolesModule: string;
  /** Packed threads: every pair of worker threads shares one lane (lanes.ts) instead of a port per pair of nodes. */
  private lanes = false;
  /** Packed threads: the CPU each group's thread is pinned to, by group index; null when not pinning. */
  pinnedCpus: number[] | null = null;
  /** Why pinning was not done (or failed in a worker), when it was asked for. */
  pinNote: string | null = null;

  constructor(private readonly opts: StartOptions) {
    this.rolesModule = rolesModule(opts.system);
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
  attachBridge(bridge: RemoteHosts): void {
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
    const groups: Group[] = Array.from({ length: threads }, (_, index) => ({ index, worker: null, api: null, driverPort: null, supervisorPort: null, members: [], gone: null, spawning: null, exited: Promise.resolve(), inflight: 0, connected: false }));
    this.lanes = this.opts.threads !== undefined && threads > 1;
    if (this.opts.threads !== undefined && this.opts.pin !== false) this.planPins(threads);
    specs.forEach((spec, i) => {
      const group = groups[packedThreadOf(i, threads)]!;
      group.members.push(spec.id);
      this.local.set(spec.id, { spec, status: "crashed", incarnation: -1, group, queue: Promise.resolve(), queued: 0 });
    });
    this.populated.resolve();
    await eachAtMost(Limits.workersSpawnedAtOnce, groups, (g) => this.ensureWorker(g));
    await Promise.all([...this.local.values()].map((n) => this.serial(n, () => this.startNode(n, true))));
    // A node that cannot start (its port is taken, say) fails the run: it does not run without it.
    const failed = [...this.local.values()].filter((n) => n.status === "crashed").map((n) => n.startError ?? `node ${n.spec.id} did not start`);
    if (failed.length > 0) throw new Error(failed.join("; "));
  }

  /** Which CPU each packed thread is pinned to (see StartOptions.pin), or why none is. */
  private planPins(threads: number): void {
    if (this.nodes.some((n) => !this.isLocal(n.id))) {
      this.pinNote = "not pinned: nodes on other hosts (other processes may share this machine's CPUs)";
      return;
    }
    const plan = cpusForThreads(threads);
    if (typeof plan === "string") {
      this.pinNote = `not pinned: ${plan}`;
      return;
    }
    this.pinnedCpus = plan;
    // A thread starts with the CPU mask of the thread that starts it. JSC's GC helper threads are
    // shared by every thread's heap and started by the first collection that wants them: started from
    // a pinned worker, all of them would be held to its CPU. A collection here starts them unpinned.
    Bun.gc(true);
  }

  private groups(): Group[] {
    return [...new Set([...this.local.values()].map((n) => n.group))];
  }

  /** The group's worker, spawned if it has none. */
  private ensureWorker(g: Group): Promise<void> {
    if (g.api) return Promise.resolve();
    g.spawning ??= this.spawnWorker(g).finally(() => (g.spawning = null));
    return g.spawning;
  }

  /** Start a worker thread for a group (its nodes are started one by one after). */
  private async spawnWorker(g: Group): Promise<void> {
    if (this.stopped) throw new Error("the cluster is stopping");
    const worker = new Worker(WORKER_URL);
    const api = Comlink.wrap<WorkerApi>(worker as unknown as Comlink.Endpoint);
    const sup = new MessageChannel();
    const drv = new MessageChannel();
    const supervisorPort: SupervisorPort = {
      requestLink: (src, incarnation, dest) => this.requestLink(src, incarnation, dest),
      httpReady: (id, url) => {
        const node = this.local.get(id);
        if (node) node.httpUrl = url;
      },
      dataReady: (id, port) => {
        const node = this.local.get(id);
        if (node) node.dataPort = port;
        this.notifyUp(id);
      },
    };
    Comlink.expose(supervisorPort, sup.port1);
    drv.port1.onmessage = (e) => this.fromNodeToDriver(e.data);
    let reject!: (e: Error) => void;
    const promise = new Promise<never>((_, r) => (reject = r));
    // Observed by every callWorker race; this handler only keeps an unraced end from being reported as unhandled.
    promise.then(undefined, ignore);
    g.worker = worker;
    g.api = api;
    g.driverPort = drv.port1;
    g.supervisorPort = sup.port1;
    g.gone = { promise, reject };
    g.exited = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve()));
    worker.addEventListener("error", (e) => {
      if (g.worker !== worker) return;
      this.workerLost(g, `died: ${(e as ErrorEvent).message}`);
    });
    const cpu = this.pinnedCpus?.[g.index] ?? null;
    const pinFailed = await this.callWorker(g, "connect", (w) => w.connect(Comlink.transfer(sup.port2, [sup.port2]), Comlink.transfer(drv.port2, [drv.port2]), cpu), Limits.workerSpawnTimeoutMs);
    if (pinFailed !== null && this.pinNote === null) {
      this.pinNote = `not all pinned: ${describeGroup(g)} to CPU ${cpu}: ${pinFailed}`;
      this.log.warn(this.pinNote);
    }
    if (g.worker !== worker) return;
    g.connected = true;
    if (this.lanes) await this.connectLanes(g);
  }

  /**
   * A lane between a newly connected worker and every other connected one, before any node of the
   * new one starts (the other side's lane to this group's earlier worker is replaced). Made by
   * whichever of a pair connects second, so each pair gets exactly one. A worker that ends meanwhile
   * is given its lanes again when it is replaced.
   */
  private async connectLanes(g: Group): Promise<void> {
    const placement: Record<NodeId, LanePeer> = {};
    for (const [id, n] of this.local) placement[id] = { group: n.group.index, incarnation: Math.max(0, n.incarnation), up: n.incarnation < 0 || n.status !== "crashed" };
    const others = this.groups().filter((h) => h !== g && h.connected);
    await Promise.all(
      others.map(async (h) => {
        const ch = new MessageChannel();
        // The other worker failing to take its end does not fail this one's start: its nodes are then
        // unreachable from here, as a hung worker's are anyway, until it is replaced and given lanes again.
        const theirs = this.callWorker(h, `lane to ${describeGroup(g)}`, (api) => api.connectLane(h.index, g.index, Comlink.transfer(ch.port2, [ch.port2]), placement)).catch((e: unknown) => {
          if (!(e instanceof WorkerGone)) this.log.warn(String(e instanceof Error ? e.message : e));
        });
        await Promise.all([this.callWorker(g, `lane to ${describeGroup(h)}`, (api) => api.connectLane(g.index, h.index, Comlink.transfer(ch.port1, [ch.port1]), placement)), theirs]);
      }),
    );
  }

  /**
   * A call on a group's worker that always settles: with the answer, with WorkerGone if the worker
   * ends first, or with a timeout error.
   */
  private callWorker<T>(g: Group, what: string, call: (api: Comlink.Remote<WorkerApi>) => Promise<T>, timeoutMs: number = this.opts.controlTimeoutMs ?? Limits.controlTimeoutMs): Promise<T> {
    const { api, gone } = g;
    if (!api || !gone) return Promise.reject(new WorkerGone(`${what}: ${describeGroup(g)} is not running`));
    this.controlCalls++;
    // A worker shares its turns among its nodes and answers calls in order: both stretch a call. And
    // a thousand threads on two cores each get a thousandth of them: the base stretches with the host.
    const base = timeoutMs * Math.max(1, Math.ceil(this.local.size / Limits.controlTimeoutNodesPerStep));
    const budget = base + (g.inflight + g.members.length - 1) * Limits.controlTimeoutPerQueuedCallMs;
    g.inflight++;
    const turn = this.callTurn();
    const answer = call(api);
    answer.then(
      () => this.progress(turn),
      () => this.progress(turn),
    );
    return this.whileProgressing(Promise.race([answer, gone.promise]), turn, budget, base, `${what}: ${describeGroup(g)}`).finally(() => {
      this.leaveTurn(turn);
      g.inflight--;
      assert(g.inflight >= 0, "a worker's in-flight control count went negative");
    });
  }

  /** Control calls sent to workers so far (the cost of the control plane, for tests and benchmarks). */
  controlCalls = 0;
  /** Calls answered past their budget, waited for because the calls sent with them kept being answered (a slow step, for reports). */
  lateAnswers = 0;

  /**
   * Control calls are grouped by the turn of the main thread's event loop that sent them (start()
   * sends every node's start in one turn; info() every node's stats). A call answered is progress
   * for the calls of its own turn and of later ones, which were sent behind it.
   */
  private readonly turns = new Map<number, { pending: number; progressAt: number }>();
  private turnId = 0;
  private turnOpen = false;

  private callTurn(): number {
    if (!this.turnOpen) {
      this.turnOpen = true;
      setImmediate(() => {
        this.turnOpen = false;
        this.turnId++;
      });
    }
    const t = this.turns.get(this.turnId) ?? this.turns.set(this.turnId, { pending: 0, progressAt: performance.now() }).get(this.turnId)!;
    t.pending++;
    return this.turnId;
  }

  /** A worker answered a call of `turn`. */
  private progress(turn: number): void {
    const now = performance.now();
    for (const [id, t] of this.turns) if (id >= turn) t.progressAt = now;
  }

  /** A call of `turn` settled (answered, its worker gone, or timed out). */
  private leaveTurn(turn: number): void {
    const t = this.turns.get(turn);
    assert(t !== undefined && t.pending > 0, `control call turn ${turn} settled more calls than it sent`);
    if (--t.pending === 0) this.turns.delete(turn);
  }

  /**
   * A control call's deadline, readiness-based: past its budget it fails only once no call of its
   * turn or an earlier one has been answered for `quietMs` either. Five hundred threads starting on
   * a busy 2-core machine answer late but steadily, and are waited for; a hung worker still fails,
   * named, `quietMs` after the last of its turn's other calls was answered.
   */
  private whileProgressing<T>(p: Promise<T>, turn: number, budgetMs: number, quietMs: number, what: string): Promise<T> {
    const sent = performance.now();
    return new Promise<T>((resolve, reject) => {
      let due = sent + budgetMs;
      let graced = false;
      let late = false;
      const check = () => {
        late = true;
        const now = performance.now();
        // The main thread itself stalled (the timer fired a second late): answers may be queued behind it.
        const stalled = !graced && now - due > 1000;
        graced ||= stalled;
        const progressAt = this.turns.get(turn)?.progressAt ?? sent;
        due = Math.max(progressAt + quietMs, stalled ? now + 1000 : 0);
        if (due > now) {
          timer = setTimeout(check, due - now);
          return;
        }
        late = false; // timed out: an answer after this is not a late answer
        reject(new Error(`${what}: no answer within ${Math.round(now - sent)} ms (and none from the calls sent with or before it for ${quietMs} ms)`));
      };
      let timer = setTimeout(check, budgetMs);
      const settle = () => {
        clearTimeout(timer);
        if (late) this.lateAnswers++;
      };
      p.then(
        (v) => (settle(), resolve(v)),
        (e) => (settle(), reject(e)),
      );
    });
  }

  private endWorker(g: Group): void {
    const gone = g.gone;
    g.worker?.terminate();
    g.api?.[Comlink.releaseProxy]();
    g.driverPort?.close();
    g.supervisorPort?.close();
    g.worker = null;
    g.api = null;
    g.connected = false;
    g.driverPort = null;
    g.supervisorPort = null;
    g.gone = null;
    gone?.reject(new WorkerGone(`${describeGroup(g)} ended before it answered`));
  }

  /** A worker died or stopped answering: every node in it is crashed (a fact, not a queued operation). */
  private workerLost(g: Group, why: string): void {
    this.log.error(`${describeGroup(g)} ${why}`);
    this.endWorker(g);
    for (const id of g.members) {
      const n = this.local.get(id)!;
      if (n.status === "crashed") continue;
      this.markCrashed(n);
      void this.broadcastDown(id, n.incarnation).catch((e) => this.log.error(String(e instanceof Error ? e.message : e)));
    }
  }

  private markCrashed(n: LocalNode): void {
    n.status = "crashed";
    n.httpUrl = undefined;
    n.dataPort = undefined;
    this.notifyUp(n.spec.id);
  }

  /** Those waiting for a node to come up (its first start, or its data endpoint) look again. */
  private notifyUp(id: NodeId): void {
    const ws = this.upWaiters.get(id);
    this.upWaiters.delete(id);
    for (const w of ws ?? []) w();
  }

  /** Resolves when the node's state next changes (started, endpoint ready, crashed) or after ms. */
  private nextChange(id: NodeId, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      const list = this.upWaiters.get(id) ?? [];
      if (list.length >= Limits.maxUpWaiters) return; // the timeout still ends this wait
      list.push(() => (clearTimeout(t), resolve()));
      this.upWaiters.set(id, list);
    });
  }

  /**
   * A node the cluster has not started yet is starting, not down; nor is one whose data endpoint is
   * still opening. Nodes come up in no particular order (here and on other hosts): a peer's first
   * messages must not be lost to that order, so the asker waits for it, briefly.
   */
  private async untilUp(n: LocalNode, want: (n: LocalNode) => boolean): Promise<void> {
    const deadline = Date.now() + Limits.startingPeerWaitMs;
    while (!want(n) && (n.incarnation < 0 || n.status !== "crashed") && Date.now() < deadline) await this.nextChange(n.spec.id, deadline - Date.now());
  }
  /** Run a control operation on a node after those already queued for it; answers the state it left. */
  private serial(n: LocalNode, op: () => Promise<NodeStatus>): Promise<NodeStatus> {
    if (this.stopped) return Promise.reject(new Error(`the cluster is stopping: no control operations on ${n.spec.id}`));
    if (n.queued >= Limits.maxQueuedControlOps) return Promise.reject(new Error(`node ${n.spec.id} already has ${n.queued} control operations queued`));
    n.queued++;
    const run = n.queue.then(op).finally(() => {
      n.queued--;
      assert(n.queued >= 0, `${n.spec.id}: control queue count went negative`);
    });
    // The caller gets the outcome from `run`; the queue only needs to know it settled.
    n.queue = run.then(undefined, ignore);
    return run;
  }

  /**
   * Starts a node. A failure leaves it crashed, with the reason kept in `startError`; it is logged
   * unless this is the cluster's first start, where `start()` fails the run with it instead.
   */
  private async startNode(n: LocalNode, initial = false): Promise<NodeStatus> {
    if (this.stopped) return n.status;
    assert(n.status === "crashed", `start ${n.spec.id} while ${n.status}`);
    n.incarnation++;
    n.httpUrl = undefined;
    n.dataPort = undefined;
    n.status = "running";
    const init: WorkerInit = {
      system: this.opts.system,
      rolesModule: this.rolesModule,
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
      await this.callWorker(n.group, `start ${n.spec.id}`, (api) => api.startNode(init));
      n.startError = undefined;
    } catch (e) {
      n.startError = `node ${n.spec.id} failed to start: ${e instanceof Error ? e.message : String(e)}`;
      if (!initial) this.log.error(n.startError);
      await this.doCrash(n);
      return n.status;
    }
    this.notifyUp(n.spec.id);
    // Peers that found it down ask for a link at their next send, not after a retry pause. On the
    // first start none can have: start() marks every node running in one turn, before any runs code,
    // and a peer asked for meanwhile is granted a link (announcing each node to every worker there
    // was N² control calls: 250,000 for 500 nodes, a minute of a 2-core machine's time).
    if (initial) return n.status;
    const inc = n.incarnation;
    await this.everyWorker(`announce ${n.spec.id}#${inc}`, (api) => api.peerUp(n.spec.id, inc)).catch((e) => this.log.warn(String(e instanceof Error ? e.message : e)));
    return n.status;
  }

  /**
   * A worker asks for a link to dest: a local peer gets a direct MessageChannel; a remote one, the
   * address of its node's own TCP data endpoint (asked of its host), which the worker dials itself.
   */
  private async requestLink(src: NodeId, srcInc: number, dest: NodeId): Promise<LinkGrant | null> {
    if (!this.nodeIds.includes(dest)) return null;
    // A request still in flight from an incarnation that has died since: its answer would reach no one.
    const asker = this.local.get(src);
    if (!asker || asker.incarnation !== srcInc || asker.status === "crashed") return null;
    if (!this.isLocal(dest)) {
      const host = this.placement[dest]!;
      const at = this.bridge?.endpointOf(host);
      if (!at || !this.bridge) return null;
      // A host that cannot say where the node is makes it look down: the link retries after a pause.
      const port = await this.bridge.control(host, "where", dest).catch((e) => (this.log.debug(`no link ${src} -> ${dest}: ${e instanceof Error ? e.message : String(e)}`), null));
      return typeof port === "number" ? { wire: { hostname: at.hostname, port } } : null;
    }
    const peer = this.local.get(dest);
    if (peer) await this.untilUp(peer, (p) => p.status !== "crashed");
    if (!peer || peer.status === "crashed" || !peer.group.api) return null;
    const ch = new MessageChannel();
    const destInc = peer.incarnation;
    const accepted = await this.callWorker(peer.group, `link ${src} to ${dest}`, (api) => api.acceptLink(dest, destInc, src, srcInc, Comlink.transfer(ch.port2, [ch.port2]))).then(
      () => true,
      () => false,
    );
    if (!accepted) {
      ch.port1.close();
      return null;
    }
    return Comlink.transfer({ port: ch.port1, incarnation: destInc }, [ch.port1]);
  }

  /** The port of a local node's TCP data endpoint (multi-host only). */
  dataPort(id: NodeId): number | undefined {
    const n = this.local.get(id);
    return n && n.status !== "crashed" ? n.dataPort : undefined;
  }

  /** The same, waiting briefly for a node that is still starting (a peer host asks as soon as it is up). */
  async dataPortWhenUp(id: NodeId): Promise<number | undefined> {
    // This host may not have begun to start its nodes yet (it was still connecting to its peers).
    if (!this.local.has(id) && this.isLocal(id)) await Promise.race([this.populated.promise, Bun.sleep(Limits.startingPeerWaitMs)]);
    const n = this.local.get(id);
    if (n) await this.untilUp(n, (x) => x.status !== "crashed" && x.dataPort !== undefined);
    return this.dataPort(id);
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

  /**
   * Every live worker forgets its links to `incarnation` of `id`. A worker that ends meanwhile lost
   * its links anyway; any other failure is an error naming the workers that did not confirm.
   */
  private async broadcastDown(id: NodeId, incarnation: number): Promise<void> {
    await this.everyWorker(`forget links to ${id}#${incarnation}`, (api) => api.peerDown(id, incarnation));
  }

  /** Run a call on every live worker and wait for all; throws naming each worker that failed. */
  private async everyWorker(what: string, call: (api: Comlink.Remote<WorkerApi>) => Promise<unknown>): Promise<void> {
    const groups = this.groups().filter((g) => g.api);
    const results = await Promise.allSettled(groups.map((g) => this.callWorker(g, what, call)));
    const failed = results.flatMap((r, i) => (r.status === "rejected" && !(r.reason instanceof WorkerGone) ? [`worker of ${groups[i]!.members.join(", ")}: ${String(r.reason instanceof Error ? r.reason.message : r.reason)}`] : []));
    if (failed.length > 0) throw new Error(`${what} failed on ${failed.join("; ")}`);
  }

  now(): number {
    return realNow();
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** A control operation on a node of another host: that host runs it and answers the state it left. */
  private async remoteControl(id: NodeId, op: "crash" | "restart" | "pause" | "resume"): Promise<NodeStatus> {
    const v = await this.bridge!.control(this.placement[id]!, op, id);
    return v === "running" || v === "paused" || v === "crashed" ? v : this.status(id);
  }

  faultsAsked = 0;

  crash(id: NodeId): Promise<NodeStatus> {
    this.faultsAsked++;
    if (!this.isLocal(id) && this.bridge) return this.remoteControl(id, "crash");
    const n = this.node(id);
    return this.serial(n, () => this.doCrash(n));
  }

  private async doCrash(n: LocalNode): Promise<NodeStatus> {
    if (n.status === "crashed") return n.status;
    const id = n.spec.id;
    this.markCrashed(n);
    const g = n.group;
    // Alone in its thread, a node dies with the thread; in a shared one, only its runtime goes.
    // Either way it is gone for good (its sqlite file released) before the next incarnation starts.
    let exitError: unknown = null;
    if (g.members.length === 1) {
      this.endWorker(g);
      exitError = await withTimeout(g.exited, Limits.controlTimeoutMs, `the worker of ${id} to exit`).then(() => null, (e: unknown) => e);
    } else {
      try {
        await this.callWorker(g, `crash ${id}`, (api) => api.crashNode(id, n.incarnation));
      } catch (e) {
        if (!(e instanceof WorkerGone)) this.workerLost(g, `did not crash ${id} (${e instanceof Error ? e.message : String(e)}): ended it`);
      }
    }
    // Peers forget their links even if the thread is slow to exit; then the caller hears about it.
    await this.broadcastDown(id, n.incarnation);
    if (exitError) throw exitError;
    return n.status;
  }

  restart(id: NodeId): Promise<NodeStatus> {
    if (!this.isLocal(id) && this.bridge) return this.remoteControl(id, "restart");
    const n = this.node(id);
    return this.serial(n, async () => {
      // The crash tells every peer to forget its link; links made once the new node is up are good.
      if (n.status !== "crashed") await this.doCrash(n);
      try {
        await this.ensureWorker(n.group);
      } catch (e) {
        this.log.error(`node ${id} failed to start: ${e instanceof Error ? e.message : String(e)}`);
        return n.status;
      }
      return this.startNode(n);
    });
  }

  pause(id: NodeId): Promise<NodeStatus> {
    this.faultsAsked++;
    if (!this.isLocal(id) && this.bridge) return this.remoteControl(id, "pause");
    const n = this.node(id);
    return this.serial(n, async () => {
      if (n.status !== "running") return n.status;
      await this.callWorker(n.group, `pause ${id}`, (api) => api.pause(id));
      n.status = "paused";
      return n.status;
    });
  }

  resume(id: NodeId): Promise<NodeStatus> {
    if (!this.isLocal(id) && this.bridge) return this.remoteControl(id, "resume");
    const n = this.node(id);
    return this.serial(n, async () => {
      if (n.status !== "paused") return n.status;
      await this.callWorker(n.group, `resume ${id}`, (api) => api.resume(id));
      n.status = "running";
      return n.status;
    });
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
        stats: n.status !== "crashed" ? await this.callWorker(n.group, `stats of ${n.spec.id}`, (api) => api.stats(n.spec.id), Limits.statsTimeoutMs).catch((e) => (this.log.debug(String(e instanceof Error ? e.message : e)), null)) : null,
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

  /**
   * Validate, then apply on every local worker and every other host; returns once all have the
   * settings, or throws naming each worker or host that did not confirm.
   */
  async setNetwork(patch: NetworkPatch): Promise<void> {
    const net = applyNetworkPatch(this.net, parseNetworkPatch(patch, this.nodeIds));
    this.faultsAsked++;
    const results = await Promise.allSettled([this.applyNetwork(net), this.bridge?.broadcastNetwork(net)]);
    const failed = results.flatMap((r) => (r.status === "rejected" ? [r.reason instanceof Error ? r.reason.message : String(r.reason)] : []));
    if (failed.length > 0) throw new NotAppliedError(`network settings did not take effect everywhere: ${failed.join("; ")}`);
  }

  /** Adopt settings (local change, or from the driver host) on every local worker. */
  async applyNetwork(net: NetworkSettings): Promise<void> {
    this.net = net;
    await this.everyWorker("network settings", (api) => api.setNetwork(net));
  }

  async inspect<T = unknown>(id: NodeId): Promise<T | null> {
    if (!this.isLocal(id) && this.bridge) return (await this.bridge.control(this.placement[id]!, "inspect", id)) as T | null;
    const n = this.node(id);
    if (!n.group.api || n.status === "crashed") return null;
    return (await this.callWorker(n.group, `inspect ${id}`, (api) => api.inspect(id), Limits.inspectTimeoutMs)) as T | null;
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

  /**
   * Clean stop, bounded whatever the roles do: every node's stop hook runs (a hook that overruns is
   * cut off inside the node and reported), its timers and sleeps are cancelled and its storage
   * closes; a node that does not finish within Limits.stopTimeoutMs is reported and its worker ended.
   * Control operations still queued or pending are answered (the workers' end rejects them).
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(
      [...this.local.values()].map(async (n) => {
        const id = n.spec.id;
        if (n.group.api && n.status !== "crashed") {
          try {
            if (n.status === "paused") await this.callWorker(n.group, `resume ${id}`, (api) => api.resume(id), Limits.stopTimeoutMs);
            const { cutOff } = await this.callWorker(n.group, `stop ${id}`, (api) => api.stopNode(id), Limits.stopTimeoutMs);
            if (cutOff) this.log.warn(`node ${id}: its stop hook overran ${Limits.stopHookTimeoutMs} ms and was cut off`);
          } catch (e) {
            if (!(e instanceof WorkerGone)) this.log.warn(`node ${id} did not stop cleanly: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        this.markCrashed(n);
      }),
    );
    const groups = this.groups();
    for (const g of groups) this.endWorker(g);
    // Hundreds of threads ending at once on a few cores take a while: the wait scales with their number
    // (as control timeouts do), so a cluster started next does not share the machine with this one's
    // leftovers. Threads still alive after it are reported in one line, not waited for forever.
    const exitMs = Limits.stopTimeoutMs * Math.max(1, Math.ceil(groups.length / Limits.controlTimeoutNodesPerStep));
    const alive = new Set(groups);
    await Promise.all(groups.map((g) => withTimeout(g.exited, exitMs).then(() => alive.delete(g), ignore)));
    if (alive.size > 0) this.log.warn(`${alive.size} of ${groups.length} worker threads had not exited ${exitMs} ms after they were ended (first: ${describeGroup([...alive][0]!)})`);
    this.driverCalls.clear();
  }
}

function ignore(): void {}

/** `fn` on every item, at most `limit` at a time; the first failure stops new ones and is thrown once those running settle. */
async function eachAtMost<T>(limit: number, items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | null = null;
  const runner = async () => {
    while (next < items.length && !failure) {
      const item = items[next++]!;
      await fn(item).catch((error: unknown) => void (failure ??= { error }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
  if (failure) throw (failure as { error: unknown }).error;
}

function withTimeout<T>(p: Promise<T>, ms: number, what = "the call"): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
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
