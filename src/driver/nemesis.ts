import { CLOCK_JUMP } from "../workers/runtime/clock.ts";
import type { NodeId } from "../workers/runtime/types.ts";
import type { Cluster } from "./cluster.ts";
import type { NemesisKind } from "./scenario.ts";

export interface NemesisEvent {
  /** Seconds since the run started (cluster time). */
  at: number;
  kind: NemesisKind;
  action: "inject" | "heal";
  detail: string;
}

export const NEMESIS_KINDS: readonly NemesisKind[] = ["kill", "partition", "loss", "pause", "clock"];
/** Largest jump of the "clock" nemesis when no --clock-skew is set. */
const DEFAULT_CLOCK_JUMP_MS = 100;
/** Loss the "loss" nemesis adds while active. */
const NEMESIS_LOSS = 0.2;

/**
 * Injects one fault every interval and heals it at the next, alternating, until stopped; then heals
 * everything. Every choice comes from the cluster's seeded random source, so the simulator replays it.
 */
export class Nemesis {
  readonly events: NemesisEvent[] = [];
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private active: { kind: NemesisKind; heal: () => Promise<unknown>; detail: string } | null = null;
  private readonly t0: number;

  constructor(
    private readonly cluster: Cluster,
    private readonly kinds: readonly NemesisKind[],
    private readonly targets: readonly NodeId[],
    private readonly intervalMs: number,
    /** Largest jump of the "clock" nemesis (--clock-skew). */
    private readonly clockSkewMs = 0,
  ) {
    this.t0 = cluster.now();
  }

  start(): void {
    if (this.kinds.length === 0 || this.targets.length === 0) return;
    this.running = true;
    this.done = this.loop();
  }

  private record(kind: NemesisKind, action: "inject" | "heal", detail: string): void {
    const at = (this.cluster.now() - this.t0) / 1000;
    this.events.push({ at, kind, action, detail });
    this.cluster.log.info(`nemesis ${action} ${kind}: ${detail}`);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      await this.cluster.sleep(this.intervalMs);
      if (!this.running) break;
      if (this.active) await this.healActive();
      else await this.inject();
    }
  }

  private async inject(): Promise<void> {
    const c = this.cluster;
    const kind = c.random.pick(this.kinds);
    const running = this.targets.filter((id) => c.status(id) === "running");
    switch (kind) {
      case "kill":
      case "pause": {
        if (running.length === 0) return;
        const id = c.random.pick(running);
        if (kind === "kill") await c.crash(id);
        else await c.pause(id);
        this.active = { kind, detail: id, heal: () => (kind === "kill" ? c.restart(id) : c.resume(id)) };
        break;
      }
      case "partition": {
        const all = c.nodes.map((n) => n.id);
        const shuffled = c.random.shuffle(this.targets);
        const cut = shuffled.slice(0, Math.max(1, Math.floor(shuffled.length / 2)));
        const rest = all.filter((id) => !cut.includes(id));
        if (rest.length === 0) return;
        await c.setNetwork({ partitions: [{ from: cut, to: rest }] });
        this.active = { kind, detail: `[${cut.join(",")}] | rest`, heal: () => c.setNetwork({ partitions: [] }) };
        break;
      }
      case "clock": {
        // A clock jump is not undone: healing it is the clock-sync protocol's job, if the system has one.
        if (running.length === 0) return;
        const id = c.random.pick(running);
        const max = this.clockSkewMs > 0 ? this.clockSkewMs : DEFAULT_CLOCK_JUMP_MS;
        const deltaMs = c.random.range(-max, max);
        try {
          await c.request(id, { type: CLOCK_JUMP, deltaMs }, 1000);
        } catch {
          return; // the node died meanwhile: nothing was injected
        }
        this.record(kind, "inject", `${id} ${deltaMs >= 0 ? "+" : ""}${deltaMs.toFixed(1)} ms`);
        return;
      }
      case "loss": {
        const before = c.network().defaults.loss;
        const loss = Math.min(1, before + NEMESIS_LOSS);
        await c.setNetwork({ loss });
        this.active = { kind, detail: `loss ${before} -> ${loss}`, heal: () => c.setNetwork({ loss: before }) };
        break;
      }
    }
    if (this.active) this.record(kind, "inject", this.active.detail);
  }

  private async healActive(): Promise<void> {
    const a = this.active!;
    this.active = null;
    await a.heal();
    this.record(a.kind, "heal", a.detail);
  }

  /** Stop injecting and heal whatever is broken, including nodes left crashed or paused. */
  async stop(): Promise<void> {
    this.running = false;
    await this.done;
    if (this.active) await this.healActive();
  }
}
