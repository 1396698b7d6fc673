/**
 * What the supervisor and the host bridge need of each other — and nothing more. Neither imports
 * the other's class: the supervisor sees other hosts through RemoteHosts, the bridge sees this
 * host's nodes through LocalHost.
 */
import type { NodeInfo } from "../driver/cluster.ts";
import type { NetworkSettings } from "../workers/runtime/network.ts";
import type { Message, NodeId, NodeSpec, NodeStatus } from "../workers/runtime/types.ts";
import type { Endpoint } from "../workers/runtime/wire.ts";

export type ControlOp = "crash" | "restart" | "pause" | "resume" | "inspect" | "info" | "network" | "where" | "shutdown";

/** Other hosts, as the supervisor reaches them (implemented by the TCP bridge). */
export interface RemoteHosts {
  /** Where a peer host is reached (its nodes' data endpoints share the hostname). */
  endpointOf(host: string): Endpoint | undefined;
  /** Run a control operation on a host; rejects with an error naming the host if it does not answer. */
  control(host: string, op: ControlOp, node?: NodeId, extra?: unknown): Promise<unknown>;
  /** A driver message for a node on (or the driver on) another host. */
  sendToHost(host: string, msg: unknown): void;
  remoteStatus(id: NodeId): NodeStatus;
  remoteInfo(): Promise<NodeInfo[]>;
  /** Every peer host adopts the settings; throws naming each host that did not confirm. */
  broadcastNetwork(net: NetworkSettings): Promise<void>;
}

/** This host's nodes, as the bridge serves them to other hosts (implemented by the supervisor). */
export interface LocalHost {
  readonly nodes: readonly NodeSpec[];
  isLocal(id: NodeId): boolean;
  hostOf(id: NodeId): string | undefined;
  deliverToDriver(msg: Message): void;
  deliverFromDriver(msg: Message): void;
  crash(id: NodeId): Promise<NodeStatus>;
  restart(id: NodeId): Promise<NodeStatus>;
  pause(id: NodeId): Promise<NodeStatus>;
  resume(id: NodeId): Promise<NodeStatus>;
  inspect(id: NodeId): Promise<unknown>;
  localInfo(): Promise<NodeInfo[]>;
  dataPort(id: NodeId): number | undefined;
  /** The same, waiting briefly for a node still starting. */
  dataPortWhenUp(id: NodeId): Promise<number | undefined>;
  applyNetwork(net: NetworkSettings): Promise<void>;
}
