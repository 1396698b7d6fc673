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
  /** How many problems of each kind. */
  counts: { missing: number; duplicated: number; neverSent: number; failedButLogged: number; wrongClient: number; outOfOrder: number; clientOrder: number };
}

const MAX_PROBLEMS = 20;

export function checkTotalOrder(history: History, log: readonly LogEntry[], opts: { f?: string } = {}): TotalOrderResult {
  const f = opts.f ?? "send";
  const sends = history.filter((op) => op.f === f);
  const byId = new Map<string, Op>();
  for (const op of sends) byId.set(String(op.value), op);
  const counts = { missing: 0, duplicated: 0, neverSent: 0, failedButLogged: 0, wrongClient: 0, outOfOrder: 0, clientOrder: 0 };
  const problems: string[] = [];
  const problem = (text: string) => {
    if (problems.length < MAX_PROBLEMS) problems.push(text);
  };

  const pos = new Map<string, number>();
  log.forEach((e, i) => {
    const op = byId.get(e.id);
    if (pos.has(e.id)) {
      counts.duplicated++;
      problem(`message ${e.id} is in the log twice (slots ${pos.get(e.id)} and ${i})`);
      return;
    }
    pos.set(e.id, i);
    if (!op) {
      counts.neverSent++;
      problem(`slot ${i} holds message ${e.id}, which no client sent`);
    } else if (op.type === "fail") {
      counts.failedButLogged++;
      problem(`slot ${i} holds message ${e.id}, which ${op.process} was told definitely failed (${String(op.error ?? "")})`);
    } else if (e.process !== undefined && e.process !== op.process) {
      counts.wrongClient++;
      problem(`slot ${i}: message ${e.id} was sent by ${op.process}, the log says ${e.process}`);
    }
  });

  let acked = 0;
  let logged = 0;
  for (const op of sends) {
    if (op.type !== "ok") continue;
    acked++;
    if (pos.has(String(op.value))) logged++;
    else {
      counts.missing++;
      problem(`${op.process}'s message ${String(op.value)} was acknowledged at ${op.completeMs} ms but is not in the log`);
    }
  }

  // Real-time order: sort acknowledged messages by completion; for each logged message, every
  // message acknowledged before it was sent must sit at a lower slot.
  const acks = sends.filter((op) => op.type === "ok" && pos.has(String(op.value))).sort((a, b) => a.completeMs! - b.completeMs!);
  const prefixMax: Array<{ slot: number; op: Op }> = [];
  for (const op of acks) {
    const slot = pos.get(String(op.value))!;
    const prevMax = prefixMax[prefixMax.length - 1];
    prefixMax.push(prevMax && prevMax.slot > slot ? prevMax : { slot, op });
  }
  // Per client, the latest-slot message among those it had acknowledged before each send.
  const perClient = new Map<string, Op[]>();
  for (const op of acks) {
    let l = perClient.get(op.process);
    if (!l) perClient.set(op.process, (l = []));
    l.push(op);
  }
  const clientMax = new Map<string, Array<{ slot: number; op: Op }>>();
  for (const [p, l] of perClient) {
    const m: Array<{ slot: number; op: Op }> = [];
    for (const op of l) {
      const slot = pos.get(String(op.value))!;
      const prevMax = m[m.length - 1];
      m.push(prevMax && prevMax.slot > slot ? prevMax : { slot, op });
    }
    clientMax.set(p, m);
  }
  for (const op of sends) {
    const slot = pos.get(String(op.value));
    if (slot === undefined || op.type === "fail") continue;
    const own = perClient.get(op.process) ?? [];
    const ownMax = clientMax.get(op.process) ?? [];
    const j = lastBefore(own, op.invokeMs);
    if (j >= 0 && ownMax[j]!.slot > slot) {
      counts.clientOrder++;
      problem(`${op.process} sent ${String(op.value)} (slot ${slot}) after its ${String(ownMax[j]!.op.value)} was acknowledged, yet that one sits later, at slot ${ownMax[j]!.slot}`);
      continue;
    }
    const k = lastBefore(acks, op.invokeMs);
    if (k >= 0 && prefixMax[k]!.slot > slot) {
      counts.outOfOrder++;
      const a = prefixMax[k]!.op;
      problem(`${op.process}'s ${String(op.value)} (slot ${slot}) was sent after ${a.process}'s ${String(a.value)} was acknowledged, yet that one sits later, at slot ${prefixMax[k]!.slot}`);
    }
  }
  const bad = Object.values(counts).reduce((a, b) => a + b, 0);
  return { ok: bad === 0, acked, logged, problems, counts };
}

/** Index of the last op in `sorted` (by completeMs) that completed strictly before `t`, or -1. */
function lastBefore(sorted: Op[], t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]!.completeMs! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}
