/**
 * Assembling a history on the driver. A client node's recorder (`node.history`, provided by the
 * runtime) sends the driver an event when an operation is invoked and one when it completes (a
 * turn's events batched in one `history` message), each stamped by the runtime with its host's clock — virtual time in the simulator, the
 * real clock on threads — never with the node's adjustable clock. Sending the invocation at once
 * means an operation open when its client crashed still appears (as `info`: it may have happened).
 */
import {
  EVENT_STRIDE,
  HISTORY_COMPLETE,
  HISTORY_COMPLETE_GROUP,
  HISTORY_COMPLETE_WITH_VALUE,
  HISTORY_INVOKE,
  HISTORY_INVOKE_GROUP,
  MAX_GROUP_COLUMNS,
  MAX_GROUP_OPS,
  MAX_HISTORY_BATCH,
} from "../workers/runtime/recorder.ts";
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
  if (typeof e.process !== "string" || !Number.isSafeInteger(e.incarnation) || !isStamp(e.n, e.t)) return false;
  if (e.fields !== undefined && !isFields(e.fields)) return false;
  return e.ev === "invoke" ? isOpName(e.f) : isOutcome(e.outcome);
}

/** An event's operation number and time. The checks here serve single events and a batch's alike. */
const isStamp = (n: unknown, t: unknown): n is number => Number.isSafeInteger(n) && typeof t === "number" && Number.isFinite(t);
const isOpName = (f: unknown): f is string => typeof f === "string" && f.length > 0 && f.length <= 64;
const isOutcome = (o: unknown): o is OpType => o === "ok" || o === "fail" || o === "info";

function isFields(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  let n = 0;
  for (const _ in v) if (++n > FIELD_LIMIT) return false;
  return true;
}

/** A group's columns: at most MAX_GROUP_COLUMNS arrays of `length` entries each. */
function isColumns(v: unknown, length: number): v is Record<string, unknown[]> | undefined {
  if (v === undefined) return true;
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    const col = (v as Record<string, unknown>)[k];
    if (++n > MAX_GROUP_COLUMNS || !Array.isArray(col) || col.length !== length) return false;
  }
  return true;
}

function addFields(op: Op, fields: Record<string, unknown> | undefined): void {
  if (fields === undefined) return;
  for (const k in fields) if (!RESERVED.has(k)) op[k] = fields[k];
}

/**
 * A group's operations (invokeGroup) as they arrived, filed as one entry: each becomes an Op of its
 * own only when the history is asked for. Making 64 objects per request as it arrived was most of
 * what the driver's thread spent per operation, on work a run needs once, at its end.
 */
class Group {
  type: OpType = "info";
  completeMs: number | null = null;
  fields: Record<string, unknown> | undefined = undefined;
  constructor(
    readonly process: string,
    readonly f: string,
    readonly values: unknown[],
    /** Column names (reserved ones left out) and their arrays, as long as values. */
    readonly names: string[],
    readonly cols: unknown[][],
    readonly invokeMs: number,
  ) {}

  /** Its operations, each as invoke and complete would have filed it. */
  ops(out: Op[]): void {
    for (let i = 0; i < this.values.length; i++) {
      const op: Op = { process: this.process, type: this.type, f: this.f, value: this.values[i] ?? null, invokeMs: this.invokeMs, completeMs: this.completeMs };
      for (let c = 0; c < this.names.length; c++) op[this.names[c]!] = this.cols[c]![i];
      addFields(op, this.fields);
      out.push(op);
    }
  }
}

/** The driver's history under construction: bounded; past the bound it is marked truncated (checkers then say `unknown`). */
export class HistoryLog {
  /** Open operations by process incarnation ("client-1#0"), then by operation number (a group's: its first). */
  private readonly open = new Map<string, Map<number, Op | Group>>();
  private openCount = 0;
  /** Completed operations and groups, in the order they completed. */
  private readonly done: Array<Op | Group> = [];
  private doneCount = 0;
  /** Events refused (malformed, unmatched completion, or over the limit). */
  refused = 0;
  truncated = false;

  constructor(private readonly maxOps = MAX_HISTORY_OPS) {}

  get size(): number {
    return this.doneCount + this.openCount;
  }

