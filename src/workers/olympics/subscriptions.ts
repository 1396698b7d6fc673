import type { NodeId, Storage } from "../runtime/types.ts";
import type { Event, Team } from "./domain.ts";

const PREFIX = "sub/";

export interface Interests {
  teams: Team[];
  events: Event[];
}

/**
 * Which push tablets want which teams and events. Durable, so an obelix that restarts keeps pushing
 * without waiting for every tablet's next registration. Indexed by team and by event so an update's
 * fan-out touches only the interested tablets.
 */
export class Subscriptions {
  private readonly byTablet = new Map<NodeId, Interests>();
  private readonly byTeam = new Map<Team, Set<NodeId>>();
  private readonly byEvent = new Map<Event, Set<NodeId>>();

  /**
   * `maxTablets` bounds the table: registrations come only from cluster nodes, so this is their count.
   * `newRun`: the node's first boot in this run. Its tablets are new and register afresh, maybe with
   * other interests and through another server: a table kept from an earlier run (the data dir
   * outlives runs) would push them what they never asked for, so it is dropped. A restart within a
   * run keeps the table.
   */
  constructor(
    private readonly storage: Storage,
    private readonly maxTablets: number,
    newRun: boolean,
  ) {
    if (newRun) {
      for (const [key] of storage.scan({ prefix: PREFIX })) storage.delete(key);
      return;
    }
    for (const [key, value] of storage.scan<Interests>({ prefix: PREFIX })) {
      if (this.byTablet.size >= maxTablets) break;
      this.index(key.slice(PREFIX.length), value);
    }
  }

  /** Replace a tablet's interests; false (and nothing changed) when the table is full. */
  set(tablet: NodeId, interests: Interests): boolean {
    if (!this.byTablet.has(tablet) && this.byTablet.size >= this.maxTablets) return false;
    this.storage.put(PREFIX + tablet, interests);
    this.unindex(tablet);
    this.index(tablet, interests);
    return true;
  }

  teamSubscribers(team: Team): ReadonlySet<NodeId> {
    return this.byTeam.get(team) ?? new Set();
  }

  eventSubscribers(event: Event): ReadonlySet<NodeId> {
    return this.byEvent.get(event) ?? new Set();
  }

  get size(): number {
    return this.byTablet.size;
  }

  all(): Record<NodeId, Interests> {
    return Object.fromEntries(this.byTablet);
  }

  private index(tablet: NodeId, interests: Interests): void {
    this.byTablet.set(tablet, interests);
    for (const t of interests.teams) (this.byTeam.get(t) ?? this.byTeam.set(t, new Set()).get(t)!).add(tablet);
    for (const e of interests.events) (this.byEvent.get(e) ?? this.byEvent.set(e, new Set()).get(e)!).add(tablet);
  }

  private unindex(tablet: NodeId): void {
    const old = this.byTablet.get(tablet);
    if (!old) return;
    for (const t of old.teams) this.byTeam.get(t)?.delete(tablet);
    for (const e of old.events) this.byEvent.get(e)?.delete(tablet);
    this.byTablet.delete(tablet);
  }
}
