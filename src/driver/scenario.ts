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
  /** Largest initial clock offset of a node, ms (also the largest jump of the clock nemesis); 0: none. */
  clockSkew?: number;
  /** Largest clock drift of a node, ppm; 0: none. */
  clockDrift?: number;
}

export type NemesisKind = "kill" | "partition" | "loss" | "pause" | "clock";

/** The most nodes one cluster may have, in any mode: it bounds every per-node table and the simulator's memory. */
export const MAX_NODES = 10_000;

/** A system-specific CLI option, in cac's syntax ("--pull <n>"). */
export interface OptionSpec {
  flags: string;
  description: string;
  default?: unknown;
  /** Numeric options: the CLI refuses a value outside [min, max] (min defaults to 0), or a fraction when integer. */
  integer?: boolean;
  min?: number;
  max?: number;
  /**
   * A secret (a password): taken from the flag, else from this environment variable, else generated
   * at random and printed at start. There is never a default anyone could read in the docs.
   */
  secret?: { env: string };
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
  /**
   * Resolves when the workload should end: duration elapsed (or Ctrl-C), nemesis stopped, every fault
   * healed, and the final window (clients running on a healed cluster, to check their progress) over.
   */
  untilStopped(): Promise<void>;
  stopping(): boolean;
}

/**
 * A node that issues operations and must keep completing them. Its role's inspect() carries
 * `completed`: how many operations it has completed (acknowledged) so far.
 */
export interface ClientSpec {
  id: NodeId;
  /** The longest a healthy client may go without completing an operation, ms, retries after a healed fault included. */
  withinMs: number;
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
  /**
   * Nodes the nemesis must leave alone, by node id or role name, each with the reason (shown in
   * `--help`). Like Jepsen's, the nemesis may kill, pause or cut off any other node: clients and
   * writers included, so a system's checks must hold whichever node fails.
   */
  nemesisExcludes?: Readonly<Record<string, string>>;
  /** Its clients: each must complete an operation in the run's final window, after every fault healed. */
  clients?(opts: O & CommonOptions): ClientSpec[];
  run(cluster: Cluster, opts: O & CommonOptions, control: RunControl): Promise<RunResult>;
  /** The model the clients' history must be linearizable against; the runner adds a `linearizable` check. */
  historyModel?(opts: O & CommonOptions): Model<any>;
}

/** A system: its roles (loaded inside nodes) and its scenario (loaded by the driver). */
export interface SystemModule {
  roles: Record<string, Role>;
  scenario: Scenario;
}