  /**
   * One recorder message: a batch (`events`, all of one incarnation: what a node's recorder sends)
   * or a single event (what a driver-side recorder adds). `process` (the sender), when given,
   * overrides the message's own.
   */
  add(body: unknown, process?: string): void {
    if (process !== undefined && typeof body === "object" && body !== null) (body as Record<string, unknown>).process = process;
    const b = body as Record<string, unknown> | null;
    if (typeof b === "object" && b !== null && (b.events !== undefined || b.text !== undefined)) {
      // A batch as JSON text (see EVENT_STRIDE) or as the array itself.
      let events = b.events;
      if (b.text !== undefined) {
        if (typeof b.text !== "string" || b.events !== undefined) {
          this.refused++;
          return;
        }
        try {
          events = JSON.parse(b.text) as unknown;
        } catch {
          this.refused++;
          return;
        }
      }
      if (b.type !== "history" || !Array.isArray(events) || events.length % EVENT_STRIDE !== 0 || events.length > MAX_HISTORY_BATCH * EVENT_STRIDE) {
        this.refused++;
        return;
      }
      const process = b.process;
      const incarnation = b.incarnation;
      if (typeof process !== "string" || !Number.isSafeInteger(incarnation)) {
        this.refused += events.length / EVENT_STRIDE;
        return;
      }
      const pid = `${process}#${incarnation}`;
      for (let i = 0; i < events.length; i += EVENT_STRIDE) {
        // The batch's process and incarnation apply to every event (see EVENT_STRIDE for the layout).
        // Each event is checked as isHistoryEvent checks a single one, without building it first.
        const kind = events[i];
        const n = events[i + 1];
        const t = events[i + 2];
        // null: no fields.
        const fields = events[i + 5] ?? undefined;
        if (!isStamp(n, t) || (fields !== undefined && !isFields(fields))) {
          this.refused++;
          continue;
        }
        const fOrOutcome = events[i + 3];
        if (kind === HISTORY_INVOKE && isOpName(fOrOutcome)) this.invoke(pid, process, n, t as number, fOrOutcome, events[i + 4], fields);
        else if ((kind === HISTORY_COMPLETE || kind === HISTORY_COMPLETE_WITH_VALUE) && isOutcome(fOrOutcome)) {
          this.complete(pid, n, t as number, fOrOutcome, kind === HISTORY_COMPLETE_WITH_VALUE, events[i + 4], fields);
        } else if (kind === HISTORY_INVOKE_GROUP && isOpName(fOrOutcome)) this.invokeGroup(pid, process, n, t as number, fOrOutcome, events[i + 4], fields);
        else if (kind === HISTORY_COMPLETE_GROUP && isOutcome(fOrOutcome) && events[i + 4] === null) this.completeGroup(pid, n, t as number, fOrOutcome, fields);
        else this.refused++;
      }
      return;
    }
    this.addEvent(body);
  }

  /** One event on its own (what a driver-side recorder adds). */
  private addEvent(body: unknown): void {
    if (!isHistoryEvent(body)) {
      this.refused++;
      return;
    }
    const e = body;
    const pid = `${e.process}#${e.incarnation}`;
    if (e.ev === "invoke") this.invoke(pid, e.process, e.n, e.t, e.f!, e.value, e.fields);
    else this.complete(pid, e.n, e.t, e.outcome!, "value" in e, e.value, e.fields);
  }

  /** The open operations of `pid`, where `count` more may be filed under n; null when refused (past the bound, or n already open). */
  private openFor(pid: string, n: number, count: number) {
    if (this.size + count > this.maxOps) {
      this.truncated = true;
      this.refused += count;
      return null;
    }
    let open = this.open.get(pid);
    if (!open) this.open.set(pid, (open = new Map()));
    if (open.has(n)) {
      this.refused += count;
      return null;
    }
    return open;
  }

  private invoke(pid: string, process: string, n: number, t: number, f: string, value: unknown, fields: Record<string, unknown> | undefined): void {
    const open = this.openFor(pid, n, 1);
    if (!open) return;
    const op: Op = { process, type: "info", f, value: value ?? null, invokeMs: t, completeMs: null };
    addFields(op, fields);
    open.set(n, op);
    this.openCount++;
  }

  /** A group's operations, each as invoke files one: `values[i]` its value, `columns[k][i]` its field k. */
  private invokeGroup(pid: string, process: string, n: number, t: number, f: string, values: unknown, columns: Record<string, unknown> | undefined): void {
    if (!Array.isArray(values) || values.length === 0 || values.length > MAX_GROUP_OPS || !isColumns(columns, values.length)) {
      this.refused++;
      return;
    }
    const open = this.openFor(pid, n, values.length);
    if (!open) return;
    const names = columns === undefined ? [] : Object.keys(columns).filter((k) => !RESERVED.has(k) && k !== "__proto__");
    open.set(n, new Group(process, f, values, names, names.map((k) => columns![k] as unknown[]), t));
    this.openCount += values.length;
  }

  private completeGroup(pid: string, n: number, t: number, outcome: OpType, fields: Record<string, unknown> | undefined): void {
    const open = this.open.get(pid);
    const g = open?.get(n);
    if (!(g instanceof Group) || t < g.invokeMs) {
      this.refused++;
      return;
    }
    open!.delete(n);
    this.openCount -= g.values.length;
    g.type = outcome;
    g.completeMs = t;
    g.fields = fields;
    this.done.push(g);
    this.doneCount += g.values.length;
  }

  private complete(pid: string, n: number, t: number, outcome: OpType, hasValue: boolean, value: unknown, fields: Record<string, unknown> | undefined): void {
    const open = this.open.get(pid);
    const op = open?.get(n);
    if (!op || op instanceof Group || t < op.invokeMs) {
      this.refused++;
      return;
    }
    open!.delete(n);
    this.openCount--;
    op.type = outcome;
    op.completeMs = t;
    if (hasValue) op.value = value ?? null;
    addFields(op, fields);
    this.done.push(op);
    this.doneCount++;
  }

  /** Every operation so far, by invocation time; those still open are `info` with completeMs null (copies: they may complete later). */
  history(): History {
    const all: Op[] = [];
    for (const e of this.done) {
      if (e instanceof Group) e.ops(all);
      else all.push(e);
    }
    for (const m of this.open.values()) {
      for (const e of m.values()) {
        if (e instanceof Group) e.ops(all);
        else all.push({ ...e });
      }
    }
    return all.sort((a, b) => a.invokeMs - b.invokeMs || (a.process < b.process ? -1 : a.process > b.process ? 1 : 0));
  }
}
