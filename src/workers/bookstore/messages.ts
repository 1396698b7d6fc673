/**
 * The bookstore protocol between nodes, their configs, and the validation every receiver applies:
 * a node never trusts a message body's shape, it checks it here and answers MalformedRequest.
 */
import { ErrorCode, RpcError } from "../runtime/types.ts";

export type Topic = "distributed-systems" | "graduate-school";
export const TOPICS: readonly Topic[] = ["distributed-systems", "graduate-school"];

export interface Book {
  item: number;
  title: string;
  topic: Topic;
  cost: number;
  quantity: number;
  /** Writes applied to this book so far: reads carry it so histories can order them. */
  version: number;
}

/** The seven books of the write-up, as the catalog is seeded. */
export const BOOKS: readonly Book[] = [
  { item: 1, title: "How to get a good grade in 677 in 20 minutes a day", topic: "distributed-systems", cost: 50, quantity: 100, version: 0 },
  { item: 2, title: "RPCs for Dummies", topic: "distributed-systems", cost: 51, quantity: 101, version: 0 },
  { item: 3, title: "Xen and the Art of Surviving Graduate School", topic: "graduate-school", cost: 12, quantity: 100, version: 0 },
  { item: 4, title: "Cooking for the Impatient Graduate Student", topic: "graduate-school", cost: 2, quantity: 10, version: 0 },
  { item: 5, title: "How to finish Project 3 on time", topic: "distributed-systems", cost: 30, quantity: 100, version: 0 },
  { item: 6, title: "Why theory classes are so hard.", topic: "graduate-school", cost: 10, quantity: 100, version: 0 },
  { item: 7, title: "Spring in the Pioneer Valley", topic: "graduate-school", cost: 20, quantity: 100, version: 0 },
];

/** A catalog write. Buys come from order servers, the others from the front end. */
export type CatalogOp = { k: "buy"; item: number } | { k: "cost"; item: number; cost: number } | { k: "qty"; item: number; delta: number };

/** What a write did to its book (the same on every replica that applies it). */
export interface WriteResult {
  item: number;
  quantity: number;
  cost: number;
  version: number;
}

/** One entry of a catalog's recovery log: the write, its request id (dedupe) and its result. */
export interface LogEntry {
  seq: number;
  /** Epoch of the view whose primary sequenced it. */
  epoch: number;
  rid: string;
  op: CatalogOp;
  result: WriteResult;
}

/** A read the front end sends a catalog member. */
export type ReadQuery = { what: "lookup" | "quantity"; item: number } | { what: "search"; topic: string } | { what: "list" };

/** Who sequences catalog writes (`primary`) and who must hold every write before it is acknowledged (`members`). */
export interface View {
  epoch: number;
  primary: string;
  members: string[];
}

export interface Order {
  number: number;
  item: number;
  requestId: string;
  /** The catalog log entry of its decrement. */
  seq: number;
}

export const MAX_REQUEST_ID_LENGTH = 128;
/** Catalog entries per replicate batch (writes the primary sends at once). */
export const LOG_BATCH = 256;
/** Catalog entries per pull answer: an entry is under 512 bytes, so this stays under half the 1 MiB message limit. */
export const PULL_BATCH = 1024;
export const MAX_COST = 1e9;
export const MAX_DELTA = 1e9;
export const MAX_QUANTITY = 1e12;

// Error texts are part of the protocol: the front end maps them to HTTP statuses.
export const E = {
  itemNotFound: "item not found",
  orderNotFound: "order not found",
  unavailable: "item is unavailable",
  belowZero: "quantity would go below 0",
  notPrimary: "not the primary catalog",
  notMember: "not serving: resyncing",
  noCatalog: "no catalog replica available",
  noOrderServer: "no order server available",
  outcomeUnknown: "outcome unknown: the request may or may not have happened",
  overloaded: "too many writes in flight",
  staleEpoch: "stale epoch",
} as const;

export function malformed(text: string): RpcError {
  return new RpcError(ErrorCode.MalformedRequest, text);
}

export const isItem = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 1 && (v as number) <= 1e9;
export const isRequestId = (v: unknown): v is string => typeof v === "string" && v.length > 0 && v.length <= MAX_REQUEST_ID_LENGTH;
export const isIndex = (v: unknown, min = 0): v is number => Number.isSafeInteger(v) && (v as number) >= min;
export const isCost = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0 && v <= MAX_COST;
export const isDelta = (v: unknown): v is number => Number.isSafeInteger(v) && Math.abs(v as number) <= MAX_DELTA;

export function isOp(v: unknown): v is CatalogOp {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  if (!isItem(o.item)) return false;
  if (o.k === "buy") return true;
  if (o.k === "cost") return isCost(o.cost);
  if (o.k === "qty") return isDelta(o.delta);
  return false;
}

export function isView(v: unknown, catalogs: readonly string[]): v is View {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    isIndex(o.epoch, 1) &&
    typeof o.primary === "string" &&
    Array.isArray(o.members) &&
    o.members.length <= catalogs.length &&
    o.members.every((m) => typeof m === "string" && catalogs.includes(m)) &&
    o.members.includes(o.primary)
  );
}

function isResult(v: unknown): v is WriteResult {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return isItem(o.item) && isIndex(o.quantity) && isCost(o.cost) && isIndex(o.version);
}

export function isEntry(v: unknown): v is LogEntry {
  if (typeof v !== "object" || v === null) return false;
  const o = v as Record<string, unknown>;
  return isIndex(o.seq, 1) && isIndex(o.epoch, 1) && isRequestId(o.rid) && isOp(o.op) && isResult(o.result);
}

/** Entries of a pull/replicate: valid, consecutive from `first`, at most `max`. */
export function isEntries(v: unknown, first: number, max = LOG_BATCH): v is LogEntry[] {
  if (!Array.isArray(v) || v.length > max) return false;
  return v.every((e, i) => isEntry(e) && e.seq === first + i);
}

/** Topic in a request: ours, or the write-up's spelling (`Distributed_systems`, `Graduate_School`). */
export function parseTopic(s: string): Topic | undefined {
  const t = s.toLowerCase().replace(/_/g, "-");
  return (TOPICS as readonly string[]).includes(t) ? (t as Topic) : undefined;
}

// ---- configs ----

export interface FrontendConfig {
  port: number;
  catalogs: string[];
  orders: string[];
  heartbeatMs: number;
  cache: boolean;
  cacheSize: number;
}

export interface CatalogConfig {
  catalogs: string[];
  frontend: string;
  /** Test hook: a planted bug, to prove the checks catch it. */
  bug?: "no-invalidate" | "oversell";
  /** Recovery-log entries kept (default LOG_KEEP); tests lower it to reach the snapshot path. */
  logKeep?: number;
}

export interface OrderConfig {
  orders: string[];
  frontend: string;
}

export interface ClientConfig {
  frontend: string;
  intervalMs: number;
  /** Probability of a write (buy or restock) per step. */
  writeP: number;
}
