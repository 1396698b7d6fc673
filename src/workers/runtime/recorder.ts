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
import { ErrorCode, RpcError, type Body, type HistoryRecorder, type NodeId, type RecordedOp } from "./types.ts";

interface RecorderHost {
  id: NodeId;
  incarnation: number;
  /** The host's clock, never offset. */
  now(): number;
  /** Hand an event batch to the driver (dropped once the node is stopped). */
  send(body: Body): void;
}

/** One event in a batch: the message's `incarnation` applies to all. */
export interface RecordedEvent {
  ev: "invoke" | "complete";
  n: number;
  t: number;
  f?: string;
  value?: unknown;
  fields?: Record<string, unknown>;
  outcome?: "ok" | "fail" | "info";
}

/**
 * A batch travels flat: EVENT_STRIDE slots per event, [kind (0 invoke, 1 complete), n, t, f or
 * outcome, value (undefined: none), fields (undefined: none)]. Cloning one array of scalars
 * between threads costs a third to a fifth of cloning an object per event.
 */
export const EVENT_STRIDE = 6;

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
const isSmall = (v: unknown) => (typeof v === "string" ? v.length * 2 <= SMALL : typeof v !== "object" || v === null || isFlatSmall(v) || !exceedsSize(v, SMALL));

/** A plain object of at most 8 scalars (`{ seq: 3 }`, `{ key: "x" }`): small without a walk. */
function isFlatSmall(v: object): boolean {
  if (Array.isArray(v)) return false;
  let n = 0;
  for (const k in v) {
    const x = (v as Record<string, unknown>)[k];
    if (++n > 8 || k.length > 32 || (typeof x === "object" && x !== null) || (typeof x === "string" && x.length > 32)) return false;
  }
  return true;
}

export interface BatchingRecorder extends HistoryRecorder {
  /** Send what this turn recorded now (before a halt). */
  flush(): void;
}

export function historyRecorder(host: RecorderHost): BatchingRecorder {
  let n = 0;
  let batch: RecordedEvent[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (batch.length === 0) return;
    const events: unknown[] = new Array(batch.length * EVENT_STRIDE);
    let j = 0;
    for (const e of batch) {
      events[j++] = e.ev === "invoke" ? 0 : 1;
      events[j++] = e.n;
      events[j++] = e.t;
      events[j++] = e.ev === "invoke" ? e.f : e.outcome;
      events[j++] = e.value;
      events[j++] = e.fields;
    }
    batch = [];
    host.send({ type: "history", incarnation: host.incarnation, events });
  };
  const record = (e: RecordedEvent) => {
    // Bounding only the two free-form parts is fast for the usual scalars and flat objects; walking
    // every event would double a busy client's cost. A small part cannot be too big: one walk at most.
    const small = isSmall(e.value) && isSmall(e.fields);
    if (!small && (tooBig(e.value) || tooBig(e.fields))) throw new RpcError(ErrorCode.TooLarge, `history operation "${String(e.f ?? e.n)}" carries more than ${HALF} bytes`);
    batch.push(e);
    if (batch.length >= MAX_HISTORY_BATCH || !small) flush();
    else if (!scheduled) {
      scheduled = true;
      queueMicrotask(flush);
    }
  };
  return {
    invoke(f, value, fields) {
      const e: RecordedEvent = { ev: "invoke", n: n++, t: host.now(), f, value: value ?? null };
      if (fields) e.fields = fields;
      record(e);
      return new OpenOp(host, record, e.n, f);
    },
    flush,
  };
}

/** One recorded operation still open: one object per operation (a busy client opens thousands a second). */
class OpenOp implements RecordedOp {
  private done = false;
  constructor(
    private readonly host: RecorderHost,
    private readonly record: (e: RecordedEvent) => void,
    private readonly n: number,
    private readonly f: string,
  ) {}
  private complete(outcome: "ok" | "fail" | "info", value: unknown, fields: Record<string, unknown> | undefined): void {
    if (this.done) throw new Error(`assertion failed: ${this.host.id}: operation ${this.n} (${this.f}) completed twice`);
    this.done = true;
    const end: RecordedEvent = { ev: "complete", n: this.n, t: this.host.now(), outcome };
    if (value !== undefined) end.value = value;
    if (fields) end.fields = fields;
    this.record(end);
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
