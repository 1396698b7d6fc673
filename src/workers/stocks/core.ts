import { ErrorCode, RpcError, type Body } from "../runtime/types.ts";
import { OrderLog, type LogWrite } from "./log.ts";
import {
  E,
  LOG_BATCH,
  isEntries,
  isIndex,
  isName,
  isQuantity,
  isRequestId,
  isTradeRecords,
  isTradeType,
  malformed,
  type Append,
  type AppendOk,
  type GetOrder,
  type LogStateOk,
  type LogTail,
  type LogTailOk,
  type Order,
  type PlaceOrder,
  type SetLeader,
  type TradeOk,
  type TradeRecord,
  type UnloggedOk,
} from "./messages.ts";

/**
 * The order replica's protocol, as a pure state machine (the paxos core's style): it takes incoming
 * requests, replies to its own requests, and clock ticks, and returns a Ready — what to persist,
 * what to send, which requests to make and which requests to answer. It does no I/O and keeps no
 * timers; the replica shell writes each Ready's log writes to storage (one transaction) BEFORE it
 * sends or answers anything. Tests drive it with no network at all.
 *
 * The frontend names the leader and its epoch (raft's term); the leader records trades and pushes
 * them to followers with raft's AppendEntries rules, so logs converge whatever the crash pattern.
 *
 *   recovering ──caught up──▶ follower ──set_leader(me)──▶ candidate ──caught up──▶ leader
 *        ▲                        ▲                            │                      │
 *      (boot)                     └──── newer epoch seen ──────┴──────────────────────┘
 *
 * A recovering or candidate replica pulls the most up-to-date log among its peers before it
 * serves, so a rejoining replica and a new leader both start from everything the survivors hold.
 *
 * A trade is all or nothing: the catalog lists every trade it applied as unlogged until the leader
 * confirms it is in the replicated log. The leader sweeps that list and logs what it lacks, so a
 * trade whose front end, leader or catalog died half way is finished by whoever leads next; a
 * replica that drops a stale tail from its log hands those trades back to the catalog (`reopen`).
 */
export type ReplicaState = "recovering" | "follower" | "candidate" | "leader";

export const ReplicaLimits = {
  probeTimeoutMs: 250,
  /** How long a booting replica waits for silent peers before serving with what it could gather. */
  recoveryWaitMs: 1000,
  reprobeMs: 50,
  pullTimeoutMs: 1000,
  pullAttempts: 3,
  appendTimeoutMs: 250,
  catalogTimeoutMs: 600,
  heartbeatMs: 100,
  /** Consecutive unanswered appends before a follower counts as down: one lost message is not a death. */
  downAfterMisses: 3,
  /** Orders a leader holds awaiting the catalog or replication before it refuses more. */
  maxPending: 10_000,
  /** A leader asks the catalog for applied-but-unlogged trades every this many heartbeats. */
  sweepEvery: 2,
  /** How often any replica hands trades dropped from its log back to the catalog. */
  reopenMs: 300,
  /** Request ids awaiting a `logged` to the catalog; beyond it they wait for the next sweep. */
  maxConfirms: 4 * LOG_BATCH,
} as const;

export interface CoreConfig {
  me: string;
  replicas: readonly string[];
  catalog: string;
}

/** What the replica found in its storage at start. */
export interface CoreDurable {
  epoch: number;
  orders: readonly Order[];
  dropped: readonly TradeRecord[];
}

/** The shell's handle for an incoming request awaiting its answer. */
export type Ref = number;

export interface OutRequest {
  /** Echoed back in `result`. */
  id: number;
  to: string;
  body: Body;
  timeoutMs: number;
}

export type Answer = { ref: Ref; body: Body } | { ref: Ref; error: RpcError };
export type Result = { ok: true; body: Body } | { ok: false; error: RpcError };

export interface Ready {
  /** New epoch to persist, or null. */
  epoch: number | null;
  /** Log changes to persist, in order. */
  writes: LogWrite[];
  /** One-way messages, sent after the above is durable. */
  sends: Array<{ to: string; body: Body }>;
  /** Requests to make; each one's reply, error or timeout comes back through `result`. */
  requests: OutRequest[];
  /** Incoming requests answered now. */
  answers: Answer[];
  events: Array<{ level: "info" | "warn"; text: string; fields?: Record<string, unknown> }>;
}

