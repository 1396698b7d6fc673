/**
 * The stocks protocol between nodes, their configs, and the validation every receiver applies: a
 * node never trusts a message body's shape, it checks it here and answers MalformedRequest.
 */
import { ErrorCode, RpcError } from "../runtime/types.ts";

export type TradeType = "buy" | "sell";

export interface Stock {
  name: string;
  price: number;
  quantity: number;
}

/** One entry of a replica's order log. `epoch` is the leadership epoch that wrote it (raft's term). */
export interface Order {
  number: number;
  name: string;
  type: TradeType;
  quantity: number;
  requestId: string;
  epoch: number;
}

/** Largest quantity one order may carry: keeps catalog sums far below 2^53. */
export const MAX_ORDER_QUANTITY = 1_000_000_000;
export const MAX_NAME_LENGTH = 64;
export const MAX_REQUEST_ID_LENGTH = 128;
/** Orders per append / log_tail message. */
export const LOG_BATCH = 256;

// Error texts are part of the protocol: the frontend maps them to HTTP statuses.
export const E = {
  stockNotFound: "stock not found",
  orderNotFound: "order not found",
  notEnoughStock: "not enough stock",
  notLeader: "not the leader",
  recovering: "recovering",
  catalogUnavailable: "catalog unavailable",
  overloaded: "too many orders in flight",
} as const;

export function malformed(text: string): RpcError {
  return new RpcError(ErrorCode.MalformedRequest, text);
}

export function isName(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_NAME_LENGTH;
}
export function isTradeType(v: unknown): v is TradeType {
  return v === "buy" || v === "sell";
}
export function isQuantity(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) > 0 && (v as number) <= MAX_ORDER_QUANTITY;
}
export function isRequestId(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_REQUEST_ID_LENGTH;
}
export function isIndex(v: unknown, min = 0): v is number {
  return Number.isSafeInteger(v) && (v as number) >= min;
}

export function isOrder(v: unknown): v is Order {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return isIndex(o.number) && isName(o.name) && isTradeType(o.type) && isQuantity(o.quantity) && isRequestId(o.requestId) && isIndex(o.epoch, 1);
}

/** Entries of an append/log_tail: valid orders with consecutive numbers starting at `first`. */
export function isEntries(v: unknown, first: number): v is Order[] {
  if (!Array.isArray(v) || v.length > LOG_BATCH) return false;
  for (let i = 0; i < v.length; i++) {
    if (!isOrder(v[i]) || v[i].number !== first + i) return false;
    if (i > 0 && v[i].epoch < v[i - 1].epoch) return false;
  }
  return true;
}

// ---- catalog ----
export interface Lookup {
  type: "lookup";
  name: string;
  [k: string]: unknown;
}
export interface LookupOk {
  type: "lookup_ok";
  stock: Stock;
  /** Bumped by every trade of this stock: orders cache fills against invalidations. */
  version: number;
  [k: string]: unknown;
}
export interface Trade {
  type: "trade";
  requestId: string;
  name: string;
  tradeType: TradeType;
  quantity: number;
  [k: string]: unknown;
}
export interface TradeOk {
  type: "trade_ok";
  stock: Stock;
  version: number;
  [k: string]: unknown;
}
/** A trade as the catalog applied it: what an order service needs to log it (or to have it logged again). */
export interface TradeRecord {
  requestId: string;
  name: string;
  tradeType: TradeType;
  quantity: number;
}
/** Leader → catalog: the trades you applied that no order log is known to hold yet (at most LOG_BATCH). */
export interface Unlogged {
  type: "unlogged";
  [k: string]: unknown;
}
export interface UnloggedOk {
  type: "unlogged_ok";
  trades: TradeRecord[];
  /** How many there are in all. */
  total: number;
  [k: string]: unknown;
}
/** Leader → catalog (one-way): these trades are in the order log, replicated; forget them. */
export interface Logged {
  type: "logged";
  requestIds: string[];
  [k: string]: unknown;
}
/** Replica → catalog: these trades were dropped from my log (a stale leader's tail); make sure they are logged again. */
export interface Reopen {
  type: "reopen";
  trades: TradeRecord[];
  [k: string]: unknown;
}

