/**
 * The live view of a running cluster, sampled on the driver from the Cluster interface only (so it
 * means the same on threads and over TCP hosts): node status, per-link message and drop rates,
 * the workload's request rate and latency, and each system's panel. The dashboard stream and the
 * terminal status line both read it.
 */
import type { Cluster, NodeInfo } from "../../driver/cluster.ts";
import { percentile } from "../../driver/stats.ts";
import type { NodeId } from "../../workers/runtime/types.ts";
import { GENERIC_VIEW, VIEWS, type SystemView } from "./systems.ts";
import type { Timeline } from "./timeline.ts";

export interface NodeView {
  id: NodeId;
  role: string;
  host: string;
  status: string;
  incarnation: number;
  /** Messages sent per second. */
  rate: number;
  pending: number;
}

export interface LinkView {
  src: NodeId;
  dest: NodeId;
  /** Messages per second, and dropped by the simulated network per second. */
  rate: number;
  drops: number;
}

export interface Point {
  t: number;
  msgs: number;
  drops: number;
  ops: number;
  p50: number | null;
  p99: number | null;
}

export interface Frame {
  t: number;
  system: string;
  mode: string;
  seed: number;
  nodes: NodeView[];
  links: LinkView[];
  network: ReturnType<Cluster["network"]>;
  point: Point;
  up: number;
}

export interface PanelFrame {
  t: number;
  system: string;
  leader: string | null;
  panel: unknown;
}

/** Sampling while a page watches: 6-7 frames a second, so the page stays above 5 even when a sample runs late. */
const FRAME_MS = 150;
const IDLE_MS = 1000;
/** Samples kept for the charts: about two minutes at the fast rate. */
export const HISTORY_POINTS = 800;
/** Latency window for p50/p99: the last second's replies. */
const LATENCY_WINDOW_MS = 1000;
const MAX_WINDOW_SAMPLES = 20_000;
/** Rates are smoothed exponentially with this time constant (s), so bursty traffic reads steadily at any sampling rate. */
const SMOOTHING_S = 0.6;

interface Prev {
  incarnation: number;
  sent: number;
  repliesOk: number;
  links: Record<NodeId, [number, number]>;
}

export class LiveView {
  readonly view: SystemView;
  private readonly prev = new Map<NodeId, Prev>();
  private prevAt = 0;
  private readonly history: Point[] = [];
  private latencies: Array<[number, number]> = [];
  private frame: Frame | null = null;
  private panel: PanelFrame | null = null;
  private lastLeader: string | null | undefined = undefined;
  private readonly frameListeners = new Set<(f: Frame) => void>();
  private readonly panelListeners = new Set<(p: PanelFrame) => void>();
  private timer: ReturnType<typeof setTimeout> | null = null;
  private panelBusy = false;
  private stopped = false;
  private tick = 0;
  private readonly clientRoles: Set<string> | null;
  /** Smoothed rates by node id, "src->dest" (and "src->dest!" for drops), and the totals. */
  private readonly rates = new Map<string, number>();
  /** This sample's smoothing weight (depends on the time since the last sample). */
  private alpha = 1;
  /** The last sample's nodes, for the panel digests. */
  private lastInfos: NodeInfo[] = [];

  constructor(
    private readonly cluster: Cluster,
    readonly system: string,
    private readonly timeline: Timeline,
  ) {
    this.view = VIEWS[system] ?? GENERIC_VIEW;
    this.clientRoles = this.view.clientRoles.length > 0 ? new Set(this.view.clientRoles) : null;
  }

  /** Watchers of the page want at least 5 frames a second; the status line alone is happy with one. */
  private intervalMs(): number {
    return this.frameListeners.size > 0 ? FRAME_MS : IDLE_MS;
  }

