import { DriverCalls } from "../driver/calls.ts";
import { DRIVER_ID, type Cluster, type NetworkPatch, type NodeInfo, type NodeStatus } from "../driver/cluster.ts";
import { Limits } from "../workers/runtime/limits.ts";
import { LinkPlanner, applyNetworkPatch, defaultNetwork, parseNetworkPatch, type NetworkSettings } from "../workers/runtime/network.ts";
import { assert } from "../workers/runtime/assert.ts";
import { NodeSlot, type SlotHost } from "../workers/runtime/slot.ts";
import { guardHttp } from "../workers/runtime/http.ts";
import { LOG_LEVELS, formatLogLine, makeLogger } from "../workers/runtime/log.ts";
import { seededRandom } from "../workers/runtime/random.ts";
import { MemoryStorage } from "../workers/runtime/memory-storage.ts";
import { type Body, type HttpHandler, type LogLevel, type Logger, type Message, type NodeId, type NodeSpec, type Random, type Role } from "../workers/runtime/types.ts";
import { EventHeap, type SimEvent } from "./heap.ts";

const MAX_EVENTS_PER_INSTANT = Limits.maxEventsPerInstant;

/** Virtual time starts here, so node clocks look like real dates. */
export const SIM_EPOCH_MS = Date.UTC(2026, 0, 1);

export interface SimOptions {
  seed: number;
  nodes: NodeSpec[];
  roles: Record<string, Role>;
  network?: NetworkPatch;
  logLevel?: LogLevel;
  /** Where log lines go (default: stdout). */
  logSink?: (line: string) => void;
  /** Stop with an error after this many events (runaway protection). */
  maxEvents?: number;
}

export interface SimStats {
  simSeconds: number;
  events: number;
  delivered: number;
  dropped: number;
  /** Hash of the delivered-message trace (time, src, dest, body): equal digests mean identical runs. */
  digest: string;
}

interface SimNode {
  spec: NodeSpec;
  /** State, runtime and fault planning: the same core the worker host uses. */
  slot: NodeSlot;
  storage: MemoryStorage;
  http?: (req: Request) => Promise<Response>;
  uidCounter: number;
}

/**
 * A whole cluster in one thread on virtual time. The seed decides everything: delivery order and
 * time, loss, duplication, timer firings, node random sources. After every event the loop yields
 * a macrotask turn so that handler continuations (awaits) finish before the next event: the run is
 * a pure function of code and seed.
 */
export class Simulation implements Cluster {
  readonly mode = "sim" as const;
  readonly seed: number;
  readonly nodes: readonly NodeSpec[];
  readonly random: Random;
  readonly log: Logger;
  private readonly heap = new EventHeap();
  private seq = 0;
  private virtualNow = SIM_EPOCH_MS;
  private net: NetworkSettings = defaultNetwork();
  private readonly planner: LinkPlanner;
  private readonly simNodes = new Map<NodeId, SimNode>();
  private readonly roles: Record<string, Role>;
  private readonly nodeIds: NodeId[];
  get history() {
    return this.driverCalls.history;
  }
  private readonly driverCalls = new DriverCalls({ setTimer: (ms, fn) => this.schedule(ms, fn), clearTimer: (ev) => ((ev as SimEvent).cancelled = true) });
  private digest = 0n;
  private events = 0;
  private eventsThisInstant = 0;
  private delivered = 0;
  private dropped = 0;
  private readonly logLevel: LogLevel;
  private readonly sink: (line: string) => void;
  private readonly maxEvents: number;
  private started = false;

  constructor(opts: SimOptions) {
    this.seed = opts.seed;
    this.nodes = opts.nodes;
    this.roles = opts.roles;
    this.nodeIds = opts.nodes.map((n) => n.id);
    this.random = seededRandom(opts.seed, "driver");
    this.planner = new LinkPlanner(seededRandom(opts.seed, "network"));
    this.logLevel = opts.logLevel ?? "warn";
    this.sink = opts.logSink ?? ((l) => console.log(l));
    this.maxEvents = opts.maxEvents ?? 50_000_000;
    const ids = new Set<string>();
    for (const n of opts.nodes) {
      if (ids.has(n.id) || n.id === DRIVER_ID) throw new Error(`duplicate or reserved node id "${n.id}"`);
      if (!this.roles[n.role]) throw new Error(`node ${n.id}: unknown role "${n.role}" (known: ${Object.keys(this.roles).join(", ")})`);
      ids.add(n.id);
      this.simNodes.set(n.id, this.makeNode(n));
    }
    if (opts.network) this.net = applyNetworkPatch(this.net, parseNetworkPatch(opts.network, this.nodeIds));
    this.log = makeLogger(this.logLevel, (level, text, fields) => this.emitLog(level, DRIVER_ID, text, fields));
  }

