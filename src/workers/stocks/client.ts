import { RpcError, defineRole, type Random, type RecordedOp } from "../runtime/types.ts";
import type { ClientConfig, HttpMsgOk, TradeType } from "./messages.ts";

/** Latency samples kept per request type (a reservoir, so long runs stay representative). */
const MAX_SAMPLES = 10_000;
/** Orders a client remembers for the final check. */
const MAX_ORDERS = 10_000;
/** Above the frontend's own give-up time, so a slow trade ends in a 503, not in silence. */
const TRADE_TIMEOUT_MS = 10_000;
/** Lookups and order queries are idempotent: a lost message costs a short wait and a retry. */
const READ_TIMEOUT_MS = 2_000;
const READ_ATTEMPTS = 3;

type Kind = "lookup" | "trade" | "orderQuery";

export interface ClientState {
  requests: Record<Kind, number>;
  latenciesMs: Record<Kind, number[]>;
  /** Status → count, for everything that was not a 200. */
  statuses: Record<string, number>;
  /** Requests that got no answer at all (timeouts). */
  unanswered: number;
  ordersPlaced: number;
  verify?: VerifyResult;
}

export interface VerifyResult {
  checked: number;
  matched: number;
  mismatched: number;
  /** Order queries that failed (5xx or no answer): not a mismatch, but not confirmed either. */
  failed: number;
  /** Placed orders not remembered (over MAX_ORDERS). */
  skipped: number;
  firstMismatch?: string;
}

class Reservoir {
  seen = 0;
  constructor(
    readonly samples: number[],
    private readonly rng: Random,
  ) {}
  add(v: number): void {
    this.seen++;
    if (this.samples.length < MAX_SAMPLES) this.samples.push(v);
    else {
      const i = this.rng.int(this.seen);
      if (i < MAX_SAMPLES) this.samples[i] = v;
    }
  }
}

/**
 * A trader: looks up a random stock, then trades it with probability p, keeps every order it
 * placed, and on `verify` stops and checks each order against the service. It speaks to the
 * frontend with `http` messages (node code opens no sockets) that the frontend routes exactly
 * like real HTTP.
 */
export const client = defineRole<ClientConfig>((node) => {
  const { frontend, p, stocks, intervalMs, maxQuantity } = node.config;
  const state: ClientState = {
    requests: { lookup: 0, trade: 0, orderQuery: 0 },
    latenciesMs: { lookup: [], trade: [], orderQuery: [] },
    statuses: {},
    unanswered: 0,
    ordersPlaced: 0,
  };
  const reservoirs = {
    lookup: new Reservoir(state.latenciesMs.lookup, node.random.fork("lookup")),
    trade: new Reservoir(state.latenciesMs.trade, node.random.fork("trade")),
    orderQuery: new Reservoir(state.latenciesMs.orderQuery, node.random.fork("orderQuery")),
  };
  const orders = new Map<number, { name: string; type: TradeType; quantity: number }>();
  let running = true;
  /** Requests answered with a status below 500: the driver's progress count. */
  let completed = 0;

  async function http(kind: Kind, method: string, path: string, body?: unknown): Promise<HttpMsgOk | null> {
    const t0 = node.now();
    state.requests[kind]++;
    const read = kind !== "trade";
    for (let attempt = 0; attempt < (read ? READ_ATTEMPTS : 1); attempt++) {
      try {
        const r = await node.request<HttpMsgOk>(frontend, { type: "http", method, path, body: body === undefined ? undefined : JSON.stringify(body) }, { timeoutMs: read ? READ_TIMEOUT_MS : TRADE_TIMEOUT_MS });
        reservoirs[kind].add(node.now() - t0);
        if (r.status !== 200) state.statuses[r.status] = (state.statuses[r.status] ?? 0) + 1;
        if (r.status < 500) completed++;
        return r;
      } catch (e) {
        if (!(e instanceof RpcError)) throw e;
      }
    }
    state.unanswered++;
    return null;
  }

  async function step(): Promise<void> {
    const name = node.random.pick(stocks);
    const look = node.history.invoke("lookup", null, { key: name });
    recordLookup(look, await http("lookup", "GET", `/stocks/${name}`));
    if (!node.random.chance(p)) return;
    const order = { name, type: (node.random.chance(0.5) ? "buy" : "sell") as TradeType, quantity: 1 + node.random.int(maxQuantity) };
    const op = node.history.invoke(order.type, order.quantity, { key: name });
    const r = await http("trade", "POST", "/orders", order);
    recordTrade(op, r);
    const n = (r?.body as { data?: { transaction_number?: unknown } } | undefined)?.data?.transaction_number;
    if (r?.status === 200 && typeof n === "number") {
      state.ordersPlaced++;
      if (orders.size < MAX_ORDERS) orders.set(n, order);
    }
  }

  // For the history: a 200 happened; a 409 definitely did not (and saw too little stock); a 503 or
  // no answer may have happened (the frontend gave up waiting, not the order service).
  function recordLookup(op: RecordedOp, r: HttpMsgOk | null): void {
    const q = (r?.body as { data?: { quantity?: unknown } } | undefined)?.data?.quantity;
    if (!r) op.info("no answer");
    else if (r.status === 200 && typeof q === "number") op.ok(q);
    else op.fail(errorText(r));
  }
  function recordTrade(op: RecordedOp, r: HttpMsgOk | null): void {
    if (!r) op.info("no answer");
    else if (r.status === 200) op.ok();
    else if (r.status >= 500) op.info(errorText(r));
    else op.fail(errorText(r));
  }

  const loop = (async () => {
    while (running) {
      await step();
      await node.sleep(intervalMs);
    }
  })();

  node.on("verify", async (msg) => {
    running = false;
    await loop;
    const v: VerifyResult = { checked: 0, matched: 0, mismatched: 0, failed: 0, skipped: state.ordersPlaced - orders.size };
    for (const [n, want] of orders) {
      v.checked++;
      let r = await http("orderQuery", "GET", `/orders/${n}`);
      // A 503 means "no leader right now", not "no such order": ask again a few times.
      for (let i = 0; i < 4 && (!r || r.status >= 500); i++) {
        await node.sleep(500);
        r = await http("orderQuery", "GET", `/orders/${n}`);
      }
      if (!r || r.status >= 500) {
        v.failed++;
        continue;
      }
      const got = (r.body as { data?: Record<string, unknown> }).data;
      if (r.status === 200 && got && got.number === n && got.name === want.name && got.type === want.type && got.quantity === want.quantity) v.matched++;
      else {
        v.mismatched++;
        v.firstMismatch ??= `order ${n}: placed ${JSON.stringify(want)}, got ${r.status} ${JSON.stringify(r.body)}`;
      }
    }
    state.verify = v;
    node.reply(msg, { type: "verify_ok", ...v });
  });

  return {
    inspect: () => ({ completed, ...state }), // added fields first: see olympics/tablet.ts
    stop: () => {
      running = false;
    },
  };
});

function errorText(r: HttpMsgOk): string {
  const m = (r.body as { error?: { message?: unknown } } | undefined)?.error?.message;
  return typeof m === "string" ? m : `status ${r.status}`;
}
