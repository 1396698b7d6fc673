import { assert } from "../runtime/assert.ts";
import { PaxosLimits, opBytes, valueBytes, type Op, type PeerMsg, type Value } from "./messages.ts";

/**
 * The Multi-Paxos protocol core: a pure, deterministic state machine in the style of etcd's raft.
 * It takes a message, a tick or a client op and returns a Ready: what to persist, what to send, what
 * to execute. It does no I/O; the replica shell writes `Ready` to durable storage BEFORE it sends the
 * messages, then executes. Tests drive it with no network at all.
 *
 * Ballots are integers; ballot b belongs to replica b % n. A replica promises ballot b only if b is
 * above every ballot it promised before. Slots start at 1. `commit` is the chosen prefix: every slot
 * <= commit is chosen and its chosen value is what this replica stored for it.
 */

export interface CoreConfig {
  n: number;
  /** This replica's rank, 0..n-1. */
  me: number;
  window: number;
  maxBatch: number;
  queueLimit: number;
  heartbeatTicks: number;
  electionTicks: number;
  resendTicks: number;
  /** Slots the first term of this leader leaves empty (honoured only in its first term). */
  skipSlots: number[];
  /** Start an election at once (replica 0 on a fresh cluster). */
  leadFirst: boolean;
  /**
   * False for a replica that lost its acceptor state (memory storage, restarted): it must never vote
   * again — a forgotten promise or acceptance could let two values be chosen — so it only learns
   * chosen values (a learner) and redirects clients.
   */
  voter?: boolean;
  /** Uniform in [0, 1): the node's seeded random source. */
  random: () => number;
}

/** Durable state as loaded at start. */
export interface DurableState {
  promised: number;
  commit: number;
  /** Accepted entries for slots above commit: [slot, ballot, value]. */
  accepted: Array<[number, number, Value]>;
}

/** Ballot stored with a value learned as chosen from another replica (no accepted ballot). */
export const LEARNED = -1;

export interface Send {
  to: number;
  msg: PeerMsg;
}

export interface Ready {
  /** New promised ballot to persist, or null. */
  promised: number | null;
  /** [slot, ballot, value] to persist (ballot LEARNED for values learned as chosen). */
  entries: Array<[number, number, Value]>;
  /** New commit index to persist, or null. */
  commit: number | null;
  /** To send after the above is durable. */
  messages: Send[];
  /** Newly chosen slots, in order, to execute after the above is durable. */
  execute: Array<[number, Value]>;
  /** Client ops this replica had queued and will not propose (it stopped leading): answer "not leader". */
  dropped: Op[];
  /** Human-readable events (elections, step-downs) for the log. */
  events: string[];
}

export type Role = "follower" | "candidate" | "leader";
export type SubmitStatus = "queued" | "not_leader" | "overloaded";

interface InFlight {
  v: Value;
  /** valueBytes(v), computed once: accepts are split by it for every peer and every resend. */
  bytes: number;
  acks: Set<number>;
  chosen: boolean;
  lastSent: number;
  /** Resends so far: the next waits resendTicks x 2^min(resends, MAX_RESEND_BACKOFF). */
  resends: number;
}
interface PromiseState {
  done: boolean;
  next: number;
  lastSent: number;
}

/**
 * An unanswered accept is resent after resendTicks, then after twice as long, and so on up to 8x.
 * Links between threads do not lose messages; an accept goes unanswered mostly because the machine
 * is busy and the follower has not read it yet. Resending every resendTicks then fed the overload:
 * up to 2f copies of an ~11 KB slot every 20 ms, each decoded again by its follower. A message the
 * network did lose is still resent after resendTicks the first time.
 */
const MAX_RESEND_BACKOFF = 3;

function emptyReady(): Ready {
  return { promised: null, entries: [], commit: null, messages: [], execute: [], dropped: [], events: [] };
}

