import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, defineRole, type Message, type NodeContext } from "../runtime/types.ts";
import { ChatLog } from "./chat.ts";
import { PaxosCore, type DurableState, type Ready } from "./core.ts";
import {
  DEFAULT_REPLICA_CONFIG,
  PEER_TYPES,
  decodeValue,
  fromLegacySeparators,
  encodePeerMsg,
  encodeValue,
  PaxosLimits,
  opProblem,
  parsePeerMsg,
  type ChatBatchRequest,
  type ChatRequest,
  type LogRead,
  type Op,
  type PaxosReplicaConfig,
  type ReplicaSnapshot,
  type WireValue,
} from "./messages.ts";

/** Client requests a replica holds awaiting execution; beyond it, new ones are refused (Overloaded). */
const MAX_PENDING = 200_000;
/** A pending client request older than this is forgotten (its client retried long ago). */
const PENDING_TTL_MS = 10_000;
/** Slots in one fetch / log_read reply. */
const MAX_READ_SLOTS = 1024;
/** Slots read from storage per page at start. */
const LOAD_PAGE = 2048;

const SLOT_PREFIX = "s/";

function slotOf(key: string): number {
  return Number(key.slice(SLOT_PREFIX.length));
}

/**
 * Read chosen values [from, min(to, commit)] from storage, contiguous, under the message size budget.
 * Values stay encoded (as stored and as sent).
 */
function readChosen(node: NodeContext, from: number, to: number, commit: number): Array<[number, WireValue]> {
  const last = Math.min(to, commit, from + MAX_READ_SLOTS - 1);
  if (from > last) return [];
  const rows = node.storage.scan<[number, WireValue]>({ start: seqKey(SLOT_PREFIX, from), end: seqKey(SLOT_PREFIX, last + 1) });
  const out: Array<[number, WireValue]> = [];
  let chars = 0;
  let expect = from;
  for (const [k, [, v]] of rows) {
    const s = slotOf(k);
    if (s !== expect) break; // a hole would be a bug: stop at it rather than send a gap
    chars += (v?.length ?? 0) + 16;
    if (out.length > 0 && chars > PaxosLimits.maxMessageEntryBytes) break;
    out.push([s, v]);
    expect++;
  }
  return out;
}

/**
 * A Multi-Paxos replica: a thin shell around PaxosCore. It loads durable state, feeds the core
 * messages, ticks and client ops, writes each Ready to storage (one transaction) BEFORE sending its
 * messages, then executes chosen slots on the chat log and answers clients.
 */