interface Peer {
  id: string;
  /** Next number to send (raft's nextIndex). */
  next: number;
  /** Highest number known replicated there (raft's matchIndex). */
  match: number;
  /** False once it failed to answer downAfterMisses appends in a row: acks stop waiting for it until it answers again. */
  up: boolean;
  misses: number;
  inflight: boolean;
}

/** A place_order answered once order n is replicated. */
interface Waiter {
  n: number;
  ref: Ref;
  requestId: string;
  version?: number;
}

/** Pulling the best peer's log: at boot (recover) or before leading (lead). */
interface CatchUp {
  purpose: "recover" | "lead";
  deadline: number;
  answered: Map<string, LogStateOk>;
  outstanding: number;
  reprobeAt: number | null;
  pull: { peer: string; after: number; step: number; attempts: number } | null;
  /** The set_leader to answer when done (lead). */
  ref?: Ref;
}

/** What a reply to one of our requests continues. */
type Continuation =
  | { kind: "probe"; g: number; peer: string }
  | { kind: "pull"; g: number }
  | { kind: "append"; g: number; peer: Peer; prev: number; sent: number }
  | { kind: "trade"; g: number; ref: Ref; requestId: string; order: Omit<Order, "number" | "epoch"> }
  | { kind: "sweep"; g: number }
  | { kind: "reopen"; ids: string[] };

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`order replica assertion failed: ${text}`);
}

const notLeader = () => new RpcError(ErrorCode.TemporarilyUnavailable, E.notLeader);

function emptyReady(): Ready {
  return { epoch: null, writes: [], sends: [], requests: [], answers: [], events: [] };
}

export class OrderCore {
  readonly log: OrderLog;
  state: ReplicaState = "recovering";
  epoch: number;
  leader: string | undefined;
  private readonly others: string[];
  /** Bumped on every state change: a reply to a request made under an older generation is ignored. */
  private gen = 0;
  private now = 0;
  private out = emptyReady();
  private nextId = 0;
  private readonly pending = new Map<number, Continuation>();
  private catchUp: CatchUp | null = null;
  // leader
  private peers = new Map<string, Peer>();
  private waiters: Waiter[] = [];
  private trading = 0;
  private nextBeat = 0;
  private beats = 0;
  private sweeping = false;
  private confirms: string[] = [];
  // any state
  private reopening = false;
  private nextReopen = 0;

  constructor(
    private readonly cfg: CoreConfig,
    durable: CoreDurable,
  ) {
    assert(cfg.replicas.includes(cfg.me), `${cfg.me} is not in the replica list`);
    this.others = cfg.replicas.filter((r) => r !== cfg.me);
    this.log = new OrderLog(durable.orders, durable.dropped);
    this.epoch = durable.epoch;
    assert(this.log.lastEpoch <= this.epoch || durable.epoch === 0, `log epoch ${this.log.lastEpoch} above stored epoch ${this.epoch}`);
    this.epoch = Math.max(this.epoch, this.log.lastEpoch);
  }

  // ---- entry points: each returns what to do ----

  /** At boot: gather the best log among the peers, then serve as a follower. */
  start(now: number): Ready {
    this.now = now;
    this.startCatchUp("recover", now + ReplicaLimits.recoveryWaitMs);
    return this.flush();
  }

  tick(now: number): Ready {
    assert(now >= this.now, "time went back");
    this.now = now;
    const c = this.catchUp;
    if (c && c.reprobeAt !== null && now >= c.reprobeAt) {
      c.reprobeAt = null;
      this.probe();
    }
    if (this.state === "leader" && now >= this.nextBeat) {
      this.nextBeat = now + ReplicaLimits.heartbeatMs;
      for (const p of this.peers.values()) this.pump(p);
      this.flushConfirms();
      if (++this.beats % ReplicaLimits.sweepEvery === 0) this.sweep();
    }
    if (now >= this.nextReopen) {
      this.nextReopen = now + ReplicaLimits.reopenMs;
      this.reopen();
    }
    return this.flush();
  }

