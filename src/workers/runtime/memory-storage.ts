import { assert } from "./assert.ts";
import { pack, unpack } from "./msgpack.ts";
import type { ScanOptions, Storage } from "./types.ts";

/**
 * Storage mode `memory`: a node's data in plain maps of its own, lost with the node. It keeps
 * SqliteStorage's contract exactly — values stored as their msgpack bytes (what comes back is a
 * copy, as from a database), transactions that land whole or not at all and nest as savepoints,
 * keys as SQLite stores them and scans in its order — and test/storage.test.ts holds it to an
 * in-memory SQLite database op by op. It replaced that database because a benchmark's node
 * commits rarely, so cold: SQLite's code and pages, run once per update, sat between obelix's
 * stamp and its fan-out. Packed push (push-pull's stage, both builds, 3 interleaved rounds): p50
 * at 1 tablet 0.096–0.109 ms against 0.121–0.147 with SQLite, at 500 0.50–0.56 ms against
 * 0.54–0.66. Warm, in `bench runtime`, a two-put transaction takes 0.36 µs here against 1.97 µs.
 */
export class MemoryStorage implements Storage {
  private readonly values = new Map<string, Uint8Array>();
  /** Every key, in SQLite's order for TEXT (compareKeys), for scans. */
  private readonly order: string[] = [];
  /**
   * One undo journal per open transaction, innermost last: each key's value before that transaction
   * first wrote it (undefined: absent). A failed transaction puts those back; one that returns hands
   * its journal to the one around it, for keys that one has not journalled already.
   */
  private readonly journals: Array<Map<string, Uint8Array | undefined>> = [];
  private closed = false;

  get<T = unknown>(key: string): T | undefined {
    this.open();
    const v = this.values.get(asStored(key));
    return v === undefined ? undefined : (unpack(v) as T);
  }

  put(key: string, value: unknown): void {
    this.open();
    if (value === undefined) throw new TypeError(`storage.put(${key}): undefined is not storable; use delete`);
    // Its own copy of the bytes: pack hands out views of a shared buffer, which one kept value would hold whole.
    const bytes = pack(value).slice();
    const k = asStored(key);
    this.journal(k);
    this.write(k, bytes);
  }

  delete(key: string): void {
    this.open();
    const k = asStored(key);
    if (!this.values.has(k)) return;
    this.journal(k);
    this.erase(k);
  }

  scan<T = unknown>(opts: ScanOptions = {}): Array<[string, T]> {
    this.open();
    // The bounds SqliteStorage's query sets, compared the way SQLite compares TEXT.
    let lo = opts.start === undefined ? undefined : asStored(opts.start);
    let hi = opts.end === undefined ? undefined : asStored(opts.end);
    if (opts.prefix !== undefined) {
      const prefix = asStored(opts.prefix);
      if (lo === undefined || compareKeys(prefix, lo) > 0) lo = prefix;
      const past = prefix + "\uffff";
      if (hi === undefined || compareKeys(past, hi) < 0) hi = past;
    }
    const first = lo === undefined ? 0 : this.lowerBound(lo);
    const end = hi === undefined ? this.order.length : Math.max(first, this.lowerBound(hi));
    const limit = opts.limit === undefined || opts.limit < 0 ? Infinity : opts.limit;
    const out: Array<[string, T]> = [];
    const take = (i: number) => {
      const key = this.order[i]!;
      out.push([key, unpack(this.values.get(key)!) as T]);
    };
    if (opts.reverse) for (let i = end - 1; i >= first && out.length < limit; i--) take(i);
    else for (let i = first; i < end && out.length < limit; i++) take(i);
    return out;
  }

  transaction<R>(fn: () => R): R {
    this.open();
    const mine = new Map<string, Uint8Array | undefined>();
    this.journals.push(mine);
    let result: R;
    try {
      result = fn();
    } catch (e) {
      this.journals.pop();
      for (const [key, before] of mine) {
        if (before === undefined) this.erase(key);
        else this.write(key, before);
      }
      throw e;
    }
    this.journals.pop();
    const outer = this.journals.at(-1);
    if (outer) for (const [key, before] of mine) if (!outer.has(key)) outer.set(key, before);
    return result;
  }

  close(): void {
    this.closed = true;
  }

  /** Keys held (for tests and inspection). */
  get size(): number {
    return this.values.size;
  }

  private open(): void {
    // As a closed database refuses every call: a node's storage is closed only once the node is gone.
    assert(!this.closed, "storage used after close");
  }

  /** Inside a transaction, note what `key` held before the transaction's first write to it. */
  private journal(key: string): void {
    const j = this.journals.at(-1);
    if (j !== undefined && !j.has(key)) j.set(key, this.values.get(key));
  }

  private write(key: string, bytes: Uint8Array): void {
    if (!this.values.has(key)) {
      // Keys usually come in order (sequence numbers, log entries): appending is the common case.
      const n = this.order.length;
      if (n === 0 || compareKeys(this.order[n - 1]!, key) < 0) this.order.push(key);
      else this.order.splice(this.lowerBound(key), 0, key);
    }
    this.values.set(key, bytes);
  }

  private erase(key: string): void {
    if (!this.values.delete(key)) return;
    const i = this.lowerBound(key);
    assert(this.order[i] === key, `storage: key ${JSON.stringify(key)} missing from the key order`);
    this.order.splice(i, 1);
  }

  /** The first position in `order` whose key is not below `key`. */
  private lowerBound(key: string): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.order[mid]!, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * SQLite's order for TEXT keys (BINARY collation: their UTF-8 bytes), which is code point order.
 * JavaScript compares UTF-16 code units, which differs only where a surrogate (a code point above
 * U+FFFF) meets a unit from U+E000 to U+FFFF: there the surrogate's code point is the larger one.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

/** A key as SQLite stores it: its text as UTF-8, so a lone surrogate becomes U+FFFD (and keys differing only there are one key). */
function asStored(key: string): string {
  return key.toWellFormed();
}

function codePointRank(unit: number): number {
  if (unit < 0xd800) return unit;
  return unit < 0xe000 ? unit + 0x2000 : unit - 0x800;
}
