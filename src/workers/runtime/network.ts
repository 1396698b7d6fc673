import { Limits } from "./limits.ts";
import type { NodeId, Random } from "./types.ts";

/**
 * The simulated network's model: per-link latency, loss, duplication, reordering and partitions.
 * Pure data and one decision maker, `LinkPlanner` — the worker host and the simulator both use it,
 * so a setting means the same thing in both.
 */

export type LatencyDistribution = "constant" | "uniform" | "exponential";

export interface LinkSettings {
  /** Mean one-way latency in ms. */
  latencyMs: number;
  distribution: LatencyDistribution;
  /** Probability a message is dropped. */
  loss: number;
  /** Probability a message is delivered twice. */
  dup: number;
  /** When false, a link is FIFO even with random latency. */
  reorder: boolean;
}

export interface Partition {
  /** Messages from any node in `from` to any node in `to` are dropped; with `oneWay` false, also back. */
  from: NodeId[];
  to: NodeId[];
  oneWay?: boolean;
}

export interface NetworkSettings {
  defaults: LinkSettings;
  /** Overrides keyed "src->dest"; "*" matches any node on either side. */
  links: Record<string, Partial<LinkSettings>>;
  partitions: Partition[];
}

export const PERFECT_LINK: LinkSettings = { latencyMs: 0, distribution: "constant", loss: 0, dup: 0, reorder: false };

export function defaultNetwork(): NetworkSettings {
  return { defaults: { ...PERFECT_LINK }, links: {}, partitions: [] };
}

export function linkSettings(net: NetworkSettings, src: NodeId, dest: NodeId): LinkSettings {
  const o = net.links[`${src}->${dest}`] ?? net.links[`${src}->*`] ?? net.links[`*->${dest}`];
  return o ? { ...net.defaults, ...o } : net.defaults;
}

export function isPartitioned(net: NetworkSettings, src: NodeId, dest: NodeId): boolean {
  for (const p of net.partitions) {
    if (p.from.includes(src) && p.to.includes(dest)) return true;
    if (!p.oneWay && p.to.includes(src) && p.from.includes(dest)) return true;
  }
  return false;
}

/** True when a link needs no decision at all: the fast path. */
export function isPerfect(net: NetworkSettings): boolean {
  const d = net.defaults;
  return net.partitions.length === 0 && Object.keys(net.links).length === 0 && d.latencyMs === 0 && d.loss === 0 && d.dup === 0;
}

function sampleLatency(s: LinkSettings, rng: Random): number {
  if (s.latencyMs <= 0) return 0;
  switch (s.distribution) {
    case "constant":
      return s.latencyMs;
    case "uniform":
      return rng.range(0, 2 * s.latencyMs);
    case "exponential":
      return rng.exponential(s.latencyMs);
  }
}

/**
 * Decides each message's fate from the settings and a seeded source, and keeps every link FIFO
 * unless reordering is on. The worker host keeps one per node, the simulator one for the cluster.
 */
export class LinkPlanner {
  /** Latest arrival time scheduled on each link ("src->dest"). */
  private readonly lastArrival = new Map<string, number>();

  constructor(private readonly rng: Random) {}

  /** The delays (ms from `now`) after which each copy arrives; [] means dropped. */
  plan(net: NetworkSettings, src: NodeId, dest: NodeId, now: number): number[] {
    const key = `${src}->${dest}`;
    const last = this.lastArrival.get(key) ?? 0;
    const delays = decide(net, src, dest, this.rng, Math.max(0, last - now));
    if (delays.length > 0) this.lastArrival.set(key, Math.max(last, now + Math.max(...delays)));
    return delays;
  }
}

/** One message's fate; `fifoFloor` is the earliest delay that keeps the link FIFO when reordering is off. */
function decide(net: NetworkSettings, src: NodeId, dest: NodeId, rng: Random, fifoFloor: number): number[] {
  if (isPartitioned(net, src, dest)) return [];
  const s = linkSettings(net, src, dest);
  if (s.loss > 0 && rng.chance(s.loss)) return [];
  const copies = s.dup > 0 && rng.chance(s.dup) ? 2 : 1;
  const out: number[] = [];
  for (let i = 0; i < copies; i++) {
    let d = sampleLatency(s, rng);
    if (!s.reorder) d = Math.max(d, fifoFloor);
    out.push(d);
  }
  return out;
}

/** Validate untrusted settings (admin API, CLI); throws a clear Error naming the bad field. */
/** A validated change to the network settings. */
export interface ValidNetworkPatch {
  defaults?: Partial<LinkSettings>;
  links?: Record<string, Partial<LinkSettings>>;
  partitions?: Partition[];
}

