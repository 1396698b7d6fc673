import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole, type NodeContext } from "../runtime/types.ts";
import {
  E,
  LOG_BATCH,
  isName,
  isQuantity,
  isRequestId,
  isTradeType,
  isTradeRecords,
  malformed,
  type CatalogConfig,
  type Invalidate,
  type Logged,
  type Lookup,
  type Reopen,
  type TradeRecord,
  type Unlogged,
  type UnloggedOk,
  type Stock,
  type Trade,
  type TradeOk,
} from "./messages.ts";

/** The bazaar's listings and their prices; every stock starts at the configured quantity. */
export const STOCKS: ReadonlyArray<{ name: string; price: number }> = [
  { name: "nvidia", price: 240.63 },
  { name: "meta", price: 194.02 },
  { name: "gamestop", price: 20.0 },
  { name: "amazon", price: 104.98 },
  { name: "tesla", price: 160.19 },
  { name: "amc", price: 4.8 },
  { name: "nike", price: 122.05 },
  { name: "intel", price: 29.88 },
  { name: "apple", price: 165.56 },
  { name: "microsoft", price: 285.76 },
  { name: "netflix", price: 320.41 },
  { name: "boeing", price: 207.1 },
];

interface StoredStock extends Stock {
  version: number;
}

/** How many recent request ids the catalog remembers: a retry arrives within seconds, not 100k trades later. */
const DEDUP_WINDOW = 100_000;
const INVALIDATE_TIMEOUT_MS = 200;
const INVALIDATE_ATTEMPTS = 3;
/**
 * Applied trades awaiting an order-log entry before the catalog refuses new ones: the order leader
 * drains them within a heartbeat or two, so reaching this means no order service is logging.
 */
export const MAX_UNLOGGED = 10_000;

const stockKey = (name: string) => `s/${name}`;
const dedupKey = (id: string) => `d/${id}`;
const unloggedKey = (id: string) => `u/${id}`;

/**
 * The catalog: the single durable authority on quantities. A trade is one storage transaction
 * (stock update + request-id record + an "unlogged" record), so a crash applies it fully or not at
 * all, and a retried request id gets the first answer instead of a second application.
 *
 * The unlogged records make a trade all or nothing across services: a trade applied here stays
 * listed until an order leader says it is in the replicated order log (`logged`). Whoever crashes
 * in between (front end, leader, this catalog), the next leader finds it with `unlogged` and logs
 * it; a replica that drops a stale tail from its log lists those trades again (`reopen`).
 */