/** Split items into groups under the byte and count limits of one message. */
export function chunk<T>(items: T[], bytes: (t: T) => number, budget: number = PaxosLimits.maxMessageEntryBytes, maxCount: number = PaxosLimits.maxEntriesPerMessage): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let size = 0;
  for (const it of items) {
    const b = bytes(it);
    if (cur.length > 0 && (size + b > budget || cur.length >= maxCount)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(it);
    size += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export class PaxosCore {
  readonly n: number;
  readonly me: number;
  readonly majority: number;
  private readonly cfg: CoreConfig;

  // acceptor (durable)
  promised: number;
  commit: number;
  /** Accepted values for slots above commit. */
  private readonly log = new Map<number, { b: number; v: Value }>();

  // volatile
  role: Role = "follower";
  /** Own ballot while candidate or leader. */
  ballot = 0;
  /** Rank of the leader this replica follows, or -1. */
  leader = -1;
  private maxSeen = 0;
  private tickNo = 0;
  private electionDeadline = 0;
  private knownCommit = 0;
  private knownCommitFrom = -1;
  private lastFetchTick = -Infinity;
  private fetchRotation = 0;

  // candidate
  private promises = new Map<number, PromiseState>();
  private candEntries = new Map<number, { b: number; v: Value }>();
  private candMaxCommit = 0;

  // leader
  nextSlot = 1;
  private readonly inflight = new Map<number, InFlight>();
  private queue: Op[] = [];
  private queueHead = 0;
  /** Ids of ops queued or in flight at this leader. */
  private readonly queuedKeys = new Set<string>();
  private peerLastHeard: number[] = [];
  private lastHeartbeat = -Infinity;

  // the source's skipped-slot test case
  private firstTerm = true;
  private readonly skip: Set<number>;
  private readonly holes = new Set<number>();
  private stuckTicks = 0;

  // stats
  elections = 0;
  leaderTerms = 0;
  badMessages = 0;

  private out: Ready = emptyReady();

  constructor(cfg: CoreConfig, durable: DurableState) {
    assert(Number.isInteger(cfg.n) && cfg.n >= 1, "n >= 1");
    assert(Number.isInteger(cfg.me) && cfg.me >= 0 && cfg.me < cfg.n, "0 <= me < n");
    assert(cfg.window >= 1 && cfg.window <= PaxosLimits.maxWindow, `window in 1..${PaxosLimits.maxWindow}`);
    assert(cfg.maxBatch >= 1 && cfg.maxBatch <= PaxosLimits.maxBatchOps, `maxBatch in 1..${PaxosLimits.maxBatchOps}`);
    assert(cfg.queueLimit >= 1 && cfg.queueLimit <= PaxosLimits.maxQueue, `queueLimit in 1..${PaxosLimits.maxQueue}`);
    assert(cfg.heartbeatTicks >= 1 && cfg.electionTicks > cfg.heartbeatTicks && cfg.resendTicks >= 1, "heartbeat < election timeout");
    this.cfg = cfg;
    this.n = cfg.n;
    this.me = cfg.me;
    this.majority = Math.floor(cfg.n / 2) + 1;
    this.promised = durable.promised;
    this.commit = durable.commit;
    this.knownCommit = durable.commit;
    this.maxSeen = durable.promised;
    for (const [s, b, v] of durable.accepted) {
      assert(s > durable.commit && b >= 0 && b <= durable.promised, `stored entry ${s}@${b} above commit ${durable.commit}, at most promised ${durable.promised}`);
      this.log.set(s, { b, v });
    }
    this.skip = new Set(cfg.skipSlots);
    this.nextSlot = this.commit + 1;
    this.resetElectionTimer();
  }

  // ---------------------------------------------------------------- inputs

  /** Call once after construction. */
  start(): Ready {
    return this.step(() => {
      if (this.cfg.leadFirst) this.campaign();
    });
  }

  tick(): Ready {
    return this.step(() => this.onTick());
  }

  /** A message from replica `from` (a rank); fetch is served by the shell from storage, not here. */
  receive(from: number, msg: PeerMsg): Ready {
    return this.step(() => {
      if (!Number.isInteger(from) || from < 0 || from >= this.n || from === this.me) {
        this.badMessages++;
        return;
      }
      switch (msg.type) {
        case "prepare":
          return this.onPrepare(from, msg.b, msg.from);
        case "promise":
          return this.onPromise(from, msg);
        case "accept":
          return this.onAccept(from, msg.b, msg.entries, msg.commit);
        case "accepted":
          return this.onAccepted(from, msg.b, msg.ok, msg.promised, msg.slots);
        case "heartbeat":
          return this.onHeartbeat(from, msg.b, msg.commit);
        case "heartbeat_ok":
          return this.onHeartbeatOk(from, msg.b, msg.ok, msg.promised, msg.commit);
        case "fetched":
          return this.onFetched(from, msg.entries, msg.commit);
        case "fetch":
          return;
      }
    });
  }

  /** A client op. Only the leader takes it; the op is proposed when the window has room. */
  submit(op: Op): { status: SubmitStatus; ready: Ready } {
    return this.submitMany([op]);
  }

  /**
   * Client ops, in order. All are queued, or none (status not_leader / overloaded). An op whose id is
   * already queued or in flight here (a retry) is not queued twice.
   */
  submitMany(ops: Op[]): { status: SubmitStatus; ready: Ready } {
    let status: SubmitStatus = "queued";
    const ready = this.step(() => {
      if (this.role !== "leader") {
        status = "not_leader";
        return;
      }
      if (this.queue.length - this.queueHead + ops.length > this.cfg.queueLimit) {
        status = "overloaded";
        return;
      }
      for (const op of ops) {
        if (this.queuedKeys.has(op.id)) continue;
        this.queue.push(op);
        this.queuedKeys.add(op.id);
      }
      this.proposeFromQueue();
    });
    return { status, ready };
  }

  // ---------------------------------------------------------------- views

  get queued(): number {
    return this.queue.length - this.queueHead;
  }
  get inflightCount(): number {
    return this.inflight.size;
  }
  get acceptedCount(): number {
    return this.log.size;
  }
  /** The accepted (not yet known chosen) entry of a slot, for tests and inspection. */
  acceptedAt(slot: number): { b: number; v: Value } | undefined {
    return this.log.get(slot);
  }

  // ---------------------------------------------------------------- internals

  private step(fn: () => void): Ready {
    this.out = emptyReady();
    fn();
    this.checkInvariants();
    const r = this.out;
    this.out = emptyReady();
    return r;
  }

  private checkInvariants(): void {
    assert(this.commit <= this.knownCommit, `commit ${this.commit} <= knownCommit ${this.knownCommit}`);
    if (this.role !== "follower") assert(this.ballot % this.n === this.me && this.ballot === this.promised, `own ballot ${this.ballot} is mine and promised (${this.promised})`);
    if (this.role === "leader") {
      assert(this.nextSlot > this.commit, `nextSlot ${this.nextSlot} > commit ${this.commit}`);
      assert(this.inflight.size <= this.nextSlot - 1 - this.commit, `in flight ${this.inflight.size} <= slots above commit ${this.nextSlot - 1 - this.commit}`);
      assert(!this.inflight.has(this.commit), `committed slot ${this.commit} no longer in flight`);
    } else assert(this.inflight.size === 0 && this.queued === 0, "only a leader has slots in flight or a client queue");
    assert(!this.log.has(this.commit), `committed slot ${this.commit} is no longer an open acceptance`);
  }

  private send(to: number, msg: PeerMsg): void {
    this.out.messages.push({ to, msg });
  }
  private broadcast(make: () => PeerMsg): void {
    for (let p = 0; p < this.n; p++) if (p !== this.me) this.send(p, make());
  }
  private see(b: number): void {
    if (b > this.maxSeen) this.maxSeen = b;
  }
  private setPromised(b: number): void {
    assert(b >= this.promised, `promise ${b} never goes below ${this.promised}`);
    if (b > this.promised) {
      this.promised = b;
      this.out.promised = b;
    }
    this.see(b);
  }
  private resetElectionTimer(factor = 1): void {
    const e = this.cfg.electionTicks;
    this.electionDeadline = this.tickNo + factor * e + Math.floor(this.cfg.random() * e);
  }

  private get voter(): boolean {
    return this.cfg.voter !== false;
  }

  private onTick(): void {
    this.tickNo++;
    if (!this.voter) {
      // A learner asks around now and then even with no leader, so it converges on the chosen prefix.
      if (this.commit >= this.knownCommit && this.tickNo % this.cfg.electionTicks === 0 && this.n > 1) {
        const peer = (this.me + 1 + (this.fetchRotation++ % (this.n - 1))) % this.n;
        this.send(peer, { type: "fetch", from: this.commit + 1, to: this.commit + 1 });
      }
      this.maybeFetch(true);
      return;
    }
    if (this.role === "leader") {
      if (this.tickNo - this.lastHeartbeat >= this.cfg.heartbeatTicks) {
        this.lastHeartbeat = this.tickNo;
        this.broadcast(() => ({ type: "heartbeat", b: this.ballot, commit: this.commit }));
      }
      this.resendAccepts();
      // A leader that cannot hear a majority steps down, so its clients go elsewhere.
      let heard = 1;
      for (let p = 0; p < this.n; p++) if (p !== this.me && this.tickNo - (this.peerLastHeard[p] ?? 0) < 2 * this.cfg.electionTicks) heard++;
      if (heard < this.majority) {
        this.stepDown(`cannot hear a majority (${heard}/${this.n})`);
        return;
      }
      if (this.firstTerm && this.holes.has(this.commit + 1)) {
        if (++this.stuckTicks >= this.cfg.electionTicks) {
          this.stepDown(`abdicating: slot ${this.commit + 1} was skipped on purpose (--skip-slots)`);
          this.resetElectionTimer(3);
        }
      }
    } else if (this.tickNo >= this.electionDeadline) {
      this.campaign();
    } else if (this.role === "candidate") {
      for (const [p, st] of this.promises) {
        if (!st.done && this.tickNo - st.lastSent >= this.cfg.resendTicks) {
          st.lastSent = this.tickNo;
          this.send(p, { type: "prepare", b: this.ballot, from: st.next });
        }
      }
    }
    this.maybeFetch(true);
  }

  private nextBallot(): number {
    const floor = Math.max(this.promised, this.maxSeen);
    let b = floor - (floor % this.n) + this.me;
    if (b <= floor) b += this.n;
    assert(b <= PaxosLimits.maxBallot, `ballot ${b} within limits`);
    return b;
  }

  private campaign(): void {
    if (this.role === "leader") return;
    const b = this.nextBallot();
    this.role = "candidate";
    this.ballot = b;
    this.setPromised(b);
    this.leader = -1;
    this.elections++;
    this.resetElectionTimer();
    this.promises = new Map();
    this.candEntries = new Map();
    for (const [s, e] of this.log) if (s > this.commit) this.candEntries.set(s, e);
    this.candMaxCommit = this.commit;
    this.out.events.push(`campaign for ballot ${b} from slot ${this.commit + 1}`);
    for (let p = 0; p < this.n; p++) {
      if (p === this.me) continue;
      this.promises.set(p, { done: false, next: this.commit + 1, lastSent: this.tickNo });
      this.send(p, { type: "prepare", b, from: this.commit + 1 });
    }
    this.maybeBecomeLeader();
  }

  private onPrepare(from: number, b: number, fromSlot: number): void {
    this.see(b);
    if (!this.voter) return;
    const grant = b > this.promised || (b === this.promised && b % this.n === from);
    if (!grant) {
      this.send(from, { type: "promise", b, ok: false, promised: this.promised, commit: this.commit, entries: [], next: null });
      return;
    }
    if (this.role !== "follower") this.stepDown(`promised higher ballot ${b}`);
    this.setPromised(b);
    this.leader = b % this.n;
    this.resetElectionTimer();
    const start = Math.max(fromSlot, this.commit + 1);
    const slots = [...this.log.keys()].filter((s) => s >= start).sort((x, y) => x - y);
    const items: Array<[number, number, Value]> = slots.map((s) => {
      const e = this.log.get(s)!;
      return [s, e.b, e.v];
    });
    const parts = chunk(items, (e) => valueBytes(e[2]) + 24);
    const first = parts[0] ?? [];
    const next = parts.length > 1 ? parts[1]![0]![0] : null;
    this.send(from, { type: "promise", b, ok: true, promised: this.promised, commit: this.commit, entries: first, next });
  }

  private onPromise(from: number, m: Extract<PeerMsg, { type: "promise" }>): void {
    this.see(m.promised);
    this.learnKnownCommit(from, m.commit);
    if (this.role !== "candidate" || m.b !== this.ballot) return;
    if (!m.ok) {
      if (m.promised > this.ballot) this.stepDown(`${from} promised higher ballot ${m.promised}`);
      return;
    }
    const st = this.promises.get(from);
    if (!st || st.done) return;
    for (const [s, b, v] of m.entries) {
      if (s <= this.commit) continue;
      assert(b < this.ballot || b === LEARNED, `promised entry ballot ${b} below candidate ballot ${this.ballot}`);
      const cur = this.candEntries.get(s);
      if (!cur || b > cur.b) this.candEntries.set(s, { b, v });
    }
    this.candMaxCommit = Math.max(this.candMaxCommit, m.commit);
    if (m.next === null) st.done = true;
    else if (m.next > st.next) {
      st.next = m.next;
      st.lastSent = this.tickNo;
      this.send(from, { type: "prepare", b: this.ballot, from: m.next });
    }
    this.maybeFetch(false);
    this.maybeBecomeLeader();
  }

  private maybeBecomeLeader(): void {
    if (this.role !== "candidate") return;
    let done = 1;
    for (const st of this.promises.values()) if (st.done) done++;
    if (done < this.majority) return;
    // A promiser knew more chosen slots than we do: learn them first (fetch is under way).
    if (this.commit < this.candMaxCommit) return;
    this.role = "leader";
    this.leader = this.me;
    this.leaderTerms++;
    this.inflight.clear();
    this.queue = [];
    this.queueHead = 0;
    this.queuedKeys.clear();
    this.peerLastHeard = Array.from({ length: this.n }, () => this.tickNo);
    this.stuckTicks = 0;
    let maxSlot = this.commit;
    for (const s of this.candEntries.keys()) if (s > maxSlot) maxSlot = s;
    const recovered: number[] = [];
    let noops = 0;
    for (let s = this.commit + 1; s <= maxSlot; s++) {
      const e = this.candEntries.get(s);
      if (!e) noops++;
      this.proposeAt(s, e ? e.v : null);
      recovered.push(s);
    }
    this.nextSlot = maxSlot + 1;
    this.candEntries = new Map();
    this.promises = new Map();
    this.out.events.push(`leading ballot ${this.ballot}: re-proposed ${recovered.length - noops} slots, filled ${noops} holes with no-ops, next slot ${this.nextSlot}`);
    this.sendAccepts(recovered);
    this.lastHeartbeat = this.tickNo;
    this.broadcast(() => ({ type: "heartbeat", b: this.ballot, commit: this.commit }));
    this.advanceLeaderCommit();
  }

  private proposeAt(s: number, v: Value, bytes: number = valueBytes(v)): void {
    assert(this.role === "leader" && s > this.commit && !this.inflight.has(s), `propose slot ${s} once per ballot`);
    this.log.set(s, { b: this.ballot, v });
    this.out.entries.push([s, this.ballot, v]);
    this.inflight.set(s, { v, bytes, acks: new Set([this.me]), chosen: this.majority <= 1, lastSent: this.tickNo, resends: 0 });
  }

  private proposeFromQueue(): void {
    if (this.role !== "leader") return;
    const fresh: number[] = [];
    while (this.queueHead < this.queue.length && this.nextSlot - 1 - this.commit < this.cfg.window) {
      if (this.firstTerm && this.skip.has(this.nextSlot)) {
        this.holes.add(this.nextSlot);
        this.out.events.push(`leaving slot ${this.nextSlot} empty (--skip-slots)`);
        this.nextSlot++;
        continue;
      }
      const batch: Op[] = [];
      let bytes = 0;
      while (this.queueHead < this.queue.length && batch.length < this.cfg.maxBatch && bytes < PaxosLimits.maxMessageEntryBytes / 2) {
        const op = this.queue[this.queueHead++]!;
        batch.push(op);
        bytes += opBytes(op);
      }
      const s = this.nextSlot++;
      this.proposeAt(s, batch, 16 + bytes);
      fresh.push(s);
    }
    if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    if (fresh.length > 0) {
      this.sendAccepts(fresh);
      this.advanceLeaderCommit();
    }
  }

  private sendAccepts(slots: number[], only?: (peer: number, f: InFlight) => boolean): void {
    if (slots.length === 0) return;
    if (!only) {
      // Every follower gets the same accepts: one message object for all of them, so the shell
      // encodes it once (sendMany) rather than once per follower (a slot's value is ~25 KB).
      const items: Array<[number, Value, number]> = [];
      for (const s of slots) {
        const f = this.inflight.get(s);
        if (f) items.push([s, f.v, f.bytes]);
      }
      for (const part of chunk(items, (e) => e[2] + 16)) {
        const msg: PeerMsg = { type: "accept", b: this.ballot, entries: part.map(([s, v]) => [s, v]), commit: this.commit };
        for (let p = 0; p < this.n; p++) if (p !== this.me) this.send(p, msg);
      }
      return;
    }
    for (let p = 0; p < this.n; p++) {
      if (p === this.me) continue;
      const items: Array<[number, Value, number]> = [];
      for (const s of slots) {
        const f = this.inflight.get(s);
        if (!f || (only && !only(p, f))) continue;
        items.push([s, f.v, f.bytes]);
      }
      for (const part of chunk(items, (e) => e[2] + 16)) this.send(p, { type: "accept", b: this.ballot, entries: part.map(([s, v]) => [s, v]), commit: this.commit });
    }
  }

  private resendAccepts(): void {
    const due: number[] = [];
    for (const [s, f] of this.inflight) {
      if (!f.chosen && this.tickNo - f.lastSent >= this.cfg.resendTicks << Math.min(f.resends, MAX_RESEND_BACKOFF)) {
        f.lastSent = this.tickNo;
        f.resends++;
        due.push(s);
      }
      if (due.length >= PaxosLimits.maxEntriesPerMessage) break;
    }
    this.sendAccepts(due, (p, f) => !f.acks.has(p));
  }

  private onAccept(from: number, b: number, entries: Array<[number, Value]>, commit: number): void {
    this.see(b);
    if (!this.voter) return this.learnAsLearner(from, b, commit);
    if (b < this.promised) {
      this.send(from, { type: "accepted", b, ok: false, promised: this.promised, slots: [] });
      return;
    }
    if (b % this.n !== from) {
      this.badMessages++;
      return;
    }
    if (this.role !== "follower") this.stepDown(`accepting higher ballot ${b} from ${from}`);
    this.setPromised(b);
    this.leader = from;
    this.resetElectionTimer();
    const slots: number[] = [];
    for (const [s, v] of entries) {
      slots.push(s);
      if (s <= this.commit) continue;
      const cur = this.log.get(s);
      if (cur && cur.b === b) continue; // a resend: same ballot, same value
      this.log.set(s, { b, v });
      this.out.entries.push([s, b, v]);
    }
    this.send(from, { type: "accepted", b, ok: true, promised: this.promised, slots });
    this.learnCommit(from, b, commit);
  }

  private onAccepted(from: number, b: number, ok: boolean, promised: number, slots: number[]): void {
    this.see(promised);
    if (!ok) {
      if (this.role === "leader" && promised > this.ballot) this.stepDown(`${from} promised higher ballot ${promised}`);
      return;
    }
    if (this.role !== "leader" || b !== this.ballot) return;
    this.peerLastHeard[from] = this.tickNo;
    for (const s of slots) {
      const f = this.inflight.get(s);
      if (!f || f.chosen) continue;
      f.acks.add(from);
      if (f.acks.size >= this.majority) f.chosen = true;
    }
    this.advanceLeaderCommit();
  }

  private advanceLeaderCommit(): void {
    let f: InFlight | undefined;
    const before = this.commit;
    while ((f = this.inflight.get(this.commit + 1)) && f.chosen) this.commitSlot(this.commit + 1, f.v);
    if (this.commit > before) {
      if (this.commit > this.knownCommit) this.knownCommit = this.commit;
      this.stuckTicks = 0;
      this.proposeFromQueue();
    }
  }

  private commitSlot(s: number, v: Value): void {
    assert(s === this.commit + 1, `commit slot ${s} right after ${this.commit}`);
    this.commit = s;
    this.out.commit = s;
    this.out.execute.push([s, v]);
    this.log.delete(s);
    if (this.inflight.delete(s) && v) for (const op of v) this.queuedKeys.delete(op.id);
    if (s > this.knownCommit) this.knownCommit = s;
  }

  private onHeartbeat(from: number, b: number, commit: number): void {
    this.see(b);
    if (!this.voter) return this.learnAsLearner(from, b, commit);
    if (b < this.promised) {
      this.send(from, { type: "heartbeat_ok", b, ok: false, promised: this.promised, commit: this.commit });
      return;
    }
    if (b % this.n !== from) {
      this.badMessages++;
      return;
    }
    if (this.role !== "follower") this.stepDown(`heartbeat of higher ballot ${b} from ${from}`);
    this.setPromised(b);
    this.leader = from;
    this.resetElectionTimer();
    this.learnCommit(from, b, commit);
    this.send(from, { type: "heartbeat_ok", b, ok: true, promised: this.promised, commit: this.commit });
  }

  private onHeartbeatOk(from: number, b: number, ok: boolean, promised: number, commit: number): void {
    this.see(promised);
    this.learnKnownCommit(from, commit);
    if (this.role !== "leader") return;
    if (!ok) {
      if (promised > this.ballot) this.stepDown(`${from} promised higher ballot ${promised}`);
      return;
    }
    if (b === this.ballot) this.peerLastHeard[from] = this.tickNo;
  }

  /** A learner only follows the leader's commit index and fetches chosen values. */
  private learnAsLearner(from: number, b: number, commit: number): void {
    if (b % this.n !== from) {
      this.badMessages++;
      return;
    }
    this.leader = from;
    this.learnKnownCommit(from, commit);
    this.maybeFetch(false);
  }

  /** The leader of ballot b says every slot <= c is chosen: commit what we accepted in ballot b. */
  private learnCommit(from: number, b: number, c: number): void {
    this.learnKnownCommit(from, c);
    let e: { b: number; v: Value } | undefined;
    while (this.commit < c && (e = this.log.get(this.commit + 1)) && e.b === b) this.commitSlot(this.commit + 1, e.v);
    this.maybeFetch(false);
  }

  private learnKnownCommit(from: number, c: number): void {
    if (c > this.knownCommit) {
      this.knownCommit = c;
      this.knownCommitFrom = from;
    }
  }

  private maybeFetch(retry: boolean): void {
    if (this.commit >= this.knownCommit) return;
    if (this.tickNo - this.lastFetchTick < this.cfg.resendTicks) return;
    let to = this.knownCommitFrom;
    if (retry && this.lastFetchTick > -Infinity) {
      // The last fetch went unanswered: try the leader, then the others in turn.
      const others = [...Array(this.n).keys()].filter((p) => p !== this.me);
      to = this.leader >= 0 && this.leader !== this.me && this.fetchRotation % 2 === 0 ? this.leader : others[this.fetchRotation % others.length]!;
      this.fetchRotation++;
    }
    if (to < 0 || to === this.me) return;
    this.lastFetchTick = this.tickNo;
    this.send(to, { type: "fetch", from: this.commit + 1, to: this.knownCommit });
  }

  private onFetched(from: number, entries: Array<[number, Value]>, commit: number): void {
    this.learnKnownCommit(from, commit);
    const before = this.commit;
    for (const [s, v] of entries) {
      if (s !== this.commit + 1) continue;
      this.out.entries.push([s, LEARNED, v]);
      this.commitSlot(s, v);
    }
    if (this.commit > before) {
      this.lastFetchTick = -Infinity;
      this.fetchRotation = 0;
      this.maybeFetch(false);
      this.maybeBecomeLeader();
      if (this.role === "leader") this.advanceLeaderCommit();
    }
  }

  private stepDown(why: string): void {
    if (this.role === "follower") return;
    if (this.role === "leader") {
      for (let i = this.queueHead; i < this.queue.length; i++) this.out.dropped.push(this.queue[i]!);
      this.queue = [];
      this.queueHead = 0;
      this.queuedKeys.clear();
      this.inflight.clear();
    }
    this.out.events.push(`${this.role} of ballot ${this.ballot} steps down: ${why}`);
    this.role = "follower";
    this.leader = -1;
    this.firstTerm = false;
    this.promises = new Map();
    this.candEntries = new Map();
    this.resetElectionTimer();
  }
}
