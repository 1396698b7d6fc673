import { assert } from "./assert.ts";
import { CLOCK_JUMP, NodeClock, PERFECT_CLOCK, type ClockSpec } from "./clock.ts";
import { Limits, exceedsSize } from "./limits.ts";
import { historyRecorder, type BatchingRecorder } from "./recorder.ts";
import { makeLogger } from "./log.ts";
import { seededRandom } from "./random.ts";
import { SharedBody } from "./port-codec.ts";
import {
  DRIVER_ID,
  ErrorCode,
  RpcError,
  type Body,
  type Handler,
  type HttpHandler,
  type HttpOptions,
  type LogLevel,
  type Logger,
  type Message,
  type NodeContext,
  type NodeId,
  type Random,
  type RequestOptions,
  type Role,
  type RoleHooks,
  type Storage,
  type TimerId,
} from "./types.ts";

/**
 * What a host (worker thread, simulator, test) provides to a node runtime. The runtime is the only
 * code that talks to an Env; node code talks to the NodeContext.
 */
export interface Env {
  /** Milliseconds since the epoch: real on threads, virtual in the simulator. Must not depend on `this`: the runtime keeps the function and calls it on its own. */
  now: () => number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Hand a message to the network; `shared`: its body goes to several nodes in this turn (sendMany), encoded once. */
  transmit(msg: Message, shared?: SharedBody): void;
  /**
   * Hand one body to every node of `dests` at once (sendMany), when the host has a faster way than
   * one transmit per destination; without it the runtime calls transmit for each, with `shared`.
   * `dests` never changes once given, and the same recipients come as the same array (checkFanOut):
   * the layers below keep what they work out for a list by its identity.
   */
  transmitMany?(src: NodeId, dests: readonly NodeId[], body: Body, shared: SharedBody): void;
  readonly storage: Storage;
  emitLog(level: Exclude<LogLevel, "silent">, node: NodeId, text: string, fields?: Record<string, unknown>): void;
  uid(): string;
  serveHttp(node: NodeId, handler: HttpHandler, opts: HttpOptions): void;
}

export interface NodeIdentity {
  id: NodeId;
  role: string;
  config: Record<string, unknown>;
  nodeIds: readonly NodeId[];
  incarnation: number;
  seed: number;
  logLevel: LogLevel;
  /** Offset and drift of this node's clock (default: perfect). */
  clock?: ClockSpec;
}

export interface NodeStats {
  sent: number;
  received: number;
  /** Error replies sent plus handler failures. */
  errors: number;
  /** Messages this node refused or could not queue (size, bounds, malformed). */
  refused: number;
  pendingRequests: number;
  timers: number;
  /** The node's clock minus true time (ms) when the stats were taken. */
  clockErrorMs: number;
  /** Requests of this node answered without error (so watchers can compute a rate). */
  repliesOk: number;
  /** Replies that arrived after their request had timed out, to a caller that asked for them (slow, not lost). */
  lateReplies: number;
  /** Latencies (ms) of the last RECENT_LATENCIES of those, oldest first. */
  recentLatencyMs: number[];
  /** Per destination: [messages sent, messages the simulated network dropped]; filled by the worker host. */
  links?: Record<NodeId, [number, number]>;
}

/** How many recent request latencies a node keeps for live views: a fixed ring, never growing. */
export const RECENT_LATENCIES = 64;
/** How many fan-out lists a node remembers as checked (see checkedFanOuts): obelix sends to two. */
const CHECKED_FANOUTS = 4;

interface Pending {
  resolve(b: Body): void;
  reject(e: RpcError): void;
  timer: unknown;
  dest: NodeId;
  sentAt: number;
}

/**
 * One node's runtime: handler dispatch, request/reply pairing, timers, clock, pause. Hosts call
 * `start`, `deliver`, `pause`, `resume`, `stop`; node code sees only `ctx`.
 */