export const paxosReplica = defineRole<PaxosReplicaConfig>((node) => {
  const cfg: PaxosReplicaConfig = { ...DEFAULT_REPLICA_CONFIG, ...node.config } as PaxosReplicaConfig;
  const replicas = cfg.replicas;
  const me = replicas.indexOf(node.id);
  if (me < 0) throw new Error(`${node.id} is not in the replica list ${replicas.join(", ")}`);
  const rank = new Map(replicas.map((r, i) => [r, i] as const));
  const st = node.storage;

  // ---- load durable state
  const meta = st.get<{ n: number }>("meta");
  if (meta && meta.n !== replicas.length) throw new Error(`stored state is for ${meta.n} replicas, configured ${replicas.length}`);
  const durable: DurableState = { promised: st.get<number>("promised") ?? 0, commit: st.get<number>("commit") ?? 0, accepted: [] };
  const chat = new ChatLog();
  for (let start = seqKey(SLOT_PREFIX, 1); ; ) {
    const rows = st.scan<[number, WireValue]>({ start, prefix: SLOT_PREFIX, limit: LOAD_PAGE });
    for (const [k, [b, w]] of rows) {
      const s = slotOf(k);
      let v = decodeValue(w);
      const upgraded = v === undefined ? fromLegacySeparators(w) : undefined;
      if (upgraded !== undefined) {
        v = decodeValue(upgraded);
        // Stored again in today's form (before this node answers anyone), so reads of the log find it.
        if (v !== undefined) st.put(k, [b, upgraded]);
      }
      if (v === undefined) throw new Error(`stored slot ${s} does not decode (wipe the data dir, e.g. with --fresh, to start over)`);
      if (s <= durable.commit) chat.apply(s, v);
      else durable.accepted.push([s, b, v]);
    }
    if (rows.length < LOAD_PAGE) break;
    start = seqKey(SLOT_PREFIX, slotOf(rows[rows.length - 1]![0]) + 1);
  }
  if (chat.applied !== durable.commit) throw new Error(`stored log has ${chat.applied} contiguous chosen slots, commit says ${durable.commit}`);
  const fresh = durable.promised === 0 && durable.commit === 0 && durable.accepted.length === 0;
  if (!meta) st.put("meta", { n: replicas.length });
  // Where the log stood when this run began (the first boot in this process): a data dir kept from
  // an earlier run holds that run's messages, which no client of this run sent.
  if (node.incarnation === 0) {
    let held = durable.commit;
    for (const [s] of durable.accepted) held = Math.max(held, s);
    st.put("runStart", held);
  }
  const runStart = st.get<number>("runStart") ?? 0;
  const firstBoot = fresh && node.incarnation === 0;
  // Restarted and its storage is gone (memory storage: even `meta`, written first thing at every boot,
  // is missing): it may have promised or accepted things it no longer knows, so it must never vote
  // again. It rejoins as a learner.
  const learner = !meta && node.incarnation > 0;
  if (learner) node.log.warn("restarted with no durable state (memory storage): rejoining as a non-voting learner");
  else if (!fresh) node.log.info("recovered durable state", { promised: durable.promised, commit: durable.commit, accepted: durable.accepted.length });

  const core = new PaxosCore(
    {
      n: replicas.length,
      me,
      window: cfg.window,
      maxBatch: cfg.maxBatch,
      queueLimit: cfg.queueLimit,
      heartbeatTicks: cfg.heartbeatTicks,
      electionTicks: cfg.electionTicks,
      resendTicks: cfg.resendTicks,
      skipSlots: me === 0 && firstBoot ? cfg.skipSlots : [],
      leadFirst: me === 0 && firstBoot,
      voter: !learner,
      random: () => node.random.next(),
    },
    durable,
  );

  /** A client request waiting for its ops to execute: one op (chat) or several (chat_batch). Keyed by op id (a retry reuses the id). */
  interface Waiter {
    msg: Message;
    remaining: number;
    at: number;
    settled: boolean;
  }
  const pending = new Map<string, Waiter>();
  let badMessages = 0;
  let sendFailures = 0;

  function settle(w: Waiter, body: { type: string; [k: string]: unknown }): void {
    if (w.settled) return;
    w.settled = true;
    node.reply(w.msg, body);
  }

  /** An op executed (or found already executed): its waiter is answered once all its ops are done. */
  function opDone(key: string): void {
    const w = pending.get(key);
    if (!w) return;
    pending.delete(key);
    if (--w.remaining === 0) settle(w, { type: w.msg.body.type === "chat_batch" ? "chat_batch_ok" : "chat_ok" });
  }

  function opDropped(key: string): void {
    const w = pending.get(key);
    if (!w) return;
    pending.delete(key);
    settle(w, { type: "chat_redirect", leader: null, reason: "not_leader" });
  }

  /** Durable first, then send, then execute. */
  function apply(r: Ready): void {
    if (r.promised !== null || r.entries.length > 0 || r.commit !== null) {
      st.transaction(() => {
        if (r.promised !== null) st.put("promised", r.promised);
        for (const [s, b, v] of r.entries) st.put(seqKey(SLOT_PREFIX, s), [b, encodeValue(v)]);
        if (r.commit !== null) st.put("commit", r.commit);
      });
    }
    const msgs = r.messages;
    for (let i = 0; i < msgs.length; ) {
      // Consecutive sends of one message object (the core's accepts to every follower) go as one
      // fan-out: the body is encoded once for all of them.
      const msg = msgs[i]!.msg;
      let j = i + 1;
      while (j < msgs.length && msgs[j]!.msg === msg) j++;
      try {
        if (j - i === 1) node.send(replicas[msgs[i]!.to]!, encodePeerMsg(msg));
        else node.sendMany(msgs.slice(i, j).map((m) => replicas[m.to]!), encodePeerMsg(msg));
      } catch (e) {
        sendFailures++;
        node.log.warn(`could not send ${msg.type} to ${msgs.slice(i, j).map((m) => replicas[m.to]).join(", ")}: ${e instanceof Error ? e.message : String(e)}`);
      }
      i = j;
    }
    for (const [s, v] of r.execute) {
      const a = chat.apply(s, v);
      // Only the replica that took a client's request holds a waiter for it (a follower, none).
      if (pending.size === 0) continue;
      for (const op of a.executed) opDone(op.id);
      for (const op of a.duplicates) opDone(op.id);
    }
    for (const op of r.dropped) opDropped(op.id);
    for (const e of r.events) node.log.info(e);
  }

  for (const type of PEER_TYPES) {
    node.on(type, (msg) => {
      const from = rank.get(msg.src);
      const m = from === undefined ? null : parsePeerMsg(msg.body);
      if (m === null || from === undefined) {
        badMessages++;
        if (badMessages <= 10) node.log.warn(`ignored a malformed "${msg.body.type}" from ${msg.src}`);
        return;
      }
      if (m.type === "fetch") {
        const entries = readChosen(node, m.from, m.to, core.commit);
        node.send(msg.src, { type: "fetched", entries, commit: core.commit });
        return;
      }
      apply(core.receive(from, m));
    });
  }

  /** Take client ops: answer at once if all are done, redirect if not leader, else wait for execution. */
  function takeOps(msg: Message, ops: Op[]): void {
    const todo = chat.notDone(ops);
    const okType = msg.body.type === "chat_batch" ? "chat_batch_ok" : "chat_ok";
    if (todo.length === 0) {
      node.reply(msg, { type: okType });
      return;
    }
    if (core.role !== "leader") {
      node.reply(msg, { type: "chat_redirect", leader: core.leader >= 0 ? replicas[core.leader]! : null, reason: "not_leader" });
      return;
    }
    if (pending.size + todo.length > MAX_PENDING) {
      node.reply(msg, { type: "chat_redirect", leader: node.id, reason: "overloaded" });
      return;
    }
    const w: Waiter = { msg, remaining: todo.length, at: node.now(), settled: false };
    for (const op of todo) pending.set(op.id, w);
    const { status, ready } = core.submitMany(todo);
    if (status !== "queued") {
      for (const op of todo) if (pending.get(op.id) === w) pending.delete(op.id);
      settle(w, { type: "chat_redirect", leader: status === "overloaded" ? node.id : null, reason: status });
    }
    apply(ready);
  }

  node.on<ChatRequest>("chat", (msg) => {
    const problem = opProblem(msg.body.op);
    if (problem !== null) {
      badMessages++;
      node.replyError(msg, ErrorCode.MalformedRequest, problem);
      return;
    }
    takeOps(msg, [msg.body.op as Op]);
  });

  node.on<ChatBatchRequest>("chat_batch", (msg) => {
    const raw = msg.body.ops;
    if (typeof raw === "string") {
      // The compact form: decodeValue validates every op as it splits them out.
      const ops = decodeValue(raw);
      if (!ops) {
        badMessages++;
        node.replyError(msg, ErrorCode.MalformedRequest, `ops must encode 1..${PaxosLimits.maxBatchOps} well-formed ops`);
        return;
      }
      takeOps(msg, ops);
      return;
    }
    const ops = raw;
    if (!Array.isArray(ops) || ops.length === 0 || ops.length > PaxosLimits.maxBatchOps) {
      badMessages++;
      node.replyError(msg, ErrorCode.MalformedRequest, `ops must be an array of 1..${PaxosLimits.maxBatchOps} ops`);
      return;
    }
    for (const op of ops) {
      const problem = opProblem(op);
      if (problem !== null) {
        badMessages++;
        node.replyError(msg, ErrorCode.MalformedRequest, problem);
        return;
      }
    }
    takeOps(msg, ops as Op[]);
  });

  node.on<LogRead>("log_read", (msg) => {
    const from = msg.body.from;
    const limit = msg.body.limit;
    if (!Number.isSafeInteger(from) || from < 1 || !Number.isSafeInteger(limit) || limit < 1) {
      node.replyError(msg, ErrorCode.MalformedRequest, "log_read needs integer from >= 1 and limit >= 1");
      return;
    }
    const entries = readChosen(node, from, from + Math.min(limit, MAX_READ_SLOTS) - 1, core.commit).map(([s, w]) => [s, decodeValue(w) ?? null]);
    node.reply(msg, { type: "log_read_ok", entries, commit: core.commit });
  });

  apply(core.start());
  let ticks = 0;
  node.setInterval(cfg.tickMs, () => {
    apply(core.tick());
    if (++ticks % 100 === 0 && pending.size > 0) {
      const old = node.now() - PENDING_TTL_MS;
      for (const [k, w] of pending) if (w.at < old) pending.delete(k);
    }
  });

  const snapshot = (): ReplicaSnapshot => ({
    id: node.id,
    role: core.role,
    ballot: core.role === "follower" ? 0 : core.ballot,
    promised: core.promised,
    leader: core.leader >= 0 ? replicas[core.leader]! : null,
    commit: core.commit,
    nextSlot: core.nextSlot,
    queued: core.queued,
    inflight: core.inflightCount,
    hash: chat.hash,
    opsExecuted: chat.opsExecuted,
    dupsSkipped: chat.dupsSkipped,
    noops: chat.noops,
    elections: core.elections,
    leaderTerms: core.leaderTerms,
    badMessages: badMessages + core.badMessages + sendFailures,
    storage: String(node.config.storageMode ?? "os"),
    voter: !learner,
    incarnation: node.incarnation,
    skipSlots: me === 0 && firstBoot ? cfg.skipSlots : [],
    runStart,
  });
  return { inspect: snapshot };
});
