import type { NodeId } from "../runtime/types.ts";
import type { OrderEntry } from "./order.ts";

/**
 * The tiered Olympics' own messages (the client-facing ones are the single-server protocol of
 * messages.ts, unchanged: a tablet or Cacofonix talks to a front end as it would to obelix).
 */

/** Node ids of the tiered topology. */
export const DB = "db";
/** The name clients address their server by; the router (router.ts) sends it to their front end. */
export const SERVER = "obelix";
export const dispatcherIds = (n: number) => Array.from({ length: n }, (_, i) => `dispatcher-${i + 1}`);
export const frontendIds = (n: number) => Array.from({ length: n }, (_, i) => `frontend-${i + 1}`);

/** Client → dispatcher: register (or renew) and get a front end. A non-leader answers with a redirect. */
export interface RegisterClient {
  type: "register_client";
  client: NodeId;
  [k: string]: unknown;
}
export interface RegisterClientOk {
  type: "register_client_ok";
  server: NodeId;
  [k: string]: unknown;
}
export interface GetServer {
  type: "get_server";
  [k: string]: unknown;
}
export interface GetServerOk {
  type: "get_server_ok";
  server: NodeId;
  [k: string]: unknown;
}
/** A dispatcher that is not the leader: ask `leader` instead. */
export interface Redirect {
  type: "redirect";
  leader: NodeId;
  [k: string]: unknown;
}

/** Dispatcher → dispatcher, every heartbeat. */
export interface DispatcherAlive {
  type: "dispatcher_alive";
  [k: string]: unknown;
}
/** Front end → every dispatcher, every heartbeat: alive, and these clients used it lately. */
export interface FrontendAlive {
  type: "frontend_alive";
  clients: NodeId[];
  [k: string]: unknown;
}

/** Time daemon → node: your clock, please. */
export interface ClockPoll {
  type: "clock_poll";
  [k: string]: unknown;
}
export interface ClockPollOk {
  type: "clock_poll_ok";
  clock: number;
  [k: string]: unknown;
}
/** Time daemon → node: step your clock by deltaMs. */
export interface ClockAdjust {
  type: "clock_adjust";
  deltaMs: number;
  round: number;
  [k: string]: unknown;
}

/** Front end → sequencer (db): give this request its place in the total order. */
export interface Order {
  type: "order";
  rid: string;
  client: NodeId;
  op: string;
  [k: string]: unknown;
}
export interface OrderOk {
  type: "order_ok";
  entry: OrderEntry;
  [k: string]: unknown;
}
/** Sequencer → member front ends: new entries. Fire and forget; gaps are fetched by order_join. */
export interface Ordered {
  type: "ordered";
  entries: OrderEntry[];
  [k: string]: unknown;
}
/** Front end → sequencer, every heartbeat and on a gap: renew my membership, send what I lack. */
export interface OrderJoin {
  type: "order_join";
  delivered: number;
  [k: string]: unknown;
}
export interface OrderJoinOk {
  type: "order_join_ok";
  entries: OrderEntry[];
  length: number;
  [k: string]: unknown;
}

/** Where a request landed in the total order; `raffle` when it won. Added to every client reply of an ordering front end. */
export interface OrderTag {
  seq: number;
  raffle: boolean;
}

export interface FrontendState {
  totalOrder: boolean;
  delivered: number;
  chain: number[];
  winners: OrderEntry[];
  clients: NodeId[];
  requests: number;
  forwarded: number;
  dbRetries: number;
  pushes: number;
  joined: boolean;
  /** Pushes or order entries from anyone but the db, or malformed: dropped. */
  refused: number;
}

export interface DispatcherState {
  leader: NodeId;
  isLeader: boolean;
  loads: Record<NodeId, number>;
  clients: Record<NodeId, NodeId>;
  syncRounds: number;
  /** Per round (latest ones): daemon's clock and the corrections sent. */
  rounds: Array<{ round: number; at: number; corrections: Record<NodeId, number>; outliers: NodeId[] }>;
}

export interface TieredConfig {
  dispatchers: NodeId[];
  frontends: NodeId[];
  db: NodeId;
  /** Every node the time daemon keeps in step (dispatchers, front ends, db). */
  synced: NodeId[];
  syncMs: number;
  syncOutlierMs: number;
  totalOrder: boolean;
  heartbeatMs: number;
  password?: string;
  port?: number;
  [k: string]: unknown;
}
