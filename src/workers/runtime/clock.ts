import { seededRandom } from "./random.ts";
import type { NodeSpec } from "./types.ts";

/**
 * A node's own clock. Real machines disagree about the time: each starts off by some offset and
 * runs a little fast or slow (drift, in parts per million). Protocols that lean on clocks (leases,
 * timestamps, clock synchronisation) must be tested against that, so every node reads the time
 * through one of these, on threads, over TCP and in the simulator alike.
 *
 *   reading(t) = t + offset + drift·(t − t0) + adjustments
 *
 * where t is true time (the host's real clock, or virtual time) and t0 the moment the node booted.
 * `adjust` is the node's own correction (a clock-sync algorithm stepping its clock); `jump` is a
 * fault from outside (the `clock` nemesis). A restarted node gets a fresh clock from the same
 * seeded offset and drift, like a machine whose clock is set from its hardware clock at boot.
 */

/** The largest drift accepted: 1000 ppm is a 0.1% error, far worse than any crystal. */
export const MAX_DRIFT_PPM = 1000;
/** The largest offset accepted: one day. */
export const MAX_CLOCK_OFFSET_MS = 86_400_000;

/** One node's clock error as configured: where it starts and how fast it runs. */
export interface ClockSpec {
  offsetMs: number;
  driftPpm: number;
}

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${text}`);
}

export class NodeClock {
  private readonly t0: number;
  /** Sum of `adjust` and `jump` deltas. */
  private corrections = 0;

  constructor(
    private readonly spec: ClockSpec,
    trueNow: number,
  ) {
    assert(Number.isFinite(spec.offsetMs) && Math.abs(spec.offsetMs) <= MAX_CLOCK_OFFSET_MS, `clock offset must be within ±${MAX_CLOCK_OFFSET_MS} ms`);
    assert(Number.isFinite(spec.driftPpm) && Math.abs(spec.driftPpm) <= MAX_DRIFT_PPM, `clock drift must be within ±${MAX_DRIFT_PPM} ppm`);
    this.t0 = trueNow;
  }

  read(trueNow: number): number {
    return trueNow + this.spec.offsetMs + ((trueNow - this.t0) * this.spec.driftPpm) / 1e6 + this.corrections;
  }

  /** Whether a reading is true time itself: no offset, no drift, no correction. */
  get exact(): boolean {
    return this.spec.offsetMs === 0 && this.spec.driftPpm === 0 && this.corrections === 0;
  }

  /** reading − true time, in ms. */
  error(trueNow: number): number {
    return this.read(trueNow) - trueNow;
  }

  /** Step the clock by delta ms (the node's own correction or a fault). */
  adjust(deltaMs: number): void {
    assert(Number.isFinite(deltaMs) && Math.abs(deltaMs) <= MAX_CLOCK_OFFSET_MS, `clock adjustment must be finite and within ±${MAX_CLOCK_OFFSET_MS} ms`);
    this.corrections += deltaMs;
  }
}

/** A perfect clock: what nodes get when no skew or drift is configured. */
export const PERFECT_CLOCK: ClockSpec = { offsetMs: 0, driftPpm: 0 };

/**
 * Each node's offset (uniform in ±skewMs) and drift (uniform in ±driftPpm), drawn from the seed and
 * the node's id, so the same seed gives the same clocks on every host and in the simulator.
 */
export function drawClock(seed: number, nodeId: string, skewMs: number, driftPpm: number): ClockSpec {
  if (skewMs === 0 && driftPpm === 0) return PERFECT_CLOCK;
  const r = seededRandom(seed, `clock:${nodeId}`);
  return { offsetMs: r.range(-skewMs, skewMs), driftPpm: r.range(-driftPpm, driftPpm) };
}

/** The topology with every node's clock drawn from the seed (nodes whose spec already sets one keep it). */
export function withClocks(nodes: NodeSpec[], seed: number, skewMs: number, driftPpm: number): NodeSpec[] {
  assert(Number.isFinite(skewMs) && skewMs >= 0 && skewMs <= MAX_CLOCK_OFFSET_MS, "clock skew out of range");
  assert(Number.isFinite(driftPpm) && driftPpm >= 0 && driftPpm <= MAX_DRIFT_PPM, "clock drift out of range");
  return nodes.map((n) => (n.clock ? n : { ...n, clock: drawClock(seed, n.id, skewMs, driftPpm) }));
}

/** Message type the driver sends to jump a node's clock (the `clock` nemesis); the runtime answers it, not the role. */
export const CLOCK_JUMP = "menhir_clock_jump";
