import type { NodeId } from "../runtime/types.ts";
import { compareIds } from "./election.ts";

/**
 * The dispatcher's load table, pure: which clients each live front end serves. A new client goes to
 * the live front end with the fewest clients (ties: lowest id), so 2N clients on N front ends end
 * with 2 each. A client that asks again (clients renew their registration) stays where it is
 * unless its front end has two or more clients more than the least loaded: then it moves, which
 * rebalances after a front end comes back. Front ends report their clients in their heartbeats, so
 * a new leader rebuilds the table from them; a front end whose heartbeats stop is dropped with its
 * clients, who are placed afresh when they ask again.
 */
export class LoadTable {
  private readonly lastSeen = new Map<NodeId, number>();
  private readonly clientsOf = new Map<NodeId, Set<NodeId>>();
  private readonly frontendOf = new Map<NodeId, NodeId>();

  constructor(
    private readonly frontends: readonly NodeId[],
    private readonly timeoutMs: number,
    private readonly maxClients: number,
  ) {}

  /** A front end's heartbeat: it is alive, and serves these clients (ones not placed yet are adopted). */
  heartbeat(fe: NodeId, clients: readonly NodeId[], now: number): void {
    if (!this.frontends.includes(fe)) return;
    this.lastSeen.set(fe, now);
    if (!this.clientsOf.has(fe)) this.clientsOf.set(fe, new Set());
    for (const c of clients) if (!this.frontendOf.has(c)) this.place(c, fe);
  }

  live(now: number): NodeId[] {
    this.expire(now);
    return [...this.clientsOf.keys()].sort(compareIds);
  }

  private expire(now: number): void {
    for (const [fe, seen] of this.lastSeen) {
      if (seen >= now - this.timeoutMs) continue;
      for (const c of this.clientsOf.get(fe) ?? []) this.frontendOf.delete(c);
      this.clientsOf.delete(fe);
      this.lastSeen.delete(fe);
    }
  }

  private place(client: NodeId, fe: NodeId): void {
    const old = this.frontendOf.get(client);
    if (old !== undefined) this.clientsOf.get(old)?.delete(client);
    this.frontendOf.set(client, fe);
    this.clientsOf.get(fe)!.add(client);
  }

  private leastLoaded(now: number): NodeId | undefined {
    let best: NodeId | undefined;
    for (const fe of this.live(now)) if (best === undefined || this.load(fe) < this.load(best)) best = fe;
    return best;
  }

  private load(fe: NodeId): number {
    return this.clientsOf.get(fe)?.size ?? 0;
  }

  /** Which front end a new client would get (GET /getServer), without registering it. */
  suggest(now: number): NodeId | undefined {
    return this.leastLoaded(now);
  }

  /** Register (or renew) a client; returns its front end, or undefined when none is live. */
  register(client: NodeId, now: number): NodeId | undefined {
    const best = this.leastLoaded(now);
    if (best === undefined) return undefined;
    const cur = this.frontendOf.get(client);
    if (cur !== undefined && this.load(cur) - this.load(best) < 2) return cur;
    if (cur === undefined && this.frontendOf.size >= this.maxClients) return undefined;
    const before = this.load(best);
    this.place(client, best);
    assert(this.load(best) === before + 1, "the client landed on the least loaded front end");
    return best;
  }

  loads(now: number): Record<NodeId, number> {
    return Object.fromEntries(this.live(now).map((fe) => [fe, this.load(fe)]));
  }

  clients(): Record<NodeId, NodeId> {
    return Object.fromEntries(this.frontendOf);
  }
}

function assert(cond: unknown, text: string): asserts cond {
  if (!cond) throw new Error(`assertion failed: ${text}`);
}
