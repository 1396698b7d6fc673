import { seqKey } from "../runtime/keys.ts";
import { ErrorCode, RpcError, defineRole, type NodeContext } from "../runtime/types.ts";
import {
  E,
  isName,
  isQuantity,
  isRequestId,
  isTradeType,
  malformed,
  type CatalogConfig,
  type Invalidate,
  type Lookup,
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

const stockKey = (name: string) => `s/${name}`;
const dedupKey = (id: string) => `d/${id}`;

/**
 * The catalog: the single durable authority on quantities. A trade is one storage transaction
 * (stock update + request-id record), so a crash applies it fully or not at all, and a retried
 * request id gets the first answer instead of a second application.
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
      const s = load(t.name);
      const quantity = t.tradeType === "buy" ? s.quantity - t.quantity : s.quantity + t.quantity;
      if (quantity < 0) throw new RpcError(ErrorCode.PreconditionFailed, E.notEnoughStock);
      if (!Number.isSafeInteger(quantity)) throw new RpcError(ErrorCode.PreconditionFailed, "quantity would overflow");
      const next: StoredStock = { ...s, quantity, version: s.version + 1 };
      db.put(stockKey(t.name), next);
      db.put(dedupKey(t.requestId), next);
      db.put(seqKey("q/", dedupSeq), t.requestId);
      if (dedupSeq >= DEDUP_WINDOW) {
        const old = seqKey("q/", dedupSeq - DEDUP_WINDOW);
        const oldId = db.get<string>(old);
        if (oldId !== undefined) db.delete(dedupKey(oldId));
        db.delete(old);
      }
      db.put("meta/dedup_seq", dedupSeq + 1);
      dedupSeq++;
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

  async function invalidate(name: string, version: number): Promise<void> {
    await Promise.all(frontends.map((f) => pushTo(node, f, { type: "invalidate", name, version })));
  }

  return {
    inspect: () => ({ trades, lookups, stocks: STOCKS.map((s) => db.get<StoredStock>(stockKey(s.name))) }),
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
