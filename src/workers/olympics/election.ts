import type { NodeId } from "../runtime/types.ts";

/**
 * Dispatcher leader election, pure: the leader is the highest id among the dispatchers heard from
 * within `timeoutMs` (itself always counts). Every dispatcher heartbeats every other, so this is the
 * bully algorithm's outcome without its rounds: a higher id that comes back takes over at its next
 * heartbeat, a dead leader is replaced once its heartbeats stop. During a partition each side may
 * have a leader; each hands out front ends from the load table it rebuilds from the front ends'
 * reports, so clients keep working on both sides, and the sides agree again when it heals.
 */
export class Election {
  private readonly lastHeard = new Map<NodeId, number>();

  constructor(
    readonly self: NodeId,
    readonly peers: readonly NodeId[],
    private readonly timeoutMs: number,
  ) {}

  heard(peer: NodeId, now: number): void {
    if (this.peers.includes(peer)) this.lastHeard.set(peer, now);
  }

  alive(now: number): NodeId[] {
    return [this.self, ...this.peers.filter((p) => (this.lastHeard.get(p) ?? -Infinity) >= now - this.timeoutMs)].sort(compareIds);
  }

  leader(now: number): NodeId {
    const a = this.alive(now);
    return a[a.length - 1]!;
  }
}

/** "dispatcher-10" after "dispatcher-9": numeric suffixes compare as numbers. */
export function compareIds(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true });
}
