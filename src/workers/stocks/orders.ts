import { seqKey } from "../runtime/keys.ts";
import type { Storage } from "../runtime/types.ts";
import type { Order } from "./messages.ts";

const orderKey = (n: number) => seqKey("o/", n);
const requestKey = (id: string) => `r/${id}`;

export type MergeResult = { ok: true } | { ok: false; hint: number };

/**
 * A replica's durable order log: orders numbered 0, 1, 2, … each stamped with the epoch of the
 * leader that wrote it, plus an index from request id to number for deduplication. Every change is
 * one storage transaction, so a crash leaves a log that is a prefix of what was being written.
 * The matching rules are raft's: two logs holding the same (number, epoch) agree up to there.
 */
export class OrderLog {
  private lastNumber: number;
  private lastEpochValue: number;

  constructor(private readonly db: Storage) {
    const tail = db.scan<Order>({ prefix: "o/", reverse: true, limit: 1 })[0];
    this.lastNumber = tail ? tail[1].number : -1;
    this.lastEpochValue = tail ? tail[1].epoch : 0;
  }

  get last(): number {
    return this.lastNumber;
  }
  get lastEpoch(): number {
    return this.lastEpochValue;
  }

  get(n: number): Order | undefined {
    if (n < 0 || n > this.lastNumber) return undefined;
    return this.db.get<Order>(orderKey(n));
  }

  /** Epoch of entry n; 0 for the empty prefix (n = -1), which every log shares. */
  epochAt(n: number): number | undefined {
    if (n === -1) return 0;
    return this.get(n)?.epoch;
  }

  numberOf(requestId: string): number | undefined {
    return this.db.get<number>(requestKey(requestId));
  }

  /** Orders after `after`, at most `limit`. */
  tail(after: number, limit: number): Order[] {
    if (after >= this.lastNumber) return [];
    return this.db.scan<Order>({ start: orderKey(Math.max(0, after + 1)), end: "o/\uffff", limit }).map(([, o]) => o);
  }

  /** Appends one order as the next number; durable when it returns. */
  append(o: Omit<Order, "number">): Order {
    const order: Order = { ...o, number: this.lastNumber + 1 };
    this.db.transaction(() => {
      this.db.put(orderKey(order.number), order);
      this.db.put(requestKey(order.requestId), order.number);
    });
    this.lastNumber = order.number;
    this.lastEpochValue = order.epoch;
    return order;
  }

  /**
   * Raft's follower rule: accept `entries` following `prev` only if our entry at `prev` has
   * `prevEpoch`; an entry that conflicts with ours (same number, other epoch) replaces ours and
   * everything after it. Entries we already hold are skipped, so a stale or duplicated message
   * never truncates. On a mismatch, `hint` is where the sender should back up to.
   */
  merge(prev: number, prevEpoch: number | null, entries: readonly Order[]): MergeResult {
    if (prev > this.lastNumber) return { ok: false, hint: this.lastNumber };
    if (prevEpoch === null || this.epochAt(prev) !== prevEpoch) return { ok: false, hint: prev - 1 };
    let i = 0;
    while (i < entries.length && this.epochAt(entries[i]!.number) === entries[i]!.epoch) i++;
    if (i === entries.length) return { ok: true };
    const rest = entries.slice(i);
    this.db.transaction(() => {
      if (rest[0]!.number <= this.lastNumber) this.deleteFrom(rest[0]!.number);
      for (const o of rest) {
        this.db.put(orderKey(o.number), o);
        this.db.put(requestKey(o.requestId), o.number);
      }
    });
    const end = rest[rest.length - 1]!;
    this.lastNumber = end.number;
    this.lastEpochValue = end.epoch;
    return { ok: true };
  }

  /** Drops orders from n on (never acknowledged ones: see replica.ts). */
  truncateFrom(n: number): void {
    if (n > this.lastNumber) return;
    this.db.transaction(() => this.deleteFrom(n));
    this.lastNumber = n - 1;
    this.lastEpochValue = this.epochAt(n - 1) ?? 0;
  }

  private deleteFrom(n: number): void {
    for (const [key, o] of this.db.scan<Order>({ start: orderKey(n), end: "o/\uffff" })) {
      this.db.delete(key);
      if (this.db.get<number>(requestKey(o.requestId)) === o.number) this.db.delete(requestKey(o.requestId));
    }
  }

  /** FNV-1a over every order, for comparing replicas cheaply. */
  digest(): string {
    let h = 0x811c9dc5;
    for (const [, o] of this.db.scan<Order>({ prefix: "o/" })) {
      const s = `${o.number}|${o.name}|${o.type}|${o.quantity}|${o.requestId}|${o.epoch};`;
      for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    }
    return (h >>> 0).toString(16).padStart(8, "0");
  }
}
