/**
 * Models for the linearizability checker, one per system: pure `{init, step}` objects, partitioned
 * by key. A model states what each operation may observe in a state; for an `info` operation the
 * result is unknown, so a model accepts it whenever it could have taken effect.
 */
import { REJECT, type Model } from "./linearizable.ts";
import type { Op } from "./op.ts";

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/**
 * A key-value register per key: `write` (value: what was written), `read` (value: what was read;
 * null for a key never written), `cas` (value: [from, to]; a `fail` with error "precondition
 * failed" observed that the value was not `from`).
 */
export const registerModel: Model<unknown> = {
  name: "register",
  init: () => null,
  judges: (op) => op.f === "read" || op.f === "write" || op.f === "cas",
  observes: (op) => op.f === "cas" && op.error === "precondition failed",
  step(state, op) {
    switch (op.f) {
      case "write":
        return op.value;
      case "read":
        return op.type === "info" || equal(op.value, state) ? state : REJECT;
      case "cas": {
        const [from, to] = Array.isArray(op.value) ? op.value : [undefined, undefined];
        if (op.type === "fail") return equal(from, state) ? REJECT : state;
        return equal(from, state) ? to : REJECT;
      }
    }
    return REJECT;
  },
};

/** Echo: a stateless service whose every reply must carry the payload sent (`sent`); one partition per client. */
export const echoModel: Model<null> = {
  name: "echo",
  init: () => null,
  judges: (op) => op.f === "echo",
  partition: (op) => op.process,
  independent: true,
  step: (_s, op) => (op.type === "info" || op.value === op.sent ? null : REJECT),
};

/** The stock bazaar's error text for a buy larger than the stock (the catalog's protocol text). */
export const NOT_ENOUGH_STOCK = "not enough stock";

/**
 * A stock whose starting quantity may be unknown (the catalog is durable across runs): it lies in
 * [lo, hi], and `delta` is what the operations linearized so far added. A lookup fixes it; a buy
 * that succeeds or is refused bounds it.
 */
export interface StockState {
  lo: number;
  hi: number;
  delta: number;
}

/**
 * The stock bazaar, per stock (key: its name). `lookup` (value: the quantity seen), `buy` / `sell`
 * (value: the quantity traded). A buy succeeds iff the stock holds enough; a `fail` with error
 * "not enough stock" observed that it did not. With `initialQuantity` the start is known; without,
 * it is only known to be ≥ 0 until operations pin it down.
 */
export function stocksModel(opts: { initialQuantity?: number } = {}): Model<StockState> {
  const known = opts.initialQuantity;
  return {
    name: "stocks",
    init: () => (known === undefined ? { lo: 0, hi: Infinity, delta: 0 } : { lo: known, hi: known, delta: 0 }),
    judges: (op) => op.f === "lookup" || op.f === "buy" || op.f === "sell",
    observes: (op) => op.f === "buy" && op.error === NOT_ENOUGH_STOCK,
    hash: (s) => `${s.lo}:${s.hi}:${s.delta}`,
    describe: (s) => (s.lo === s.hi ? `quantity ${s.lo + s.delta}` : `quantity unknown, in ${s.lo + s.delta}..${s.hi + s.delta}`),
    step(s, op) {
      const within = (lo: number, hi: number) => (lo <= hi ? { lo, hi, delta: s.delta } : REJECT);
      if (op.f === "lookup") {
        if (op.type === "info") return s;
        if (!isInt(op.value)) return REJECT;
        return within(Math.max(s.lo, op.value - s.delta), Math.min(s.hi, op.value - s.delta));
      }
      if (!isInt(op.value) || op.value <= 0) return REJECT;
      if (op.f === "sell") return { lo: s.lo, hi: s.hi, delta: s.delta + op.value };
      // buy: it needs base + delta >= quantity; refused, base + delta < quantity.
      if (op.type === "fail") return within(s.lo, Math.min(s.hi, op.value - s.delta - 1));
      const r = within(Math.max(s.lo, op.value - s.delta), s.hi);
      return r === REJECT ? r : { lo: r.lo, hi: r.hi, delta: s.delta - op.value };
    },
  };
}

/** A tally whose starting count may be unknown: `base` (null until a read fixes it) plus `added`. */
export interface TallyState {
  base: number | null;
  added: number;
}

/**
 * Olympics tallies, per team and medal (key "team/medal"). `read` (value: the count seen),
 * `increment` (value: by how much, default 1). Tallies outlive a run (they are durable), so unless
 * `initial` is given the starting count is unknown: the first read that can fix it does.
 */
