/**
 * One node's place in a host — the core the worker host and the simulator share, so that faults
 * mean the same in both by construction. A NodeSlot owns the crash/restart/pause/resume state
 * machine with incarnations (every transition asserted), builds the node's Env, and takes each
 * message the node sends along one path: the driver's messages to the driver, others through the
 * fault planner (loss, duplication, latency, partitions), delayed copies held on the host's timers
 * and bounded, drops counted. A host supplies only its clock, timers and delivery.
 */
import { assert } from "./assert.ts";
import { Limits } from "./limits.ts";
import { isPerfect, type LinkPlanner, type NetworkSettings } from "./network.ts";
import { NodeRuntime, type Env } from "./node.ts";
import type { SharedBody } from "./port-codec.ts";
import { DRIVER_ID, type Body, type HttpHandler, type HttpOptions, type LogLevel, type Message, type NodeId, type NodeSpec, type NodeStatus, type Role, type Storage } from "./types.ts";

/** Fan-out lists counted as wholes before they are added to the per-link counts (see fanOutCounts). */
const FANOUT_LISTS_COUNTED = 8;

/** What a host provides to its slots. */
export interface SlotHost {
  /** Milliseconds since the epoch: real on threads, virtual in the simulator. Must not depend on `this`: a node's runtime calls it on its own. */
  now: () => number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** The network settings in force now. */
  network(): NetworkSettings;
  /**
   * Hand a node's message to its destination (faults already applied). Called from the sender's
   * turn (`delayed` false: must not run the receiver synchronously) or from one of this host's
   * timers once a simulated latency has passed (`delayed` true: already a turn of its own).
   */
  deliver(msg: Message, delayed: boolean, shared?: SharedBody): void;
  /**
   * Optional: one body from src to every node of dests, in the sender's turn, on a perfect network
   * (what deliver would do for each, as one call: a host may post to other threads before it makes
   * its own thread's copies). `dests` never changes once given (Env.transmitMany).
   */
  deliverMany?(src: NodeId, dests: readonly NodeId[], body: Body, shared: SharedBody): void;
  /** A message for the driver. */
  toDriver(msg: Message): void;
  emitLog(level: Exclude<LogLevel, "silent">, node: NodeId, text: string, fields?: Record<string, unknown>): void;
  serveHttp(node: NodeId, handler: HttpHandler, opts: HttpOptions): void;
}

/** What every node of a cluster shares. */
export interface ClusterIdentity {
  nodeIds: readonly NodeId[];
  seed: number;
  logLevel: LogLevel;
}

export class NodeSlot {
  status: NodeStatus = "crashed";
  incarnation = -1;
  runtime: NodeRuntime | null = null;
  /** Messages this slot's node sent that the network dropped (loss, partition, in-flight bound). */
  dropped = 0;
  private inFlight = 0;
  /** isPerfect of the last settings seen (settings objects are replaced, never changed in place). */
  private net: NetworkSettings | null = null;
  private perfect = true;

  constructor(
    readonly spec: NodeSpec,
    private readonly cluster: ClusterIdentity,
    private readonly host: SlotHost,
    private readonly planner: LinkPlanner,
    /** Unique ids for the node (derived from node, incarnation and a counter in the simulator). */
    private readonly uid: (incarnation: number) => string,
  ) {}

  get id(): NodeId {
    return this.spec.id;
  }

  /** crashed → running: a fresh runtime (empty memory) on `storage`, under a newer incarnation. */
  boot(storage: Storage, incarnation: number = this.incarnation + 1): NodeRuntime {
    assert(this.status === "crashed", `${this.id}: boot while ${this.status}`);
    assert(incarnation > this.incarnation, `${this.id}: incarnation ${incarnation} after ${this.incarnation}`);
    this.incarnation = incarnation;
    this.status = "running";
    const inc = incarnation;
    const alive = () => this.incarnation === inc && this.status !== "crashed";
    const host = this.host;
    const env: Env = {
      now: host.now,
      // A timer of a dead incarnation never fires, whatever the host's timers do.
      setTimer: (ms, fn) => host.setTimer(ms, () => alive() && fn()),
      clearTimer: (h) => host.clearTimer(h),
      transmit: (msg, shared) => this.transmit(msg, alive, shared),
      transmitMany: (src, dests, body, shared) => this.transmitMany(src, dests, body, alive, shared),
      storage,
      emitLog: (level, node, text, fields) => host.emitLog(level, node, text, fields),
      uid: () => this.uid(inc),
      serveHttp: (node, handler, opts) => host.serveHttp(node, handler, opts),
    };
    const { id, role, config } = this.spec;
    this.runtime = new NodeRuntime({ id, role, config: config ?? {}, nodeIds: this.cluster.nodeIds, incarnation: inc, seed: this.cluster.seed, logLevel: this.cluster.logLevel, clock: this.spec.clock }, env);
    return this.runtime;
  }

