/**
 * `node.history`: a client's record of its operations for the run's history (src/history). The
 * runtime stamps each invocation and completion with its host's true clock (virtual time in the
 * simulator) — not the node's `now()`, which clock-sync code may adjust — and sends them to the
 * driver at the end of the turn that recorded them, all of that turn's events in ONE message (a
 * busy client records two events per operation: one message each cost more than the operations
 * themselves). The turn's end comes before any crash can (a crash is a turn of its own), and a
 * halt sends what is buffered first, so an operation open when its client crashed still appears
 * (as indefinite).
 */
import { Limits, exceedsSize } from "./limits.ts";
import { jsonExactScalar } from "./port-codec.ts";
import { ErrorCode, RpcError, type Body, type HistoryRecorder, type NodeId, type RecordedGroup, type RecordedOp } from "./types.ts";

interface RecorderHost {
  id: NodeId;
  incarnation: number;
  /** The host's clock, never offset. */
  now(): number;
  /** Hand an event batch to the driver (dropped once the node is stopped). */
  send(body: Body): void;
}

/**
 * A batch travels flat: EVENT_STRIDE slots per event, [kind, n, t, f or outcome, value, fields
 * (null: none)], kind 0 an invocation (its value is always there), 1 a completion with no value, 2
 * one with a value. Cloning one array of scalars between threads costs a third to a fifth of
 * cloning an object per event. When every value and field is one JSON carries exactly (the usual
 * ids, numbers and flat objects of them), the batch goes as JSON text (`text`) instead of `events`:
 * writing and parsing it cost ~25% less CPU than cloning the array (~0.8 vs ~1.05 us per
 * operation's two events, the clone of each `{ seq }` object above all).
 */
export const EVENT_STRIDE = 6;
export const HISTORY_INVOKE = 0;
export const HISTORY_COMPLETE = 1;
export const HISTORY_COMPLETE_WITH_VALUE = 2;
/**
 * A group (invokeGroup): kind 3 its invocation, [3, n, t, f, values, columns (null: none)], the
 * operations numbered n, n+1, ... in order; kind 4 its completion, [4, n, t, outcome, null, fields].
 * One event per group, not per operation: a busy client (a request of 64 chat messages) recorded
 * 128 events per request, and recording and filing them was a fair share of a commit's CPU.
 */
export const HISTORY_INVOKE_GROUP = 3;
export const HISTORY_COMPLETE_GROUP = 4;
/** Operations in one group, and the columns (fields) each may have. */
export const MAX_GROUP_OPS = 1024;
export const MAX_GROUP_COLUMNS = 4;
/** A group's values and column entries: JSON-exact scalars, strings of at most this many chars. */
export const MAX_GROUP_STRING = 64;

/** `value` and `fields` may each take half a message; the rest of an event is a few scalars. */
const HALF = Limits.maxMessageBytes / 2;
/**
 * Events in one batch message (the driver refuses a batch of more: EVENT_STRIDE x this entries). A
 * group counts as its operations toward this, so a batch holds at most this many plus one group's.
 */
export const MAX_HISTORY_BATCH = 256;
/**
 * A part up to this size rides in a batch; a larger one goes in a message of its own, so a batch
 * stays under MAX_HISTORY_BATCH × 2 × SMALL plus a few scalars each (~1 MB).
 */
const SMALL = 1024;
const tooBig = (v: unknown) => (typeof v === "string" ? v.length * 3 > HALF : typeof v === "object" && v !== null && exceedsSize(v, HALF));


/** shapeOf bits: the part is small (it rides in a batch), and JSON carries it exactly. */
const SMALL_PART = 1;
const JSON_PART = 2;

/**
 * Whether a value or fields part is small (up to SMALL, checked without a walk for a scalar or a
 * plain object of at most 8 short scalars such as `{ seq: 3 }`) and whether JSON carries it exactly
 * (null, a JSON-exact scalar, or a plain object of at most 8 of them): both from ONE pass over an
 * object's keys. A busy client records two events per operation, and walking `{ seq }` twice (once
 * per question) was a fair share of what recording cost.
 */