export function talliesModel(opts: { initial?: number } = {}): Model<TallyState> {
  return {
    name: "olympics tallies",
    init: () => ({ base: opts.initial ?? null, added: 0 }),
    judges: (op) => op.f === "read" || op.f === "increment",
    hash: (s) => `${s.base}+${s.added}`,
    describe: (s) => (s.base === null ? `tally unknown + ${s.added}` : `tally ${s.base + s.added}`),
    refute: (ops) => refuteCounter(ops, opts.initial ?? null),
    // An increment observes nothing: two by the same amount are alike in every state.
    interchangeable: (op) => (op.f === "increment" ? `increment ${JSON.stringify(op.value ?? 1)}` : null),
    step(s, op) {
      if (op.f === "increment") {
        const by = op.value === null || op.value === undefined ? 1 : op.value;
        return isInt(by) && by >= 0 ? { base: s.base, added: s.added + by } : REJECT;
      }
      if (op.type === "info") return s;
      if (!isInt(op.value)) return REJECT;
      if (s.base === null) return op.value - s.added >= 0 ? { base: op.value - s.added, added: s.added } : REJECT;
      return op.value === s.base + s.added ? s : REJECT;
    },
  };
}

/** Above this many read pairs × increments the counter refutation is skipped (the search still runs). */
const COUNTER_REFUTE_WORK = 50_000_000;

/**
 * Jepsen's counter bounds, pairwise: for reads a and b with a done before b began, b − a is at least
 * the increments surely between them (invoked after a returned, returned before b began) and at
 * most those that may be (invoked before b returned, not returned before a began). With a known
 * start, every read is also bounded from the start. Sound, and quick where the search is not: a
 * lost or doubled increment among hundreds of concurrent ones.
 */
export function refuteCounter(ops: readonly Op[], initial: number | null): { stuck: Op; window: Op[]; why: string } | null {
  const incs = ops.filter((o) => o.f === "increment" && (o.type === "ok" || o.type === "info"));
  const reads = ops.filter((o) => o.f === "read" && o.type === "ok" && isInt(o.value) && o.completeMs !== null);
  const by = (o: Op) => (isInt(o.value) ? (o.value as number) : 1);
  const ret = (o: Op) => (o.type === "ok" && o.completeMs !== null ? o.completeMs : Infinity);
  if (reads.length * (reads.length + 1) * Math.max(1, incs.length) > COUNTER_REFUTE_WORK) return null;
  const starts: Array<{ at: number; value: number; op: Op | null }> = initial === null ? [] : [{ at: -Infinity, value: initial, op: null }];
  for (const a of reads) starts.push({ at: a.completeMs!, value: a.value as number, op: a });
  for (const a of starts) {
    const aInvoke = a.op ? a.op.invokeMs : -Infinity;
    for (const b of reads) {
      if (!(a.at < b.invokeMs)) continue;
      let least = 0;
      let most = 0;
      for (const i of incs) {
        if (i.invokeMs > a.at && ret(i) < b.invokeMs) least += by(i);
        if (i.invokeMs <= b.completeMs! && ret(i) >= aInvoke) most += by(i);
      }
      const d = (b.value as number) - a.value;
      if (d < least || d > most) {
        const from = a.op ? `a read of ${a.value} that returned before it began` : `the start (${a.value})`;
        return { stuck: b, window: a.op ? [a.op, b] : [b], why: `read ${b.value} after ${from}: between them at least ${least} and at most ${most} added` };
      }
    }
  }
  return null;
}

/** The bookstore front end's error text (409) for a buy of an item with no copies left. */
export const ITEM_UNAVAILABLE = "item is unavailable";
/** The bookstore front end's error text (409) for an update_quantity that would take the quantity below 0. */
export const QUANTITY_BELOW_ZERO = "quantity would go below 0";

/** An item's state when it is known: its quantity and cost. */
export interface BookState {
  quantity: number;
  cost: number;
}

/**
 * An item whose start may be unknown (the catalog is durable across runs): its starting quantity
 * lies in [lo, hi] and `delta` is what the operations linearized so far added (as in StockState);
 * its cost is null until a lookup or an update_cost fixes it.
 */
export interface BookModelState {
  lo: number;
  hi: number;
  delta: number;
  cost: number | null;
}

/** The seven books the bookstore starts with (item → cost and quantity), from its write-up. */
const BOOKS: Record<string, BookState> = {
  "1": { cost: 50, quantity: 100 },
  "2": { cost: 51, quantity: 101 },
  "3": { cost: 12, quantity: 100 },
  "4": { cost: 2, quantity: 10 },
  "5": { cost: 30, quantity: 100 },
  "6": { cost: 10, quantity: 100 },
  "7": { cost: 20, quantity: 100 },
};
/** The write-up's starting state of an item (a fresh catalog), undefined for an item it does not list. */
export const bookstoreInitial = (key: string): BookState | undefined => BOOKS[key];

