import { RpcError, defineRole } from "../runtime/types.ts";
import { BOOKS, E, TOPICS, type ClientConfig } from "./messages.ts";

/** Above the front end's own give-up times, so a slow request ends in an answer, not in silence. */
const REQUEST_TIMEOUT_MS = 4000;
/** Operations a client records; past this it stops recording (and says so). */
export const MAX_HISTORY = 100_000;

export type OpType = "ok" | "fail" | "info";
export type OpF = "list" | "search" | "lookup" | "quantity" | "buy" | "update_cost" | "update_quantity";

/**
 * One completed operation, as the client saw it. `ok`: it surely happened; `fail`: it surely did
 * not; `info`: no definite answer (timeout, crash, "outcome unknown"), it may have happened.
 */
export interface HistoryOp {
  process: string;
  type: OpType;
  f: OpF;
  value: Record<string, unknown>;
  invokeMs: number;
  completeMs: number;
}

export interface ClientState {
  history: HistoryOp[];
  truncated: boolean;
  statuses: Record<string, number>;
}

interface HttpOk {
  status: number;
  body: { data?: any; error?: { message?: string } };
}

/** 503s that the front end gives only when it sent nothing anywhere: definite failures. */
const NOTHING_SENT: ReadonlySet<string> = new Set([E.noCatalog, E.noOrderServer]);

/**
 * A shopper: lists, searches, looks up, buys and restocks, through `http` messages to the front end
 * (node code opens no sockets) that it routes exactly like real HTTP. Every operation lands in the
 * history with its outcome and its invoke/complete times (the node's clock).
 */
export const client = defineRole<ClientConfig>((node) => {
  const { frontend, intervalMs, writeP } = node.config;
  const state: ClientState = { history: [], truncated: false, statuses: {} };
  let running = true;

  async function op(f: OpF, method: string, path: string, args: Record<string, unknown>, body?: unknown): Promise<void> {
    const invokeMs = node.now();
    let type: OpType;
    let value: Record<string, unknown> = { ...args };
    try {
      const r = await node.request<HttpOk>(frontend, { type: "http", method, path, body: body === undefined ? undefined : JSON.stringify(body) }, { timeoutMs: REQUEST_TIMEOUT_MS });
      state.statuses[r.status] = (state.statuses[r.status] ?? 0) + 1;
      if (r.status === 200) {
        type = "ok";
        value = { ...value, ...(Array.isArray(r.body.data) ? { books: r.body.data } : r.body.data) };
      } else {
        const message = r.body.error?.message ?? "";
        value.error = `${r.status} ${message}`;
        const write = f === "buy" || f === "update_cost" || f === "update_quantity";
        type = r.status === 503 && write && !NOTHING_SENT.has(message) ? "info" : "fail";
      }
    } catch (e) {
      if (!(e instanceof RpcError)) throw e;
      type = "info";
      value.error = e.text;
    }
    if (state.history.length < MAX_HISTORY) state.history.push({ process: node.id, type, f, value, invokeMs, completeMs: node.now() });
    else state.truncated = true;
  }

  async function step(): Promise<void> {
    const item = node.random.pick(BOOKS).item;
    const roll = node.random.next();
    if (roll < writeP) {
      const w = node.random.next();
      if (w < 0.6) return op("buy", "POST", `/buy/${item}`, { item });
      if (w < 0.8) {
        const delta = 1 + node.random.int(5);
        return op("update_quantity", "POST", `/update_quantity/${item}`, { item, delta }, { delta });
      }
      if (w < 0.9) {
        const delta = -(1 + node.random.int(3));
        return op("update_quantity", "POST", `/update_q/${item}/${delta}`, { item, delta });
      }
      const cost = 1 + node.random.int(100);
      return op("update_cost", "POST", `/update_cost/${item}`, { item, cost }, { cost });
    }
    const r = node.random.next();
    if (r < 0.45) return op("lookup", "GET", `/lookup/${item}`, { item });
    if (r < 0.8) return op("quantity", "GET", `/get_quantity/${item}`, { item });
    if (r < 0.93) {
      const topic = node.random.pick(TOPICS);
      return op("search", "GET", `/search/${topic}`, { topic });
    }
    return op("list", "GET", "/list", {});
  }

  const loop = (async () => {
    while (running) {
      await step();
      await node.sleep(intervalMs);
    }
  })();

  node.on("finish", async (msg) => {
    running = false;
    await loop;
    node.reply(msg, { type: "finish_ok", ops: state.history.length });
  });

  return {
    inspect: () => state,
    stop: () => {
      running = false;
    },
  };
});
