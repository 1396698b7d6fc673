/**
 * The Multi-Paxos chat protocol: client requests, replica-to-replica messages, configuration, limits,
 * and validators for everything that arrives from the network (a bad message is counted and ignored,
 * or answered with MalformedRequest; it never throws inside the protocol core).
 */

/** One chat message as it travels and as it sits in a log slot. */
export interface Op {
  /** Unique message id (node.uid() at the client). */
  id: string;
  /** Client node id: the session. */
  c: string;
  /** The client's sequence number for this message (per session, from 0). */
  s: number;
  /** Low water: every seq below it is acknowledged at the client and will never be retried. */
  lw: number;
  /** The chat text. */
  t: string;
}

/** A slot's value: a batch of chat messages, or null for a no-op (a hole filled by a new leader). */
export type Value = Op[] | null;

/** Hard limits: what exceeds one is refused, never buffered without bound. */
export const PaxosLimits = {
  maxTextChars: 1024,
  maxIdChars: 128,
  /** Ballots above this are refused as malformed (a huge ballot would let one message hijack the cluster). */
  maxBallot: 2 ** 48,
  maxSlot: 2 ** 48,
  /** Ops in one slot. */
  maxBatchOps: 1024,
  /** Estimated bytes of one protocol message's entries before it is split. */
  maxMessageEntryBytes: 256 * 1024,
  /** Entries in one protocol message. */
  maxEntriesPerMessage: 4096,
  /** Slots a leader may have in flight beyond its commit index. */
  maxWindow: 4096,
  /** Client ops a leader queues while its window is full. */
  maxQueue: 100_000,
  /** Longest encoded slot value, in chars. */
  maxEncodedValueChars: 1 << 19,
} as const;

export interface ReplicaTuning {
  /** Slots in flight at once (the window). */
  window: number;
  /** Largest batch of client messages in one slot; 1 turns batching off. */
  maxBatch: number;
  /** Client ops queued at the leader before it answers Overloaded. */
  queueLimit: number;
  tickMs: number;
  heartbeatTicks: number;
  /** Election timeout: a random number of ticks in [electionTicks, 2 * electionTicks). */
  electionTicks: number;
  /** Resend unanswered prepares/accepts/fetches after this many ticks. */
  resendTicks: number;
  /** Slots the first leader leaves empty (the source's test case). */
  skipSlots: number[];
}

export interface PaxosReplicaConfig extends ReplicaTuning {
  /** Replica ids in rank order: replica i leads ballots b with b % n == i. */
  replicas: string[];
  [k: string]: unknown;
}

export const DEFAULT_REPLICA_CONFIG: ReplicaTuning = {
  window: 32,
  maxBatch: 256,
  queueLimit: 20_000,
  tickMs: 10,
  // Election timeout 80-160 ms, heartbeat every 10 ms: a follower notices a dead leader in 120 ms
  // on average (failover well under 200 ms), yet only after 8+ heartbeats in a row went missing or
  // late, so a busy machine's scheduling hiccups rarely start a needless election (and under load
  // every accept resets the timer too). `bench consensus` sweeps the timeout against false elections.
  heartbeatTicks: 1,
  electionTicks: 8,
  resendTicks: 2,
  skipSlots: [],
};

export interface PaxosClientConfig {
  replicas: string[];
  /** Request timeout before retrying at another replica. */
  timeoutMs: number;
  /** Requests outstanding at once (1: one after another, as in the source). */
  pipeline: number;
  /** Messages per request (1: one chat request per message; more: chat_batch). */
  batch?: number;
  /** Gap between a lane's requests, ms (0: as fast as replies come). */
  intervalMs: number;
  /** Chat text length. */
  textChars: number;
  /** Stop after this many messages (0: no limit). */
  maxMessages?: number;
  /** Keep the ids of acknowledged messages (for checks); off for benchmarks. */
  recordAcked: boolean;
  [k: string]: unknown;
}

// ---- client <-> replica ----

export interface ChatRequest {
  type: "chat";
  op: Op;
  [k: string]: unknown;
}
/**
 * Several messages in one request (a pipelining client); answered once all are executed. `ops` is
 * either an array of ops or the same ops as one encoded string (see encodeValue): one string is
 * far cheaper to clone between threads than an array of objects.
 */