  /** An incoming request; `ref` is answered in this Ready or a later one, exactly once. */
  receive(now: number, ref: Ref, from: string, body: Body): Ready {
    assert(now >= this.now, "time went back");
    this.now = now;
    try {
      this.dispatch(ref, from, body);
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      this.out.answers.push({ ref, error: e });
    }
    return this.flush();
  }

  /** The reply (or error, or timeout) to request `id`. */
  result(now: number, id: number, r: Result): Ready {
    assert(now >= this.now, "time went back");
    this.now = now;
    const c = this.pending.get(id);
    assert(c !== undefined, `result for unknown request ${id}`);
    this.pending.delete(id);
    switch (c.kind) {
      case "probe":
        if (c.g === this.gen) this.onProbe(c.peer, r);
        break;
      case "pull":
        if (c.g === this.gen) this.onPull(r);
        break;
      case "append":
        if (c.g === this.gen) this.onAppend(c.peer, c.prev, c.sent, r);
        break;
      case "trade":
        this.trading--;
        this.onTrade(c, r);
        break;
      case "sweep":
        if (c.g === this.gen) this.onSweep(r);
        if (c.g === this.gen) this.sweeping = false;
        break;
      case "reopen":
        this.reopening = false;
        if (r.ok) this.log.forgetDropped(c.ids);
        break;
    }
    return this.flush();
  }

  inspect() {
    return { state: this.state, epoch: this.epoch, leader: this.leader, last: this.log.last, lastEpoch: this.log.lastEpoch, digest: this.log.digest(), dropped: this.log.dropped };
  }

  // ---- plumbing ----

  private flush(): Ready {
    this.checkInvariants();
    const r = this.out;
    r.writes = this.log.takeWrites();
    this.out = emptyReady();
    return r;
  }

  private checkInvariants(): void {
    assert(this.log.lastEpoch <= this.epoch, `log epoch ${this.log.lastEpoch} above epoch ${this.epoch}`);
    assert(this.trading >= 0, "negative trades in flight");
    if (this.state === "leader") {
      assert(this.leader === this.cfg.me, "a leader that does not name itself");
      for (const p of this.peers.values()) assert(p.match <= this.log.last, `${p.id} matched ${p.match} past our last ${this.log.last}`);
    } else {
      assert(this.waiters.length === 0, "a non-leader holds waiters");
      assert(this.confirms.length === 0, "a non-leader holds confirms");
    }
    if (this.state === "recovering" || this.state === "candidate") assert(this.catchUp !== null, `${this.state} without a catch-up`);
    else assert(this.catchUp === null, `${this.state} still catching up`);
  }

  private request(to: string, body: Body, timeoutMs: number, c: Continuation): void {
    const id = this.nextId++;
    this.pending.set(id, c);
    this.out.requests.push({ id, to, body, timeoutMs });
  }

  private answer(ref: Ref, body: Body): void {
    this.out.answers.push({ ref, body });
  }

  private fail(ref: Ref, error: RpcError): void {
    this.out.answers.push({ ref, error });
  }

  private info(text: string, fields?: Record<string, unknown>): void {
    this.out.events.push({ level: "info", text, fields });
  }

  private warn(text: string, fields?: Record<string, unknown>): void {
    this.out.events.push({ level: "warn", text, fields });
  }

  private adoptEpoch(e: number): void {
    if (e <= this.epoch) return;
    this.epoch = e;
    this.out.epoch = e;
  }

  private transition(to: ReplicaState): void {
    const from = this.state;
    assert(to !== "recovering", "nothing goes back to recovering");
    assert(to !== "candidate" || from !== "recovering", "a recovering replica cannot stand");
    assert(to !== "leader" || from === "candidate", `leader from ${from}`);
    for (const w of this.waiters) this.fail(w.ref, notLeader());
    this.waiters = [];
    this.confirms = [];
    this.sweeping = false;
    if (this.catchUp?.ref !== undefined) this.fail(this.catchUp.ref, notLeader());
    this.catchUp = null;
    this.peers = new Map();
    this.state = to;
    this.gen++;
  }