  /** Start every node, run `driver` to completion on virtual time, and return its result. */
  async run<T>(driver: (cluster: Simulation) => Promise<T>): Promise<T> {
    if (this.started) throw new Error("a Simulation runs once");
    this.started = true;
    for (const n of this.simNodes.values()) this.boot(n);
    let done = false;
    let result: { ok: true; value: T } | { ok: false; error: unknown } | undefined;
    driver(this).then(
      (value) => ((result = { ok: true, value }), (done = true)),
      (error) => ((result = { ok: false, error }), (done = true)),
    );
    for (;;) {
      await new Promise<void>((r) => setImmediate(r));
      if (done) break;
      const ev = this.heap.pop();
      if (!ev) throw new Error("simulation stalled: the driver is waiting but no event is scheduled");
      if (ev.cancelled) continue;
      if (++this.events > this.maxEvents) throw new Error(`simulation exceeded ${this.maxEvents} events`);
      if (ev.time === this.virtualNow) {
        if (++this.eventsThisInstant > MAX_EVENTS_PER_INSTANT) {
          throw new Error(`simulation livelock: ${MAX_EVENTS_PER_INSTANT} events at t=${((ev.time - SIM_EPOCH_MS) / 1000).toFixed(3)}s without time advancing (a zero-delay loop? add latency or a pause)`);
        }
      } else this.eventsThisInstant = 0;
      assert(ev.time >= this.virtualNow, `virtual time went back from ${this.virtualNow} to ${ev.time}`);
      this.virtualNow = ev.time;
      ev.fire();
    }
    for (const n of this.simNodes.values()) {
      n.slot.runtime?.halt();
      n.storage.close();
    }
    const r = result!;
    if (r.ok) return r.value;
    throw r.error;
  }

  stats(): SimStats {
    return {
      simSeconds: (this.virtualNow - SIM_EPOCH_MS) / 1000,
      events: this.events,
      delivered: this.delivered,
      dropped: this.dropped + [...this.simNodes.values()].reduce((a, n) => a + n.slot.dropped, 0),
      digest: this.digest.toString(16).padStart(16, "0"),
    };
  }

  private schedule(delayMs: number, fire: () => void): SimEvent {
    const ev: SimEvent = { time: this.virtualNow + Math.max(0, delayMs), seq: this.seq++, fire };
    assert(ev.time >= this.virtualNow, `an event scheduled in the past (${delayMs} ms)`);
    this.heap.push(ev);
    return ev;
  }

  private emitLog(level: Exclude<LogLevel, "silent">, node: string, text: string, fields?: Record<string, unknown>): void {
    if (LOG_LEVELS[level] < LOG_LEVELS[this.logLevel]) return;
    this.sink(formatLogLine(`[${((this.virtualNow - SIM_EPOCH_MS) / 1000).toFixed(3)}s]`, node, level, text, fields));
  }

  /** A node's slot, hosted on virtual time: timers and deliveries are events on the heap. */
  private makeNode(spec: NodeSpec): SimNode {
    const self = this;
    const host: SlotHost = {
      now: () => self.virtualNow,
      setTimer: (ms, fn) => self.schedule(ms, fn),
      clearTimer: (h) => ((h as SimEvent).cancelled = true),
      network: () => self.net,
      deliver: (msg, delayed) => (delayed ? self.deliver(msg) : void self.schedule(0, () => self.deliver(msg))),
      // A history event changes nothing a node can see: taken at once, it costs no event turn.
      toDriver: (msg) => (msg.body.type === "history" ? self.driverCalls.settle(msg) : void self.schedule(0, () => self.driverCalls.settle(msg))),
      emitLog: (level, node, text, fields) => self.emitLog(level, node, text, fields),
      serveHttp: (_node, handler: HttpHandler, opts) => {
        n.http = guardHttp(handler, opts, (e) => self.emitLog("error", spec.id, `http handler failed: ${String(e)}`));
      },
    };
    const n: SimNode = {
      spec,
      slot: new NodeSlot(spec, { nodeIds: this.nodeIds, seed: this.seed, logLevel: this.logLevel }, host, this.planner, (inc) => `${spec.id}-${inc}-${(n.uidCounter++).toString(36)}`),
      storage: new MemoryStorage(),
      uidCounter: 0,
    };
    return n;
  }

