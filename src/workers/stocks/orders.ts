import { seqKey } from "../runtime/keys.ts";
import type { Storage } from "../runtime/types.ts";
import type { LogWrite } from "./log.ts";
import type { Order, TradeRecord } from "./messages.ts";

const orderKey = (n: number) => seqKey("o/", n);
const droppedKey = (id: string) => `x/${id}`;
const EPOCH_KEY = "meta/epoch";
/** Orders read per page at start. */
const LOAD_PAGE = 4096;

/** What a replica finds in its storage at start. */
export interface StoredReplica {
  epoch: number;
  orders: Order[];
  dropped: TradeRecord[];
}

/**
 * A replica's durable state: its order log (`o/<number>`), the trades dropped from it awaiting the
 * catalog (`x/<request id>`) and the highest epoch it has seen. The core decides; this only loads
 * and writes, one transaction per batch of the core's writes.
 */
export class OrderStore {
  constructor(private readonly db: Storage) {}

  load(): StoredReplica {
    const orders: Order[] = [];
    for (let start = orderKey(0); ; ) {
      const rows = this.db.scan<Order>({ start, end: "o/\uffff", limit: LOAD_PAGE });
      for (const [, o] of rows) orders.push(o);
      if (rows.length < LOAD_PAGE) break;
      start = orderKey(rows[rows.length - 1]![1].number + 1);
    }
    const dropped = this.db.scan<TradeRecord>({ prefix: "x/" }).map(([, t]) => t);
    return { epoch: this.db.get<number>(EPOCH_KEY) ?? 0, orders, dropped };
  }

  /** Persists one batch atomically: a crash keeps all of it or none. */
  write(writes: readonly LogWrite[], epoch: number | null): void {
    if (writes.length === 0 && epoch === null) return;
    this.db.transaction(() => {
      if (epoch !== null) this.db.put(EPOCH_KEY, epoch);
      for (const w of writes) {
        switch (w.kind) {
          case "truncate":
            for (const [key] of this.db.scan({ start: orderKey(w.from), end: "o/\uffff" })) this.db.delete(key);
            break;
          case "put":
            this.db.put(orderKey(w.order.number), w.order);
            break;
          case "drop":
            this.db.put(droppedKey(w.trade.requestId), w.trade);
            break;
          case "forget":
            this.db.delete(droppedKey(w.requestId));
            break;
        }
      }
    });
  }
}