  /** A newer leader exists: stop leading (or trying to); a recovering replica keeps recovering. */
  private stepDown(e: number, newLeader: string | undefined): void {
    this.adoptEpoch(e);
    this.leader = newLeader;
    if (this.state === "leader" || this.state === "candidate") {
      this.info("stepping down", { epoch: this.epoch, leader: newLeader });
      this.transition("follower");
    }
  }

  // ---- catching up: pull the best peer's log ----

  private startCatchUp(purpose: CatchUp["purpose"], deadline: number, ref?: Ref): void {
    this.catchUp = { purpose, deadline, answered: new Map(), outstanding: 0, reprobeAt: null, pull: null, ref };
    this.probe();
  }

  private probe(): void {
    const c = this.catchUp!;
    const missing = this.others.filter((p) => !c.answered.has(p));
    for (const peer of missing) {
      c.outstanding++;
      this.request(peer, { type: "log_state" }, ReplicaLimits.probeTimeoutMs, { kind: "probe", g: this.gen, peer });
    }
    if (missing.length === 0) this.chooseSource();
  }

  private onProbe(peer: string, r: Result): void {
    const c = this.catchUp;
    if (!c || c.pull) return;
    c.outstanding--;
    if (r.ok) {
      const b = r.body as LogStateOk;
      if (isIndex(b.last, -1) && isIndex(b.lastEpoch) && isIndex(b.epoch)) c.answered.set(peer, b);
    }
    if (c.outstanding > 0) return;
    if (c.answered.size === this.others.length || this.now >= c.deadline) this.chooseSource();
    else c.reprobeAt = this.now + ReplicaLimits.reprobeMs;
  }

  private chooseSource(): void {
    const c = this.catchUp!;
    let best: string | undefined;
    let bestState = { lastEpoch: this.log.lastEpoch, last: this.log.last };
    for (const [p, r] of c.answered) {
      // A candidate that learns of a newer epoch was superseded while it gathered: give up.
      if (r.epoch > this.epoch && this.state === "candidate") return this.stepDown(r.epoch, undefined);
      this.adoptEpoch(r.epoch);
      if (r.lastEpoch > bestState.lastEpoch || (r.lastEpoch === bestState.lastEpoch && r.last > bestState.last)) {
        best = p;
        bestState = r;
      }
    }
    if (!best) return this.caughtUp();
    c.pull = { peer: best, after: this.log.last, step: 1, attempts: 0 };
    this.pullNext();
  }

  private pullNext(): void {
    const p = this.catchUp!.pull!;
    p.attempts++;
    this.request(p.peer, { type: "log_tail", after: p.after, limit: LOG_BATCH }, ReplicaLimits.pullTimeoutMs, { kind: "pull", g: this.gen });
  }

  /** Fetch the source's log after ours, backing up (raft-style) past any entries where we disagree. */
  private onPull(r: Result): void {
    const p = this.catchUp?.pull;
    if (!p) return;
    if (!r.ok) {
      if (p.attempts < ReplicaLimits.pullAttempts) return this.pullNext();
      this.warn("catch-up source went silent", { peer: p.peer, after: p.after });
      return this.caughtUp();
    }
    const b = r.body as LogTailOk;
    if (!(b.prevEpoch === null || isIndex(b.prevEpoch)) || !isEntries(b.entries, p.after + 1) || !isIndex(b.last, -1)) {
      this.warn("malformed log_tail reply", { peer: p.peer });
      return this.caughtUp();
    }
    p.attempts = 0;
    const res = this.log.merge(p.after, b.prevEpoch, b.entries);
    if (!res.ok) {
      p.after = Math.max(-1, Math.min(res.hint, p.after - p.step));
      p.step *= 2;
      return this.pullNext();
    }
    p.after += b.entries.length;
    if (b.entries.length === 0 || p.after >= b.last) return this.caughtUp();
    this.pullNext();
  }

  private caughtUp(): void {
    const c = this.catchUp!;
    if (c.purpose === "recover") {
      this.transition("follower");
      this.info("recovered", { last: this.log.last, epoch: this.epoch });
      return;
    }
    const ref = c.ref!;
    c.ref = undefined;
    this.becomeLeader();
    this.answer(ref, { type: "set_leader_ok" });
  }