export function isTradeRecord(v: unknown): v is TradeRecord {
  if (typeof v !== "object" || v === null) return false;
  const t = v as Record<string, unknown>;
  return isRequestId(t.requestId) && isName(t.name) && isTradeType(t.tradeType) && isQuantity(t.quantity);
}
export function isTradeRecords(v: unknown): v is TradeRecord[] {
  return Array.isArray(v) && v.length <= LOG_BATCH && v.every(isTradeRecord);
}

/** Catalog → frontend, before the trade is acknowledged: drop `name` and never cache a version below `version`. */
export interface Invalidate {
  type: "invalidate";
  name: string;
  version: number;
  [k: string]: unknown;
}

// ---- frontend → replicas ----
export interface PlaceOrder {
  type: "place_order";
  requestId: string;
  name: string;
  tradeType: TradeType;
  quantity: number;
  [k: string]: unknown;
}
export interface PlaceOrderOk {
  type: "place_order_ok";
  number: number;
  /** The catalog version after this trade, when the leader knows it (not on a deduplicated retry). */
  version?: number;
  [k: string]: unknown;
}
export interface GetOrder {
  type: "get_order";
  number: number;
  [k: string]: unknown;
}
export interface GetOrderOk {
  type: "get_order_ok";
  order: { number: number; name: string; type: TradeType; quantity: number };
  [k: string]: unknown;
}
export interface Health {
  type: "health";
  [k: string]: unknown;
}
export interface HealthOk {
  type: "health_ok";
  ready: boolean;
  leading: boolean;
  epoch: number;
  last: number;
  [k: string]: unknown;
}
/** Frontend → every replica: `leader` leads from `epoch` on. The named leader replies only once it has caught up. */
export interface SetLeader {
  type: "set_leader";
  leader: string;
  epoch: number;
  [k: string]: unknown;
}

// ---- replica ↔ replica ----
/** Raft's AppendEntries: entries follow `prev`, whose epoch must match `prevEpoch` on the follower. */
export interface Append {
  type: "append";
  epoch: number;
  prev: number;
  prevEpoch: number;
  entries: Order[];
  /** The leader's last number when sent: lets a follower drop a stale tail from an older epoch. */
  leaderLast: number;
  [k: string]: unknown;
}
export interface AppendOk {
  type: "append_ok";
  ok: boolean;
  /** On success: the follower's last number. */
  last: number;
  /** On failure: "stale" (the follower knows a newer epoch) or "mismatch" (back up to `hint`). */
  reason?: "stale" | "mismatch";
  epoch: number;
  hint?: number;
  [k: string]: unknown;
}
export interface LogState {
  type: "log_state";
  [k: string]: unknown;
}
export interface LogStateOk {
  type: "log_state_ok";
  last: number;
  lastEpoch: number;
  epoch: number;
  [k: string]: unknown;
}
export interface LogTail {
  type: "log_tail";
  after: number;
  limit: number;
  [k: string]: unknown;
}
export interface LogTailOk {
  type: "log_tail_ok";
  /** Epoch of the entry at `after` (0 for after = -1), null if there is none. */
  prevEpoch: number | null;
  entries: Order[];
  last: number;
  [k: string]: unknown;
}

// ---- client ↔ frontend: an HTTP request carried in a message ----
export interface HttpMsg {
  type: "http";
  method: string;
  path: string;
  body?: string;
  [k: string]: unknown;
}
export interface HttpMsgOk {
  type: "http_ok";
  status: number;
  body: unknown;
  headers?: Record<string, string>;
  [k: string]: unknown;
}

// ---- configs ----
export interface FrontendConfig {
  port: number;
  catalog: string;
  replicas: string[];
  cache: boolean;
  cacheSize: number;
  [k: string]: unknown;
}
export interface CatalogConfig {
  frontends: string[];
  initialQuantity: number;
  [k: string]: unknown;
}
export interface ReplicaConfig {
  catalog: string;
  replicas: string[];
  [k: string]: unknown;
}
export interface ClientConfig {
  frontend: string;
  p: number;
  stocks: string[];
  intervalMs: number;
  maxQuantity: number;
  [k: string]: unknown;
}