export function parseNetworkPatch(input: unknown, nodeIds: readonly NodeId[]): ValidNetworkPatch {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new Error("network settings must be a JSON object");
  const obj = input as Record<string, unknown>;
  const known = new Set(["latencyMs", "distribution", "loss", "dup", "reorder", "links", "partitions"]);
  for (const k of Object.keys(obj)) if (!known.has(k)) throw new Error(`unknown network setting "${k}" (known: ${[...known].join(", ")})`);
  const out: ValidNetworkPatch = {};
  const link = parseLink(obj, "");
  if (Object.keys(link).length > 0) out.defaults = link;
  if (obj.links !== undefined) {
    if (typeof obj.links !== "object" || obj.links === null || Array.isArray(obj.links)) throw new Error("links must be an object keyed \"src->dest\"");
    out.links = {};
    for (const [key, v] of Object.entries(obj.links)) {
      const m = /^([^>]+)->([^>]+)$/.exec(key);
      if (!m) throw new Error(`link key "${key}" must look like "src->dest"`);
      for (const id of [m[1]!, m[2]!]) if (id !== "*" && !nodeIds.includes(id)) throw new Error(`unknown node "${id}" in link "${key}"`);
      if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`links["${key}"] must be an object`);
      // A misspelt setting ("los") must not pass as a link with no change.
      for (const k of Object.keys(v)) if (!LINK_SETTINGS.includes(k)) throw new Error(`unknown setting "${k}" in links["${key}"] (known: ${LINK_SETTINGS.join(", ")})`);
      out.links[key] = parseLink(v as Record<string, unknown>, `links["${key}"].`);
    }
  }
  if (obj.partitions !== undefined) {
    if (!Array.isArray(obj.partitions)) throw new Error("partitions must be an array of {from, to, oneWay?}");
    out.partitions = obj.partitions.map((p, i) => {
      if (typeof p !== "object" || p === null) throw new Error(`partitions[${i}] must be an object`);
      const q = p as Record<string, unknown>;
      for (const k of Object.keys(q)) if (k !== "from" && k !== "to" && k !== "oneWay") throw new Error(`unknown key "${k}" in partitions[${i}] (known: from, to, oneWay)`);
      const side = (name: "from" | "to"): NodeId[] => {
        const v = q[name];
        if (!Array.isArray(v) || v.length === 0 || !v.every((x) => typeof x === "string")) throw new Error(`partitions[${i}].${name} must be a non-empty array of node ids`);
        for (const id of v) if (!nodeIds.includes(id)) throw new Error(`unknown node "${id}" in partitions[${i}].${name}`);
        return v as NodeId[];
      };
      if (q.oneWay !== undefined && typeof q.oneWay !== "boolean") throw new Error(`partitions[${i}].oneWay must be a boolean`);
      return { from: side("from"), to: side("to"), oneWay: q.oneWay === true };
    });
  }
  return out;
}

const LINK_SETTINGS: readonly string[] = ["latencyMs", "distribution", "loss", "dup", "reorder"];

function parseLink(obj: Record<string, unknown>, where: string): Partial<LinkSettings> {
  const out: Partial<LinkSettings> = {};
  const prob = (k: "loss" | "dup") => {
    const v = obj[k];
    if (v === undefined) return;
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) throw new Error(`${where}${k} must be a probability between 0 and 1`);
    out[k] = v;
  };
  prob("loss");
  prob("dup");
  if (obj.latencyMs !== undefined) {
    const v = obj.latencyMs;
    if (typeof v !== "number" || !(v >= 0 && v <= Limits.maxLatencyMs)) throw new Error(`${where}latencyMs must be a number of ms from 0 to ${Limits.maxLatencyMs}`);
    out.latencyMs = v;
  }
  if (obj.distribution !== undefined) {
    if (obj.distribution !== "constant" && obj.distribution !== "uniform" && obj.distribution !== "exponential") throw new Error(`${where}distribution must be constant, uniform or exponential`);
    out.distribution = obj.distribution;
  }
  if (obj.reorder !== undefined) {
    if (typeof obj.reorder !== "boolean") throw new Error(`${where}reorder must be a boolean`);
    out.reorder = obj.reorder;
  }
  return out;
}

/** Apply a validated patch. Partitions and links, when given, replace the old ones (send [] to heal). */
export function applyNetworkPatch(net: NetworkSettings, patch: ValidNetworkPatch): NetworkSettings {
  return {
    defaults: { ...net.defaults, ...(patch.defaults ?? {}) },
    links: patch.links ?? net.links,
    partitions: patch.partitions ?? net.partitions,
  };
}
