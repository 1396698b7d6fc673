import { REFUSED, bodyTooLarge, fail, isRefused, parseJsonObject, refuse, MAX_BODY_BYTES, type HttpReply, type Parsed } from "../shared/http.ts";
import { isCost, isDelta, parseTopic, type Topic } from "./messages.ts";

/** What the router needs from the front end; each call answers with a full reply (data or error). */
export interface BookstoreApi {
  list(): Promise<HttpReply>;
  search(topic: Topic): Promise<HttpReply>;
  lookup(item: number): Promise<HttpReply>;
  quantity(item: number): Promise<HttpReply>;
  buy(item: number): Promise<HttpReply>;
  updateCost(item: number, cost: number): Promise<HttpReply>;
  updateQuantity(item: number, delta: number): Promise<HttpReply>;
  order(number: number): Promise<HttpReply>;
}


function intParam(s: string | undefined | unknown, what: string): Parsed<number> {
  if (typeof s === "number") return Number.isSafeInteger(s) ? s : refuse(400, `${what} must be an integer`);
  if (typeof s !== "string" || !/^-?\d{1,15}$/.test(s)) return refuse(400, `${what} must be an integer`);
  return Number(s);
}

function costParam(v: unknown): Parsed<number> {
  const n = typeof v === "string" && v.trim() !== "" ? Number(v) : v;
  return isCost(n) ? (n as number) : refuse(400, "cost must be a positive number");
}

function deltaParam(v: unknown): Parsed<number> {
  const n = intParam(v, "delta");
  if (isRefused(n)) return n;
  return isDelta(n) ? n : refuse(400, "delta out of range");
}

function body(text: string | undefined): Parsed<Record<string, unknown>> {
  const v = parseJsonObject(text ?? "");
  return v;
}

function field(o: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (o[n] !== undefined && o[n] !== null) return o[n];
  return undefined;
}

const WRITES = new Set(["buy", "update_cost", "update_quantity", "update_c", "update_q"]);
const READS = new Set(["list", "search", "lookup", "get_quantity", "orders"]);

/**
 * The REST API's routing and validation (ours and the write-up's routes). Input is untrusted:
 * every failure is a 4xx with a clear message and reaches no other node. A GET never writes.
 */
export async function route(api: BookstoreApi, method: string, rawPath: string, text: string | undefined): Promise<HttpReply> {
  if (bodyTooLarge(text)) return fail(413, `request body over ${MAX_BODY_BYTES} bytes`);
  const path = rawPath.split("?")[0]!;
  const parts = path.split("/").slice(1);
  if (parts.length > 0 && parts[parts.length - 1] === "") parts.pop(); // "/buy/" → ["buy"]
  let segs: string[];
  try {
    segs = parts.map((p) => decodeURIComponent(p));
  } catch {
    return fail(400, "malformed path");
  }
  const [name, a, b, ...rest] = segs;
  if (name === undefined || rest.length > 0 || (!WRITES.has(name) && !READS.has(name))) return fail(404, "not found");

  if (WRITES.has(name)) {
    if (method !== "POST") return fail(405, "method not allowed", { Allow: "POST" });
    switch (name) {
      case "buy": {
        if (b !== undefined) return fail(404, "not found");
        let itemRaw: unknown = a;
        if (a === undefined) {
          const o = body(text);
          if (isRefused(o)) return o[REFUSED];
          itemRaw = field(o, "item", "item_number");
          if (itemRaw === undefined) return fail(400, "missing field: item");
        }
        const item = intParam(itemRaw, "item");
        return isRefused(item) ? item[REFUSED] : api.buy(item);
      }
      case "update_cost":
      case "update_c": {
        let itemRaw: unknown = a;
        let costRaw: unknown = b;
        if (name === "update_cost" && b !== undefined) return fail(404, "not found");
        if (costRaw === undefined) {
          const o = body(text);
          if (isRefused(o)) return o[REFUSED];
          itemRaw ??= field(o, "item", "item_number");
          costRaw = field(o, "cost");
          if (itemRaw === undefined) return fail(400, "missing field: item");
          if (costRaw === undefined) return fail(400, "missing field: cost");
        }
        const item = intParam(itemRaw, "item");
        if (isRefused(item)) return item[REFUSED];
        const cost = costParam(costRaw);
        return isRefused(cost) ? cost[REFUSED] : api.updateCost(item, cost);
      }
      default: {
        // update_quantity / update_q
        let itemRaw: unknown = a;
        let deltaRaw: unknown = b;
        if (name === "update_quantity" && b !== undefined) return fail(404, "not found");
        if (deltaRaw === undefined) {
          const o = body(text);
          if (isRefused(o)) return o[REFUSED];
          itemRaw ??= field(o, "item", "item_number");
          deltaRaw = field(o, "delta");
          if (itemRaw === undefined) return fail(400, "missing field: item");
          if (deltaRaw === undefined) return fail(400, "missing field: delta");
        }
        const item = intParam(itemRaw, "item");
        if (isRefused(item)) return item[REFUSED];
        const delta = deltaParam(deltaRaw);
        return isRefused(delta) ? delta[REFUSED] : api.updateQuantity(item, delta);
      }
    }
  }

  // Reads: GET with the argument in the path; the write-up's JSON-body POSTs (no argument in the path) too.
  const jsonPost = method === "POST" && a === undefined && name !== "list" && name !== "orders";
  if (method !== "GET" && !jsonPost) return fail(405, "method not allowed", { Allow: name === "list" || name === "orders" ? "GET" : "GET, POST" });
  if (b !== undefined) return fail(404, "not found");
  let arg: unknown = a;
  if (jsonPost) {
    const o = body(text);
    if (isRefused(o)) return o[REFUSED];
    arg = name === "search" ? field(o, "topic") : field(o, "item", "item_number");
    if (arg === undefined) return fail(400, `missing field: ${name === "search" ? "topic" : "item"}`);
  }
  switch (name) {
    case "list":
      return a === undefined ? api.list() : fail(404, "not found");
    case "search": {
      if (arg === undefined) return fail(404, "not found");
      const topic = typeof arg === "string" ? parseTopic(arg) : undefined;
      return topic ? api.search(topic) : fail(404, "unknown topic");
    }
    case "orders": {
      if (a === undefined) return fail(404, "not found");
      if (!/^\d{1,15}$/.test(a)) return fail(404, "order not found");
      return api.order(Number(a));
    }
    default: {
      if (arg === undefined) return fail(404, "not found");
      const item = intParam(arg, "item");
      if (isRefused(item)) return item[REFUSED];
      return name === "lookup" ? api.lookup(item) : api.quantity(item);
    }
  }
}
