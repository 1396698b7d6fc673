import { assert } from "../runtime/assert.ts";
import { encodeValue, type Op, type Value } from "./messages.ts";

/** Sessions tracked before the oldest is forgotten (bounded memory). */
const MAX_SESSIONS = 100_000;
/** Executed seqs remembered above a session's floor: more means a client broke the pipeline contract. */
const MAX_DONE_PER_SESSION = 65_536;

interface Session {
  /**
   * Every seq below low is executed or will never be sent again (below the client's low water).
   * Seqs mostly execute in order, so most ops only move low up by one.
   */
  low: number;
  /** Executed seqs above low (out of order), and some below it until the next sweep. */
  done: Set<number>;
  /** Sweep seqs below low out of `done` once it holds more than this. */
  sweepAt: number;
}

/** Whether the session has executed seq (or will never see it again: below the client's low water). */
function hasRun(s: Session | undefined, seq: number): boolean {
  return s !== undefined && (seq < s.low || s.done.has(seq));
}

/** The smallest sweep threshold: below it, stale seqs are left in place. */
const SWEEP_MIN = 1024;

/** What applying one slot did. */
export interface Applied {
  slot: number;
  /** Ops executed now, in order. */
  executed: Op[];
  /** Ops skipped as duplicates (a retry already executed). */
  duplicates: Op[];
  noop: boolean;
}

/**
 * The replicated state machine: the chat log with exactly-once execution. Pure and deterministic:
 * the same slots in the same order give the same state and hash on every replica. A message is
 * identified by its session (client id) and seq; a retry or a network duplicate of an executed
 * message is skipped. Per session, seqs below the client's low water are forgotten.
 */
export class ChatLog {
  private readonly sessions = new Map<string, Session>();
  /** Slots applied: the executed log is slots 1..applied. */
  applied = 0;
  opsExecuted = 0;
  dupsSkipped = 0;
  noops = 0;
  private h = 0n;

  /** Chain hash of the executed log, hex. */
  get hash(): string {
    return this.h.toString(16).padStart(16, "0");
  }

  /** True when this (client, seq) has been executed (or is below the client's low water). */
  isDone(client: string, seq: number): boolean {
    return hasRun(this.sessions.get(client), seq);
  }

  /** The ops not yet executed (isDone false), in order; a run of one client's ops looks its session up once. */
  notDone(ops: Op[]): Op[] {
    const out: Op[] = [];
    let lastC: string | null = null;
    let s: Session | undefined;
    for (const op of ops) {
      if (op.c !== lastC) {
        s = this.sessions.get(op.c);
        lastC = op.c;
      }
      if (!hasRun(s, op.s)) out.push(op);
    }
    return out;
  }

  apply(slot: number, value: Value): Applied {
    assert(slot === this.applied + 1, `apply slot ${slot} after ${this.applied} (must be contiguous)`);
    this.applied = slot;
    this.h = chainSlot(this.h, slot, value);
    if (value === null) {
      this.noops++;
      return { slot, executed: [], duplicates: [], noop: true };
    }
    const executed: Op[] = [];
    const duplicates: Op[] = [];
    // A batch usually holds runs of one client's ops: look its session up once per run.
    let lastC: string | null = null;
    let s: Session | undefined;
    for (const op of value) {
      if (op.c !== lastC) {
        s = this.sessions.get(op.c);
        lastC = op.c;
      }
      if (!s) {
        if (this.sessions.size >= MAX_SESSIONS) {
          const oldest = this.sessions.keys().next().value!;
          this.sessions.delete(oldest);
        }
        s = { low: 0, done: new Set(), sweepAt: SWEEP_MIN };
        this.sessions.set(op.c, s);
      }
      const q = op.s;
      if (hasRun(s, q)) {
        duplicates.push(op);
        this.dupsSkipped++;
      } else {
        if (q === s.low) s.low++;
        else s.done.add(q);
        executed.push(op);
        this.opsExecuted++;
      }
      if (op.lw > s.low) s.low = op.lw;
      // Seqs executed out of order that now sit at low join the prefix.
      if (s.done.size > 0) while (s.done.delete(s.low)) s.low++;
      if (s.done.size > s.sweepAt) {
        // Entries below low are dead weight (low answers for them): sweep them out once `done` has
        // doubled since the last sweep, so a sweep costs O(1) per op amortized.
        for (const x of s.done) if (x < s.low) s.done.delete(x);
        s.sweepAt = Math.min(MAX_DONE_PER_SESSION, Math.max(SWEEP_MIN, 2 * s.done.size));
      }
      if (s.done.size > MAX_DONE_PER_SESSION) {
        // A client that never raises its low water: forget its oldest seqs (it may then get a duplicate executed).
        let min = Infinity;
        for (const x of s.done) if (x < min) min = x;
        s.done.delete(min);
        s.low = Math.max(s.low, min + 1);
        while (s.done.delete(s.low)) s.low++;
      }
    }
    return { slot, executed, duplicates, noop: false };
  }
}

/**
 * The chain hash past one slot: its number, then its value's encoding (or "noop"). The encoding is
 * every field of every op in order (id, client, seq, low water, text) and is canonical (one string
 * per value: decodeValue refuses any other spelling), so equal hashes mean equal logs op for op.
 * It is also what the slot travelled and is stored as, already built (the leader encoded it to send
 * it, a follower received it), so hashing costs one pass over it rather than a string built op by op.
 * The number is hashed first and the result seeds the value's hash: one string of both (`slot|value`)
 * made the engine copy the ~25 KB value into a new string per slot on every replica, ~6x the hash itself.
 */
function chainSlot(h: bigint, slot: number, value: Value): bigint {
  if (value === null) return Bun.hash.wyhash(`${slot}|noop`, h);
  return Bun.hash.wyhash(encodeValue(value)!, Bun.hash.wyhash(`${slot}|`, h));
}

/**
 * Replay a whole log (e.g. read from a replica) through a fresh ChatLog: what a checker uses.
 * `atMark`: how many ops the slots up to `mark` executed.
 */
export function replay(entries: Iterable<[number, Value]>, mark = 0): { log: ChatLog; executed: Op[]; atMark: number } {
  const log = new ChatLog();
  const executed: Op[] = [];
  let atMark = 0;
  for (const [slot, v] of entries) {
    executed.push(...log.apply(slot, v).executed);
    if (slot <= mark) atMark = executed.length;
  }
  return { log, executed, atMark };
}