  // ---- leading ----

  private becomeLeader(): void {
    this.transition("leader");
    this.peers = new Map(this.others.map((id) => [id, { id, next: this.log.last + 1, match: -1, up: true, misses: 0, inflight: false }]));
    this.nextBeat = this.now + ReplicaLimits.heartbeatMs;
    this.beats = 0;
    for (const p of this.peers.values()) this.pump(p);
    this.sweep();
    this.info("leading", { epoch: this.epoch, last: this.log.last });
  }

  /** Send `p` the next batch it lacks (or a heartbeat); one append in flight per follower. */
  private pump(p: Peer): void {
    if (this.state !== "leader" || p.inflight) return;
    let prev = p.next - 1;
    let prevEpoch = this.log.epochAt(prev);
    if (prevEpoch === undefined) {
      p.next = this.log.last + 1;
      prev = p.next - 1;
      prevEpoch = this.log.epochAt(prev)!;
    }
    const entries = this.log.tail(prev, LOG_BATCH);
    p.inflight = true;
    const body: Append = { type: "append", epoch: this.epoch, prev, prevEpoch, entries, leaderLast: this.log.last };
    this.request(p.id, body, ReplicaLimits.appendTimeoutMs, { kind: "append", g: this.gen, peer: p, prev, sent: entries.length });
  }

  private onAppend(p: Peer, prev: number, sent: number, r: Result): void {
    p.inflight = false;
    if (!r.ok) {
      if (++p.misses >= ReplicaLimits.downAfterMisses) {
        p.up = false;
        this.settle();
      } else this.pump(p);
      return;
    }
    const b = r.body as AppendOk;
    if (!isIndex(b.epoch)) return;
    p.misses = 0;
    if (b.ok === true) {
      p.up = true;
      p.match = Math.max(p.match, Math.min(prev + sent, this.log.last));
      p.next = Math.max(p.next, p.match + 1);
      this.settle();
      if (p.next <= this.log.last) this.pump(p);
      return;
    }
    if (b.reason === "stale" && b.epoch > this.epoch) return this.stepDown(b.epoch, undefined);
    if (b.reason === "mismatch" && isIndex(b.hint, -1)) {
      p.next = Math.max(0, Math.min(p.next - 1, b.hint + 1));
      this.pump(p);
    }
  }

  /** Every follower that answers holds order n: then losing the leader cannot lose it. */
  private replicatedTo(n: number): boolean {
    for (const p of this.peers.values()) if (p.up && p.match < n) return false;
    return true;
  }

  private settle(): void {
    if (this.waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (!this.replicatedTo(w.n)) {
        keep.push(w);
        continue;
      }
      this.confirm(w.requestId);
      this.answer(w.ref, { type: "place_order_ok", number: w.n, version: w.version });
    }
    this.waiters = keep;
  }

  private placeOrder(ref: Ref, b: PlaceOrder): void {
    if (!isRequestId(b.requestId)) throw malformed("place_order needs a requestId");
    if (!isTradeType(b.tradeType)) throw malformed("invalid request type");
    if (!isQuantity(b.quantity)) throw malformed("invalid quantity");
    if (!isName(b.name)) throw new RpcError(ErrorCode.KeyDoesNotExist, E.stockNotFound);
    if (this.state !== "leader") throw notLeader();
    if (this.waiters.length + this.trading >= ReplicaLimits.maxPending) throw new RpcError(ErrorCode.Overloaded, E.overloaded);
    // A retry of a recorded order: answer with its number once it is safely replicated.
    const known = this.log.numberOf(b.requestId);
    if (known !== undefined) {
      this.waiters.push({ n: known, ref, requestId: b.requestId });
      return this.settle();
    }
    // Catalog first: only a trade the catalog accepted becomes an order. If we crash or are
    // deposed after this, the catalog still lists the trade as unlogged and the next leader's
    // sweep logs it (or the frontend's retry, same request id, gets there first).
    this.trading++;
    const order = { name: b.name, type: b.tradeType, quantity: b.quantity, requestId: b.requestId };
    this.request(this.cfg.catalog, { type: "trade", requestId: b.requestId, name: b.name, tradeType: b.tradeType, quantity: b.quantity }, ReplicaLimits.catalogTimeoutMs, {
      kind: "trade",
      g: this.gen,
      ref,
      requestId: b.requestId,
      order,
    });
  }