export const catalog = defineRole<CatalogConfig>((node) => {
  const { frontends, initialQuantity } = node.config;
  const db = node.storage;

  db.transaction(() => {
    for (const s of STOCKS) {
      if (db.get(stockKey(s.name)) === undefined) db.put(stockKey(s.name), { name: s.name, price: s.price, quantity: initialQuantity, version: 0 } satisfies StoredStock);
    }
  });
  let dedupSeq = db.get<number>("meta/dedup_seq") ?? 0;
  let unlogged = db.scan({ prefix: "u/" }).length;
  let trades = 0;
  let lookups = 0;

  function load(name: string): StoredStock {
    const s = db.get<StoredStock>(stockKey(name));
    if (!s) throw new RpcError(ErrorCode.KeyDoesNotExist, E.stockNotFound);
    return s;
  }

  node.on<Lookup>("lookup", (msg) => {
    if (!isName(msg.body.name)) throw new RpcError(ErrorCode.KeyDoesNotExist, E.stockNotFound);
    const s = load(msg.body.name);
    lookups++;
    node.reply(msg, { type: "lookup_ok", stock: { name: s.name, price: s.price, quantity: s.quantity }, version: s.version });
  });

  /** Applies a trade once: returns the stored result for a request id already applied. */
  function apply(t: Trade): { stock: StoredStock; fresh: boolean } {
    return db.transaction(() => {
      const seen = db.get<StoredStock>(dedupKey(t.requestId));
      if (seen) return { stock: seen, fresh: false };
      if (unlogged >= MAX_UNLOGGED) throw new RpcError(ErrorCode.Overloaded, E.overloaded);
      const s = load(t.name);
      const quantity = t.tradeType === "buy" ? s.quantity - t.quantity : s.quantity + t.quantity;
      if (quantity < 0) throw new RpcError(ErrorCode.PreconditionFailed, E.notEnoughStock);
      if (!Number.isSafeInteger(quantity)) throw new RpcError(ErrorCode.PreconditionFailed, "quantity would overflow");
      const next: StoredStock = { ...s, quantity, version: s.version + 1 };
      db.put(stockKey(t.name), next);
      db.put(dedupKey(t.requestId), next);
      db.put(unloggedKey(t.requestId), { requestId: t.requestId, name: t.name, tradeType: t.tradeType, quantity: t.quantity } satisfies TradeRecord);
      db.put(seqKey("q/", dedupSeq), t.requestId);
      if (dedupSeq >= DEDUP_WINDOW) {
        const old = seqKey("q/", dedupSeq - DEDUP_WINDOW);
        const oldId = db.get<string>(old);
        if (oldId !== undefined) db.delete(dedupKey(oldId));
        db.delete(old);
      }
      db.put("meta/dedup_seq", dedupSeq + 1);
      dedupSeq++;
      unlogged++;
      return { stock: next, fresh: true };
    });
  }

  node.on<Trade>("trade", async (msg) => {
    const t = msg.body;
    if (!isRequestId(t.requestId)) throw malformed("trade needs a requestId");
    if (!isTradeType(t.tradeType)) throw malformed("invalid request type");
    if (!isQuantity(t.quantity)) throw malformed("invalid quantity");
    if (!isName(t.name)) throw new RpcError(ErrorCode.KeyDoesNotExist, E.stockNotFound);
    const { stock, fresh } = apply(t);
    if (fresh) trades++;
    // The trade is durable; caches must forget the old quantity before anyone hears "done".
    // A retried request id pushes again: the first attempt may have crashed before pushing.
    await invalidate(stock.name, stock.version);
    node.reply(msg, { type: "trade_ok", stock: { name: stock.name, price: stock.price, quantity: stock.quantity }, version: stock.version } satisfies TradeOk);
  });

  node.on<Unlogged>("unlogged", (msg) => {
    const trades = db.scan<TradeRecord>({ prefix: "u/", limit: LOG_BATCH }).map(([, t]) => t);
    node.reply(msg, { type: "unlogged_ok", trades, total: unlogged } satisfies UnloggedOk);
  });

  node.on<Logged>("logged", (msg) => {
    const ids = msg.body.requestIds;
    if (!Array.isArray(ids) || ids.length > LOG_BATCH || !ids.every(isRequestId)) throw malformed(`logged needs at most ${LOG_BATCH} request ids`);
    db.transaction(() => {
      for (const id of ids) {
        if (db.get(unloggedKey(id)) === undefined) continue;
        db.delete(unloggedKey(id));
        unlogged--;
      }
    });
  });

  node.on<Reopen>("reopen", (msg) => {
    const t = msg.body.trades;
    if (!isTradeRecords(t)) throw malformed(`reopen needs at most ${LOG_BATCH} trade records`);
    // Every order in any replica's log came from a trade applied here, so listing it again is
    // always right; if the current log holds it, the next leader sweep simply confirms it.
    db.transaction(() => {
      for (const r of t) {
        if (db.get(unloggedKey(r.requestId)) !== undefined) continue;
        db.put(unloggedKey(r.requestId), { requestId: r.requestId, name: r.name, tradeType: r.tradeType, quantity: r.quantity } satisfies TradeRecord);
        unlogged++;
      }
    });
    node.reply(msg, { type: "reopen_ok" });
  });

  async function invalidate(name: string, version: number): Promise<void> {
    await Promise.all(frontends.map((f) => pushTo(node, f, { type: "invalidate", name, version })));
  }

  // A crash between applying a trade and pushing its invalidation would leave a front end caching
  // the old quantity: push once more for every stock with unlogged trades.
  const touched = new Set(db.scan<TradeRecord>({ prefix: "u/" }).map(([, t]) => t.name));
  for (const name of touched) {
    const s = db.get<StoredStock>(stockKey(name));
    if (s) void invalidate(name, s.version);
  }

  return {
    inspect: () => ({ trades, lookups, unlogged, stocks: STOCKS.map((s) => db.get<StoredStock>(stockKey(s.name))) }),
  };
});

/** A few bounded attempts: a frontend that stays silent is down, and a restarted frontend's cache starts empty. */
async function pushTo(node: NodeContext<CatalogConfig>, frontend: string, body: Invalidate): Promise<void> {
  for (let i = 0; i < INVALIDATE_ATTEMPTS; i++) {
    try {
      await node.request(frontend, body, { timeoutMs: INVALIDATE_TIMEOUT_MS });
      return;
    } catch (e) {
      if (!(e instanceof RpcError) || e.definite) return;
    }
  }
  node.log.warn("frontend did not confirm an invalidation", { frontend, name: body.name });
}
