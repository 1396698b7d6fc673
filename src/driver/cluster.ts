import type { LinkSettings, NetworkSettings, Partition } from "../workers/runtime/network.ts";
import type { NodeStats } from "../workers/runtime/node.ts";
import type { Body, Logger, NodeId, NodeSpec, NodeStatus, Random } from "../workers/runtime/types.ts";
import type { HistoryLog } from "../history/record.ts";

export { DRIVER_ID, type NodeStatus } from "../workers/runtime/types.ts";

/** A network change: fields of LinkSettings for every link, plus link overrides and partitions (which replace the old ones). */
export interface NetworkPatch extends Partial<LinkSettings> {
  links?: Record<string, Partial<LinkSettings>>;
  partitions?: Partition[];
}

export interface NodeInfo {
  id: NodeId;
  role: string;
  host: string;
  status: NodeStatus;
  incarnation: number;
  stats: NodeStats | null;
}

/**
 * What a scenario (workload + checks), the nemesis and the admin API drive: the same interface on
 * worker threads and in the simulator. Time here is the cluster's time: virtual in the simulator.
 */
export interface Cluster {
  readonly mode: "threads" | "sim";
  readonly seed: number;
  readonly nodes: readonly NodeSpec[];
  /** The driver's own seeded random source (nemesis choices, workload choices). */
  readonly random: Random;
  readonly log: Logger;
  now(): number;
  sleep(ms: number): Promise<void>;
  /**
   * Control operations. On one node they run one at a time in the order called; each answers with
   * the state it left the node in (a later call may change it again).
   */
  crash(id: NodeId): Promise<NodeStatus>;
  restart(id: NodeId): Promise<NodeStatus>;
  pause(id: NodeId): Promise<NodeStatus>;
  resume(id: NodeId): Promise<NodeStatus>;
  status(id: NodeId): NodeStatus;
  info(): Promise<NodeInfo[]>;
  network(): NetworkSettings;
  /** Validates with parseNetworkPatch; throws a clear Error on bad input and changes nothing. */
  setNetwork(patch: NetworkPatch): Promise<void>;
  /** The role's inspect() snapshot, or null if the node is crashed. */
  inspect<T = unknown>(id: NodeId): Promise<T | null>;
  /** A request from the driver (pseudo-node "driver") to a node; not subject to network faults. */
  request<R = Body>(dest: NodeId, body: Body, timeoutMs?: number): Promise<R>;
  /** An HTTP request to a node that serves HTTP. */
  fetch(id: NodeId, req: Request): Promise<Response>;
  /** The base URL of a node's HTTP server on threads; undefined in the simulator or if it serves none. */
  httpUrl(id: NodeId): string | undefined;
  /** The client operations recorded so far (nodes' `node.history`), stamped on the driver's clock. */
  readonly history?: HistoryLog;
  /**
   * Crashes, pauses and network changes asked of this cluster so far, by anyone (nemesis, operator,
   * dashboard, test): a check that holds only without faults needs to know there were none.
   */
  readonly faultsAsked: number;
}

/** A valid change that did not take effect on every worker or host; the message names those that failed. */
export class NotAppliedError extends Error {}
