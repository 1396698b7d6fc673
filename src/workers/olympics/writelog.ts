import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, type Storage } from "../runtime/types.ts";

const PREFIX = "write/";
/** Longest write id accepted: ids are uids, not payloads. */
export const MAX_WRITE_ID_CHARS = 128;

interface Entry {
  id: string;
  /** What the write was (e.g. "inc/Gaul/gold"): an id reused for another write is refused, not answered with the wrong result. */
  op: string;
  result: unknown;
}

/**
 * The last `capacity` writes by id, so a write the network duplicated, or that a writer sent again
 * after a timeout, is applied once and answered with its first result. An increment is not
 * idempotent and a late copy of an old set_score would roll a score back: both need this. Durable,
 * and recorded in the same transaction as the write, so a restart does not reopen the window.
 */
export class WriteLog {
  private readonly byId = new Map<string, Entry>();
  private next = 0;

  constructor(
    private readonly storage: Storage,
    private readonly capacity: number,
  ) {
    const rows = storage.scan<Entry>({ prefix: PREFIX, reverse: true, limit: capacity });
    for (const [key, e] of rows.reverse()) {
      this.byId.set(e.id, e);
      this.next = Number(key.slice(PREFIX.length)) + 1;
    }
  }

  /** The first result of this write, or undefined if it is new. */
  lookup(id: string, op: string): unknown {
    const e = this.byId.get(id);
    if (!e) return undefined;
    if (e.op !== op) throw new RpcError(ErrorCode.PreconditionFailed, `write id ${JSON.stringify(id)} was already used for a different write`);
    return e.result;
  }

  /** Call inside the write's storage transaction. */
  record(id: string, op: string, result: unknown): void {
    const e: Entry = { id, op, result };
    this.storage.put(seqKey(PREFIX, this.next), e);
    if (this.next >= this.capacity) this.storage.delete(seqKey(PREFIX, this.next - this.capacity));
    this.next++;
    this.byId.set(id, e);
    if (this.byId.size > this.capacity) this.byId.delete(this.byId.keys().next().value!);
  }
}

/** A write id from untrusted input: absent, or a short non-empty string. */
export function parseWriteId(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string" || v === "" || v.length > MAX_WRITE_ID_CHARS) {
    throw new RpcError(ErrorCode.MalformedRequest, `write_id must be a non-empty string of at most ${MAX_WRITE_ID_CHARS} characters`);
  }
  return v;
}
