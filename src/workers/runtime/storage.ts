import { Database } from "bun:sqlite";
import { MemoryStorage } from "./memory-storage.ts";
import { pack, unpack } from "./msgpack.ts";
import type { ScanOptions, Storage, StorageMode } from "./types.ts";

/** Zero-padded key for a non-negative integer, so numeric order is string order. */
export { seqKey } from "./keys.ts";

/** A node's storage: a file at `path` for `os` and `fsync`; for `memory`, maps of the node's own (memory-storage.ts). */
export function openStorage(mode: StorageMode, path: string): Storage & { close(): void } {
  return mode === "memory" ? new MemoryStorage() : new SqliteStorage(path, mode);
}

/**
 * Storage on bun:sqlite in WAL mode. Every `put` outside a transaction is its own commit; with
 * mode `fsync` the commit is fsynced (synchronous=FULL), with `os` it survives a process crash
 * (synchronous=NORMAL in WAL), with `memory` it is an in-memory database. Nodes in mode `memory`
 * get a MemoryStorage instead (openStorage); this one in memory is the reference its tests hold it to.
 */
export class SqliteStorage implements Storage {
  private readonly db: Database;
  private readonly stmtGet;
  private readonly stmtPut;
  private readonly stmtDel;
  /**
   * One transaction wrapper for every call, handed the work to run. bun:sqlite's db.transaction(fn)
   * builds a new wrapper (with its deferred, immediate and exclusive variants) each time it is
   * called: a third of a two-put memory transaction (`bench runtime`, "storage transaction of two
   * puts": p50 2.95–3.03 µs that way, 1.90–2.05 µs this way, in two runs). Called inside another transaction it
   * still becomes a savepoint (test/storage.test.ts).
   */
  private readonly atomically: (fn: () => unknown) => unknown;
  private closed = false;

  constructor(path: string | null, mode: StorageMode) {
    this.db = new Database(mode === "memory" || path === null ? ":memory:" : path, { create: true, strict: true });
    if (mode !== "memory" && path !== null) {
      this.db.run("PRAGMA journal_mode = WAL");
      this.db.run(`PRAGMA synchronous = ${mode === "fsync" ? "FULL" : "NORMAL"}`);
    }
    // A rowid table (the key's index points at the row), not WITHOUT ROWID: that one keeps whole
    // rows in its key B-tree, good for small rows, but a value of a few KB (a paxos slot's batch)
    // spills to overflow pages and rebalances the tree: a 11 KB put in a transaction cost 2-3x the
    // CPU in memory and ~1.5x in WAL mode; small values cost the same either way. A database made
    // before keeps its table.
    this.db.run("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL)");
    this.stmtGet = this.db.query<{ value: Uint8Array }, [string]>("SELECT value FROM kv WHERE key = ?");
    this.stmtPut = this.db.query("INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value");
    this.stmtDel = this.db.query("DELETE FROM kv WHERE key = ?");
    this.atomically = this.db.transaction((fn: () => unknown) => fn());
  }

  get<T = unknown>(key: string): T | undefined {
    const row = this.stmtGet.get(key);
    return row ? (unpack(row.value) as T) : undefined;
  }

  put(key: string, value: unknown): void {
    if (value === undefined) throw new TypeError(`storage.put(${key}): undefined is not storable; use delete`);
    this.stmtPut.run(key, pack(value));
  }

  delete(key: string): void {
    this.stmtDel.run(key);
  }

  scan<T = unknown>(opts: ScanOptions = {}): Array<[string, T]> {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (opts.prefix !== undefined) {
      where.push("key >= ? AND key < ?");
      args.push(opts.prefix, opts.prefix + "\uffff");
    }
    if (opts.start !== undefined) {
      where.push("key >= ?");
      args.push(opts.start);
    }
    if (opts.end !== undefined) {
      where.push("key < ?");
      args.push(opts.end);
    }
    let sql = "SELECT key, value FROM kv";
    if (where.length > 0) sql += " WHERE " + where.join(" AND ");
    sql += ` ORDER BY key ${opts.reverse ? "DESC" : "ASC"}`;
    if (opts.limit !== undefined) {
      sql += " LIMIT ?";
      args.push(opts.limit);
    }
    const rows = this.db.query<{ key: string; value: Uint8Array }, (string | number)[]>(sql).all(...args);
    return rows.map((r) => [r.key, unpack(r.value) as T]);
  }

  transaction<R>(fn: () => R): R {
    return this.atomically(fn) as R;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}