export interface ChatBatchRequest {
  type: "chat_batch";
  ops: Op[] | string;
  [k: string]: unknown;
}
export interface ChatOk {
  type: "chat_ok" | "chat_batch_ok";
  [k: string]: unknown;
}
/** Definite: the replica did not take the message (not the leader, or overloaded); `leader` is a hint. */
export interface ChatRedirect {
  type: "chat_redirect";
  leader: string | null;
  reason: "not_leader" | "overloaded";
  [k: string]: unknown;
}

// ---- replica <-> replica (fire and forget) ----

/** Phase 1a: promise not to accept ballots below b; report accepted values for slots >= from. */
export interface Prepare {
  type: "prepare";
  b: number;
  from: number;
}
/** Phase 1b. ok=false carries the higher promise. Entries [slot, ballot, value] are accepted but not known chosen. */
export interface Promise_ {
  type: "promise";
  b: number;
  ok: boolean;
  promised: number;
  commit: number;
  entries: Array<[number, number, Value]>;
  /** Slot to ask from for the rest, or null when complete. */
  next: number | null;
}
/** Phase 2a, for several slots; commit piggybacks the leader's commit index. */
export interface Accept {
  type: "accept";
  b: number;
  entries: Array<[number, Value]>;
  commit: number;
}
export interface Accepted {
  type: "accepted";
  b: number;
  ok: boolean;
  promised: number;
  slots: number[];
}
export interface Heartbeat {
  type: "heartbeat";
  b: number;
  commit: number;
}
export interface HeartbeatOk {
  type: "heartbeat_ok";
  b: number;
  ok: boolean;
  promised: number;
  commit: number;
}
/** Ask for chosen values of slots [from, to]. */
export interface Fetch {
  type: "fetch";
  from: number;
  to: number;
}
/** Chosen values, contiguous from the requested slot. */
export interface Fetched {
  type: "fetched";
  entries: Array<[number, Value]>;
  commit: number;
}

export type PeerMsg = Prepare | Promise_ | Accept | Accepted | Heartbeat | HeartbeatOk | Fetch | Fetched;
export const PEER_TYPES = ["prepare", "promise", "accept", "accepted", "heartbeat", "heartbeat_ok", "fetch", "fetched"] as const;

// ---- driver -> replica ----
export interface LogRead {
  type: "log_read";
  from: number;
  limit: number;
  [k: string]: unknown;
}
export interface LogReadOk {
  type: "log_read_ok";
  entries: Array<[number, Value]>;
  commit: number;
  [k: string]: unknown;
}

/** What a replica's inspect() returns. */
export interface ReplicaSnapshot {
  id: string;
  role: "follower" | "candidate" | "leader";
  ballot: number;
  promised: number;
  leader: string | null;
  commit: number;
  nextSlot: number;
  queued: number;
  inflight: number;
  /** Chain hash of the executed log (slots 1..commit), hex. */
  hash: string;
  opsExecuted: number;
  dupsSkipped: number;
  noops: number;
  elections: number;
  leaderTerms: number;
  badMessages: number;
  storage: string;
  /** False once a replica restarted without its state (memory storage): it only learns. */
  voter: boolean;
  incarnation: number;
  skipSlots: number[];
  /** The highest slot this replica held (chosen or accepted) when this run began: the log outlives runs. */
  runStart: number;
}

export interface ClientSnapshot {
  sent: number;
  acked: number;
  /** Messages refused for good (malformed, too large): never retried. */
  refused: number;
  retries: number;
  redirects: number;
  timeouts: number;
  latenciesMs: number[];
  ackedIds: string[];
  stopped: boolean;
  inflight: number;
  /** Longest time between two acknowledgements (client-observed stall). */
  maxGapMs: number;
}

// ---- validation ----

const isInt = (x: unknown, max: number): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0 && x <= max;
const isBallot = (x: unknown): x is number => isInt(x, PaxosLimits.maxBallot);
const isSlot = (x: unknown): x is number => isInt(x, PaxosLimits.maxSlot);
const isStr = (x: unknown, max: number): x is string => typeof x === "string" && x.length <= max;

