/**
 * A linearizability checker: Wing & Gong's search with Lowe's memoisation, as Porcupine does it.
 *
 * Each partition (one key, when the model is partitioned) becomes a list of call and return entries
 * in time order. The search walks the list: at a call it tries to linearize that operation now (the
 * model must accept it in the current state), lifts it and its return out of the list, and starts
 * again from the front; at a return it cannot pass (that operation must have taken effect before it
 * returned), it backtracks. A (set of linearized operations, model state) pair seen before is never
 * explored twice. Indefinite (`info`) operations return at +∞: they may be linearized anywhere after
 * their invocation, or not at all — the search succeeds as soon as every definite operation is in.
 *
 * Pure: a history and a model in, a verdict out. The only outside input is the clock the budget is
 * measured on, which the caller may pass in.
 */
import { opKey, type History, type Op } from "./op.ts";

/** A model of the system under test: a pure state machine over operations. */
export interface Model<S = unknown> {
  name: string;
  /** The state of a key before any operation. */
  init(key: string): S;
  /** The state after `op`, or REJECT if `op` could not have happened (with its observed result) in `state`. */
  step(state: S, op: Op): S | typeof REJECT;
  /** Operations this model judges (default: all). Others are ignored. */
  judges?(op: Op): boolean;
  /**
   * A `fail` that still observed the state (a buy refused for "not enough stock"). Other fails
   * definitely did not happen and are dropped before the search. Default: none observes.
   */
  observes?(op: Op): boolean;
  /** The partition an operation belongs to (default: its `key` field). Partitions are checked independently. */
  partition?(op: Op): string;
  /** A string equal for equal states (default: JSON). */
  hash?(state: S): string;
  /** The state for people (default: JSON). */
  describe?(state: S): string;
  /**
   * A cheap necessary condition, tried before the search: a reason this partition cannot be
   * linearizable, or null when it finds none. Must be sound (never refute a linearizable history):
   * it only saves the search's worst case, a failing partition of many concurrent commuting ops.
   */
  refute?(ops: readonly Op[], key: string): Refutation | null;
  /**
   * Operations with the same key here are interchangeable: in every state the model accepts them
   * alike and they lead to the same state (a counter's increments by the same amount); null for an
   * operation that has no such twin. Among interchangeable operations that could all be linearized
   * next, the search tries only the one that returns first: if a linearization puts another one
   * here, swapping the two gives one that puts this one here (the other still returns after the
   * swapped-to point). Without it, n concurrent increments and a read between them cost the search
   * every subset of them of the read's size.
   */
  interchangeable?(op: Op): string | null;
  /**
   * Every operation depends on nothing but itself (echo: the reply must carry what was sent): each
   * is stepped alone from its key's initial state, with no search. A million echoes check in a blink.
   */
  independent?: boolean;
}

export interface Refutation {
  /** The operation whose result cannot be explained. */
  stuck: Op;
  /** The operations that show it. */
  window: Op[];
  /** Why, for people. */
  why: string;
}

export const REJECT: unique symbol = Symbol("reject");

export type Verdict = "linearizable" | "not linearizable" | "unknown";

/** Where a partition's search got stuck: the witness a report shows. */
export interface Failure {
  key: string;
  /** The operation that could not be linearized before it returned. */
  stuck: Op;
  /** The longest linearizable prefix found, in linearization order. */
  linearized: Op[];
  /** The model state after that prefix: the state just before the failing window. */
  stateBefore: string;
  /** The operations not in the prefix that were invoked before `stuck` returned: the smallest window the search could not order. */
  window: Op[];
}

export interface PartitionResult {
  key: string;
  verdict: Verdict;
  ops: number;
  failure?: Failure;
}

export interface CheckResult {
  verdict: Verdict;
  model: string;
  /** Operations judged (after dropping fails that observed nothing and ops the model does not judge). */
  ops: number;
  partitions: number;
  /** Partitions that are not linearizable, with their witnesses. */
  failures: Failure[];
  /** Keys whose search ran out of budget. */
  unknown: string[];
  elapsedMs: number;
  /** Search steps taken (calls tried), for benchmarks. */
  steps: number;
}

export interface CheckOptions {
  /** Give up (verdict `unknown`) after this many ms. Default 10 s. */
  budgetMs?: number;
  /** The clock the budget is measured on (default performance.now). */
  clock?: () => number;
  /**
   * Give up (verdict `unknown`) after this many search steps over all partitions (default: no limit).
   * Unlike budgetMs it does not depend on how busy the machine is: the same history gets the same
   * verdict on any machine, under any load.
   */
  maxSteps?: number;
  /** Stop at the first non-linearizable partition (default false: check all). */
  firstFailure?: boolean;
}

const CLOCK_EVERY = 1024;
/** Partitions of up to 32 × this many operations keep exact copies of visited sets (see checkPartition). */
const EXACT_WORDS = 64;

