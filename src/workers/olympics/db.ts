import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole, type Role } from "../runtime/types.ts";
import { obelix } from "./obelix.ts";
import { MAX_ORDER_LOG, Sequencer, type OrderEntry } from "./order.ts";
import type { Order, OrderJoin, OrderJoinOk, OrderOk, Ordered, TieredConfig } from "./tiered-messages.ts";
import { followClock } from "./timesync.ts";

const ORDER = "order/";
/** A front end is out of the group after this many missed heartbeats. */
const MISSED_HEARTBEATS = 4;
const MAX_RID_CHARS = 128;
const MAX_OP_CHARS = 200;

/**
 * The database tier: the only holder of tallies and scores. It is obelix itself (durable board,
 * password, write ids so a write retried through another front end counts once, pushes to whoever
 * registered: here the front ends), plus two jobs of the tiered system: it follows the time
 * daemon's clock (so "last updated at" stamps use the synchronised clock), and it is the sequencer
 * of the front ends' totally ordered multicast (order.ts), its order log in the same durable storage.
 */
export const db = defineRole<TieredConfig>(async (node) => {
  const cfg = node.config;
  // obelix registers its handlers on this node; the db adds its own beside them.
  const hooks = (await (obelix as Role)(node)) ?? {};
  const clock = followClock(node, cfg.dispatchers);
  const restored = node.storage.scan<OrderEntry>({ prefix: ORDER }).map(([, e]) => e);
  const seq = new Sequencer(restored, cfg.heartbeatMs * MISSED_HEARTBEATS);

  function member(src: string): void {
    if (!cfg.frontends.includes(src)) throw new RpcError(ErrorCode.Unauthorized, "only front ends take part in the total order");
  }

  node.on<Order>("order", (msg) => {
    member(msg.src);
    const { rid, client, op } = msg.body;
    if (typeof rid !== "string" || rid === "" || rid.length > MAX_RID_CHARS) throw new RpcError(ErrorCode.MalformedRequest, "rid must be a short non-empty string");
    if (typeof client !== "string" || client.length > MAX_RID_CHARS || typeof op !== "string" || op.length > MAX_OP_CHARS) throw new RpcError(ErrorCode.MalformedRequest, "client and op must be short strings");
    if (seq.full()) throw new RpcError(ErrorCode.Overloaded, `the order log holds its maximum of ${MAX_ORDER_LOG} entries`);
    const out = seq.order(msg.src, rid, client, op, node.now());
    // Durable before anyone hears of it: a sequencer that restarts never hands a position out twice.
    if (out.append) node.storage.put(seqKey(ORDER, out.append.seq), out.append);
    for (const m of out.multicast) if (m !== msg.src) node.send(m, { type: "ordered", entries: [out.entry] } satisfies Ordered);
    node.reply(msg, { type: "order_ok", entry: out.entry } satisfies OrderOk);
  });

  node.on<OrderJoin>("order_join", (msg) => {
    member(msg.src);
    const d = msg.body.delivered;
    if (!Number.isSafeInteger(d) || d < 0) throw new RpcError(ErrorCode.MalformedRequest, "delivered must be a count");
    node.reply(msg, { type: "order_join_ok", entries: seq.join(msg.src, Math.min(d, seq.length), node.now()), length: seq.length } satisfies OrderJoinOk);
  });

  return {
    inspect: () => ({ ...(hooks.inspect?.() as object), order: { length: seq.length, members: seq.members(node.now()) }, clock }),
    stop: hooks.stop,
  };
});