export class NodeRuntime {
  readonly ctx: NodeContext;
  /**
   * Handlers by message type, in an object with no prototype: a type such as "constructor" or
   * "__proto__" finds nothing inherited (test/runtime.test.ts). Not a Map: with packed threads, 250
   * tablets of a thread each look their handler up cold after 137 ms asleep, and in an object that
   * took less: packed push p50 at 500, 0.40–0.45 ms (median 0.43) against 0.44–0.53 (0.50) with
   * the Map, lower in all 6 interleaved pairs, one by 1 µs (bench/push-pull.ts also has the
   * thread-per-node pairs, where no difference showed).
   */
  private readonly handlers: Record<string, Handler | undefined> = Object.create(null);
  private readonly pending = new Map<number, Pending>();
  /** Timed-out requests whose caller wants a late reply (insertion order: the oldest is evicted first). */
  private readonly lateWatch = new Map<number, (reply: Body) => void>();
  private readonly timers = new Map<TimerId, unknown>();
  /**
   * Message ids of this incarnation start at incarnation × 2^32: a late reply to a request of an
   * earlier life (the same node before a crash) must never be taken for the answer to a new request
   * that happens to reuse its id. Stays a safe integer for 2^20 restarts.
   */
  private nextMsgId: number;
  private nextTimerId = 1;
  private readonly clock: NodeClock;
  /**
   * What node.now() calls: the host's clock itself (Env.now) while this node's clock reads true time
   * (no offset or drift configured, never adjusted), else a read through the clock. The first touches
   * no object of this node's but the runtime; through the clock, the Env and the slot's wrapper a
   * read touched five more, each cold when a thread's 250 tablets take an update in turn after 137 ms
   * asleep: a tablet's handling of a push took 1.37–1.74 µs (median 1.42) against 1.64–1.84 (1.76)
   * that way (bench/lib/fanout-profile.ts --rateMs 137, 5 interleaved runs). A function swapped on an
   * adjustment, not a test in node.now(): JSC left a now() with a branch no read took unoptimized past
   * 600 pushes, and a tablet in a thread of its own paid for it (push p50 at 500 up ~4%).
   */
  private readClock: () => number;
  private readonly throughClock = (): number => this.clock.read(this.env.now());
  private paused = false;
  private starting = true;
  private readonly pausedQueue: Array<() => void> = [];
  private stopped = false;
  private hooks: RoleHooks = {};
  private readonly logger: Logger;
  private readonly knownIds: ReadonlySet<NodeId>;
  /**
   * The last few fan-out lists sendMany checked, each with the collection it was read from. A node
   * fans out to the same collections again and again (obelix to a team's subscribers), and then the
   * list holds the same strings: comparing them by identity reads only the two lists, where looking
   * 500 ids up in knownIds, the thread just woken, took 0.25 ms (a cold bucket and key per id). The
   * remembered list itself is what is sent, so the layers below see the same array for the same
   * recipients and may keep what they worked out for it (Slot's counts, WorkerLanes' plans).
   */
  private readonly checkedFanOuts: Array<{ from: object; ids: readonly NodeId[] }> = [];
  readonly stats: NodeStats = { sent: 0, received: 0, errors: 0, refused: 0, pendingRequests: 0, timers: 0, clockErrorMs: 0, repliesOk: 0, lateReplies: 0, recentLatencyMs: [] };
  private readonly latencyRing = new Float64Array(RECENT_LATENCIES);
  private recorder!: BatchingRecorder;

  constructor(
    readonly identity: NodeIdentity,
    private readonly env: Env,
  ) {
    this.logger = makeLogger(identity.logLevel, (level, text, fields) => env.emitLog(level, identity.id, text, fields));
    this.knownIds = new Set(identity.nodeIds);
    assert(Number.isSafeInteger(identity.incarnation) && identity.incarnation >= 0 && identity.incarnation < 2 ** 20, `${identity.id}: incarnation ${identity.incarnation} out of range`);
    this.nextMsgId = identity.incarnation * 2 ** 32 + 1;
    this.clock = new NodeClock(identity.clock ?? PERFECT_CLOCK, env.now());
    this.readClock = this.clockReader();
    const random = seededRandom(identity.seed, `${identity.id}#${identity.incarnation}`);
    this.ctx = this.makeContext(random);
  }

