import type { NodeId } from "../runtime/types.ts";

/**
 * Berkeley clock synchronisation, the pure round: the time daemon has asked every node for its
 * clock and timed the round trip on its own clock; this turns the answers into corrections.
 *
 * Each node's offset from the daemon is estimated as `clock + rtt/2 − receivedAt` (Cristian's
 * estimate: the answer was read half a round trip ago). The daemon's own offset is 0. Only the
 * largest group of offsets within `outlierMs` of one of them is averaged: a clock that jumped, or a
 * reply delayed by a slow link, is left out, but corrected too. Every node, the daemon
 * included, is told to move by `average − its offset`, which brings every estimate to the average.
 * Answers whose round trip exceeds `maxRttMs` are not used at all: their estimate is too loose.
 */

export interface ClockSample {
  node: NodeId;
  /** Daemon's clock when it sent the poll and when the answer came. */
  sentAt: number;
  receivedAt: number;
  /** The node's clock as it answered. */
  clock: number;
}

export interface BerkeleyRound {
  /** Per node (the daemon included): how much to step its clock. */
  corrections: Map<NodeId, number>;
  /** Estimated offsets from the daemon, per node. */
  offsets: Map<NodeId, number>;
  averaged: NodeId[];
  outliers: NodeId[];
  /** Samples dropped for a too-long round trip. */
  slow: NodeId[];
  average: number;
}

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${text}`);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function berkeleyRound(daemon: NodeId, samples: readonly ClockSample[], outlierMs: number, maxRttMs: number): BerkeleyRound {
  assert(outlierMs > 0 && maxRttMs > 0, "bounds are positive");
  const offsets = new Map<NodeId, number>([[daemon, 0]]);
  const slow: NodeId[] = [];
  for (const s of samples) {
    assert(s.node !== daemon, "the daemon does not poll itself");
    const rtt = s.receivedAt - s.sentAt;
    if (!(rtt >= 0) || rtt > maxRttMs || !Number.isFinite(s.clock)) {
      slow.push(s.node);
      continue;
    }
    offsets.set(s.node, s.clock + rtt / 2 - s.receivedAt);
  }
  // The fault-tolerant average of Gusella and Zatti: average the largest group of clocks within outlierMs of one of them
  // (on a tie, the group around the clock nearest the median), so a few wild clocks never pull the rest.
  const mid = median([...offsets.values()]);
  let centre = 0;
  let best = -1;
  for (const o of offsets.values()) {
    const n = [...offsets.values()].filter((x) => Math.abs(x - o) <= outlierMs).length;
    if (n > best || (n === best && Math.abs(o - mid) < Math.abs(centre - mid))) [best, centre] = [n, o];
  }
  const averaged = [...offsets].filter(([, o]) => Math.abs(o - centre) <= outlierMs).map(([n]) => n);
  const outliers = [...offsets.keys()].filter((n) => !averaged.includes(n));
  assert(averaged.length === best && best > 0, "the centre clock is within the outlier bound of itself");
  const average = averaged.reduce((a, n) => a + offsets.get(n)!, 0) / averaged.length;
  const corrections = new Map<NodeId, number>();
  for (const [n, o] of offsets) corrections.set(n, average - o);
  for (const [n, c] of corrections) assert(Math.abs(offsets.get(n)! + c - average) < 1e-6, `${n} lands on the average`);
  return { corrections, offsets, averaged, outliers, slow, average };
}
