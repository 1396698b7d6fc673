import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole } from "../runtime/types.ts";
import { E, isIndex, isItem, isRequestId, isView, malformed, type Order, type OrderConfig, type View } from "./messages.ts";

const CATALOG_TIMEOUT_MS = 1000;
/** How long a buy request waits for its outcome before answering "unknown" (the buy still completes). */
const ANSWER_WITHIN_MS = 1500;
const RETRY_MS = 100;
const SWEEP_MS = 250;
/** Buys in flight (durably pending) before the server refuses more. */
const MAX_PENDING = 10_000;
/** Orders per `order_log` answer. */
const ORDER_BATCH = 256;

const orderKey = (n: number) => seqKey("o/", n);
const doneKey = (rid: string) => `r/${rid}`;
const pendingKey = (rid: string) => `p/${rid}`;

type Outcome = { number: number; version: number } | { error: string; code: number };

/**
 * An order server. A buy is all-or-nothing: its request id is durably marked pending BEFORE the
 * catalog is asked to decrement, and a pending buy is driven to an outcome (decrement and order, or
 * a definite refusal and no order) however often this server crashes: on restart and by a sweep, it
 * asks the catalog again with the same request id, which the catalog applies at most once. Order
 * numbers are server-striped (order-k hands out k, k+O, k+2O, …) so two servers never collide.
 */
export const order = defineRole<OrderConfig>((node) => {
  const { orders } = node.config;
  const idx = orders.indexOf(node.id);
  if (idx < 0) throw new Error(`${node.id} is not in the order server list`);
  const db = node.storage;
  let view: View | null = null;
  let localSeq = db.get<number>("meta/next") ?? 0;
  const inflight = new Map<string, Promise<Outcome>>();
  const served = { buys: 0, queries: 0 };

  const pendingCount = () => db.scan({ prefix: "p/" }).length;
  const recovered = pendingCount();
  node.log.info("order server up", { orders: localSeq, pending: recovered });

  const known = (rid: string) => db.get<Outcome>(doneKey(rid));

  /** Drives one pending buy to its outcome; retries until the catalog answers definitely. */
  function resolve(rid: string, item: number): Promise<Outcome> {
    const running = inflight.get(rid);
    if (running) return running;
    const p = (async (): Promise<Outcome> => {
      for (;;) {
        const done = known(rid);
        if (done) return done;
        const primary = view?.primary;
        if (primary) {
          try {
            const r = await node.request<{ seq: number; result: { version: number } }>(primary, { type: "write", rid, op: { k: "buy", item } }, { timeoutMs: CATALOG_TIMEOUT_MS });
            if (!isIndex(r.seq, 1)) throw new RpcError(ErrorCode.MalformedRequest, "catalog answered without a seq");
            return record(rid, { number: localSeq * orders.length + idx + 1, version: isIndex(r.result?.version) ? r.result.version : 0 }, { item, seq: r.seq });
          } catch (e) {
            if (!(e instanceof RpcError)) throw e;
            if (e.code === ErrorCode.PreconditionFailed || e.code === ErrorCode.KeyDoesNotExist) return record(rid, { error: e.text, code: e.code });
          }
        }
        await node.sleep(RETRY_MS);
      }
    })().finally(() => inflight.delete(rid));
    inflight.set(rid, p);
    return p;
  }

  /** The outcome and the order (if any) land in one transaction with the pending mark's removal. */
  function record(rid: string, outcome: Outcome, o?: { item: number; seq: number }): Outcome {
    const done = known(rid);
    if (done) return done;
    db.transaction(() => {
      if ("number" in outcome) {
        db.put(orderKey(outcome.number), { number: outcome.number, item: o!.item, requestId: rid, seq: o!.seq } satisfies Order);
        db.put("meta/next", ++localSeq);
      }
      db.put(doneKey(rid), outcome);
      db.delete(pendingKey(rid));
    });
    return outcome;
  }

  node.on("buy", async (msg) => {
    const { rid, item } = msg.body;
    if (!isRequestId(rid)) throw malformed("buy needs a request id");
    if (!isItem(item)) throw new RpcError(ErrorCode.KeyDoesNotExist, E.itemNotFound);
    served.buys++;
    let outcome = known(rid);
    if (!outcome) {
      if (db.get(pendingKey(rid)) === undefined) {
        if (inflight.size >= MAX_PENDING) throw new RpcError(ErrorCode.Overloaded, E.overloaded);
        db.put(pendingKey(rid), { item });
      }
      const p = resolve(rid, item);
      outcome = await Promise.race([p, node.sleep(ANSWER_WITHIN_MS).then(() => undefined)]);
    }
    if (!outcome) throw new RpcError(ErrorCode.Timeout, E.outcomeUnknown);
    if ("error" in outcome) throw new RpcError(outcome.code, outcome.error);
    node.reply(msg, { type: "buy_ok", number: outcome.number, version: outcome.version });
  });

  node.on("get_order", (msg) => {
    const n = msg.body.number;
    served.queries++;
    const o = isIndex(n, 1) ? db.get<Order>(orderKey(n)) : undefined;
    if (!o) throw new RpcError(ErrorCode.KeyDoesNotExist, E.orderNotFound);
    node.reply(msg, { type: "get_order_ok", order: { number: o.number, item: o.item } });
  });

  node.on("order_log", (msg) => {
    const after = msg.body.after;
    if (!isIndex(after)) throw malformed("order_log needs after ≥ 0");
    const list = db.scan<Order>({ start: orderKey(after + 1), end: "o/\uffff", limit: ORDER_BATCH }).map(([, o]) => o);
    node.reply(msg, { type: "order_log_ok", orders: list });
  });

  node.on("hb", (msg) => {
    const v = msg.body.view;
    if (v !== undefined && v !== null && !isView(v, (v as View).members ?? [])) throw malformed("hb carries a malformed view");
    if (v && (!view || (v as View).epoch > view.epoch)) view = v as View;
    node.reply(msg, { type: "hb_ok", pending: inflight.size });
  });

  // Pending buys from before a crash (and any whose driver gave up) are finished here.
  node.setInterval(SWEEP_MS, () => {
    if (!view) return;
    for (const [key, p] of db.scan<{ item: number }>({ prefix: "p/", limit: 256 })) void resolve(key.slice(2), p.item);
  });

  return {
    inspect: () => ({ orders: localSeq, pending: pendingCount(), served: { ...served }, view }),
  };
});