/** Null when op is well formed, otherwise what is wrong with it. */
export function opProblem(op: unknown): string | null {
  if (typeof op !== "object" || op === null || Array.isArray(op)) return "op must be an object";
  const o = op as Record<string, unknown>;
  if (!isStr(o.id, PaxosLimits.maxIdChars) || o.id.length === 0) return `op.id must be a non-empty string of at most ${PaxosLimits.maxIdChars} chars`;
  if (!isStr(o.c, PaxosLimits.maxIdChars) || o.c.length === 0) return "op.c (client) must be a non-empty string";
  if (!isInt(o.s, Number.MAX_SAFE_INTEGER)) return "op.s (seq) must be a non-negative integer";
  if (!isInt(o.lw, Number.MAX_SAFE_INTEGER) || o.lw > o.s) return "op.lw must be an integer in [0, op.s]";
  if (!isStr(o.t, PaxosLimits.maxTextChars)) return `op.t (text) must be a string of at most ${PaxosLimits.maxTextChars} chars`;
  if (SEPARATORS.test(o.id) || SEPARATORS.test(o.c) || SEPARATORS.test(o.t)) return "op fields must not contain the characters U+009E or U+009F";
  return null;
}

// ---- compact encoding of slot values (wire and storage) ----
//
// A batch travels and is stored as ONE string: ops separated by U+009E, fields by U+009F. Cloning
// or packing one string is several times cheaper than an array of objects, and the leader encodes
// each batch once for all followers and its own storage. A no-op stays null.
//
// The separators are C1 control characters: like U+001E/U+001F (used before) they have no business
// in chat text, but JSON leaves them as they are, and a message goes to a port as JSON text: with
// U+001E/U+001F every separator became a six-character escape (~30 of ~100 characters per op),
// and escaping and unescaping them made a JSON round trip ~15x dearer per op (0.42 vs 0.02 us). They
// also keep the string one byte per character in the engine (they are below U+0100).

const OP_SEP = "\u009e";
const FIELD_SEP = "\u009f";
const SEPARATORS = /[\u009e\u009f]/;

const LEGACY_SEPARATORS = /[\u001e\u001f]/;

/**
 * A slot stored before the separators changed (U+001E between ops, U+001F between fields; same
 * fields, same order), in today's form; undefined when `w` is not one. Text of that time could
 * hold U+009E/U+009F, which would now read as separators: such a value is not converted.
 */
export function fromLegacySeparators(w: unknown): string | undefined {
  if (typeof w !== "string" || !LEGACY_SEPARATORS.test(w) || SEPARATORS.test(w)) return undefined;
  return w.replaceAll("\u001e", OP_SEP).replaceAll("\u001f", FIELD_SEP);
}

/** A slot value as it travels and is stored. */
export type WireValue = string | null;

const encoded = new WeakMap<Op[], string>();
/**
 * The first op of each decoded batch, to that batch. A leader's slot is mostly whole client
 * batches back to back, decoded from strings it still holds: encodeValue splices those strings
 * rather than re-encoding op by op (the leader's biggest per-op cost after decoding).
 */
const batchOf = new WeakMap<Op, Op[]>();

/** v[at..] starts with exactly the ops of run (the same objects). */
function startsWithRun(v: Op[], at: number, run: Op[]): boolean {
  if (at + run.length > v.length) return false;
  for (let k = 0; k < run.length; k++) if (v[at + k] !== run[k]) return false;
  return true;
}

/** One op's encoding (fields validated by the caller: none may hold a separator). */
export function encodeOp(id: string, c: string, s: number, lw: number, t: string): string {
  return `${id}${FIELD_SEP}${c}${FIELD_SEP}${s}${FIELD_SEP}${lw}${FIELD_SEP}${t}`;
}

/**
 * A batch's encoding from its ops' encodings (encodeOp): what a client sends without building an
 * op object per message first. One join makes a flat string; concatenating op by op made a rope
 * that the port then had to flatten.
 */
export function joinOps(encodedOps: string[]): string {
  return encodedOps.join(OP_SEP);
}

