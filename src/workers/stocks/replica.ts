import { ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
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
  type Health,
  type LogState,
  type LogStateOk,
  type LogTail,
  type LogTailOk,
  type PlaceOrder,
  type ReplicaConfig,
  type SetLeader,
  type TradeOk,
  type UnloggedOk,
} from "./messages.ts";
import { OrderLog } from "./orders.ts";

/**
 * An order replica. The frontend names the leader and its epoch (raft's term); the leader records
 * trades and pushes them to followers with raft's AppendEntries rules, so logs converge whatever
 * the crash pattern. States:
 *
 *   recovering ──caught up──▶ follower ──set_leader(me)──▶ candidate ──caught up──▶ leader
 *        ▲                        ▲                            │                      │
 *      (boot)                     └──── newer epoch seen ──────┴──────────────────────┘
 *
 * A recovering or candidate replica pulls the most up-to-date log among its peers before it
 * serves, so a rejoining replica and a new leader both start from everything the survivors hold.
 */
type State = "recovering" | "follower" | "candidate" | "leader";

const PROBE_TIMEOUT_MS = 250;
/** How long a booting replica waits for silent peers before serving with what it could gather. */
const RECOVERY_WAIT_MS = 1000;
const PULL_TIMEOUT_MS = 1000;
const APPEND_TIMEOUT_MS = 250;
const CATALOG_TIMEOUT_MS = 600;
const HEARTBEAT_MS = 100;
/** Consecutive unanswered appends before a follower counts as down: one lost message is not a death. */
const DOWN_AFTER_MISSES = 3;
const PULL_ATTEMPTS = 3;
/** Orders a leader holds awaiting replication before it refuses more. */
const MAX_PENDING = 10_000;
/** A leader asks the catalog for applied-but-unlogged trades every this many heartbeats. */
const SWEEP_EVERY = 2;
/** How often any replica hands trades dropped from its log back to the catalog. */
const REOPEN_MS = 300;
/** Request ids awaiting a `logged` to the catalog; beyond it they wait for the next sweep. */
const MAX_CONFIRMS = 4 * LOG_BATCH;

interface Peer {
  id: string;
  /** Next number to send (raft's nextIndex). */
  next: number;
  /** Highest number known replicated there (raft's matchIndex). */
  match: number;
  /** False once it failed to answer DOWN_AFTER_MISSES appends in a row: acks stop waiting for it until it answers again. */
  up: boolean;
  misses: number;
  inflight: boolean;
}

interface Waiter {
  n: number;
  gen: number;
  resolve(): void;
  reject(e: RpcError): void;
}

const notLeader = () => new RpcError(ErrorCode.TemporarilyUnavailable, E.notLeader);

