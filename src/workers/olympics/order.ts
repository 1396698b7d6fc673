import type { NodeId } from "../runtime/types.ts";

/**
 * Totally ordered multicast by a sequencer: the pure cores of both ends, no I/O.
 *
 * Why a sequencer and not Lamport clocks with acknowledgements: with Lamport's scheme a front end
 * may deliver a message only once it has heard from every other member, so one crashed front end
 * stalls delivery at all of them until a membership protocol removes it, and a restarted one must be
 * re-admitted by everyone. A sequencer gives the order in one round trip and makes membership a
 * lease it alone keeps. It lives on the db node: every write passes there anyway, its storage is
 * durable (the order survives its crash), and a front end that restarts catches up from its log.
 */

/** Every RAFFLE_EVERY-th request in the total order wins the raffle. */
export const RAFFLE_EVERY = 100;
/** Entries the sequencer keeps (and so the longest order of one run); beyond it, ordering is refused. */
export const MAX_ORDER_LOG = 200_000;
/** Entries sent in one catch-up page. */
export const ORDER_PAGE = 500;
/** Entries a front end holds ahead of a gap before it drops the newest (it fetches them again). */
export const MAX_PENDING = 10_000;

export interface OrderEntry {
  /** 1-based position in the total order. */
  seq: number;
  /** The front end that received the request. */
  origin: NodeId;
  /** Unique per client request (a retry of the same request gets its first seq again). */
  rid: string;
  /** The client, and what it asked ("increment_medal_tally/Gaul/gold"): what the order is made of. */
  client: NodeId;
  op: string;
}

export function isWinner(seq: number): boolean {
  return seq > 0 && seq % RAFFLE_EVERY === 0;
}

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${text}`);
}

/** What the sequencer shell must do after a step: persist `append` before telling anyone about it, then send. */
export interface SequencerOutput {
  entry: OrderEntry;
  /** New entry (to persist) or undefined if this rid was ordered before. */
  append?: OrderEntry;
  /** Members to multicast the entry to. */
  multicast: NodeId[];
}

/**
 * The sequencer: assigns the next position to each request, keeps the log, and a lease per member
 * front end. A member not heard from within `leaseMs` is out of the group (no more multicasts);
 * when it comes back it rejoins from the position it has delivered and catches up from the log.
 */
export class Sequencer {
  private readonly log: OrderEntry[] = [];
  private readonly byRid = new Map<string, number>();
  private readonly leases = new Map<NodeId, number>();

  constructor(
    entries: OrderEntry[],
    private readonly leaseMs: number,
  ) {
    for (const e of entries) this.restore(e);
  }

  private restore(e: OrderEntry): void {
    assert(e.seq === this.log.length + 1, `order log is contiguous (${e.seq} after ${this.log.length})`);
    this.log.push(e);
    this.byRid.set(e.rid, e.seq);
  }

  get length(): number {
    return this.log.length;
  }

  full(): boolean {
    return this.log.length >= MAX_ORDER_LOG;
  }

  /** Order one request. The caller persists `append` before it multicasts or replies. */
  order(origin: NodeId, rid: string, client: NodeId, op: string, now: number): SequencerOutput {
    this.renew(origin, now);
    const seen = this.byRid.get(rid);
    if (seen !== undefined) return { entry: this.log[seen - 1]!, multicast: [] };
    assert(!this.full(), "order log has room");
    const entry: OrderEntry = { seq: this.log.length + 1, origin, rid, client, op };
    this.restore(entry);
    return { entry, append: entry, multicast: this.members(now) };
  }

  /** A member's heartbeat: renews its lease (joining if new) and returns what it has not delivered yet (one page). */
  join(member: NodeId, delivered: number, now: number): OrderEntry[] {
    assert(Number.isInteger(delivered) && delivered >= 0, "delivered is a count");
    this.renew(member, now);
    return this.log.slice(delivered, delivered + ORDER_PAGE);
  }

  private renew(member: NodeId, now: number): void {
    this.leases.set(member, now + this.leaseMs);
  }

  /** Members whose lease is live, in id order. */
  members(now: number): NodeId[] {
    for (const [m, until] of this.leases) if (until < now) this.leases.delete(m);
    return [...this.leases.keys()].sort();
  }

  entries(from: number, to: number): OrderEntry[] {
    return this.log.slice(from, to);
  }
}

/**
 * One front end's delivery: entries arrive in any order, duplicated, or not at all; they are
 * delivered strictly by position. A gap is reported so the shell fetches the missing entries.
 */
export class Delivery {
  readonly delivered: OrderEntry[] = [];
  /** chain[i]: hash of the first i+1 delivered entries, so two front ends compare orders cheaply. */
  readonly chain: number[] = [];
  private readonly pending = new Map<number, OrderEntry>();

  /** Accept entries; returns those newly delivered, in order. */
  receive(entries: readonly OrderEntry[]): OrderEntry[] {
    for (const e of entries) {
      if (e.seq <= this.delivered.length || this.pending.has(e.seq)) continue;
      if (this.pending.size >= MAX_PENDING) continue;
      this.pending.set(e.seq, e);
    }
    const out: OrderEntry[] = [];
    for (;;) {
      const next = this.pending.get(this.delivered.length + 1);
      if (!next) break;
      this.pending.delete(next.seq);
      const prev = this.chain.length === 0 ? 0x811c9dc5 : this.chain[this.chain.length - 1]!;
      this.delivered.push(next);
      this.chain.push(hashEntry(prev, next));
      out.push(next);
    }
    assert(this.delivered.length === this.chain.length, "one chain hash per delivered entry");
    assert(out.every((e, i) => i === 0 || e.seq === out[i - 1]!.seq + 1), "delivered in order");
    return out;
  }

  /** True when entries past a hole are waiting: the shell should fetch from `next`. */
  hasGap(): boolean {
    return this.pending.size > 0;
  }

  get next(): number {
    return this.delivered.length + 1;
  }

  winners(): OrderEntry[] {
    const out: OrderEntry[] = [];
    for (let s = RAFFLE_EVERY; s <= this.delivered.length; s += RAFFLE_EVERY) out.push(this.delivered[s - 1]!);
    return out;
  }
}

function hashEntry(prev: number, e: OrderEntry): number {
  let h = prev;
  const s = `${e.seq}|${e.origin}|${e.rid}|${e.client}|${e.op}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Whether one order is a prefix of the other (what "the same total order, while running" means). */
export function samePrefix(a: readonly number[], b: readonly number[]): boolean {
  const n = Math.min(a.length, b.length);
  return n === 0 || a[n - 1] === b[n - 1];
}

/** An entry from untrusted input, or undefined. */
export function asEntry(v: unknown): OrderEntry | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const e = v as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return undefined;
  for (const k of ["origin", "rid", "client", "op"] as const) if (typeof e[k] !== "string" || (e[k] as string).length > 200) return undefined;
  return { seq: e.seq as number, origin: e.origin as string, rid: e.rid as string, client: e.client as string, op: e.op as string };
}