  private onTrade(c: Extract<Continuation, { kind: "trade" }>, r: Result): void {
    if (!r.ok) {
      const e = r.error;
      if (e.definite && e.code !== ErrorCode.TemporarilyUnavailable && e.code !== ErrorCode.NodeNotFound) return this.fail(c.ref, e);
      return this.fail(c.ref, new RpcError(ErrorCode.TemporarilyUnavailable, E.catalogUnavailable));
    }
    if (c.g !== this.gen) return this.fail(c.ref, notLeader());
    const t = r.body as TradeOk;
    const number = this.log.numberOf(c.requestId) ?? this.log.append({ ...c.order, epoch: this.epoch }).number;
    for (const p of this.peers.values()) this.pump(p);
    this.waiters.push({ n: number, ref: c.ref, requestId: c.requestId, version: isIndex(t.version) ? t.version : undefined });
    this.settle();
  }

  // ---- resolving trades the catalog applied but no order records ----

  /**
   * Asks the catalog for trades it applied but no order log is known to hold (their front end or an
   * earlier leader died between the catalog and the log, or the trade ended in a 503).
   */
  private sweep(): void {
    if (this.sweeping || this.state !== "leader") return;
    this.sweeping = true;
    this.request(this.cfg.catalog, { type: "unlogged" }, ReplicaLimits.catalogTimeoutMs, { kind: "sweep", g: this.gen });
  }

  /** Logs each listed trade our log lacks (idempotent by request id) and confirms those replicated. */
  private onSweep(r: Result): void {
    if (!r.ok) return;
    const b = r.body as UnloggedOk;
    if (!isTradeRecords(b.trades)) return this.warn("malformed unlogged reply");
    let appended = 0;
    for (const t of b.trades) {
      const n = this.log.numberOf(t.requestId);
      if (n === undefined) {
        this.log.append({ name: t.name, type: t.tradeType, quantity: t.quantity, requestId: t.requestId, epoch: this.epoch });
        appended++;
      } else if (this.replicatedTo(n)) this.confirm(t.requestId);
    }
    if (appended > 0) {
      this.info("logged trades the catalog applied without an order", { count: appended, epoch: this.epoch });
      for (const p of this.peers.values()) this.pump(p);
    }
  }

  private confirm(requestId: string): void {
    if (this.confirms.length < ReplicaLimits.maxConfirms) this.confirms.push(requestId);
  }

  private flushConfirms(): void {
    for (let i = 0; i < this.confirms.length; i += LOG_BATCH) this.out.sends.push({ to: this.cfg.catalog, body: { type: "logged", requestIds: this.confirms.slice(i, i + LOG_BATCH) } });
    this.confirms = [];
  }

  /** Trades dropped from this log go back to the catalog's unlogged list, whatever our state. */
  private reopen(): void {
    if (this.reopening || this.log.dropped === 0) return;
    this.reopening = true;
    const trades = this.log.droppedList(LOG_BATCH);
    this.request(this.cfg.catalog, { type: "reopen", trades }, ReplicaLimits.catalogTimeoutMs, { kind: "reopen", ids: trades.map((t) => t.requestId) });
  }

  // ---- incoming requests ----

  private dispatch(ref: Ref, from: string, body: Body): void {
    switch (body.type) {
      case "place_order":
        return this.placeOrder(ref, body as PlaceOrder);
      case "get_order":
        return this.getOrder(ref, body as GetOrder);
      case "set_leader":
        return this.setLeader(ref, body as SetLeader);
      case "append":
        return this.append(ref, from, body as Append);
      case "log_state":
        // Answered in every state: a recovering peer's durable log is as good a source as any.
        return this.answer(ref, { type: "log_state_ok", last: this.log.last, lastEpoch: this.log.lastEpoch, epoch: this.epoch } satisfies LogStateOk);
      case "log_tail":
        return this.logTail(ref, body as LogTail);
      case "health":
        return this.answer(ref, { type: "health_ok", ready: this.state !== "recovering", leading: this.state === "leader", epoch: this.epoch, last: this.log.last });
      default:
        throw new RpcError(ErrorCode.NotSupported, `unknown request type ${String(body.type).slice(0, 64)}`);
    }
  }

