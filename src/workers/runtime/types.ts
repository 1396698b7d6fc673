/**
 * The node API: everything a node author touches. A node is a role — a function that receives one
 * context object, registers handlers keyed by message type, and may return hooks. Node code reaches
 * the outside world only through this context, so the same role runs on worker threads, over TCP
 * bridges and in the deterministic simulator.
 */

export type NodeId = string;

/** The pseudo-node the driver (scenario, nemesis, admin API) sends from and is answered at. */
export const DRIVER_ID = "driver";

/** Where a node stands in its host: running, paused (holds messages and timers), or crashed. */
export type NodeStatus = "running" | "crashed" | "paused";

/** A message body. `type` names it; `msg_id` / `in_reply_to` pair requests with replies (Maelstrom's protocol). */
export interface Body {
  type: string;
  msg_id?: number;
  in_reply_to?: number;
  [field: string]: unknown;
}

export interface Message<B extends Body = Body> {
  src: NodeId;
  dest: NodeId;
  body: B;
}

/**
 * Error codes, Maelstrom's numbering plus menhir's own (40+). A *definite* error means the operation
 * surely did not happen; an indefinite one (timeout, crash) means it may or may not have.
 */
export const ErrorCode = {
  Timeout: 0,
  NodeNotFound: 1,
  NotSupported: 10,
  TemporarilyUnavailable: 11,
  MalformedRequest: 12,
  Crash: 13,
  Abort: 14,
  KeyDoesNotExist: 20,
  KeyAlreadyExists: 21,
  PreconditionFailed: 22,
  TxnConflict: 30,
  TooLarge: 40,
  Overloaded: 41,
  Unauthorized: 42,
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const INDEFINITE: ReadonlySet<number> = new Set([ErrorCode.Timeout, ErrorCode.Crash]);
/** True when an error with this code guarantees the operation had no effect. */
export function isDefinite(code: number): boolean {
  return !INDEFINITE.has(code);
}

export interface ErrorBody extends Body {
  type: "error";
  code: number;
  text: string;
}

/** Thrown by `request` on an error reply or a timeout; throw it from a handler to reply with that error. */
export class RpcError extends Error {
  constructor(
    readonly code: number,
    readonly text: string,
  ) {
    super(`rpc error ${code}: ${text}`);
  }
  get definite(): boolean {
    return isDefinite(this.code);
  }
  toBody(): ErrorBody {
    return { type: "error", code: this.code, text: this.text };
  }
}

export type Handler<B extends Body = Body> = (msg: Message<B>) => void | Promise<void>;

export interface Logger {
  debug(text: string, fields?: Record<string, unknown>): void;
  info(text: string, fields?: Record<string, unknown>): void;
  warn(text: string, fields?: Record<string, unknown>): void;
  error(text: string, fields?: Record<string, unknown>): void;
  /** Whether lines at `level` are shown: a line costly to build (on a hot path) is built only then. Absent: assume shown. */
  enabled?(level: Exclude<LogLevel, "silent">): boolean;
}
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";

/** A seeded random source: same seed, same sequence. */
export interface Random {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /** Uniform in [lo, hi). */
  range(lo: number, hi: number): number;
  chance(p: number): boolean;
  pick<T>(items: readonly T[]): T;
  /** A new array, shuffled. */
  shuffle<T>(items: readonly T[]): T[];
  exponential(mean: number): number;
  /** An independent stream derived from this one's seed and a label. */
  fork(label: string): Random;
}

export interface ScanOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /** Keys >= start. */
  start?: string;
  /** Keys < end. */
  end?: string;
  limit?: number;
  reverse?: boolean;
}

/**
 * Per-node durable key-value storage. A `put` has returned only once the write is durable (as durable
 * as the node's storage mode says), so a node may acknowledge right after it. Values are any
 * msgpack-able data. Keys sort as strings: use `seqKey` for numbers.
 */
export interface Storage {
  get<T = unknown>(key: string): T | undefined;
  put(key: string, value: unknown): void;
  delete(key: string): void;
  scan<T = unknown>(opts?: ScanOptions): Array<[string, T]>;
  /** Runs fn atomically: all its writes land, or (if it throws) none do. */
  transaction<R>(fn: () => R): R;
}

/** How durable storage is: `fsync` survives power loss, `os` survives a process crash, `memory` is lost on a crash (benchmarks only). */
export type StorageMode = "fsync" | "os" | "memory";

export type TimerId = number;

/** An HTTP handler a node may serve (the runtime owns the socket; in the simulator requests are injected). */
export type HttpHandler = (req: Request) => Response | Promise<Response>;
export interface HttpOptions {
  /** Port to listen on; 0 picks a free port. */
  port: number;
  hostname?: string;
  /** Larger request bodies are refused with 413 before the handler runs. */
  maxBodyBytes?: number;
}