  /**
   * Run the role's start. Until it has finished, requests and one-way messages wait in the inbox
   * (replies pass, so a start may await requests — to catch up before it serves, say).
   */
  async start(role: Role): Promise<void> {
    try {
      this.hooks = (await role(this.ctx)) ?? {};
    } finally {
      this.starting = false;
      if (!this.paused) this.flushHeld();
    }
  }

  inspect(): unknown {
    return this.hooks.inspect ? this.hooks.inspect() : null;
  }

  /**
   * A clean stop: the role's stop hook runs for at most `limitMs` (on the host's clock), then
   * timers, pending sleeps and pending requests are cancelled whatever the hook is doing. Answers
   * whether the hook had to be cut off (that is reported as an error).
   */
  async stop(limitMs: number = Limits.stopHookTimeoutMs): Promise<{ cutOff: boolean }> {
    if (this.stopped) return { cutOff: false };
    let timer: unknown;
    const overran = new Promise<true>((resolve) => (timer = this.env.setTimer(limitMs, () => resolve(true))));
    try {
      const hook = Promise.resolve(this.hooks.stop?.()).then(() => false as const);
      const cutOff = await Promise.race([hook, overran]);
      if (cutOff) this.log("error", `stop hook still running after ${limitMs} ms: cut off`);
      return { cutOff };
    } finally {
      this.env.clearTimer(timer);
      this.halt();
    }
  }

  /** Stop without running hooks (a crash, seen from inside). */
  halt(): void {
    // History events of the current turn still go out: they describe what happened before the stop.
    this.recorder.flush();
    this.stopped = true;
    for (const h of this.timers.values()) this.env.clearTimer(h);
    this.timers.clear();
    for (const p of this.pending.values()) this.env.clearTimer(p.timer);
    this.pending.clear();
    this.lateWatch.clear();
    this.pausedQueue.length = 0;
  }

  private watchLate(msgId: number, onLate: (reply: Body) => void): void {
    if (this.lateWatch.size >= Limits.maxLateRepliesWatched) this.lateWatch.delete(this.lateWatch.keys().next().value!);
    this.lateWatch.set(msgId, onLate);
  }

  isPaused(): boolean {
    return this.paused;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    if (!this.starting) this.flushHeld();
  }

  private flushHeld(): void {
    const q = this.pausedQueue.splice(0);
    for (const run of q) run();
  }

  /**
   * Entry point for every message that reaches this node. Never throws.
   *
   * Kept to what every request or one-way message needs, with the rarer cases in functions of their
   * own: a node in a thread of its own may see only a few hundred messages a minute, and JSC waits
   * to optimize a function until most of the places in it that it profiles have run. With the
   * paused queue, replies, the clock nemesis and errors written in here, that took ~1,350 messages,
   * so a tablet of the 500-tablet fan-out ran this in the baseline tier for its whole benchmark;
   * written this way it is optimized after ~130-160 (bench/push-pull.ts, beside the floor).
   */
  deliver(msg: unknown): void {
    if (this.stopped || this.paused || this.starting || !isMessage(msg)) return this.deliverUnusual(msg);
    this.stats.received++;
    const body = msg.body;
    if (typeof body.in_reply_to === "number") return this.settle(msg);
    const handler = this.handlers[body.type];
    if (handler === undefined) return this.unhandled(msg);
    let result: void | Promise<void>;
    try {
      result = handler(msg);
    } catch (e) {
      return this.handlerFailed(msg, e);
    }
    if (result instanceof Promise) this.watch(msg, result);
  }

  /** deliver, for a node stopped, paused or starting, or for what is not a message at all. */
  private deliverUnusual(msg: unknown): void {
    if (this.stopped) return;
    if (this.paused || (this.starting && !isReply(msg))) {
      if (this.pausedQueue.length >= Limits.maxPausedInbox) {
        this.stats.refused++;
        return;
      }
      this.pausedQueue.push(() => this.deliver(msg));
      return;
    }
    if (!isMessage(msg)) {
      this.stats.refused++;
      this.log("warn", "refused a malformed message", { message: safePreview(msg) });
      return;
    }
    // A reply to a request made while starting: the one kind of message a node takes before its start ends.
    this.stats.received++;
    this.settle(msg);
  }

