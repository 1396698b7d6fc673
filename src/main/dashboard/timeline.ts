/**
 * What happened during a run, in order: faults injected and healed (by the nemesis, the scenario
 * or an operator through the admin API), leader changes, and the checks at the end. Bounded: the
 * oldest events fall off.
 */
import type { Cluster, NetworkPatch } from "../../driver/cluster.ts";

export type TimelineKind = "fault" | "heal" | "network" | "leader" | "check" | "info";

export interface TimelineEvent {
  seq: number;
  /** Wall-clock ms. */
  at: number;
  kind: TimelineKind;
  /** Who did it: "admin", "nemesis" (the run: nemesis and scenario), or a system name for leader changes. */
  source: string;
  text: string;
  /** For checks: passed or failed. */
  ok?: boolean;
}

export const MAX_TIMELINE_EVENTS = 500;

export class Timeline {
  private readonly events: TimelineEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(e: TimelineEvent) => void>();

  add(kind: TimelineKind, source: string, text: string, ok?: boolean): TimelineEvent {
    const e: TimelineEvent = { seq: ++this.seq, at: Date.now(), kind, source, text, ...(ok === undefined ? {} : { ok }) };
    this.events.push(e);
    if (this.events.length > MAX_TIMELINE_EVENTS) this.events.shift();
    for (const l of this.listeners) l(e);
    return e;
  }

  all(): readonly TimelineEvent[] {
    return this.events;
  }

  /** The latest fault or heal, for the terminal status line. */
  lastFault(): TimelineEvent | undefined {
    for (let i = this.events.length - 1; i >= 0; i--) {
      const e = this.events[i]!;
      if (e.kind === "fault" || e.kind === "heal" || e.kind === "network") return e;
    }
    return undefined;
  }

  subscribe(fn: (e: TimelineEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}

/** A one-line account of a network change. */
export function describePatch(p: NetworkPatch): string {
  const parts: string[] = [];
  if (p.loss !== undefined) parts.push(`loss ${p.loss}`);
  if (p.dup !== undefined) parts.push(`dup ${p.dup}`);
  if (p.latencyMs !== undefined) parts.push(`latency ${p.latencyMs} ms`);
  if (p.distribution !== undefined) parts.push(`latency ${p.distribution}`);
  if (p.reorder !== undefined) parts.push(p.reorder ? "reorder on" : "reorder off");
  if (p.links !== undefined) parts.push(`${Object.keys(p.links).length} link override(s)`);
  if (p.partitions !== undefined) {
    parts.push(p.partitions.length === 0 ? "partitions healed" : p.partitions.map((x) => `partition [${x.from.join(",")}] ${x.oneWay ? "->" : "|"} [${x.to.join(",")}]`).join("; "));
  }
  return parts.length > 0 ? parts.join(", ") : "no change";
}

const FAULTS: Record<string, { kind: TimelineKind; verb: string }> = {
  crash: { kind: "fault", verb: "crashed" },
  restart: { kind: "heal", verb: "restarted" },
  pause: { kind: "fault", verb: "paused" },
  resume: { kind: "heal", verb: "resumed" },
};

/**
 * The same cluster, with every fault and network change written to the timeline after it took
 * effect. The nemesis and the admin API each get their own view, so the timeline says who acted.
 */
export function recorded(cluster: Cluster, timeline: Timeline, source: string): Cluster {
  return new Proxy(cluster, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target);
      if (typeof v !== "function") return v;
      const f = v as (...a: unknown[]) => unknown;
      const fault = typeof prop === "string" ? FAULTS[prop] : undefined;
      if (fault) {
        return async (id: string) => {
          await f.call(target, id);
          timeline.add(fault.kind, source, `${id} ${fault.verb}`);
        };
      }
      if (prop === "setNetwork") {
        return async (patch: NetworkPatch) => {
          await f.call(target, patch);
          const healed = patch.partitions !== undefined && patch.partitions.length === 0 && Object.keys(patch).length === 1;
          timeline.add(healed ? "heal" : "network", source, describePatch(patch));
        };
      }
      return f.bind(target);
    },
  });
}
