/**
 * A client-observed history: every operation a client invoked, with how it ended. This is what
 * checkers judge — what users saw, not what nodes say about themselves.
 *
 * One completed operation per record (Jepsen's invoke/complete pair folded into one line):
 * - `ok`   the operation definitely happened and returned `value`;
 * - `fail` it definitely did not happen (a definite error code; `error` says which);
 * - `info` indefinite (timeout, crash code 13, or never answered before the end): it may or may not
 *   have happened, and if it did, it may have taken effect at any time after `invokeMs`.
 */

export type OpType = "ok" | "fail" | "info";

export interface Op {
  /** The client that invoked it (a node id). One process has at most one operation open at a time per lane. */
  process: string;
  type: OpType;
  /** The operation's name: "read", "write", "buy", "lookup", ... */
  f: string;
  /** Jepsen's value: the argument for writes, what was observed for reads (null when unknown). */
  value: unknown;
  /** When the client invoked it, on the driver's clock (virtual time in the simulator). */
  invokeMs: number;
  /** When the client learned the outcome; null if it never did before the history ended. */
  completeMs: number | null;
  /** The system's own fields (`key`, `error`, `sent`, ...). */
  [field: string]: unknown;
}

export type History = Op[];

const TYPES: ReadonlySet<string> = new Set(["ok", "fail", "info"]);

/** Largest history a writer, reader or checker accepts (explicit limit, not a guess at memory). */
export const MAX_HISTORY_OPS = 2_000_000;
/** Longest JSON line a reader accepts. */
export const MAX_LINE_CHARS = 64 * 1024;

/** Why `v` is not an Op, or null when it is one. */
export function invalidOp(v: unknown): string | null {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return "not an object";
  const o = v as Record<string, unknown>;
  if (typeof o.process !== "string" || o.process.length === 0) return "process must be a non-empty string";
  if (typeof o.type !== "string" || !TYPES.has(o.type)) return `type must be ok, fail or info, got ${JSON.stringify(o.type)}`;
  if (typeof o.f !== "string" || o.f.length === 0) return "f must be a non-empty string";
  if (!("value" in o)) return "value is missing (null when unknown)";
  if (typeof o.invokeMs !== "number" || !Number.isFinite(o.invokeMs)) return "invokeMs must be a finite number";
  if (o.completeMs !== null && (typeof o.completeMs !== "number" || !Number.isFinite(o.completeMs))) return "completeMs must be a finite number or null";
  if (typeof o.completeMs === "number" && o.completeMs < o.invokeMs) return "completeMs is before invokeMs";
  if (o.completeMs === null && o.type !== "info") return "only an info operation may lack completeMs";
  return null;
}

export function isOp(v: unknown): v is Op {
  return invalidOp(v) === null;
}

/** The key an operation belongs to, for models partitioned by key ("" when it has none). */
export function opKey(op: Op): string {
  return typeof op.key === "string" ? op.key : op.key === undefined ? "" : JSON.stringify(op.key);
}

/** A short human description: `client-1 buy nvidia 3 → ok`. */
export function describeOp(op: Op): string {
  const key = op.key === undefined ? "" : ` ${String(op.key)}`;
  const err = typeof op.error === "string" ? ` (${op.error})` : "";
  return `${op.process} ${op.f}${key} ${JSON.stringify(op.value)} → ${op.type}${err}`;
}