/** Checks a history against a model. Never throws for a bad history shape that `isOp` accepts. */
export function checkLinearizable<S>(history: History, model: Model<S>, options: CheckOptions = {}): CheckResult {
  const clock = options.clock ?? (() => performance.now());
  const t0 = clock();
  const deadline = t0 + (options.budgetMs ?? 10_000);
  const judges = model.judges ?? (() => true);
  const observes = model.observes ?? (() => false);
  const partitionOf = model.partition ?? opKey;
  const parts = new Map<string, Op[]>();
  let ops = 0;
  for (const op of history) {
    if (!judges(op)) continue;
    if (op.type === "fail" && !observes(op)) continue;
    const k = partitionOf(op);
    let list = parts.get(k);
    if (!list) parts.set(k, (list = []));
    list.push(op);
    ops++;
  }
  const result: CheckResult = { verdict: "linearizable", model: model.name, ops, partitions: parts.size, failures: [], unknown: [], elapsedMs: 0, steps: 0 };
  for (const [key, list] of [...parts].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (model.independent) {
      const init = model.init(key);
      const bad = list.find((op) => model.step(init, op) === REJECT);
      result.steps += list.length;
      if (bad) {
        result.failures.push({ key, stuck: bad, linearized: [], stateBefore: (model.describe ?? ((s: S) => JSON.stringify(s) ?? "undefined"))(init), window: [bad] });
        if (options.firstFailure) break;
      }
      continue;
    }
    const ref = model.refute?.(list, key);
    if (ref) {
      result.failures.push({ key, stuck: ref.stuck, linearized: [], stateBefore: ref.why, window: ref.window });
      if (options.firstFailure) break;
      continue;
    }
    const r = checkPartition(key, list, model, deadline, clock, (options.maxSteps ?? Infinity) - result.steps);
    result.steps += r.steps;
    if (r.verdict === "not linearizable") {
      result.failures.push(r.failure!);
      if (options.firstFailure) break;
    } else if (r.verdict === "unknown") result.unknown.push(key);
  }
  result.verdict = result.failures.length > 0 ? "not linearizable" : result.unknown.length > 0 ? "unknown" : "linearizable";
  result.elapsedMs = clock() - t0;
  return result;
}

interface PartitionSearch extends PartitionResult {
  steps: number;
}