  /** A reply: settles its request, or, late or duplicated (its request already settled), is dropped or told to a caller that asked. */
  private settle(msg: Message): void {
    const body = msg.body;
    const id = body.in_reply_to as number;
    const p = this.pending.get(id);
    if (!p) {
      const late = this.lateWatch.get(id);
      if (late && body.type !== "error") {
        this.lateWatch.delete(id);
        this.stats.lateReplies++;
        late(body);
      }
      return;
    }
    this.pending.delete(id);
    this.env.clearTimer(p.timer);
    if (body.type === "error") p.reject(new RpcError(Number(body.code ?? ErrorCode.Crash), String(body.text ?? "")));
    else {
      this.latencyRing[this.stats.repliesOk++ % RECENT_LATENCIES] = this.env.now() - p.sentAt;
      p.resolve(body);
    }
  }

  /** A message no role handler takes: the driver's clock nemesis (a type roles may not take), or one nobody here handles. */
  private unhandled(msg: Message): void {
    if (msg.body.type === CLOCK_JUMP && msg.src === DRIVER_ID) return this.jumpClock(msg);
    if (typeof msg.body.msg_id === "number") this.replyError(msg, ErrorCode.NotSupported, `${this.identity.id} (${this.identity.role}) has no handler for "${msg.body.type}"`);
    else this.stats.refused++;
  }

  /** An async handler's failure is the handler's failure. */
  private watch(msg: Message, result: Promise<void>): void {
    result.catch((e) => this.handlerFailed(msg, e));
  }

  /** The clock nemesis: the driver steps this node's clock, as a bad NTP server or an operator might. */
  private jumpClock(msg: Message): void {
    const delta = msg.body.deltaMs;
    if (typeof delta !== "number" || !Number.isFinite(delta) || Math.abs(delta) > 86_400_000) {
      this.replyError(msg, ErrorCode.MalformedRequest, "deltaMs must be a finite number of ms within a day");
      return;
    }
    this.adjustClock(delta);
    this.log("info", `clock jumped by ${delta.toFixed(1)} ms`);
    this.sendReply(msg, { type: `${CLOCK_JUMP}_ok`, clockErrorMs: this.clockErrorMs() });
  }

  private adjustClock(delta: number): void {
    this.clock.adjust(delta);
    this.readClock = this.clockReader();
  }

  private clockReader(): () => number {
    return this.clock.exact ? this.env.now : this.throughClock;
  }

  /** This node's clock minus true time (the host's clock: real on threads, virtual in the simulator). */
  clockErrorMs(): number {
    return this.clock.error(this.env.now());
  }

  private handlerFailed(msg: Message, e: unknown): void {
    if (this.stopped) return;
    this.stats.errors++;
    if (e instanceof RpcError) {
      if (typeof msg.body.msg_id === "number") this.replyError(msg, e.code, e.text);
      return;
    }
    const text = e instanceof Error ? e.message : String(e);
    this.log("error", `handler for "${msg.body.type}" failed: ${text}`);
    if (typeof msg.body.msg_id === "number") this.replyError(msg, ErrorCode.Crash, `handler failed: ${text}`);
  }

  private log(level: Exclude<LogLevel, "silent">, text: string, fields?: Record<string, unknown>): void {
    this.logger[level](text, fields);
  }

  private checkDest(dest: NodeId): void {
    if (!this.knownIds.has(dest)) throw new RpcError(ErrorCode.NodeNotFound, `no node "${dest}" in this cluster`);
  }

  /**
   * Every id `from` gives is a node of this cluster: looked up, unless `from` last gave these very
   * ids. Returns the list to send: the remembered array when the ids are the same (read in place,
   * not copied first), else a copy, checked and remembered.
   */
  private checkFanOut(from: Iterable<NodeId>): readonly NodeId[] {
    const seen = this.checkedFanOuts.find((c) => c.from === from);
    if (seen && sameIds(seen.ids, from)) return seen.ids;
    const list = [...from];
    for (const dest of list) this.checkDest(dest);
    if (seen) seen.ids = list;
    else {
      if (this.checkedFanOuts.length >= CHECKED_FANOUTS) this.checkedFanOuts.shift();
      this.checkedFanOuts.push({ from, ids: list });
    }
    return list;
  }