  private getOrder(ref: Ref, b: GetOrder): void {
    if (this.state !== "leader") throw notLeader();
    const o = isIndex(b.number) ? this.log.get(b.number) : undefined;
    if (!o) throw new RpcError(ErrorCode.KeyDoesNotExist, E.orderNotFound);
    this.answer(ref, { type: "get_order_ok", order: { number: o.number, name: o.name, type: o.type, quantity: o.quantity } });
  }

  private setLeader(ref: Ref, b: SetLeader): void {
    const { leader: l, epoch: e } = b;
    if (typeof l !== "string" || !this.cfg.replicas.includes(l) || !isIndex(e, 1)) throw malformed("set_leader needs a replica id and an epoch ≥ 1");
    if (e < this.epoch) throw new RpcError(ErrorCode.PreconditionFailed, `stale epoch ${e} < ${this.epoch}`);
    if (l !== this.cfg.me) {
      this.stepDown(e, l);
      return this.answer(ref, { type: "set_leader_ok" });
    }
    if (this.state === "leader" && e === this.epoch) return this.answer(ref, { type: "set_leader_ok" });
    if (this.state === "recovering") throw new RpcError(ErrorCode.TemporarilyUnavailable, E.recovering);
    this.adoptEpoch(e);
    this.leader = this.cfg.me;
    this.transition("candidate");
    // Take over only with everything the reachable survivors hold; a second probe round keeps one
    // lost message from hiding a survivor.
    this.startCatchUp("lead", this.now + ReplicaLimits.probeTimeoutMs, ref);
  }

  private append(ref: Ref, from: string, b: Append): void {
    if (!isIndex(b.epoch, 1) || !isIndex(b.prev, -1) || !isIndex(b.prevEpoch) || !isIndex(b.leaderLast, -1) || !isEntries(b.entries, b.prev + 1)) {
      throw malformed("malformed append");
    }
    if (b.epoch < this.epoch) return this.answer(ref, { type: "append_ok", ok: false, reason: "stale", epoch: this.epoch, last: this.log.last } satisfies AppendOk);
    if (b.entries.some((o) => o.epoch > b.epoch)) throw malformed("append carries entries from a later epoch");
    if (b.epoch > this.epoch || this.state === "leader" || this.state === "candidate") this.stepDown(b.epoch, from);
    this.leader = from;
    if (this.state === "recovering") throw new RpcError(ErrorCode.TemporarilyUnavailable, E.recovering);
    const res = this.log.merge(b.prev, b.prevEpoch, b.entries);
    if (!res.ok) return this.answer(ref, { type: "append_ok", ok: false, reason: "mismatch", hint: res.hint, epoch: this.epoch, last: this.log.last } satisfies AppendOk);
    // Entries past the leader's log from an older epoch were never acknowledged (the leader that
    // wrote them could not replicate them here and to the new leader): drop them.
    if (this.log.last > b.leaderLast && this.log.lastEpoch < b.epoch) this.log.truncateFrom(b.leaderLast + 1);
    this.answer(ref, { type: "append_ok", ok: true, last: b.prev + b.entries.length, epoch: this.epoch } satisfies AppendOk);
  }

  private logTail(ref: Ref, b: LogTail): void {
    const { after, limit } = b;
    if (!isIndex(after, -1) || !isIndex(limit, 1)) throw malformed("log_tail needs after ≥ -1 and limit ≥ 1");
    const prevEpoch = this.log.epochAt(after) ?? null;
    this.answer(ref, { type: "log_tail_ok", prevEpoch, entries: this.log.tail(after, Math.min(limit, LOG_BATCH)), last: this.log.last } satisfies LogTailOk);
  }
}
