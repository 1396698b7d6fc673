import type { Stock } from "./messages.ts";

interface Entry {
  stock: Stock;
  version: number;
}

/** How many stock names the cache tracks invalidation floors for before it forgets them all. */
const MAX_FLOORS = 10_000;

/**
 * The frontend's lookup cache: an LRU of at most `capacity` stocks (a Map keeps insertion order;
 * a hit re-inserts). Each stock also has a version floor raised by invalidations, so a lookup reply
 * that left the catalog before a trade (and arrives after its invalidation) is never cached.
 */
export class StockCache {
  private readonly entries = new Map<string, Entry>();
  private readonly floors = new Map<string, number>();
  /** Bumped when floors are forgotten: fills begun before that cannot be trusted. */
  private generation = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`cache size must be a non-negative integer, got ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(name: string): Stock | undefined {
    const e = this.entries.get(name);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(name);
    this.entries.set(name, e);
    return e.stock;
  }

  /** A token to pass to `fill`: taken before asking the catalog. */
  ticket(): number {
    return this.generation;
  }

  /** Caches a catalog reply unless an invalidation at or past its version has been seen since. */
  fill(name: string, stock: Stock, version: number, ticket: number): void {
    if (this.capacity === 0 || ticket !== this.generation) return;
    if (version < (this.floors.get(name) ?? 0)) return;
    const cur = this.entries.get(name);
    if (cur && cur.version > version) return;
    this.entries.delete(name);
    this.entries.set(name, { stock, version });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drops `name`; with a version, no reply older than it may be cached again. */
  invalidate(name: string, version?: number): void {
    this.entries.delete(name);
    if (version === undefined || version <= (this.floors.get(name) ?? 0)) return;
    if (this.floors.size >= MAX_FLOORS && !this.floors.has(name)) {
      this.floors.clear();
      this.entries.clear();
      this.generation++;
    }
    this.floors.set(name, version);
  }
}