  /** Run the role's start on the booted runtime. */
  start(role: Role): Promise<void> {
    assert(this.runtime && this.status !== "crashed", `${this.id}: start while crashed`);
    return this.runtime.start(role);
  }

  /** running|paused → crashed: memory, timers and messages still in flight are gone; storage is the host's to keep. */
  crash(): void {
    assert(this.status !== "crashed", `${this.id}: crash while crashed`);
    this.runtime?.halt();
    this.runtime = null;
    this.status = "crashed";
  }

  /** running → paused: messages and timers are held until resume. */
  pause(): void {
    assert(this.status === "running" && this.runtime, `${this.id}: pause while ${this.status}`);
    this.runtime.pause();
    this.status = "paused";
  }

  /** paused → running: held messages and timers run, in order. */
  resume(): void {
    assert(this.status === "paused" && this.runtime, `${this.id}: resume while ${this.status}`);
    this.status = "running";
    this.runtime.resume();
  }

  /** A message arrives for this node: handed to its runtime, or dropped and counted if it is crashed. */
  receive(msg: unknown): boolean {
    if (this.status === "crashed" || !this.runtime) {
      this.dropped++;
      return false;
    }
    this.runtime.deliver(msg);
    return true;
  }

  /** Per destination: [sent, dropped by the simulated network] (what a dashboard draws on links); bounded by the number of nodes. */
  private readonly linkCounts = new Map<NodeId, [number, number]>();

  /**
   * Fan-outs handed over whole, counted per list and added to linkCounts when they are read (or more
   * lists come): a node sends the same list again and again (NodeRuntime keeps it), and a lookup per
   * recipient before the posts delayed them (500 cold lookups, the thread just woken).
   */
  private readonly fanOutCounts = new Map<readonly NodeId[], number>();

  linkCountsSnapshot(): Record<NodeId, [number, number]> {
    this.settleFanOutCounts();
    return Object.fromEntries(this.linkCounts);
  }

  private settleFanOutCounts(): void {
    for (const [dests, n] of this.fanOutCounts) for (const dest of dests) this.countSent(dest, n);
    this.fanOutCounts.clear();
  }

  /** A fan-out: as one transmit per destination, but handed to the host whole when nothing is planned per message. */
  private transmitMany(src: NodeId, dests: readonly NodeId[], body: Body, alive: () => boolean, shared: SharedBody): void {
    // A list counted here already was looked through for the driver when it came first.
    const n = this.fanOutCounts.get(dests);
    if (!this.host.deliverMany || !this.isPerfect() || (n === undefined && dests.includes(DRIVER_ID))) {
      for (const dest of dests) this.transmit({ src, dest, body }, alive, shared);
      return;
    }
    if (n === undefined && this.fanOutCounts.size >= FANOUT_LISTS_COUNTED) this.settleFanOutCounts();
    this.fanOutCounts.set(dests, (n ?? 0) + 1);
    this.host.deliverMany(src, dests, body, shared);
  }

  private countSent(dest: NodeId, n = 1): [number, number] {
    let counts = this.linkCounts.get(dest);
    if (!counts) this.linkCounts.set(dest, (counts = [0, 0]));
    counts[0] += n;
    return counts;
  }

  /** Whether the network in force now plans nothing (no loss, latency or partition): messages go straight through. */
  private isPerfect(): boolean {
    const net = this.host.network();
    if (net !== this.net) {
      this.net = net;
      this.perfect = isPerfect(net);
    }
    return this.perfect;
  }

  private transmit(msg: Message, alive: () => boolean, shared: SharedBody | undefined): void {
    if (msg.dest === DRIVER_ID) {
      this.host.toDriver(msg);
      return;
    }
    const counts = this.countSent(msg.dest);
    if (this.isPerfect()) {
      this.host.deliver(msg, false, shared);
      return;
    }
    const net = this.net!;
    const delays = this.planner.plan(net, msg.src, msg.dest, this.host.now());
    if (delays.length === 0) {
      this.dropped++;
      counts[1]++;
    }
    for (const d of delays) {
      if (d <= 0) {
        this.host.deliver(msg, false, shared);
        continue;
      }
      if (this.inFlight >= Limits.maxInFlight) {
        this.dropped++;
        counts[1]++;
        continue;
      }
      this.inFlight++;
      // A delayed copy is the sender's: it is lost if the sender crashes first (on threads its timer dies with it).
      this.host.setTimer(d, () => {
        this.inFlight--;
        if (alive()) this.host.deliver(msg, true);
        else this.dropped++;
      });
    }
  }
}