/** One key's search. Entries: 2i is op i's call, 2i+1 its return; `head` is a sentinel before the first. */
function checkPartition<S>(key: string, ops: Op[], model: Model<S>, deadline: number, clock: () => number, maxSteps: number): PartitionSearch {
  const n = ops.length;
  const hash = model.hash ?? ((s: S) => JSON.stringify(s) ?? "undefined");
  const describe = model.describe ?? ((s: S) => JSON.stringify(s) ?? "undefined");
  const retTime = (i: number) => (ops[i]!.type === "info" || ops[i]!.completeMs === null ? Infinity : ops[i]!.completeMs!);
  const order: number[] = [];
  for (let i = 0; i < n; i++) order.push(2 * i, 2 * i + 1);
  const time = (e: number) => (e & 1 ? retTime(e >> 1) : ops[e >> 1]!.invokeMs);
  // Calls before returns at the same instant: touching operations count as concurrent (never a false alarm).
  order.sort((a, b) => time(a) - time(b) || (a & 1) - (b & 1) || a - b);
  const head = 2 * n;
  const next = new Int32Array(2 * n + 1).fill(-1);
  const prev = new Int32Array(2 * n + 1).fill(-1);
  let last = head;
  for (const e of order) {
    next[last] = e;
    prev[e] = last;
    last = e;
  }
  const lift = (e: number) => {
    const m = e + 1;
    next[prev[e]!] = next[e]!;
    if (next[e]! >= 0) prev[next[e]!] = prev[e]!;
    next[prev[m]!] = next[m]!;
    if (next[m]! >= 0) prev[next[m]!] = prev[m]!;
  };
  const unlift = (e: number) => {
    const m = e + 1;
    if (next[m]! >= 0) prev[next[m]!] = m;
    next[prev[m]!] = m;
    if (next[e]! >= 0) prev[next[e]!] = e;
    next[prev[e]!] = e;
  };

  // Interchangeable operations (see Model.interchangeable): each one's class, as the class's members
  // in the order they return (ties by index), and where each entry sits in time order.
  const twins: Array<number[] | undefined> = new Array(n);
  const pos = new Int32Array(2 * n);
  order.forEach((e, k) => (pos[e] = k));
  if (model.interchangeable) {
    const classes = new Map<string, number[]>();
    for (let i = 0; i < n; i++) {
      const c = model.interchangeable(ops[i]!);
      if (c !== null) (classes.get(c) ?? classes.set(c, []).get(c)!).push(i);
    }
    for (const members of classes.values()) {
      if (members.length < 2) continue;
      members.sort((a, b) => retTime(a) - retTime(b) || a - b);
      for (const i of members) twins[i] = members;
    }
  }
  /** A twin of op i that returns before it and could be linearized now: then trying i now is redundant. */
  const dominated = (i: number, from: number): boolean => {
    const members = twins[i];
    if (!members) return false;
    // Every entry before `from` is a call (the scan stops at the first return): find that return.
    let e = from;
    while (e >= 0 && (e & 1) === 0) e = next[e]!;
    const firstReturn = e < 0 ? Infinity : pos[e]!;
    for (const j of members) {
      if (j === i) return false;
      if ((bits[j >>> 5]! & (1 << (j & 31))) === 0 && pos[2 * j]! < firstReturn) return true;
    }
    throw new Error("assertion failed: an operation missing from its own class");
  };

  let definite = 0;
  for (const op of ops) if (op.type !== "info") definite++;
  const words = (n + 31) >>> 5;
  const bits = new Uint32Array(words);
  // The linearized set is identified by a 96-bit Zobrist hash kept incrementally. Up to EXACT_WORDS
  // words the cache also keeps an exact copy of the set to compare; above, copying it at every step
  // would dominate the search, and a false match (probability about entries² / 2^97, below 1e-15
  // for any search that fits the budget) is accepted instead.
  const exact = words <= EXACT_WORDS;
  const z1 = new Uint32Array(n);
  const z2 = new Uint32Array(n);
  const z3 = new Uint32Array(n);
  let seed = (0x9e3779b9 ^ n) >>> 0;
  const rnd = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  for (let i = 0; i < n; i++) {
    z1[i] = rnd();
    z2[i] = rnd();
    z3[i] = rnd();
  }
  let h1 = 0;
  let h2 = 0;
  let h3 = 0;
  const cache = new Map<string, Uint32Array[] | true>();
  const sameBits = (a: Uint32Array) => {
    for (let w = 0; w < words; w++) if (a[w] !== bits[w]) return false;
    return true;
  };

  let state = model.init(key);
  const stack: Array<{ e: number; state: S }> = [];
  let linearizedDefinite = 0;
  let steps = 0;
  let best = -1;
  let failure: Failure | undefined;
  let entry = next[head]!;

  while (linearizedDefinite < definite) {
    if (entry < 0) throw new Error("assertion failed: the entry list ended before every definite operation was linearized");
    if ((++steps & (CLOCK_EVERY - 1)) === 0 && (clock() > deadline || steps > maxSteps)) return { key, verdict: "unknown", ops: n, steps };
    if ((entry & 1) === 0) {
      const i = entry >> 1;
      if (dominated(i, entry)) {
        entry = next[entry]!;
        continue;
      }
      const after = model.step(state, ops[i]!);
      if (after !== REJECT) {
        const w = i >>> 5;
        const b = 1 << (i & 31);
        bits[w] = bits[w]! | b;
        const k = `${(h1 ^ z1[i]!) >>> 0}:${(h2 ^ z2[i]!) >>> 0}:${(h3 ^ z3[i]!) >>> 0}:${hash(after)}`;
        const bucket = cache.get(k);
        const seen = bucket !== undefined && (bucket === true || bucket.some(sameBits));
        if (!seen) {
          if (!exact) cache.set(k, true);
          else if (Array.isArray(bucket)) bucket.push(bits.slice());
          else cache.set(k, [bits.slice()]);
          stack.push({ e: entry, state });
          state = after;
          h1 = (h1 ^ z1[i]!) >>> 0;
          h2 = (h2 ^ z2[i]!) >>> 0;
          h3 = (h3 ^ z3[i]!) >>> 0;
          if (ops[i]!.type !== "info") linearizedDefinite++;
          lift(entry);
          entry = next[head]!;
          continue;
        }
        bits[w] = bits[w]! & ~b;
      }
      entry = next[entry]!;
      continue;
    }
    // A return whose operation is not yet linearized: this path is a dead end.
    if (stack.length > best) {
      best = stack.length;
      const stuck = ops[entry >> 1]!;
      const inPrefix = new Set(stack.map((s) => s.e >> 1));
      const window: Op[] = [];
      for (let i = 0; i < n; i++) if (!inPrefix.has(i) && ops[i]!.invokeMs <= (stuck.completeMs ?? Infinity)) window.push(ops[i]!);
      window.sort((a, b) => a.invokeMs - b.invokeMs);
      failure = { key, stuck, linearized: stack.map((s) => ops[s.e >> 1]!), stateBefore: describe(state), window };
    }
    const top = stack.pop();
    if (!top) return { key, verdict: "not linearizable", ops: n, failure, steps };
    const i = top.e >> 1;
    state = top.state;
    bits[i >>> 5] = bits[i >>> 5]! & ~(1 << (i & 31));
    h1 = (h1 ^ z1[i]!) >>> 0;
    h2 = (h2 ^ z2[i]!) >>> 0;
    h3 = (h3 ^ z3[i]!) >>> 0;
    if (ops[i]!.type !== "info") linearizedDefinite--;
    unlift(top.e);
    entry = next[top.e]!;
  }
  return { key, verdict: "linearizable", ops: n, steps };
}
