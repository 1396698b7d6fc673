/**
 * A total-order checker for a replicated log (paxos chat): judged from what clients saw and the log
 * the replicas agreed on. A client's `send` operation carries the message id in `value`.
 * - every acknowledged message is in the log exactly once;
 * - no message is in the log twice, and none that was never sent or definitely failed;
 * - real-time order: a message acknowledged before another was sent comes first in the log — in
 *   particular each client's messages, sent one after another, appear in the order it sent them.
 * Indefinite (`info`) messages may or may not be in the log, but at most once and in order.
 */
import type { History, Op } from "./op.ts";

export interface LogEntry {
  /** The message id, as the client sent it. */
  id: string;
  /** The client the log says sent it, when the log records it. */
  process?: string;
}

export interface TotalOrderResult {
  ok: boolean;
  /** Messages acknowledged, and how many of those the log holds. */
  acked: number;
  logged: number;
  /** Up to MAX_PROBLEMS descriptions, first found first. */
  problems: string[];
  /** The sends those problems are about (for a report). */
  witnesses: Op[];
  /** How many problems of each kind. */
  counts: { missing: number; duplicated: number; neverSent: number; failedButLogged: number; wrongClient: number; outOfOrder: number; clientOrder: number };
}

const MAX_PROBLEMS = 20;

/**
 * `prior`: how many entries at the head of the log an earlier run may have written (a log kept
 * across runs). Among them a message no client of this history sent is that run's, not a fault;
 * every other entry is judged as usual.
 */
export function checkTotalOrder(history: History, log: readonly LogEntry[], opts: { f?: string; prior?: number } = {}): TotalOrderResult {
  const prior = opts.prior ?? 0;
  const f = opts.f ?? "send";
  const sends = history.filter((op) => op.f === f);
  const ids = sends.map((op) => String(op.value));
  const byId = new Map<string, number>();
  ids.forEach((id, i) => byId.set(id, i));
  const counts = { missing: 0, duplicated: 0, neverSent: 0, failedButLogged: 0, wrongClient: 0, outOfOrder: 0, clientOrder: 0 };
  const problems: string[] = [];
  const witnesses = new Set<Op>();
  const problem = (text: string, ...ops: Array<Op | undefined>) => {
    if (problems.length >= MAX_PROBLEMS) return;
    problems.push(text);
    for (const op of ops) if (op) witnesses.add(op);
  };

  // slot[i]: where send i sits in the log, -1 if it does not.
  const slot = new Int32Array(sends.length).fill(-1);
  const firstSlot = new Map<string, number>();
  for (let s = 0; s < log.length; s++) {
    const e = log[s]!;
    const i = byId.get(e.id);
    if (firstSlot.has(e.id)) {
      counts.duplicated++;
      problem(`message ${e.id} is in the log twice (slots ${firstSlot.get(e.id)} and ${s})`, i === undefined ? undefined : sends[i]);
      continue;
    }
    firstSlot.set(e.id, s);
    if (i === undefined) {
      if (s < prior) continue;
      counts.neverSent++;
      problem(`slot ${s} holds message ${e.id}, which no client sent`);
      continue;
    }
    slot[i] = s;
    const op = sends[i]!;
    if (op.type === "fail") {
      counts.failedButLogged++;
      problem(`slot ${s} holds message ${e.id}, which ${op.process} was told definitely failed (${String(op.error ?? "")})`, op);
    } else if (e.process !== undefined && e.process !== op.process) {
      counts.wrongClient++;
      problem(`slot ${s}: message ${e.id} was sent by ${op.process}, the log says ${e.process}`, op);
    }
  }

  let acked = 0;
  let logged = 0;
  for (let i = 0; i < sends.length; i++) {
    const op = sends[i]!;
    if (op.type !== "ok") continue;
    acked++;
    if (slot[i]! >= 0) logged++;
    else {
      counts.missing++;
      problem(`${op.process}'s message ${ids[i]} was acknowledged at ${op.completeMs} ms but is not in the log`, op);
    }
  }

  // Real-time order: acknowledged, logged sends by completion time with a running maximum of their
  // slots; every logged send must sit above every send acknowledged before it was invoked. The same
  // per client names the stronger fault (a client's own order) first.
  const all = new Timeline(sends, slot, () => true);
  const perClient = new Map<string, Timeline>();
  for (const p of new Set(sends.map((op) => op.process))) perClient.set(p, new Timeline(sends, slot, (op) => op.process === p));
  for (let i = 0; i < sends.length; i++) {
    const op = sends[i]!;
    if (slot[i]! < 0 || op.type === "fail") continue;
    const own = perClient.get(op.process)!.before(op.invokeMs);
    if (own >= 0 && own > slot[i]!) {
      counts.clientOrder++;
      problem(`${op.process} sent ${ids[i]} (slot ${slot[i]}) after one of its messages now at slot ${own} was acknowledged`, op, sends[byId.get(log[own]!.id)!]);
      continue;
    }
    const any = all.before(op.invokeMs);
    if (any >= 0 && any > slot[i]!) {
      counts.outOfOrder++;
      problem(`${op.process}'s ${ids[i]} (slot ${slot[i]}) was sent after the message now at slot ${any} (${log[any]?.id}) was acknowledged`, op, sends[byId.get(log[any]!.id)!]);
    }
  }
  const bad = Object.values(counts).reduce((a, b) => a + b, 0);
  return { ok: bad === 0, acked, logged, problems, witnesses: [...witnesses], counts };
}

/** Acknowledged, logged sends sorted by completion, with the highest slot among those up to each. */
class Timeline {
  private readonly times: Float64Array;
  private readonly maxSlot: Int32Array;
  constructor(sends: Op[], slot: Int32Array, keep: (op: Op) => boolean) {
    const idx: number[] = [];
    for (let i = 0; i < sends.length; i++) if (sends[i]!.type === "ok" && slot[i]! >= 0 && keep(sends[i]!)) idx.push(i);
    idx.sort((a, b) => sends[a]!.completeMs! - sends[b]!.completeMs!);
    this.times = new Float64Array(idx.length);
    this.maxSlot = new Int32Array(idx.length);
    let max = -1;
    idx.forEach((i, k) => {
      this.times[k] = sends[i]!.completeMs!;
      max = Math.max(max, slot[i]!);
      this.maxSlot[k] = max;
    });
  }
  /** The highest slot among sends acknowledged strictly before `t`, or -1. */
  before(t: number): number {
    let lo = 0;
    let hi = this.times.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.times[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? -1 : this.maxSlot[lo - 1]!;
  }
}
