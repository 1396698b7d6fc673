import { ErrorCode, RpcError, type NodeContext, type NodeId } from "../runtime/types.ts";
import { berkeleyRound, type ClockSample } from "./berkeley.ts";
import type { ClockAdjust, ClockPoll, ClockPollOk } from "./tiered-messages.ts";

/** Corrections larger than this are refused: no sane round asks a clock to move by more than a day. */
const MAX_CORRECTION_MS = 86_400_000;
const MAX_ROUNDS_KEPT = 200;
/** Polls per node per round. */
const POLLS_PER_ROUND = 3;

export interface FollowerState {
  adjustments: number;
  lastRound: number;
  /** Sum of the steps taken (what synchronisation has done to this clock). */
  steppedMs: number;
}

/**
 * A node the time daemon keeps in step: answers polls with its clock and steps its clock by the
 * correction it is sent. Only a dispatcher may correct it (the daemon is the dispatcher leader).
 * Steps, not slews: the check wants every clock within δ a round after a jump, and a slew spread
 * over a round would still be mid-way. The price is a clock that can step back by a correction's
 * size; "last updated at" stamps are for display, and versions, not stamps, order updates.
 */
export function followClock(node: NodeContext, dispatchers: readonly NodeId[]): FollowerState {
  const state: FollowerState = { adjustments: 0, lastRound: 0, steppedMs: 0 };
  node.on<ClockPoll>("clock_poll", (msg) => {
    node.reply(msg, { type: "clock_poll_ok", clock: node.now() } satisfies ClockPollOk);
  });
  node.on<ClockAdjust>("clock_adjust", (msg) => {
    if (!dispatchers.includes(msg.src)) throw new RpcError(ErrorCode.Unauthorized, "only the time daemon (a dispatcher) corrects clocks");
    const d = msg.body.deltaMs;
    if (typeof d !== "number" || !Number.isFinite(d) || Math.abs(d) > MAX_CORRECTION_MS) throw new RpcError(ErrorCode.MalformedRequest, "deltaMs must be a finite number of ms");
    node.adjustClock(d);
    state.adjustments++;
    state.steppedMs += d;
    state.lastRound = Number.isSafeInteger(msg.body.round) ? msg.body.round : state.lastRound;
  });
  return state;
}

export interface SyncRound {
  round: number;
  at: number;
  corrections: Record<NodeId, number>;
  outliers: NodeId[];
}

/**
 * The Berkeley time daemon's shell: polls every synced node, times each round trip on its own
 * clock, hands the answers to berkeleyRound, and sends each node its correction. Run by the
 * dispatcher leader, so a new leader takes over when the daemon dies.
 */
export class TimeDaemon {
  rounds = 0;
  readonly recent: SyncRound[] = [];

  constructor(
    private readonly node: NodeContext,
    private readonly synced: readonly NodeId[],
    private readonly syncMs: number,
    private readonly outlierMs: number,
  ) {}

  async round(): Promise<void> {
    const node = this.node;
    const others = this.synced.filter((n) => n !== node.id);
    const timeoutMs = Math.max(50, this.syncMs / 2);
    const samples = (
      await Promise.all(
        others.map(async (n): Promise<ClockSample | null> => {
          // Several polls, keeping the one with the shortest round trip: its estimate has the smallest error bound (rtt/2).
          let best: ClockSample | null = null;
          for (let i = 0; i < POLLS_PER_ROUND; i++) {
            const sentAt = node.now();
            try {
              const r = await node.request<ClockPollOk>(n, { type: "clock_poll" } satisfies ClockPoll, { timeoutMs });
              if (typeof r.clock !== "number") continue;
              const s = { node: n, sentAt, receivedAt: node.now(), clock: r.clock };
              if (!best || s.receivedAt - s.sentAt < best.receivedAt - best.sentAt) best = s;
            } catch {
              break; // down or cut off: corrected next round
            }
          }
          return best;
        }),
      )
    ).filter((s): s is ClockSample => s !== null);
    // A sample is usable if its round trip is small next to the outlier bound.
    const r = berkeleyRound(node.id, samples, this.outlierMs, Math.max(this.outlierMs, 1));
    this.rounds++;
    const round = this.rounds;
    for (const [n, delta] of r.corrections) {
      if (n === node.id) node.adjustClock(delta);
      else node.send(n, { type: "clock_adjust", deltaMs: delta, round } satisfies ClockAdjust);
    }
    if (this.recent.length >= MAX_ROUNDS_KEPT) this.recent.shift();
    this.recent.push({ round, at: node.now(), corrections: Object.fromEntries(r.corrections), outliers: r.outliers });
  }
}