export function encodeValue(v: Value): WireValue {
  if (v === null) return null;
  let e = encoded.get(v);
  if (e === undefined) {
    e = "";
    for (let i = 0; i < v.length; ) {
      const op = v[i]!;
      const sep = i === 0 ? "" : OP_SEP;
      const run = batchOf.get(op);
      const w = run === undefined ? undefined : encoded.get(run);
      if (w !== undefined && startsWithRun(v, i, run!)) {
        e += sep + w;
        i += run!.length;
      } else {
        e += sep + encodeOp(op.id, op.c, op.s, op.lw, op.t);
        i++;
      }
    }
    encoded.set(v, e);
  }
  return e;
}

const MAX_DIGITS = 16;

/**
 * A non-negative decimal integer in w[from, to), digits only and no leading zero (so an encoding
 * is canonical: the chain hash covers the encoded value); -1 when it is not one (or not safe).
 */
function digitsAt(w: string, from: number, to: number): number {
  if (to <= from || to - from > MAX_DIGITS) return -1;
  if (to - from > 1 && w.charCodeAt(from) === 48) return -1;
  let n = 0;
  for (let i = from; i < to; i++) {
    const d = w.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return Number.isSafeInteger(n) ? n : -1;
}

/**
 * Decode and validate; undefined when malformed. Hot (every op of every slot, at the leader from
 * clients and at every follower), so it walks the string once with indexOf rather than splitting it
 * twice, parses the numbers in place, and shares one string for a client id repeated op after op.
 * Fields cannot hold a separator: each ends at the next one, and every op must have exactly five.
 */
export function decodeValue(w: unknown): Value | undefined {
  if (w === null) return null;
  if (typeof w !== "string" || w.length === 0 || w.length > PaxosLimits.maxEncodedValueChars) return undefined;
  const ops: Op[] = [];
  const n = w.length;
  let prevC = "";
  let i = 0;
  for (;;) {
    if (ops.length >= PaxosLimits.maxBatchOps) return undefined;
    let end = w.indexOf(OP_SEP, i);
    if (end < 0) end = n;
    const f1 = w.indexOf(FIELD_SEP, i);
    if (f1 < 0 || f1 >= end) return undefined;
    const f2 = w.indexOf(FIELD_SEP, f1 + 1);
    if (f2 < 0 || f2 >= end) return undefined;
    const f3 = w.indexOf(FIELD_SEP, f2 + 1);
    if (f3 < 0 || f3 >= end) return undefined;
    const f4 = w.indexOf(FIELD_SEP, f3 + 1);
    if (f4 < 0 || f4 >= end) return undefined;
    const f5 = w.indexOf(FIELD_SEP, f4 + 1);
    if (f5 >= 0 && f5 < end) return undefined;
    const idLen = f1 - i;
    const cLen = f2 - f1 - 1;
    if (idLen === 0 || idLen > PaxosLimits.maxIdChars || cLen === 0 || cLen > PaxosLimits.maxIdChars || end - f4 - 1 > PaxosLimits.maxTextChars) return undefined;
    const s = digitsAt(w, f2 + 1, f3);
    const lw = digitsAt(w, f3 + 1, f4);
    if (s < 0 || lw < 0 || lw > s) return undefined;
    const c = cLen === prevC.length && w.startsWith(prevC, f1 + 1) ? prevC : (prevC = w.slice(f1 + 1, f2));
    ops.push({ id: w.slice(i, f1), c, s, lw, t: w.slice(f4 + 1, end) });
    if (end === n) break;
    i = end + 1;
  }
  encoded.set(ops, w);
  batchOf.set(ops[0]!, ops);
  return ops;
}

export function isValue(v: unknown): v is Value {
  if (v === null) return true;
  if (!Array.isArray(v) || v.length === 0 || v.length > PaxosLimits.maxBatchOps) return false;
  for (const op of v) if (opProblem(op) !== null) return false;
  return true;
}

function entries2(x: unknown): Array<[number, Value]> | null {
  if (!Array.isArray(x) || x.length > PaxosLimits.maxEntriesPerMessage) return null;
  const out: Array<[number, Value]> = new Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const e = x[i];
    if (!Array.isArray(e) || e.length !== 2 || !isSlot(e[0]) || e[0] === 0) return null;
    const v = decodeValue(e[1]);
    if (v === undefined) return null;
    out[i] = [e[0], v];
  }
  return out;
}

