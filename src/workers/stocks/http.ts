import { MAX_BODY_BYTES, REFUSED, fail, isRefused, ok, parseJsonObject, refuse, type HttpReply, type Parsed } from "../shared/http.ts";
import { MAX_NAME_LENGTH, isQuantity, isTradeType, type Stock, type TradeType } from "./messages.ts";

/** What the router needs from the frontend; each call answers with a full reply (data or error). */
export interface StocksApi {
  lookup(name: string): Promise<HttpReply>;
  trade(order: { name: string; type: TradeType; quantity: number }): Promise<HttpReply>;
  orderQuery(number: number): Promise<HttpReply>;
}

export function stockData(s: Stock): { name: string; price: number; quantity: number } {
  return { name: s.name, price: s.price, quantity: s.quantity };
}

/**
 * The REST API's routing and validation. Input is untrusted: every failure is a 4xx with a clear
 * message and reaches no other node.
 */
export async function route(api: StocksApi, method: string, rawPath: string, body: string | undefined): Promise<HttpReply> {
  // Real HTTP bodies were already capped by the runtime; this covers bodies carried in messages.
  if (body !== undefined && body.length * 3 > MAX_BODY_BYTES && Buffer.byteLength(body) > MAX_BODY_BYTES) return fail(413, `request body over ${MAX_BODY_BYTES} bytes`);
  const path = rawPath.split("?")[0]!;
  const parts = path.split("/");
  // ["", "stocks", name] / ["", "orders"] / ["", "orders", n]
  if (parts[0] !== "" || parts.length < 2 || parts.length > 3) return fail(404, "not found");
  const [, collection, id] = parts;

  if (collection === "stocks" && id !== undefined && id !== "") {
    if (method !== "GET") return fail(405, "method not allowed", { Allow: "GET" });
    let name: string;
    try {
      name = decodeURIComponent(id);
    } catch {
      return fail(400, "invalid stock name");
    }
    if (name.length > MAX_NAME_LENGTH) return fail(404, "stock not found");
    return api.lookup(name);
  }

  if (collection === "orders" && id === undefined) {
    if (method !== "POST") return fail(405, "method not allowed", { Allow: "POST" });
    const parsed = parseOrder(body ?? "");
    if (isRefused(parsed)) return parsed[REFUSED];
    return api.trade(parsed);
  }

  if (collection === "orders" && id !== undefined && id !== "") {
    if (method !== "GET") return fail(405, "method not allowed", { Allow: "GET" });
    if (!/^\d{1,15}$/.test(id)) return fail(404, "order not found");
    return api.orderQuery(Number(id));
  }

  return fail(404, "not found");
}

function parseOrder(text: string): Parsed<{ name: string; type: TradeType; quantity: number }> {
  const o = parseJsonObject(text);
  if (isRefused(o)) return o;
  for (const f of ["name", "type", "quantity"]) if (o[f] === undefined || o[f] === null) return refuse(400, `missing field: ${f}`);
  if (!isTradeType(o.type)) return refuse(400, "invalid request type");
  if (!isQuantity(o.quantity)) return refuse(400, "invalid quantity");
  if (typeof o.name !== "string" || o.name.length === 0) return refuse(400, "invalid stock name");
  if (o.name.length > MAX_NAME_LENGTH) return refuse(404, "stock not found");
  return { name: o.name, type: o.type, quantity: o.quantity };
}

export { MAX_BODY_BYTES, fail, ok, messageBody, toResponse, type HttpReply } from "../shared/http.ts";
