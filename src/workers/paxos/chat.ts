import { assert } from "../runtime/assert.ts";
import type { Op, Value } from "./messages.ts";

/** Sessions tracked before the oldest is forgotten (bounded memory). */
const MAX_SESSIONS = 100_000;
/** Executed seqs remembered above a session's floor: more means a client broke the pipeline contract. */
const MAX_DONE_PER_SESSION = 65_536;

interface Session {
  /** Every seq below floor is executed or will never be sent again. */
  floor: number;
  /** Executed seqs >= floor (and some below it, until the next sweep). */
  done: Set<number>;
  /** Sweep seqs below floor out of `done` once it holds more than this. */
  sweepAt: number;
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
    const s = this.sessions.get(client);
    return s !== undefined && (seq < s.floor || s.done.has(seq));
  }

  apply(slot: number, value: Value): Applied {
    assert(slot === this.applied + 1, `apply slot ${slot} after ${this.applied} (must be contiguous)`);
    this.applied = slot;
    this.h = Bun.hash.wyhash(slotDigestText(slot, value), this.h);
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
        s = { floor: 0, done: new Set(), sweepAt: SWEEP_MIN };
        this.sessions.set(op.c, s);
      }
      if (op.s < s.floor || s.done.has(op.s)) {
        duplicates.push(op);
        this.dupsSkipped++;
      } else {
        s.done.add(op.s);
        executed.push(op);
        this.opsExecuted++;
      }
      if (op.lw > s.floor) s.floor = op.lw;
      if (s.done.size > s.sweepAt) {
        // Entries below the floor are dead weight (the floor answers for them): sweep them out once
        // `done` has doubled since the last sweep, so a sweep costs O(1) per op amortized. (Sweeping
        // at every rise of the floor once past 1024 entries walked ~1000 entries per client batch
        // on every replica with 8 x 64 messages in flight per client.)
        for (const q of s.done) if (q < s.floor) s.done.delete(q);
        s.sweepAt = Math.min(MAX_DONE_PER_SESSION, Math.max(SWEEP_MIN, 2 * s.done.size));
      }
      if (s.done.size > MAX_DONE_PER_SESSION) {
        // A client that never raises its low water: forget its oldest seqs (it may then get a duplicate executed).
        const min = Math.min(...s.done);
        s.done.delete(min);
        s.floor = Math.max(s.floor, min + 1);
      }
    }
    return { slot, executed, duplicates, noop: false };
  }
}

/** The text hashed for one slot: slot number and the ops' ids and texts (or "noop"). */
function slotDigestText(slot: number, value: Value): string {
  if (value === null) return `${slot}|noop`;
  let s = `${slot}`;
  // The id names the message (its client and seq travel with it); the text is what was said.
  for (const op of value) s += "|" + op.id + ":" + op.t;
  return s;
}

/** Replay a whole log (e.g. read from a replica) through a fresh ChatLog: what a checker uses. */
export function replay(entries: Iterable<[number, Value]>): { log: ChatLog; executed: Op[] } {
  const log = new ChatLog();
  const executed: Op[] = [];
  for (const [slot, v] of entries) executed.push(...log.apply(slot, v).executed);
  return { log, executed };
}
