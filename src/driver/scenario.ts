import type { NodeId, NodeSpec, Role } from "../workers/runtime/types.ts";
import type { Cluster } from "./cluster.ts";
import type { Model } from "../history/linearizable.ts";
import type { TotalOrderResult } from "../history/total-order.ts";

/** Options every system gets from the CLI. */
export interface CommonOptions {
  seed: number;
  /** Workload seconds (cluster time); Infinity runs until Ctrl-C. */
  duration: number;
  latency: number;
  loss: number;
  dup: number;
  nemesis: NemesisKind[];
  nemesisInterval: number;
  logLevel: string;
}

export type NemesisKind = "kill" | "partition" | "loss" | "pause";

/** A system-specific CLI option, in cac's syntax ("--pull <n>"). */
export interface OptionSpec {
  flags: string;
  description: string;
  default?: unknown;
}

export interface Check {
  ok: boolean;
  detail?: string;
}

export interface RunResult {
  checks: Record<string, Check>;
  /** Figures worth printing (latencies, counts); JSON-able. */
  metrics?: Record<string, unknown>;
  /** A total-order verdict on the clients' history (replicated logs), for --history-report. */
  totalOrder?: TotalOrderResult;
}

export interface RunControl {
  /** Resolves when the workload should end: duration elapsed (or Ctrl-C), nemesis stopped and every fault healed. */
  untilStopped(): Promise<void>;
  stopping(): boolean;
}

/**
 * A system as the driver sees it: which nodes to spawn and how to run and check a workload. One per
 * system folder (`scenario.ts`); it runs on the driver (main thread or simulator), never inside a node.
 */
export interface Scenario<O extends Record<string, unknown> = Record<string, any>> {
  name: string;
  description: string;
  options: OptionSpec[];
  topology(opts: O & CommonOptions): NodeSpec[];
  /** Nodes the nemesis may kill, pause or cut off (default: all). */
  nemesisTargets?(opts: O & CommonOptions): NodeId[];
  run(cluster: Cluster, opts: O & CommonOptions, control: RunControl): Promise<RunResult>;
  /** The model the clients' history must be linearizable against; the runner adds a `linearizable` check. */
  historyModel?(opts: O & CommonOptions): Model<any>;
}

/** A system: its roles (loaded inside nodes) and its scenario (loaded by the driver). */
export interface SystemModule {
  roles: Record<string, Role>;
  scenario: Scenario;
}