function shapeOf(v: unknown): number {
  if (typeof v === "string") return (v.length * 2 <= SMALL ? SMALL_PART : 0) | JSON_PART;
  if (typeof v !== "object" || v === null) return SMALL_PART | (jsonExactScalar(v) ? JSON_PART : 0);
  if (Array.isArray(v)) return exceedsSize(v, SMALL) ? 0 : SMALL_PART;
  let n = 0;
  let flatSmall = true;
  let json = Object.getPrototypeOf(v) === Object.prototype;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (++n > 8) {
      flatSmall = json = false;
      break;
    }
    if (k.length > 32 || (typeof x === "object" && x !== null) || (typeof x === "string" && x.length > 32)) flatSmall = false;
    if (json && (k === "__proto__" || !jsonExactScalar(x))) json = false;
    if (!flatSmall && !json) break;
  }
  return (flatSmall || !exceedsSize(v, SMALL) ? SMALL_PART : 0) | (json ? JSON_PART : 0);
}

export interface BatchingRecorder extends HistoryRecorder {
  /** Send what this turn recorded now (before a halt). */
  flush(): void;
}

export function historyRecorder(host: RecorderHost): BatchingRecorder {
  let n = 0;
  /** This turn's events, already in the flat layout the message carries (no object per event). */
  let events: unknown[] = [];
  /** Operations in this batch: one per event, a group's count for a group's. */
  let weight = 0;
  /** Every value and field so far in this batch is one JSON carries exactly. */
  let json = true;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (events.length === 0) return;
    const batch = events;
    events = [];
    weight = 0;
    const asText = json;
    json = true;
    host.send(asText ? { type: "history", incarnation: host.incarnation, text: JSON.stringify(batch) } : { type: "history", incarnation: host.incarnation, events: batch });
  };
  const record = (kind: number, on: number, fOrOutcome: string, value: unknown, fields: Record<string, unknown> | null) => {
    // Bounding only the two free-form parts is fast for the usual scalars and flat objects; walking
    // every event would double a busy client's cost. A small part cannot be too big: one walk at most.
    const shape = (value === null ? SMALL_PART | JSON_PART : shapeOf(value)) & (fields === null ? SMALL_PART | JSON_PART : shapeOf(fields));
    const small = (shape & SMALL_PART) !== 0;
    if (!small && (tooBig(value) || tooBig(fields))) throw new RpcError(ErrorCode.TooLarge, `history operation "${kind === HISTORY_INVOKE ? fOrOutcome : on}" carries more than ${HALF} bytes`);
    if ((shape & JSON_PART) === 0) json = false;
    push(kind, on, fOrOutcome, value, fields, 1, small);
  };
  const push = (kind: number, on: number, fOrOutcome: string, value: unknown, fields: unknown, ops: number, small: boolean) => {
    events.push(kind, on, host.now(), fOrOutcome, value, fields);
    weight += ops;
    if (weight >= MAX_HISTORY_BATCH || events.length >= MAX_HISTORY_BATCH * EVENT_STRIDE || !small) flush();
    else if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
  const recorder: BatchingRecorder = {
    invoke(f, value, fields) {
      const on = n++;
      record(HISTORY_INVOKE, on, f, value ?? null, fields || null);
      return new OpenOp(host, record, on, f);
    },
    invokeGroup(f, values, columns) {
      if (!groupable(values, columns)) {
        // Parts a group does not carry: one operation each, as invoke records them.
        const ops = values.map((v, i) => {
          let fields: Record<string, unknown> | undefined;
          if (columns) {
            fields = {};
            for (const k in columns) fields[k] = columns[k]![i];
          }
          return recorder.invoke(f, v, fields);
        });
        return new OpenOps(ops);
      }
      const on = n;
      n += values.length;
      let cols: Record<string, unknown[]> | null = null;
      if (columns) {
        cols = {};
        for (const k in columns) cols[k] = columns[k]!.slice();
      }
      // A group's weight can take the batch past MAX_HISTORY_BATCH: send what is there first.
      if (weight > 0 && weight + values.length > MAX_HISTORY_BATCH) flush();
      push(HISTORY_INVOKE_GROUP, on, f, values.slice(), cols, values.length, true);
      return new OpenGroup(host, (outcome, fields) => {
        const shape = fields === null ? SMALL_PART | JSON_PART : shapeOf(fields);
        if ((shape & SMALL_PART) === 0 && tooBig(fields)) throw new RpcError(ErrorCode.TooLarge, `history operation group "${f}" completes with more than ${HALF} bytes`);
        if ((shape & JSON_PART) === 0) json = false;
        push(HISTORY_COMPLETE_GROUP, on, outcome, null, fields, values.length, (shape & SMALL_PART) !== 0);
      }, on, f);
    },
    flush,
  };
  return recorder;
}