  private checkBody(dest: string, body: Body): void {
    if (typeof body !== "object" || body === null || typeof body.type !== "string") throw new TypeError("a message body needs a string `type`");
    if (exceedsSize(body, Limits.maxMessageBytes)) {
      this.stats.refused++;
      throw new RpcError(ErrorCode.TooLarge, `message "${body.type}" to ${dest} exceeds ${Limits.maxMessageBytes} bytes`);
    }
  }

  private transmit(dest: NodeId, body: Body): void {
    if (this.stopped) return;
    this.checkBody(dest, body);
    this.stats.sent++;
    this.env.transmit({ src: this.identity.id, dest, body });
  }

  /** One body to every node of `dests`, in order: checked once and (on a MessageChannel) encoded once. */
  private transmitMany(dests: readonly NodeId[], body: Body): void {
    if (this.stopped || dests.length === 0) return;
    this.checkBody(`${dests.length} nodes`, body);
    const shared = new SharedBody(body);
    const src = this.identity.id;
    try {
      this.stats.sent += dests.length;
      if (this.env.transmitMany) this.env.transmitMany(src, dests, body, shared);
      else for (const dest of dests) this.env.transmit({ src, dest, body }, shared);
    } finally {
      // Recipients in this thread are queued last, and the body copied for them, still before sendMany returns (see SharedBody).
      shared.flushLocal();
    }
  }

  private replyError(req: Message, code: number, text: string): void {
    this.stats.errors++;
    this.sendReply(req, { type: "error", code, text });
  }

  private sendReply(req: Message, body: Body): void {
    if (typeof req.body.msg_id !== "number") return; // not a request: nobody waits
    this.transmit(req.src, { ...body, in_reply_to: req.body.msg_id });
  }

