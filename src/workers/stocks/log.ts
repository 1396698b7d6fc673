import type { Order, TradeRecord } from "./messages.ts";

export type MergeResult = { ok: true } | { ok: false; hint: number };

/**
 * One change to a replica's durable log, in the order made. The shell writes a batch of them in one
 * storage transaction before it sends anything, so a crash leaves a log that is a prefix of what
 * was being written.
 */
export type LogWrite =
  /** Orders from `from` on are gone (each one's trade was added to the dropped list first). */
  | { kind: "truncate"; from: number }
  | { kind: "put"; order: Order }
  | { kind: "drop"; trade: TradeRecord }
  | { kind: "forget"; requestId: string };

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`order log assertion failed: ${text}`);
}

export const tradeOf = (o: Order): TradeRecord => ({ requestId: o.requestId, name: o.name, tradeType: o.type, quantity: o.quantity });

/**
 * A replica's order log in memory: orders numbered 0, 1, 2, … each stamped with the epoch of the
 * leader that wrote it, an index from request id to number for deduplication, and the trades
 * dropped from the log not yet handed back to the catalog. Pure: every change is also recorded as a
 * LogWrite for the shell to persist. The matching rules are raft's: two logs holding the same
 * (number, epoch) agree up to there.
 *
 * Every order stands for a trade the catalog applied. An order dropped from the log (a stale
 * leader's tail, replaced by the current leader's) joins the dropped list in the same write batch,
 * so the trade is listed at the catalog again and logged anew if the current log lacks it.
 */
export class OrderLog {
  private readonly orders: Order[] = [];
  private readonly byRequest = new Map<string, number>();
  private readonly droppedTrades = new Map<string, TradeRecord>();
  private writes: LogWrite[] = [];

  constructor(orders: readonly Order[] = [], dropped: readonly TradeRecord[] = []) {
    for (const o of orders) {
      assert(o.number === this.orders.length, `stored orders are not consecutive at ${o.number}`);
      assert(o.epoch >= this.lastEpoch, `stored epochs go back at ${o.number}`);
      this.orders.push(o);
      this.byRequest.set(o.requestId, o.number);
    }
    for (const t of dropped) this.droppedTrades.set(t.requestId, t);
  }

  get last(): number {
    return this.orders.length - 1;
  }
  get lastEpoch(): number {
    return this.orders.length ? this.orders[this.orders.length - 1]!.epoch : 0;
  }
  /** Trades dropped from this log and not yet handed back to the catalog. */
  get dropped(): number {
    return this.droppedTrades.size;
  }

  /** The writes made since the last call, for the shell to persist. */
  takeWrites(): LogWrite[] {
    const w = this.writes;
    this.writes = [];
    return w;
  }

  get(n: number): Order | undefined {
    return Number.isSafeInteger(n) && n >= 0 ? this.orders[n] : undefined;
  }

  /** Epoch of entry n; 0 for the empty prefix (n = -1), which every log shares. */
  epochAt(n: number): number | undefined {
    if (n === -1) return 0;
    return this.get(n)?.epoch;
  }

  numberOf(requestId: string): number | undefined {
    return this.byRequest.get(requestId);
  }

  /** Orders after `after`, at most `limit`. */
  tail(after: number, limit: number): Order[] {
    return this.orders.slice(Math.max(0, after + 1), Math.max(0, after + 1) + limit);
  }

  droppedList(limit: number): TradeRecord[] {
    const out: TradeRecord[] = [];
    for (const t of this.droppedTrades.values()) {
      if (out.length >= limit) break;
      out.push(t);
    }
    return out;
  }

  /** The catalog lists these trades again: forget them. */
  forgetDropped(requestIds: readonly string[]): void {
    for (const id of requestIds) {
      if (!this.droppedTrades.delete(id)) continue;
      this.writes.push({ kind: "forget", requestId: id });
    }
  }

  /** Appends one order as the next number. */
  append(o: Omit<Order, "number">): Order {
    assert(!this.byRequest.has(o.requestId), `request ${o.requestId} is already logged`);
    assert(o.epoch >= this.lastEpoch, `append at epoch ${o.epoch} after ${this.lastEpoch}`);
    const order: Order = { ...o, number: this.orders.length };
    this.push(order);
    return order;
  }

  /**
   * Raft's follower rule: accept `entries` following `prev` only if our entry at `prev` has
   * `prevEpoch`; an entry that conflicts with ours (same number, other epoch) replaces ours and
   * everything after it. Entries we already hold are skipped, so a stale or duplicated message
   * never truncates. On a mismatch, `hint` is where the sender should back up to.
   */
  merge(prev: number, prevEpoch: number | null, entries: readonly Order[]): MergeResult {
    if (prev > this.last) return { ok: false, hint: this.last };
    if (prevEpoch === null || this.epochAt(prev) !== prevEpoch) return { ok: false, hint: prev - 1 };
    let i = 0;
    while (i < entries.length && this.epochAt(entries[i]!.number) === entries[i]!.epoch) i++;
    if (i === entries.length) return { ok: true };
    const rest = entries.slice(i);
    if (rest[0]!.number <= this.last) this.truncateFrom(rest[0]!.number);
    for (const o of rest) {
      assert(o.number === this.orders.length, `merge leaves a gap at ${o.number}`);
      assert(o.epoch >= this.lastEpoch, `merge puts epoch ${o.epoch} after ${this.lastEpoch}`);
      // The same trade earlier in our log would be logged twice: raft's log matching rules that out.
      const dup = this.byRequest.get(o.requestId);
      assert(dup === undefined, `merge logs request ${o.requestId} again (held at ${dup})`);
      this.push(o);
    }
    return { ok: true };
  }

  /** Drops orders from n on, listing their trades as dropped. */
  truncateFrom(n: number): void {
    if (n > this.last) return;
    assert(n >= 0, `truncate from ${n}`);
    for (const o of this.orders.splice(n)) {
      this.byRequest.delete(o.requestId);
      if (!this.droppedTrades.has(o.requestId)) {
        const t = tradeOf(o);
        this.droppedTrades.set(o.requestId, t);
        this.writes.push({ kind: "drop", trade: t });
      }
    }
    this.writes.push({ kind: "truncate", from: n });
  }

  private push(o: Order): void {
    this.orders.push(o);
    this.byRequest.set(o.requestId, o.number);
    this.writes.push({ kind: "put", order: o });
  }

  /** FNV-1a over every order, for comparing replicas cheaply. */
  digest(): string {
    let h = 0x811c9dc5;
    for (const o of this.orders) {
      const s = `${o.number}|${o.name}|${o.type}|${o.quantity}|${o.requestId}|${o.epoch};`;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    }
    return (h >>> 0).toString(16).padStart(8, "0");
  }
}