export const replica = defineRole<ReplicaConfig>((node) => {
  const { catalog } = node.config;
  const others = node.config.replicas.filter((r) => r !== node.id);
  const db = node.storage;
  const log = new OrderLog(db);

  let state: State = "recovering";
  let epoch = db.get<number>("meta/epoch") ?? 0;
  let leader: string | undefined;
  /** Bumped on every state change: an async step started under an older generation gives up. */
  let gen = 0;
  let peers = new Map<string, Peer>();
  let waiters: Waiter[] = [];
  let heartbeat: number | undefined;
  /** The generation whose leader sweep is in flight (-1: none). */
  let sweepGen = -1;
  /** Trades in the replicated log the catalog has not yet been told about. */
  let confirms: string[] = [];

  function adoptEpoch(e: number): void {
    if (e <= epoch) return;
    epoch = e;
    db.put("meta/epoch", e);
  }

  function transition(to: State): number {
    if (heartbeat !== undefined) node.clearTimer(heartbeat);
    heartbeat = undefined;
    const failed = waiters;
    waiters = [];
    confirms = [];
    sweepGen = -1;
    for (const w of failed) w.reject(notLeader());
    state = to;
    return ++gen;
  }

  /** A newer leader exists: stop leading (or trying to); a recovering replica keeps recovering. */
  function stepDown(e: number, newLeader: string | undefined): void {
    adoptEpoch(e);
    leader = newLeader;
    if (state === "leader" || state === "candidate") {
      node.log.info("stepping down", { epoch, leader: newLeader });
      transition("follower");
    }
  }

  // ---- catching up: pull the best peer's log ----

  async function catchUp(g: number, deadline: number): Promise<void> {
    const answered = new Map<string, LogStateOk>();
    for (;;) {
      const missing = others.filter((p) => !answered.has(p));
      const replies = await Promise.all(missing.map((p) => node.request<LogStateOk>(p, { type: "log_state" }, { timeoutMs: PROBE_TIMEOUT_MS }).catch(() => null)));
      if (gen !== g) return;
      missing.forEach((p, i) => {
        const r = replies[i];
        if (r && isIndex(r.last, -1) && isIndex(r.lastEpoch) && isIndex(r.epoch)) answered.set(p, r);
      });
      if (answered.size === others.length || node.now() >= deadline) break;
      await node.sleep(PROBE_TIMEOUT_MS / 5);
      if (gen !== g) return;
    }
    let best: string | undefined;
    let bestState = { lastEpoch: log.lastEpoch, last: log.last };
    for (const [p, r] of answered) {
      // A candidate that learns of a newer epoch was superseded while it gathered: give up.
      if (r.epoch > epoch && state === "candidate") return stepDown(r.epoch, undefined);
      adoptEpoch(r.epoch);
      if (r.lastEpoch > bestState.lastEpoch || (r.lastEpoch === bestState.lastEpoch && r.last > bestState.last)) {
        best = p;
        bestState = r;
      }
    }
    if (best) await pullFrom(best, g);
  }

  /** Fetch `peer`'s log after ours, backing up (raft-style) past any entries where we disagree. */
  async function pullFrom(peer: string, g: number): Promise<void> {
    let after = log.last;
    let step = 1;
    for (let round = 0; round < 1_000_000; round++) {
      let r: LogTailOk | null = null;
      for (let attempt = 0; attempt < PULL_ATTEMPTS && r === null && gen === g; attempt++) {
        r = await node.request<LogTailOk>(peer, { type: "log_tail", after, limit: LOG_BATCH }, { timeoutMs: PULL_TIMEOUT_MS }).catch(() => null);
      }
      if (gen !== g) return;
      if (r === null) {
        node.log.warn("catch-up source went silent", { peer, after });
        return;
      }
      if (!(r.prevEpoch === null || isIndex(r.prevEpoch)) || !isEntries(r.entries, after + 1) || !isIndex(r.last, -1)) {
        node.log.warn("malformed log_tail reply", { peer });
        return;
      }
      const res = log.merge(after, r.prevEpoch, r.entries);
      if (!res.ok) {
        after = Math.max(-1, Math.min(res.hint, after - step));
        step *= 2;
        continue;
      }
      after += r.entries.length;
      if (r.entries.length === 0 || after >= r.last) return;
    }
  }

  async function recover(): Promise<void> {
    const g = gen;
    await catchUp(g, node.now() + RECOVERY_WAIT_MS);
    if (gen !== g) return;
    transition("follower");
    node.log.info("recovered", { last: log.last, epoch });
  }

  // ---- leading ----

  function becomeLeader(): void {
    const g = transition("leader");
    peers = new Map(others.map((id) => [id, { id, next: log.last + 1, match: -1, up: true, misses: 0, inflight: false }]));
    let beats = 0;
    heartbeat = node.setInterval(HEARTBEAT_MS, () => {
      if (gen !== g) return;
      for (const p of peers.values()) pump(p);
      flushConfirms();
      if (++beats % SWEEP_EVERY === 0) void sweep(g);
    });
    for (const p of peers.values()) pump(p);
    void sweep(g);
    node.log.info("leading", { epoch, last: log.last });
  }

  // ---- resolving trades the catalog applied but no order records ----

  /**
   * Logs every trade the catalog lists as applied but unlogged (its front end or an earlier leader
   * died between the catalog and the log, or a trade ended in a 503), and confirms those already
   * replicated. Idempotent by request id: a trade already in the log is never logged twice.
   */
  async function sweep(g: number): Promise<void> {
    if (sweepGen === g) return;
    sweepGen = g;
    try {
      const r = await node.request<UnloggedOk>(catalog, { type: "unlogged" }, { timeoutMs: CATALOG_TIMEOUT_MS }).catch(() => null);
      if (gen !== g || r === null) return;
      if (!isTradeRecords(r.trades)) return node.log.warn("malformed unlogged reply");
      let appended = 0;
      for (const t of r.trades) {
        const n = log.numberOf(t.requestId);
        if (n === undefined) {
          log.append({ name: t.name, type: t.tradeType, quantity: t.quantity, requestId: t.requestId, epoch });
          appended++;
        } else if (replicatedTo(n)) confirm(t.requestId);
      }
      if (appended > 0) {
        node.log.info("logged trades the catalog applied without an order", { count: appended, epoch });
        for (const p of peers.values()) pump(p);
      }
    } finally {
      if (sweepGen === g) sweepGen = -1;
    }
  }

  function confirm(requestId: string): void {
    if (confirms.length < MAX_CONFIRMS) confirms.push(requestId);
  }

  function flushConfirms(): void {
    for (let i = 0; i < confirms.length; i += LOG_BATCH) node.send(catalog, { type: "logged", requestIds: confirms.slice(i, i + LOG_BATCH) });
    confirms = [];
  }

  /** Send `p` the next batch it lacks (or a heartbeat); one append in flight per follower. */
  function pump(p: Peer): void {
    if (state !== "leader" || p.inflight) return;
    const prev = p.next - 1;
    const prevEpoch = log.epochAt(prev);
    if (prevEpoch === undefined) {
      p.next = log.last + 1;
      return pump(p);
    }
    const entries = log.tail(prev, LOG_BATCH);
    const g = gen;
    p.inflight = true;
    const body: Append = { type: "append", epoch, prev, prevEpoch, entries, leaderLast: log.last };
    node.request<AppendOk>(p.id, body, { timeoutMs: APPEND_TIMEOUT_MS }).then(
      (r) => {
        if (gen !== g) return;
        p.inflight = false;
        onAppendReply(p, prev, entries.length, r);
      },
      () => {
        if (gen !== g) return;
        p.inflight = false;
        if (++p.misses >= DOWN_AFTER_MISSES) {
          p.up = false;
          settle();
        } else pump(p);
      },
    );
  }

  function onAppendReply(p: Peer, prev: number, sent: number, r: AppendOk): void {
    if (!isIndex(r.epoch)) return;
    p.misses = 0;
    if (r.ok === true) {
      p.up = true;
      p.match = Math.max(p.match, prev + sent);
      p.next = Math.max(p.next, p.match + 1);
      settle();
      if (p.next <= log.last) pump(p);
      return;
    }
    if (r.reason === "stale" && r.epoch > epoch) return stepDown(r.epoch, undefined);
    if (r.reason === "mismatch" && isIndex(r.hint, -1)) {
      p.next = Math.max(0, Math.min(p.next - 1, r.hint + 1));
      pump(p);
    }
  }

  function replicatedTo(n: number): boolean {
    for (const p of peers.values()) if (p.up && p.match < n) return false;
    return true;
  }

  function settle(): void {
    if (waiters.length === 0) return;
    const keep: Waiter[] = [];
    for (const w of waiters) {
      if (w.gen !== gen) w.reject(notLeader());
      else if (replicatedTo(w.n)) w.resolve();
      else keep.push(w);
    }
    waiters = keep;
  }

  /** Resolves once every follower that answers holds order n: then losing the leader cannot lose it. */
  function replicated(n: number, g: number): Promise<void> {
    if (gen !== g) return Promise.reject(notLeader());
    if (replicatedTo(n)) return Promise.resolve();
    return new Promise((resolve, reject) => waiters.push({ n, gen: g, resolve, reject }));
  }

  node.on<PlaceOrder>("place_order", async (msg) => {
    const b = msg.body;
    if (!isRequestId(b.requestId)) throw malformed("place_order needs a requestId");
    if (!isTradeType(b.tradeType)) throw malformed("invalid request type");
    if (!isQuantity(b.quantity)) throw malformed("invalid quantity");
    if (!isName(b.name)) throw new RpcError(ErrorCode.KeyDoesNotExist, E.stockNotFound);
    if (state !== "leader") throw notLeader();
    if (waiters.length >= MAX_PENDING) throw new RpcError(ErrorCode.Overloaded, E.overloaded);
    const g = gen;
    // A retry of a recorded order: answer with its number once it is safely replicated.
    const known = log.numberOf(b.requestId);
    if (known !== undefined) {
      await replicated(known, g);
      confirm(b.requestId);
      return node.reply(msg, { type: "place_order_ok", number: known });
    }
    // Catalog first: only a trade the catalog accepted becomes an order. If we crash or are
    // deposed after this, the catalog still lists the trade as unlogged and the next leader's
    // sweep logs it (or the frontend's retry, same request id, gets there first).
    let t: TradeOk;
    try {
      t = await node.request<TradeOk>(catalog, { type: "trade", requestId: b.requestId, name: b.name, tradeType: b.tradeType, quantity: b.quantity }, { timeoutMs: CATALOG_TIMEOUT_MS });
    } catch (e) {
      if (e instanceof RpcError && e.definite && e.code !== ErrorCode.TemporarilyUnavailable && e.code !== ErrorCode.NodeNotFound) throw e;
      throw new RpcError(ErrorCode.TemporarilyUnavailable, E.catalogUnavailable);
    }
    if (gen !== g) throw notLeader();
    const again = log.numberOf(b.requestId);
    const number = again ?? log.append({ name: b.name, type: b.tradeType, quantity: b.quantity, requestId: b.requestId, epoch }).number;
    for (const p of peers.values()) pump(p);
    await replicated(number, g);
    confirm(b.requestId);
    node.reply(msg, { type: "place_order_ok", number, version: isIndex(t.version) ? t.version : undefined });
  });

  node.on<GetOrder>("get_order", (msg) => {
    if (state !== "leader") throw notLeader();
    const n = msg.body.number;
    const o = isIndex(n) ? log.get(n) : undefined;
    if (!o) throw new RpcError(ErrorCode.KeyDoesNotExist, E.orderNotFound);
    node.reply(msg, { type: "get_order_ok", order: { number: o.number, name: o.name, type: o.type, quantity: o.quantity } });
  });

  // ---- following ----

  node.on<SetLeader>("set_leader", async (msg) => {
    const { leader: l, epoch: e } = msg.body;
    if (typeof l !== "string" || !node.config.replicas.includes(l) || !isIndex(e, 1)) throw malformed("set_leader needs a replica id and an epoch ≥ 1");
    if (e < epoch) throw new RpcError(ErrorCode.PreconditionFailed, `stale epoch ${e} < ${epoch}`);
    if (l !== node.id) {
      stepDown(e, l);
      return node.reply(msg, { type: "set_leader_ok" });
    }
    if (state === "leader" && e === epoch) return node.reply(msg, { type: "set_leader_ok" });
    if (state === "recovering") throw new RpcError(ErrorCode.TemporarilyUnavailable, E.recovering);
    adoptEpoch(e);
    leader = node.id;
    const g = transition("candidate");
    // Take over only with everything the reachable survivors hold; a second probe round keeps one
    // lost message from hiding a survivor.
    await catchUp(g, node.now() + PROBE_TIMEOUT_MS);
    if (gen !== g) throw notLeader();
    becomeLeader();
    node.reply(msg, { type: "set_leader_ok" });
  });

  node.on<Append>("append", (msg) => {
    const b = msg.body;
    if (!isIndex(b.epoch, 1) || !isIndex(b.prev, -1) || !isIndex(b.prevEpoch) || !isIndex(b.leaderLast, -1) || !isEntries(b.entries, b.prev + 1)) {
      throw malformed("malformed append");
    }
    if (b.epoch < epoch) return node.reply(msg, { type: "append_ok", ok: false, reason: "stale", epoch, last: log.last } satisfies AppendOk);
    if (b.epoch > epoch || state === "leader" || state === "candidate") stepDown(b.epoch, msg.src);
    leader = msg.src;
    if (state === "recovering") throw new RpcError(ErrorCode.TemporarilyUnavailable, E.recovering);
    const res = log.merge(b.prev, b.prevEpoch, b.entries);
    if (!res.ok) return node.reply(msg, { type: "append_ok", ok: false, reason: "mismatch", hint: res.hint, epoch, last: log.last } satisfies AppendOk);
    // Entries past the leader's log from an older epoch were never acknowledged (the leader that
    // wrote them could not replicate them here and to the new leader): drop them.
    if (log.last > b.leaderLast && log.lastEpoch < b.epoch) log.truncateFrom(b.leaderLast + 1);
    node.reply(msg, { type: "append_ok", ok: true, last: b.prev + b.entries.length, epoch } satisfies AppendOk);
  });

  // Answered in every state: a recovering peer's durable log is as good a source as any.
  node.on<LogState>("log_state", (msg) => {
    node.reply(msg, { type: "log_state_ok", last: log.last, lastEpoch: log.lastEpoch, epoch } satisfies LogStateOk);
  });

  node.on<LogTail>("log_tail", (msg) => {
    const { after, limit } = msg.body;
    if (!isIndex(after, -1) || !isIndex(limit, 1)) throw malformed("log_tail needs after ≥ -1 and limit ≥ 1");
    const prevEpoch = log.epochAt(after) ?? null;
    node.reply(msg, { type: "log_tail_ok", prevEpoch, entries: log.tail(after, Math.min(limit, LOG_BATCH)), last: log.last } satisfies LogTailOk);
  });

  node.on<Health>("health", (msg) => {
    node.reply(msg, { type: "health_ok", ready: state !== "recovering", leading: state === "leader", epoch, last: log.last });
  });

  // Trades dropped from this log go back to the catalog's unlogged list, whatever our state.
  let reopening = false;
  node.setInterval(REOPEN_MS, async () => {
    if (reopening || log.dropped === 0) return;
    reopening = true;
    const trades = log.droppedTrades(LOG_BATCH);
    const ok = await node.request(catalog, { type: "reopen", trades }, { timeoutMs: CATALOG_TIMEOUT_MS }).then(
      () => true,
      () => false,
    );
    reopening = false;
    if (ok) log.forgetDropped(trades.map((t) => t.requestId));
  });

  void recover();

  return {
    inspect: () => ({ state, epoch, leader, last: log.last, lastEpoch: log.lastEpoch, digest: log.digest(), dropped: log.dropped }),
  };
});