  private addTimer(ms: number, fn: () => void | Promise<void>, repeat: boolean): TimerId {
    if (this.timers.size >= Limits.maxTimers) throw new RpcError(ErrorCode.Overloaded, `${this.identity.id} has ${Limits.maxTimers} live timers`);
    assert(Number.isFinite(ms) && ms >= 0, `timer delay must be a finite non-negative number, got ${ms}`);
    const id = this.nextTimerId++;
    const fire = () => {
      if (this.stopped) return;
      if (this.paused) {
        // A paused node does nothing; its timers fire when it resumes.
        if (this.pausedQueue.length < Limits.maxPausedInbox) this.pausedQueue.push(fire);
        return;
      }
      if (repeat) this.timers.set(id, this.env.setTimer(ms, fire));
      else this.timers.delete(id);
      try {
        const r = fn();
        if (r instanceof Promise) r.catch((e) => this.log("error", `timer failed: ${e instanceof Error ? e.message : String(e)}`));
      } catch (e) {
        this.log("error", `timer failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };
    this.timers.set(id, this.env.setTimer(ms, fire));
    return id;
  }

  private makeContext(random: Random): NodeContext {
    const self = this;
    const { id, role, config, nodeIds, incarnation } = this.identity;
    return {
      id,
      role,
      config,
      nodeIds,
      incarnation,
      random,
      log: this.logger,
      storage: this.env.storage,
      on(type, handler) {
        assert(self.handlers[type] === undefined, `${id}: a handler for "${type}" is already registered`);
        assert(type !== CLOCK_JUMP, `${id}: "${CLOCK_JUMP}" is the runtime's (the clock nemesis)`);
        self.handlers[type] = handler as Handler;
      },
      send(dest, body) {
        self.checkDest(dest);
        self.transmit(dest, body);
      },
      sendMany(dests, body) {
        // Every destination is checked before anything is sent: a bad one changes nothing.
        const list = self.checkFanOut(dests);
        // One recipient is a send: nothing to share (a packed thread's fan-out path took ~20 µs more for it).
        if (list.length === 1) self.transmit(list[0]!, body);
        else self.transmitMany(list, body);
      },
      request<R = Body>(dest: NodeId, body: Body, opts?: RequestOptions): Promise<R> {
        if (self.stopped) return new Promise<R>(() => {});
        try {
          self.checkDest(dest);
        } catch (e) {
          return Promise.reject(e);
        }
        if (self.pending.size >= Limits.maxPendingRequests) return Promise.reject(new RpcError(ErrorCode.Overloaded, `${id} has ${Limits.maxPendingRequests} requests outstanding`));
        const msgId = self.nextMsgId++;
        const timeoutMs = opts?.timeoutMs ?? Number(config.requestTimeoutMs ?? Limits.defaultRequestTimeoutMs);
        return new Promise<R>((resolve, reject) => {
          const timer = self.env.setTimer(timeoutMs, () => {
            if (!self.pending.delete(msgId)) return;
            if (opts?.onLateReply) self.watchLate(msgId, opts.onLateReply);
            reject(new RpcError(ErrorCode.Timeout, `no reply from ${dest} to "${body.type}" within ${timeoutMs} ms`));
          });
          self.pending.set(msgId, { resolve: resolve as (b: Body) => void, reject, timer, dest, sentAt: self.env.now() });
          try {
            self.transmit(dest, { ...body, msg_id: msgId });
          } catch (e) {
            self.pending.delete(msgId);
            self.env.clearTimer(timer);
            reject(e);
          }
        });
      },
      reply(req, body) {
        self.sendReply(req, body);
      },
      replyError(req, code, text) {
        self.replyError(req, code, text);
      },
      setTimeout: (ms, fn) => self.addTimer(ms, fn, false),
      setInterval: (ms, fn) => self.addTimer(Math.max(ms, 0.001), fn, true),
      clearTimer(tid) {
        const h = self.timers.get(tid);
        if (h === undefined) return;
        self.env.clearTimer(h);
        self.timers.delete(tid);
      },
      sleep: (ms) => new Promise<void>((resolve) => self.addTimer(ms, resolve, false)),
      now: () => self.readClock(),
      adjustClock(delta) {
        self.adjustClock(delta);
      },
      uid: () => self.env.uid(),
      serveHttp(handler, opts) {
        self.env.serveHttp(id, handler, opts);
      },
      history: (this.recorder = historyRecorder({ id, incarnation: self.identity.incarnation, now: () => self.env.now(), send: (body) => self.sendHistory(body) })),
    };
  }

  /** A history event for the driver: never subject to network faults, bounded by the recorder. */
  private sendHistory(body: Body): void {
    if (this.stopped) return;
    this.stats.sent++;
    this.env.transmit({ src: this.identity.id, dest: DRIVER_ID, body });
  }

  snapshotStats(): NodeStats {
    const n = this.stats.repliesOk;
    const recent: number[] = [];
    for (let i = Math.max(0, n - RECENT_LATENCIES); i < n; i++) recent.push(this.latencyRing[i % RECENT_LATENCIES]!);
    return { ...this.stats, pendingRequests: this.pending.size, timers: this.timers.size, recentLatencyMs: recent, clockErrorMs: this.clockErrorMs() };
  }
}

/** Whether `b` gives exactly the ids of `a`, in order. */
function sameIds(a: readonly NodeId[], b: Iterable<NodeId>): boolean {
  let i = 0;
  for (const id of b) if (i >= a.length || a[i++] !== id) return false;
  return i === a.length;
}

function isReply(m: unknown): boolean {
  return typeof (m as Message | null)?.body?.in_reply_to === "number";
}

export function isMessage(m: unknown): m is Message {
  if (typeof m !== "object" || m === null) return false;
  const x = m as Record<string, unknown>;
  if (typeof x.src !== "string" || typeof x.dest !== "string") return false;
  const b = x.body as Record<string, unknown> | null;
  if (typeof b !== "object" || b === null || typeof b.type !== "string") return false;
  if (b.msg_id !== undefined && typeof b.msg_id !== "number") return false;
  if (b.in_reply_to !== undefined && typeof b.in_reply_to !== "number") return false;
  return true;
}

function safePreview(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s === undefined ? String(v) : s.slice(0, 200);
  } catch {
    return Object.prototype.toString.call(v);
  }
}