  private boot(n: SimNode): void {
    n.http = undefined;
    n.slot.boot(n.storage);
    const inc = n.slot.incarnation;
    n.slot.start(this.roles[n.spec.role]!).catch((e) => {
      this.emitLog("error", n.spec.id, `role failed to start: ${e instanceof Error ? e.message : String(e)}`);
      if (n.slot.incarnation === inc && n.slot.status !== "crashed") n.slot.crash();
    });
  }

  /** The driver's messages are not subject to network faults. */
  private fromDriver(msg: Message): void {
    this.schedule(0, () => this.deliver(msg));
  }

  private deliver(msg: Message): void {
    const n = this.simNodes.get(msg.dest);
    if (!n) {
      this.dropped++;
      return;
    }
    if (!n.slot.receive(msg)) return;
    this.delivered++;
    this.digest = Bun.hash.wyhash(`${this.virtualNow}|${msg.src}|${msg.dest}|${JSON.stringify(msg.body)}`, this.digest);
  }

  private node(id: NodeId): SimNode {
    const n = this.simNodes.get(id);
    if (!n) throw new Error(`no node "${id}" (nodes: ${this.nodeIds.join(", ")})`);
    return n;
  }

  now(): number {
    return this.virtualNow;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.schedule(ms, r));
  }

  faultsAsked = 0;

  async crash(id: NodeId): Promise<NodeStatus> {
    this.faultsAsked++;
    const n = this.node(id);
    if (n.slot.status === "crashed") return n.slot.status;
    n.slot.crash();
    n.http = undefined;
    if ((n.spec.storage ?? "os") === "memory") {
      n.storage.close();
      n.storage = new MemoryStorage();
    }
    return n.slot.status;
  }

  async restart(id: NodeId): Promise<NodeStatus> {
    const n = this.node(id);
    if (n.slot.status !== "crashed") await this.crash(id);
    this.boot(n);
    return n.slot.status;
  }

  async pause(id: NodeId): Promise<NodeStatus> {
    this.faultsAsked++;
    const n = this.node(id);
    if (n.slot.status === "running") n.slot.pause();
    return n.slot.status;
  }

  async resume(id: NodeId): Promise<NodeStatus> {
    const n = this.node(id);
    if (n.slot.status === "paused") n.slot.resume();
    return n.slot.status;
  }

  status(id: NodeId): NodeStatus {
    return this.node(id).slot.status;
  }

  async info(): Promise<NodeInfo[]> {
    return [...this.simNodes.values()].map((n) => ({
      id: n.spec.id,
      role: n.spec.role,
      host: "sim",
      status: n.slot.status,
      incarnation: n.slot.incarnation,
      stats: n.slot.runtime ? n.slot.runtime.snapshotStats() : null,
    }));
  }

  network(): NetworkSettings {
    return this.net;
  }

  async setNetwork(patch: NetworkPatch): Promise<void> {
    this.net = applyNetworkPatch(this.net, parseNetworkPatch(patch, this.nodeIds));
    this.faultsAsked++;
  }

  async inspect<T = unknown>(id: NodeId): Promise<T | null> {
    const n = this.node(id);
    return n.slot.runtime && n.slot.status !== "crashed" ? (n.slot.runtime.inspect() as T) : null;
  }

  request<R = Body>(dest: NodeId, body: Body, timeoutMs: number = Limits.defaultRequestTimeoutMs): Promise<R> {
    this.node(dest);
    return this.driverCalls.call<R>(dest, body, timeoutMs, (msg) => this.fromDriver(msg));
  }

  async fetch(id: NodeId, req: Request): Promise<Response> {
    const n = this.node(id);
    if (n.slot.status === "crashed" || !n.http) throw new Error(`node ${id} serves no HTTP right now`);
    return n.http(req);
  }

  httpUrl(_id: NodeId): string | undefined {
    return undefined;
  }
}