  start(): void {
    const loop = async () => {
      if (this.stopped) return;
      const began = Date.now();
      try {
        await this.sample();
        // Panels (and so leader changes) every 300 ms while a page watches, every 3 s otherwise.
        if (this.tick++ % (this.panelListeners.size > 0 ? 2 : 3) === 0 && !this.panelBusy) void this.samplePanel();
      } catch {
        // A sample can fail while the cluster stops or a host is away; the next one tries again.
      }
      // A fixed rate, not a fixed gap: the sample's own time does not slow the page below 5 frames a second.
      if (!this.stopped) this.timer = setTimeout(loop, Math.max(0, this.intervalMs() - (Date.now() - began)));
    };
    this.timer = setTimeout(loop, 0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  latest(): Frame | null {
    return this.frame;
  }

  latestPanel(): PanelFrame | null {
    return this.panel;
  }

  points(): readonly Point[] {
    return this.history;
  }

  onFrame(fn: (f: Frame) => void): () => void {
    this.frameListeners.add(fn);
    return () => this.frameListeners.delete(fn);
  }

  onPanel(fn: (p: PanelFrame) => void): () => void {
    this.panelListeners.add(fn);
    return () => this.panelListeners.delete(fn);
  }

  private async sample(): Promise<void> {
    const infos = await this.cluster.info();
    const now = Date.now();
    const dt = this.prevAt > 0 ? Math.max(0.05, (now - this.prevAt) / 1000) : 0;
    this.prevAt = now;
    this.alpha = dt > 0 ? 1 - Math.exp(-dt / SMOOTHING_S) : 1;
    const nodes: NodeView[] = [];
    const links: LinkView[] = [];
    let msgs = 0;
    let drops = 0;
    let ops = 0;
    for (const n of infos) {
      const s = n.stats;
      const p = this.prev.get(n.id);
      // A restarted node counts from zero again: its first delta is its whole count.
      const fresh = !p || p.incarnation !== n.incarnation;
      const delta = (cur: number, old: number | undefined) => (fresh || old === undefined || cur < old ? cur : cur - old);
      let rate = 0;
      if (s && dt > 0) {
        rate = this.smoothed(n.id, delta(s.sent, p?.sent) / dt);
        msgs += rate;
        if (this.clientRoles === null || this.clientRoles.has(n.role)) {
          const replies = delta(s.repliesOk, p?.repliesOk);
          ops += replies / dt;
          const fresh = s.recentLatencyMs.slice(Math.max(0, s.recentLatencyMs.length - replies));
          for (const l of fresh) this.latencies.push([now, l]);
        }
        for (const [dest, [ls, ld]] of Object.entries(s.links ?? {})) {
          const old = p?.links[dest];
          const r = this.smoothed(`${n.id}->${dest}`, delta(ls, old?.[0]) / dt);
          const d = this.smoothed(`${n.id}->${dest}!`, delta(ld, old?.[1]) / dt);
          drops += d;
          if (r > 0.05 || d > 0.05) links.push({ src: n.id, dest, rate: r, drops: d });
        }
      }
      if (s) this.prev.set(n.id, { incarnation: n.incarnation, sent: s.sent, repliesOk: s.repliesOk, links: s.links ?? {} });
      nodes.push({ id: n.id, role: n.role, host: n.host, status: n.status, incarnation: n.incarnation, rate, pending: s?.pendingRequests ?? 0 });
    }
    const cutoff = now - LATENCY_WINDOW_MS;
    let i = 0;
    while (i < this.latencies.length && this.latencies[i]![0] < cutoff) i++;
    if (i > 0) this.latencies = this.latencies.slice(i);
    if (this.latencies.length > MAX_WINDOW_SAMPLES) this.latencies = this.latencies.slice(-MAX_WINDOW_SAMPLES);
    const lat = this.latencies.map(([, l]) => l);
    const round = (x: number) => Math.round(x * 10) / 10;
    ops = this.smoothed("ops", ops);
    const point: Point = { t: now, msgs: round(msgs), drops: round(drops), ops: round(ops), p50: lat.length ? round(percentile(lat, 50)) : null, p99: lat.length ? round(percentile(lat, 99)) : null };
    if (dt > 0) {
      this.history.push(point);
      if (this.history.length > HISTORY_POINTS) this.history.shift();
    }
    this.frame = { t: now, system: this.system, mode: this.cluster.mode, seed: this.cluster.seed, nodes, links, network: this.cluster.network(), point, up: nodes.filter((n) => n.status === "running").length };
    for (const l of this.frameListeners) l(this.frame);
    this.lastInfos = infos;
  }

  private smoothed(key: string, raw: number): number {
    const old = this.rates.get(key);
    const v = old === undefined ? raw : old + this.alpha * (raw - old);
    this.rates.set(key, v);
    return v;
  }

  private async samplePanel(): Promise<void> {
    this.panelBusy = true;
    try {
      const d = await this.view.digest(this.cluster, this.lastInfos);
      const leader = d.leader ?? null;
      if (d.leader !== undefined && leader !== this.lastLeader) {
        if (this.lastLeader !== undefined || leader !== null) this.timeline.add("leader", this.system, leader ? `${leader} leads` : "no leader");
        this.lastLeader = leader;
      }
      this.panel = { t: Date.now(), system: this.system, leader, panel: d.panel };
      for (const l of this.panelListeners) l(this.panel);
    } catch {
      // A digest may fail mid-crash; the page keeps the last panel.
    } finally {
      this.panelBusy = false;
    }
  }
}