export interface RequestOptions {
  /** Default: the node's `requestTimeoutMs` (1000 ms). */
  timeoutMs?: number;
  /**
   * Called if the reply arrives after the request timed out (it was slow, not lost). The runtime
   * remembers the most recent `Limits.maxLateRepliesWatched` timed-out requests for this; older
   * ones, and replies after a crash of this node, are not reported.
   */
  onLateReply?: (reply: Body) => void;
}

/**
 * A client's record of the operations it performs, for the run's history (src/history): the runtime
 * stamps each invocation and completion with its host's true clock (virtual time in the simulator),
 * not with `now()`, which a node may adjust, and hands them to the driver at once.
 */
export interface HistoryRecorder {
  /** An operation starts. `value` is its argument (null for reads); `fields` the system's (`key`, ...). */
  invoke(f: string, value: unknown, fields?: Record<string, unknown>): RecordedOp;
  /**
   * Operations that start together and end together (the messages of one request): each is an
   * operation of its own in the history, exactly as `invoke` would record it, with `values[i]` its
   * argument and `columns[k][i]` its field `k` — but the group costs one event per invocation and
   * one per completion, not one per operation. The arrays are copied. Its completion has no value.
   */
  invokeGroup(f: string, values: readonly unknown[], columns?: Record<string, readonly unknown[]>): RecordedGroup;
}

/** The open operations of one group: exactly one of its methods is called, once, for all of them. */
export type RecordedGroup = Omit<RecordedOp, "ok"> & { ok(): void };

/** One open operation; exactly one of its methods is called, once. */
export interface RecordedOp {
  /** It happened; `value` is what it returned, when it returns data (a read). */
  ok(value?: unknown): void;
  /** It definitely did not happen (a definite error), with the error text. */
  fail(error: string): void;
  /** Unknown whether it happened (timeout, crash). */
  info(error: string): void;
  /** fail for a definite RpcError, info for an indefinite one. */
  error(e: RpcError): void;
}

/** The one object through which node code touches the world. */
export interface NodeContext<C = Record<string, unknown>> {
  readonly id: NodeId;
  readonly role: string;
  readonly config: Readonly<C>;
  /** Every node of the cluster, in a fixed order. */
  readonly nodeIds: readonly NodeId[];
  /** 0 on first start, +1 on each restart. */
  readonly incarnation: number;

  /** Register the handler for a message type. One handler per type. */
  on<B extends Body = Body>(type: B["type"], handler: Handler<B>): void;
  /** Fire and forget. Never throws for network reasons: a lost message is just lost. */
  send(dest: NodeId, body: Body): void;
  /**
   * `send(dest, body)` to each of `dests` in order (each copy meets the network's faults on its own
   * link), but the body is checked once and encoded once: a fan-out's cost per recipient. Throws
   * before sending anything if a destination is not a node of the cluster or the body is refused.
   */
  sendMany(dests: Iterable<NodeId>, body: Body): void;
  /** Send with a fresh msg_id and wait for the reply. Rejects with RpcError (code Timeout on timeout, or the error replied). */
  request<R = Body>(dest: NodeId, body: Body, opts?: RequestOptions): Promise<R>;
  /** Reply to a request; sets in_reply_to. */
  reply(req: Message, body: Body): void;
  replyError(req: Message, code: number, text: string): void;

  setTimeout(ms: number, fn: () => void | Promise<void>): TimerId;
  setInterval(ms: number, fn: () => void | Promise<void>): TimerId;
  clearTimer(id: TimerId): void;
  sleep(ms: number): Promise<void>;

  /**
   * The node's own clock in ms since the epoch. It may be off and drift (`--clock-skew`,
   * `--clock-drift`) and jump (the `clock` nemesis); `adjustClock` steps it (clock-sync algorithms).
   */
  now(): number;
  adjustClock(deltaMs: number): void;

  readonly random: Random;
  readonly log: Logger;
  readonly storage: Storage;
  /** A unique id (hyperid on threads; derived from the seed in the simulator). */
  uid(): string;
  /** Serve HTTP on this node. The socket belongs to the runtime, not to the node. */
  serveHttp(handler: HttpHandler, opts: HttpOptions): void;
  /** Client operations for the run's history. */
  readonly history: HistoryRecorder;
}

/** What a role's start may return. */
export interface RoleHooks {
  /** A JSON snapshot of the node's state, for checks and the admin API. */
  inspect?(): unknown;
  /** Called on a clean stop (not on a crash). */
  stop?(): void | Promise<void>;
}

export type Role<C = any> = (node: NodeContext<C>) => RoleHooks | void | Promise<RoleHooks | void>;

/** Identity, for type inference at the definition site. */
export function defineRole<C = Record<string, unknown>>(role: Role<C>): Role<C> {
  return role;
}

/** What the cluster spawns: one entry per node. */
export interface NodeSpec {
  id: NodeId;
  /** Key into the system's roles. */
  role: string;
  config?: Record<string, unknown>;
  storage?: StorageMode;
  /** This node's clock error (offset and drift); absent: a perfect clock. See runtime/clock.ts. */
  clock?: { offsetMs: number; driftPpm: number };
}