const BOOK_FS: ReadonlySet<string> = new Set(["lookup", "list", "quantity", "buy", "update_quantity", "update_cost"]);

/**
 * The bookstore, per item (key: the item number), as its clients record it:
 * - `lookup` and `list` (value: {quantity, cost}, either may be missing; a list is recorded as one
 *   such read per book it spans) and `quantity` (value: the quantity) read;
 * - `buy` (value: null, or {order} once done) takes one copy; a `fail` with "item is unavailable" saw the quantity at 0,
 *   and a buy succeeds only above 0;
 * - `update_quantity` (value: the delta, or {delta, quantity} with the quantity the reply reported
 *   after it) succeeds iff the quantity stays ≥ 0; a `fail` with "quantity would go below 0" saw
 *   that it would not;
 * - `update_cost` (value: the new cost) sets the cost.
 * `search` is not judged (which books a topic holds never changes).
 * `initial` gives an item's starting state; where it gives none (the default: the catalog outlives
 * a run), the start is learned from the history: quantity ≥ 0 until reads and refusals pin it down,
 * cost unknown until the first lookup or update_cost.
 */
export function bookstoreModel(opts: { initial?: (key: string) => BookState | undefined } = {}): Model<BookModelState> {
  return {
    name: "bookstore",
    init(key) {
      const known = opts.initial?.(key);
      return known === undefined ? { lo: 0, hi: Infinity, delta: 0, cost: null } : { lo: known.quantity, hi: known.quantity, delta: 0, cost: known.cost };
    },
    judges: (op) => BOOK_FS.has(op.f),
    observes: (op) => (op.f === "buy" && op.error === ITEM_UNAVAILABLE) || (op.f === "update_quantity" && op.error === QUANTITY_BELOW_ZERO),
    hash: (s) => `${s.lo}:${s.hi}:${s.delta}:${s.cost}`,
    describe(s) {
      const q = s.lo === s.hi ? `quantity ${s.lo + s.delta}` : `quantity unknown, in ${s.lo + s.delta}..${s.hi + s.delta}`;
      return `${q}, ${s.cost === null ? "cost unknown" : `cost ${s.cost}`}`;
    },
    step(s, op) {
      // Base bounds [lo, hi] on the starting quantity, with this state's delta and cost.
      const within = (lo: number, hi: number, delta = s.delta, cost = s.cost): BookModelState | typeof REJECT => (lo <= hi ? { lo, hi, delta, cost } : REJECT);
      // The quantity is now q.
      const is = (q: number, from: BookModelState = s) => (isInt(q) && q >= 0 ? within(Math.max(from.lo, q - from.delta), Math.min(from.hi, q - from.delta), from.delta, from.cost) : REJECT);
      switch (op.f) {
        case "lookup":
        case "list": {
          if (op.type === "info") return s;
          if (typeof op.value !== "object" || op.value === null) return REJECT;
          const v = op.value as { quantity?: unknown; cost?: unknown };
          let r: BookModelState | typeof REJECT = s;
          if (v.cost !== undefined) {
            if (typeof v.cost !== "number" || (s.cost !== null && v.cost !== s.cost)) return REJECT;
            r = { ...s, cost: v.cost };
          }
          return v.quantity === undefined ? r : is(v.quantity as number, r);
        }
        case "quantity":
          return op.type === "info" ? s : is(op.value as number);
        case "buy":
          // Refused: the quantity was 0. Done: it was at least 1, and is one less.
          if (op.type === "fail") return is(0);
          return within(Math.max(s.lo, 1 - s.delta), s.hi, s.delta - 1);
        case "update_quantity": {
          const v = op.value as { delta?: unknown; quantity?: unknown } | number | null;
          const d = typeof v === "object" && v !== null ? v.delta : v;
          if (!isInt(d)) return REJECT;
          // Refused: it would have gone below 0. Done: it did not, and the reply may say where it went.
          if (op.type === "fail") return within(s.lo, Math.min(s.hi, -d - s.delta - 1));
          const r = within(Math.max(s.lo, -d - s.delta), s.hi, s.delta + d);
          if (r === REJECT || typeof v !== "object" || v === null || v.quantity === undefined || op.type !== "ok") return r;
          return is(v.quantity as number, r);
        }
        case "update_cost":
          return typeof op.value === "number" && Number.isFinite(op.value) && op.value > 0 ? { ...s, cost: op.value } : REJECT;
      }
      return REJECT;
    },
  };
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
