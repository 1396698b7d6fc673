interface Entry<V> {
  value: V;
  version: number;
}

/** How many keys the cache tracks invalidation floors for before it forgets them all. */
const MAX_FLOORS = 10_000;

/**
 * A front end's read cache: an LRU of at most `capacity` values (a Map keeps insertion order; a
 * hit re-inserts). Each key also has a version floor raised by invalidations, so a reply that left
 * a replica before a write (and arrives after its invalidation) is never cached. Shared by stocks
 * (lookups by stock name) and bookstore (lookups, quantities and searches).
 */
export class VersionedLru<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private readonly floors = new Map<string, number>();
  /** Bumped when floors are forgotten or the cache is cleared: fills begun before that cannot be trusted. */
  private generation = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacity: number) {
    if (!Number.isSafeInteger(capacity) || capacity < 0) throw new RangeError(`cache size must be a non-negative integer, got ${capacity}`);
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.value;
  }

  /** A token to pass to `fill`: taken before asking a replica. */
  ticket(): number {
    return this.generation;
  }

  /** Caches a replica's reply unless an invalidation at or past its version has been seen since. */
  fill(key: string, value: V, version: number, ticket: number): void {
    if (this.capacity === 0 || ticket !== this.generation) return;
    if (version < (this.floors.get(key) ?? 0)) return;
    const cur = this.entries.get(key);
    if (cur && cur.version > version) return;
    this.entries.delete(key);
    this.entries.set(key, { value, version });
    if (this.entries.size > this.capacity) this.entries.delete(this.entries.keys().next().value!);
  }

  /** Drops `key`; with a version, no reply older than it may be cached again. */
  invalidate(key: string, version?: number): void {
    this.entries.delete(key);
    if (version === undefined || version <= (this.floors.get(key) ?? 0)) return;
    if (this.floors.size >= MAX_FLOORS && !this.floors.has(key)) this.clear();
    this.floors.set(key, version);
  }

  /** Forgets everything, including fills already in flight. */
  clear(): void {
    this.floors.clear();
    this.entries.clear();
    this.generation++;
  }
}
