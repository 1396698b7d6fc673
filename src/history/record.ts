/**
 * Assembling a history on the driver. A client node's recorder (`node.history`, provided by the
 * runtime) sends the driver one `history` message when an operation is invoked and one when it
 * completes, each stamped by the runtime with its host's clock — virtual time in the simulator, the
 * real clock on threads — never with the node's adjustable clock. Sending the invocation at once
 * means an operation open when its client crashed still appears (as `info`: it may have happened).
 */
import { MAX_HISTORY_OPS, type History, type Op, type OpType } from "./op.ts";

/** The body of a recorder's message to the driver. */
export interface HistoryEvent {
  type: "history";
  ev: "invoke" | "complete";
  process: string;
  incarnation: number;
  /** The operation's number within this process incarnation. */
  n: number;
  t: number;
  f?: string;
  value?: unknown;
  /** invoke: the system's fields; complete: fields to add (an error text, say). */
  fields?: Record<string, unknown>;
  outcome?: OpType;
  [k: string]: unknown;
}

const FIELD_LIMIT = 16;
const RESERVED = new Set(["process", "type", "f", "value", "invokeMs", "completeMs"]);

export function isHistoryEvent(b: unknown): b is HistoryEvent {
  if (typeof b !== "object" || b === null) return false;
  const e = b as Record<string, unknown>;
  if (e.type !== "history" || (e.ev !== "invoke" && e.ev !== "complete")) return false;
  if (typeof e.process !== "string" || !Number.isSafeInteger(e.incarnation) || !Number.isSafeInteger(e.n)) return false;
  if (typeof e.t !== "number" || !Number.isFinite(e.t)) return false;
  if (e.fields !== undefined && (typeof e.fields !== "object" || e.fields === null || Array.isArray(e.fields) || Object.keys(e.fields).length > FIELD_LIMIT)) return false;
  if (e.ev === "invoke") return typeof e.f === "string" && e.f.length > 0 && e.f.length <= 64;
  return e.outcome === "ok" || e.outcome === "fail" || e.outcome === "info";
}

/** The driver's history under construction: bounded; past the bound it is marked truncated (checkers then say `unknown`). */
export class HistoryLog {
  private readonly open = new Map<string, Op>();
  private readonly done: Op[] = [];
  /** Events refused (malformed, unmatched completion, or over the limit). */
  refused = 0;
  truncated = false;

  constructor(private readonly maxOps = MAX_HISTORY_OPS) {}

  get size(): number {
    return this.done.length + this.open.size;
  }

  add(e: unknown): void {
    if (!isHistoryEvent(e)) {
      this.refused++;
      return;
    }
    const id = `${e.process}#${e.incarnation}:${e.n}`;
    if (e.ev === "invoke") {
      if (this.size >= this.maxOps) {
        this.truncated = true;
        this.refused++;
        return;
      }
      if (this.open.has(id)) {
        this.refused++;
        return;
      }
      const op: Op = { process: e.process, type: "info", f: e.f!, value: e.value ?? null, invokeMs: e.t, completeMs: null };
      for (const [k, v] of Object.entries(e.fields ?? {})) if (!RESERVED.has(k)) op[k] = v;
      this.open.set(id, op);
      return;
    }
    const op = this.open.get(id);
    if (!op || e.t < op.invokeMs) {
      this.refused++;
      return;
    }
    this.open.delete(id);
    op.type = e.outcome!;
    op.completeMs = e.t;
    if ("value" in e) op.value = e.value ?? null;
    for (const [k, v] of Object.entries(e.fields ?? {})) if (!RESERVED.has(k)) op[k] = v;
    this.done.push(op);
  }

  /** Every operation so far, by invocation time; those still open are `info` with completeMs null. */
  history(): History {
    return [...this.done, ...this.open.values()].map((op) => ({ ...op })).sort((a, b) => a.invokeMs - b.invokeMs || (a.process < b.process ? -1 : a.process > b.process ? 1 : 0));
  }
}
