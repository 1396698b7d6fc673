/**
 * `node.history`: a client's record of its operations for the run's history (src/history). The
 * runtime stamps each invocation and completion with its host's true clock (virtual time in the
 * simulator) — not the node's `now()`, which clock-sync code may adjust — and sends each at once to
 * the driver, so an operation open when its client crashed still appears (as indefinite).
 */
import { Limits, exceedsSize } from "./limits.ts";
import { ErrorCode, RpcError, type Body, type HistoryRecorder, type NodeId, type RecordedOp } from "./types.ts";

interface RecorderHost {
  id: NodeId;
  incarnation: number;
  /** The host's clock, never offset. */
  now(): number;
  /** Hand an event to the driver (dropped once the node is stopped). */
  send(body: Body): void;
}

/** `value` and `fields` may each take half a message; the rest of an event is a few scalars. */
const HALF = Limits.maxMessageBytes / 2;
const tooBig = (v: unknown) => (typeof v === "string" ? v.length * 3 > HALF : typeof v === "object" && v !== null && exceedsSize(v, HALF));

function send(host: RecorderHost, body: Body): void {
  // Bounding only the two free-form parts is fast for the usual scalars and flat objects; walking
  // every event would double a busy client's cost.
  if (tooBig(body.value) || tooBig(body.fields)) throw new RpcError(ErrorCode.TooLarge, `history operation "${String(body.f ?? body.n)}" carries more than ${HALF} bytes`);
  host.send(body);
}

export function historyRecorder(host: RecorderHost): HistoryRecorder {
  let n = 0;
  return {
    invoke(f, value, fields) {
      const body: Body = { type: "history", ev: "invoke", incarnation: host.incarnation, n: n++, t: host.now(), f, value: value ?? null };
      if (fields) body.fields = fields;
      send(host, body);
      return new OpenOp(host, body.n as number, f);
    },
  };
}

/** One recorded operation still open: one object per operation (a busy client opens thousands a second). */
class OpenOp implements RecordedOp {
  private done = false;
  constructor(
    private readonly host: RecorderHost,
    private readonly n: number,
    private readonly f: string,
  ) {}
  private complete(outcome: "ok" | "fail" | "info", value: unknown, fields: Record<string, unknown> | undefined): void {
    if (this.done) throw new Error(`assertion failed: ${this.host.id}: operation ${this.n} (${this.f}) completed twice`);
    this.done = true;
    const end: Body = { type: "history", ev: "complete", incarnation: this.host.incarnation, n: this.n, t: this.host.now(), outcome };
    if (value !== undefined) end.value = value;
    if (fields) end.fields = fields;
    send(this.host, end);
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
