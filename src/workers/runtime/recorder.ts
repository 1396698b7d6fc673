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
import { ErrorCode, RpcError, type Body, type HistoryRecorder, type NodeId, type RecordedOp } from "./types.ts";

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

/** `value` and `fields` may each take half a message; the rest of an event is a few scalars. */
const HALF = Limits.maxMessageBytes / 2;
/** Events in one batch message (the driver refuses a batch of more: EVENT_STRIDE x this entries). */
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
  /** Every value and field so far in this batch is one JSON carries exactly. */
  let json = true;
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (events.length === 0) return;
    const batch = events;
    events = [];
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
    events.push(kind, on, host.now(), fOrOutcome, value, fields);
    if (events.length >= MAX_HISTORY_BATCH * EVENT_STRIDE || !small) flush();
    else if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
  return {
    invoke(f, value, fields) {
      const on = n++;
      record(HISTORY_INVOKE, on, f, value ?? null, fields || null);
      return new OpenOp(host, record, on, f);
    },
    flush,
  };
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