/** A group a batch carries: 1..MAX_GROUP_OPS values, each a JSON-exact scalar (short strings), and as long columns of the same. */
function groupable(values: readonly unknown[], columns: Record<string, readonly unknown[]> | undefined): boolean {
  if (values.length === 0 || values.length > MAX_GROUP_OPS || !scalars(values)) return false;
  if (columns === undefined) return true;
  if (Object.getPrototypeOf(columns) !== Object.prototype) return false;
  let k = 0;
  for (const name in columns) {
    const col = columns[name];
    if (++k > MAX_GROUP_COLUMNS || name.length > MAX_GROUP_STRING || name === "__proto__" || !Array.isArray(col) || col.length !== values.length || !scalars(col)) return false;
  }
  return true;
}

function scalars(a: readonly unknown[]): boolean {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    if (typeof v === "string" ? v.length > MAX_GROUP_STRING : !jsonExactScalar(v)) return false;
  }
  return true;
}

/** One recorded operation still open: one object per operation (a busy client opens thousands a second). */
class OpenOp implements RecordedOp {
  private done = false;
  constructor(
    private readonly host: RecorderHost,
    private readonly record: (kind: number, n: number, fOrOutcome: string, value: unknown, fields: Record<string, unknown> | null) => void,
    private readonly n: number,
    private readonly f: string,
  ) {}
  private complete(outcome: "ok" | "fail" | "info", value: unknown, fields: Record<string, unknown> | undefined): void {
    if (this.done) throw new Error(`assertion failed: ${this.host.id}: operation ${this.n} (${this.f}) completed twice`);
    this.done = true;
    if (value === undefined) this.record(HISTORY_COMPLETE, this.n, outcome, null, fields || null);
    else this.record(HISTORY_COMPLETE_WITH_VALUE, this.n, outcome, value, fields || null);
  }
  ok(value?: unknown): void {
    this.complete("ok", value, undefined);
  }
  fail(error: string): void {
    this.complete("fail", undefined, { error });
  }
  info(error: string): void {
    this.complete("info", undefined, { error });
  }
  error(e: RpcError): void {
    this.complete(e.definite ? "fail" : "info", undefined, { error: e.text, code: e.code });
  }
}

/** A group recorded as one: one object per group. */
class OpenGroup implements RecordedGroup {
  private done = false;
  constructor(
    private readonly host: RecorderHost,
    private readonly record: (outcome: "ok" | "fail" | "info", fields: Record<string, unknown> | null) => void,
    private readonly n: number,
    private readonly f: string,
  ) {}
  private complete(outcome: "ok" | "fail" | "info", fields: Record<string, unknown> | null): void {
    if (this.done) throw new Error(`assertion failed: ${this.host.id}: operation group ${this.n} (${this.f}) completed twice`);
    this.done = true;
    this.record(outcome, fields);
  }
  ok(): void {
    this.complete("ok", null);
  }
  fail(error: string): void {
    this.complete("fail", { error });
  }
  info(error: string): void {
    this.complete("info", { error });
  }
  error(e: RpcError): void {
    this.complete(e.definite ? "fail" : "info", { error: e.text, code: e.code });
  }
}

/** A group whose parts a group event does not carry: its operations recorded one by one. */
class OpenOps implements RecordedGroup {
  constructor(private readonly ops: RecordedOp[]) {}
  ok(): void {
    for (const op of this.ops) op.ok();
  }
  fail(error: string): void {
    for (const op of this.ops) op.fail(error);
  }
  info(error: string): void {
    for (const op of this.ops) op.info(error);
  }
  error(e: RpcError): void {
    for (const op of this.ops) op.error(e);
  }
}