function entries3(x: unknown): Array<[number, number, Value]> | null {
  if (!Array.isArray(x) || x.length > PaxosLimits.maxEntriesPerMessage) return null;
  const out: Array<[number, number, Value]> = new Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const e = x[i];
    if (!Array.isArray(e) || e.length !== 3 || !isSlot(e[0]) || e[0] === 0 || !isBallot(e[1])) return null;
    const v = decodeValue(e[2]);
    if (v === undefined) return null;
    out[i] = [e[0], e[1], v];
  }
  return out;
}

/** A peer message as sent: slot values encoded (see encodeValue). */
export function encodePeerMsg(m: PeerMsg): Record<string, unknown> & { type: string } {
  switch (m.type) {
    case "promise":
      return { ...m, entries: m.entries.map(([s, b, v]) => [s, b, encodeValue(v)]) };
    case "accept":
    case "fetched":
      return { ...m, entries: m.entries.map(([s, v]) => [s, encodeValue(v)]) };
    default:
      return m as unknown as Record<string, unknown> & { type: string };
  }
}

/** Parse a replica-to-replica message body; null when malformed. */
export function parsePeerMsg(body: Record<string, unknown>): PeerMsg | null {
  const b = body;
  switch (b.type) {
    case "prepare":
      return isBallot(b.b) && isSlot(b.from) ? { type: "prepare", b: b.b, from: b.from } : null;
    case "promise": {
      if (!isBallot(b.b) || typeof b.ok !== "boolean" || !isBallot(b.promised) || !isSlot(b.commit)) return null;
      if (b.next !== null && !isSlot(b.next)) return null;
      const entries = entries3(b.entries);
      return entries ? { type: "promise", b: b.b, ok: b.ok, promised: b.promised, commit: b.commit, entries, next: b.next as number | null } : null;
    }
    case "accept": {
      if (!isBallot(b.b) || !isSlot(b.commit)) return null;
      const entries = entries2(b.entries);
      return entries ? { type: "accept", b: b.b, entries, commit: b.commit } : null;
    }
    case "accepted":
      if (!isBallot(b.b) || typeof b.ok !== "boolean" || !isBallot(b.promised)) return null;
      if (!Array.isArray(b.slots) || b.slots.length > PaxosLimits.maxEntriesPerMessage || !b.slots.every(isSlot)) return null;
      return { type: "accepted", b: b.b, ok: b.ok, promised: b.promised, slots: b.slots as number[] };
    case "heartbeat":
      return isBallot(b.b) && isSlot(b.commit) ? { type: "heartbeat", b: b.b, commit: b.commit } : null;
    case "heartbeat_ok":
      return isBallot(b.b) && typeof b.ok === "boolean" && isBallot(b.promised) && isSlot(b.commit)
        ? { type: "heartbeat_ok", b: b.b, ok: b.ok, promised: b.promised, commit: b.commit }
        : null;
    case "fetch":
      return isSlot(b.from) && isSlot(b.to) && b.from >= 1 && b.to >= b.from ? { type: "fetch", from: b.from, to: b.to } : null;
    case "fetched": {
      if (!isSlot(b.commit)) return null;
      const entries = entries2(b.entries);
      return entries ? { type: "fetched", entries, commit: b.commit } : null;
    }
    default:
      return null;
  }
}

/** Rough size of a value in bytes, for splitting messages under the runtime's size limit. */
export function valueBytes(v: Value): number {
  if (v === null) return 16;
  let n = 16;
  for (const op of v) n += opBytes(op);
  return n;
}

/** One op's share of valueBytes. */
export function opBytes(op: Op): number {
  return 48 + op.id.length + op.c.length + op.t.length * 2;
}

/** Parse "3,5" into [3, 5]; throws on anything else. */
export function parseSlotList(s: unknown): number[] {
  if (s === undefined || s === null || s === "" || s === false) return [];
  if (typeof s === "number") s = String(s);
  if (Array.isArray(s)) s = s.join(",");
  if (typeof s !== "string") throw new Error(`--skip-slots must look like "3,5"`);
  const out = s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0)
    .map((x) => {
      const n = Number(x);
      if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new Error(`--skip-slots: "${x}" is not a slot number (1..1000000)`);
      return n;
    });
  return [...new Set(out)].sort((a, b) => a - b);
}
