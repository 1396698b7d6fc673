import { DRIVER_ID } from "./cluster.ts";
import { ErrorCode, RpcError, type Body, type Message, type NodeId } from "../workers/runtime/types.ts";
import { HistoryLog } from "../history/record.ts";

/** Timers of whichever clock the driver runs on: real on threads, virtual in the simulator. */
export interface DriverTimers {
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
}

/**
 * The driver's requests into the cluster (from the pseudo-node "driver"): ids, the pending map,
 * timeouts and settling by reply — the same on threads and in the simulator.
 */
export class DriverCalls {
  private readonly pending = new Map<number, { resolve(b: Body): void; reject(e: Error): void; timer: unknown }>();
  private nextId = 1;
  /** Client operations the nodes' recorders sent (`history` messages), for the checkers. */
  readonly history = new HistoryLog();

  constructor(private readonly timers: DriverTimers) {}

  /** Send a request with `send` and wait for its reply; rejects with RpcError on an error reply or timeout. */
  call<R>(dest: NodeId, body: Body, timeoutMs: number, send: (msg: Message) => void): Promise<R> {
    const msgId = this.nextId++;
    return new Promise<R>((resolve, reject) => {
      const timer = this.timers.setTimer(timeoutMs, () => {
        if (this.pending.delete(msgId)) reject(new RpcError(ErrorCode.Timeout, `no reply from ${dest} to "${body.type}" within ${timeoutMs} ms`));
      });
      this.pending.set(msgId, { resolve: resolve as (b: Body) => void, reject, timer });
      send({ src: DRIVER_ID, dest, body: { ...body, msg_id: msgId } });
    });
  }

  /** A message addressed to the driver: a reply (late or unknown ones are ignored) or a history event. */
  settle(msg: Message): void {
    // The sender is the process: a node cannot record operations in another's name.
    if (msg.body.type === "history" && msg.body.in_reply_to === undefined) return this.history.add(msg.body, msg.src);
    const id = msg.body.in_reply_to;
    if (typeof id !== "number") return;
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    this.timers.clearTimer(p.timer);
    if (msg.body.type === "error") p.reject(new RpcError(Number(msg.body.code), String(msg.body.text)));
    else p.resolve(msg.body);
  }

  /** Forget every pending call (the cluster stopped). */
  clear(): void {
    for (const p of this.pending.values()) this.timers.clearTimer(p.timer);
    this.pending.clear();
  }
}
